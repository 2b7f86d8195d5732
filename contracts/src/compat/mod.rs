//! Schema evolution: is a new version of an event's JSON Schema compatible with the old one?
//!
//! A change is judged by who writes and who reads. Between a *writer* schema and a *reader*
//! schema, a **breaking change** is a payload the writer's schema accepts and the reader's
//! rejects. Every [`BreakingChange`] carries such a payload — a concrete counterexample,
//! checked with the `jsonschema` validator against both full schemas before it is reported,
//! so a report cannot claim a break it cannot show. A candidate that fails that check (a
//! limit of the generator, not a verdict) is listed in [`Report::unverified`], never dropped.
//!
//! [`Mode`]s, as in schema registries:
//! - **backward**: consumers on the NEW schema read data written under the OLD one
//!   (writer = old, reader = new). Adding a required field breaks it.
//! - **forward**: consumers still on the OLD schema read data written under the NEW one
//!   (writer = new, reader = old). Removing a required field breaks it.
//! - **full**: both.
//! - **transitive** ([`check_transitive`]): each version against every earlier one.
//!
//! ```
//! use faultline_contracts::compat::{check, Mode, Schema};
//! use serde_json::json;
//!
//! let old = Schema::from_value("v1.json", json!({
//!     "type": "object", "properties": {"quantity": {"type": ["integer", "string"]}},
//!     "required": ["quantity"]})).unwrap();
//! let new = Schema::from_value("v2.json", json!({
//!     "type": "object", "properties": {"quantity": {"type": "integer"}},
//!     "required": ["quantity"]})).unwrap();
//! let report = check(&old, &new, Mode::Backward);
//! assert!(!report.is_compatible());
//! assert_eq!(report.breaking[0].path, "$.quantity");
//! assert_eq!(report.breaking[0].counterexample, json!({"quantity": "x"}));
//! assert!(check(&old, &new, Mode::Forward).is_compatible());
//! ```
//!
//! ## The subset, and one assumption
//!
//! Supported keywords: `type` (a name or an array of names, `null` included), `properties`,
//! `required`, `additionalProperties` (`true`/`false` only), `enum`, `const`, `format`
//! (`uuid`, `date-time`, `date`, `time`, `email`, `uri`; asserted, not just annotated),
//! `minimum`, `maximum`, `minLength`, `maxLength`, `items` (one schema), plus annotations
//! (`title`, `description`, `$id`, `$comment`, `examples`, `default`, ...); the `true` schema
//! stands for "anything". Anything else (`$ref`, `oneOf`, `pattern`, `false`, ...) is a [`SchemaError::Unsupported`] naming the file and the
//! JSON path — never a silent pass.
//!
//! **Writers emit the properties their schema declares.** `additionalProperties: true` is
//! read as the reader's promise to tolerate fields it does not know, not as licence for a
//! writer to send arbitrary undeclared fields. So adding an optional field to an open schema
//! passes both ways (the usual way to evolve an event), while a field removed in one version
//! and re-added with another type is still caught — by [`check_transitive`] against the
//! version that declared it. A reader that closes its schema (`additionalProperties: false`)
//! breaks on every writer property it does not declare.

mod engine;
pub mod pact;
mod schema;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

use schema::Node;

/// A schema could not be read, or uses something the checker does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The file is not JSON.
    #[error("{file}: malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// The schema's name (usually its file path).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A keyword has the wrong shape, or the schema fails the draft 2020-12 meta-schema.
    #[error("{file}: at {path}: {problem}")]
    Invalid {
        /// The schema's name.
        file: String,
        /// JSON path inside the schema.
        path: String,
        /// What was expected.
        problem: String,
    },
    /// Valid JSON Schema, but outside the subset the checker reasons about.
    #[error("{file}: at {path}: unsupported {feature}; {hint}")]
    Unsupported {
        /// The schema's name.
        file: String,
        /// JSON path inside the schema.
        path: String,
        /// What is not supported.
        feature: String,
        /// What to do instead.
        hint: String,
    },
}

/// A JSON Schema (draft 2020-12) in the supported subset, with its compiled validator.
pub struct Schema {
    name: String,
    value: Value,
    root: Node,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A validator for draft 2020-12 that asserts `format` (which the draft only annotates by
/// default): an event whose `order_id` is not a UUID is not an `OrderCreated`.
pub fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|error| {
            format!(
                "at {}: {error}",
                instance_path(error.instance_path().as_str())
            )
        })
}

/// `/a/b/0` (a JSON pointer) as `$.a.b[0]`.
fn instance_path(pointer: &str) -> String {
    let mut path = String::from("$");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push_str(&schema::key_segment(&segment));
        }
    }
    path
}

