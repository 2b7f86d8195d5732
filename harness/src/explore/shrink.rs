//! Shrinking a failing experiment to a small reproducer, by delta debugging: one reduction at
//! a time — fewer faults, fewer operations, a single request hit instead of every one, a
//! shorter and earlier fault window, a shorter load — each kept only when the smaller
//! scenario still fails the same way on every one of `reruns` runs, and abandoned at the
//! first run that holds. The search is greedy (a reduction that fails once is not tried
//! again) and bounded by a number of runs.
//!
//! The logic here knows nothing about stacks: it asks a `run` function whether a
//! [`Candidate`] fails, so it is tested on its own; `explore` runs the candidates for real.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What shrinking varies of a scenario: how many operations, how long the load, and the
/// faults (`[[faults]]` tables as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `workload.requests`, when the scenario's workload counts operations that way.
    pub requests: Option<u64>,
    /// `workload.duration`.
    #[serde(with = "millis")]
    pub load: Duration,
    pub faults: Vec<Value>,
}

/// What shrinking came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shrunk {
    /// The smallest candidate found that still failed on every rerun.
    pub candidate: Candidate,
    /// Each reduction kept, in order ("requests 16 -> 8").
    pub steps: Vec<String>,
    /// Runs spent, kept reductions and abandoned ones together.
    pub runs: usize,
    /// Whether the run budget ran out before every reduction was tried.
    pub exhausted_budget: bool,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// The shortest fault window and load shrinking tries.
const SHORTEST_WINDOW: Duration = Duration::from_millis(250);
/// The load must outlast the last heal by this much (the scenario format asks that faults
/// heal within the load).
const LOAD_AFTER_HEAL: Duration = Duration::from_secs(1);

fn duration_of(fault: &Value, key: &str) -> Option<Duration> {
    fault
        .get(key)
        .and_then(Value::as_str)
        .and_then(faultline_chaos::scenario::fields::parse_duration)
}

fn with_duration(fault: &Value, key: &str, value: Duration) -> Value {
    let mut fault = fault.clone();
    fault[key] = Value::String(format!("{}ms", value.as_millis()));
    fault
}

/// When the last fault of `candidate` heals, from the start of the load.
fn last_heal(candidate: &Candidate) -> Duration {
    candidate
        .faults
        .iter()
        .filter_map(|f| Some(duration_of(f, "start")? + duration_of(f, "duration")?))
        .max()
        .unwrap_or_default()
}

/// The cuts to try of a quantity at `current`, biggest first: the `floor`, then doubling
/// from it, and half of `current` last (each below `current`). A failure that needs little
/// is reached in one kept step instead of one halving after another — each kept step costs
/// the exploration's `RERUNS` runs, each refused one usually a single run.
fn cuts(current: u64, floor: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut next = floor.max(1);
    while next < current / 2 {
        out.push(next);
        next *= 2;
    }
    if current / 2 >= floor.max(1) {
        out.push(current / 2);
    }
    out
}

