//! `sql <name>`: an invariant any described system can state in SQL, judged on one of its
//! databases once the run has healed and settled (read directly, not through a proxy).
//!
//! - `query` alone must return no rows; each row it returns is a counterexample, shown as
//!   JSON (`{"transfer_id": "…", "count": 2}`).
//! - `query` with `equals`: each must return one row of one column, and the two values must be
//!   equal (conservation: `SELECT sum(balance) FROM accounts` equals `SELECT 300`).
//!
//! A row's counterexample names the history events of the requests whose idempotency key
//! appears among its values, so a duplicated transfer points at the retries that made it.
//!
//! A query the database refuses is a failed verdict that quotes the database's error: an
//! invariant that cannot be judged does not pass.

use faultline_chaos::scenario::SqlCheck;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use super::{truncate, BoxFuture, CheckContext, Checker, Counterexample, Verdict};
use crate::history::{History, Op};
use crate::stack::Stack;

/// The checker of one `[[expectations.sql]]`.
pub struct SqlChecker(pub SqlCheck);

impl Checker for SqlChecker {
    fn name(&self) -> String {
        name(&self.0)
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(check(&self.0, run.stack, run.history))
    }
}

/// The verdict's name for `check`.
pub fn name(check: &SqlCheck) -> String {
    format!("sql {}", check.name)
}

/// Judges `check` on `stack`'s database.
pub async fn check(check: &SqlCheck, stack: &Stack, history: &History) -> Verdict {
    let name = name(check);
    let url = match stack.database_url(&check.database) {
        Ok(url) => url,
        Err(e) => return Verdict::cannot_judge(&name, e.to_string()),
    };
    let mut connection = match PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            return Verdict::cannot_judge(
                &name,
                format!("connecting to database {}: {e}", check.database),
            )
        }
    };
    let verdict = judge(check, &name, &mut connection, history).await;
    let _ = connection.close().await;
    verdict
}

async fn judge(
    check: &SqlCheck,
    name: &str,
    connection: &mut PgConnection,
    history: &History,
) -> Verdict {
    let rows = match rows_of(&check.query, connection).await {
        Ok(rows) => rows,
        Err(e) => return Verdict::cannot_judge(name, format!("query: {e}")),
    };
    let Some(equals) = &check.equals else {
        let summary = format!(
            "{} row(s) from database {} where none may be: {}",
            rows.len(),
            check.database,
            one_line(&check.query)
        );
        let counterexamples = rows
            .iter()
            .map(|row| {
                let (keys, events) = requests_of_row(row, history);
                Counterexample::new(row.to_string(), keys, events)
            })
            .collect();
        return Verdict::new(name, summary, truncate(counterexamples));
    };
    let expected = match rows_of(equals, connection).await {
        Ok(rows) => rows,
        Err(e) => return Verdict::cannot_judge(name, format!("equals: {e}")),
    };
    let (left, right) = match (single(&rows), single(&expected)) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(e), _) => return Verdict::cannot_judge(name, format!("query: {e}")),
        (_, Err(e)) => return Verdict::cannot_judge(name, format!("equals: {e}")),
    };
    let same = match (left.as_f64(), right.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => left == right,
    };
    let summary = format!(
        "{} = {left}, {} = {right} on database {}",
        one_line(&check.query),
        one_line(equals),
        check.database
    );
    let counterexamples = if same {
        vec![]
    } else {
        vec![Counterexample::new(
            format!(
                "expected {right} (from `{}`), found {left}",
                one_line(equals)
            ),
            vec![],
            vec![],
        )]
    };
    Verdict::new(name, summary, counterexamples)
}

/// Every row of `query`, each as a JSON object of its columns (Postgres renders them, so any
/// column type shows).
async fn rows_of(query: &str, connection: &mut PgConnection) -> Result<Vec<Value>, String> {
    let inner = query.trim().trim_end_matches(';');
    let wrapped =
        format!("SELECT row_to_json(faultline_row)::text FROM ({inner}) AS faultline_row");
    // The query is the scenario author's, run on the system's own database by design.
    let texts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(wrapped))
        .fetch_all(connection)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        })?;
    texts
        .iter()
        .map(|t| serde_json::from_str(t).map_err(|e| e.to_string()))
        .collect()
}

/// The request keys among `row`'s values (a transfer id the workload sent as its key), and
/// the history events of the requests that carried them.
fn requests_of_row(row: &Value, history: &History) -> (Vec<String>, Vec<usize>) {
    let values: Vec<&str> = match row {
        Value::Object(columns) => columns.values().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut keys: Vec<String> = Vec::new();
    let mut events = Vec::new();
    for event in history.events() {
        if let Op::Request { key, .. } = &event.op {
            if values.contains(&key.as_str()) {
                events.push(event.index);
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
    }
    (keys, events)
}

/// The one value of a one-row, one-column result.
fn single(rows: &[Value]) -> Result<Value, String> {
    match rows {
        [Value::Object(columns)] if columns.len() == 1 => {
            Ok(columns.values().next().cloned().unwrap_or(Value::Null))
        }
        [Value::Object(columns)] => Err(format!("expected one column, found {}", columns.len())),
        _ => Err(format!("expected one row, found {}", rows.len())),
    }
}

fn one_line(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_single_value_needs_one_row_of_one_column() {
        assert_eq!(single(&[json!({"sum": 300})]), Ok(json!(300)));
        assert!(single(&[]).unwrap_err().contains("one row, found 0"));
        assert!(single(&[json!({"a": 1, "b": 2})])
            .unwrap_err()
            .contains("one column, found 2"));
    }
}
