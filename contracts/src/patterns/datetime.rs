//! Strict parsing of dates and times against Java `DateTimeFormatter`-style patterns, the form
//! Pact's `date`, `time` and `datetime` matchers use (`yyyy-MM-dd`, `HH:mm:ss`,
//! `yyyy-MM-dd'T'HH:mm:ss.SSSX`).
//!
//! Supported letters: `y`/`u` (year), `M` (month, numeric or `MMM`/`MMMM` English names),
//! `d` (day of month), `E` (day name), `H` (0-23), `h` (1-12), `a` (AM/PM), `m`, `s`,
//! `S` (fraction, exactly as many digits as letters), `X`/`x`/`Z` (zone offset), quoted
//! literals (`'T'`, `''`). Anything else is rejected when the pact is read, so a rule is never
//! silently skipped. Values are validated, not just shaped: `2001-02-29` does not match
//! `yyyy-MM-dd`.
//!
//! Without a pattern, ISO-8601 is used: `yyyy-MM-dd` for dates, `HH:mm:ss[.fraction][offset]`
//! for times and `yyyy-MM-dd'T'HH:mm:ss[.fraction][offset]` for date-times.

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Year {
        min: usize,
        max: usize,
    },
    Month {
        width: usize,
    },
    MonthName {
        long: bool,
    },
    DayName {
        long: bool,
    },
    Day {
        width: usize,
    },
    Hour24 {
        width: usize,
    },
    Hour12 {
        width: usize,
    },
    AmPm,
    Minute {
        width: usize,
    },
    Second {
        width: usize,
    },
    Fraction {
        digits: usize,
    },
    /// ISO: optional `.` followed by 1 to 9 digits.
    OptionalFraction,
    /// `X` family: `Z` allowed for zero; `x`: never `Z`; `Z` letter: `+HHMM`.
    Offset {
        z_allowed: bool,
        colon: bool,
        minutes: Minutes,
    },
    /// ISO: optional `Z` or `±HH:MM`.
    OptionalIsoOffset,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Minutes {
    Optional,
    Required,
}

/// A compiled date/time pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTimePattern {
    tokens: Vec<Token>,
}

#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
}

impl DateTimePattern {
    /// ISO-8601 calendar date.
    pub fn iso_date() -> Self {
        Self::compile("yyyy-MM-dd").expect("static pattern")
    }

    /// ISO-8601 local or offset time.
    pub fn iso_time() -> Self {
        let mut p = Self::compile("HH:mm:ss").expect("static pattern");
        p.tokens.push(Token::OptionalFraction);
        p.tokens.push(Token::OptionalIsoOffset);
        p
    }

    /// ISO-8601 date-time.
    pub fn iso_datetime() -> Self {
        let mut p = Self::compile("yyyy-MM-dd'T'HH:mm:ss").expect("static pattern");
        p.tokens.push(Token::OptionalFraction);
        p.tokens.push(Token::OptionalIsoOffset);
        p
    }

