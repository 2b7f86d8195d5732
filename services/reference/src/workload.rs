//! The reference system's workload: which orders clients place, and placing them through the
//! gateway while every call is written to the run's
//! [`History`](faultline_harness::history::History). [`Orders`] reads its fields of a
//! scenario's `[workload]` (`orders`, `mix`) and [`OrderWorkload`] is the
//! [`Workload`] a run drives.
//!
//! Planning and executing are separate so that a run can be reproduced: [`plan`] is a pure
//! function of the scenario's `[workload]` and a seed — the same seed gives the same orders, keys,
//! duplicates, retries and send times — and [`drive`] only carries the plan out.
//!
//! ```
//! use faultline_chaos::scenario::Scenario;
//! use faultline_reference::workload::plan;
//! let system = faultline_reference::system();
//! let scenario = Scenario::parse("s.toml", system.vocabulary(), r#"
//!     name = "s"
//!     description = "d"
//!     [workload]
//!     orders = 10
//!     duration = "5s"
//!     duplicate_rate = 0.5
//! "#).unwrap();
//! assert_eq!(plan(&scenario, 7), plan(&scenario, 7));
//! assert_eq!(plan(&scenario, 7).len(), 10);
//! ```
//!
//! # How an order is sent
//!
//! Each of `concurrency` clients takes the next planned order, waits for its planned send time
//! (orders are spread evenly over `duration`, so faults scheduled mid-run meet traffic), and
//! POSTs it to `/api/orders` with its idempotency key. A *duplicated* order is sent a second
//! time with the same key at the same moment, by a second process (`Client(concurrency + n)`),
//! because one Jepsen process never has two operations in flight. A *retrying* client sends
//! the same request again (at most [`MAX_ATTEMPTS`] in all) after an outcome that may be
//! transient: a timeout, a transport error, a 5xx, a 409 or 429.
//!
//! Outcomes: a 2xx with an `order_id` is *ok*; a 4xx is *fail* (the request certainly did not
//! create an order of its own); a timeout, a transport error or a 5xx is *info* — the order may
//! exist, which is exactly what the checkers must account for.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use faultline_chaos::scenario::fields::Fields;
use faultline_chaos::scenario::{Probe, ProbeCheck, Scenario, ScenarioError, WorkloadReader};
use faultline_harness::checkers::{BoxFuture, Facts};
use faultline_harness::extension::WorkloadKind;
use faultline_harness::history::{Op, Process, Recorder};
use faultline_harness::report::{Durations, Outcomes, WorkloadState};
use faultline_harness::runner::{p99_verdict, RunError};
use faultline_harness::stack::Stack;
use faultline_harness::workload::{
    drive_plan, LoadSummary, Planned, Settlement, Workload, SETTLE_BOUND,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};

use crate::observed::{InitialStock, Observed};

/// The history's name for an order placement (`POST /api/orders`; its kind is the
/// workload's intent: `good`, `declining` or `out_of_stock`).
pub const PLACE_ORDER: &str = "place_order";
/// The history's name for an order read (`GET /api/orders/{id}`, keyed by the order id).
pub const READ_ORDER: &str = "read_order";

/// Relative weights of good, declining (payment refuses) and out-of-stock orders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderMix {
    /// Orders that should be confirmed.
    pub good: f64,
    /// Orders whose payment is declined (deterministically, by card).
    pub declining: f64,
    /// Orders for more than the stock holds.
    pub out_of_stock: f64,
}

/// The order workload's own fields of a scenario's `[workload]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderParams {
    /// How many orders to place in all.
    pub orders: u32,
    /// Relative weights of the kinds of order (all good when the scenario gives none).
    pub mix: OrderMix,
}

