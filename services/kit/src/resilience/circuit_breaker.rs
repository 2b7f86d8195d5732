//! A circuit breaker with Resilience4j's count-based semantics, one per dependency.
//!
//! The breaker keeps the outcomes of the last `sliding_window_size` calls. Once at least
//! `minimum_number_of_calls` outcomes are in the window, it computes the failure rate and the
//! slow-call rate (percent of calls slower than `slow_call_duration_threshold`) after every
//! recorded call:
//!
//! - **CLOSED → OPEN** when either rate reaches (`>=`) its threshold.
//! - **OPEN** rejects every call with [`CallNotPermitted`]. The first call attempted strictly
//!   after `wait_duration_in_open_state` has passed moves the breaker to HALF_OPEN (there is no
//!   background timer, as in Resilience4j without automatic transition).
//! - **HALF_OPEN** permits exactly `permitted_number_of_calls_in_half_open_state` probe calls
//!   and rejects the rest; once all probes are recorded it judges their rates alone:
//!   at or above a threshold → OPEN again, otherwise → CLOSED with an empty window.
//!
//! As in Resilience4j, `minimum_number_of_calls` larger than the window is capped to the
//! window size, the window is carried into OPEN (so its rates stay visible while open), and
//! CLOSED and HALF_OPEN each start with a fresh window.
//!
//! The API is synchronous and cheap: [`CircuitBreaker::try_acquire`] hands out a
//! [`CallPermit`]; the caller makes the call, then [`CallPermit::record`]s its outcome and
//! duration. What a permit means when it is dropped without a record:
//!
//! - acquired in CLOSED: nothing is recorded (the call never produced an outcome, e.g. the
//!   caller's future was cancelled);
//! - acquired in HALF_OPEN: the probe slot is given back, so another caller may probe
//!   (Resilience4j's `releasePermission`);
//! - a permit from an earlier state period (the breaker changed state since it was issued) is
//!   ignored on record and on drop: the outcome belongs to a window that no longer exists.
//!
//! Time comes from a [`Clock`], so tests drive the breaker with a [`ManualClock`] and never
//! sleep. Every transition sets the `faultline_circuit_state{dependency}` gauge (0 closed,
//! 1 open, 2 half-open), increments `faultline_circuit_transitions_total{dependency,from,to}`,
//! emits a `tracing` info event and is kept (last [`TRANSITION_HISTORY_LEN`]) for
//! [`CircuitBreaker::snapshot`], which a [`CircuitRegistry`] serves to checkers.
//!
//! ```
//! use std::time::Duration;
//! use faultline_kit::resilience::circuit_breaker::{
//!     CallOutcome, CircuitBreaker, CircuitBreakerConfig, CircuitState,
//! };
//!
//! let config = CircuitBreakerConfig {
//!     sliding_window_size: 4,
//!     minimum_number_of_calls: 4,
//!     ..CircuitBreakerConfig::default()
//! };
//! let breaker = CircuitBreaker::new("payment", config).unwrap();
//! for _ in 0..4 {
//!     let permit = breaker.try_acquire().unwrap();
//!     permit.record(CallOutcome::Failure, Duration::from_millis(5));
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//! assert!(breaker.try_acquire().is_err());
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many transitions each breaker remembers for its snapshot.
pub const TRANSITION_HISTORY_LEN: usize = 100;

/// A source of monotonic time for the breaker's open-state wait.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock standing at the moment of its creation.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The breaker's tuning, named and defaulted as in Resilience4j.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitBreakerConfig {
    /// How many of the most recent call outcomes the CLOSED state judges. Default 100.
    pub sliding_window_size: u32,
    /// How many outcomes must be in the window before rates are judged at all. Default 100;
    /// capped to `sliding_window_size`.
    pub minimum_number_of_calls: u32,
    /// Failure rate, in percent (0, 100], at or above which the circuit opens. Default 50.
    pub failure_rate_threshold: f32,
    /// Slow-call rate, in percent (0, 100], at or above which the circuit opens. Default 100.
    pub slow_call_rate_threshold: f32,
    /// A call taking longer than this is slow. Default 60 s.
    pub slow_call_duration_threshold: Duration,
    /// How long the circuit stays OPEN before it lets probes through. Default 60 s.
    pub wait_duration_in_open_state: Duration,
    /// How many probe calls HALF_OPEN permits and then judges. Default 10.
    pub permitted_number_of_calls_in_half_open_state: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            sliding_window_size: 100,
            minimum_number_of_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            wait_duration_in_open_state: Duration::from_secs(60),
            permitted_number_of_calls_in_half_open_state: 10,
        }
    }
}

/// A [`CircuitBreakerConfig`] field holds a value the breaker cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid circuit breaker config: `{field}` is {value}, expected {expected}")]
pub struct InvalidCircuitBreakerConfig {
    /// The offending field's name, as spelled in [`CircuitBreakerConfig`].
    pub field: &'static str,
    /// The value it held.
    pub value: String,
    /// What it should have been.
    pub expected: &'static str,
}

