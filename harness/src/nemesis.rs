//! The nemesis of a chaos run: applies a scenario's fault schedule to a running [`Stack`] and
//! heals it, writing every start and heal to the [`History`](crate::history::History). It
//! never judges; the checkers do.
//!
//! ```no_run
//! use faultline_harness::{history::Recorder, nemesis::Nemesis, stack::{Stack, StackConfig}};
//! # async fn demo(scenario: faultline_chaos::scenario::Scenario) -> anyhow::Result<()> {
//! let system = faultline_harness::system::System::load("services/faultline.toml".as_ref())?;
//! let mut stack = Stack::start(&system, StackConfig::default()).await?;
//! let recorder = Recorder::new();
//! let mut nemesis = Nemesis::new(scenario.faults.clone());
//! nemesis.run(&mut stack, tokio::time::Instant::now(), &recorder).await;
//! nemesis.heal_all(&mut stack, &recorder).await;   // on every exit path
//! # Ok(()) }
//! ```
//!
//! # What each fault does
//!
//! | kind | start | heal |
//! |---|---|---|
//! | a toxic on a link | `add_toxic` named `faultline-fault-<index>` on the link's proxy | `remove_toxic` |
//! | `partition` | the link's proxy disabled | enabled again |
//! | `kill` | SIGKILL to the service process | the process started again (waits until ready) |
//! | `pause` | SIGSTOP | SIGCONT |
//! | `container_pause` | the container frozen | thawed |
//! | `container_stop` | the container stopped | started again |
//! | `redeliver` | the service stopped gracefully, its group's committed offsets moved back | the service started again |
//! | `request` | installed on the link's [request proxy](crate::intercept), which records each request it hits | taken out |
//!
//! Faults start and heal at their planned offsets from the start of the load phase
//! ([`Nemesis::timeline`], a function of the scenario alone). The nemesis remembers every fault
//! it applied and has not healed; [`Nemesis::heal_all`] heals those, so the runner calls it on
//! every way out of a run — after the schedule, after an error, after an interrupt.
//!
//! Layer 3 (run roles) of the harness ([layers](crate#layers)): imports the history, the stack
//! and the proxies it installs faults in.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_chaos::scenario::{Fault, FaultKind, Target};
use faultline_chaos::toxiproxy::Toxic;
use serde::Serialize;
use serde_json::{json, Value};

use crate::history::{Op, Process, Recorder};
use crate::intercept::StopRequest;
use tokio::sync::mpsc;
use crate::stack::{Stack, StackError};

/// Whether a step starts or heals a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Start,
    Heal,
}

/// One planned step of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// From the start of the load phase.
    pub at: Duration,
    /// The fault's index in the scenario's schedule.
    pub fault: usize,
    pub action: Action,
}

/// A fault in effect, with what it takes to undo it.
#[derive(Debug, Clone)]
enum Applied {
    /// On every proxy of the link (one per container port of a server with several).
    Toxic {
        link: String,
        proxies: Vec<String>,
        toxic: String,
    },
    Partition {
        link: String,
        proxies: Vec<String>,
    },
    Killed {
        service: String,
    },
    Paused {
        service: String,
    },
    ContainerPaused {
        name: String,
    },
    ContainerStopped {
        name: String,
    },
    Redelivered {
        service: String,
        /// `(partition, from, to)` for each partition whose committed offset moved back.
        moved: Vec<(i32, i64, i64)>,
    },
    /// Installed on a request proxy, or on a broker proxy when `broker`.
    Request {
        link: String,
        index: usize,
        /// The service its program point stopped, and whether it was paused (else killed).
        stopped: Option<(String, bool)>,
        broker: bool,
    },
    Statement {
        link: String,
        index: usize,
    },
}

