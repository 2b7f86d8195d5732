//! Workloads: the client operations of a chaos run, every one recorded in the
//! [`History`](crate::history::History) as invoke / ok / fail / info.
//!
//! A run drives one [`Workload`]: the declarative [`http`] workload of a scenario's
//! `[[workload.operations]]`, which any described system can use, or a system's own,
//! written in Rust and registered by its [extension](crate::extension) (the reference
//! system's orders). The runner calls the phases in order — [`prepare`](Workload::prepare),
//! steady-state [`probe`](Workload::probe)s, [`drive`](Workload::drive) beside the nemesis,
//! [`settle`](Workload::settle) after healing, probes again — and owns none of their logic.
//!
//! Planning is separate from sending in both workloads, so that a run can be reproduced: the
//! plan is a pure function of the scenario and the seed, and [`Workload::plan`] is what the
//! run saves in `plan.json`.
//!
//! Layer 3 (run roles) of the harness ([layers](crate#layers)): imports the history, the stack
//! and the checkers' facts; what it reports of the final state ([`WorkloadState`]) lives here
//! and the report shows it.

pub mod http;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use faultline_chaos::scenario::Probe;
use serde::{Deserialize, Serialize};

use crate::checkers::{BoxFuture, Facts};
use crate::history::{Process, Recorder};
use crate::stack::{Stack, StackError};

/// Why a workload could not prepare its run ([`Workload::prepare`]): the run could not
/// start, which is never a broken promise of the system.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("stack: {0}")]
    Stack(#[from] StackError),

    #[error("{action}: {message}")]
    Setup { action: String, message: String },
}

/// What the load phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadSummary {
    /// Operations planned.
    pub planned: usize,
    /// Operations sent at least once (the rest were cut off by the duration bound).
    pub sent: usize,
    /// Operations that ended ok (for the reference orders: distinct orders accepted).
    pub ok: usize,
}

/// One item of a workload's plan, as [`drive_plan`] sends it.
pub trait Planned {
    /// When it is sent, from the start of the load phase.
    fn send_at(&self) -> Duration;
    /// Whether a second process sends it too, at the same moment (same key).
    fn duplicated(&self) -> bool;
}

/// What [`drive_plan`] did: how many items went out, and each send's result.
pub struct Driven<R> {
    pub sent: usize,
    pub results: Vec<R>,
}

/// Carries a plan out, as both the declarative workload and a system's own Rust workload
/// want it: `concurrency` clients (`Process::Client(0..concurrency)`) take items in plan
/// order, each sent by `send` at its planned time after `load_start`; a duplicated item is
/// sent at the same moment by a second process (`Client(concurrency + n)`), because one
/// Jepsen process never has two operations in flight. Nothing new is sent once `duration`
/// has passed; what is in flight then is awaited.
pub async fn drive_plan<'a, T, R, F, Fut>(
    plan: &'a [T],
    concurrency: u32,
    load_start: tokio::time::Instant,
    duration: Duration,
    send: F,
) -> Driven<R>
where
    T: Planned,
    F: Fn(Process, &'a T) -> Fut,
    Fut: Future<Output = R>,
{
    let next = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let deadline = load_start + duration;
    let concurrency = concurrency.max(1);
    let workers = (0..concurrency).map(|worker| {
        let (next, sent, results, send) = (&next, &sent, &results, &send);
        async move {
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = plan.get(index) else {
                    return;
                };
                let send_at = load_start + item.send_at();
                if send_at >= deadline {
                    return;
                }
                tokio::time::sleep_until(send_at).await;
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                let first = send(Process::Client(worker), item);
                let outcomes = if item.duplicated() {
                    let second = send(Process::Client(concurrency + worker), item);
                    let (a, b) = futures_util::future::join(first, second).await;
                    vec![a, b]
                } else {
                    vec![first.await]
                };
                results.lock().expect("results lock").extend(outcomes);
            }
        }
    });
    futures_util::future::join_all(workers).await;
    Driven {
        sent: sent.load(Ordering::SeqCst),
        results: results.into_inner().expect("results lock"),
    }
}

/// How the work in flight ended after healing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settlement {
    pub took_ms: u64,
    /// Entities (orders, say) that reached a final state.
    pub settled: usize,
    /// Entities still unfinished when the bound passed.
    pub unsettled: Vec<String>,
}

