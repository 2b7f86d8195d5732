//! What an operation promises the client that sends it: the statuses it answers with, rules
//! on the body of a success, and how fast — without a fault, and while one is on. Every
//! answer of a run is judged against the promise of its operation (the verdict `answers`):
//! an answer given while a fault was on (in flight at any moment from the fault's start to
//! `recovery` after its heal) against the promise `under_fault`, any other against the
//! normal one.
//!
//! ```toml
//! [[workload.operations]]
//! name = "place_order"
//! # …
//! [workload.operations.answers]
//! status = [202, 409]                       # or classes: ["2xx", 409]
//! body = [{ pointer = "/order_id" }]        # on a 2xx: the value is there and not null
//! within = "2s"                             # an answer (any status) within this time
//! recovery = "10s"                          # after a heal, still judged as under the fault
//! [workload.operations.answers.under_fault]
//! status = [202, 409, 503]
//! fallback = [{ status = "QUEUED" }]        # a 2xx with exactly this body is acceptable too
//! within = "6s"
//! ```
//!
//! Body rules, each on the JSON of a 2xx answer: `{ pointer = "/p" }` (present, not null),
//! `{ pointer = "/p", equals = V }`, `{ pointer = "/p", one_of = [V, W] }`, and
//! `{ contains = "text" }` on the body as text.
//!
//! An operation that declares nothing promises [the default](Promise::default): no 5xx but
//! 502, 503 and 504 — the statuses that say honestly that something behind the service
//! failed — and that is all. A 500 says the service itself broke. Declared statuses are the
//! normal ones; under a fault they are joined by 502, 503 and 504 unless `under_fault` lists
//! its own. `under_fault`'s body rules are the normal ones unless it gives its own; its
//! `within` is unbounded unless it gives one.

use std::time::Duration;

use serde_json::Value;

use super::fields::Fields;
use super::ScenarioError;

/// The statuses a fault may add to an operation's answers without breaking its promise: a
/// dependency failed, was unavailable, or did not answer in time.
pub const DEPENDENCY_FAILED: [u16; 3] = [502, 503, 504];

/// How long after a heal answers are still judged against the promise under a fault, when
/// the operation does not say: a breaker the fault opened closes on its own schedule.
pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(10);

/// One accepted status, or a class of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// Exactly this status.
    Exact(u16),
    /// Every status of this hundred (`2` for `2xx`).
    Class(u16),
}

impl StatusPattern {
    /// Whether `status` is one this pattern accepts.
    pub fn accepts(self, status: u16) -> bool {
        match self {
            Self::Exact(code) => code == status,
            Self::Class(hundred) => status / 100 == hundred,
        }
    }
}

impl std::fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(code) => write!(f, "{code}"),
            Self::Class(hundred) => write!(f, "{hundred}xx"),
        }
    }
}

/// What the value at a JSON pointer must be.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueRule {
    /// There, and not null.
    Present,
    /// Equal to this.
    Equals(Value),
    /// Equal to one of these.
    OneOf(Vec<Value>),
}

/// A rule on the body of a 2xx answer.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyRule {
    /// The value at `pointer` of the body's JSON.
    Pointer {
        /// A JSON pointer, `/order_id`.
        pointer: String,
        /// What the value there must be.
        rule: ValueRule,
    },
    /// The body, as text, contains this.
    Contains(String),
}

impl BodyRule {
    /// Why `body` (the answer's JSON, or a string for a body that is not JSON) breaks this
    /// rule, or `None` when it keeps it.
    pub fn broken_by(&self, body: &Value) -> Option<String> {
        match self {
            Self::Contains(text) => {
                let whole = match body {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (!whole.contains(text.as_str())).then(|| format!("its body does not contain {text:?}"))
            }
            Self::Pointer { pointer, rule } => {
                let found = body.pointer(pointer).filter(|v| !v.is_null());
                match (rule, found) {
                    (_, None) => Some(format!("its body has no {pointer}")),
                    (ValueRule::Present, Some(_)) => None,
                    (ValueRule::Equals(want), Some(got)) => {
                        (got != want).then(|| format!("its {pointer} is {got}, not {want}"))
                    }
                    (ValueRule::OneOf(choices), Some(got)) => (!choices.contains(got)).then(|| {
                        let names: Vec<String> = choices.iter().map(Value::to_string).collect();
                        format!("its {pointer} is {got}, none of {}", names.join(", "))
                    }),
                }
            }
        }
    }
}

/// What an operation promises in one condition (no fault, or a fault on).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Promise {
    /// The statuses it answers with; `None`: any but a 5xx other than 502, 503 and 504.
    pub status: Option<Vec<StatusPattern>>,
    /// Rules every 2xx body keeps (unless it is one of `fallback`).
    pub body: Vec<BodyRule>,
    /// Whole bodies a 2xx may carry instead of keeping `body`'s rules.
    pub fallback: Vec<Value>,
    /// An answer (of any status) within this time; a request that got none broke it.
    pub within: Option<Duration>,
}