impl OrderParams {
    /// Reads `orders` and `[workload.mix]`, strictly.
    pub fn read(fields: &mut Fields<'_>) -> Result<Self, ScenarioError> {
        let orders = fields.integer_in("orders", 1..=1_000_000)?.ok_or_else(|| {
            fields.error(
                "orders",
                "required: how many orders to place, or [[workload.operations]] with requests",
            )
        })? as u32;
        let mix = match fields.table("mix")? {
            None => OrderMix {
                good: 1.0,
                declining: 0.0,
                out_of_stock: 0.0,
            },
            Some(mut mix_fields) => {
                let mix = OrderMix {
                    good: mix_fields.number_in("good", 0.0..=1e6)?.unwrap_or(0.0),
                    declining: mix_fields.number_in("declining", 0.0..=1e6)?.unwrap_or(0.0),
                    out_of_stock: mix_fields
                        .number_in("out_of_stock", 0.0..=1e6)?
                        .unwrap_or(0.0),
                };
                if mix.good + mix.declining + mix.out_of_stock <= 0.0 {
                    return Err(fields.error(
                        "mix",
                        "expected at least one weight (good, declining, out_of_stock) above 0",
                    ));
                }
                mix_fields.finish()?;
                mix
            }
        };
        Ok(Self { orders, mix })
    }

    /// The params of a scenario validated against the reference system.
    pub fn of(scenario: &Scenario) -> Self {
        let mut fields = Fields::new("(scenario)", "workload", scenario.workload.params.clone());
        Self::read(&mut fields).expect("the scenario's workload was validated when it was read")
    }
}

/// The order workload as a kind the reference extension registers.
pub struct Orders;

impl WorkloadReader for Orders {
    fn name(&self) -> &str {
        "orders"
    }

    fn read(&self, fields: &mut Fields<'_>) -> Result<(), ScenarioError> {
        OrderParams::read(fields).map(|_| ())
    }

    fn default_invariants(&self) -> Vec<String> {
        crate::checkers::all().iter().map(|c| c.name()).collect()
    }
}

impl WorkloadKind for Orders {
    fn build(&self, scenario: &Scenario, seed: u64) -> Box<dyn Workload> {
        Box::new(OrderWorkload {
            plan: plan(scenario, seed),
            concurrency: scenario.workload.concurrency,
            duration: scenario.workload.duration,
            probe_orders: probe_orders(scenario),
            client: None,
            accepted: Mutex::new(BTreeSet::new()),
        })
    }
}

/// Orders the steady-state probes place, in both phases together.
fn probe_orders(scenario: &Scenario) -> u32 {
    let probes = if scenario.steady_state.is_empty() {
        default_probes()
    } else {
        scenario.steady_state.clone()
    };
    probes
        .iter()
        .map(|p| match p.check {
            ProbeCheck::Ready => 0,
            ProbeCheck::SuccessRate { sample, .. } | ProbeCheck::P99Latency { sample, .. } => {
                sample
            }
        })
        .sum::<u32>()
        * 2
}

fn default_probes() -> Vec<Probe> {
    vec![
        Probe {
            name: "ready".into(),
            check: ProbeCheck::Ready,
        },
        Probe {
            name: "orders confirm".into(),
            check: ProbeCheck::SuccessRate {
                sample: 3,
                min: 1.0,
            },
        },
    ]
}

/// One run's orders: planned from the scenario and seed, placed through the gateway with a
/// token the workload mints, settled by reading each order until it leaves PENDING.
pub struct OrderWorkload {
    plan: Vec<PlannedOrder>,
    concurrency: u32,
    duration: Duration,
    probe_orders: u32,
    client: Option<GatewayClient>,
    /// Orders the load phase saw accepted, for the settle phase.
    accepted: Mutex<BTreeSet<String>>,
}

impl OrderWorkload {
    fn client(&self) -> &GatewayClient {
        self.client
            .as_ref()
            .expect("the runner prepares a workload before it probes or drives it")
    }
}

impl Workload for OrderWorkload {
    fn describe(&self) -> String {
        format!("{} orders", self.plan.len())
    }

    fn plan(&self) -> Value {
        json!({ "orders": self.plan })
    }

