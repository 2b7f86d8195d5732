//! A workload and a checker written in Rust, for what the bank's description and scenarios
//! cannot say in data: on payday, bob pays each colleague, and every balance must be
//! explained by the payments the teller answered.
//!
//! - `Payday` is the workload (`[workload] payments = N` in a scenario with no operations):
//!   it plans seeded payments, sends them to the teller, records each one in the run's
//!   history, and keeps the plan in the run's facts for the checker.
//! - `PayrollAddsUp` is the checker (`invariants = ["payroll-adds-up"]`): a payment the
//!   teller confirmed was applied once, one it refused was not, one whose answer was lost may
//!   have been; each account's balance must fall in the range those allow.
//!
//! Both reach the library through `faultline::extend`, as any repository's would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::extend::{
    drive_plan, BoxFuture, CheckContext, Checker, Counterexample, EventType, Extension, Facts,
    Fields, History, LoadSummary, Op, Outcomes, ParsedScenario, Planned, Probe, ProbeCheck,
    p99_verdict, PrepareError, Process, Recorder, ScenarioError, Settlement, Stack, Verdict, Workload,
    WorkloadKind, WorkloadReader, WorkloadState,
};
use serde_json::{json, Value};

const OPENING_BALANCE: i64 = 1000;
const ACCOUNTS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const EMPLOYER: &str = "bob";
const PAYEES: [&str; 3] = ["alice", "carol", "dave"];

/// One planned payment.
#[derive(Debug, Clone, PartialEq)]
struct Payment {
    id: String,
    to: &'static str,
    amount: i64,
    at: Duration,
}

impl Planned for Payment {
    fn send_at(&self) -> Duration {
        self.at
    }
    fn duplicated(&self) -> bool {
        false
    }
}

/// Every payment a run sent (the load's and the probes'), as the checker reads them.
#[derive(Default)]
struct Payroll(Mutex<Vec<Payment>>);

/// A small seeded generator (splitmix64): the plan is a function of the seed.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn plan(payments: usize, seed: u64, duration: Duration, prefix: &str) -> Vec<Payment> {
    let mut rng = Seeded(seed);
    // Spread over the first half of the load phase, so the faults meet payments in flight.
    let spread = duration.as_millis() as u64 / 2;
    (0..payments)
        .map(|n| Payment {
            id: format!("{prefix}-{seed}-{n}"),
            to: PAYEES[(rng.next() % PAYEES.len() as u64) as usize],
            amount: 1 + (rng.next() % 20) as i64,
            at: Duration::from_millis(spread * n as u64 / payments.max(1) as u64),
        })
        .collect()
}

/// The workload's kind: reads `payments` from a scenario's `[workload]`.
struct PaydayKind;

impl WorkloadReader for PaydayKind {
    fn name(&self) -> &str {
        "payday"
    }
    fn read(&self, fields: &mut Fields<'_>) -> Result<(), ScenarioError> {
        match fields.integer_in("payments", 1..=1000)? {
            Some(_) => Ok(()),
            None => Err(fields.error("payments", "required: how many payments bob makes")),
        }
    }
    fn default_invariants(&self) -> Vec<String> {
        vec!["payroll-adds-up".into()]
    }
}

impl WorkloadKind for PaydayKind {
    fn build(&self, scenario: &ParsedScenario, seed: u64) -> Box<dyn Workload> {
        let payments = scenario.workload.params["payments"]
            .as_integer()
            .expect("validated by read") as usize;
        Box::new(Payday {
            plan: plan(payments, seed, scenario.workload.duration, "pay"),
            seed,
            concurrency: scenario.workload.concurrency,
            duration: scenario.workload.duration,
            teller: String::new(),
            http: reqwest::Client::new(),
            payroll: Arc::new(Payroll::default()),
            ended: Mutex::new(BTreeMap::new()),
        })
    }
}

struct Payday {
    plan: Vec<Payment>,
    seed: u64,
    concurrency: u32,
    duration: Duration,
    teller: String,
    http: reqwest::Client,
    /// Shared with the checker through the run's facts (set in `prepare`).
    payroll: Arc<Payroll>,
    /// How each payment the run sent ended, as its client saw it.
    ended: Mutex<BTreeMap<String, Ended>>,
}

/// How a payment ended, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ended {
    Ok,
    Refused,
    Unknown,
}

