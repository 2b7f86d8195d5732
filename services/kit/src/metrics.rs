//! Prometheus metrics: the process-wide recorder and the `GET /metrics` handler.
//!
//! [`install`] sets the recorder once (later calls return the same handle); after that any
//! `metrics::counter!`/`gauge!`/`histogram!` anywhere in the process shows up in
//! [`render`]. The server mounts [`router`] for you; a test can read the text directly:
//!
//! ```
//! let handle = faultline_kit::metrics::install();
//! metrics::counter!("orders_created_total").increment(1);
//! assert!(handle.render().contains("orders_created_total 1"));
//! ```
//!
//! What the kit records (names are stable: checkers and dashboards rely on them):
//! - `http_server_requests_total{method, route, status}` and
//!   `http_server_request_duration_seconds{method, route, status}` (histogram), by
//!   [`crate::telemetry::trace_requests`];
//! - `kafka_consumer_events_total{topic, outcome=processed|retried|dead_lettered}`;
//! - `outbox_backlog` (gauge, unpublished rows) and `outbox_published_total`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets in seconds: from 1 ms to 10 s, fine enough for p50/p99 of HTTP calls.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder if none is installed yet, and returns its handle.
///
/// If some other recorder was installed first (not by the kit), the handle renders nothing and
/// a warning is logged.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("the latency buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(error) = metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics will be empty");
            }
            let upkeep = handle.clone();
            // Upkeep keeps histogram storage bounded; a plain thread needs no runtime.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("spawning the metrics upkeep thread");
            handle
        })
        .clone()
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    install().render()
}

/// `GET /metrics`.
pub async fn metrics_handler() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], render())
}

/// A router serving `GET /metrics`.
pub fn router() -> Router {
    install();
    Router::new().route("/metrics", get(metrics_handler))
}

/// Records one served HTTP request (called by the telemetry middleware).
pub fn record_http_request(method: &str, route: &str, status: u16, latency: Duration) {
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_server_requests_total", &labels).increment(1);
    metrics::histogram!("http_server_request_duration_seconds", &labels)
        .record(latency.as_secs_f64());
}
