//! The patterns matching rules carry, compiled: regexes (matched against the whole value) and
//! date/time formats. Reading a pact compiles them to refuse a rule no value could meet
//! ([`model`](crate::model)); matching applies them ([`matching`](crate::matching)). Imports
//! no other module of the crate.

pub mod datetime;

use regex::Regex;

/// Compiles a Pact regex so that it must match the whole value (Pact's JVM origin uses
/// `String.matches`, a full match).
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}
