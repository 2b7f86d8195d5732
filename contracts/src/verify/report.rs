//! Verification results: per interaction (verdict, mismatches, timings), per pact, and for a
//! whole run — as JSON (`verification.json`), JUnit XML (`verification.junit.xml`: one test
//! suite per pact, one test case per interaction, failures carrying the mismatches) and text.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::matching::Mismatch;

/// The version of the JSON form below.
pub const REPORT_VERSION: u32 = 1;

/// How one interaction fared.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider did what the consumer expects.
    Passed,
    /// It did not; every difference.
    Failed(Vec<Mismatch>),
    /// The interaction could not be judged (state setup failed, provider unreachable, ...).
    Error(String),
}

impl Outcome {
    /// `passed`, `failed` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::Error(_) => "error",
        }
    }
}

/// One interaction's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionResult {
    pub description: String,
    /// `Synchronous/HTTP` or `Asynchronous/Messages`.
    pub kind: String,
    pub provider_states: Vec<String>,
    /// A pending interaction's failure does not fail the verification.
    pub pending: bool,
    pub outcome: Outcome,
    /// State setup, replay and matching.
    pub duration: Duration,
}

impl InteractionResult {
    /// True when it passed, or failed while pending.
    pub fn holds(&self) -> bool {
        self.pending || self.outcome == Outcome::Passed
    }

    /// The verdict as one line per problem, naming the interaction and the JSON path.
    pub fn problems(&self) -> Vec<String> {
        match &self.outcome {
            Outcome::Passed => Vec::new(),
            Outcome::Failed(mismatches) => mismatches
                .iter()
                .map(|m| format!("interaction {:?}: {m}", self.description))
                .collect(),
            Outcome::Error(why) => vec![format!("interaction {:?}: {why}", self.description)],
        }
    }
}

/// The verdicts for one pact file.
#[derive(Debug, Clone, PartialEq)]
pub struct PactResult {
    /// Where the pact was read from.
    pub source: String,
    pub consumer: String,
    pub provider: String,
    pub interactions: Vec<InteractionResult>,
    pub duration: Duration,
}

impl PactResult {
    /// True when every interaction holds.
    pub fn holds(&self) -> bool {
        self.interactions.iter().all(InteractionResult::holds)
    }
}

/// A verification run: every pact verified.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub pacts: Vec<PactResult>,
    /// Wall time of the whole run (provider start-up excluded).
    pub duration: Duration,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn mismatch_json(m: &Mismatch) -> Value {
    json!({
        "part": m.part.to_string(),
        "path": m.path,
        "expected": m.expected,
        "actual": m.actual,
        "rule": m.rule,
        "message": m.message,
    })
}

impl Report {
    /// True when every pact holds.
    pub fn holds(&self) -> bool {
        self.pacts.iter().all(PactResult::holds)
    }

    /// (interactions, passed, failed, errors, pending failures).
    pub fn counts(&self) -> (usize, usize, usize, usize, usize) {
        let all = self.pacts.iter().flat_map(|p| &p.interactions);
        let (mut n, mut passed, mut failed, mut errors, mut pending) = (0, 0, 0, 0, 0);
        for i in all {
            n += 1;
            match (&i.outcome, i.pending) {
                (Outcome::Passed, _) => passed += 1,
                (_, true) => pending += 1,
                (Outcome::Failed(_), false) => failed += 1,
                (Outcome::Error(_), false) => errors += 1,
            }
        }
        (n, passed, failed, errors, pending)
    }

    /// Interactions verified per second of wall time.
    pub fn throughput(&self) -> f64 {
        let (n, ..) = self.counts();
        if self.duration.is_zero() {
            0.0
        } else {
            n as f64 / self.duration.as_secs_f64()
        }
    }