    fn prepare<'a>(
        &'a mut self,
        stack: &'a Stack,
        facts: &'a Facts,
        _recorder: &'a Recorder,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let stock = seed_stock(
                stack,
                stock_needed(&self.plan, i64::from(self.probe_orders) + 10),
            )
            .await?;
            facts.insert(InitialStock(stock));
            let token = faultline_gateway::mint_token(
                crate::JWT_SECRET,
                "faultline-chaos",
                &["orders:write", "orders:read"],
                "faultline",
                Duration::from_secs(3600),
            );
            self.client = Some(
                GatewayClient::new(stack.service_url("gateway")?, token).map_err(|e| {
                    RunError::Setup {
                        action: "building the workload's client".into(),
                        message: e.to_string(),
                    }
                })?,
            );
            Ok(())
        })
    }

    fn default_probes(&self) -> Vec<Probe> {
        default_probes()
    }

    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        index: usize,
        phase: &'a str,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, (bool, String)> {
        Box::pin(async move {
            let client = self.client();
            match probe.check {
                ProbeCheck::Ready => (true, "judged by the runner".into()),
                ProbeCheck::SuccessRate { sample, min } => {
                    let placed = place_probe_orders(client, recorder, phase, index, sample).await;
                    let settlement = await_settled(
                        client,
                        placed.iter().filter_map(|(id, _)| id.clone()),
                        Duration::from_secs(30),
                        recorder,
                    )
                    .await;
                    let confirmed = settlement
                        .settled
                        .values()
                        .filter(|s| *s == "CONFIRMED")
                        .count();
                    let rate = confirmed as f64 / f64::from(sample.max(1));
                    (
                        rate >= min,
                        format!(
                            "{confirmed} of {sample} good orders confirmed ({:.0}%, at least {:.0}% expected)",
                            rate * 100.0,
                            min * 100.0
                        ),
                    )
                }
                ProbeCheck::P99Latency { sample, max } => {
                    let placed = place_probe_orders(client, recorder, phase, index, sample).await;
                    let latencies: Vec<Duration> = placed
                        .iter()
                        .filter(|(id, _)| id.is_some())
                        .map(|(_, d)| *d)
                        .collect();
                    p99_verdict(&latencies, sample, max, "orders")
                }
            }
        })
    }

    fn drive<'a>(
        &'a self,
        load_start: tokio::time::Instant,
        recorder: &'a Recorder,
    ) -> BoxFuture<'a, LoadSummary> {
        Box::pin(async move {
            let load = drive(
                &self.plan,
                self.client(),
                self.concurrency,
                load_start,
                self.duration,
                recorder,
            )
            .await;
            *self.accepted.lock().expect("accepted lock") = load.accepted.clone();
            LoadSummary {
                planned: load.planned,
                sent: load.sent,
                ok: load.accepted.len(),
            }
        })
    }

    fn settle<'a>(
        &'a self,
        stack: &'a Stack,
        recorder: &'a Recorder,
        progress: &'a (dyn Fn(&str) + Sync),
    ) -> BoxFuture<'a, Settlement> {
        Box::pin(async move {
            // Accepted orders, and orders whose placement had an unknown outcome but that
            // exist: order's database knows them as PENDING.
            let mut to_settle = self.accepted.lock().expect("accepted lock").clone();
            match pending_orders(stack).await {
                Ok(pending) => to_settle.extend(pending),
                Err(error) => progress(&format!(
                    "could not list PENDING orders ({error}); waiting for the accepted ones only"
                )),
            }
            progress(&format!(
                "healed; waiting up to {}s for {} orders to settle",
                SETTLE_BOUND.as_secs(),
                to_settle.len()
            ));
            let settlement = await_settled(self.client(), to_settle, SETTLE_BOUND, recorder).await;
            progress(&format!(
                "settled: {} ({} still pending) in {:.1}s",
                settlement.settled.len(),
                settlement.unsettled.len(),
                settlement.took_ms as f64 / 1000.0
            ));
            // Events still in the outbox, or on their way to notification, are not lost: wait
            // (bounded) for the system to catch up before it is judged.
            if let Err(error) = Observed::await_quiescent(stack, Duration::from_secs(30)).await {
                progress(&format!("could not wait for the outbox to drain: {error}"));
            }
            Settlement {
                took_ms: settlement.took_ms,
                settled: settlement.settled.len(),
                unsettled: settlement.unsettled,
            }
        })
    }

    fn final_state<'a>(
        &'a self,
        stack: &'a Stack,
        facts: &'a Facts,
    ) -> BoxFuture<'a, WorkloadState> {
        Box::pin(async move {
            match Observed::of_stack(stack, facts).await {
                Ok(observed) => state_of(&observed),
                Err(_) => WorkloadState::default(),
            }
        })
    }
}

