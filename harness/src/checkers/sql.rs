//! `sql <name>`: an invariant any described system can state in SQL, judged on one of its
//! databases once the run has healed and settled (read directly, not through a proxy).
//!
//! - `query` alone must return no rows; each row it returns is a counterexample, shown as
//!   JSON (`{"transfer_id": "…", "count": 2}`).
//! - `query` with `equals`: each must return one row of one column, and the two values must be
//!   equal (conservation: `SELECT sum(balance) FROM accounts` equals `SELECT 300`); `equals =
//!   { database, query }` runs the second on another database.
//! - `query` with `in = { database, query }` (or `not_in`): every row of the first must be
//!   among the rows of the second (or none of them), compared by their values in column
//!   order; each row that is not (or is) is a counterexample. The two queries may run on
//!   different databases: an invariant that spans services (every confirmed order was charged)
//!   needs no Rust.
//!
//! A row's counterexample names the history events of the requests whose idempotency key
//! appears among its values, so a duplicated transfer points at the retries that made it.
//!
//! A query the database refuses is a failed verdict that quotes the database's error: an
//! invariant that cannot be judged does not pass.

use faultline_chaos::scenario::{SqlCheck, SqlRows};
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

/// Judges `check` on `stack`'s databases.
pub async fn check(check: &SqlCheck, stack: &Stack, history: &History) -> Verdict {
    let name = name(check);
    let mut connection = match connect(stack, &check.database).await {
        Ok(c) => c,
        Err(e) => return Verdict::cannot_judge(&name, e),
    };
    // The database of `equals` or `in`/`not_in`, when it is another.
    let second = check
        .rows
        .as_ref()
        .map(|rows| &rows.database)
        .or(check.equals_database.as_ref())
        .filter(|database| **database != check.database);
    let mut other = match second {
        None => None,
        Some(database) => match connect(stack, database).await {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = connection.close().await;
                return Verdict::cannot_judge(&name, e);
            }
        },
    };
    let verdict = match &check.rows {
        Some(rows) => {
            let other_connection = other.as_mut().unwrap_or(&mut connection);
            let other_rows = rows_with_values(&rows.query, other_connection).await;
            judge_rows(check, rows, &name, &mut connection, other_rows, history).await
        }
        None => judge(check, &name, &mut connection, other.as_mut(), history).await,
    };
    let _ = connection.close().await;
    if let Some(other) = other {
        let _ = other.close().await;
    }
    verdict
}

/// A connection straight to `database` (not through a proxy), or why there is none.
async fn connect(stack: &Stack, database: &str) -> Result<PgConnection, String> {
    let url = stack.database_url(database).map_err(|e| e.to_string())?;
    PgConnection::connect(&url)
        .await
        .map_err(|e| format!("connecting to database {database}: {e}"))
}

/// `in` / `not_in`: each row of `check.query` compared, by its values in column order, with
/// the rows `other` gave.
async fn judge_rows(
    check: &SqlCheck,
    rows: &SqlRows,
    name: &str,
    connection: &mut PgConnection,
    other: Result<Vec<(Value, Vec<Value>)>, String>,
    history: &History,
) -> Verdict {
    let mine = match rows_with_values(&check.query, connection).await {
        Ok(mine) => mine,
        Err(e) => return Verdict::cannot_judge(name, format!("query: {e}")),
    };
    let key = if rows.among { "in" } else { "not_in" };
    let theirs = match other {
        Ok(theirs) => theirs,
        Err(e) => return Verdict::cannot_judge(name, format!("{key}.query: {e}")),
    };
    if let (Some((_, a)), Some((_, b))) = (mine.first(), theirs.first()) {
        if a.len() != b.len() {
            return Verdict::cannot_judge(
                name,
                format!(
                    "query gives rows of {} column(s), {key}.query of {}: they are compared value by value",
                    a.len(),
                    b.len()
                ),
            );
        }
    }
    let present: std::collections::HashSet<String> =
        theirs.iter().map(|(_, values)| comparable(values)).collect();
    let breaking: Vec<&Value> = mine
        .iter()
        .filter(|(_, values)| present.contains(&comparable(values)) != rows.among)
        .map(|(row, _)| row)
        .collect();
    let summary = format!(
        "{} of {} row(s) of `{}` on database {} {} the {} row(s) of `{}` on database {}",
        breaking.len(),
        mine.len(),
        one_line(&check.query),
        check.database,
        if rows.among { "are not among" } else { "are among" },
        theirs.len(),
        one_line(&rows.query),
        rows.database
    );
    let counterexamples = breaking
        .iter()
        .map(|row| {
            let (keys, events) = requests_of_row(row, history);
            let what = if rows.among {
                format!("{row}: not among the rows of {key}.query on database {}", rows.database)
            } else {
                format!("{row}: among the rows of {key}.query on database {}", rows.database)
            };
            Counterexample::new(what, keys, events)
        })
        .collect();
    Verdict::new(name, summary, truncate(counterexamples))
}