/// The client side of one run. Its phases are called in order, once each (probes twice).
pub trait Workload: Send + Sync {
    /// What the load phase will send, for the terminal: "80 orders".
    fn describe(&self) -> String;

    /// The plan, as `plan.json` keeps it: what the seed produced.
    fn plan(&self) -> serde_json::Value;

    /// Before the steady state: what the load needs on the started `stack` (seed data,
    /// clients). What checkers must know of it goes into `facts`; requests it makes of the
    /// system belong in the run's history (`recorder`, as [`Process::Probe`]).
    ///
    /// [`Process::Probe`]: crate::history::Process::Probe
    fn prepare<'a>(
        &'a mut self,
        stack: &'a Stack,
        facts: &'a Facts,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, Result<(), PrepareError>>;

    /// The steady state when the scenario names none.
    fn default_probes(&self) -> Vec<Probe>;

    /// One `success_rate` or `p99_latency` probe (`ready` is the runner's): whether it held,
    /// and a sentence saying how it came out. `index` and `phase` make its operations
    /// distinct from every other probe's.
    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        index: usize,
        phase: &'a str,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, (bool, String)>;

    /// The load phase, beside the nemesis: from `load_start`, for at most the scenario's
    /// duration.
    fn drive<'a>(
        &'a self,
        load_start: tokio::time::Instant,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, LoadSummary>;

    /// After the faults healed: waits (bounded) for the work the load started to finish,
    /// so the checkers judge a settled system.
    fn settle<'a>(
        &'a self,
        stack: &'a Stack,
        recorder: &'a Recorder,
        progress: &'a (dyn Fn(&str) + Sync),
    ) -> BoxFuture<'a, Settlement>;

    /// Each operation's footprint for the blast radius (see
    /// [`faultline_chaos::scenario::blast`]): the call sites its requests cause when it is
    /// sent alone, a few times, after the set-up and before the steady state; those requests
    /// are in the history (as [`Process::Probe`]'s). `None` when the workload cannot send its
    /// operations one by one (a Rust workload, unless it says).
    ///
    /// [`Process::Probe`]: crate::history::Process::Probe
    fn footprints<'a>(
        &'a self,
        _stack: &'a Stack,
        _recorder: &'a Recorder,
    ) -> BoxFuture<'a, Option<faultline_chaos::scenario::blast::Footprints>> {
        Box::pin(async { None })
    }

    /// What the report shows of the system's final state beyond its circuits (the reference
    /// system's saga outcomes), read after the checkers (whose `facts` it may reuse).
    fn final_state<'a>(
        &'a self,
        _stack: &'a Stack,
        _facts: &'a Facts,
    ) -> BoxFuture<'a, WorkloadState> {
        Box::pin(async { WorkloadState::default() })
    }
}

/// The pauses between reads of something that is about to be done (an order's saga, a settle
/// condition): 10 ms first, then twice as long each time up to 200 ms, so that what ends in
/// 60 ms is seen within about 70 ms rather than at the next 200 ms tick, and what takes seconds
/// is read five times a second.
#[derive(Debug, Clone)]
pub struct Pauses {
    next: Duration,
}

impl Default for Pauses {
    fn default() -> Self {
        Pauses { next: Duration::from_millis(10) }
    }
}

impl Pauses {
    /// The longest pause.
    pub const MAX: Duration = Duration::from_millis(200);

    /// Waits the next pause.
    pub async fn wait(&mut self) {
        let pause = self.take();
        tokio::time::sleep(pause).await;
    }

    /// The next pause, and the one after it doubled (at most [`Pauses::MAX`]).
    fn take(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }
}

/// How long a settle may wait, at most.
pub const SETTLE_BOUND: Duration = Duration::from_secs(60);