/// The report's view of the orders' outcomes: by final status (a cancelled one with its
/// reason), and the ids of those still PENDING; saga durations as `saga`.
pub fn state_of(observed: &Observed) -> WorkloadState {
    let mut outcomes = Outcomes {
        unit: "orders".into(),
        total: observed.orders.len() as u64,
        ended: BTreeMap::new(),
        unfinished: Vec::new(),
    };
    for order in observed.orders.values() {
        let ended = match order.status.as_str() {
            "CONFIRMED" => "CONFIRMED".to_string(),
            "CANCELLED" => format!(
                "CANCELLED: {}",
                order.reason.as_deref().unwrap_or("unknown")
            ),
            _ => {
                outcomes.unfinished.push(order.order_id.clone());
                continue;
            }
        };
        *outcomes.ended.entry(ended).or_default() += 1;
    }
    WorkloadState {
        outcomes: Some(outcomes),
        durations: Some(Durations {
            name: "saga".into(),
            ms: observed
                .orders
                .values()
                .filter_map(|o| o.saga_duration_ms)
                .collect(),
        }),
    }
}

/// Ids of the orders order's database holds as PENDING (read directly, not through a proxy).
async fn pending_orders(stack: &Stack) -> Result<Vec<String>, String> {
    use sqlx::Connection;
    let url = stack.database_url("order").map_err(|e| e.to_string())?;
    let mut connection = sqlx::PgConnection::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let ids = sqlx::query_scalar::<_, String>(
        "SELECT order_id::text FROM orders WHERE status = 'PENDING'",
    )
    .fetch_all(&mut connection)
    .await
    .map_err(|e| e.to_string());
    let _ = connection.close().await;
    ids
}

/// Sets the workload's stock; what it set, for the conservation checker.
async fn seed_stock(stack: &Stack, stocked: i64) -> Result<BTreeMap<String, i64>, RunError> {
    let inventory = stack.service_url("inventory")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| RunError::Setup {
            action: "building an HTTP client".into(),
            message: e.to_string(),
        })?;
    let stock = BTreeMap::from([
        (STOCKED_SKU.to_string(), stocked),
        (EMPTY_SKU.to_string(), 0),
    ]);
    for (sku, on_hand) in &stock {
        let url = format!("{inventory}/admin/stock/{sku}");
        http.put(&url)
            .json(&json!({"on_hand": on_hand}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| RunError::Setup {
                action: format!("seeding stock: PUT {url}"),
                message: format!("{e}; inventory's test mode must be on"),
            })?;
    }
    Ok(stock)
}

