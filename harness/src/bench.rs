//! Benchmarks of the harness itself, run by `faultline bench`. They measure; nothing asserts a
//! duration. Numbers go to stdout as a table and as JSON.
//!
//! `faultline bench infra` starts and tears down the whole stack `iterations` times and reports,
//! per phase, the minimum, median and maximum: each container from creation to its readiness
//! condition (Toxiproxy API answers, Postgres `SELECT 1`, Kafka metadata through a proxy), the
//! whole stack to ready (links included), and teardown (every container and the network gone).

use std::time::Duration;

use serde::Serialize;

use crate::infra::{Infra, InfraConfig, InfraError};

/// Clients the benchmark stack is started with: one per reference service.
pub const REFERENCE_CLIENTS: [&str; 5] =
    ["gateway", "order", "payment", "inventory", "notification"];

/// Minimum, median and maximum of one phase, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Phase {
    pub name: String,
    pub samples: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub max_ms: f64,
}

impl Phase {
    fn from_samples(name: &str, samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let median = if ms.len() % 2 == 1 {
            ms[ms.len() / 2]
        } else {
            (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
        };
        Some(Self {
            name: name.to_string(),
            samples: ms.len(),
            min_ms: round(ms[0]),
            median_ms: round(median),
            max_ms: round(ms[ms.len() - 1]),
        })
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// The result of `faultline bench infra`.
#[derive(Debug, Clone, Serialize)]
pub struct InfraBench {
    pub iterations: usize,
    pub clients: Vec<String>,
    pub images: crate::infra::Images,
    pub phases: Vec<Phase>,
}

impl InfraBench {
    /// A plain table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<22} {:>8} {:>11} {:>11} {:>11}\n",
            "phase", "samples", "min ms", "median ms", "max ms"
        );
        for p in &self.phases {
            out.push_str(&format!(
                "{:<22} {:>8} {:>11.1} {:>11.1} {:>11.1}\n",
                p.name, p.samples, p.min_ms, p.median_ms, p.max_ms
            ));
        }
        out
    }
}

/// Starts and tears down the full stack `iterations` times (sequentially) and summarises.
pub async fn infra(iterations: usize) -> Result<InfraBench, InfraError> {
    let config = InfraConfig::with_clients(REFERENCE_CLIENTS);
    let mut toxiproxy = Vec::new();
    let mut postgres = Vec::new();
    let mut kafka = Vec::new();
    let mut total = Vec::new();
    let mut teardown = Vec::new();
    for _ in 0..iterations.max(1) {
        let infra = Infra::start(config.clone()).await?;
        let timings = infra.timings().clone();
        toxiproxy.push(timings.toxiproxy);
        postgres.extend(timings.postgres);
        kafka.extend(timings.kafka);
        total.push(timings.total);
        teardown.push(infra.shutdown().await?);
    }
    let phases = [
        ("toxiproxy to ready", &toxiproxy),
        ("postgres to ready", &postgres),
        ("kafka to ready", &kafka),
        ("whole stack to ready", &total),
        ("teardown", &teardown),
    ]
    .into_iter()
    .filter_map(|(name, samples)| Phase::from_samples(name, samples))
    .collect();
    Ok(InfraBench {
        iterations: iterations.max(1),
        clients: config.clients.clone(),
        images: config.images.clone(),
        phases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_summarise_min_median_max() {
        let ms = |v: u64| Duration::from_millis(v);
        let phase = Phase::from_samples("x", &[ms(30), ms(10), ms(20), ms(40)]).unwrap();
        assert_eq!(
            (phase.min_ms, phase.median_ms, phase.max_ms),
            (10.0, 25.0, 40.0)
        );
        let odd = Phase::from_samples("y", &[ms(5), ms(1), ms(3)]).unwrap();
        assert_eq!(odd.median_ms, 3.0);
        assert!(Phase::from_samples("z", &[]).is_none());
    }
}