impl Payday {
    /// Sends one payment through the teller as `process`, recorded in the history.
    async fn pay(&self, process: Process, payment: &Payment, recorder: &Recorder) -> Ended {
        let pending = recorder.invoke(
            process,
            Op::Request {
                operation: "pay".into(),
                method: "POST".into(),
                path: "/transfers".into(),
                key: payment.id.clone(),
                kind: Some(payment.to.into()),
            },
        );
        let sent = self
            .http
            .post(format!("{}/transfers", self.teller))
            .timeout(Duration::from_secs(5))
            .json(&json!({
                "id": payment.id, "from": EMPLOYER, "to": payment.to, "amount": payment.amount,
            }))
            .send()
            .await;
        let ended = match sent {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let body: Value = answer.json().await.unwrap_or(Value::Null);
                let value = json!({ "status": status, "body": body });
                if (200..300).contains(&status) {
                    pending.ok(value);
                    Ended::Ok
                } else if (400..500).contains(&status) {
                    // The ledger refused it: nothing moved.
                    pending.fail(value);
                    Ended::Refused
                } else {
                    // A 5xx may come after the ledger applied it.
                    pending.info(value);
                    Ended::Unknown
                }
            }
            Err(error) => {
                pending.info(json!({ "error": error.to_string() }));
                Ended::Unknown
            }
        };
        self.ended
            .lock()
            .expect("endings")
            .insert(payment.id.clone(), ended);
        ended
    }
}

impl Workload for Payday {
    fn describe(&self) -> String {
        format!("{} payments from {EMPLOYER}", self.plan.len())
    }

    fn plan(&self) -> Value {
        Value::Array(
            self.plan
                .iter()
                .map(|p| json!({ "id": p.id, "to": p.to, "amount": p.amount, "at_ms": p.at.as_millis() as u64 }))
                .collect(),
        )
    }

    fn prepare<'a>(
        &'a mut self,
        stack: &'a Stack,
        facts: &'a Facts,
        _recorder: &'a Recorder,
    ) -> BoxFuture<'a, Result<(), PrepareError>> {
        Box::pin(async move {
            self.teller = stack.service_url("teller")?;
            // What the checker must know of the load: every payment it may send.
            self.payroll = facts.insert(Payroll(Mutex::new(self.plan.clone())));
            Ok(())
        })
    }

    fn default_probes(&self) -> Vec<Probe> {
        vec![Probe {
            name: "ready".into(),
            check: ProbeCheck::Ready,
            within: None,
        }]
    }

    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        index: usize,
        phase: &'a str,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, (bool, String)> {
        Box::pin(async move {
            let sample = match probe.check {
                ProbeCheck::Ready => return (true, "judged by the runner".into()),
                ProbeCheck::SuccessRate { sample, .. } | ProbeCheck::P99Latency { sample, .. } => {
                    sample
                }
            };
            let payments = plan(
                sample as usize,
                self.seed,
                Duration::ZERO,
                &format!("probe-{phase}-{index}"),
            );
            self.payroll
                .0
                .lock()
                .expect("payroll")
                .extend(payments.iter().cloned());
            let mut ok = Vec::new();
            for payment in &payments {
                let clock = Instant::now();
                if self.pay(Process::Probe, payment, recorder).await == Ended::Ok {
                    ok.push(clock.elapsed());
                }
            }
            match probe.check {
                ProbeCheck::SuccessRate { min, .. } => {
                    let rate = ok.len() as f64 / f64::from(sample.max(1));
                    (rate >= min, format!("{} of {sample} payments ok", ok.len()))
                }
                ProbeCheck::P99Latency { max, .. } => p99_verdict(&ok, sample, max, "payments"),
                ProbeCheck::Ready => unreachable!("answered above"),
            }
        })
    }

    fn drive<'a>(
        &'a self,
        load_start: tokio::time::Instant,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, LoadSummary> {
        Box::pin(async move {
            let driven = drive_plan(
                &self.plan,
                self.concurrency,
                load_start,
                self.duration,
                |process, payment| self.pay(process, payment, recorder),
            )
            .await;
            LoadSummary {
                planned: self.plan.len(),
                sent: driven.sent,
                ok: driven.results.iter().filter(|e| **e == Ended::Ok).count(),
            }
        })
    }

    fn settle<'a>(
        &'a self,
        _stack: &'a Stack,
        _recorder: &'a Recorder,
        _progress: &'a (dyn Fn(&str) + Sync),
    ) -> BoxFuture<'a, Settlement> {
        // A payment ends when the teller answers; the description's [[settle]] (the outbox
        // drained) is awaited by the runner.
        Box::pin(async { Settlement::default() })
    }

    fn final_state<'a>(
        &'a self,
        _stack: &'a Stack,
        _facts: &'a Facts,
    ) -> BoxFuture<'a, WorkloadState> {
        Box::pin(async move {
            let ended = self.ended.lock().expect("endings").clone();
            let mut outcomes = Outcomes {
                unit: "payments".into(),
                total: ended.len() as u64,
                ended: BTreeMap::new(),
                unfinished: Vec::new(),
            };
            for how in ended.values() {
                let name = match how {
                    Ended::Ok => "paid",
                    Ended::Refused => "refused",
                    Ended::Unknown => "answer lost",
                };
                *outcomes.ended.entry(name.to_string()).or_default() += 1;
            }
            WorkloadState {
                outcomes: Some(outcomes),
                durations: None,
            }
        })
    }
}

