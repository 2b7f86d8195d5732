//! The statement proxy on a link to a real Postgres (behind the link's Toxiproxy proxy, as a
//! stack places it): each statement-level fault does what it says, through sqlx's simple and
//! extended query protocol, and the connection it hit behaves afterwards as Postgres's own
//! would. Needs the engine and images `ci/setup` provides.

use std::time::{Duration, Instant};

use faultline_chaos::scenario::intercept::Which;
use faultline_chaos::scenario::statement::{StatementAction, StatementFault};
use faultline_harness::history::{EventType, Op, Recorder};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_harness::intercept::postgres::StatementProxy;
use sqlx::{Connection, PgConnection};

fn fault(statement: &str, which: Which, action: StatementAction) -> StatementFault {
    StatementFault {
        statement: Some(statement.into()),
        fingerprint: None,
        which,
        action,
    }
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned())
}

async fn count(admin: &mut PgConnection, id: i32) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_one(admin)
        .await
        .expect("count")
}

async fn reserved(admin: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT reserved FROM stock WHERE sku = 'a'")
        .fetch_one(admin)
        .await
        .expect("reserved")
}

/// The statements the history says were hit, as `(statement, action)`.
fn hits(recorder: &Recorder) -> Vec<(String, String)> {
    recorder
        .finish()
        .events()
        .iter()
        .filter(|e| e.event_type == EventType::Invoke)
        .filter_map(|e| match &e.op {
            Op::RequestFault { method, path, action, .. } if method == "SQL" => {
                Some((path.clone(), action.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn statement_faults_fail_delay_and_lose_answers_of_real_statements() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig {
        kafka: false,
        ..InfraConfig::with_clients(["svc"])
    })
    .await?;
    let behind = infra.link("svc->postgres").expect("a link").address.parse()?;
    let proxy = StatementProxy::start("svc->postgres", behind).await?;
    let url = infra.postgres()?.url(&proxy.address().to_string());
    let mut admin = PgConnection::connect(&infra.postgres_admin_url()?).await?;
    sqlx::raw_sql(
        "CREATE TABLE stock (sku text PRIMARY KEY, reserved int NOT NULL);
         INSERT INTO stock VALUES ('a', 0);
         CREATE TABLE reservations (id int PRIMARY KEY)",
    )
    .execute(&mut admin)
    .await?;
    let mut service = PgConnection::connect(&url).await?;
    let recorder = Recorder::new();

    // Unfaulted, everything passes, and each statement's fingerprint is counted.
    sqlx::query("INSERT INTO reservations VALUES ($1)").bind(1).execute(&mut service).await?;
    assert_eq!(count(&mut admin, 1).await, 1);
    assert_eq!(proxy.statements().get("INSERT INTO reservations"), Some(&1));

    // error, extended protocol, inside a transaction: the statement fails with the code, the
    // whole transaction is aborted (the earlier UPDATE too), and the server refuses further
    // statements until the rollback, as after any error.
    let insert = fault("insert into reservations", Which::Every, StatementAction::Error("40001".into()));
    proxy.install(0, insert, 1, recorder.clone());
    let mut tx = service.begin().await?;
    sqlx::query("UPDATE stock SET reserved = reserved + 1 WHERE sku = 'a'").execute(&mut *tx).await?;
    let error = sqlx::query("INSERT INTO reservations VALUES ($1)").bind(2).execute(&mut *tx).await.unwrap_err();
    assert_eq!(sqlstate(&error).as_deref(), Some("40001"), "{error}");
    let after = sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap_err();
    assert_eq!(sqlstate(&after).as_deref(), Some("25P02"), "{after}");
    tx.rollback().await?;
    assert_eq!((count(&mut admin, 2).await, reserved(&mut admin).await), (0, 0));
    // The same prepared statement again (Bind and Execute only), then the simple protocol.
    let error = sqlx::query("INSERT INTO reservations VALUES ($1)").bind(3).execute(&mut service).await.unwrap_err();
    assert_eq!(sqlstate(&error).as_deref(), Some("40001"), "{error}");
    let error = sqlx::raw_sql("INSERT INTO reservations VALUES (4)").execute(&mut service).await.unwrap_err();
    assert_eq!(sqlstate(&error).as_deref(), Some("40001"), "{error}");
    assert_eq!((count(&mut admin, 3).await, count(&mut admin, 4).await), (0, 0));
    assert!(proxy.remove(0));
    sqlx::query("INSERT INTO reservations VALUES ($1)").bind(5).execute(&mut service).await?;
    assert_eq!(count(&mut admin, 5).await, 1, "healed, the statement runs");

    // error at COMMIT: the transaction is rolled back and the service told so; the
    // connection is idle again, ready for the next transaction. Only the 2nd commit is hit.
    let commit = fault("COMMIT", Which::Nth(2), StatementAction::Error("40001".into()));
    proxy.install(1, commit, 1, recorder.clone());
    for (id, fails) in [(6, false), (7, true), (8, false)] {
        let mut tx = service.begin().await?;
        sqlx::query("INSERT INTO reservations VALUES ($1)").bind(id).execute(&mut *tx).await?;
        let committed = tx.commit().await;
        assert_eq!(committed.is_err(), fails, "commit of {id}: {committed:?}");
        if let Err(error) = committed {
            assert_eq!(sqlstate(&error).as_deref(), Some("40001"), "{error}");
        }
        assert_eq!(count(&mut admin, id).await, i64::from(!fails), "reservation {id}");
    }
    proxy.remove(1);

    // drop_answer at COMMIT: the commit is applied, and the service only sees its connection
    // cut.
    let lost = fault("COMMIT", Which::Every, StatementAction::DropAnswer);
    proxy.install(2, lost, 1, recorder.clone());
    let mut tx = service.begin().await?;
    sqlx::query("INSERT INTO reservations VALUES ($1)").bind(9).execute(&mut *tx).await?;
    let error = tx.commit().await.unwrap_err();
    assert!(error.as_database_error().is_none(), "not an answer of the server: {error}");
    assert_eq!(count(&mut admin, 9).await, 1, "the commit whose answer was lost was applied");
    proxy.remove(2);

    // delay: the statement is sent late, on a new connection.
    let slow = fault("SELECT", Which::Every, StatementAction::Delay(Duration::from_millis(1500)));
    proxy.install(3, slow, 1, recorder.clone());
    let mut service = PgConnection::connect(&url).await?;
    let clock = Instant::now();
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut service).await?;
    assert_eq!(one, 1);
    assert!(clock.elapsed() >= Duration::from_millis(1500), "{:?}", clock.elapsed());
    proxy.clear();

    // hold: the statement is not sent until the fault heals, then it runs.
    let held = fault("UPDATE stock", Which::Every, StatementAction::Hold);
    proxy.install(4, held, 1, recorder.clone());
    let mut holder = PgConnection::connect(&url).await?;
    let update = tokio::spawn(async move {
        sqlx::query("UPDATE stock SET reserved = reserved + 1 WHERE sku = 'a'")
            .execute(&mut holder)
            .await
            .map(|done| done.rows_affected())
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !hits(&recorder).iter().any(|(s, a)| s == "UPDATE stock" && a == "hold") {
        assert!(Instant::now() < deadline, "the UPDATE never reached the proxy");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!update.is_finished(), "held, it cannot have been answered");
    assert_eq!(reserved(&mut admin).await, 0, "held, it has not run");
    assert!(proxy.remove(4));
    assert_eq!(update.await??, 1, "healed, it runs");
    assert_eq!(reserved(&mut admin).await, 1);

    // Each hit is in the history, named by the statement's fingerprint.
    let hits = hits(&recorder);
    let named = |statement: &str, action: &str| {
        hits.iter().filter(|(s, a)| s == statement && a == action).count()
    };
    assert_eq!(named("INSERT INTO reservations", "error"), 3, "{hits:?}");
    assert_eq!(named("COMMIT", "error"), 1, "{hits:?}");
    assert_eq!(named("COMMIT", "drop_answer"), 1, "{hits:?}");
    assert!(named("SELECT", "delay") >= 1, "{hits:?}");
    infra.shutdown().await?;
    Ok(())
}
