//! The client's token never reaches the gateway's logs, whatever happens to the request.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use faultline_kit::telemetry::JsonLines;
use support::{fake_order, gateway, order_body, token};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_appear_in_the_logs() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines::new("gateway"))
                .with_writer(move || sink.clone()),
        )
        .init();

    let (order, _recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1).await;
    let client = reqwest::Client::new();
    let good = token("client-1", &["orders:write"]);
    let forbidden = token("client-2", &["orders:read"]);
    let tampered = format!("{good}x");
    for bearer in [&good, &good, &forbidden, &tampered] {
        let response = client
            .post(format!("{}/api/orders", gw.base))
            .bearer_auth(bearer)
            .header("Idempotency-Key", "k")
            .json(&order_body())
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            reqwest::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request refused"),
        "the refusals were logged: {logs}"
    );
    for secret in [&good, &forbidden, &tampered, &support::SECRET.to_string()] {
        // Any of the token's three parts would give it away.
        for part in secret.split('.') {
            assert!(
                !logs.contains(part),
                "a token part leaked into the logs: {logs}"
            );
        }
    }
}
