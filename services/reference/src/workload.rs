//! The reference system's workload is declarative: `[workload]` in `services/faultline.toml`
//! places orders through the gateway (kinds `good`, `declining`, `out_of_stock`), with a token
//! from `gateway mint-token`, idempotency keys, duplicates and retries, and stock set up
//! before the steady state; its `[[settle]]` conditions wait for the sagas and the outbox.
//! A scenario gives only how much to send:
//!
//! ```
//! use faultline_chaos::scenario::Scenario;
//! let system = faultline_reference::system();
//! let registry = faultline_reference::registry();
//! let scenario = Scenario::parse("s.toml", registry.vocabulary(&system), r#"
//!     name = "s"
//!     description = "d"
//!     [workload]
//!     requests = 10
//!     duration = "5s"
//!     [workload.weights]
//!     good = 3
//!     declining = 1
//! "#).unwrap();
//! let http = scenario.workload.http.unwrap();
//! assert_eq!(http.requests, 10);
//! assert_eq!(http.operations.len(), 2);
//! assert_eq!(http.setup.len(), 2);
//! ```
//!
//! What Rust still says about it is here: the names its checkers read in the history, and the
//! report's view of orders as order's tables hold them (used by the [synthetic
//! run](crate::synthetic)).

use std::collections::BTreeMap;

use faultline_harness::report::{Durations, Outcomes, WorkloadState};

use crate::observed::Observed;

/// The history's name for an order placement (`POST /api/orders`; its kind is the
/// workload's intent: `good`, `declining` or `out_of_stock`).
pub const PLACE_ORDER: &str = "place_order";
/// The history's name for an order read (`GET /api/orders/{id}`, keyed by the order id), when
/// a workload records reads as operations of their own.
pub const READ_ORDER: &str = "read_order";

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
