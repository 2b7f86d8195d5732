//! Crafted histories and scenarios for checker tests, here and in extensions' crates.
//!
//! Layer 6 of the harness (test fixtures): may import any layer below it.

use std::sync::Arc;
use std::time::Duration;

use faultline_chaos::scenario::Scenario;
use faultline_chaos::topology::Topology;
use serde_json::{json, Value};

use crate::checkers::{BoxFuture, CheckContext, Checker, Verdict};
use crate::extension::{Extension, Registry};
use crate::history::{Event, EventType, History, Op, Process};

/// A shop of four services, with links between them and to Postgres.
pub fn shop() -> Topology {
    Topology::new(
        ["payment", "inventory", "order", "gateway"],
        ["postgres"],
        [
            ("gateway", "order"),
            ("order", "payment"),
            ("order", "inventory"),
            ("order", "postgres"),
        ],
    )
    .with_databases(["order"])
}

/// A checker that always holds, registered as `no-lost-writes` by [`registry`].
pub struct Holds;

impl Checker for Holds {
    fn name(&self) -> String {
        "no-lost-writes".into()
    }
    fn check<'a>(&'a self, _run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async { Verdict::new("no-lost-writes", "holds".into(), vec![]) })
    }
}

struct ShopExtension;

impl Extension for ShopExtension {
    fn name(&self) -> &str {
        "shop"
    }
    fn checkers(&self) -> Vec<Arc<dyn Checker>> {
        vec![Arc::new(Holds)]
    }
}

/// The registry of a shop extension with one named invariant, `no-lost-writes`.
pub fn registry() -> Registry {
    Registry::of(Arc::new(ShopExtension))
}

/// Fault 0 of the fixtures' scenarios: `order->payment` latency from 5 s to 15 s.
pub const PAYMENT_LATENCY: &str = r#"
[[faults]]
start = "5s"
duration = "10s"
target = "order->payment"
kind = "latency"
latency = "2s"
"#;

/// The text of a scenario `t` with this `[workload]` body, these `[[faults]]` and this
/// `[expectations]` body (none when empty).
pub fn scenario_text(workload: &str, faults: &str, expectations: &str) -> String {
    let expectations = if expectations.trim().is_empty() {
        String::new()
    } else {
        format!("[expectations]\n{expectations}")
    };
    format!("name = \"t\"\ndescription = \"d\"\n[workload]\n{workload}\n{faults}\n{expectations}")
}

/// A scenario with the given `[expectations]` body and [`PAYMENT_LATENCY`], on [`shop`] with
/// [`registry`].
pub fn scenario(expectations: &str) -> Scenario {
    scenario_with_faults(PAYMENT_LATENCY, expectations)
}

