//! A vocabulary for the parser's tests: a system with named invariants and a workload of its
//! own (orders with a mix), shaped like the reference system's, so both extension points are
//! exercised by the scenario tests.

use super::fields::Fields;
use super::{ScenarioError, Vocabulary, WorkloadReader};
use crate::topology::Topology;

pub(super) struct ShopOrders;

pub(super) const SHOP_INVARIANTS: [&str; 3] =
    ["sagas-terminate", "charged-at-most-once", "bulkhead-isolation"];

impl WorkloadReader for ShopOrders {
    fn name(&self) -> &str {
        "shop-orders"
    }

    fn read(&self, fields: &mut Fields<'_>) -> Result<(), ScenarioError> {
        fields
            .integer_in("orders", 1..=1_000_000)?
            .ok_or_else(|| fields.error("orders", "required: how many orders to place"))?;
        if let Some(mut mix) = fields.table("mix")? {
            let good = mix.number_in("good", 0.0..=1e6)?.unwrap_or(0.0);
            let declining = mix.number_in("declining", 0.0..=1e6)?.unwrap_or(0.0);
            let out_of_stock = mix.number_in("out_of_stock", 0.0..=1e6)?.unwrap_or(0.0);
            if good + declining + out_of_stock <= 0.0 {
                return Err(fields.error("mix", "expected a weight above 0"));
            }
            mix.finish()?;
        }
        Ok(())
    }

    fn default_invariants(&self) -> Vec<String> {
        SHOP_INVARIANTS.iter().map(|s| s.to_string()).collect()
    }
}

/// `topology` with the shop's invariants and order workload.
pub(super) fn vocab(topology: &Topology) -> Vocabulary<'_> {
    static INVARIANTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    Vocabulary {
        topology,
        invariants: INVARIANTS.get_or_init(|| SHOP_INVARIANTS.iter().map(|s| s.to_string()).collect()),
        workload: Some(&ShopOrders),
        described: None,
        steady_state: &[],
    }
}