/// The reductions of `candidate` to try next, in order: fewer faults, fewer operations, one
/// request hit, shorter and earlier windows, a shorter load — each quantity cut as far as it
/// goes first ([`cuts`]).
fn reductions(candidate: &Candidate) -> Vec<(String, Candidate)> {
    let mut out = Vec::new();
    // Fewer faults.
    if candidate.faults.len() > 1 {
        for i in 0..candidate.faults.len() {
            let mut smaller = candidate.clone();
            smaller.faults.remove(i);
            out.push((format!("without fault {}", i + 1), smaller));
        }
    }
    // Fewer operations.
    if let Some(requests) = candidate.requests.filter(|r| *r > 1) {
        for fewer in cuts(requests as u64, 1) {
            let mut smaller = candidate.clone();
            smaller.requests = Some(fewer as _);
            out.push((format!("requests {requests} -> {fewer}"), smaller));
        }
    }
    let ms = |d: Duration| d.as_millis() as u64;
    for (i, fault) in candidate.faults.iter().enumerate() {
        let name = format!("fault {}", i + 1);
        // One request hit instead of every matching one.
        let every = fault.get("kind").and_then(Value::as_str) == Some("request")
            && fault.get("nth").is_none()
            && fault.get("fraction").is_none();
        if every {
            let mut smaller = candidate.clone();
            smaller.faults[i]["nth"] = Value::from(1);
            out.push((format!("{name}: only the 1st matching request"), smaller));
        }
        // A shorter window, then an earlier one.
        if let Some(duration) = duration_of(fault, "duration") {
            for shorter in cuts(ms(duration), ms(SHORTEST_WINDOW)) {
                let mut smaller = candidate.clone();
                smaller.faults[i] = with_duration(fault, "duration", Duration::from_millis(shorter));
                out.push((
                    format!("{name}: lasts {shorter}ms, not {}ms", duration.as_millis()),
                    smaller,
                ));
            }
        }
        if let Some(start) = duration_of(fault, "start").filter(|s| !s.is_zero()) {
            let earlier_ones = std::iter::once(0)
                .chain(cuts(ms(start), ms(SHORTEST_WINDOW)).into_iter().filter(|e| *e > ms(SHORTEST_WINDOW)));
            for earlier in earlier_ones {
                let mut smaller = candidate.clone();
                smaller.faults[i] = with_duration(fault, "start", Duration::from_millis(earlier));
                out.push((
                    format!("{name}: starts at {earlier}ms, not {}ms", start.as_millis()),
                    smaller,
                ));
            }
        }
    }
    // A shorter load, still outlasting the last heal.
    let floor = last_heal(candidate) + LOAD_AFTER_HEAL;
    if floor < candidate.load {
        for shorter in cuts(ms(candidate.load), ms(floor)) {
            let mut smaller = candidate.clone();
            smaller.load = Duration::from_millis(shorter);
            out.push((
                format!("load {shorter}ms, not {}ms", candidate.load.as_millis()),
                smaller,
            ));
        }
    }
    out
}

/// The search, one run at a time: [`next`](Self::next) gives the candidate to run,
/// [`record`](Self::record) takes how it came out. (A driver owns the stack the runs need;
/// the search owns nothing but candidates.)
pub struct Shrinker {
    current: Candidate,
    steps: Vec<String>,
    runs: usize,
    reruns: usize,
    max_runs: usize,
    tried: Vec<Candidate>,
    /// Reductions of `current` not tried yet, next first.
    queue: Vec<(String, Candidate)>,
    /// The reduction being run, and how many of its runs failed so far.
    trying: Option<(String, Candidate, usize)>,
    exhausted_budget: bool,
}

impl Shrinker {
    /// A search from `start` (which failed), keeping a reduction when `reruns` runs of it in
    /// a row fail, spending at most `max_runs` runs.
    pub fn new(start: Candidate, reruns: usize, max_runs: usize) -> Self {
        let mut queue = reductions(&start);
        queue.reverse();
        Self {
            current: start,
            steps: Vec::new(),
            runs: 0,
            reruns: reruns.max(1),
            max_runs,
            tried: Vec::new(),
            queue,
            trying: None,
            exhausted_budget: false,
        }
    }

    /// The candidate to run next; `None` when the search is over.
    pub fn next(&mut self) -> Option<Candidate> {
        if self.runs >= self.max_runs {
            self.exhausted_budget = self.trying.is_some() || !self.queue.is_empty();
            return None;
        }
        if let Some((_, candidate, _)) = &self.trying {
            return Some(candidate.clone());
        }
        while let Some((step, candidate)) = self.queue.pop() {
            if self.tried.contains(&candidate) {
                continue;
            }
            self.tried.push(candidate.clone());
            self.trying = Some((step, candidate.clone(), 0));
            return Some(candidate);
        }
        None
    }

    /// Whether the candidate [`next`](Self::next) gave failed the same way.
    pub fn record(&mut self, failed: bool) {
        self.runs += 1;
        let Some((step, candidate, failures)) = self.trying.take() else {
            return;
        };
        if !failed {
            return;
        }
        if failures + 1 < self.reruns {
            self.trying = Some((step, candidate, failures + 1));
            return;
        }
        // Kept: go on from the smaller scenario, where earlier reductions may apply again.
        self.steps.push(step);
        self.queue = reductions(&candidate);
        self.queue.reverse();
        self.current = candidate;
    }

    /// Runs spent so far.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// How many reductions were kept so far.
    pub fn steps_taken(&self) -> usize {
        self.steps.len()
    }

    /// The last reduction kept.
    pub fn last_step(&self) -> Option<String> {
        self.steps.last().cloned()
    }