/// A scenario with these `[[faults]]` and `[expectations]` body.
pub fn scenario_with_faults(faults: &str, expectations: &str) -> Scenario {
    let text = scenario_text(
        "requests = 10\nduration = \"60s\"\n[[workload.operations]]\nname = \"place\"\n\
         service = \"gateway\"\nmethod = \"POST\"\npath = \"/orders\"",
        faults,
        expectations,
    );
    let topology = shop();
    let registry = registry();
    Scenario::parse("test.toml", registry.vocabulary_on(&topology), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Builds a history event by event; each method returns the indexes it appended.
#[derive(Default)]
pub struct HistoryBuilder {
    events: Vec<Event>,
}

impl HistoryBuilder {
    fn push(
        &mut self,
        time_ms: u64,
        process: Process,
        event_type: EventType,
        op: Op,
        value: Value,
        invoke_index: Option<usize>,
    ) -> usize {
        let index = self.events.len();
        self.events.push(Event {
            index,
            time: Duration::from_millis(time_ms),
            process,
            event_type,
            op,
            value,
            invoke_index,
        });
        index
    }

    /// An order placement (a `place_order` request of kind `kind`, as the reference system's
    /// declarative workload records them) invoked at `at_ms` and completed at `done_ms` with
    /// `outcome`; an ok completion carries the answer with `order_id`. Returns
    /// `(invoke, completion)`.
    pub fn place(
        &mut self,
        key: &str,
        kind: &str,
        at_ms: u64,
        done_ms: u64,
        outcome: EventType,
        order_id: Option<&str>,
    ) -> (usize, usize) {
        let op = placement(key, kind);
        let invoke = self.push(
            at_ms,
            Process::Client(0),
            EventType::Invoke,
            op.clone(),
            Value::Null,
            None,
        );
        let value = match (outcome, order_id) {
            (EventType::Ok, Some(id)) => {
                json!({"status": 201, "body": {"order_id": id, "status": "PENDING"}})
            }
            (_, _) => json!({"error": "timeout"}),
        };
        let done = self.push(
            done_ms,
            Process::Client(0),
            outcome,
            op,
            value,
            Some(invoke),
        );
        (invoke, done)
    }

    /// An ok placement of a good order.
    pub fn placed(&mut self, key: &str, order_id: &str, at_ms: u64) -> (usize, usize) {
        self.place(
            key,
            "good",
            at_ms,
            at_ms + 10,
            EventType::Ok,
            Some(order_id),
        )
    }

    /// A placement never completed.
    pub fn pending_place(&mut self, key: &str, at_ms: u64) -> usize {
        let op = placement(key, "good");
        self.push(
            at_ms,
            Process::Client(0),
            EventType::Invoke,
            op,
            Value::Null,
            None,
        )
    }

    /// An ok order read (a `read_order` request keyed by the order, by the probe process, as a
    /// workload that records its reads as operations does) showing `status`.
    pub fn read(
        &mut self,
        order_id: &str,
        at_ms: u64,
        done_ms: u64,
        status: &str,
    ) -> (usize, usize) {
        let op = Op::Request {
            operation: "read_order".into(),
            method: "GET".into(),
            path: format!("/api/orders/{order_id}"),
            key: order_id.into(),
            kind: None,
        };
        let invoke = self.push(
            at_ms,
            Process::Probe,
            EventType::Invoke,
            op.clone(),
            Value::Null,
            None,
        );
        let done = self.push(
            done_ms,
            Process::Probe,
            EventType::Ok,
            op,
            json!({"order_id": order_id, "status": status}),
            Some(invoke),
        );
        (invoke, done)
    }

    /// Fault `index` on `target` applied at `start_ms` and healed at `heal_ms` (if any).
    pub fn fault(
        &mut self,
        index: usize,
        target: &str,
        start_ms: u64,
        heal_ms: Option<u64>,
    ) -> Vec<usize> {
        let start = Op::StartFault {
            index,
            target: target.into(),
            kind: "latency".into(),
        };
        let i = self.push(
            start_ms,
            Process::Nemesis,
            EventType::Invoke,
            start.clone(),
            Value::Null,
            None,
        );
        let j = self.push(
            start_ms,
            Process::Nemesis,
            EventType::Ok,
            start,
            Value::Null,
            Some(i),
        );
        let mut events = vec![i, j];
        if let Some(heal_ms) = heal_ms {
            let heal = Op::HealFault {
                index,
                target: target.into(),
                kind: "latency".into(),
            };
            let k = self.push(
                heal_ms,
                Process::Nemesis,
                EventType::Invoke,
                heal.clone(),
                Value::Null,
                None,
            );
            let l = self.push(
                heal_ms,
                Process::Nemesis,
                EventType::Ok,
                heal,
                Value::Null,
                Some(k),
            );
            events.extend([k, l]);
        }
        events
    }

    pub fn build(self) -> History {
        History::from_events(self.events)
    }
}

/// An order placement as the reference system's workload records it.
fn placement(key: &str, kind: &str) -> Op {
    Op::Request {
        operation: "place_order".into(),
        method: "POST".into(),
        path: "/api/orders".into(),
        key: key.into(),
        kind: Some(kind.into()),
    }
}
