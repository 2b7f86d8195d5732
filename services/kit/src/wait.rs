//! Reads that wait: `?wait_ms=N` on a read of something that finishes later (an order whose
//! saga runs) asks the service to answer as soon as it has finished, at most N ms, instead of
//! the client polling. [`wait_of`] reads the parameter the same way in every service.
//!
//! ```
//! use faultline_kit::wait::wait_of;
//! assert_eq!(wait_of(Some("wait_ms=250")), Ok(250));
//! assert_eq!(wait_of(None), Ok(0));
//! assert!(wait_of(Some("wait_ms=soon")).is_err());
//! ```

/// The longest a read may wait.
pub const MAX_WAIT_MS: u64 = 10_000;

/// `wait_ms` of a query string (0 when absent); the only parameter a waiting read takes. The
/// error says which parameter is wrong and what was expected (for a `400 invalid_wait`).
pub fn wait_of(query: Option<&str>) -> Result<u64, String> {
    let mut wait = 0;
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "wait_ms" {
            return Err(format!("unknown query parameter `{key}`; known: wait_ms"));
        }
        wait = match value.parse::<u64>() {
            Ok(ms) if ms <= MAX_WAIT_MS => ms,
            _ => {
                return Err(format!(
                    "wait_ms: expected a whole number of milliseconds from 0 to {MAX_WAIT_MS}, found `{value}`"
                ))
            }
        };
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_waits_only_for_a_wait_ms_in_range() {
        assert_eq!(wait_of(None), Ok(0));
        assert_eq!(wait_of(Some("")), Ok(0));
        assert_eq!(wait_of(Some("wait_ms=250")), Ok(250));
        assert_eq!(wait_of(Some("wait_ms=10000")), Ok(MAX_WAIT_MS));
        for bad in ["wait_ms=10001", "wait_ms=-1", "wait_ms=", "wait_ms", "wait_ms=1s"] {
            let error = wait_of(Some(bad)).unwrap_err();
            assert!(error.starts_with("wait_ms: expected"), "{bad}: {error}");
        }
        let error = wait_of(Some("wait=5")).unwrap_err();
        assert!(error.contains("unknown query parameter `wait`"), "{error}");
    }
}