/// Applies and heals a fault schedule.
pub struct Nemesis {
    schedule: Vec<Fault>,
    active: BTreeMap<usize, Applied>,
    seed: u64,
    /// Program-point faults ask for their stops here; [`Nemesis::run`] carries them out.
    stops: mpsc::UnboundedSender<StopRequest>,
    asked: mpsc::UnboundedReceiver<StopRequest>,
}

impl Nemesis {
    pub fn new(schedule: Vec<Fault>) -> Self {
        let (stops, asked) = mpsc::unbounded_channel();
        Self {
            schedule,
            active: BTreeMap::new(),
            seed: 0,
            stops,
            asked,
        }
    }

    /// Draws the requests a request-level fault with a `fraction` hits from `seed` (the run's).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Every start and heal in time order (a heal before a start at the same instant).
    pub fn timeline(&self) -> Vec<Step> {
        let mut steps: Vec<Step> = self
            .schedule
            .iter()
            .enumerate()
            .flat_map(|(fault, f)| {
                [
                    Step {
                        at: f.start,
                        fault,
                        action: Action::Start,
                    },
                    Step {
                        at: f.start + f.duration,
                        fault,
                        action: Action::Heal,
                    },
                ]
            })
            .collect();
        steps.sort_by_key(|s| (s.at, s.action == Action::Start, s.fault));
        steps
    }

    /// Indices of faults started and not yet healed.
    pub fn active(&self) -> Vec<usize> {
        self.active.keys().copied().collect()
    }

    /// Carries out the whole timeline, each step at `load_start + step.at`. Failures are
    /// recorded in the history, not returned: the run goes on and the checkers see them.
    pub async fn run(
        &mut self,
        stack: &mut Stack,
        load_start: tokio::time::Instant,
        recorder: &Recorder,
    ) {
        self.run_reporting(stack, load_start, recorder, &|_| {})
            .await;
    }

    /// [`run`](Self::run), telling `progress` about each step as it is done.
    pub async fn run_reporting(
        &mut self,
        stack: &mut Stack,
        load_start: tokio::time::Instant,
        recorder: &Recorder,
        progress: &(dyn Fn(&str) + Sync),
    ) {
        for step in self.timeline() {
            // Until the step is due, carry out the stops program-point faults ask for.
            loop {
                let asked = tokio::select! {
                    () = tokio::time::sleep_until(load_start + step.at) => None,
                    Some(stop) = self.asked.recv() => Some(stop),
                };
                match asked {
                    Some(stop) => self.stop(stop, stack, progress).await,
                    None => break,
                }
            }
            let description = describe(&self.schedule[step.fault]);
            let done = match step.action {
                Action::Start => {
                    self.start(step.fault, stack, recorder).await;
                    self.active.contains_key(&step.fault)
                }
                Action::Heal => {
                    self.heal(step.fault, stack, recorder, progress).await;
                    !self.active.contains_key(&step.fault)
                }
            };
            let verb = match (step.action, done) {
                (Action::Start, true) => "started",
                (Action::Start, false) => "could not start (see the history)",
                (Action::Heal, true) => "healed",
                (Action::Heal, false) => "could not heal (retried at the end)",
            };
            progress(&format!("fault {} {verb}: {description}", step.fault));
        }
    }

    /// Heals every fault still in effect; the errors of heals that failed (also recorded).
    pub async fn heal_all(&mut self, stack: &mut Stack, recorder: &Recorder) -> Vec<String> {
        let mut errors = Vec::new();
        for index in self.active() {
            self.heal(index, stack, recorder, &|_| {}).await;
            if self.active.contains_key(&index) {
                errors.push(format!(
                    "fault {index} ({}) could not be healed",
                    describe(&self.schedule[index])
                ));
            }
        }
        errors
    }

    /// The history operation of starting or healing fault `index`.
    pub fn op(&self, index: usize, action: Action) -> Op {
        let fault = &self.schedule[index];
        let (target, kind) = (target_name(&fault.target), kind_name(&fault.kind));
        match action {
            Action::Start => Op::StartFault {
                index,
                target,
                kind,
            },
            Action::Heal => Op::HealFault {
                index,
                target,
                kind,
            },
        }
    }

