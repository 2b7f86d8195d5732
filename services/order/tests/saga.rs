//! The saga's step transitions, against real Postgres and scripted fake dependencies.
//! Run with `source .faultline/images.env && cargo test -p faultline-order --test saga`.
//!
//! One Postgres stack serves every scenario (each its own order); the fakes answer from a
//! script and log every call, so each scenario checks the calls made, the order's final status
//! and reason, the persisted saga and the events in the outbox.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_order::clients::{Charge, Inventory, OrderLine, Payments, RemoteError, Reservation};
use faultline_order::saga::{OrderSaga, SagaEnd, SagaError, SagaSettings};
use faultline_order::store::{CancelReason, NewOrder, OrderStatus, SagaStep, Store};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Answers of one operation: scripted ones first, then `then` forever.
struct Answers<T> {
    scripted: VecDeque<Result<T, RemoteError>>,
    then: Result<T, RemoteError>,
}

impl<T: Clone> Answers<T> {
    fn always(answer: Result<T, RemoteError>) -> Self {
        Self {
            scripted: VecDeque::new(),
            then: answer,
        }
    }

    fn first(mut self, times: usize, answer: Result<T, RemoteError>) -> Self {
        self.scripted.extend(std::iter::repeat_n(answer, times));
        self
    }

    fn next(&mut self) -> Result<T, RemoteError> {
        self.scripted
            .pop_front()
            .unwrap_or_else(|| self.then.clone())
    }
}

fn unavailable() -> RemoteError {
    RemoteError::Unavailable("fake: connection refused".into())
}

fn refused() -> RemoteError {
    RemoteError::Refused {
        dependency: "fake",
        detail: "fake: 409".into(),
    }
}

struct Script {
    reserve: Answers<Reservation>,
    charge: Answers<Charge>,
    commit: Answers<()>,
    refund: Answers<()>,
    release: Answers<()>,
}

impl Default for Script {
    /// Every dependency healthy and agreeing.
    fn default() -> Self {
        Self {
            reserve: Answers::always(Ok(Reservation::Reserved)),
            charge: Answers::always(Ok(Charge::Charged)),
            commit: Answers::always(Ok(())),
            refund: Answers::always(Ok(())),
            release: Answers::always(Ok(())),
        }
    }
}

/// Both dependencies in one fake, answering from a [`Script`] and logging every call.
#[derive(Clone)]
struct Fake(Arc<Mutex<(Script, Vec<&'static str>)>>);

impl Fake {
    fn new(script: Script) -> Self {
        Self(Arc::new(Mutex::new((script, Vec::new()))))
    }

    fn answer<T>(
        &self,
        call: &'static str,
        pick: impl FnOnce(&mut Script) -> Result<T, RemoteError>,
    ) -> Result<T, RemoteError> {
        let mut state = self.0.lock().unwrap();
        state.1.push(call);
        pick(&mut state.0)
    }

    fn calls(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().1.clone()
    }

    /// Calls with repeats collapsed: `[reserve, charge×3, refund]` → `[reserve, charge, refund]`.
    fn distinct_calls(&self) -> Vec<&'static str> {
        let mut calls = self.calls();
        calls.dedup();
        calls
    }

    fn count(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| **c == call).count()
    }
}

impl Payments for Fake {
    async fn charge(&self, _line: &OrderLine) -> Result<Charge, RemoteError> {
        self.answer("charge", |s| s.charge.next())
    }
    async fn refund(&self, _order_id: Uuid) -> Result<(), RemoteError> {
        self.answer("refund", |s| s.refund.next())
    }
}

impl Inventory for Fake {
    async fn reserve(&self, _line: &OrderLine) -> Result<Reservation, RemoteError> {
        self.answer("reserve", |s| s.reserve.next())
    }
    async fn commit(&self, _order_id: Uuid) -> Result<(), RemoteError> {
        self.answer("commit", |s| s.commit.next())
    }
    async fn release(&self, _order_id: Uuid) -> Result<(), RemoteError> {
        self.answer("release", |s| s.release.next())
    }
}