    /// Compiles a Java-style pattern; the error says which part is unsupported.
    pub fn compile(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    tokens.push(Token::Literal("'".into()));
                    i += 2;
                    continue;
                }
                let end = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '\'')
                    .ok_or_else(|| {
                        format!("unterminated quote in date/time pattern {pattern:?}")
                    })?;
                tokens.push(Token::Literal(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                if c == '[' || c == ']' || c == '#' || c == '{' || c == '}' {
                    return Err(format!("optional sections and reserved characters ({c:?}) are not supported in date/time pattern {pattern:?}"));
                }
                tokens.push(Token::Literal(c.to_string()));
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            let unsupported = || {
                format!(
                    "pattern letters {:?} are not supported in date/time pattern {pattern:?}",
                    c.to_string().repeat(n)
                )
            };
            let token = match (c, n) {
                ('y' | 'u', 2) => Token::Year { min: 2, max: 2 },
                ('y' | 'u', 1) => Token::Year { min: 1, max: 9 },
                ('y' | 'u', n) => Token::Year {
                    min: n,
                    max: n.max(4),
                },
                ('M' | 'L', 1 | 2) => Token::Month { width: n },
                ('M' | 'L', 3) => Token::MonthName { long: false },
                ('M' | 'L', 4) => Token::MonthName { long: true },
                ('d', 1 | 2) => Token::Day { width: n },
                ('E', 1..=3) => Token::DayName { long: false },
                ('E', 4) => Token::DayName { long: true },
                ('H', 1 | 2) => Token::Hour24 { width: n },
                ('h', 1 | 2) => Token::Hour12 { width: n },
                ('a', 1) => Token::AmPm,
                ('m', 1 | 2) => Token::Minute { width: n },
                ('s', 1 | 2) => Token::Second { width: n },
                ('S', 1..=9) => Token::Fraction { digits: n },
                ('X' | 'x', 1) => Token::Offset {
                    z_allowed: c == 'X',
                    colon: false,
                    minutes: Minutes::Optional,
                },
                ('X' | 'x', 2) => Token::Offset {
                    z_allowed: c == 'X',
                    colon: false,
                    minutes: Minutes::Required,
                },
                ('X' | 'x', 3) => Token::Offset {
                    z_allowed: c == 'X',
                    colon: true,
                    minutes: Minutes::Required,
                },
                ('Z', 1..=3) => Token::Offset {
                    z_allowed: false,
                    colon: false,
                    minutes: Minutes::Required,
                },
                ('Z', 5) => Token::Offset {
                    z_allowed: true,
                    colon: true,
                    minutes: Minutes::Required,
                },
                _ => return Err(unsupported()),
            };
            tokens.push(token);
            i += n;
        }
        Ok(DateTimePattern { tokens })
    }

    /// Checks that `text` is, in full, a valid value in this pattern.
    pub fn check(&self, text: &str) -> Result<(), String> {
        let mut rest = text;
        let mut f = Fields::default();
        for token in &self.tokens {
            rest = self.step(token, rest, &mut f)?;
        }
        if !rest.is_empty() {
            return Err(format!("unexpected trailing text {rest:?}"));
        }
        if let (Some(month), Some(day)) = (f.month, f.day) {
            let max = days_in_month(f.year, month);
            if day > max {
                return Err(format!(
                    "day {day} is out of range for month {month} (max {max})"
                ));
            }
        }
        Ok(())
    }

    fn step<'t>(&self, token: &Token, rest: &'t str, f: &mut Fields) -> Result<&'t str, String> {
        Ok(match token {
            Token::Literal(l) => rest
                .strip_prefix(l.as_str())
                .ok_or_else(|| format!("expected {l:?} at {rest:?}"))?,
            Token::Year { min, max } => {
                let (v, r) = digits(rest, *min, *max, "year")?;
                f.year = Some(v as i64);
                r
            }
            Token::Month { width } => {
                let (v, r) = number(rest, *width, "month")?;
                f.month = Some(in_range(v, 1, 12, "month")?);
                r
            }
            Token::MonthName { long } => {
                let (i, r) = name(rest, &MONTHS, *long, "month name")?;
                f.month = Some(i as u32 + 1);
                r
            }
            Token::DayName { long } => name(rest, &DAYS, *long, "day name")?.1,
            Token::Day { width } => {
                let (v, r) = number(rest, *width, "day")?;
                f.day = Some(in_range(v, 1, 31, "day")?);
                r
            }
            Token::Hour24 { width } => {
                let (v, r) = number(rest, *width, "hour")?;
                in_range(v, 0, 23, "hour")?;
                r
            }
            Token::Hour12 { width } => {
                let (v, r) = number(rest, *width, "hour")?;
                in_range(v, 1, 12, "clock hour")?;
                r
            }
            Token::AmPm => {
                let upper = rest.get(..2).map(str::to_ascii_uppercase);
                match upper.as_deref() {
                    Some("AM") | Some("PM") => {}
                    _ => return Err(format!("expected AM or PM at {rest:?}")),
                }
                &rest[2..]
            }
            Token::Minute { width } => {
                let (v, r) = number(rest, *width, "minute")?;
                in_range(v, 0, 59, "minute")?;
                r
            }
            Token::Second { width } => {
                let (v, r) = number(rest, *width, "second")?;
                in_range(v, 0, 59, "second")?;
                r
            }
            Token::Fraction { digits: n } => digits(rest, *n, *n, "fraction of second")?.1,
            Token::OptionalFraction => match rest.strip_prefix('.') {
                Some(r) => digits(r, 1, 9, "fraction of second")?.1,
                None => rest,
            },
            Token::Offset {
                z_allowed,
                colon,
                minutes,
            } => {
                if *z_allowed {
                    if let Some(r) = rest.strip_prefix('Z') {
                        return Ok(r);
                    }
                }
                offset(rest, *colon, *minutes)?
            }
            Token::OptionalIsoOffset => {
                if let Some(r) = rest.strip_prefix('Z') {
                    r
                } else if rest.starts_with(['+', '-']) {
                    offset(rest, true, Minutes::Required)?
                } else {
                    rest
                }
            }
        })
    }
}

fn digits<'t>(rest: &'t str, min: usize, max: usize, what: &str) -> Result<(u64, &'t str), String> {
    let n = rest
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if n < min {
        return Err(format!(
            "expected {what} ({min} digit{}) at {rest:?}",
            if min == 1 { "" } else { "s" }
        ));
    }
    let v = rest[..n].parse::<u64>().map_err(|e| e.to_string())?;
    Ok((v, &rest[n..]))
}

