//! The orchestrated order saga: [`OrderSaga`] drives one order from PENDING to CONFIRMED or
//! CANCELLED by calling inventory and payment, persisting its progress (table `sagas`) after
//! every step; [`SagaWorker`] runs sagas as tasks and resumes the unfinished ones at start-up.
//!
//! # Steps
//!
//! `step` in the `sagas` row is the next thing to do. Forward steps, then compensations:
//!
//! ```text
//! RESERVE ── reserved ──────────────► CHARGE ── charged ─► COMMIT ── committed ─► DONE (CONFIRMED)
//!    │ out of stock       → RELEASE      │ declined      → REFUND     │ refused (4xx) → REFUND
//!    │ unavailable*/4xx   → RELEASE      │ unavailable*/4xx → REFUND  │ unavailable: retried until it answers
//!    ▼                                   ▼                            ▼
//! REFUND ── refunded ─► RELEASE ── released ─► DONE (CANCELLED, reason)
//!   (both retried until they succeed: a compensation is never dropped)
//! ```
//!
//! `*` unavailable = circuit open, bulkhead full, timeout, transport error, 5xx: the step is
//! retried with jittered backoff until [`SagaSettings::step_deadline`], then compensated.
//! Reasons: out of stock → `out_of_stock`; declined → `card_declined`; payment unavailable or
//! refused → `payment_unavailable`; inventory unavailable or refused → `inventory_unavailable`.
//!
//! Why COMMIT never gives up on unavailability: once the charge succeeded (the saga's pivot)
//! the saga only goes forward. A commit whose answer was lost may have happened; releasing
//! after it would hand back units that already left stock. So an unreachable inventory leaves
//! the order PENDING until inventory answers, then CONFIRMED.
//!
//! `charge_attempted` is persisted *before* the first charge request leaves (in the same write
//! that moves the saga to CHARGE), so a saga that gives up on CHARGE, or a process killed
//! mid-charge, always refunds. Every remote call is
//! idempotent (see [`crate::clients`]), so re-running the persisted step after a crash is safe.
//!
//! A compensation that never completes leaves the order PENDING, with the step's `attempts`
//! and `last_error` in its `sagas` row: stuck, visibly, rather than falsely CANCELLED.
//!
//! ```no_run
//! # async fn demo(store: faultline_order::store::Store,
//! #     payments: faultline_order::clients::HttpPayments,
//! #     inventory: faultline_order::clients::HttpInventory,
//! #     order_id: uuid::Uuid) -> Result<(), faultline_order::saga::SagaError> {
//! use std::sync::Arc;
//! use faultline_order::saga::{OrderSaga, SagaSettings, SagaWorker};
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let saga = Arc::new(OrderSaga::new(store, payments, inventory, SagaSettings::default()));
//! let end = saga.run(order_id, &shutdown).await?; // one saga to its end, in this task
//! let worker = SagaWorker::spawn(saga, shutdown.clone()); // or many, as background tasks
//! worker.submit(order_id);
//! # let _ = end; Ok(()) }
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use faultline_kit::resilience::RetryPolicy;
use faultline_kit::seeded;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::clients::{Charge, Inventory, OrderLine, Payments, RemoteError, Reservation};
use crate::store::{CancelReason, Order, OrderStatus, SagaStep, Store};

/// How patient the saga is with its dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaSettings {
    /// How long RESERVE and CHARGE keep retrying an unavailable dependency before compensating.
    pub step_deadline: Duration,
    /// The backoff ceiling before the first retry of a step; doubles per retry.
    pub retry_base_delay: Duration,
    /// The cap on the backoff ceiling (compensations retry forever at this pace).
    pub retry_max_delay: Duration,
}

impl Default for SagaSettings {
    /// 20 s per step, backoff from up to 200 ms, capped at 2 s.
    fn default() -> Self {
        Self {
            step_deadline: Duration::from_secs(20),
            retry_base_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(2),
        }
    }
}

