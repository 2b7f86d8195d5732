//! `http <name>`: a request to one of the system's services once the run has settled, and the
//! answer it must get — a status (any 2xx when the scenario names none) and, optionally, a
//! value at a JSON pointer of the body. What a service says of itself after the faults (a
//! balance, a health detail, a count) is an invariant too.
//!
//! ```toml
//! [[expectations.http]]
//! name = "alice-balance-reads"
//! service = "ledger"
//! path = "/accounts/alice"
//! status = 200
//! pointer = "/name"
//! equals = "alice"
//! ```
//!
//! The request goes to the service's own port, not through a proxy; a transport error or a
//! timeout (10 s) fails the verdict with what happened.

use std::time::Duration;

use faultline_chaos::scenario::HttpCheck;
use serde_json::Value;

use super::{BoxFuture, CheckContext, Checker, Counterexample, Verdict};

/// The checker of one `[[expectations.http]]`.
pub struct HttpChecker(pub HttpCheck);

impl Checker for HttpChecker {
    fn name(&self) -> String {
        format!("http {}", self.0.name)
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.name();
            let check = &self.0;
            let base = match run.stack.service_url(&check.service) {
                Ok(base) => base,
                Err(e) => return Verdict::cannot_judge(&name, e.to_string()),
            };
            let url = format!("{base}{}", check.path);
            let answer = async {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| e.to_string())?;
                let method = reqwest::Method::from_bytes(check.method.as_bytes())
                    .map_err(|e| e.to_string())?;
                let response = client
                    .request(method, &url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let body = response.text().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, body))
            }
            .await;
            match answer {
                Ok((status, body)) => judge(check, &name, &url, status, &body),
                Err(e) => Verdict::cannot_judge(&name, format!("{} {url}: {e}", check.method)),
            }
        })
    }
}

/// Judges an answer (pure).
pub fn judge(check: &HttpCheck, name: &str, url: &str, status: u16, body: &str) -> Verdict {
    let mut counterexamples = Vec::new();
    let status_ok = match check.status {
        Some(expected) => status == expected,
        None => (200..300).contains(&status),
    };
    if !status_ok {
        counterexamples.push(Counterexample::new(
            format!(
                "{} {url} answered {status}, expected {}: {}",
                check.method,
                check.status.map_or("a 2xx".to_string(), |s| s.to_string()),
                excerpt(body)
            ),
            vec![],
            vec![],
        ));
    }
    if let Some((pointer, expected)) = &check.body {
        let found = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|json| json.pointer(pointer).cloned());
        let same = match (&found, expected) {
            (Some(a), b) => a == b || (a.as_f64().is_some() && a.as_f64() == b.as_f64()),
            (None, _) => false,
        };
        if !same {
            counterexamples.push(Counterexample::new(
                format!(
                    "{pointer} of the body is {}, expected {expected}",
                    found.map_or("missing".to_string(), |v| v.to_string())
                ),
                vec![],
                vec![],
            ));
        }
    }
    Verdict::new(
        name,
        format!("{} {url} answered {status}", check.method),
        counterexamples,
    )
}

/// The start of a body, for a counterexample.
fn excerpt(body: &str) -> String {
    let cut: String = body.chars().take(200).collect();
    if cut.len() < body.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(status: Option<u16>, body: Option<(&str, Value)>) -> HttpCheck {
        HttpCheck {
            name: "t".into(),
            service: "ledger".into(),
            method: "GET".into(),
            path: "/accounts/alice".into(),
            status,
            body: body.map(|(p, v)| (p.to_string(), v)),
        }
    }

    #[test]
    fn any_2xx_holds_when_no_status_is_named_and_others_fail_quoting_the_body() {
        assert!(judge(&check(None, None), "http t", "u", 204, "").ok);
        let verdict = judge(&check(None, None), "http t", "u", 503, "{\"error\":\"down\"}");
        assert!(!verdict.ok);
        assert!(verdict.counterexamples[0]
            .description
            .contains("answered 503, expected a 2xx: {\"error\":\"down\"}"));
        assert!(!judge(&check(Some(201), None), "http t", "u", 200, "").ok);
    }

    #[test]
    fn the_value_at_the_pointer_must_equal_the_expected_one() {
        let expecting = check(None, Some(("/balance", json!(1000))));
        assert!(judge(&expecting, "http t", "u", 200, "{\"balance\": 1000}").ok);
        assert!(judge(&expecting, "http t", "u", 200, "{\"balance\": 1000.0}").ok);
        let verdict = judge(&expecting, "http t", "u", 200, "{\"balance\": 990}");
        assert!(!verdict.ok);
        assert_eq!(
            verdict.counterexamples[0].description,
            "/balance of the body is 990, expected 1000"
        );
        let missing = judge(&expecting, "http t", "u", 200, "not json");
        assert!(missing.counterexamples[0].description.contains("is missing"));
    }
}