/// Fast settings: a step gives up after 300 ms; retries back off up to 10-50 ms.
const FAST: SagaSettings = SagaSettings {
    step_deadline: Duration::from_millis(300),
    retry_base_delay: Duration::from_millis(10),
    retry_max_delay: Duration::from_millis(50),
};

async fn place_order(store: &Store, card: &str) -> anyhow::Result<Uuid> {
    let order = NewOrder {
        customer_id: "c-1".into(),
        sku: "sku-1".into(),
        quantity: 2,
        amount_cents: 1999,
        card: card.into(),
    };
    match store
        .create_order(&Uuid::new_v4().to_string(), "fp", &order)
        .await?
    {
        faultline_order::store::CreateOutcome::Created { order_id, .. } => Ok(order_id),
        other => anyhow::bail!("expected a new order, got {other:?}"),
    }
}

/// The `(type, reason)` of each outbox event of `order_id`, in order.
async fn events(pool: &PgPool, order_id: Uuid) -> anyhow::Result<Vec<(String, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT payload->>'type', payload->>'reason' FROM outbox WHERE key = $1 ORDER BY id",
    )
    .bind(order_id.to_string())
    .fetch_all(pool)
    .await?)
}

/// What one scenario expects at its end.
struct Expected {
    calls: &'static [&'static str],
    end: SagaEnd,
}

/// Runs the saga of `order_id` with `fake` to its end and checks calls, status, saga and events.
async fn check(
    name: &str,
    store: &Store,
    order_id: Uuid,
    fake: &Fake,
    expected: Expected,
) -> anyhow::Result<()> {
    let saga = OrderSaga::new(store.clone(), fake.clone(), fake.clone(), FAST);
    let end = tokio::time::timeout(
        Duration::from_secs(30),
        saga.run(order_id, &CancellationToken::new()),
    )
    .await
    .with_context(|| format!("{name}: saga did not end within 30 s"))?
    .with_context(|| format!("{name}: saga failed"))?;
    ensure!(
        end == expected.end,
        "{name}: ended {end:?}, expected {:?}",
        expected.end
    );
    ensure!(
        fake.distinct_calls() == expected.calls,
        "{name}: calls {:?}, expected (repeats collapsed) {:?}",
        fake.calls(),
        expected.calls
    );
    let saga_row = store.saga(order_id).await?.context("saga row")?;
    ensure!(
        saga_row.step == SagaStep::Done,
        "{name}: saga at {:?}, expected DONE",
        saga_row.step
    );
    let order = saga_row.order;
    let kinds = events(store.pool(), order_id).await?;
    match expected.end {
        SagaEnd::Confirmed => {
            ensure!(
                order.status == OrderStatus::Confirmed && order.reason.is_none(),
                "{name}: order {order:?}"
            );
            ensure!(
                kinds
                    == [
                        ("OrderCreated".into(), None),
                        ("OrderConfirmed".into(), None)
                    ],
                "{name}: events {kinds:?}"
            );
        }
        SagaEnd::Cancelled(reason) => {
            ensure!(
                order.status == OrderStatus::Cancelled
                    && order.reason.as_deref() == Some(reason.as_str()),
                "{name}: order {order:?}, expected CANCELLED {reason}"
            );
            ensure!(
                kinds
                    == [
                        ("OrderCreated".into(), None),
                        ("OrderCancelled".into(), Some(reason.as_str().into()))
                    ],
                "{name}: events {kinds:?}"
            );
        }
        SagaEnd::AlreadyFinal => {}
    }
    Ok(())
}

#[tokio::test]
async fn saga_transitions_confirm_compensate_and_resume_as_specified() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig {
        kafka: false,
        ..InfraConfig::with_clients(["order"])
    })
    .await?;
    let pool = faultline_kit::db::connect(&infra.postgres_url("order")?, 10).await?;
    faultline_kit::db::migrate(&pool, &faultline_order::MIGRATOR).await?;
    let store = Store::new(pool.clone());
    let result = scenarios(&store).await;
    pool.close().await;
    infra.shutdown().await?;
    result
}