impl Promise {
    /// Whether `status` is one this promise allows.
    pub fn allows(&self, status: u16) -> bool {
        match &self.status {
            Some(patterns) => patterns.iter().any(|p| p.accepts(status)),
            None => status < 500 || DEPENDENCY_FAILED.contains(&status),
        }
    }

    /// The statuses it allows, as a person reads them.
    pub fn statuses(&self) -> String {
        match &self.status {
            Some(patterns) => patterns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            None => "any but a 5xx other than 502, 503, 504".into(),
        }
    }

    /// Why the 2xx body `body` breaks this promise, or `None`.
    pub fn body_broken_by(&self, body: &Value) -> Option<String> {
        if self.fallback.contains(body) {
            return None;
        }
        let reasons: Vec<String> = self.body.iter().filter_map(|r| r.broken_by(body)).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// An operation's promises: without a fault, and while one is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    /// With no fault on.
    pub normal: Promise,
    /// While a fault is on, and for `recovery` after its heal.
    pub under_fault: Promise,
    /// How long after a heal an answer still counts as given under the fault.
    pub recovery: Duration,
}

impl Default for Answers {
    /// What an operation that declares nothing promises: [`Promise::default`] throughout.
    fn default() -> Self {
        Self {
            normal: Promise::default(),
            under_fault: Promise::default(),
            recovery: DEFAULT_RECOVERY,
        }
    }
}

/// Reads an operation's `answers` table.
pub(super) fn read(fields: &mut Fields<'_>) -> Result<Answers, ScenarioError> {
    let normal = read_promise(fields, false)?;
    let recovery = fields.duration("recovery")?.unwrap_or(DEFAULT_RECOVERY);
    if recovery > super::MAX_DURATION {
        return Err(fields.error("recovery", "expected at most 1h"));
    }
    // Unsaid here, the fault's promise is the normal one widened (see `widened`).
    let mut under_fault = match fields.table("under_fault")? {
        None => Promise::default(),
        Some(mut table) => {
            let promise = read_promise(&mut table, true)?;
            table.finish()?;
            promise
        }
    };
    if under_fault.status.is_none() {
        under_fault.status = widened(&normal.status);
    }
    if under_fault.body.is_empty() {
        under_fault.body = normal.body.clone();
    }
    Ok(Answers {
        normal,
        under_fault,
        recovery,
    })
}

/// Declared normal statuses, joined by the ones that say a dependency failed.
fn widened(normal: &Option<Vec<StatusPattern>>) -> Option<Vec<StatusPattern>> {
    normal.as_ref().map(|patterns| {
        let mut all = patterns.clone();
        for code in DEPENDENCY_FAILED {
            if !all.iter().any(|p| p.accepts(code)) {
                all.push(StatusPattern::Exact(code));
            }
        }
        all
    })
}

fn read_promise(fields: &mut Fields<'_>, under_fault: bool) -> Result<Promise, ScenarioError> {
    let status = match fields.value("status") {
        None => None,
        Some(toml::Value::Array(items)) if !items.is_empty() => Some(
            items
                .iter()
                .map(|item| status_of(item).map_err(|e| fields.error("status", e)))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(fields.error(
                "status",
                "expected a non-empty array of statuses (200) or classes (\"2xx\")",
            ))
        }
    };
    let mut body = Vec::new();
    for mut rule in fields.tables("body")? {
        body.push(read_rule(&mut rule)?);
        rule.finish()?;
    }
    let fallback = if under_fault {
        match fields.value("fallback") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| {
                    serde_json::to_value(item)
                        .map_err(|e| fields.error("fallback", format!("not a JSON value: {e}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(fields.error("fallback", "expected a non-empty array of bodies"))
            }
        }
    } else {
        Vec::new()
    };
    let within = fields.duration("within")?;
    if within.is_some_and(|w| w.is_zero() || w > super::MAX_DURATION) {
        return Err(fields.error("within", "expected more than 0s and at most 1h"));
    }
    Ok(Promise {
        status,
        body,
        fallback,
        within,
    })
}

fn status_of(item: &toml::Value) -> Result<StatusPattern, String> {
    match item {
        toml::Value::Integer(code) if (100..=599).contains(code) => {
            Ok(StatusPattern::Exact(*code as u16))
        }
        toml::Value::String(class)
            if class.len() == 3
                && class.ends_with("xx")
                && (b'1'..=b'5').contains(&class.as_bytes()[0]) =>
        {
            Ok(StatusPattern::Class(u16::from(class.as_bytes()[0] - b'0')))
        }
        other => Err(format!(
            "expected statuses from 100 to 599 or classes \"1xx\" to \"5xx\", found {other}"
        )),
    }
}

fn read_rule(fields: &mut Fields<'_>) -> Result<BodyRule, ScenarioError> {
    const RULES: &str = "{ pointer = \"/p\" } with an optional equals or one_of, or { contains = \"text\" }";
    let pointer = fields.string("pointer", "a JSON pointer such as \"/order_id\"")?;
    let contains = fields.string("contains", "text the body contains")?;
    let equals = fields.value("equals");
    let one_of = fields.value("one_of");
    match (pointer, contains) {
        (Some(_), Some(_)) => Err(fields.error("contains", format!("give a pointer or contains, not both: {RULES}"))),
        (None, Some(text)) => {
            if equals.is_some() || one_of.is_some() {
                return Err(fields.error("contains", "equals and one_of go with a pointer, not with contains"));
            }
            Ok(BodyRule::Contains(text))
        }
        (None, None) => Err(fields.error("pointer", format!("required: {RULES}"))),
        (Some(pointer), None) => {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err(fields.error(
                    "pointer",
                    format!("expected a JSON pointer starting with `/`, found {pointer:?}"),
                ));
            }
            let json = |fields: &Fields<'_>, key: &str, value: &toml::Value| {
                serde_json::to_value(value).map_err(|e| fields.error(key, format!("not a JSON value: {e}")))
            };
            let rule = match (equals, one_of) {
                (Some(_), Some(_)) => {
                    return Err(fields.error("one_of", "give equals or one_of, not both"))
                }
                (Some(value), None) => ValueRule::Equals(json(fields, "equals", &value)?),
                (None, Some(toml::Value::Array(items))) if !items.is_empty() => ValueRule::OneOf(
                    items
                        .iter()
                        .map(|item| json(fields, "one_of", item))
                        .collect::<Result<_, _>>()?,
                ),
                (None, Some(_)) => {
                    return Err(fields.error("one_of", "expected a non-empty array of values"))
                }
                (None, None) => ValueRule::Present,
            };
            Ok(BodyRule::Pointer { pointer, rule })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_text(text: &str) -> Result<Answers, ScenarioError> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut fields = Fields::new("s.toml", "workload.operations[0].answers", table);
        let answers = read(&mut fields)?;
        fields.finish()?;
        Ok(answers)
    }

    #[test]
    fn the_default_promise_refuses_a_500_and_allows_what_says_a_dependency_failed() {
        let promise = Promise::default();
        for ok in [200, 201, 404, 409, 502, 503, 504] {
            assert!(promise.allows(ok), "{ok}");
        }
        for broken in [500, 501, 505] {
            assert!(!promise.allows(broken), "{broken}");
        }
        assert_eq!(read_text("").unwrap(), Answers::default());
    }

    #[test]
    fn declared_statuses_are_widened_under_a_fault_unless_it_lists_its_own() {
        let answers = read_text("status = [\"2xx\", 409]").unwrap();
        assert!(answers.normal.allows(201) && answers.normal.allows(409));
        assert!(!answers.normal.allows(503));
        assert!(answers.under_fault.allows(503) && answers.under_fault.allows(504));
        assert!(!answers.under_fault.allows(500));
        let strict = read_text("status = [200]\n[under_fault]\nstatus = [200]").unwrap();
        assert!(!strict.under_fault.allows(503));
    }

    #[test]
    fn body_rules_carry_into_the_fault_and_a_fallback_body_is_accepted_there_only() {
        let answers = read_text(
            "body = [{ pointer = \"/id\" }, { pointer = \"/state\", one_of = [\"NEW\", \"DONE\"] }]\n\
             [under_fault]\nfallback = [{ state = \"QUEUED\" }]\nwithin = \"3s\"",
        )
        .unwrap();
        assert_eq!(answers.normal.body_broken_by(&json!({"id": 1, "state": "NEW"})), None);
        let lie = json!({"state": "QUEUED"});
        assert_eq!(
            answers.normal.body_broken_by(&lie).unwrap(),
            "its body has no /id; its /state is \"QUEUED\", none of \"NEW\", \"DONE\""
        );
        assert_eq!(answers.under_fault.body_broken_by(&lie), None);
        assert!(answers.under_fault.body_broken_by(&json!({"state": "NEW"})).is_some());
        assert_eq!(answers.under_fault.within, Some(Duration::from_secs(3)));
        assert_eq!(answers.normal.within, None);
        let contains = BodyRule::Contains("applied".into());
        assert_eq!(contains.broken_by(&json!("was applied")), None);
        assert!(contains.broken_by(&json!({"status": "pending"})).is_some());
    }

    #[test]
    fn bad_promises_name_the_field_and_what_was_expected() {
        let cases = [
            ("status = [700]", "answers.status", "100 to 599"),
            ("status = \"2xx\"", "answers.status", "non-empty array"),
            ("body = [{ pointer = \"id\" }]", "answers.body[0].pointer", "starting with `/`"),
            ("body = [{ equals = 1 }]", "answers.body[0].pointer", "required"),
            ("body = [{ contains = \"x\", pointer = \"/a\" }]", "answers.body[0].contains", "not both"),
            ("body = [{ pointer = \"/a\", equal = 1 }]", "answers.body[0].equal", ""),
            ("fallback = [{}]", "answers.fallback", ""),
            ("within = \"0s\"", "answers.within", "more than 0s"),
            ("[under_fault]\nrecovery = \"1s\"", "answers.under_fault.recovery", ""),
        ];
        for (text, field, reason) in cases {
            let error = read_text(text).unwrap_err();
            assert!(error.field.ends_with(field), "{text}: {error}");
            assert!(error.reason.contains(reason), "{text}: {error}");
        }
    }
}
