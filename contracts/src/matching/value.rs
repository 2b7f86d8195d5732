//! One matcher applied to one value: the leaf of every comparison.
//!
//! `text` marks values that arrived as strings by nature (headers, query parameters, the
//! path, metadata given as strings): there `integer`, `decimal`, `number` and `boolean` parse
//! the string, as Pact does, while in JSON bodies they require a JSON number or boolean.

use regex::Regex;
use serde_json::Value;

use crate::model::Matcher;
use crate::patterns::compile_regex;
use crate::patterns::datetime::DateTimePattern;

/// JSON type name used in messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value as text: strings as themselves, scalars as JSON; `None` for containers.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
        other => Some(other.to_string()),
    }
}

fn same_type(expected: &Value, actual: &Value) -> bool {
    std::mem::discriminant(expected) == std::mem::discriminant(actual)
}

/// Applies `matcher` to `actual` (with `expected` the example). `cascaded` is true when the
/// rule was declared on an ancestor, in which case array-length limits do not apply.
pub(crate) fn check(
    matcher: &Matcher,
    expected: &Value,
    actual: &Value,
    cascaded: bool,
    text: bool,
) -> Result<(), String> {
    let fail = |msg: String| Err(msg);
    match matcher {
        Matcher::Equality => {
            if expected == actual {
                Ok(())
            } else {
                fail(format!("expected {expected} but got {actual}"))
            }
        }
        Matcher::Regex(pattern) => {
            let re =
                compile_regex(pattern).map_err(|e| format!("invalid regex /{pattern}/: {e}"))?;
            match as_text(actual) {
                Some(s) if re.is_match(&s) => Ok(()),
                Some(s) => fail(format!("{s:?} does not match /{pattern}/")),
                None => fail(format!(
                    "expected a value matching /{pattern}/ but got {}",
                    type_name(actual)
                )),
            }
        }
        Matcher::Type { min, max } => {
            if !same_type(expected, actual) {
                return fail(format!(
                    "expected a {} but got a {}",
                    type_name(expected),
                    type_name(actual)
                ));
            }
            if let (Value::Array(items), false) = (actual, cascaded) {
                if let Some(min) = min.filter(|m| items.len() < *m) {
                    return fail(format!(
                        "expected at least {min} element(s) but got {}",
                        items.len()
                    ));
                }
                if let Some(max) = max.filter(|m| items.len() > *m) {
                    return fail(format!(
                        "expected at most {max} element(s) but got {}",
                        items.len()
                    ));
                }
            }
            Ok(())
        }
        Matcher::Integer => {
            let ok = match actual {
                Value::Number(n) => n.is_i64() || n.is_u64(),
                Value::String(s) if text => s.parse::<i128>().is_ok(),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                fail(format!("expected an integer but got {actual}"))
            }
        }
        Matcher::Decimal => {
            let ok = match actual {
                Value::Number(n) => n.is_f64(),
                Value::String(s) if text => s.contains('.') && s.parse::<f64>().is_ok(),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                fail(format!("expected a decimal number but got {actual}"))
            }
        }
        Matcher::Number => {
            let ok = match actual {
                Value::Number(_) => true,
                Value::String(s) if text => s.parse::<f64>().is_ok(),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                fail(format!("expected a number but got {actual}"))
            }
        }
        Matcher::Boolean => match actual {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s == "true" || s == "false" => Ok(()),
            _ => fail(format!("expected a boolean but got {actual}")),
        },
        Matcher::Null => {
            if actual.is_null() {
                Ok(())
            } else {
                fail(format!("expected null but got {actual}"))
            }
        }
        Matcher::Include(part) => match as_text(actual) {
            Some(s) if s.contains(part.as_str()) => Ok(()),
            _ => fail(format!(
                "expected a value including {part:?} but got {actual}"
            )),
        },
        Matcher::Date(f) | Matcher::Time(f) | Matcher::Timestamp(f) => {
            let pattern = match (matcher, f) {
                (_, Some(f)) => DateTimePattern::compile(f)?,
                (Matcher::Date(_), None) => DateTimePattern::iso_date(),
                (Matcher::Time(_), None) => DateTimePattern::iso_time(),
                _ => DateTimePattern::iso_datetime(),
            };
            let shown = f.as_deref().unwrap_or("ISO-8601");
            match actual {
                Value::String(s) => pattern
                    .check(s)
                    .map_err(|why| format!("{s:?} is not in the format {shown:?}: {why}")),
                _ => fail(format!(
                    "expected a string in the format {shown:?} but got {actual}"
                )),
            }
        }
        Matcher::NotEmpty => {
            let empty = match actual {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if !same_type(expected, actual) {
                fail(format!(
                    "expected a non-empty {} but got a {}",
                    type_name(expected),
                    type_name(actual)
                ))
            } else if empty {
                fail(format!("expected a non-empty value but got {actual}"))
            } else {
                Ok(())
            }
        }
        Matcher::Semver => {
            let re = Regex::new(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
                .expect("static regex");
            match actual {
                Value::String(s) if re.is_match(s) => Ok(()),
                _ => fail(format!("expected a semantic version but got {actual}")),
            }
        }
        Matcher::StatusCode(class) => match actual.as_u64().and_then(|s| u16::try_from(s).ok()) {
            Some(status) if class.contains(status) => Ok(()),
            _ => fail(format!("expected {class} but got {actual}")),
        },
        Matcher::EachValue(each) => {
            // On a single value: apply the inner rules to it.
            for m in &each.rules {
                check(m, expected, actual, false, text)?;
            }
            Ok(())
        }
        // Collection-level matchers; the body walker applies them to arrays and objects.
        Matcher::Values | Matcher::ArrayContains(_) | Matcher::EachKey(_) => match actual {
            Value::Array(_) | Value::Object(_) => Ok(()),
            _ => fail(format!(
                "{} applies to arrays and objects, got a {}",
                matcher.describe(),
                type_name(actual)
            )),
        },
    }
}