impl CircuitBreakerConfig {
    /// Checks every field, naming the first one that is out of range.
    pub fn validate(&self) -> Result<(), InvalidCircuitBreakerConfig> {
        fn invalid(
            field: &'static str,
            value: impl fmt::Debug,
            expected: &'static str,
        ) -> InvalidCircuitBreakerConfig {
            InvalidCircuitBreakerConfig {
                field,
                value: format!("{value:?}"),
                expected,
            }
        }
        let percent = |rate: f32| rate > 0.0 && rate <= 100.0;
        if self.sliding_window_size == 0 {
            return Err(invalid(
                "sliding_window_size",
                self.sliding_window_size,
                "at least 1",
            ));
        }
        if self.minimum_number_of_calls == 0 {
            return Err(invalid(
                "minimum_number_of_calls",
                self.minimum_number_of_calls,
                "at least 1",
            ));
        }
        if !percent(self.failure_rate_threshold) {
            return Err(invalid(
                "failure_rate_threshold",
                self.failure_rate_threshold,
                "a percentage in (0, 100]",
            ));
        }
        if !percent(self.slow_call_rate_threshold) {
            return Err(invalid(
                "slow_call_rate_threshold",
                self.slow_call_rate_threshold,
                "a percentage in (0, 100]",
            ));
        }
        if self.slow_call_duration_threshold.is_zero() {
            return Err(invalid(
                "slow_call_duration_threshold",
                self.slow_call_duration_threshold,
                "a positive duration",
            ));
        }
        if self.wait_duration_in_open_state < Duration::from_millis(1) {
            return Err(invalid(
                "wait_duration_in_open_state",
                self.wait_duration_in_open_state,
                "at least 1 ms",
            ));
        }
        if self.permitted_number_of_calls_in_half_open_state == 0 {
            return Err(invalid(
                "permitted_number_of_calls_in_half_open_state",
                self.permitted_number_of_calls_in_half_open_state,
                "at least 1",
            ));
        }
        Ok(())
    }

    fn effective_minimum_number_of_calls(&self) -> usize {
        self.minimum_number_of_calls.min(self.sliding_window_size) as usize
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CircuitState {
    /// Calls flow; outcomes are judged.
    Closed,
    /// Calls are rejected until the wait has passed.
    Open,
    /// A fixed number of probe calls are let through and judged.
    HalfOpen,
}

impl CircuitState {
    /// The value of the `faultline_circuit_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }

    /// The name used in metric labels and snapshots.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Open => "OPEN",
            Self::HalfOpen => "HALF_OPEN",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a permitted call succeeded. Slowness is judged separately, from its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The dependency did its job.
    Success,
    /// The dependency failed (transport error, timeout, 5xx...).
    Failure,
}

/// The breaker refused a call because it is OPEN, or HALF_OPEN with every probe slot taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker for `{dependency}` is {state}: call not permitted")]
pub struct CallNotPermitted {
    /// Whose breaker refused.
    pub dependency: String,
    /// The state it refused in.
    pub state: CircuitState,
}

/// One state change, as kept in the breaker's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitTransition {
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
    /// Wall-clock time of the change, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// What a breaker looks like from outside: served by the admin endpoint, read by checkers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitSnapshot {
    /// The dependency the breaker guards.
    pub dependency: String,
    /// Its current state. An OPEN breaker whose wait has passed reports OPEN until the next
    /// call attempt moves it.
    pub state: CircuitState,
    /// Failure rate in percent over the current window; `None` until enough calls are buffered.
    pub failure_rate: Option<f32>,
    /// Slow-call rate in percent over the current window; `None` until enough calls are buffered.
    pub slow_call_rate: Option<f32>,
    /// Outcomes in the current window.
    pub buffered_calls: u32,
    /// Failed outcomes in the current window.
    pub failed_calls: u32,
    /// Slow outcomes in the current window.
    pub slow_calls: u32,
    /// Calls rejected since the current window began.
    pub not_permitted_calls: u64,
    /// Calls rejected since the breaker was created: how often it failed fast.
    pub rejected_calls_total: u64,
    /// How long it stays OPEN before letting probe calls through, in milliseconds.
    pub wait_in_open_ms: u64,
    /// The most recent transitions, oldest first.
    pub transitions: Vec<CircuitTransition>,
}

/// A circuit breaker for one dependency. Cloning shares the breaker.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    dependency: String,
    config: CircuitBreakerConfig,
    clock: Arc<dyn Clock>,
    machine: Mutex<Machine>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("dependency", &self.shared.dependency)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

struct Machine {
    state: CircuitState,
    /// Bumped on every transition; permits from an older period are stale.
    period: u64,
    window: OutcomeWindow,
    opened_at: Option<Instant>,
    half_open_slots_left: u32,
    not_permitted_calls: u64,
    rejected_calls_total: u64,
    transitions: VecDeque<CircuitTransition>,
}

#[derive(Debug, Clone, Copy)]
struct RecordedOutcome {
    failed: bool,
    slow: bool,
}

/// The last `capacity` outcomes, with running totals.
struct OutcomeWindow {
    capacity: usize,
    minimum: usize,
    outcomes: VecDeque<RecordedOutcome>,
    failed: usize,
    slow: usize,
}

impl OutcomeWindow {
    fn new(capacity: usize, minimum: usize) -> Self {
        Self {
            capacity,
            minimum,
            outcomes: VecDeque::with_capacity(capacity),
            failed: 0,
            slow: 0,
        }
    }