    async fn start(&mut self, index: usize, stack: &mut Stack, recorder: &Recorder) {
        let pending = recorder.invoke(Process::Nemesis, self.op(index, Action::Start));
        let fault = &self.schedule[index];
        let applied = match (&fault.target, &fault.kind) {
            // Installed on the link's request proxy, which records each request it hits.
            (Target::Link { client, server }, FaultKind::Request(request)) => {
                let link = format!("{client}->{server}");
                stack.request_proxy(&link).map(|proxy| {
                    proxy.install(
                        index,
                        request.clone(),
                        self.seed,
                        recorder.clone(),
                        self.stops.clone(),
                    );
                    Applied::Request {
                        link,
                        index,
                        stopped: None,
                        broker: false,
                    }
                })
            }
            // Installed on the link's broker proxy, which records each request it hits.
            (Target::Link { client, server }, FaultKind::Kafka(kafka)) => {
                let link = format!("{client}->{server}");
                stack.broker_proxy(&link).map(|proxy| {
                    proxy.install(
                        index,
                        kafka.clone(),
                        self.seed,
                        recorder.clone(),
                        self.stops.clone(),
                    );
                    Applied::Request {
                        link,
                        index,
                        stopped: None,
                        broker: true,
                    }
                })
            }
            // Installed on the link's statement proxy, which records each statement it hits.
            (Target::Link { client, server }, FaultKind::Statement(statement)) => {
                let link = format!("{client}->{server}");
                stack.statement_proxy(&link).map(|proxy| {
                    proxy.install(index, statement.clone(), self.seed, recorder.clone());
                    Applied::Statement { link, index }
                })
            }
            _ => apply(index, fault, stack).await,
        };
        match applied {
            Ok(applied) => {
                let value = applied_value(&applied);
                self.active.insert(index, applied);
                pending.ok(value);
            }
            Err(error) => {
                pending.fail(json!({"error": error.to_string()}));
            }
        }
    }

    /// Carries out a program-point fault's stop (its request waits for the answer); the
    /// service comes back when the fault heals.
    async fn stop(&mut self, stop: StopRequest, stack: &mut Stack, progress: &(dyn Fn(&str) + Sync)) {
        let outcome = match self.active.get(&stop.index) {
            Some(Applied::Request { stopped: None, .. }) => {
                let result = if stop.pause {
                    stack.pause(&stop.service).await
                } else {
                    stack.kill(&stop.service).await
                };
                result.map_err(|e| e.to_string())
            }
            _ => Err(format!("fault {} is no longer in effect", stop.index)),
        };
        if outcome.is_ok() {
            if let Some(Applied::Request { stopped, .. }) = self.active.get_mut(&stop.index) {
                *stopped = Some((stop.service.clone(), stop.pause));
            }
            progress(&format!(
                "fault {} struck: {} {}",
                stop.index,
                if stop.pause { "paused" } else { "killed" },
                stop.service
            ));
        }
        let _ = stop.done.send(outcome);
    }

    async fn heal(
        &mut self,
        index: usize,
        stack: &mut Stack,
        recorder: &Recorder,
        progress: &(dyn Fn(&str) + Sync),
    ) {
        // A fault that never started (its start failed) has nothing to heal.
        let Some(applied) = self.active.get(&index).cloned() else {
            return;
        };
        if let Applied::Request { link, broker, .. } = &applied {
            // No stop of this fault once its heal has begun: one already asked for is
            // refused. Other faults' stops waiting in the channel are carried out.
            let _ = take_out_of_proxy(stack, link, index, *broker);
            let mut waiting = Vec::new();
            while let Ok(stop) = self.asked.try_recv() {
                waiting.push(stop);
            }
            for stop in refuse_stops_of(index, waiting) {
                self.stop(stop, stack, progress).await;
            }
        }
        let pending = recorder.invoke(Process::Nemesis, self.op(index, Action::Heal));
        match undo(&applied, stack).await {
            Ok(()) => {
                self.active.remove(&index);
                pending.ok(applied_value(&applied));
            }
            Err(error) => {
                pending.fail(json!({"error": error.to_string()}));
            }
        }
    }
}

