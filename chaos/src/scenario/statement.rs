//! Statement-level faults (`kind = "statement"`): on a service's link to Postgres, faultline's
//! statement proxy reads the conversation (simple and extended query protocol), picks the
//! statements whose text starts with a given prefix — every one, the n-th, or a seeded
//! fraction — and makes them fail with a chosen SQLSTATE, delays them, holds them until the
//! fault heals, or lets them run and loses their answer.
//!
//! ```toml
//! [[faults]]
//! start = "1s"
//! duration = "3s"
//! target = "inventory->postgres"
//! kind = "statement"
//! statement = "INSERT INTO reservations"  # the statement's start; any statement when left out
//! action = "error"          # or "delay" (with delay = "2s"), "hold", or "drop_answer"
//! sqlstate = "40001"        # the error's code (default 40001, serialization_failure)
//! nth = 1                   # only the first matching statement; or fraction = 0.5; else every one
//! ```
//!
//! A statement's text is compared with whitespace runs made one space, double quotes left out
//! and letters in either case: `statement = "update stock"` picks
//! `UPDATE "stock"\n   SET reserved = …`. `fingerprint = "SELECT FROM charges"` picks the
//! statements with that [`fingerprint`], as the history and `chaos explore` name them.
//! `COMMIT` (and `END`) picks the end of a transaction: an error there rolls the transaction
//! back, as a serialization failure at commit does.

use std::time::Duration;

use super::fields::Fields;
use super::intercept::Which;
use super::ScenarioError;

/// What a statement-level fault does to the statements it hits.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementAction {
    /// The statement fails with this SQLSTATE, raised by the server in its place: the
    /// transaction it was in is aborted as Postgres aborts it on any error (at `COMMIT`, the
    /// transaction is rolled back).
    Error(String),
    /// Sent to the server after this delay.
    Delay(Duration),
    /// Not sent until the fault heals (then sent): the service waits, holding its
    /// connection — and, inside a transaction, its locks.
    Hold,
    /// Run, and its answer never reaches the service: the service's connection is cut once
    /// the server has answered (a `COMMIT` was applied; the service cannot know).
    DropAnswer,
}

impl StatementAction {
    /// The name a scenario spells it with.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Error(_) => "error",
            Self::Delay(_) => "delay",
            Self::Hold => "hold",
            Self::DropAnswer => "drop_answer",
        }
    }
}

/// A statement-level fault on a service's link to Postgres.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementFault {
    /// Only statements that start with this (compared as [`normalize`] leaves both); any when
    /// `None`.
    pub statement: Option<String>,
    /// Only statements with this [`fingerprint`] (`SELECT FROM charges`, `SELECT` for one
    /// with no table), as the history and `chaos explore` name them; any when `None`.
    pub fingerprint: Option<String>,
    /// Which of the matching statements it hits.
    pub which: Which,
    /// What it does to them.
    pub action: StatementAction,
}

impl StatementFault {
    /// Whether the statement `sql` is one this fault picks from: it starts with
    /// [`statement`](Self::statement), and its [`fingerprint`] is
    /// [`fingerprint`](Self::fingerprint) (each when given).
    pub fn matches(&self, sql: &str) -> bool {
        let starts = self.statement.as_deref().is_none_or(|wanted| {
            let (prefix, text) = (normalize(wanted), normalize(sql));
            text.starts_with(&prefix)
                && text[prefix.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_')
        });
        let printed = self
            .fingerprint
            .as_deref()
            .is_none_or(|wanted| normalize(&fingerprint(sql)) == normalize(wanted));
        starts && printed
    }

    /// `error 40001 on INSERT INTO reservations, the 1st`: for the terminal and reports.
    pub fn describe(&self) -> String {
        let action = match &self.action {
            StatementAction::Error(code) => format!("error {code}"),
            StatementAction::Delay(delay) => format!("delay {}ms", delay.as_millis()),
            StatementAction::DropAnswer => "drop_answer".to_string(),
            StatementAction::Hold => "hold".to_string(),
        };
        let which = self.which.describe();
        let on = match (&self.statement, &self.fingerprint) {
            (Some(start), None) => start.clone(),
            (None, Some(print)) => format!("statements like {print}"),
            (Some(start), Some(print)) => format!("{start} (like {print})"),
            (None, None) => "any statement".into(),
        };
        format!("{action} on {on}, {which}")
    }
}

/// A statement's text as faults compare it: leading whitespace and comments left out, runs
/// of whitespace made one space, double quotes dropped, upper case.
pub fn normalize(sql: &str) -> String {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let mut out = String::with_capacity(rest.len());
    for word in rest.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| *c != '"').map(|c| c.to_ascii_uppercase()));
    }
    out
}

/// A statement's fingerprint: what it does and to which table, literals and parameters left
/// out — `INSERT INTO reservations`, `UPDATE stock`, `SELECT FROM charges`, `COMMIT`. What
/// the history names a hit statement by.
pub fn fingerprint(sql: &str) -> String {
    let text = normalize(sql);
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ',' || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    let Some(verb) = words.first().copied() else {
        return String::new();
    };
    let after = |keyword: &str| {
        words
            .iter()
            .position(|w| *w == keyword)
            .and_then(|i| words.get(i + 1))
            .map(|table| table.to_ascii_lowercase())
    };
    match verb {
        "INSERT" => after("INTO").map_or_else(|| verb.into(), |t| format!("INSERT INTO {t}")),
        "UPDATE" => words
            .get(1)
            .map_or_else(|| verb.into(), |t| format!("UPDATE {}", t.to_ascii_lowercase())),
        "DELETE" => after("FROM").map_or_else(|| verb.into(), |t| format!("DELETE FROM {t}")),
        "SELECT" => after("FROM").map_or_else(|| verb.into(), |t| format!("SELECT FROM {t}")),
        other => other.to_string(),
    }
}