    /// The JSON form (`verification.json`).
    pub fn to_json(&self) -> Value {
        let (n, passed, failed, errors, pending) = self.counts();
        json!({
            "version": REPORT_VERSION,
            "ok": self.holds(),
            "summary": {
                "interactions": n, "passed": passed, "failed": failed, "errors": errors,
                "pending_failures": pending,
                "duration_ms": millis(self.duration),
                "interactions_per_second": (self.throughput() * 100.0).round() / 100.0,
            },
            "pacts": self.pacts.iter().map(|p| json!({
                "source": p.source,
                "consumer": p.consumer,
                "provider": p.provider,
                "ok": p.holds(),
                "duration_ms": millis(p.duration),
                "interactions": p.interactions.iter().map(|i| {
                    let mut v = json!({
                        "description": i.description,
                        "type": i.kind,
                        "provider_states": i.provider_states,
                        "pending": i.pending,
                        "outcome": i.outcome.as_str(),
                        "duration_ms": millis(i.duration),
                    });
                    match &i.outcome {
                        Outcome::Failed(m) => v["mismatches"] = m.iter().map(mismatch_json).collect(),
                        Outcome::Error(why) => v["error"] = json!(why),
                        Outcome::Passed => {}
                    }
                    v
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The JUnit XML form: a suite per pact, a case per interaction.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let (n, _, failed, errors, _) = self.counts();
        let _ = writeln!(
            out,
            "<testsuites name=\"contract verification\" tests=\"{n}\" failures=\"{failed}\" errors=\"{errors}\" time=\"{:.3}\">",
            self.duration.as_secs_f64()
        );
        for pact in &self.pacts {
            let failures = pact
                .interactions
                .iter()
                .filter(|i| !i.pending && matches!(i.outcome, Outcome::Failed(_)))
                .count();
            let errs = pact
                .interactions
                .iter()
                .filter(|i| !i.pending && matches!(i.outcome, Outcome::Error(_)))
                .count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errs}\" time=\"{:.3}\">",
                escape_markup(&format!("{} -> {}", pact.consumer, pact.provider)),
                pact.interactions.len(),
                pact.duration.as_secs_f64()
            );
            for i in &pact.interactions {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    escape_markup(&format!("{}.{}", pact.consumer, pact.provider)),
                    escape_markup(&i.description),
                    i.duration.as_secs_f64()
                );
                let body = i.problems().join("\n");
                match (&i.outcome, i.pending) {
                    (Outcome::Passed, _) => out.push_str("/>\n"),
                    (_, true) => {
                        let _ = write!(
                            out,
                            ">\n      <skipped message=\"pending interaction failed\">{}</skipped>\n    </testcase>\n",
                            escape_markup(&body)
                        );
                    }
                    (Outcome::Failed(m), false) => {
                        let _ = write!(
                            out,
                            ">\n      <failure message=\"{} mismatch(es)\" type=\"mismatch\">{}</failure>\n    </testcase>\n",
                            m.len(),
                            escape_markup(&body)
                        );
                    }
                    (Outcome::Error(why), false) => {
                        let _ = write!(
                            out,
                            ">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>\n",
                            escape_markup(why),
                            escape_markup(&body)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }

    /// A human summary: one line per interaction, problems indented under it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for pact in &self.pacts {
            let _ = writeln!(
                out,
                "{} -> {} ({}): {}",
                pact.consumer,
                pact.provider,
                pact.source,
                if pact.holds() { "ok" } else { "FAILED" }
            );
            for i in &pact.interactions {
                let mark = match (&i.outcome, i.pending) {
                    (Outcome::Passed, _) => "ok     ",
                    (_, true) => "pending",
                    (Outcome::Failed(_), false) => "FAILED ",
                    (Outcome::Error(_), false) => "ERROR  ",
                };
                let _ = writeln!(
                    out,
                    "  {mark} {} ({} ms)",
                    i.description,
                    i.duration.as_millis()
                );
                for p in i.problems() {
                    let _ = writeln!(out, "          {p}");
                }
            }
        }
        let (n, passed, failed, errors, pending) = self.counts();
        let _ = writeln!(
            out,
            "{n} interaction(s): {passed} passed, {failed} failed, {errors} error(s), {pending} pending failure(s) in {:.2} s ({:.1} interactions/s)",
            self.duration.as_secs_f64(),
            self.throughput()
        );
        out
    }
}

/// Escapes text for HTML and XML element content and attribute values, and drops the control
/// characters XML 1.0 cannot hold (a recorded payload may carry any byte). Every report format
/// faultline writes (JUnit, HTML) escapes through this one function.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}