/// Refuses the stops `healing` asked for (its heal came first); the others, in the order asked.
fn refuse_stops_of(healing: usize, waiting: Vec<StopRequest>) -> Vec<StopRequest> {
    let (refused, others): (Vec<_>, Vec<_>) =
        waiting.into_iter().partition(|stop| stop.index == healing);
    for stop in refused {
        let _ = stop.done.send(Err(format!("fault {} healed first", stop.index)));
    }
    others
}

async fn apply(index: usize, fault: &Fault, stack: &mut Stack) -> Result<Applied, StackError> {
    match (&fault.target, &fault.kind) {
        (
            Target::Link { client, server },
            FaultKind::Toxic {
                toxic,
                stream,
                toxicity,
            },
        ) => {
            let link = format!("{client}->{server}");
            let (toxiproxy, proxies) = stack.link_proxies(&link)?;
            let name = format!("faultline-fault-{index}");
            let toxic = Toxic::new(&name, toxic.clone())
                .with_stream(*stream)
                .with_toxicity(*toxicity);
            for (i, proxy) in proxies.iter().enumerate() {
                if let Err(error) = toxiproxy.add_toxic(proxy, &toxic).await {
                    // Not applied: the proxies it reached are undone.
                    for done in &proxies[..i] {
                        let _ = toxiproxy.remove_toxic(done, &name).await;
                    }
                    return Err(error.into());
                }
            }
            Ok(Applied::Toxic {
                link,
                proxies,
                toxic: name,
            })
        }
        (Target::Link { client, server }, FaultKind::Partition) => {
            let link = format!("{client}->{server}");
            let (toxiproxy, proxies) = stack.link_proxies(&link)?;
            for (i, proxy) in proxies.iter().enumerate() {
                if let Err(error) = toxiproxy.disable(proxy).await {
                    for done in &proxies[..i] {
                        let _ = toxiproxy.enable(done).await;
                    }
                    return Err(error.into());
                }
            }
            Ok(Applied::Partition { link, proxies })
        }
        (Target::Process { service }, FaultKind::Kill) => {
            stack.kill(service).await?;
            Ok(Applied::Killed {
                service: service.clone(),
            })
        }
        (Target::Process { service }, FaultKind::Pause) => {
            stack.pause(service).await?;
            Ok(Applied::Paused {
                service: service.clone(),
            })
        }
        (
            Target::Process { service },
            FaultKind::Redeliver {
                topic,
                group,
                events,
            },
        ) => {
            // Gracefully, so the consumer leaves its group and the group accepts the move.
            stack.stop(service).await?;
            let moved = match stack.rewind_group(group, topic, *events).await {
                Ok(moved) => moved,
                Err(error) => {
                    // Not applied: the service comes back as it was.
                    let _ = stack.restart(service).await;
                    return Err(error);
                }
            };
            Ok(Applied::Redelivered {
                service: service.clone(),
                moved,
            })
        }
        (Target::Container { name }, FaultKind::ContainerPause) => {
            stack.infra().pause_container(name).await?;
            Ok(Applied::ContainerPaused { name: name.clone() })
        }
        (Target::Container { name }, FaultKind::ContainerStop) => {
            stack.infra().stop_container(name).await?;
            Ok(Applied::ContainerStopped { name: name.clone() })
        }
        // The scenario parser rejects these pairs; a hand-built Fault may still carry one.
        (target, kind) => Err(StackError::Io {
            action: format!("applying fault {index}"),
            message: format!(
                "a {} fault cannot target {}",
                kind_name(kind),
                target_name(target)
            ),
        }),
    }
}