impl SagaSettings {
    fn backoff(&self, retry: u32) -> Duration {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: self.retry_base_delay,
            max_delay: self.retry_max_delay.max(self.retry_base_delay),
        };
        policy.backoff(retry, &mut rand::rng())
    }
}

/// Why a saga stopped before its end; it resumes from its persisted step.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// Its progress could not be read or written.
    #[error("saga of order {order_id}: database: {source}")]
    Database { order_id: Uuid, source: sqlx::Error },
    /// No saga is stored for this order.
    #[error("no saga is stored for order {0}")]
    Unknown(Uuid),
    /// Shutdown was requested.
    #[error("saga of order {0} interrupted by shutdown")]
    Interrupted(Uuid),
}

/// How a saga ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaEnd {
    Confirmed,
    Cancelled(CancelReason),
    /// The order was final already (a saga re-run after its end was written).
    AlreadyFinal,
}

/// How long a step keeps trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// Unavailability is retried until the step deadline; a refusal ends the step at once.
    UntilDeadline,
    /// Unavailability is retried forever; a refusal ends the step at once.
    WhileUnavailable,
    /// Everything is retried until it succeeds (compensations).
    UntilSuccess,
}

/// The orchestrator of one order's saga; see the module docs for the steps.
pub struct OrderSaga<P, I> {
    store: Store,
    payments: P,
    inventory: I,
    settings: SagaSettings,
}

