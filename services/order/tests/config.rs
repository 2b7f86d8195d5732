//! Configuration from `ORDER_*` variables: defaults, and every bad variable named at once.

use std::time::Duration;

use faultline_order::Config;

const REQUIRED: [(&str, &str); 4] = [
    ("ORDER_DATABASE_URL", "postgres://order:pw@127.0.0.1/order"),
    ("ORDER_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    ("ORDER_PAYMENT_URL", "http://127.0.0.1:8081/"),
    ("ORDER_INVENTORY_URL", "http://127.0.0.1:8082"),
];

#[test]
fn required_variables_alone_give_the_documented_defaults() {
    let config = Config::from_pairs(REQUIRED).expect("valid configuration");
    assert_eq!(config.payment_url, "http://127.0.0.1:8081");
    assert_eq!(config.http_addr.to_string(), "127.0.0.1:0");
    assert_eq!(config.call_timeout, Duration::from_millis(1000));
    assert_eq!(
        (config.payment_concurrency, config.inventory_concurrency),
        (16, 16)
    );
    let breaker = &config.circuit_breaker;
    assert_eq!(
        (breaker.sliding_window_size, breaker.minimum_number_of_calls),
        (20, 10)
    );
    assert_eq!(
        (
            breaker.failure_rate_threshold,
            breaker.slow_call_rate_threshold
        ),
        (50.0, 80.0)
    );
    assert_eq!(breaker.slow_call_duration_threshold, Duration::from_secs(2));
    assert_eq!(breaker.wait_duration_in_open_state, Duration::from_secs(5));
    assert_eq!(breaker.permitted_number_of_calls_in_half_open_state, 3);
    assert_eq!(config.saga.step_deadline, Duration::from_secs(20));
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let errors = Config::from_pairs([
        ("ORDER_DATABASE_URL", "mysql://x"),
        ("ORDER_PAYMENT_URL", "payment:8080"),
        ("ORDER_CALL_TIMEOUT_MS", "soon"),
        ("ORDER_CB_FAILURE_RATE", "150"),
        ("ORDER_PAYMENT_CONCURRENCY", "0"),
    ])
    .expect_err("bad configuration");
    let text = errors.to_string();
    for variable in [
        "ORDER_DATABASE_URL=mysql://x",
        "ORDER_KAFKA_BOOTSTRAP: required",
        "ORDER_PAYMENT_URL=payment:8080",
        "ORDER_INVENTORY_URL: required",
        "ORDER_CALL_TIMEOUT_MS=soon",
        "ORDER_CB_FAILURE_RATE=150",
        "ORDER_PAYMENT_CONCURRENCY=0",
    ] {
        assert!(
            text.contains(variable),
            "`{variable}` missing from:\n{text}"
        );
    }
}