/// Places `sample` good probe orders, 4 at a time: each one's id when accepted, and its
/// placement latency.
async fn place_probe_orders(
    client: &GatewayClient,
    recorder: &Recorder,
    phase: &str,
    probe: usize,
    sample: u32,
) -> Vec<(Option<String>, Duration)> {
    use futures_util::StreamExt;
    let orders = (0..sample).map(|i| PlannedOrder {
        number: i,
        send_at: Duration::ZERO,
        kind: OrderKind::Good,
        idempotency_key: format!("probe-{phase}-{probe}-{i}"),
        customer_id: "probe".into(),
        sku: STOCKED_SKU.into(),
        quantity: 1,
        amount_cents: 100,
        card: ACCEPTED_CARD.into(),
        duplicated: false,
        retries: false,
    });
    // Boxed, so the future of a run that awaits this stays provably Send.
    let placements: Vec<BoxFuture<'_, (Option<String>, Duration)>> = orders
        .map(|order| {
            Box::pin(async move {
                let clock = Instant::now();
                let id = match client.place(Process::Probe, &order, recorder).await {
                    Outcome::Ok(id) => Some(id),
                    _ => None,
                };
                (id, clock.elapsed())
            }) as BoxFuture<'_, _>
        })
        .collect();
    futures_util::stream::iter(placements)
        .buffer_unordered(4)
        .collect()
        .await
}

/// The SKU good and declining orders buy; seeded with enough stock for every order.
pub const STOCKED_SKU: &str = "sku-chaos-stocked";
/// The SKU out-of-stock orders buy; seeded with 0.
pub const EMPTY_SKU: &str = "sku-chaos-empty";
/// A card payment always accepts.
pub const ACCEPTED_CARD: &str = "4242424242424242";
/// A card payment always declines.
pub const DECLINED_CARD: &str = "4000000000000002";
/// Attempts per order (the first send plus retries) for a client that retries.
pub const MAX_ATTEMPTS: u32 = 3;
/// How long a client waits for an answer before it counts the outcome as unknown.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What an order is meant to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Stock and payment both succeed: it should end CONFIRMED.
    Good,
    /// Payment declines (by card): it should be compensated and end CANCELLED.
    Declining,
    /// No stock: it should end CANCELLED without a charge.
    OutOfStock,
}

impl OrderKind {
    /// The name the history and reports use (`good`, `declining`, `out_of_stock`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Declining => "declining",
            Self::OutOfStock => "out_of_stock",
        }
    }
}

/// One order the workload will place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedOrder {
    /// Position in the plan.
    pub number: u32,
    /// When it is sent, from the start of the load phase.
    pub send_at: Duration,
    pub kind: OrderKind,
    pub idempotency_key: String,
    pub customer_id: String,
    pub sku: String,
    pub quantity: i32,
    pub amount_cents: i64,
    pub card: String,
    /// Sent a second time with the same key, at the same moment.
    pub duplicated: bool,
    /// The client sends it again (same key) after a failure or timeout.
    pub retries: bool,
}

impl PlannedOrder {
    /// The `POST /api/orders` body.
    pub fn body(&self) -> Value {
        json!({
            "customer_id": self.customer_id,
            "sku": self.sku,
            "quantity": self.quantity,
            "amount_cents": self.amount_cents,
            "card": self.card,
        })
    }

    /// The history's operation for placing this order.
    pub fn op(&self) -> Op {
        Op::Request {
            operation: PLACE_ORDER.into(),
            method: "POST".into(),
            path: "/api/orders".into(),
            key: self.idempotency_key.clone(),
            kind: Some(self.kind.name().to_string()),
        }
    }
}

