//! An async client for [Toxiproxy](https://github.com/Shopify/toxiproxy)'s HTTP API: the
//! hand that injects network faults between services.
//!
//! Toxiproxy is a TCP proxy with an HTTP control API. Each [`Proxy`] listens on an address
//! and forwards to an upstream service; the test points a service at the proxy instead of
//! the real dependency. Faults are then injected by
//!
//! - disabling the proxy ([`ToxiproxyClient::disable`]): a partition, connections are closed
//!   and refused until [`ToxiproxyClient::enable`];
//! - adding [`Toxic`]s: latency, bandwidth limits, timeouts, resets, slicing, data limits
//!   ([`ToxicKind`]), per direction ([`Stream`]) and for a fraction of connections
//!   (toxicity);
//! - [`ToxiproxyClient::reset`] to heal everything at once.
//!
//! Every call is one HTTP request with a timeout, and every failure is a typed
//! [`ToxiproxyError`]: an unreachable server is [`Transport`](ToxiproxyError::Transport), an
//! error status is [`Status`](ToxiproxyError::Status) with the server's own message (see
//! [`is_not_found`](ToxiproxyError::is_not_found),
//! [`is_conflict`](ToxiproxyError::is_conflict)). The client never panics and never reports
//! an error status as success, which is why the project does not use the `toxiproxy_rust`
//! crate.
//!
//! # Example
//!
//! ```no_run
//! use faultline_chaos::toxiproxy::{NewProxy, Stream, Toxic, ToxicKind, ToxiproxyClient};
//!
//! # async fn example() -> Result<(), faultline_chaos::toxiproxy::ToxiproxyError> {
//! let toxiproxy = ToxiproxyClient::new("http://127.0.0.1:8474")?;
//!
//! // Orders talk to Postgres through the proxy.
//! toxiproxy
//!     .create_proxy(&NewProxy::new("postgres", "0.0.0.0:20000", "postgres:5432"))
//!     .await?;
//!
//! // Slow every answer from Postgres by 300 ms.
//! let slow = Toxic::new("slow_db", ToxicKind::Latency { latency_ms: 300, jitter_ms: 0 })
//!     .with_stream(Stream::Downstream);
//! toxiproxy.add_toxic("postgres", &slow).await?;
//!
//! // Cut Postgres off, then heal.
//! toxiproxy.disable("postgres").await?;
//! toxiproxy.reset().await?; // re-enables every proxy and removes every toxic
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod proxy;
mod toxic;

pub use client::ToxiproxyClient;
pub use error::ToxiproxyError;
pub use proxy::{NewProxy, Proxy, ProxyUpdate};
pub use toxic::{Stream, Toxic, ToxicKind, ToxicUpdate};
