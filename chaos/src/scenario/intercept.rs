//! Request-level faults (`kind = "request"`): on a link between two services that speak HTTP,
//! faultline's request proxy picks requests by method and path — every one, the n-th, or a
//! seeded fraction — and answers them itself, cuts them, delays them, holds them, or sends
//! them twice.
//!
//! ```toml
//! [[faults]]
//! start = "5s"
//! duration = "10s"
//! target = "order->payment"
//! kind = "request"
//! method = "POST"
//! path = "/payments*"       # a path, or a prefix ending in *; any when left out
//! action = "drop_answer"    # forward it, then cut the connection: the effect happened
//! nth = 1                   # only the first matching request; or fraction = 0.5; else every one
//! ```
//!
//! `action = "status"` answers `status` without forwarding, with faultline's JSON error body
//! unless `body` gives one (`body = ""`: none at all, as a load balancer's 502 often has).
//!
//! A program point instead of a wall-clock time: kill (or pause) the link's caller or callee
//! right when a matching request is sent, or right after the callee answered it:
//!
//! ```toml
//! action = "kill"           # or "pause"; the service comes back when the fault heals
//! service = "order"         # the link's caller (default) or callee
//! when = "answered"         # or "sent"
//! ```

use std::time::Duration;

use super::fields::Fields;
use super::ScenarioError;

/// What a request-level fault does to the requests it hits.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestAction {
    /// Answered with this status without being forwarded: with this body (`body`, as it is:
    /// `""` for none, as a load balancer often sends), or else faultline's JSON error body.
    Status(u16, Option<String>),
    /// The caller's connection reset before anything is forwarded.
    Reset,
    /// Forwarded and answered, then the caller's connection reset instead of the answer: the
    /// effect happened and the caller never hears of it.
    DropAnswer,
    /// Forwarded after this delay (past the caller's timeout, typically).
    Delay(Duration),
    /// Never forwarded and never answered, until the caller gives up.
    Hold,
    /// Forwarded twice, one after the other; the caller gets the first answer.
    Duplicate,
    /// A program point: `service` (the link's caller or callee) is killed with SIGKILL — or
    /// paused with SIGSTOP when `pause` — right when the request is sent, or right after the
    /// callee answered and before the caller hears. Once per fault, at the first request it
    /// hits; the service is restarted (or continued) when the fault heals.
    Stop {
        /// The service stopped: the link's caller or callee.
        service: String,
        /// The point of the request's flow.
        when: When,
        /// Paused (SIGSTOP) rather than killed.
        pause: bool,
    },
}

/// The point of a request's flow at which a [`RequestAction::Stop`] strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The request reached the link (the caller sent it); it is still forwarded.
    Sent,
    /// The callee answered; the answer is not passed on.
    Answered,
}

impl RequestAction {
    /// The name a scenario spells it with.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Status(..) => "status",
            Self::Reset => "reset",
            Self::DropAnswer => "drop_answer",
            Self::Delay(_) => "delay",
            Self::Hold => "hold",
            Self::Duplicate => "duplicate",
            Self::Stop { pause: false, .. } => "kill",
            Self::Stop { pause: true, .. } => "pause",
        }
    }
}

/// Which of the matching requests a request-level fault hits, counted from when it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Which {
    /// Every one.
    Every,
    /// Only the n-th (from 1).
    Nth(u32),
    /// Each with this probability, drawn from the run's seed.
    Fraction(f64),
}

impl Which {
    /// `every one`, `the 2nd`, `25% of them`.
    pub fn describe(self) -> String {
        match self {
            Which::Every => "every one".to_string(),
            Which::Nth(n) => format!("the {}", ordinal(n)),
            Which::Fraction(f) => format!("{:.0}% of them", f * 100.0),
        }
    }
}

/// A request-level fault on a service-to-service link.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFault {
    /// Only requests of this method (any when `None`).
    pub method: Option<String>,
    /// Only requests whose path (the query left out) is this: a segment `*` stands for any
    /// one segment (`/reservations/*/commit`), and a final `*` makes the rest a prefix
    /// (`/payments*`). Any when `None`.
    pub path: Option<String>,
    /// Which of the matching requests it hits.
    pub which: Which,
    /// What it does to them.
    pub action: RequestAction,
}