    fn push(&mut self, outcome: RecordedOutcome) {
        if self.outcomes.len() == self.capacity {
            if let Some(evicted) = self.outcomes.pop_front() {
                self.failed -= usize::from(evicted.failed);
                self.slow -= usize::from(evicted.slow);
            }
        }
        self.failed += usize::from(outcome.failed);
        self.slow += usize::from(outcome.slow);
        self.outcomes.push_back(outcome);
    }

    /// `(failure_rate, slow_call_rate)` in percent, once the minimum is buffered.
    fn rates(&self) -> Option<(f64, f64)> {
        let total = self.outcomes.len();
        if total < self.minimum || total == 0 {
            return None;
        }
        let percent = |count: usize| count as f64 * 100.0 / total as f64;
        Some((percent(self.failed), percent(self.slow)))
    }
}

impl CircuitBreaker {
    /// A CLOSED breaker for `dependency` on the system clock.
    pub fn new(
        dependency: impl Into<String>,
        config: CircuitBreakerConfig,
    ) -> Result<Self, InvalidCircuitBreakerConfig> {
        Self::with_clock(dependency, config, Arc::new(SystemClock))
    }

    /// A CLOSED breaker for `dependency` reading time from `clock`.
    pub fn with_clock(
        dependency: impl Into<String>,
        config: CircuitBreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InvalidCircuitBreakerConfig> {
        config.validate()?;
        let dependency = dependency.into();
        let window = closed_window(&config);
        metrics::gauge!("faultline_circuit_state", "dependency" => dependency.clone())
            .set(CircuitState::Closed.gauge_value());
        Ok(Self {
            shared: Arc::new(Shared {
                dependency,
                config,
                clock,
                machine: Mutex::new(Machine {
                    state: CircuitState::Closed,
                    period: 0,
                    window,
                    opened_at: None,
                    half_open_slots_left: 0,
                    not_permitted_calls: 0,
                    rejected_calls_total: 0,
                    transitions: VecDeque::new(),
                }),
            }),
        })
    }

    /// The dependency this breaker guards.
    pub fn dependency(&self) -> &str {
        &self.shared.dependency
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.shared.config
    }

    /// The current state (without moving an expired OPEN to HALF_OPEN).
    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    /// Asks to make one call. In OPEN whose wait has passed, this is what moves the breaker
    /// to HALF_OPEN.
    pub fn try_acquire(&self) -> Result<CallPermit, CallNotPermitted> {
        let now = self.shared.clock.now();
        let mut machine = self.lock();
        if machine.state == CircuitState::Open {
            let opened_at = machine.opened_at.unwrap_or(now);
            // Strictly after, as Resilience4j's `isAfter`.
            if now.saturating_duration_since(opened_at)
                > self.shared.config.wait_duration_in_open_state
            {
                self.transition(&mut machine, CircuitState::HalfOpen);
            }
        }
        let permitted = match machine.state {
            CircuitState::Closed => true,
            CircuitState::Open => false,
            CircuitState::HalfOpen if machine.half_open_slots_left > 0 => {
                machine.half_open_slots_left -= 1;
                true
            }
            CircuitState::HalfOpen => false,
        };
        if !permitted {
            machine.not_permitted_calls += 1;
            machine.rejected_calls_total += 1;
            metrics::counter!(
                "faultline_circuit_rejected_total",
                "dependency" => self.shared.dependency.clone()
            )
            .increment(1);
            return Err(CallNotPermitted {
                dependency: self.shared.dependency.clone(),
                state: machine.state,
            });
        }
        Ok(CallPermit {
            breaker: self.clone(),
            period: machine.period,
            state: machine.state,
            settled: false,
        })
    }

    /// The breaker as seen from outside.
    pub fn snapshot(&self) -> CircuitSnapshot {
        let machine = self.lock();
        let rates = machine.window.rates();
        CircuitSnapshot {
            dependency: self.shared.dependency.clone(),
            state: machine.state,
            failure_rate: rates.map(|(failure, _)| failure as f32),
            slow_call_rate: rates.map(|(_, slow)| slow as f32),
            buffered_calls: machine.window.outcomes.len() as u32,
            failed_calls: machine.window.failed as u32,
            slow_calls: machine.window.slow as u32,
            not_permitted_calls: machine.not_permitted_calls,
            rejected_calls_total: machine.rejected_calls_total,
            wait_in_open_ms: self.shared.config.wait_duration_in_open_state.as_millis() as u64,
            transitions: machine.transitions.iter().cloned().collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // A panic while holding the lock leaves the machine consistent (every mutation is
        // complete before anything that can panic), so poisoning is not fatal.
        self.shared
            .machine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, period: u64, outcome: CallOutcome, duration: Duration) {
        let now = self.shared.clock.now();
        let mut machine = self.lock();
        if machine.period != period {
            return;
        }
        let config = &self.shared.config;
        machine.window.push(RecordedOutcome {
            failed: outcome == CallOutcome::Failure,
            slow: duration > config.slow_call_duration_threshold,
        });
        let exceeded = machine.window.rates().map(|(failure, slow)| {
            failure >= f64::from(config.failure_rate_threshold)
                || slow >= f64::from(config.slow_call_rate_threshold)
        });
        match (machine.state, exceeded) {
            (CircuitState::Closed | CircuitState::HalfOpen, Some(true)) => {
                machine.opened_at = Some(now);
                self.transition(&mut machine, CircuitState::Open);
            }
            (CircuitState::HalfOpen, Some(false)) => {
                self.transition(&mut machine, CircuitState::Closed)
            }
            _ => {}
        }
    }

    fn release(&self, period: u64) {
        let mut machine = self.lock();
        if machine.period == period && machine.state == CircuitState::HalfOpen {
            machine.half_open_slots_left += 1;
        }
    }

    fn transition(&self, machine: &mut Machine, to: CircuitState) {
        let from = machine.state;
        let config = &self.shared.config;
        machine.state = to;
        machine.period += 1;
        match to {
            CircuitState::Closed => {
                machine.window = closed_window(config);
                machine.not_permitted_calls = 0;
            }
            CircuitState::HalfOpen => {
                let probes = config.permitted_number_of_calls_in_half_open_state;
                machine.window = OutcomeWindow::new(probes as usize, probes as usize);
                machine.half_open_slots_left = probes;
                machine.not_permitted_calls = 0;
            }
            // The window that tripped the breaker stays visible while it is open.
            CircuitState::Open => {}
        }
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        if machine.transitions.len() == TRANSITION_HISTORY_LEN {
            machine.transitions.pop_front();
        }
        machine.transitions.push_back(CircuitTransition {
            from,
            to,
            at_unix_ms,
        });

        let dependency = &self.shared.dependency;
        metrics::gauge!("faultline_circuit_state", "dependency" => dependency.clone())
            .set(to.gauge_value());
        metrics::counter!(
            "faultline_circuit_transitions_total",
            "dependency" => dependency.clone(),
            "from" => from.as_str(),
            "to" => to.as_str(),
        )
        .increment(1);
        let rates = machine.window.rates();
        tracing::info!(
            dependency = %dependency,
            from = from.as_str(),
            to = to.as_str(),
            failure_rate = rates.map(|r| r.0),
            slow_call_rate = rates.map(|r| r.1),
            "circuit breaker state changed"
        );
    }
}

fn closed_window(config: &CircuitBreakerConfig) -> OutcomeWindow {
    OutcomeWindow::new(
        config.sliding_window_size as usize,
        config.effective_minimum_number_of_calls(),
    )
}

/// Leave to make one call through a [`CircuitBreaker`]; record how it went.
///
/// Dropping it unrecorded frees a HALF_OPEN probe slot and is otherwise ignored.
#[must_use = "record the call's outcome, or the breaker learns nothing from it"]
pub struct CallPermit {
    breaker: CircuitBreaker,
    period: u64,
    state: CircuitState,
    settled: bool,
}

impl fmt::Debug for CallPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPermit")
            .field("dependency", &self.breaker.dependency())
            .field("state", &self.state)
            .finish()
    }
}

impl CallPermit {
    /// The state the breaker was in when it granted this permit.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Records the call's outcome; a `duration` above the slow-call threshold makes it slow.
    pub fn record(mut self, outcome: CallOutcome, duration: Duration) {
        self.settled = true;
        self.breaker.record(self.period, outcome, duration);
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.release(self.period);
        }
    }
}