    /// The smallest failing candidate found and how it was reached.
    pub fn finish(self) -> Shrunk {
        Shrunk {
            candidate: self.current,
            steps: self.steps,
            runs: self.runs,
            exhausted_budget: self.exhausted_budget,
        }
    }
}

/// Shrinks `start` (which failed) to the end: `fails(candidate)` runs it once and says
/// whether it failed the same way.
pub async fn shrink<F, Fut>(start: Candidate, reruns: usize, max_runs: usize, mut fails: F) -> Shrunk
where
    F: FnMut(Candidate) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut shrinker = Shrinker::new(start, reruns, max_runs);
    while let Some(candidate) = shrinker.next() {
        let failed = fails(candidate).await;
        shrinker.record(failed);
    }
    shrinker.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn fault(kind: &str, start: u64, duration: u64) -> Value {
        serde_json::json!({
            "target": "order->payment", "kind": kind, "action": "drop_answer",
            "start": format!("{start}ms"), "duration": format!("{duration}ms"),
        })
    }

    fn start() -> Candidate {
        Candidate {
            requests: Some(16),
            load: Duration::from_secs(8),
            faults: vec![fault("request", 1000, 4000), fault("partition", 3000, 1000)],
        }
    }

    fn ms(fault: &Value, key: &str) -> u128 {
        duration_of(fault, key).unwrap().as_millis()
    }

    /// A "system" whose bug needs the request fault to hit at least one of 4+ operations,
    /// with its window covering 1 s..1.5 s of the load; the partition is irrelevant.
    fn buggy(c: &Candidate) -> bool {
        let Some(f) = c.faults.iter().find(|f| f["kind"] == "request") else {
            return false;
        };
        let (start, duration) = (ms(f, "start"), ms(f, "duration"));
        c.requests.unwrap_or(0) >= 4 && start <= 1000 && start + duration >= 1500
    }

    #[tokio::test]
    async fn a_failure_shrinks_to_the_smallest_scenario_that_still_fails() {
        assert!(buggy(&start()));
        let runs = RefCell::new(0);
        let shrunk = shrink(start(), 3, 500, |c| {
            *runs.borrow_mut() += 1;
            let failed = buggy(&c);
            async move { failed }
        })
        .await;
        let c = &shrunk.candidate;
        assert!(buggy(c), "what it kept still fails: {c:?}");
        assert_eq!(c.faults.len(), 1, "the irrelevant fault is gone: {:?}", shrunk.steps);
        assert_eq!(c.requests, Some(4));
        assert_eq!(c.faults[0]["nth"], 1);
        assert!(ms(&c.faults[0], "start") <= 1000);
        assert!(ms(&c.faults[0], "duration") < 4000);
        assert!(c.load < Duration::from_secs(8));
        assert!(c.load >= last_heal(c) + LOAD_AFTER_HEAL);
        assert!(!shrunk.exhausted_budget);
        assert_eq!(shrunk.runs, *runs.borrow());
        // The cut as far as it goes first: 16 -> 1 and 16 -> 2 refused, 16 -> 4 kept at once.
        assert!(shrunk.steps.iter().any(|s| s == "requests 16 -> 4"), "{:?}", shrunk.steps);
        // Halving one step at a time reached the same scenario in 41 runs (9 kept steps).
        assert!(shrunk.runs <= 30, "{} runs: {:?}", shrunk.runs, shrunk.steps);
    }

    #[tokio::test]
    async fn a_reduction_is_kept_only_when_every_rerun_fails() {
        // Fails only on every other run: no reduction survives three reruns.
        let runs = RefCell::new(0usize);
        let shrunk = shrink(start(), 3, 500, |_| {
            *runs.borrow_mut() += 1;
            let failed = *runs.borrow() % 2 == 1;
            async move { failed }
        })
        .await;
        assert_eq!(shrunk.candidate, start());
        assert!(shrunk.steps.is_empty());
    }

    #[tokio::test]
    async fn shrinking_stops_when_its_runs_are_spent() {
        let shrunk = shrink(start(), 3, 4, |c| {
            let failed = buggy(&c);
            async move { failed }
        })
        .await;
        assert_eq!(shrunk.runs, 4);
        assert!(shrunk.exhausted_budget);
        assert!(buggy(&shrunk.candidate));
    }
}