/// The orders `scenario.workload` describes, for `seed`. Pure: the same scenario and seed give
/// the same plan.
pub fn plan(scenario: &Scenario, seed: u64) -> Vec<PlannedOrder> {
    let workload = &scenario.workload;
    let params = OrderParams::of(scenario);
    let mut rng = StdRng::seed_from_u64(seed);
    let mix = params.mix;
    let total_weight = mix.good + mix.declining + mix.out_of_stock;
    let spacing = workload.duration.as_secs_f64() / f64::from(params.orders.max(1));
    (0..params.orders)
        .map(|number| {
            let pick = rng.random::<f64>() * total_weight;
            let kind = if pick < mix.good {
                OrderKind::Good
            } else if pick < mix.good + mix.declining {
                OrderKind::Declining
            } else {
                OrderKind::OutOfStock
            };
            let (sku, card) = match kind {
                OrderKind::Good => (STOCKED_SKU, ACCEPTED_CARD),
                OrderKind::Declining => (STOCKED_SKU, DECLINED_CARD),
                OrderKind::OutOfStock => (EMPTY_SKU, ACCEPTED_CARD),
            };
            let nonce: u32 = rng.random();
            PlannedOrder {
                number,
                // Evenly spread over a bit less than the duration, so the last order is sent
                // before the load phase's bound.
                send_at: Duration::from_secs_f64(spacing * f64::from(number) * 0.9),
                kind,
                idempotency_key: format!("{}-{seed}-{number:05}-{nonce:08x}", scenario.name),
                customer_id: format!("customer-{}", rng.random_range(1..=20u32)),
                sku: sku.to_string(),
                quantity: rng.random_range(1..=3),
                amount_cents: rng.random_range(100..=10_000),
                card: card.to_string(),
                duplicated: rng.random::<f64>() < workload.duplicate_rate,
                retries: rng.random::<f64>() < workload.retry_rate,
            }
        })
        .collect()
}

/// Stock to seed before the run so good orders never run out: every unit the plan (counting
/// duplicates and retries as separate buyers, to be safe) could take, plus `extra` for probes.
pub fn stock_needed(plan: &[PlannedOrder], extra: i64) -> i64 {
    let per_order = i64::from(MAX_ATTEMPTS) * 2;
    plan.iter()
        .filter(|o| o.sku == STOCKED_SKU)
        .map(|o| i64::from(o.quantity) * per_order)
        .sum::<i64>()
        + extra
}

/// Why the workload client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the workload's HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// The gateway as a client sees it: a bearer token and a timeout.
#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    gateway: String,
    token: String,
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted: the order's id.
    Ok(String),
    /// Certainly not taken effect (4xx); `retryable` for 409 and 429.
    Fail { retryable: bool },
    /// Unknown: timeout, transport error, 5xx.
    Info,
}