async fn judge(
    check: &SqlCheck,
    name: &str,
    connection: &mut PgConnection,
    equals_connection: Option<&mut PgConnection>,
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
    let expected = match rows_of(equals, equals_connection.unwrap_or(connection)).await {
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
    let summary = match &check.equals_database {
        Some(other) if *other != check.database => format!(
            "{} = {left} on database {}, {} = {right} on database {other}",
            one_line(&check.query),
            check.database,
            one_line(equals),
        ),
        _ => format!(
            "{} = {left}, {} = {right} on database {}",
            one_line(&check.query),
            one_line(equals),
            check.database
        ),
    };
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

/// Every row of `query`: as a JSON object of its columns, and its values in column order.
async fn rows_with_values(
    query: &str,
    connection: &mut PgConnection,
) -> Result<Vec<(Value, Vec<Value>)>, String> {
    let inner = query.trim().trim_end_matches(';');
    // `json_each` of a `json` (not `jsonb`) keeps the columns' order.
    let wrapped = format!(
        "SELECT row_to_json(faultline_row)::text, \
         (SELECT json_agg(value) FROM json_each(row_to_json(faultline_row)))::text \
         FROM ({inner}) AS faultline_row"
    );
    // The query is the scenario author's, run on the system's own database by design.
    let texts: Vec<(String, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(wrapped))
        .fetch_all(connection)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        })?;
    texts
        .iter()
        .map(|(row, values)| {
            let row: Value = serde_json::from_str(row).map_err(|e| e.to_string())?;
            let values: Vec<Value> = match values {
                Some(values) => serde_json::from_str(values).map_err(|e| e.to_string())?,
                None => Vec::new(),
            };
            Ok((row, values))
        })
        .collect()
}

/// A row's values as text that compares equal when the values are: numbers by their value
/// (`2` and `2.0`), everything else as JSON.
fn comparable(values: &[Value]) -> String {
    let normal: Vec<Value> = values
        .iter()
        .map(|value| match value.as_f64() {
            Some(number) if value.is_number() => serde_json::json!(number),
            _ => value.clone(),
        })
        .collect();
    Value::Array(normal).to_string()
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
    fn rows_compare_by_their_values_numbers_by_value() {
        assert_eq!(comparable(&[json!(2), json!("a")]), comparable(&[json!(2.0), json!("a")]));
        assert_ne!(comparable(&[json!(2), json!("a")]), comparable(&[json!("2"), json!("a")]));
        assert_ne!(comparable(&[json!("a"), json!("b")]), comparable(&[json!("b"), json!("a")]));
    }

    #[test]
    fn a_single_value_needs_one_row_of_one_column() {
        assert_eq!(single(&[json!({"sum": 300})]), Ok(json!(300)));
        assert!(single(&[]).unwrap_err().contains("one row, found 0"));
        assert!(single(&[json!({"a": 1, "b": 2})])
            .unwrap_err()
            .contains("one column, found 2"));
    }
}
