//! The gateway against a fake order service: who gets through, what is forwarded, and how
//! order's answers and failures come back.

mod support;

use std::time::Duration;

use faultline_gateway::auth::Claims;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::Value;
use support::{fake_order, gateway, order_body, token, AUDIENCE, SECRET};

fn trace_id(traceparent: &str) -> &str {
    traceparent
        .split('-')
        .nth(1)
        .expect("a traceparent has a trace id")
}

fn signed(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(aud: &str, exp_from_now: i64) -> Claims {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    Claims {
        sub: "client-1".into(),
        aud: aud.into(),
        exp: (now + exp_from_now) as u64,
        roles: vec!["orders:read".into(), "orders:write".into()],
    }
}

async fn post_order(base: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/api/orders"))
        .header("Idempotency-Key", "key-1")
        .json(&order_body());
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn missing_malformed_expired_badly_signed_or_misaddressed_tokens_get_401() {
    let (order, recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1000).await;
    let cases = [
        ("missing", None),
        ("not bearer", Some("Basic dXNlcjpwdw==".to_string())),
        ("malformed", Some("Bearer not.a.jwt".to_string())),
        ("empty", Some("Bearer ".to_string())),
        (
            "expired",
            Some(format!("Bearer {}", signed(SECRET, &claims(AUDIENCE, -60)))),
        ),
        (
            "bad signature",
            Some(format!(
                "Bearer {}",
                signed("another-secret", &claims(AUDIENCE, 300))
            )),
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                signed(SECRET, &claims("elsewhere", 300))
            )),
        ),
    ];
    for (case, authorization) in cases {
        let response = post_order(&gw.base, authorization.as_deref()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\"",
            "{case}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized", "{case}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    assert!(
        recorder.all().is_empty(),
        "nothing unauthenticated reaches order"
    );
}

#[tokio::test]
async fn a_token_without_the_route_role_gets_403() {
    let (order, recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1000).await;
    let reader = token("reader", &["orders:read"]);
    let response = post_order(&gw.base, Some(&format!("Bearer {reader}"))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "forbidden"
    );

    let writer = token("writer", &["orders:write"]);
    let response = reqwest::Client::new()
        .get(format!("{}/api/orders/abc", gw.base))
        .bearer_auth(writer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(recorder.all().is_empty(), "nothing forbidden reaches order");
}

#[tokio::test]
async fn a_valid_post_is_forwarded_with_its_idempotency_key_in_the_gateways_trace() {
    let (order, recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1000).await;
    let bearer = format!("Bearer {}", token("client-1", &["orders:write"]));
    let response = post_order(&gw.base, Some(&bearer)).await;
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "order's status passes through"
    );
    let returned = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "PENDING");

    let seen = recorder.all();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/orders");
    assert_eq!(seen[0].idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(seen[0].body.as_ref(), Some(&order_body()));
    assert_eq!(
        seen[0].authorization, None,
        "the client's token stays at the gateway"
    );
    let forwarded = seen[0]
        .traceparent
        .as_deref()
        .expect("a traceparent is forwarded");
    assert_eq!(
        trace_id(forwarded),
        trace_id(&returned),
        "one trace, started at the gateway"
    );
}

#[tokio::test]
async fn an_incoming_trace_is_continued_not_replaced() {
    let (order, recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1000).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = reqwest::Client::new()
        .get(format!(
            "{}/api/orders/6f1c1c9e-8a52-4f3e-9b1e-2d3c4b5a6978",
            gw.base
        ))
        .bearer_auth(token("client-1", &["orders:read"]))
        .header("traceparent", incoming)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = recorder.all();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/orders/6f1c1c9e-8a52-4f3e-9b1e-2d3c4b5a6978");
    let forwarded = seen[0].traceparent.as_deref().unwrap();
    assert_eq!(trace_id(forwarded), trace_id(incoming));
    assert_ne!(forwarded, incoming, "the forwarded call is a child span");
}

/// Order's status and error code for `GET /api/orders/ID` through a gateway in front of the
/// fake order.
async fn read_through_gateway(id: &str) -> (StatusCode, Value) {
    let (order, _recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1000).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/orders/{id}", gw.base))
        .bearer_auth(token("client-1", &["orders:read"]))
        .send()
        .await
        .unwrap();
    (response.status(), response.json::<Value>().await.unwrap()["error"].clone())
}

#[tokio::test]
async fn orders_client_errors_pass_through_unchanged() {
    assert_eq!(read_through_gateway("missing").await, (StatusCode::NOT_FOUND, "not_found".into()));
}

#[tokio::test]
async fn an_internal_error_of_order_is_a_502_not_a_500_of_the_gateways_own() {
    assert_eq!(read_through_gateway("broken").await, (StatusCode::BAD_GATEWAY, "order_failed".into()));
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_others_do_not() {
    let (order, recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 2).await;
    let client = reqwest::Client::new();
    let get = |who: &str| {
        client
            .get(format!("{}/api/orders/abc", gw.base))
            .bearer_auth(token(who, &["orders:read"]))
            .send()
    };
    // The burst equals the rate: two pass at once, the third is refused. (Refilling one token
    // takes 500 ms; these requests take far less.)
    assert_eq!(get("greedy").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("greedy").await.unwrap().status(), StatusCode::OK);
    let refused = get("greedy").await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "rate_limited"
    );
    assert_eq!(
        recorder.all().len(),
        2,
        "the refused request never reached order"
    );

    assert_eq!(
        get("modest").await.unwrap().status(),
        StatusCode::OK,
        "limits are per client"
    );
}

#[tokio::test]
async fn an_unreachable_order_is_a_502_and_makes_the_gateway_unready() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let gw = gateway(&format!("http://{closed}"), 1000).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/api/orders/abc", gw.base))
        .bearer_auth(token("client-1", &["orders:read"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "order_unreachable"
    );

    let ready = client
        .get(format!("{}/health/ready", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let live = client
        .get(format!("{}/health/live", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_gateway_is_ready_while_order_is_live() {
    let (order, _recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 1000).await;
    let ready = reqwest::get(format!("{}/health/ready", gw.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_read_may_wait_for_the_saga_below_the_gateways_own_timeout() {
    let (order, recorder) = fake_order().await;
    let gw = gateway(&format!("http://{order}"), 100).await;
    let reader = token("reader", &["orders:read"]);
    let get = |query: &'static str| {
        let url = format!("{}/api/orders/o-1{query}", gw.base);
        let reader = reader.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(reader)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("").await.status(), 200);
    assert_eq!(get("?wait_ms=300").await.status(), 200);
    // The gateway waits 1 s for order: a longer wait is capped 250 ms below that.
    assert_eq!(get("?wait_ms=5000").await.status(), 200);
    for bad in ["?wait_ms=soon", "?wait_ms=10001", "?full=true"] {
        let answer = get(bad).await;
        assert_eq!(answer.status(), 400, "{bad}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "invalid_wait", "{bad}");
    }
    let paths: Vec<String> = recorder.all().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/orders/o-1", "/orders/o-1?wait_ms=300", "/orders/o-1?wait_ms=750"],
        "bad waits are not forwarded"
    );
}