async fn scenarios(store: &Store) -> anyhow::Result<()> {
    use CancelReason::*;
    let card = "4242424242424242";

    // Forward to the end.
    let fake = Fake::new(Script::default());
    let order = place_order(store, card).await?;
    check(
        "happy path",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "commit"],
            end: SagaEnd::Confirmed,
        },
    )
    .await?;
    let saga = store.saga(order).await?.context("saga")?;
    ensure!(
        saga.charge_attempted && saga.cancel_reason.is_none(),
        "happy path saga: {saga:?}"
    );

    // Definitive failures.
    let fake = Fake::new(Script {
        reserve: Answers::always(Ok(Reservation::OutOfStock)),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "out of stock",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "release"],
            end: SagaEnd::Cancelled(OutOfStock),
        },
    )
    .await?;
    ensure!(
        !store.saga(order).await?.context("saga")?.charge_attempted,
        "out of stock must not attempt a charge"
    );

    let fake = Fake::new(Script {
        charge: Answers::always(Ok(Charge::Declined)),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "card declined",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "refund", "release"],
            end: SagaEnd::Cancelled(CardDeclined),
        },
    )
    .await?;

    // Unavailability: retried until the step deadline, then compensated.
    let fake = Fake::new(Script {
        charge: Answers::always(Err(unavailable())),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "payment unavailable",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "refund", "release"],
            end: SagaEnd::Cancelled(PaymentUnavailable),
        },
    )
    .await?;
    ensure!(
        fake.count("charge") >= 2,
        "an unavailable charge is retried before giving up: {:?}",
        fake.calls()
    );

    let fake = Fake::new(Script {
        reserve: Answers::always(Err(unavailable())),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "inventory unavailable",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "release"],
            end: SagaEnd::Cancelled(InventoryUnavailable),
        },
    )
    .await?;
    ensure!(
        fake.count("reserve") >= 2,
        "an unavailable reserve is retried: {:?}",
        fake.calls()
    );

    // A refusal the step does not expect is not retried.
    let fake = Fake::new(Script {
        charge: Answers::always(Err(refused())),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "charge refused",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "refund", "release"],
            end: SagaEnd::Cancelled(PaymentUnavailable),
        },
    )
    .await?;
    ensure!(
        fake.count("charge") == 1,
        "a refused charge is not retried: {:?}",
        fake.calls()
    );

    // Compensations are retried until they succeed, refusals included.
    let fake = Fake::new(Script {
        charge: Answers::always(Ok(Charge::Declined)),
        refund: Answers::always(Ok(())).first(3, Err(unavailable())),
        release: Answers::always(Ok(())).first(2, Err(refused())),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "refund fails, then succeeds",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "refund", "release"],
            end: SagaEnd::Cancelled(CardDeclined),
        },
    )
    .await?;
    ensure!(
        fake.count("refund") == 4 && fake.count("release") == 3,
        "compensation retries: {:?}",
        fake.calls()
    );

    // After the charge the saga only goes forward: an unavailable commit is retried past the deadline.
    let fake = Fake::new(Script {
        commit: Answers::always(Ok(())).first(30, Err(unavailable())),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    check(
        "commit unavailable for a while",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "commit"],
            end: SagaEnd::Confirmed,
        },
    )
    .await?;
    ensure!(
        fake.count("commit") == 31,
        "commit retries: {:?}",
        fake.calls()
    );

    // A compensation that never succeeds leaves the order PENDING, never falsely CANCELLED.
    let fake = Fake::new(Script {
        charge: Answers::always(Err(unavailable())),
        refund: Answers::always(Err(unavailable())),
        ..Script::default()
    });
    let order = place_order(store, card).await?;
    let saga = OrderSaga::new(store.clone(), fake.clone(), fake.clone(), FAST);
    let shutdown = CancellationToken::new();
    let running = saga.run(order, &shutdown);
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let row = store.saga(order).await?.context("saga")?;
            if row.step == SagaStep::Refund && row.attempts >= 3 {
                shutdown.cancel();
                return anyhow::Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the refund was not retried 3 times within 30 s: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (ended, watched) = tokio::join!(running, watcher);
    watched?;
    ensure!(
        matches!(ended, Err(SagaError::Interrupted(_))),
        "stuck saga ended {ended:?}"
    );
    let row = store.saga(order).await?.context("saga")?;
    ensure!(
        row.order.status == OrderStatus::Pending,
        "a never-refunded order must stay PENDING: {row:?}"
    );
    ensure!(
        row.cancel_reason == Some(PaymentUnavailable) && row.last_error.is_some(),
        "stuck saga row: {row:?}"
    );
    ensure!(
        events(store.pool(), order).await?.len() == 1,
        "a stuck order announces nothing but its creation"
    );

    // Resume from every persisted step, as after a SIGKILL.
    let order = place_order(store, card).await?;
    let fake = Fake::new(Script::default());
    check(
        "resume at RESERVE",
        store,
        order,
        &fake,
        Expected {
            calls: &["reserve", "charge", "commit"],
            end: SagaEnd::Confirmed,
        },
    )
    .await?;

    let order = place_order(store, card).await?;
    store.advance(order, SagaStep::Charge).await?;
    store.mark_charge_attempted(order).await?; // killed while the charge was in flight
    let fake = Fake::new(Script::default());
    check(
        "resume at CHARGE",
        store,
        order,
        &fake,
        Expected {
            calls: &["charge", "commit"],
            end: SagaEnd::Confirmed,
        },
    )
    .await?;

    let order = place_order(store, card).await?;
    store.advance(order, SagaStep::Charge).await?;
    store.mark_charge_attempted(order).await?;
    let fake = Fake::new(Script {
        charge: Answers::always(Err(unavailable())),
        ..Script::default()
    });
    check(
        "resume at CHARGE, payment down",
        store,
        order,
        &fake,
        Expected {
            calls: &["charge", "refund", "release"],
            end: SagaEnd::Cancelled(PaymentUnavailable),
        },
    )
    .await?;

    let order = place_order(store, card).await?;
    store.advance(order, SagaStep::Commit).await?;
    let fake = Fake::new(Script::default());
    check(
        "resume at COMMIT",
        store,
        order,
        &fake,
        Expected {
            calls: &["commit"],
            end: SagaEnd::Confirmed,
        },
    )
    .await?;

    let order = place_order(store, card).await?;
    store
        .compensate(order, SagaStep::Refund, PaymentUnavailable)
        .await?;
    let fake = Fake::new(Script::default());
    check(
        "resume at REFUND",
        store,
        order,
        &fake,
        Expected {
            calls: &["refund", "release"],
            end: SagaEnd::Cancelled(PaymentUnavailable),
        },
    )
    .await?;

    let order = place_order(store, card).await?;
    store
        .compensate(order, SagaStep::Release, OutOfStock)
        .await?;
    let fake = Fake::new(Script::default());
    check(
        "resume at RELEASE",
        store,
        order,
        &fake,
        Expected {
            calls: &["release"],
            end: SagaEnd::Cancelled(OutOfStock),
        },
    )
    .await?;

    // A finished saga run again changes nothing and announces nothing twice.
    let fake = Fake::new(Script::default());
    check(
        "resume at DONE",
        store,
        order,
        &fake,
        Expected {
            calls: &[],
            end: SagaEnd::AlreadyFinal,
        },
    )
    .await?;
    ensure!(
        events(store.pool(), order).await?.len() == 2,
        "a re-run saga wrote a second final event"
    );
    ensure!(
        !store.unfinished_sagas().await?.contains(&order),
        "a finished saga is listed as unfinished"
    );
    Ok(())
}
