//! The reference system's extension of faultline: what its description
//! (`services/faultline.toml`, `extension = "reference"`) and its scenarios cannot say in data.
//!
//! - [`workload`]: what Rust says about its order workload, which is declarative (the
//!   description's `[workload]`): the operation name the checkers read, and the report's view
//!   of orders from order's tables.
//! - [`checkers`]: the domain invariants (sagas terminate, outcomes consistent, stock and
//!   money conserved, charged at most once, events exactly once, bulkhead isolation).
//! - [`bench`]: `faultline bench saga`.
//! - [`catalogue`]: the JSON Schemas of the events it publishes, and payloads checked against
//!   them (the notification service's consumer tests use it).
//!
//! The engine knows none of this: the `faultline` command links this crate and offers
//! [`extension`] to any description that names it.
//!
//! ```
//! let registry = faultline_reference::registry();
//! assert_eq!(registry.name(), Some("reference"));
//! assert!(registry.invariants().contains(&"sagas-terminate".to_string()));
//! assert!(registry.benchmark("saga").is_ok()); // `faultline bench saga`
//! ```

pub mod bench;
pub mod catalogue;
pub mod checkers;
pub mod observed;
pub mod synthetic;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use faultline_harness::checkers::{BoxFuture, CheckContext, Checker};
use faultline_harness::extension::{Benchmark, Extension, Registry};
use faultline_harness::report::WorkloadState;
use faultline_harness::system::System;

/// The secret the reference gateway signs tokens with (its description sets
/// `GATEWAY_JWT_SECRET` to it, and its workload's `gateway mint-token --secret`); the tests mint
/// tokens with it.
pub const JWT_SECRET: &str = "faultline-stack-secret-not-for-production";

/// The reference system's extension, named `reference`.
pub struct Reference;

impl Extension for Reference {
    fn name(&self) -> &str {
        "reference"
    }

    fn checkers(&self) -> Vec<Arc<dyn Checker>> {
        checkers::all()
    }

    /// Orders as order's tables hold them — also those whose answer the client lost — with a
    /// cancelled order's reason, and the saga durations order measured. `None` when the run
    /// placed no order (a scenario of other operations) or the tables cannot be read; the
    /// report then shows what the workload's clients were answered.
    fn final_state<'a>(
        &'a self,
        run: &'a CheckContext<'a>,
    ) -> BoxFuture<'a, Option<WorkloadState>> {
        Box::pin(async move {
            let observed = observed::Observed::of(run).await.ok()?;
            (!observed.orders.is_empty()).then(|| workload::state_of(&observed))
        })
    }

    fn benchmarks(&self) -> Vec<Arc<dyn Benchmark>> {
        vec![Arc::new(bench::Saga)]
    }
}

/// The extension, as a program links it.
pub fn extension() -> Arc<dyn Extension> {
    Arc::new(Reference)
}

/// The reference system's description file, `services/faultline.toml`.
pub fn description_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.toml")
}

/// The reference system's description (`services/faultline.toml`).
///
/// # Panics
/// When `services/faultline.toml` is not valid: it is part of this repository.
pub fn system() -> System {
    System::load(&description_file()).unwrap_or_else(|e| panic!("services/faultline.toml: {e}"))
}

/// The checkers and workload a run of the reference system takes from this extension.
pub fn registry() -> Registry {
    Registry::of(extension())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_description_gives_the_reference_topology() {
        let system = system();
        assert_eq!(
            system.start_order(),
            ["inventory", "notification", "payment", "order", "gateway"]
        );
        let topology = system.topology();
        for link in [
            "gateway->order",
            "order->payment",
            "order->inventory",
            "order->postgres",
            "order->kafka",
            "payment->postgres",
            "inventory->postgres",
            "notification->postgres",
            "notification->kafka",
        ] {
            let (client, server) = link.split_once("->").unwrap();
            assert!(topology.is_link(client, server), "{link}");
        }
        assert_eq!(topology.links().len(), 9);
        let circuits: Vec<String> = topology.service_links().map(|l| l.name()).collect();
        assert_eq!(
            circuits,
            ["order->inventory", "order->payment", "gateway->order"]
        );
    }

    #[test]
    fn the_description_names_the_extension_and_a_program_without_it_refuses_it() {
        let system = system();
        let error = Registry::linked(&system, &[]).unwrap_err();
        assert_eq!(error.field, "extension");
        assert!(
            error.reason.contains("no extension \"reference\""),
            "{error}"
        );
        let linked = Registry::linked(&system, &[extension()]).unwrap();
        assert_eq!(linked.name(), Some("reference"));
        let registry = registry();
        assert_eq!(registry.invariants(), linked.invariants());
        assert_eq!(registry.invariants().len(), 6);
        // Its workload is declarative, in the description.
        assert!(registry.workload().is_none());
        assert!(system.workload.is_some());
        let order = system.service("order").unwrap();
        assert_eq!(order.circuits.as_deref(), Some("/admin/circuits"));
    }
}
