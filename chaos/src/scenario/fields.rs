//! Reading a TOML table field by field, so every error names the field's full path
//! (`faults[2].latency`) and a table's leftover keys are reported as unknown fields with the
//! ones that were expected. Scenarios are read with it, and so is every other file faultline
//! reads strictly (the harness's system description).

use std::time::Duration;

use toml::{Table, Value};

use super::ScenarioError;

/// The longest duration any scenario field may hold: a run's load phase is at most this
/// long, and no bound, delay or fault beyond it means anything inside one.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// A table being read, with the path it sits at and the keys read so far.
pub struct Fields<'a> {
    file: &'a str,
    path: String,
    table: Table,
    expected: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// Starts reading `table`, found at `path` (empty for the file's top level) of `file`.
    pub fn new(file: &'a str, path: impl Into<String>, table: Table) -> Self {
        Self {
            file,
            path: path.into(),
            table,
            expected: Vec::new(),
        }
    }

    /// The full path of `key` in this table.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The file being read.
    pub fn file(&self) -> &str {
        self.file
    }

    /// The keys not read yet, with their values.
    pub fn raw(&self) -> &Table {
        &self.table
    }

    /// A value of any type, as TOML has it.
    pub fn value(&mut self, key: &'static str) -> Option<Value> {
        self.take(key)
    }

    /// An error about `key` of this table.
    pub fn error(&self, key: &str, reason: impl Into<String>) -> ScenarioError {
        ScenarioError::new(self.file, self.path_of(key), reason)
    }

    fn take(&mut self, key: &'static str) -> Option<Value> {
        self.expected.push(key);
        self.table.remove(key)
    }

    fn missing(&self, key: &str, what: &str) -> ScenarioError {
        self.error(key, format!("required: {what}"))
    }

    fn wrong_type(&self, key: &str, what: &str, found: &Value) -> ScenarioError {
        self.error(key, format!("expected {what}, found {}", describe(found)))
    }

    /// An optional string; `what` says what was expected, for errors.
    pub fn string(
        &mut self,
        key: &'static str,
        what: &str,
    ) -> Result<Option<String>, ScenarioError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, what, &other)),
        }
    }

    /// A required string.
    pub fn required_string(
        &mut self,
        key: &'static str,
        what: &str,
    ) -> Result<String, ScenarioError> {
        self.string(key, what)?
            .ok_or_else(|| self.missing(key, what))
    }

    /// An optional integer.
    pub fn integer(&mut self, key: &'static str, what: &str) -> Result<Option<i64>, ScenarioError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => Ok(Some(i)),
            Some(other) => Err(self.wrong_type(key, what, &other)),
        }
    }

    /// An integer within `range`.
    pub fn integer_in(
        &mut self,
        key: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ScenarioError> {
        let what = format!("an integer from {} to {}", range.start(), range.end());
        match self.integer(key, &what)? {
            Some(i) if !range.contains(&i) => {
                Err(self.error(key, format!("expected {what}, found {i}")))
            }
            other => Ok(other),
        }
    }

    /// An array of integers, each within `range`.
    pub fn integers_in(
        &mut self,
        key: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<Vec<i64>>, ScenarioError> {
        let what = format!("an integer from {} to {}", range.start(), range.end());
        let all = format!("an array of integers from {} to {}", range.start(), range.end());
        self.array(key, &all, |item| match item {
            Value::Integer(n) if range.contains(&n) => Ok(n),
            Value::Integer(n) => Err(format!("expected {what}, found {n}")),
            other => Err(format!("expected {what}, found {}", describe(&other))),
        })
    }

    /// An array (`what`, as an error names it) whose every item `read` takes, or says what
    /// it expected.
    fn array<T>(
        &mut self,
        key: &'static str,
        what: &str,
        read: impl Fn(Value) -> Result<T, String>,
    ) -> Result<Option<Vec<T>>, ScenarioError> {
        let path = self.path_of(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    read(item).map_err(|reason| {
                        ScenarioError::new(self.file, format!("{path}[{i}]"), reason)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong_type(key, what, &other)),
        }
    }

    /// A number (integer or float) within `range`.
    pub fn number_in(
        &mut self,
        key: &'static str,
        range: std::ops::RangeInclusive<f64>,
    ) -> Result<Option<f64>, ScenarioError> {
        let what = format!("a number from {} to {}", range.start(), range.end());
        let number = match self.take(key) {
            None => return Ok(None),
            Some(Value::Integer(i)) => i as f64,
            Some(Value::Float(f)) => f,
            Some(other) => return Err(self.wrong_type(key, &what, &other)),
        };
        if !range.contains(&number) {
            return Err(self.error(key, format!("expected {what}, found {number}")));
        }
        Ok(Some(number))
    }

    /// An optional boolean.
    pub fn boolean(&mut self, key: &'static str) -> Result<Option<bool>, ScenarioError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong_type(key, "true or false", &other)),
        }
    }

    /// A duration written as a string with a unit: `"250ms"`, `"2s"`, `"1.5s"`, `"3m"`, at
    /// most [`MAX_DURATION`], so that every sum of scenario durations a run computes fits.
    pub fn duration(&mut self, key: &'static str) -> Result<Option<Duration>, ScenarioError> {
        const WHAT: &str = "a duration such as \"250ms\", \"2s\" or \"1m\"";
        match self.string(key, WHAT)? {
            None => Ok(None),
            Some(text) => match parse_duration(&text) {
                None => Err(self.error(key, format!("expected {WHAT}, found {text:?}"))),
                Some(d) if d > MAX_DURATION => Err(self.error(
                    key,
                    format!("expected at most 1h (the longest run), found {text:?}"),
                )),
                Some(d) => Ok(Some(d)),
            },
        }
    }

    /// A required duration.
    pub fn required_duration(&mut self, key: &'static str) -> Result<Duration, ScenarioError> {
        self.duration(key)?
            .ok_or_else(|| self.missing(key, "a duration such as \"250ms\", \"2s\" or \"1m\""))
    }

    /// A string, or a sub-table read with its own [`Fields`] (`what` says what either is).
    pub fn string_or_table(
        &mut self,
        key: &'static str,
        what: &str,
    ) -> Result<Option<StringOrTable<'a>>, ScenarioError> {
        let path = self.path_of(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(StringOrTable::String(s))),
            Some(Value::Table(table)) => Ok(Some(StringOrTable::Table(Fields::new(self.file, path, table)))),
            Some(other) => Err(self.wrong_type(key, what, &other)),
        }
    }

    /// A sub-table, read with its own [`Fields`].
    pub fn table(&mut self, key: &'static str) -> Result<Option<Fields<'a>>, ScenarioError> {
        let path = self.path_of(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Table(table)) => Ok(Some(Fields::new(self.file, path, table))),
            Some(other) => Err(self.wrong_type(key, "a table", &other)),
        }
    }

    /// An array of tables (`[[key]]`), each read with its own [`Fields`].
    pub fn tables(&mut self, key: &'static str) -> Result<Vec<Fields<'a>>, ScenarioError> {
        let path = self.path_of(key);
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Table(table) => {
                        Ok(Fields::new(self.file, format!("{path}[{i}]"), table))
                    }
                    other => Err(ScenarioError::new(
                        self.file,
                        format!("{path}[{i}]"),
                        format!("expected a table, found {}", describe(&other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.wrong_type(key, "an array of tables", &other)),
        }
    }

    /// An array of strings.
    pub fn strings(&mut self, key: &'static str) -> Result<Option<Vec<String>>, ScenarioError> {
        self.array(key, "an array of strings", |item| match item {
            Value::String(s) => Ok(s),
            other => Err(format!("expected a string, found {}", describe(&other))),
        })
    }

    /// Every entry not read yet, each a table named by its key (`[services.order]`), in key
    /// order. Afterwards the table has no unknown keys left.
    pub fn named_tables(&mut self) -> Result<Vec<(String, Fields<'a>)>, ScenarioError> {
        let table = std::mem::take(&mut self.table);
        table
            .into_iter()
            .map(|(key, value)| match value {
                Value::Table(table) => {
                    let fields = Fields::new(self.file, self.path_of(&key), table);
                    Ok((key, fields))
                }
                other => Err(self.wrong_type(&key, "a table", &other)),
            })
            .collect()
    }

    /// Every entry not read yet, each a string named by its key (`[services.order.env]`), in
    /// key order.
    pub fn named_strings(&mut self) -> Result<Vec<(String, String)>, ScenarioError> {
        let table = std::mem::take(&mut self.table);
        table
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key, text)),
                other => Err(self.wrong_type(&key, "a string", &other)),
            })
            .collect()
    }

    /// Every entry not read yet, each an integer within `range` named by its key, in key
    /// order.
    pub fn named_integers_in(
        &mut self,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<(String, i64)>, ScenarioError> {
        let what = format!("an integer from {} to {}", range.start(), range.end());
        let table = std::mem::take(&mut self.table);
        table
            .into_iter()
            .map(|(key, value)| match value {
                Value::Integer(n) if range.contains(&n) => Ok((key, n)),
                Value::Integer(n) => Err(self.error(&key, format!("expected {what}, found {n}"))),
                other => Err(self.wrong_type(&key, &what, &other)),
            })
            .collect()
    }

    /// Fails on the first key nobody asked for, naming the keys that are allowed here.
    pub fn finish(self) -> Result<(), ScenarioError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(unknown) => {
                let mut expected = self.expected.clone();
                expected.sort_unstable();
                expected.dedup();
                Err(self.error(
                    unknown,
                    format!("unknown field; expected one of: {}", expected.join(", ")),
                ))
            }
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date-time {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// A piece of a string with `{…}` placeholders: text as it is, or a placeholder's inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Braced<'a> {
    /// Literal text (`{{` and `}}` already turned into single braces).
    Text(String),
    /// What stood between `{` and `}`.
    Placeholder(&'a str),
}

/// Splits `text` into literal text and `{…}` placeholders, `{{` and `}}` standing for literal
/// braces: the one reading of braces that scenarios' generators and system descriptions'
/// placeholders share. An unclosed `{` or a lone `}` is an error saying how to write a brace.
pub fn split_braces(text: &str) -> Result<Vec<Braced<'_>>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        literal.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            literal.push('{');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix("}}") {
            literal.push('}');
            rest = after;
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!(
                "a lone `}}` in {text:?}: write `}}}}` for a literal brace"
            ));
        }
        let end = tail.find('}').ok_or_else(|| {
            format!("an unclosed `{{` in {text:?}: write `{{{{` for a literal brace")
        })?;
        if !literal.is_empty() {
            pieces.push(Braced::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Braced::Placeholder(&tail[1..end]));
        rest = &tail[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Braced::Text(literal));
    }
    Ok(pieces)
}

/// Parses `"250ms"`, `"2s"`, `"1.5s"`, `"3m"`, `"1h"`, `"500us"`; `None` when malformed or
/// too large for a [`Duration`].
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds_per_unit = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * seconds_per_unit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        for bad in [
            "",
            "5",
            "ms",
            "1.2.3s",
            "-1s",
            "3 days",
            "2sec",
            "99999999999999999999999h",
            "1e400s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}

/// What [`Fields::string_or_table`] found.
pub enum StringOrTable<'a> {
    /// A string.
    String(String),
    /// A table, with its own fields.
    Table(Fields<'a>),
}