/// Whether `sql` ends a transaction with a commit (`COMMIT`, `END`, with their optional words).
pub fn is_commit(sql: &str) -> bool {
    let text = normalize(sql);
    let text = text.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    matches!(
        text,
        "COMMIT" | "COMMIT WORK" | "COMMIT TRANSACTION" | "END" | "END WORK" | "END TRANSACTION"
    )
}

pub(super) const ACTIONS: &str = "error, delay, hold or drop_answer";

/// Reads the fields of a `kind = "statement"` fault (its target already checked to be a
/// service's link to Postgres).
pub(super) fn read(fields: &mut Fields<'_>) -> Result<StatementFault, ScenarioError> {
    let statement = fields.string(
        "statement",
        "the start of a statement such as \"INSERT INTO reservations\" or \"COMMIT\"",
    )?;
    if statement.as_deref().is_some_and(|s| normalize(s).is_empty()) {
        return Err(fields.error(
            "statement",
            "expected the start of a statement such as \"UPDATE stock\"; leave it out for any statement",
        ));
    }
    let print = fields.string(
        "fingerprint",
        "a statement's fingerprint as the history names it, such as \"SELECT FROM charges\"",
    )?;
    if print.as_deref().is_some_and(|p| normalize(p).is_empty()) {
        return Err(fields.error(
            "fingerprint",
            "expected a fingerprint such as \"UPDATE stock\"; leave it out for any statement",
        ));
    }
    let which = super::intercept::read_which(fields)?;
    let name = fields.required_string("action", ACTIONS)?;
    let action = match name.as_str() {
        "error" => {
            let code = fields
                .string("sqlstate", "a five-character SQLSTATE such as \"40001\"")?
                .unwrap_or_else(|| "40001".to_string());
            if code.len() != 5 || !code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
                return Err(fields.error(
                    "sqlstate",
                    format!("expected five digits or capital letters such as \"40001\" or \"40P01\", found {code:?}"),
                ));
            }
            if code.starts_with("00") {
                return Err(fields.error(
                    "sqlstate",
                    format!("{code:?} is a success class (00), not an error"),
                ));
            }
            StatementAction::Error(code)
        }
        "delay" => {
            let delay = fields.required_duration("delay")?;
            if delay.is_zero() {
                return Err(fields.error("delay", "expected more than 0s"));
            }
            StatementAction::Delay(delay)
        }
        "drop_answer" => StatementAction::DropAnswer,
        "hold" => StatementAction::Hold,
        other => {
            return Err(fields.error(
                "action",
                format!("unknown action {other:?}; expected {ACTIONS}"),
            ))
        }
    };
    Ok(StatementFault {
        statement,
        fingerprint: print,
        which,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(statement: Option<&str>) -> StatementFault {
        StatementFault {
            statement: statement.map(Into::into),
            fingerprint: None,
            which: Which::Every,
            action: StatementAction::DropAnswer,
        }
    }

    #[test]
    fn statements_match_by_their_start_in_any_case_and_spacing() {
        let insert = fault(Some("insert into reservations"));
        assert!(insert.matches("INSERT INTO reservations (reservation_id) VALUES ($1)"));
        assert!(insert.matches("  /* claim */ INSERT\n   INTO \"reservations\"(id) VALUES (1)"));
        assert!(!insert.matches("INSERT INTO reservations_archive VALUES (1)"));
        assert!(!insert.matches("INSERT INTO stock VALUES (1)"));
        assert!(fault(Some("COMMIT")).matches("commit"));
        assert!(!fault(Some("COMMIT")).matches("COMMITTED"));
        assert!(fault(None).matches("SELECT 1"));
        // By fingerprint, as exploration names a statement.
        let mut select = fault(None);
        select.fingerprint = Some("SELECT FROM charges".into());
        assert!(select.matches("SELECT charge_id, status FROM charges WHERE order_id = $1"));
        assert!(!select.matches("SELECT charge_id FROM order_voids"));
        select.fingerprint = Some("SELECT".into());
        assert!(select.matches("SELECT pg_advisory_xact_lock($1)"));
        assert!(!select.matches("SELECT 1 FROM charges"));
    }

    #[test]
    fn fingerprints_name_the_verb_and_the_table_without_values() {
        assert_eq!(
            fingerprint("INSERT INTO reservations(reservation_id, order_id) VALUES ($1, $2)"),
            "INSERT INTO reservations"
        );
        assert_eq!(fingerprint("UPDATE \"Stock\" SET reserved = reserved + 1"), "UPDATE stock");
        assert_eq!(fingerprint("select * from charges where order_id = $1"), "SELECT FROM charges");
        assert_eq!(fingerprint("DELETE FROM outbox WHERE id = 4"), "DELETE FROM outbox");
        assert_eq!(fingerprint("commit"), "COMMIT");
        assert_eq!(fingerprint("-- x\nBEGIN"), "BEGIN");
        assert!(is_commit("commit;") && is_commit("END TRANSACTION") && !is_commit("ROLLBACK"));
    }

    #[test]
    fn a_fault_describes_itself() {
        let mut f = fault(Some("INSERT INTO reservations"));
        f.action = StatementAction::Error("40001".into());
        f.which = Which::Nth(1);
        assert_eq!(f.describe(), "error 40001 on INSERT INTO reservations, the 1st");
        f.action = StatementAction::Delay(Duration::from_secs(2));
        f.statement = None;
        f.which = Which::Every;
        assert_eq!(f.describe(), "delay 2000ms on any statement, every one");
    }
}
