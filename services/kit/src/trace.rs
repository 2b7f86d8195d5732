//! W3C Trace Context: the `traceparent` header that ties one request's work together across
//! services, over HTTP headers and Kafka message headers alike.
//!
//! A request handler parses the incoming header (or starts a new trace), runs its work inside
//! [`TraceContext::scope`], and everything it calls reads [`TraceContext::current`] to pass a
//! child context on:
//!
//! ```
//! use faultline_kit::trace::TraceContext;
//! # async fn demo() {
//! let incoming = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! let context = incoming.unwrap_or_else(TraceContext::new_root);
//! context.scope(async {
//!     let outgoing = TraceContext::current().expect("inside the scope").child();
//!     assert_eq!(outgoing.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
//!     let _header = outgoing.to_traceparent(); // send this as `traceparent`
//! }).await;
//! # }
//! ```

use std::fmt::Write as _;
use std::future::Future;

/// The header (HTTP) and message header (Kafka) name.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A position in a trace: which trace, which span within it, and whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// A new trace, sampled, with random ids.
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero_random(),
            span_id: nonzero_random(),
            flags: 0x01,
        }
    }

    /// A new span in the same trace, for an outgoing call.
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero_random(),
            ..*self
        }
    }

    /// Parses a version-00 `traceparent` value; `None` when it is malformed, names an unknown
    /// version layout, or carries the all-zero ids the specification forbids.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four fields; future versions may append more.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        hex_decode::<1>(version)?;
        let trace_id = hex_decode::<16>(trace)?;
        let span_id = hex_decode::<8>(span)?;
        let [flags] = hex_decode::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The `traceparent` header value.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            self.flags
        )
    }

    /// The trace id as 32 lowercase hex digits (what logs carry as `trace_id`).
    pub fn trace_id(&self) -> String {
        hex_encode(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex_encode(&self.span_id)
    }

    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The context of the task running now, if it runs inside a [`scope`](Self::scope).
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|context| *context).ok()
    }

    /// Runs `work` with `self` as the current context.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = std::array::from_fn(|_| rand::random::<u8>());
        if bytes != [0; N] {
            return bytes;
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn hex_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_round_trips() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(header).unwrap();
        assert_eq!(context.to_traceparent(), header);
        assert!(context.sampled());
    }

    #[test]
    fn malformed_or_forbidden_values_are_rejected() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?} must be rejected");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.span_id(), root.span_id());
        assert_eq!(TraceContext::parse(&child.to_traceparent()), Some(child));
    }

    #[tokio::test]
    async fn the_current_context_is_visible_inside_its_scope_only() {
        assert_eq!(TraceContext::current(), None);
        let root = TraceContext::new_root();
        let seen = root.scope(async { TraceContext::current() }).await;
        assert_eq!(seen, Some(root));
        assert_eq!(TraceContext::current(), None);
    }
}