impl Schema {
    /// Reads a schema from JSON text; `name` (usually the file path) names it in errors.
    pub fn from_json_str(name: &str, text: &str) -> Result<Schema, SchemaError> {
        let value: Value =
            serde_json::from_str(text).map_err(|error| SchemaError::MalformedJson {
                file: name.to_string(),
                line: error.line(),
                column: error.column(),
                message: error.to_string(),
            })?;
        Schema::from_value(name, value)
    }

    /// Reads a schema from a JSON value; see [`Schema::from_json_str`].
    pub fn from_value(name: &str, value: Value) -> Result<Schema, SchemaError> {
        let root = Node::parse(name, "$", &value)?;
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&value)
            .map_err(|error| SchemaError::Invalid {
                file: name.to_string(),
                path: instance_path(error.instance_path().as_str()),
                problem: format!("not a valid draft 2020-12 schema: {error}"),
            })?;
        Ok(Schema {
            name: name.to_string(),
            value,
            root,
            validator,
        })
    }

    /// The name given when it was read.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Validates a payload; the error lists every violation with its JSON path.
    pub fn validate(&self, payload: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(payload)
            .map(|error| {
                format!(
                    "at {}: {error}",
                    instance_path(error.instance_path().as_str())
                )
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether `payload` is valid.
    pub fn is_valid(&self, payload: &Value) -> bool {
        self.validator.is_valid(payload)
    }
}

/// Which compatibility to require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// New readers read old data.
    Backward,
    /// Old readers read new data.
    Forward,
    /// Both.
    Full,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Backward => "backward",
            Mode::Forward => "forward",
            Mode::Full => "full",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Mode, String> {
        match text {
            "backward" => Ok(Mode::Backward),
            "forward" => Ok(Mode::Forward),
            "full" => Ok(Mode::Full),
            other => Err(format!(
                "unknown compatibility mode {other:?}; expected backward, forward or full"
            )),
        }
    }
}

/// The direction a break was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Old data, new reader.
    Backward,
    /// New data, old reader.
    Forward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        })
    }
}

/// One payload the writer's schema accepts and the reader's rejects.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BreakingChange {
    /// Which compatibility it breaks.
    pub direction: Direction,
    /// The writer's schema name.
    pub writer: String,
    /// The reader's schema name.
    pub reader: String,
    /// JSON path of the property in the payload (`$` for the whole payload).
    pub path: String,
    /// What changed, in terms of schema keywords.
    pub change: String,
    /// Why the reader's schema rejects the counterexample (the validator's words).
    pub rejected_because: String,
    /// A whole payload, valid under the writer's schema, rejected by the reader's.
    pub counterexample: Value,
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({} -> {}): {}; counterexample {} is valid under {} but rejected by {}: {}",
            self.direction,
            self.path,
            self.writer,
            self.reader,
            self.change,
            self.counterexample,
            self.writer,
            self.reader,
            self.rejected_because
        )
    }
}

/// A suspected break whose candidate payload did not check out against the full schemas.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unverified {
    /// Which compatibility it concerns.
    pub direction: Direction,
    /// The writer's schema name.
    pub writer: String,
    /// The reader's schema name.
    pub reader: String,
    /// JSON path of the property.
    pub path: String,
    /// What changed.
    pub change: String,
    /// The candidate, and what went wrong with it.
    pub problem: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Verified breaks, each with a counterexample.
    pub breaking: Vec<BreakingChange>,
    /// Suspected breaks the checker could not demonstrate; a non-empty list is not a pass.
    pub unverified: Vec<Unverified>,
}

impl Report {
    /// True when nothing breaks and nothing is in doubt.
    pub fn is_compatible(&self) -> bool {
        self.breaking.is_empty() && self.unverified.is_empty()
    }
}

/// Checks `new` against `old` in `mode`.
pub fn check(old: &Schema, new: &Schema, mode: Mode) -> Report {
    let mut report = Report::default();
    if matches!(mode, Mode::Backward | Mode::Full) {
        engine::check_direction(old, new, Direction::Backward, &mut report);
    }
    if matches!(mode, Mode::Forward | Mode::Full) {
        engine::check_direction(new, old, Direction::Forward, &mut report);
    }
    report
}

/// Checks each version in `history` (oldest first) against every earlier one.
pub fn check_transitive(history: &[Schema], mode: Mode) -> Report {
    let mut report = Report::default();
    for (i, new) in history.iter().enumerate() {
        for old in &history[..i] {
            let pair = check(old, new, mode);
            report.breaking.extend(pair.breaking);
            report.unverified.extend(pair.unverified);
        }
    }
    report
}