/// Width 2: exactly two digits; width 1: one or two digits.
fn number<'t>(rest: &'t str, width: usize, what: &str) -> Result<(u64, &'t str), String> {
    if width == 2 {
        digits(rest, 2, 2, what)
    } else {
        digits(rest, 1, 2, what)
    }
}

fn in_range(v: u64, lo: u64, hi: u64, what: &str) -> Result<u32, String> {
    if (lo..=hi).contains(&v) {
        Ok(v as u32)
    } else {
        Err(format!("{what} {v} is out of range {lo}-{hi}"))
    }
}

fn name<'t>(
    rest: &'t str,
    names: &[&str],
    long: bool,
    what: &str,
) -> Result<(usize, &'t str), String> {
    for (i, n) in names.iter().enumerate() {
        let candidate = if long {
            n.to_string()
        } else {
            n[..3].to_string()
        };
        if rest.len() >= candidate.len()
            && rest.is_char_boundary(candidate.len())
            && rest[..candidate.len()].eq_ignore_ascii_case(&candidate)
        {
            return Ok((i, &rest[candidate.len()..]));
        }
    }
    Err(format!("expected a {what} at {rest:?}"))
}

fn offset(rest: &str, colon: bool, minutes: Minutes) -> Result<&str, String> {
    let r = rest
        .strip_prefix(['+', '-'])
        .ok_or_else(|| format!("expected a zone offset at {rest:?}"))?;
    let (h, mut r) = digits(r, 2, 2, "offset hours")?;
    in_range(h, 0, 18, "offset hours")?;
    let has_minutes = if colon {
        r.starts_with(':')
    } else {
        r.bytes().next().is_some_and(|b| b.is_ascii_digit())
    };
    if has_minutes || minutes == Minutes::Required {
        if colon {
            r = r
                .strip_prefix(':')
                .ok_or_else(|| format!("expected ':' in zone offset at {r:?}"))?;
        }
        let (m, r2) = digits(r, 2, 2, "offset minutes")?;
        in_range(m, 0, 59, "offset minutes")?;
        r = r2;
    }
    Ok(r)
}

fn days_in_month(year: Option<i64>, month: u32) -> u32 {
    match month {
        2 => match year {
            Some(y) if !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) => 28,
            _ => 29,
        },
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(pattern: &str, value: &str) -> bool {
        DateTimePattern::compile(pattern)
            .unwrap()
            .check(value)
            .is_ok()
    }

    #[test]
    fn dates_in_java_patterns_validate_the_calendar() {
        assert!(ok("yyyy-MM-dd", "2024-02-29"));
        assert!(!ok("yyyy-MM-dd", "2023-02-29"));
        assert!(!ok("yyyy-MM-dd", "2024-13-01"));
        assert!(!ok("yyyy-MM-dd", "2024-1-01"));
        assert!(ok("dd/MM/yy", "31/12/99"));
        assert!(ok("d MMM yyyy", "5 Jan 2024"));
        assert!(ok("EEEE, d MMMM yyyy", "Friday, 5 January 2024"));
    }

    #[test]
    fn times_and_timestamps_with_fractions_and_offsets() {
        assert!(ok("HH:mm:ss", "23:59:59"));
        assert!(!ok("HH:mm:ss", "24:00:00"));
        assert!(ok("hh:mm a", "07:30 PM"));
        assert!(ok("yyyy-MM-dd'T'HH:mm:ss.SSSX", "2024-05-01T10:00:00.123Z"));
        assert!(ok(
            "yyyy-MM-dd'T'HH:mm:ss.SSSX",
            "2024-05-01T10:00:00.123+02"
        ));
        assert!(ok(
            "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            "2024-05-01T10:00:00.123+02:00"
        ));
        assert!(!ok("yyyy-MM-dd'T'HH:mm:ss.SSSX", "2024-05-01T10:00:00.12Z"));
        assert!(ok("yyyy-MM-dd HH:mm:ssZ", "2024-05-01 10:00:00+0200"));
    }

    #[test]
    fn iso_defaults() {
        assert!(DateTimePattern::iso_datetime()
            .check("2024-05-01T10:00:00Z")
            .is_ok());
        assert!(DateTimePattern::iso_datetime()
            .check("2024-05-01T10:00:00.5+01:00")
            .is_ok());
        assert!(DateTimePattern::iso_datetime()
            .check("2024-05-01T10:00:00")
            .is_ok());
        assert!(DateTimePattern::iso_datetime()
            .check("2024-05-01 10:00:00")
            .is_err());
        assert!(DateTimePattern::iso_time().check("10:00:00").is_ok());
        assert!(DateTimePattern::iso_date().check("2024-05-01").is_ok());
    }

    #[test]
    fn unsupported_letters_are_rejected_at_compile_time() {
        assert!(DateTimePattern::compile("yyyy-MM-dd G")
            .unwrap_err()
            .contains("\"G\""));
        assert!(DateTimePattern::compile("yyyy[-MM]").is_err());
    }
}