/// Waits until every `[[settle]]` condition of the stack's description holds (its query
/// returns no rows), each within its own bound, polling (see [`Pauses`]); the conditions that did
/// not hold in time are the settlement's `unsettled`, with the rows they still returned.
pub async fn settle_described(stack: &Stack, progress: &(dyn Fn(&str) + Sync)) -> Settlement {
    use sqlx::Connection;
    let clock = std::time::Instant::now();
    let mut settlement = Settlement::default();
    for condition in &stack.system().settle {
        let started = std::time::Instant::now();
        let wrapped = format!(
            "SELECT count(*) FROM ({}) AS faultline_rows",
            condition.query.trim().trim_end_matches(';')
        );
        let outcome: Result<i64, String> = async {
            let url = stack.database_url(&condition.database).map_err(|e| e.to_string())?;
            let mut connection = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            let mut pauses = Pauses::default();
            loop {
                // The query is the description's, run on the system's own database by design.
                let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(wrapped.clone()))
                    .fetch_one(&mut connection)
                    .await
                    .map_err(|e| match e {
                        sqlx::Error::Database(db) => db.message().to_string(),
                        other => other.to_string(),
                    })?;
                if rows == 0 || started.elapsed() >= condition.within {
                    let _ = connection.close().await;
                    return Ok(rows);
                }
                pauses.wait().await;
            }
        }
        .await;
        let query = condition.query.split_whitespace().collect::<Vec<_>>().join(" ");
        match outcome {
            Ok(0) => settlement.settled += 1,
            Ok(rows) => settlement
                .unsettled
                .push(format!("{rows} row(s) after {}s: {query}", condition.within.as_secs())),
            Err(error) => settlement.unsettled.push(format!("{query}: {error}")),
        }
    }
    settlement.took_ms = clock.elapsed().as_millis() as u64;
    if !stack.system().settle.is_empty() {
        progress(&format!(
            "settled: {} of {} conditions in {:.1}s{}",
            settlement.settled,
            stack.system().settle.len(),
            settlement.took_ms as f64 / 1000.0,
            if settlement.unsettled.is_empty() {
                String::new()
            } else {
                format!("; not: {}", settlement.unsettled.join("; "))
            }
        ));
    }
    settlement
}

/// How the units of work a workload started ended: orders for the reference system,
/// transfers for a bank, whatever the workload's completion check waits on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// What a unit is, plural (`orders`, `transfers`).
    pub unit: String,
    /// Units the system holds (or the workload started).
    pub total: u64,
    /// Units by the final state they ended in (`CONFIRMED`, `CANCELLED: payment_declined`).
    pub ended: BTreeMap<String, u64>,
    /// Units still in a state that is not final, by id.
    pub unfinished: Vec<String>,
}

/// What a workload reports of the system's final state (see
/// [`Workload::final_state`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadState {
    /// How the units of work the workload started ended, when it can tell.
    pub outcomes: Option<Outcomes>,
    /// How long each finished unit took end to end, as the system measured it, when the
    /// workload reads that.
    pub durations: Option<Durations>,
}

/// End-to-end durations of finished units of work, histogrammed in the report under `name`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations {
    /// The histogram's operation name (`saga` for the reference system).
    pub name: String,
    pub ms: Vec<u64>,
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_short_and_double_up_to_the_longest() {
        let mut pauses = Pauses::default();
        let taken: Vec<u128> = (0..7).map(|_| pauses.take().as_millis()).collect();
        assert_eq!(taken, [10, 20, 40, 80, 160, 200, 200]);
    }

    struct Item {
        at: Duration,
        twice: bool,
    }

    impl Planned for Item {
        fn send_at(&self) -> Duration {
            self.at
        }
        fn duplicated(&self) -> bool {
            self.twice
        }
    }

    #[tokio::test]
    async fn a_plan_is_sent_by_its_clients_duplicates_by_a_second_process_and_late_items_not_at_all(
    ) {
        let now = Duration::ZERO;
        let plan = [
            Item { at: now, twice: false },
            Item { at: now, twice: true },
            Item { at: now, twice: false },
            // Planned after the load's bound: never sent.
            Item { at: Duration::from_secs(3600), twice: false },
        ];
        let driven = drive_plan(
            &plan,
            2,
            tokio::time::Instant::now(),
            Duration::from_secs(60),
            |process, item: &Item| async move { (process, item.twice) },
        )
        .await;
        assert_eq!(driven.sent, 3);
        assert_eq!(driven.results.len(), 4, "three items, one of them twice");
        let duplicates: Vec<Process> = driven
            .results
            .iter()
            .filter(|(_, twice)| *twice)
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(duplicates.len(), 2);
        assert!(
            duplicates.iter().any(|p| matches!(p, Process::Client(n) if *n >= 2))
                && duplicates.iter().any(|p| matches!(p, Process::Client(n) if *n < 2)),
            "a duplicate goes out from a client and from a second process: {duplicates:?}"
        );
    }
}