async fn undo(applied: &Applied, stack: &mut Stack) -> Result<(), StackError> {
    match applied {
        Applied::Toxic {
            link,
            proxies,
            toxic,
        } => {
            let (toxiproxy, _) = stack.link(link)?;
            for proxy in proxies {
                match toxiproxy.remove_toxic(proxy, toxic).await {
                    Err(error) if !error.is_not_found() => return Err(error.into()),
                    _ => {}
                }
            }
            Ok(())
        }
        Applied::Partition { link, proxies } => {
            let (toxiproxy, _) = stack.link(link)?;
            for proxy in proxies {
                toxiproxy.enable(proxy).await?;
            }
            Ok(())
        }
        Applied::Killed { service } | Applied::Redelivered { service, .. } => {
            stack.restart(service).await.map(|_| ())
        }
        Applied::Paused { service } => stack.resume(service).await,
        Applied::ContainerPaused { name } => Ok(stack.infra().unpause_container(name).await?),
        Applied::ContainerStopped { name } => Ok(stack.infra().start_container(name).await?),
        Applied::Statement { link, index } => {
            // Statements it holds are sent now; those it delays, still late.
            stack.statement_proxy(link)?.remove(*index);
            Ok(())
        }
        Applied::Request {
            link,
            index,
            stopped,
            broker,
        } => {
            // Taken out; requests it holds stay held until their callers give up (a broker
            // proxy forwards them now). A service its program point stopped comes back.
            take_out_of_proxy(stack, link, *index, *broker)?;
            match stopped {
                Some((service, true)) => stack.resume(service).await,
                Some((service, false)) => stack.restart(service).await.map(|_| ()),
                None => Ok(()),
            }
        }
    }
}

/// Takes fault `index` out of the request proxy (or broker proxy) on `link`.
fn take_out_of_proxy(stack: &Stack, link: &str, index: usize, broker: bool) -> Result<(), StackError> {
    if broker {
        stack.broker_proxy(link)?.remove(index);
    } else {
        stack.request_proxy(link)?.remove(index);
    }
    Ok(())
}

fn applied_value(applied: &Applied) -> Value {
    match applied {
        // `proxy` the link's first; `proxies` only when it has more than one.
        Applied::Toxic { proxies, toxic, .. } => match proxies.as_slice() {
            [one] => json!({"proxy": one, "toxic": toxic}),
            many => json!({"proxy": many[0], "proxies": many, "toxic": toxic}),
        },
        Applied::Partition { proxies, .. } => match proxies.as_slice() {
            [one] => json!({"proxy": one}),
            many => json!({"proxy": many[0], "proxies": many}),
        },
        Applied::Killed { service } | Applied::Paused { service } => json!({"service": service}),
        Applied::Redelivered { service, moved } => json!({
            "service": service,
            "moved": moved
                .iter()
                .map(|(partition, from, to)| json!({"partition": partition, "from": from, "to": to}))
                .collect::<Vec<_>>(),
        }),
        Applied::ContainerPaused { name } | Applied::ContainerStopped { name } => {
            json!({"container": name})
        }
        Applied::Request {
            link,
            stopped,
            broker,
            ..
        } => {
            let proxy = if *broker { "broker_proxy" } else { "request_proxy" };
            match stopped {
                Some((service, true)) => json!({proxy: link, "paused": service}),
                Some((service, false)) => json!({proxy: link, "killed": service}),
                None => json!({proxy: link}),
            }
        }
        Applied::Statement { link, .. } => json!({"statement_proxy": link}),
    }
}

/// `order->payment`, `order`, `postgres (container)`.
pub fn target_name(target: &Target) -> String {
    match target {
        Target::Link { client, server } => format!("{client}->{server}"),
        Target::Process { service } => service.clone(),
        Target::Container { name } => format!("{name} (container)"),
    }
}