/// How each payment ended, by id: ok if any answer was ok, refused if every answer was a
/// refusal, unknown otherwise (no answer, or a 5xx).
fn endings(history: &History) -> BTreeMap<String, Ended> {
    let mut ended: BTreeMap<String, Ended> = BTreeMap::new();
    for (invoke, done) in history.pairs() {
        let Op::Request { operation, key, .. } = &invoke.op else {
            continue;
        };
        if operation != "pay" {
            continue;
        }
        let this = match done.event_type {
            EventType::Ok => Ended::Ok,
            EventType::Fail => Ended::Refused,
            _ => Ended::Unknown,
        };
        let entry = ended.entry(key.clone()).or_insert(this);
        *entry = match (*entry, this) {
            (Ended::Ok, _) | (_, Ended::Ok) => Ended::Ok,
            (Ended::Refused, Ended::Refused) => Ended::Refused,
            _ => Ended::Unknown,
        };
    }
    ended
}

/// The range each account's balance may be in, given the payments and how they ended: an
/// ok payment moved its amount once, a refused one nothing, an unknown one either.
fn allowed(payments: &[Payment], ended: &BTreeMap<String, Ended>) -> BTreeMap<&'static str, (i64, i64)> {
    let mut range: BTreeMap<&'static str, (i64, i64)> = ACCOUNTS
        .iter()
        .map(|a| (*a, (OPENING_BALANCE, OPENING_BALANCE)))
        .collect();
    for payment in payments {
        // A payment never sent (cut off by the duration bound) has no ending: nothing moved.
        let Some(how) = ended.get(&payment.id) else {
            continue;
        };
        for (account, delta) in [(EMPLOYER, -payment.amount), (payment.to, payment.amount)] {
            let (lo, hi) = range.get_mut(account).expect("a known account");
            match how {
                Ended::Ok => {
                    *lo += delta;
                    *hi += delta;
                }
                Ended::Refused => {}
                Ended::Unknown => {
                    *lo += delta.min(0);
                    *hi += delta.max(0);
                }
            }
        }
    }
    range
}

/// The verdict on balances read after the run.
fn judge(payments: &[Payment], history: &History, balances: &BTreeMap<String, i64>) -> Verdict {
    let ended = endings(history);
    let mut counterexamples = Vec::new();
    for (account, (lo, hi)) in allowed(payments, &ended) {
        let Some(balance) = balances.get(account) else {
            counterexamples.push(Counterexample::new(
                format!("{account}: no balance read"),
                vec![account.to_string()],
                vec![],
            ));
            continue;
        };
        if *balance < lo || *balance > hi {
            counterexamples.push(Counterexample::new(
                format!("{account} holds {balance}; the payments' answers allow {lo}..={hi}"),
                vec![account.to_string()],
                vec![],
            ));
        }
    }
    let counted = |e: Ended| ended.values().filter(|x| **x == e).count();
    Verdict::new(
        "payroll-adds-up",
        format!(
            "{} balances against {} payments ({} ok, {} refused, {} unknown)",
            ACCOUNTS.len(),
            ended.len(),
            counted(Ended::Ok),
            counted(Ended::Refused),
            counted(Ended::Unknown)
        ),
        counterexamples,
    )
}

struct PayrollAddsUp;

