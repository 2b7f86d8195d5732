//! JSON paths as Pact uses them: the keys of matching rules (`$.items[*].id`) and the
//! locations reported in mismatches (`$.items[1].id`).
//!
//! Pact does not use full JSONPath. A rule key is a root `$` followed by field names
//! (`.name` or `['name']`), array indices (`[0]`), and the wildcards `*` / `[*]`. When several
//! rules could apply to a location, the one with the highest *weight* wins: every token that
//! matches exactly counts 2, every wildcard counts 1, the weights multiply, and the product is
//! scaled by the number of tokens so that deeper (more specific) rules beat shallower ones.
//! A rule whose key is a proper prefix of the location *cascades* to it.
//!
//! ```
//! use faultline_contracts::path::{JsonPath, Location};
//!
//! let rule = JsonPath::parse("$.items[*].id").unwrap();
//! let mut at = Location::root();
//! at.push_field("items");
//! at.push_index(1);
//! at.push_field("id");
//! assert_eq!(at.to_string(), "$.items[1].id");
//! assert!(rule.weight(&at).is_some());
//! ```

use std::fmt;

/// One token of a rule key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathToken {
    /// `$`, the root of the document.
    Root,
    /// A named field: `.name` or `['name']`.
    Field(String),
    /// An array index: `[3]`.
    Index(usize),
    /// `.*`: any field or any index.
    AnyField,
    /// `[*]`: any array index.
    AnyIndex,
}

/// A parsed matching-rule key such as `$.items[*].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    tokens: Vec<PathToken>,
}

/// Why a rule key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON path {path:?}: {problem} (at character {position})")]
pub struct PathError {
    /// The key as written.
    pub path: String,
    /// What was wrong.
    pub problem: String,
    /// 0-based character offset of the problem.
    pub position: usize,
}

impl JsonPath {
    /// The root path `$`.
    pub fn root() -> Self {
        JsonPath {
            tokens: vec![PathToken::Root],
        }
    }

    /// Parses a rule key. Keys that do not start with `$` are taken as a single field name
    /// under the root (Pact writes header and query rules keyed by bare names).
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let err = |problem: &str, position: usize| PathError {
            path: text.to_string(),
            problem: problem.to_string(),
            position,
        };
        let chars: Vec<char> = text.chars().collect();
        if chars.first() != Some(&'$') {
            if text.is_empty() {
                return Ok(JsonPath::root());
            }
            return Ok(JsonPath {
                tokens: vec![PathToken::Root, PathToken::Field(text.to_string())],
            });
        }
        let mut tokens = vec![PathToken::Root];
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    if end == start {
                        return Err(err("empty field name after '.'", i));
                    }
                    let name: String = chars[start..end].iter().collect();
                    tokens.push(if name == "*" {
                        PathToken::AnyField
                    } else {
                        PathToken::Field(name)
                    });
                    i = end;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|p| p + i)
                        .ok_or_else(|| err("'[' without a closing ']'", i))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    if inner == "*" {
                        tokens.push(PathToken::AnyIndex);
                    } else if let Some(quoted) = strip_quotes(inner) {
                        tokens.push(PathToken::Field(quoted.to_string()));
                    } else if let Ok(index) = inner.parse::<usize>() {
                        tokens.push(PathToken::Index(index));
                    } else {
                        return Err(err("expected an index, '*' or a quoted name inside [ ]", i));
                    }
                    i = close + 1;
                }
                _ => return Err(err("expected '.' or '['", i)),
            }
        }
        Ok(JsonPath { tokens })
    }

    /// The tokens of this path, starting with [`PathToken::Root`].
    pub fn tokens(&self) -> &[PathToken] {
        &self.tokens
    }

    /// How well this rule key applies to `location`, or `None` when it does not apply.
    /// The key applies when it matches `location` or one of its ancestors. The returned
    /// [`PathWeight`] orders candidates (higher is more specific) and says whether the rule
    /// reached the location by cascading from an ancestor.
    pub fn weight(&self, location: &Location) -> Option<PathWeight> {
        if self.tokens.len() > location.segments.len() + 1 {
            return None;
        }
        let mut weight = 2usize; // the root always matches
        for (token, segment) in self.tokens.iter().skip(1).zip(&location.segments) {
            let w = match (token, segment) {
                (PathToken::Field(name), Segment::Field(actual)) if name == actual => 2,
                (PathToken::Index(i), Segment::Index(actual)) if i == actual => 2,
                (PathToken::AnyField, _) => 1,
                (PathToken::AnyIndex, Segment::Index(_)) => 1,
                _ => 0,
            };
            if w == 0 {
                return None;
            }
            weight = weight.saturating_mul(w);
        }
        let depth = self.tokens.len();
        Some(PathWeight {
            score: weight.saturating_mul(depth),
            cascaded: depth != location.segments.len() + 1,
        })
    }
}