impl GatewayClient {
    pub fn new(
        gateway_url: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build()?,
            gateway: gateway_url.into(),
            token: token.into(),
        })
    }

    /// POSTs `order` once, recorded as a [`PLACE_ORDER`] request of `process`.
    pub async fn place(
        &self,
        process: Process,
        order: &PlannedOrder,
        recorder: &Recorder,
    ) -> Outcome {
        let pending = recorder.invoke(process, order.op());
        let sent = Instant::now();
        let response = self
            .http
            .post(format!("{}/api/orders", self.gateway))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", &order.idempotency_key)
            .json(&order.body())
            .send()
            .await;
        let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                pending.info(
                    json!({"error": kind, "message": error.to_string(), "latency_ms": latency_ms}),
                );
                return Outcome::Info;
            }
        };
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(error) => {
                // Headers arrived but the body did not: the order may exist.
                pending.info(json!({"status": status.as_u16(), "error": "body", "message": error.to_string(), "latency_ms": latency_ms}));
                return Outcome::Info;
            }
        };
        if status.is_success() {
            if let Some(order_id) = body["order_id"].as_str() {
                pending.ok(json!({"status": status.as_u16(), "order_id": order_id, "order_status": body["status"], "latency_ms": latency_ms}));
                return Outcome::Ok(order_id.to_string());
            }
            pending.info(json!({"status": status.as_u16(), "error": "no order_id in the answer", "body": body, "latency_ms": latency_ms}));
            return Outcome::Info;
        }
        let value = json!({"status": status.as_u16(), "error": body["error"], "message": body["message"], "latency_ms": latency_ms});
        if status.is_client_error() {
            pending.fail(value);
            Outcome::Fail {
                retryable: matches!(status.as_u16(), 409 | 429),
            }
        } else {
            pending.info(value);
            Outcome::Info
        }
    }

    /// `GET /api/orders/{order_id}`, recorded as a [`READ_ORDER`] request keyed by the order;
    /// the order's status when read.
    pub async fn read_status(
        &self,
        process: Process,
        order_id: &str,
        recorder: &Recorder,
    ) -> Option<String> {
        let pending = recorder.invoke(
            process,
            Op::Request {
                operation: READ_ORDER.into(),
                method: "GET".into(),
                path: format!("/api/orders/{order_id}"),
                key: order_id.to_string(),
                kind: None,
            },
        );
        let response = self
            .http
            .get(format!("{}/api/orders/{order_id}", self.gateway))
            .bearer_auth(&self.token)
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status();
                match response.json::<Value>().await {
                    Ok(body) if status.is_success() => {
                        let order_status = body["status"].as_str().map(str::to_string);
                        pending
                            .ok(json!({"status": status.as_u16(), "order_status": body["status"]}));
                        order_status
                    }
                    Ok(body) if status.is_client_error() => {
                        pending.fail(json!({"status": status.as_u16(), "error": body["error"]}));
                        None
                    }
                    Ok(body) => {
                        pending.info(json!({"status": status.as_u16(), "error": body["error"]}));
                        None
                    }
                    Err(error) => {
                        pending
                            .info(json!({"status": status.as_u16(), "error": error.to_string()}));
                        None
                    }
                }
            }
            Err(error) => {
                pending.info(json!({"error": error.to_string()}));
                None
            }
        }
    }

    /// Places `order` as a client would: retried (same key) when planned and the outcome may
    /// be transient; `Some(order_id)` when any attempt was accepted.
    async fn place_with_retries(
        &self,
        process: Process,
        order: &PlannedOrder,
        recorder: &Recorder,
    ) -> Option<String> {
        let attempts = if order.retries { MAX_ATTEMPTS } else { 1 };
        for attempt in 1..=attempts {
            match self.place(process, order, recorder).await {
                Outcome::Ok(order_id) => return Some(order_id),
                Outcome::Fail { retryable: false } => return None,
                Outcome::Fail { retryable: true } | Outcome::Info => {
                    if attempt < attempts {
                        // A client's back-off, not a wait for a condition.
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                    }
                }
            }
        }
        None
    }
}

/// What the load phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrderLoad {
    /// Orders planned.
    pub planned: usize,
    /// Orders sent at least once (the rest were cut off by the duration bound).
    pub sent: usize,
    /// Distinct order ids the gateway accepted.
    pub accepted: BTreeSet<String>,
}

/// Carries `plan` out: `concurrency` clients take planned orders in order, each sent at its
/// planned time after `load_start`; no new order is sent once `duration` has passed.
pub async fn drive(
    plan: &[PlannedOrder],
    client: &GatewayClient,
    concurrency: u32,
    load_start: tokio::time::Instant,
    duration: Duration,
    recorder: &Recorder,
) -> OrderLoad {
    let driven = drive_plan(plan, concurrency, load_start, duration, |process, order| {
        client.place_with_retries(process, order, recorder)
    })
    .await;
    OrderLoad {
        planned: plan.len(),
        sent: driven.sent,
        accepted: driven.results.into_iter().flatten().collect(),
    }
}

impl Planned for PlannedOrder {
    fn send_at(&self) -> Duration {
        self.send_at
    }
    fn duplicated(&self) -> bool {
        self.duplicated
    }
}

/// Where the accepted orders stand after [`await_settled`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrderSettlement {
    pub took_ms: u64,
    /// Order id → its last read status (CONFIRMED, CANCELLED).
    pub settled: std::collections::BTreeMap<String, String>,
    /// Orders still PENDING (or unreadable) when the bound passed.
    pub unsettled: Vec<String>,
}