/// Every breaker of a process, by dependency name. Cloning shares the registry.
#[derive(Clone, Default)]
pub struct CircuitRegistry {
    breakers: Arc<Mutex<BTreeMap<String, CircuitBreaker>>>,
}

impl fmt::Debug for CircuitRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lock().keys()).finish()
    }
}

impl CircuitRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `breaker` under its dependency name, replacing any breaker already there.
    pub fn register(&self, breaker: &CircuitBreaker) {
        self.lock()
            .insert(breaker.dependency().to_owned(), breaker.clone());
    }

    /// The breaker guarding `dependency`, if one is registered.
    pub fn get(&self, dependency: &str) -> Option<CircuitBreaker> {
        self.lock().get(dependency).cloned()
    }

    /// The names of every registered dependency, sorted.
    pub fn dependencies(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Snapshots of every breaker, sorted by dependency.
    pub fn snapshot(&self) -> Vec<CircuitSnapshot> {
        let breakers: Vec<CircuitBreaker> = self.lock().values().cloned().collect();
        breakers.iter().map(CircuitBreaker::snapshot).collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, CircuitBreaker>> {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn small_config() -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            sliding_window_size: 4,
            minimum_number_of_calls: 4,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: 100 * MS,
            wait_duration_in_open_state: 1000 * MS,
            permitted_number_of_calls_in_half_open_state: 2,
        }
    }

    fn breaker(config: CircuitBreakerConfig) -> (CircuitBreaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (
            CircuitBreaker::with_clock("payment", config, clock.clone()).unwrap(),
            clock,
        )
    }

    fn call(
        breaker: &CircuitBreaker,
        outcome: CallOutcome,
        duration: Duration,
    ) -> Result<(), CallNotPermitted> {
        breaker
            .try_acquire()
            .map(|permit| permit.record(outcome, duration))
    }

    fn fail(breaker: &CircuitBreaker) {
        call(breaker, CallOutcome::Failure, MS).unwrap();
    }

    fn succeed(breaker: &CircuitBreaker) {
        call(breaker, CallOutcome::Success, MS).unwrap();
    }

    #[test]
    fn rejections_are_counted_for_good_across_transitions() {
        let (breaker, clock) = breaker(small_config());
        trip(&breaker);
        assert!(
            call(&breaker, CallOutcome::Success, MS).is_err(),
            "OPEN fails fast"
        );
        assert_eq!(breaker.snapshot().rejected_calls_total, 1);
        clock.advance(1001 * MS);
        succeed(&breaker);
        succeed(&breaker);
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.state, CircuitState::Closed);
        assert_eq!(
            snapshot.not_permitted_calls, 0,
            "the window's count starts again"
        );
        assert_eq!(snapshot.rejected_calls_total, 1, "the total does not");
        assert_eq!(snapshot.wait_in_open_ms, 1000);
    }

    fn trip(breaker: &CircuitBreaker) {
        for _ in 0..4 {
            fail(breaker);
        }
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn defaults_match_resilience4j() {
        let config = CircuitBreakerConfig::default();
        assert_eq!(config.sliding_window_size, 100);
        assert_eq!(config.minimum_number_of_calls, 100);
        assert_eq!(config.failure_rate_threshold, 50.0);
        assert_eq!(config.slow_call_rate_threshold, 100.0);
        assert_eq!(config.slow_call_duration_threshold, Duration::from_secs(60));
        assert_eq!(config.wait_duration_in_open_state, Duration::from_secs(60));
        assert_eq!(config.permitted_number_of_calls_in_half_open_state, 10);
        config.validate().unwrap();
    }

    #[test]
    fn validation_names_the_offending_field() {
        let cases: [(&str, CircuitBreakerConfig); 7] = [
            (
                "sliding_window_size",
                CircuitBreakerConfig {
                    sliding_window_size: 0,
                    ..Default::default()
                },
            ),
            (
                "minimum_number_of_calls",
                CircuitBreakerConfig {
                    minimum_number_of_calls: 0,
                    ..Default::default()
                },
            ),
            (
                "failure_rate_threshold",
                CircuitBreakerConfig {
                    failure_rate_threshold: 101.0,
                    ..Default::default()
                },
            ),
            (
                "slow_call_rate_threshold",
                CircuitBreakerConfig {
                    slow_call_rate_threshold: 0.0,
                    ..Default::default()
                },
            ),
            (
                "slow_call_duration_threshold",
                CircuitBreakerConfig {
                    slow_call_duration_threshold: Duration::ZERO,
                    ..Default::default()
                },
            ),
            (
                "wait_duration_in_open_state",
                CircuitBreakerConfig {
                    wait_duration_in_open_state: Duration::ZERO,
                    ..Default::default()
                },
            ),
            (
                "permitted_number_of_calls_in_half_open_state",
                CircuitBreakerConfig {
                    permitted_number_of_calls_in_half_open_state: 0,
                    ..Default::default()
                },
            ),
        ];
        for (field, config) in cases {
            let error = CircuitBreaker::new("payment", config).unwrap_err();
            assert_eq!(error.field, field);
            assert!(error.to_string().contains(field), "{error}");
        }
    }

    #[test]
    fn rates_are_not_judged_before_the_minimum_number_of_calls() {
        let (breaker, _) = breaker(small_config());
        for _ in 0..3 {
            fail(&breaker);
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
        assert_eq!(breaker.snapshot().failure_rate, None);
        fail(&breaker);
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn closed_opens_when_failure_rate_reaches_the_threshold_exactly() {
        let (breaker, _) = breaker(small_config());
        succeed(&breaker);
        succeed(&breaker);
        fail(&breaker);
        assert_eq!(breaker.state(), CircuitState::Closed);
        fail(&breaker); // 2 of 4 = 50% >= 50%
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn closed_stays_closed_below_the_failure_threshold() {
        let (breaker, _) = breaker(small_config());
        for _ in 0..20 {
            succeed(&breaker);
            succeed(&breaker);
            succeed(&breaker);
            fail(&breaker); // never more than 1 in any 4 consecutive calls: 25%
        }
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[test]
    fn old_outcomes_slide_out_of_the_window() {
        let (breaker, _) = breaker(small_config());
        fail(&breaker);
        for _ in 0..4 {
            succeed(&breaker);
        }
        fail(&breaker); // window is now S S S F: the first failure slid out
        assert_eq!(breaker.snapshot().failed_calls, 1);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[test]
    fn minimum_number_of_calls_is_capped_to_the_window() {
        let (breaker, _) = breaker(CircuitBreakerConfig {
            minimum_number_of_calls: 50,
            ..small_config()
        });
        trip(&breaker);
    }

    #[test]
    fn closed_opens_when_slow_call_rate_reaches_the_threshold() {
        let (breaker, _) = breaker(CircuitBreakerConfig {
            slow_call_rate_threshold: 75.0,
            ..small_config()
        });
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        call(&breaker, CallOutcome::Success, 100 * MS).unwrap(); // at the threshold: not slow
        call(&breaker, CallOutcome::Success, MS).unwrap();
        assert_eq!(breaker.state(), CircuitState::Closed);
        // Each slow call pushes out an older outcome: [S F F S], [F F S S], then [F S S S] = 75%.
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        assert_eq!(breaker.snapshot().slow_calls, 2);
        assert_eq!(breaker.state(), CircuitState::Closed);
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn open_rejects_until_the_wait_has_passed_then_half_opens_on_the_next_attempt() {
        let (breaker, clock) = breaker(small_config());
        trip(&breaker);
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.state, CircuitState::Open);
        clock.advance(1000 * MS); // exactly the wait: still open (strictly after, as Resilience4j)
        assert!(breaker.try_acquire().is_err());
        assert_eq!(breaker.snapshot().not_permitted_calls, 2);
        clock.advance(MS);
        assert_eq!(
            breaker.state(),
            CircuitState::Open,
            "no transition without a call attempt"
        );
        let permit = breaker.try_acquire().unwrap();
        assert_eq!(permit.state(), CircuitState::HalfOpen);
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
        permit.record(CallOutcome::Success, MS);
    }

    #[test]
    fn half_open_permits_exactly_the_configured_probes() {
        let (breaker, clock) = breaker(small_config());
        trip(&breaker);
        clock.advance(1001 * MS);
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert_eq!(
            breaker.try_acquire().unwrap_err().state,
            CircuitState::HalfOpen
        );
        first.record(CallOutcome::Success, MS);
        assert_eq!(
            breaker.state(),
            CircuitState::HalfOpen,
            "judged only once every probe is in"
        );
        second.record(CallOutcome::Success, MS);
        assert_eq!(breaker.state(), CircuitState::Closed);
        let snapshot = breaker.snapshot();
        assert_eq!(
            snapshot.buffered_calls, 0,
            "closed starts with a fresh window"
        );
        assert_eq!(snapshot.not_permitted_calls, 0);
    }

    #[test]
    fn half_open_reopens_when_probes_fail_at_the_threshold() {
        let (breaker, clock) = breaker(small_config());
        trip(&breaker);
        clock.advance(1001 * MS);
        succeed(&breaker);
        fail(&breaker); // 1 of 2 = 50%
        assert_eq!(breaker.state(), CircuitState::Open);
        assert!(breaker.try_acquire().is_err(), "the wait starts again");
        clock.advance(1001 * MS);
        assert!(breaker.try_acquire().is_ok());
    }

    #[test]
    fn half_open_reopens_on_slow_probes() {
        let (breaker, clock) = breaker(small_config());
        trip(&breaker);
        clock.advance(1001 * MS);
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        call(&breaker, CallOutcome::Success, 101 * MS).unwrap();
        assert_eq!(breaker.state(), CircuitState::Open);
    }

    #[test]
    fn a_dropped_half_open_permit_frees_its_probe_slot() {
        let (breaker, clock) = breaker(small_config());
        trip(&breaker);
        clock.advance(1001 * MS);
        let kept = breaker.try_acquire().unwrap();
        drop(breaker.try_acquire().unwrap());
        let replacement = breaker
            .try_acquire()
            .expect("the dropped probe's slot is free again");
        assert!(breaker.try_acquire().is_err());
        kept.record(CallOutcome::Success, MS);
        replacement.record(CallOutcome::Success, MS);
        assert_eq!(breaker.state(), CircuitState::Closed);
    }

    #[test]
    fn a_dropped_closed_permit_records_nothing() {
        let (breaker, _) = breaker(small_config());
        drop(breaker.try_acquire().unwrap());
        assert_eq!(breaker.snapshot().buffered_calls, 0);
    }

    #[test]
    fn a_permit_from_an_earlier_state_is_ignored() {
        let (breaker, _) = breaker(small_config());
        let stale = breaker.try_acquire().unwrap();
        trip(&breaker);
        let before = breaker.snapshot();
        stale.record(CallOutcome::Success, MS);
        assert_eq!(breaker.snapshot(), before);
    }

    #[test]
    fn transitions_are_kept_in_order_and_bounded() {
        let (breaker, clock) = breaker(CircuitBreakerConfig {
            sliding_window_size: 1,
            minimum_number_of_calls: 1,
            permitted_number_of_calls_in_half_open_state: 1,
            ..small_config()
        });
        fail(&breaker);
        clock.advance(1001 * MS);
        succeed(&breaker);
        let snapshot = breaker.snapshot();
        let path: Vec<_> = snapshot
            .transitions
            .iter()
            .map(|t| (t.from, t.to))
            .collect();
        assert_eq!(
            path,
            [
                (CircuitState::Closed, CircuitState::Open),
                (CircuitState::Open, CircuitState::HalfOpen),
                (CircuitState::HalfOpen, CircuitState::Closed),
            ]
        );
        assert!(snapshot.transitions[0].at_unix_ms > 0);
        for _ in 0..TRANSITION_HISTORY_LEN {
            fail(&breaker);
            clock.advance(1001 * MS);
            succeed(&breaker);
        }
        assert_eq!(breaker.snapshot().transitions.len(), TRANSITION_HISTORY_LEN);
    }

    #[test]
    fn the_registry_snapshots_every_breaker_by_name() {
        let registry = CircuitRegistry::new();
        let (payment, _) = breaker(small_config());
        let inventory = CircuitBreaker::new("inventory", small_config()).unwrap();
        registry.register(&payment);
        registry.register(&inventory);
        trip(&payment);
        let snapshot = registry.snapshot();
        let states: Vec<_> = snapshot
            .iter()
            .map(|s| (s.dependency.as_str(), s.state))
            .collect();
        assert_eq!(
            states,
            [
                ("inventory", CircuitState::Closed),
                ("payment", CircuitState::Open)
            ]
        );
        let json = serde_json::to_value(&snapshot[1]).unwrap();
        assert_eq!(json["state"], "OPEN");
        assert_eq!(json["failure_rate"], 100.0);
        assert_eq!(json["transitions"][0]["to"], "OPEN");
    }

    #[test]
    fn every_transition_sets_the_state_gauge_and_counts_the_transition() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let (breaker, clock) = breaker(small_config());
            trip(&breaker);
            clock.advance(1001 * MS);
            drop(breaker.try_acquire().unwrap());
        });
        let rendered = handle.render();
        for expected in [
            r#"faultline_circuit_state{dependency="payment"} 2"#,
            r#"faultline_circuit_transitions_total{dependency="payment",from="CLOSED",to="OPEN"} 1"#,
            r#"faultline_circuit_transitions_total{dependency="payment",from="OPEN",to="HALF_OPEN"} 1"#,
        ] {
            assert!(
                rendered.contains(expected),
                "missing `{expected}` in:\n{rendered}"
            );
        }
    }

    // ---- State-machine property test against a reference model -------------------------

    /// The specification, written as plainly as possible: a VecDeque of outcomes and integer
    /// percent arithmetic.
    #[derive(Debug)]
    struct ModelBreaker {
        window_size: usize,
        minimum_calls: usize,
        failure_threshold: u32,
        slow_threshold: u32,
        slow_duration: Duration,
        wait: Duration,
        probes: u32,
        state: CircuitState,
        window: VecDeque<(bool, bool)>,
        opened_at: Duration,
        probes_left: u32,
    }

    impl ModelBreaker {
        fn exceeded(&self, minimum: usize) -> Option<bool> {
            let total = self.window.len() as u32;
            if (total as usize) < minimum {
                return None;
            }
            let failed = self.window.iter().filter(|(failed, _)| *failed).count() as u32;
            let slow = self.window.iter().filter(|(_, slow)| *slow).count() as u32;
            Some(
                failed * 100 >= self.failure_threshold * total
                    || slow * 100 >= self.slow_threshold * total,
            )
        }

        /// Returns whether the call was permitted; `record` is `None` for a dropped permit.
        fn call(&mut self, now: Duration, record: Option<(bool, Duration)>) -> bool {
            if self.state == CircuitState::Open && now > self.opened_at + self.wait {
                self.state = CircuitState::HalfOpen;
                self.window.clear();
                self.probes_left = self.probes;
            }
            match self.state {
                CircuitState::Open => return false,
                CircuitState::HalfOpen if self.probes_left == 0 => return false,
                CircuitState::HalfOpen => self.probes_left -= 1,
                CircuitState::Closed => {}
            }
            let Some((failed, duration)) = record else {
                if self.state == CircuitState::HalfOpen {
                    self.probes_left += 1;
                }
                return true;
            };
            let slow = duration > self.slow_duration;
            match self.state {
                CircuitState::Closed => {
                    if self.window.len() == self.window_size {
                        self.window.pop_front();
                    }
                    self.window.push_back((failed, slow));
                    if self.exceeded(self.minimum_calls) == Some(true) {
                        self.state = CircuitState::Open;
                        self.opened_at = now;
                    }
                }
                CircuitState::HalfOpen => {
                    self.window.push_back((failed, slow));
                    match self.exceeded(self.probes as usize) {
                        Some(true) => {
                            self.state = CircuitState::Open;
                            self.opened_at = now;
                        }
                        Some(false) => {
                            self.state = CircuitState::Closed;
                            self.window.clear();
                        }
                        None => {}
                    }
                }
                CircuitState::Open => unreachable!(),
            }
            true
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A call: failed?, and its duration relative to the slow threshold (-1, 0, +1 ms).
        Call {
            failed: bool,
            duration_offset_ms: i8,
        },
        /// A permit acquired and dropped without a record.
        Abandon,
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), -1i8..=1).prop_map(|(failed, duration_offset_ms)| Op::Call { failed, duration_offset_ms }),
            1 => Just(Op::Abandon),
            2 => (0u64..400).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    fn config() -> impl Strategy<Value = CircuitBreakerConfig> {
        (
            1u32..10,
            1u32..12,
            1u32..=100,
            1u32..=100,
            1u64..300,
            1u32..5,
        )
            .prop_map(|(size, minimum, failure, slow, wait_ms, probes)| {
                CircuitBreakerConfig {
                    sliding_window_size: size,
                    minimum_number_of_calls: minimum,
                    failure_rate_threshold: failure as f32,
                    slow_call_rate_threshold: slow as f32,
                    slow_call_duration_threshold: 50 * MS,
                    wait_duration_in_open_state: Duration::from_millis(wait_ms),
                    permitted_number_of_calls_in_half_open_state: probes,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn breaker_agrees_with_the_reference_model(config in config(), ops in prop::collection::vec(op(), 1..200)) {
            let clock = Arc::new(ManualClock::new());
            let breaker = CircuitBreaker::with_clock("model", config.clone(), clock.clone()).unwrap();
            let mut model = ModelBreaker {
                window_size: config.sliding_window_size as usize,
                minimum_calls: config.minimum_number_of_calls.min(config.sliding_window_size) as usize,
                failure_threshold: config.failure_rate_threshold as u32,
                slow_threshold: config.slow_call_rate_threshold as u32,
                slow_duration: config.slow_call_duration_threshold,
                wait: config.wait_duration_in_open_state,
                probes: config.permitted_number_of_calls_in_half_open_state,
                state: CircuitState::Closed,
                window: VecDeque::new(),
                opened_at: Duration::ZERO,
                probes_left: 0,
            };
            let mut now = Duration::ZERO;
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    Op::Advance { ms } => {
                        clock.advance(Duration::from_millis(ms));
                        now += Duration::from_millis(ms);
                    }
                    Op::Call { failed, duration_offset_ms } => {
                        let duration = Duration::from_millis((50 + i64::from(duration_offset_ms)) as u64);
                        let outcome = if failed { CallOutcome::Failure } else { CallOutcome::Success };
                        let expected = model.call(now, Some((failed, duration)));
                        let actual = breaker.try_acquire().map(|p| p.record(outcome, duration)).is_ok();
                        prop_assert_eq!(actual, expected, "permit decision at step {} ({:?})", step, op);
                    }
                    Op::Abandon => {
                        let expected = model.call(now, None);
                        let actual = breaker.try_acquire().is_ok();
                        prop_assert_eq!(actual, expected, "permit decision at step {} ({:?})", step, op);
                    }
                }
                prop_assert_eq!(breaker.state(), model.state, "state after step {} ({:?})", step, op);
                prop_assert_eq!(breaker.snapshot().buffered_calls as usize, model.window.len(), "window after step {}", step);
            }
        }
    }
}
