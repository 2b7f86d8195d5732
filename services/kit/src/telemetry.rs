//! Logs as JSON lines carrying trace ids, and the HTTP middleware that gives every request its
//! trace context, its log line and its metrics.
//!
//! ```no_run
//! use axum::{middleware, routing::get, Router};
//! faultline_kit::telemetry::init("order");
//! let app: Router = Router::new()
//!     .route("/orders/{id}", get(|| async { "ok" }))
//!     .layer(middleware::from_fn(faultline_kit::telemetry::trace_requests));
//! ```
//!
//! One line per event on stdout, e.g.
//! `{"timestamp":"…","level":"INFO","service":"order","target":"faultline_kit::telemetry","trace_id":"4bf9…","span_id":"00f0…","message":"request served","method":"GET","path":"/orders/7","status":200,"latency_ms":3}`.
//! `trace_id`/`span_id` appear when the event happens inside a [`TraceContext::scope`], as
//! request handlers and Kafka handlers do. Verbosity comes from `RUST_LOG` (default `info`).
//! Fields whose name says they are secret (`password`, `secret`, `token`, `authorization`) are
//! logged as `<redacted>`.
//!
//! [`trace_requests`] reads `traceparent` (or starts a new trace), runs the rest of the stack
//! inside the request's context, logs method, path, status and latency, records the
//! [`crate::metrics`] request counter and latency histogram, and returns the request's
//! `traceparent` on the response so a caller can find the server's logs.

use std::fmt;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::trace::{TraceContext, TRACEPARENT};

/// Installs JSON-lines logging to stdout for `service`, filtered by `RUST_LOG` (default
/// `info`). Does nothing if a global subscriber is already installed (a second call, a test).
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .event_format(JsonLines::new(service))
        .with_writer(std::io::stdout);
    let _already_installed = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// The event format: one JSON object per line, with `service` and the current trace ids.
#[derive(Debug, Clone)]
pub struct JsonLines {
    service: String,
}

impl JsonLines {
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_string(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert("service".into(), Value::String(self.service.clone()));
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_string()),
        );
        if let Some(context) = TraceContext::current() {
            line.insert("trace_id".into(), Value::String(context.trace_id()));
            line.insert("span_id".into(), Value::String(context.span_id()));
        }
        if let Some(span) = ctx.lookup_current() {
            line.insert("span".into(), Value::String(span.name().to_string()));
        }
        event.record(&mut JsonFields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonFields<'a>(&'a mut Map<String, Value>);

impl JsonFields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let lower = name.to_ascii_lowercase();
        let secret = ["password", "secret", "token", "authorization"]
            .iter()
            .any(|word| lower.contains(word));
        let value = if secret {
            Value::String("<redacted>".into())
        } else {
            value
        };
        self.0.insert(name.to_string(), value);
    }
}

impl Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
}

/// Axum middleware (use with `axum::middleware::from_fn`): trace context, request log line and
/// request metrics. Apply it with `Router::layer` so the matched route is known.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let context = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::new_root, |parent| parent.child());
    let method = request.method().to_string();
    let path = request.uri().path().to_string(); // never the query: it may carry tokens
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_string(),
        |matched| matched.as_str().to_string(),
    );
    let started = Instant::now();
    context
        .scope(async move {
            let mut response = next.run(request).await;
            let latency = started.elapsed();
            let status = response.status().as_u16();
            crate::metrics::record_http_request(&method, &route, status, latency);
            let latency_ms = latency.as_secs_f64() * 1000.0;
            // Probes and scrapes arrive every few seconds; they would drown the useful lines.
            if route.starts_with("/health/") || route == "/metrics" {
                tracing::debug!(%method, %path, status, latency_ms, "request served");
            } else if status >= 500 {
                tracing::warn!(%method, %path, status, latency_ms, "request served");
            } else {
                tracing::info!(%method, %path, status, latency_ms, "request served");
            }
            if let Ok(value) = HeaderValue::from_str(&context.to_traceparent()) {
                response.headers_mut().insert(TRACEPARENT, value);
            }
            response
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

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

    #[tokio::test(flavor = "current_thread")]
    async fn each_event_is_one_json_line_with_service_and_trace_ids_and_no_secrets() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines::new("order"))
                .with_writer(move || sink.clone()),
        );
        let _guard = tracing::subscriber::set_default(subscriber);
        let context = TraceContext::new_root();
        tracing::info!("outside");
        context
            .scope(async { tracing::info!(order_id = 7, token = "abc", "inside") })
            .await;

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["service"], "order");
        assert_eq!(lines[0]["message"], "outside");
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["trace_id"], context.trace_id());
        assert_eq!(lines[1]["span_id"], context.span_id());
        assert_eq!(lines[1]["order_id"], 7);
        assert_eq!(lines[1]["token"], "<redacted>");
    }
}