/// Reads each order until it has left PENDING, or `bound` passes; every read is recorded as a
/// [`READ_ORDER`] request of [`Process::Probe`].
pub async fn await_settled(
    client: &GatewayClient,
    order_ids: impl IntoIterator<Item = String>,
    bound: Duration,
    recorder: &Recorder,
) -> OrderSettlement {
    let clock = Instant::now();
    let mut waiting: Vec<String> = order_ids.into_iter().collect();
    let mut settled = std::collections::BTreeMap::new();
    // There is no notification to await; the orders are read in rounds.
    let mut rounds = tokio::time::interval(Duration::from_millis(250));
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !waiting.is_empty() && clock.elapsed() < bound {
        rounds.tick().await;
        // Boxed, so the future of a run that awaits this stays provably Send.
        let reads: Vec<BoxFuture<'_, (String, Option<String>)>> = waiting
            .iter()
            .map(|id| {
                Box::pin(async move {
                    (
                        id.clone(),
                        client.read_status(Process::Probe, id, recorder).await,
                    )
                }) as BoxFuture<'_, _>
            })
            .collect();
        let results = join_limited(reads, 8).await;
        waiting.clear();
        for (id, status) in results {
            match status.as_deref() {
                Some(done @ ("CONFIRMED" | "CANCELLED")) => {
                    settled.insert(id, done.to_string());
                }
                _ => waiting.push(id),
            }
        }
    }
    OrderSettlement {
        took_ms: clock.elapsed().as_millis() as u64,
        settled,
        unsettled: waiting,
    }
}

/// Runs futures with at most `limit` at once, keeping their order.
async fn join_limited<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
    limit: usize,
) -> Vec<F::Output> {
    use futures_util::StreamExt;
    futures_util::stream::iter(futures)
        .buffered(limit)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(orders: u32) -> Scenario {
        let system = crate::system();
        Scenario::parse(
            "test.toml",
            system.vocabulary(),
            &format!(
                r#"
                name = "workload-test"
                description = "d"
                [workload]
                orders = {orders}
                concurrency = 4
                duration = "20s"
                duplicate_rate = 0.3
                retry_rate = 0.5
                [workload.mix]
                good = 6
                declining = 2
                out_of_stock = 2
                "#
            ),
        )
        .unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let scenario = scenario(200);
        assert_eq!(plan(&scenario, 42), plan(&scenario, 42));
    }

    #[test]
    fn a_different_seed_gives_a_different_plan() {
        let scenario = scenario(200);
        assert_ne!(plan(&scenario, 42), plan(&scenario, 43));
    }

    #[test]
    fn the_plan_follows_the_mix_and_rates() {
        let orders = plan(&scenario(2000), 1);
        let share = |f: &dyn Fn(&PlannedOrder) -> bool| {
            orders.iter().filter(|o| f(o)).count() as f64 / 2000.0
        };
        assert!((share(&|o| o.kind == OrderKind::Good) - 0.6).abs() < 0.05);
        assert!((share(&|o| o.kind == OrderKind::Declining) - 0.2).abs() < 0.05);
        assert!((share(&|o| o.duplicated) - 0.3).abs() < 0.05);
        assert!((share(&|o| o.retries) - 0.5).abs() < 0.05);
        assert!(orders.iter().all(|o| match o.kind {
            OrderKind::Good => o.card == ACCEPTED_CARD && o.sku == STOCKED_SKU,
            OrderKind::Declining => o.card == DECLINED_CARD && o.sku == STOCKED_SKU,
            OrderKind::OutOfStock => o.sku == EMPTY_SKU,
        }));
    }

    #[test]
    fn keys_are_unique_and_send_times_stay_inside_the_duration() {
        let orders = plan(&scenario(500), 9);
        let keys: BTreeSet<_> = orders.iter().map(|o| &o.idempotency_key).collect();
        assert_eq!(keys.len(), 500);
        assert!(orders.windows(2).all(|w| w[0].send_at <= w[1].send_at));
        assert!(orders.iter().all(|o| o.send_at < Duration::from_secs(20)));
    }
}