impl<P: Payments, I: Inventory> OrderSaga<P, I> {
    pub fn new(store: Store, payments: P, inventory: I, settings: SagaSettings) -> Self {
        Self {
            store,
            payments,
            inventory,
            settings,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Drives the saga of `order_id` from its persisted step to its end. Stops early only on a
    /// database failure or shutdown (then it is resumed later from the persisted step).
    pub async fn run(
        &self,
        order_id: Uuid,
        shutdown: &CancellationToken,
    ) -> Result<SagaEnd, SagaError> {
        let db = |source| SagaError::Database { order_id, source };
        let record = self
            .store
            .saga(order_id)
            .await
            .map_err(db)?
            .ok_or(SagaError::Unknown(order_id))?;
        let order = record.order;
        let line = OrderLine {
            order_id,
            sku: order.sku.clone(),
            quantity: order.quantity,
            amount_cents: order.amount_cents,
            card: order.card.clone(),
        };
        let mut step = record.step;
        let mut charge_attempted = record.charge_attempted;
        let mut cancel_reason = record.cancel_reason;
        loop {
            if shutdown.is_cancelled() {
                return Err(SagaError::Interrupted(order_id));
            }
            tracing::debug!(%order_id, %step, "saga step");
            let (next, reason) = match step {
                SagaStep::Reserve => {
                    let verdict = self
                        .attempt(order_id, step, Patience::UntilDeadline, shutdown, || {
                            self.inventory.reserve(&line)
                        })
                        .await?;
                    match verdict {
                        Ok(Reservation::Reserved) => (SagaStep::Charge, None),
                        Ok(Reservation::OutOfStock) => {
                            (SagaStep::Release, Some(CancelReason::OutOfStock))
                        }
                        Err(_) => (SagaStep::Release, Some(CancelReason::InventoryUnavailable)),
                    }
                }
                SagaStep::Charge => {
                    // Seeded bug: the attempt is recorded once payment has answered.
                    let record_late = seeded::active(seeded::ORDER_RECORDS_CHARGE_AFTER_CALL);
                    if !charge_attempted && !record_late {
                        self.store
                            .mark_charge_attempted(order_id)
                            .await
                            .map_err(db)?;
                        charge_attempted = true;
                    }
                    let verdict = self
                        .attempt(order_id, step, Patience::UntilDeadline, shutdown, || {
                            self.payments.charge(&line)
                        })
                        .await?;
                    if record_late && !charge_attempted && verdict.is_ok() {
                        self.store
                            .mark_charge_attempted(order_id)
                            .await
                            .map_err(db)?;
                        charge_attempted = true;
                    }
                    match verdict {
                        Ok(Charge::Charged) => (SagaStep::Commit, None),
                        Ok(Charge::Declined) => {
                            (SagaStep::Refund, Some(CancelReason::CardDeclined))
                        }
                        // Seeded bug: no answer is taken for "not charged": nothing to refund.
                        Err(RemoteError::Unavailable(_))
                            if seeded::active(
                                seeded::ORDER_COMPENSATES_UNKNOWN_CHARGE_WITHOUT_REFUND,
                            ) =>
                        {
                            (SagaStep::Release, Some(CancelReason::PaymentUnavailable))
                        }
                        Err(_) => (SagaStep::Refund, Some(CancelReason::PaymentUnavailable)),
                    }
                }
                SagaStep::Commit => {
                    let verdict = self
                        .attempt(order_id, step, Patience::WhileUnavailable, shutdown, || {
                            self.inventory.commit(order_id)
                        })
                        .await?;
                    match verdict {
                        Ok(()) => {
                            let confirmed = self.store.confirm(order_id).await.map_err(db)?;
                            return Ok(self.ended(order_id, confirmed, SagaEnd::Confirmed));
                        }
                        Err(_) => (SagaStep::Refund, Some(CancelReason::InventoryUnavailable)),
                    }
                }
                SagaStep::Refund => {
                    self.attempt(order_id, step, Patience::UntilSuccess, shutdown, || {
                        self.payments.refund(order_id)
                    })
                    .await?
                    .expect("compensations are retried until they succeed");
                    (SagaStep::Release, None)
                }
                SagaStep::Release => {
                    self.attempt(order_id, step, Patience::UntilSuccess, shutdown, || {
                        self.inventory.release(order_id)
                    })
                    .await?
                    .expect("compensations are retried until they succeed");
                    // A saga persisted by an older run without a reason still ends cancelled.
                    let reason = cancel_reason.unwrap_or(CancelReason::InventoryUnavailable);
                    let cancelled = self.store.cancel(order_id, reason).await.map_err(db)?;
                    return Ok(self.ended(order_id, cancelled, SagaEnd::Cancelled(reason)));
                }
                SagaStep::Done => return Ok(SagaEnd::AlreadyFinal),
            };
            match reason {
                // Reserved: on to CHARGE, whose request leaves next (one write for both).
                None if next == SagaStep::Charge
                    && !charge_attempted
                    && !seeded::active(seeded::ORDER_RECORDS_CHARGE_AFTER_CALL) =>
                {
                    self.store.advance_to_charge(order_id).await.map_err(db)?;
                    charge_attempted = true;
                }
                None => self.store.advance(order_id, next).await.map_err(db)?,
                Some(reason) => {
                    // Compensation starts with a refund only when a charge may have happened.
                    let next = if next == SagaStep::Refund && !charge_attempted {
                        SagaStep::Release
                    } else {
                        next
                    };
                    tracing::info!(%order_id, failed_step = %step, compensation = %next, %reason, "saga compensating");
                    self.store
                        .compensate(order_id, next, reason)
                        .await
                        .map_err(db)?;
                    cancel_reason = Some(reason);
                    step = next;
                    continue;
                }
            }
            step = next;
        }
    }

    /// Calls `call` until it gives a verdict `patience` accepts: `Ok(Ok(_))` on success,
    /// `Ok(Err(_))` when the step gives up. Every failed attempt is persisted.
    async fn attempt<T, F, Fut>(
        &self,
        order_id: Uuid,
        step: SagaStep,
        patience: Patience,
        shutdown: &CancellationToken,
        call: F,
    ) -> Result<Result<T, RemoteError>, SagaError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, RemoteError>>,
    {
        let deadline = Instant::now() + self.settings.step_deadline;
        let mut retry: u32 = 0;
        loop {
            let error = match call().await {
                Ok(value) => return Ok(Ok(value)),
                Err(error) => error,
            };
            metrics::counter!("order_saga_step_failures_total", "step" => step.as_str())
                .increment(1);
            self.store
                .record_failure(order_id, &error.to_string())
                .await
                .map_err(|source| SagaError::Database { order_id, source })?;
            let give_up = match (&error, patience) {
                (_, Patience::UntilSuccess) => false,
                (RemoteError::Refused { .. }, _) => true,
                (RemoteError::Unavailable(_), Patience::WhileUnavailable) => false,
                (RemoteError::Unavailable(_), Patience::UntilDeadline) => {
                    Instant::now() >= deadline
                }
            };
            if give_up {
                tracing::warn!(%order_id, %step, %error, attempts = retry + 1, "saga step gave up");
                return Ok(Err(error));
            }
            let mut pause = self.settings.backoff(retry);
            if patience == Patience::UntilDeadline {
                // The last retry happens at the deadline, not a full backoff after it.
                pause = pause.min(deadline.saturating_duration_since(Instant::now()));
            }
            tracing::info!(%order_id, %step, %error, retry_in_ms = pause.as_millis() as u64, "saga step failed; retrying");
            retry = retry.saturating_add(1);
            tokio::select! {
                () = shutdown.cancelled() => return Err(SagaError::Interrupted(order_id)),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Counts a saga's end (only when this run wrote it) and says how it ended.
    fn ended(&self, order_id: Uuid, changed: Option<Order>, end: SagaEnd) -> SagaEnd {
        let Some(order) = changed else {
            return SagaEnd::AlreadyFinal;
        };
        let (outcome, reason) = match end {
            SagaEnd::Cancelled(reason) => ("cancelled", reason.as_str()),
            _ => ("confirmed", ""),
        };
        debug_assert_ne!(order.status, OrderStatus::Pending);
        let seconds = (Utc::now() - order.created_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        metrics::counter!("order_sagas_total", "outcome" => outcome, "reason" => reason)
            .increment(1);
        metrics::histogram!("order_saga_duration_seconds", "outcome" => outcome).record(seconds);
        tracing::info!(%order_id, outcome, reason, duration_s = seconds, "saga ended");
        end
    }
}

/// Runs sagas as background tasks: one task per order, never two for the same order.
#[derive(Debug, Clone)]
pub struct SagaWorker {
    submissions: mpsc::UnboundedSender<Uuid>,
    /// Cancelled once the worker has stopped.
    stopped: CancellationToken,
    /// Readers waiting for a saga's task to end (`GET /orders/{id}?wait_ms=`).
    watchers: Arc<Mutex<std::collections::HashMap<Uuid, Arc<tokio::sync::Notify>>>>,
}

/// How often [`sweep`] looks for unfinished sagas that no task drives, and how long a saga's
/// row must have gone unwritten to count.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Until `shutdown`, submits every [`SWEEP_EVERY`] each unfinished saga whose row went
/// unwritten as long (the worker skips those a task already drives). Without it such a saga
/// waits for the next restart: one whose creating transaction committed while the request
/// failed (the commit's answer lost on the way back), or whose task stopped on a database
/// failure.
pub async fn sweep(store: Store, worker: SagaWorker, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        match store.quiet_sagas(SWEEP_EVERY).await {
            Ok(quiet) => {
                for order_id in quiet {
                    worker.submit(order_id);
                }
            }
            Err(error) => tracing::warn!(%error, "listing the sagas no task drives"),
        }
    }
}

/// How long shutdown waits for running sagas to reach a point where they can stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl SagaWorker {
    /// Starts the worker; it runs until `shutdown` is cancelled, then lets running sagas stop
    /// at their next pause (bounded by [`SHUTDOWN_GRACE`]).
    pub fn spawn<P: Payments, I: Inventory>(
        saga: Arc<OrderSaga<P, I>>,
        shutdown: CancellationToken,
    ) -> Self {
        let (submissions, mut received) = mpsc::unbounded_channel::<Uuid>();
        let stopped = CancellationToken::new();
        let worker = Self {
            submissions,
            stopped: stopped.clone(),
            watchers: Arc::default(),
        };
        let ended = worker.clone();
        tokio::spawn(async move {
            let running: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
            let mut tasks = JoinSet::new();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    Some(order_id) = received.recv() => {
                        if !running.lock().unwrap_or_else(|p| p.into_inner()).insert(order_id) {
                            continue; // already being driven
                        }
                        let saga = Arc::clone(&saga);
                        let shutdown = shutdown.clone();
                        let running = RunningSaga { order_id, running: Arc::clone(&running) };
                        let ended = ended.clone();
                        tasks.spawn(async move {
                            let running = running; // held (and dropped) by the task
                            drive(&saga, running.order_id, &shutdown).await;
                            ended.wake(running.order_id);
                        });
                    }
                    Some(joined) = tasks.join_next() => {
                        if let Err(error) = joined {
                            tracing::error!(%error, "a saga task failed; the saga resumes on restart");
                        }
                    }
                }
            }
            let stopping = async { while tasks.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, stopping)
                .await
                .is_err()
            {
                tracing::warn!("sagas still running after the shutdown grace period; aborting them (they resume on restart)");
                tasks.abort_all();
            }
            stopped.cancel();
            tracing::info!("saga worker stopped");
        });
        worker
    }

    /// Has the saga of `order_id` driven to its end (no-op when it already runs).
    pub fn submit(&self, order_id: Uuid) {
        if self.submissions.send(order_id).is_err() {
            tracing::warn!(%order_id, "saga worker stopped; the saga resumes on restart");
        }
    }

    /// What a reader of `order_id` awaits: notified when the order's saga task ends (the
    /// order left PENDING, or the saga paused for shutdown). Take `notified_owned()` and
    /// enable it *before* reading the order, so an end between the read and the wait is not
    /// missed; drop it, then give the handle back with [`SagaWorker::unwatch`].
    pub fn watch(&self, order_id: Uuid) -> Arc<tokio::sync::Notify> {
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(watchers.entry(order_id).or_default())
    }

    /// Gives back a handle of [`SagaWorker::watch`]; the last reader's leaves no entry behind.
    pub fn unwatch(&self, order_id: Uuid, handle: Arc<tokio::sync::Notify>) {
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        // Still this handle in the map (not a later reader's), and held only by the map and
        // this caller: nobody else waits.
        let ours = watchers
            .get(&order_id)
            .is_some_and(|kept| Arc::ptr_eq(kept, &handle));
        if ours && Arc::strong_count(&handle) <= 2 {
            watchers.remove(&order_id);
        }
    }

    /// Wakes every reader waiting for `order_id`.
    fn wake(&self, order_id: Uuid) {
        let handle = self
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&order_id);
        if let Some(handle) = handle {
            handle.notify_waiters();
        }
    }

    /// Waits until the worker has stopped after shutdown.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }
}

/// Marks an order's saga as driven by a task, until the task ends (also by panic or abort).
struct RunningSaga {
    order_id: Uuid,
    running: Arc<Mutex<HashSet<Uuid>>>,
}

impl Drop for RunningSaga {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.order_id);
    }
}

/// Runs one saga to its end, starting over from the persisted step after a database failure
/// (the Postgres link may come back; abandoning the saga would strand it until a restart).
async fn drive<P: Payments, I: Inventory>(
    saga: &OrderSaga<P, I>,
    order_id: Uuid,
    shutdown: &CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        match saga.run(order_id, shutdown).await {
            Ok(_) | Err(SagaError::Interrupted(_)) => return,
            Err(SagaError::Unknown(_)) => {
                tracing::error!(%order_id, "no saga stored for a submitted order");
                return;
            }
            Err(error @ SagaError::Database { .. }) => {
                let pause = saga.settings.backoff(failures.min(10));
                failures = failures.saturating_add(1);
                tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "saga paused");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}