impl Checker for PayrollAddsUp {
    fn name(&self) -> String {
        "payroll-adds-up".into()
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let Some(payroll) = run.facts.get::<Payroll>() else {
                return Verdict::cannot_judge(
                    "payroll-adds-up",
                    "the run has no payroll: its workload is not payday".into(),
                );
            };
            let payments = payroll.0.lock().expect("payroll").clone();
            // Balances from the ledger itself, not through a proxy.
            let ledger = match run.stack.service_url("ledger") {
                Ok(url) => url,
                Err(e) => return Verdict::cannot_judge("payroll-adds-up", e.to_string()),
            };
            let http = reqwest::Client::new();
            let mut balances = BTreeMap::new();
            for account in ACCOUNTS {
                let read = async {
                    let answer = http
                        .get(format!("{ledger}/accounts/{account}"))
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await?
                        .error_for_status()?;
                    answer.json::<Value>().await
                };
                match read.await {
                    Ok(body) => {
                        if let Some(balance) = body["balance"].as_i64() {
                            balances.insert(account.to_string(), balance);
                        }
                    }
                    Err(e) => {
                        return Verdict::cannot_judge(
                            "payroll-adds-up",
                            format!("reading {account}'s balance: {e}"),
                        )
                    }
                }
            }
            judge(&payments, run.history, &balances)
        })
    }
}

/// The extension this repository registers with its system.
struct PaydayExtension;

impl Extension for PaydayExtension {
    fn name(&self) -> &str {
        "payday"
    }
    fn checkers(&self) -> Vec<Arc<dyn Checker>> {
        vec![Arc::new(PayrollAddsUp)]
    }
    fn workload(&self) -> Option<Arc<dyn WorkloadKind>> {
        Some(Arc::new(PaydayKind))
    }
}

#[tokio::test]
async fn payday_through_a_slow_ledger_is_explained_by_the_tellers_answers(
) -> Result<(), faultline::Error> {
    let system = faultline::System::load("../bank/faultline.toml")?.with_extension(Arc::new(PaydayExtension));
    let mut bank = system
        .start()
        .await?
        .reports_in(std::env::temp_dir().join("bank-chaos-tests-reports"));
    let run = bank
        .run(&faultline::Scenario::load("tests/payday-through-a-slow-ledger.toml")?)
        .await?;
    run.assert_held();
    // The Rust checker judged, against payments the Rust workload sent.
    let verdict = run
        .outcome()
        .verdicts
        .iter()
        .find(|v| v.checker == "payroll-adds-up")
        .expect("judged");
    assert!(
        verdict.summary.contains(" payments (") && !verdict.summary.contains("(0 ok"),
        "payments went through and were judged: {}",
        verdict.summary
    );
    assert!(run.outcome().load.ok > 0, "{:?}", run.outcome().load);
    bank.stop().await
}

/// A history of one payment, answered as `answer` says.
fn one_payment(payment: &Payment, answer: impl FnOnce(faultline::extend::Pending)) -> History {
    let recorder = Recorder::new();
    answer(recorder.invoke(
        Process::Client(0),
        Op::Request {
            operation: "pay".into(),
            method: "POST".into(),
            path: "/transfers".into(),
            key: payment.id.clone(),
            kind: None,
        },
    ));
    recorder.finish()
}

/// Balances at opening, then `payment` applied `times` times.
fn balances_after(payment: &Payment, times: i64) -> BTreeMap<String, i64> {
    let mut balances: BTreeMap<String, i64> =
        ACCOUNTS.iter().map(|a| (a.to_string(), OPENING_BALANCE)).collect();
    *balances.get_mut(EMPLOYER).unwrap() -= times * payment.amount;
    *balances.get_mut(payment.to).unwrap() += times * payment.amount;
    balances
}

/// The checker catches a payment applied twice: a confirmed payment, and both accounts moved
/// by twice its amount.
#[test]
fn a_payment_applied_twice_is_outside_what_the_answers_allow() {
    let payments = plan(1, 1, Duration::from_secs(1), "t");
    let history = one_payment(&payments[0], |p| {
        p.ok(json!({ "status": 201 }));
    });
    assert!(judge(&payments, &history, &balances_after(&payments[0], 1)).ok);
    let verdict = judge(&payments, &history, &balances_after(&payments[0], 2));
    assert!(!verdict.ok);
    assert_eq!(verdict.counterexamples.len(), 2, "{verdict:?}");
    assert!(
        verdict.counterexamples[0].description.contains("allow"),
        "{verdict:?}"
    );
}

/// A payment whose answer was lost may or may not have moved money: both balances pass; twice
/// does not.
#[test]
fn a_payment_with_a_lost_answer_allows_either_balance() {
    let payments = plan(1, 2, Duration::from_secs(1), "t");
    let history = one_payment(&payments[0], |p| {
        p.info(json!({ "error": "timed out" }));
    });
    assert!(judge(&payments, &history, &balances_after(&payments[0], 0)).ok, "not applied");
    assert!(judge(&payments, &history, &balances_after(&payments[0], 1)).ok, "applied once");
    assert!(!judge(&payments, &history, &balances_after(&payments[0], 2)).ok, "applied twice");
}