/// `latency`, `partition`, `kill`, …: the kind as a scenario file spells it.
pub fn kind_name(kind: &FaultKind) -> String {
    match kind {
        FaultKind::Toxic { toxic, .. } => toxic.type_name().to_string(),
        FaultKind::Partition => "partition".into(),
        FaultKind::Kill => "kill".into(),
        FaultKind::Pause => "pause".into(),
        FaultKind::ContainerPause => "container_pause".into(),
        FaultKind::ContainerStop => "container_stop".into(),
        FaultKind::Request(_) => "request".into(),
        FaultKind::Statement(_) => "statement".into(),
        FaultKind::Kafka(_) => "kafka".into(),
        FaultKind::Redeliver { .. } => "redeliver".into(),
    }
}

/// `partition of order->payment`; `request fault on order->payment: drop_answer of POST
/// /payments*, the 1st`.
pub fn describe(fault: &Fault) -> String {
    match &fault.kind {
        FaultKind::Request(request) => format!(
            "request fault on {}: {}",
            target_name(&fault.target),
            request.describe()
        ),
        FaultKind::Statement(statement) => format!(
            "statement fault on {}: {}",
            target_name(&fault.target),
            statement.describe()
        ),
        FaultKind::Kafka(kafka) => format!(
            "kafka fault on {}: {}",
            target_name(&fault.target),
            kafka.describe()
        ),
        FaultKind::Redeliver {
            topic,
            group,
            events,
        } => format!(
            "redeliver of {}: group {group} back {events} events on {topic}",
            target_name(&fault.target)
        ),
        kind => format!("{} of {}", kind_name(kind), target_name(&fault.target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_chaos::scenario::Scenario;

    fn schedule() -> Vec<Fault> {
        Scenario::parse(
            "t.toml",
            &crate::fixtures::shop(),
            r#"
            name = "t"
            description = "d"
            [workload]
            requests = 1
            duration = "30s"
            [[workload.operations]]
            name = "place"
            service = "gateway"
            method = "POST"
            path = "/orders"
            [[faults]]
            start = "10s"
            duration = "5s"
            target = "order"
            kind = "kill"
            [[faults]]
            start = "2s"
            duration = "8s"
            target = "order->payment"
            kind = "partition"
            "#,
        )
        .unwrap()
        .faults
    }

    #[test]
    fn the_timeline_is_in_time_order_with_heals_before_starts_at_the_same_instant() {
        let steps = Nemesis::new(schedule()).timeline();
        let seen: Vec<_> = steps
            .iter()
            .map(|s| (s.at.as_secs(), s.fault, s.action))
            .collect();
        assert_eq!(
            seen,
            vec![
                (2, 1, Action::Start),
                (10, 1, Action::Heal),
                (10, 0, Action::Start),
                (15, 0, Action::Heal),
            ]
        );
    }

    #[test]
    fn a_heal_refuses_only_its_own_faults_stops() {
        let ask = |index| {
            let (done, answer) = tokio::sync::oneshot::channel();
            let stop = StopRequest {
                index,
                service: "order".into(),
                pause: false,
                done,
            };
            (stop, answer)
        };
        let (first, mut first_answer) = ask(2);
        let (healed, mut healed_answer) = ask(1);
        let (second, mut second_answer) = ask(3);
        let kept = refuse_stops_of(1, vec![first, healed, second]);
        assert_eq!(kept.iter().map(|s| s.index).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(
            healed_answer.try_recv().unwrap(),
            Err("fault 1 healed first".to_string())
        );
        // The others are still waiting for their answer.
        assert!(first_answer.try_recv().is_err());
        assert!(second_answer.try_recv().is_err());
        drop(kept);
    }

    #[test]
    fn faults_are_described_as_the_scenario_spells_them() {
        let faults = schedule();
        assert_eq!(describe(&faults[0]), "kill of order");
        assert_eq!(describe(&faults[1]), "partition of order->payment");
    }
}