impl RequestFault {
    /// Whether a request of `method` to `path` (a query is ignored) is one this fault picks
    /// from.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method));
        let path_ok = self
            .path
            .as_deref()
            .is_none_or(|pattern| path_matches(pattern, path));
        method_ok && path_ok
    }

    /// `drop_answer of POST /payments*, the 1st`: for the terminal and reports.
    pub fn describe(&self) -> String {
        let action = match &self.action {
            RequestAction::Status(code, None) => format!("status {code}"),
            RequestAction::Status(code, Some(body)) if body.is_empty() => {
                format!("status {code} with an empty body")
            }
            RequestAction::Status(code, Some(body)) => {
                format!("status {code} with a body of {} bytes", body.len())
            }
            RequestAction::Delay(delay) => format!("delay {}ms", delay.as_millis()),
            RequestAction::Stop { service, when, .. } => format!(
                "{} {service} when {}",
                self.action.name(),
                match when {
                    When::Sent => "sent",
                    When::Answered => "answered",
                }
            ),
            other => other.name().to_string(),
        };
        let which = self.which.describe();
        format!(
            "{action} of {} {}, {which}",
            self.method.as_deref().unwrap_or("any method"),
            self.path.as_deref().unwrap_or("any path")
        )
    }
}

/// Whether `path` fits `pattern`: segment by segment, `*` standing for any one segment; a
/// final `*` lets the last segment be a prefix, and more segments follow.
fn path_matches(pattern: &str, path: &str) -> bool {
    let segment = |p: &str, s: &str| p == s || (p == "*" && !s.is_empty());
    let (body, prefix) = match pattern.strip_suffix('*') {
        // A lone final `*` segment is a one-segment wildcard, not a prefix.
        Some(body) if !body.ends_with('/') || body.is_empty() => (body, true),
        _ => (pattern, false),
    };
    let body: Vec<&str> = body.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    let Some((last, leading)) = body.split_last() else {
        return false;
    };
    if prefix {
        path.len() >= body.len()
            && leading.iter().zip(&path).all(|(p, s)| segment(p, s))
            && path[body.len() - 1].starts_with(last)
    } else {
        path.len() == body.len() && body.iter().zip(&path).all(|(p, s)| segment(p, s))
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Reads `nth` or `fraction` (neither: every matching request or statement).
pub(super) fn read_which(fields: &mut Fields<'_>) -> Result<Which, ScenarioError> {
    let nth = fields.integer_in("nth", 1..=1_000_000)?;
    let fraction = fields.number_in("fraction", 0.0..=1.0)?;
    Ok(match (nth, fraction) {
        (Some(_), Some(_)) => {
            return Err(fields.error(
                "fraction",
                "give nth or fraction, not both (neither: every matching request)",
            ))
        }
        (Some(n), None) => Which::Nth(n as u32),
        (None, Some(f)) if f > 0.0 => Which::Fraction(f),
        (None, Some(_)) => {
            return Err(fields.error("fraction", "expected more than 0: a fault must hit something"))
        }
        (None, None) => Which::Every,
    })
}

pub(super) const ACTIONS: &str = "status, reset, drop_answer, delay, hold, duplicate, kill or pause";

/// Reads the fields of a `kind = "request"` fault on the link `caller->callee` (already
/// checked to be one between two services).
pub(super) fn read(
    fields: &mut Fields<'_>,
    caller: &str,
    callee: &str,
) -> Result<RequestFault, ScenarioError> {
    let method = fields.string("method", "an HTTP method such as \"POST\"")?;
    if let Some(method) = &method {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(fields.error(
                "method",
                format!("expected an HTTP method such as \"POST\", found {method:?}"),
            ));
        }
    }
    let path = fields.string("path", "a path such as \"/payments\" or a prefix \"/payments*\"")?;
    if let Some(path) = &path {
        let body = path.strip_suffix('*').unwrap_or(path);
        let wild_inside = body.split('/').any(|segment| segment.contains('*') && segment != "*");
        if !path.starts_with('/') || wild_inside {
            return Err(fields.error(
                "path",
                format!(
                    "expected a path starting with / whose segments are names or * (one segment), with an optional final * for a prefix; found {path:?}"
                ),
            ));
        }
    }
    let which = read_which(fields)?;
    let name = fields.required_string("action", ACTIONS)?;
    let action = match name.as_str() {
        "status" => RequestAction::Status(
            fields
                .integer_in("status", 100..=599)?
                .ok_or_else(|| fields.error("status", "required: the status to answer with"))?
                as u16,
            fields.string("body", "the body to answer with, as it is (\"\" for none)")?,
        ),
        "reset" => RequestAction::Reset,
        "drop_answer" => RequestAction::DropAnswer,
        "delay" => {
            let delay = fields.required_duration("delay")?;
            if delay.is_zero() {
                return Err(fields.error("delay", "expected more than 0s"));
            }
            RequestAction::Delay(delay)
        }
        "hold" => RequestAction::Hold,
        "duplicate" => RequestAction::Duplicate,
        "kill" | "pause" => {
            let service = fields
                .string("service", "the link's caller or callee")?
                .unwrap_or_else(|| caller.to_string());
            if service != caller && service != callee {
                return Err(fields.error(
                    "service",
                    format!("expected the link's caller ({caller:?}) or callee ({callee:?}), found {service:?}"),
                ));
            }
            let when = match fields.required_string("when", "\"sent\" or \"answered\"")?.as_str() {
                "sent" => When::Sent,
                "answered" => When::Answered,
                other => {
                    return Err(fields.error(
                        "when",
                        format!("expected \"sent\" or \"answered\", found {other:?}"),
                    ))
                }
            };
            RequestAction::Stop {
                service,
                when,
                pause: name == "pause",
            }
        }
        other => {
            return Err(fields.error(
                "action",
                format!("unknown action {other:?}; expected {ACTIONS}"),
            ))
        }
    };
    Ok(RequestFault {
        method: method.map(|m| m.to_ascii_uppercase()),
        path,
        which,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(method: Option<&str>, path: Option<&str>) -> RequestFault {
        RequestFault {
            method: method.map(Into::into),
            path: path.map(Into::into),
            which: Which::Every,
            action: RequestAction::Reset,
        }
    }

    #[test]
    fn requests_match_by_method_and_path_or_prefix_ignoring_the_query() {
        let exact = fault(Some("POST"), Some("/payments"));
        assert!(exact.matches("POST", "/payments"));
        assert!(exact.matches("post", "/payments?x=1"));
        assert!(!exact.matches("GET", "/payments"));
        assert!(!exact.matches("POST", "/payments/1"));
        let prefix = fault(None, Some("/payments*"));
        assert!(prefix.matches("GET", "/payments/1/refund"));
        assert!(!prefix.matches("GET", "/refunds"));
        assert!(fault(None, None).matches("DELETE", "/anything"));
        // A `*` segment is any one segment.
        let commit = fault(None, Some("/reservations/*/commit"));
        assert!(commit.matches("POST", "/reservations/9f2c/commit"));
        assert!(!commit.matches("POST", "/reservations/9f2c/release"));
        assert!(!commit.matches("POST", "/reservations//commit"));
        assert!(!commit.matches("POST", "/reservations/9f2c/commit/now"));
        let one = fault(None, Some("/orders/*"));
        assert!(one.matches("GET", "/orders/1?wait_ms=100"));
        assert!(!one.matches("GET", "/orders/1/items"));
        let below = fault(None, Some("/orders/*/items*"));
        assert!(below.matches("GET", "/orders/1/items/2"));
        assert!(!below.matches("GET", "/orders/1"));
    }

    #[test]
    fn a_fault_describes_itself() {
        let mut f = fault(Some("POST"), Some("/payments*"));
        f.action = RequestAction::DropAnswer;
        f.which = Which::Nth(2);
        assert_eq!(f.describe(), "drop_answer of POST /payments*, the 2nd");
        f.action = RequestAction::Status(503, None);
        f.which = Which::Fraction(0.25);
        assert_eq!(f.describe(), "status 503 of POST /payments*, 25% of them");
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(23), "23rd");
    }
}