fn strip_quotes(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() >= 2
        && ((b[0] == b'\'' && b[b.len() - 1] == b'\'') || (b[0] == b'"' && b[b.len() - 1] == b'"'))
    {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for token in &self.tokens {
            match token {
                PathToken::Root => f.write_str("$")?,
                PathToken::Field(name) => write_field(f, name)?,
                PathToken::Index(i) => write!(f, "[{i}]")?,
                PathToken::AnyField => f.write_str(".*")?,
                PathToken::AnyIndex => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

/// The result of [`JsonPath::weight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PathWeight {
    /// Product of token weights times the number of tokens; higher is more specific.
    pub score: usize,
    /// True when the rule key is an ancestor of the location (the rule cascaded down).
    pub cascaded: bool,
}

/// One step of a concrete location in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object field.
    Field(String),
    /// An array element.
    Index(usize),
}

/// A concrete location in a document, such as `$.items[1].id`; used while matching and in
/// mismatch reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    segments: Vec<Segment>,
}

impl Location {
    /// The document root, `$`.
    pub fn root() -> Self {
        Location::default()
    }

    /// Descends into an object field.
    pub fn push_field(&mut self, name: &str) {
        self.segments.push(Segment::Field(name.to_string()));
    }

    /// Descends into an array element.
    pub fn push_index(&mut self, index: usize) {
        self.segments.push(Segment::Index(index));
    }

    /// Goes back up one step.
    pub fn pop(&mut self) {
        self.segments.pop();
    }

    /// The steps below the root.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// A copy of this location extended by one field.
    pub fn field(&self, name: &str) -> Location {
        let mut l = self.clone();
        l.push_field(name);
        l
    }

    /// A copy of this location extended by one index.
    pub fn index(&self, index: usize) -> Location {
        let mut l = self.clone();
        l.push_index(index);
        l
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.segments {
            match segment {
                Segment::Field(name) => write_field(f, name)?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn write_field(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        write!(f, ".{name}")
    } else {
        write!(f, "['{}']", name.replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(parts: &[&str]) -> Location {
        let mut l = Location::root();
        for p in parts {
            match p.parse::<usize>() {
                Ok(i) => l.push_index(i),
                Err(_) => l.push_field(p),
            }
        }
        l
    }

    #[test]
    fn parses_dotted_bracketed_and_wildcard_keys() {
        let p = JsonPath::parse("$.a['x-y'][0][*].*").unwrap();
        assert_eq!(
            p.tokens(),
            &[
                PathToken::Root,
                PathToken::Field("a".into()),
                PathToken::Field("x-y".into()),
                PathToken::Index(0),
                PathToken::AnyIndex,
                PathToken::AnyField
            ]
        );
        assert_eq!(p.to_string(), "$.a['x-y'][0][*].*");
    }

    #[test]
    fn rejects_malformed_keys_with_position() {
        let e = JsonPath::parse("$.a[0").unwrap_err();
        assert_eq!(e.position, 3);
        assert!(JsonPath::parse("$..a").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
    }

    #[test]
    fn bare_names_become_fields_under_root() {
        assert_eq!(
            JsonPath::parse("Content-Type").unwrap().tokens()[1],
            PathToken::Field("Content-Type".into())
        );
    }

    #[test]
    fn exact_key_outweighs_wildcard_key() {
        let at = loc(&["items", "1", "id"]);
        let exact = JsonPath::parse("$.items[1].id")
            .unwrap()
            .weight(&at)
            .unwrap();
        let star = JsonPath::parse("$.items[*].id")
            .unwrap()
            .weight(&at)
            .unwrap();
        let any = JsonPath::parse("$.*[*].id").unwrap().weight(&at).unwrap();
        assert!(exact > star && star > any);
        assert!(!exact.cascaded);
    }

    #[test]
    fn deeper_key_outweighs_cascading_ancestor() {
        let at = loc(&["items", "0", "id"]);
        let parent = JsonPath::parse("$.items").unwrap().weight(&at).unwrap();
        let child = JsonPath::parse("$.items[*].id")
            .unwrap()
            .weight(&at)
            .unwrap();
        assert!(parent.cascaded);
        assert!(child > parent);
    }

    #[test]
    fn non_matching_or_longer_keys_do_not_apply() {
        let at = loc(&["items"]);
        assert!(JsonPath::parse("$.other").unwrap().weight(&at).is_none());
        assert!(JsonPath::parse("$.items[*]").unwrap().weight(&at).is_none());
        assert!(JsonPath::parse("$.items[*]")
            .unwrap()
            .weight(&loc(&["items", "name"]))
            .is_none());
    }

    #[test]
    fn locations_render_like_pact_paths() {
        assert_eq!(loc(&["items", "1", "id"]).to_string(), "$.items[1].id");
        assert_eq!(loc(&["x-y"]).to_string(), "$['x-y']");
        assert_eq!(Location::root().to_string(), "$");
    }
}
