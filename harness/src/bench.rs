//! Benchmarks of the harness itself, run by `faultline bench`. They measure; nothing asserts a
//! duration. Numbers go to stdout as a table and as JSON.
//!
//! `faultline bench infra` starts and tears down the whole stack `iterations` times and reports,
//! per phase, the minimum, median and maximum: each container from creation to its readiness
//! condition (Toxiproxy API answers, Postgres `SELECT 1`, Kafka metadata through a proxy), the
//! whole stack to ready (links included), and teardown (every container and the network gone).
//!
//! `faultline bench saga` starts the reference system and, for each concurrency level, has that
//! many clients place orders through the gateway (a bounded number per level), each waiting
//! until its order is CONFIRMED: orders per second and p50/p99 of the time from the request to
//! the confirmed order. The gateway's rate limit is lifted for it: it measures the saga. Beside it, `pgbench` (TPC-B-like, same Postgres, same concurrency)
//! gives the database's own transactions per second as a reference bound.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::infra::{Infra, InfraError};
use crate::stack::{Stack, StackConfig, StackError, JWT_SECRET};
use crate::system::System;

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

/// Starts and tears down the infrastructure `system` needs `iterations` times (sequentially)
/// and summarises.
pub async fn infra(system: &System, iterations: usize) -> Result<InfraBench, InfraError> {
    let config = system.infra_config();
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

/// One concurrency level of `faultline bench saga`.
#[derive(Debug, Clone, Serialize)]
pub struct SagaLevel {
    pub concurrency: usize,
    pub orders: usize,
    pub confirmed: usize,
    pub orders_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// pgbench on the same Postgres with as many clients, for comparison (None if pgbench is
    /// not installed or failed; the reason is in `pgbench_note`).
    pub pgbench_tps: Option<f64>,
}

/// The result of `faultline bench saga`.
#[derive(Debug, Clone, Serialize)]
pub struct SagaBench {
    pub levels: Vec<SagaLevel>,
    pub pgbench_note: Option<String>,
}

impl SagaBench {
    /// A plain table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>11} {:>7} {:>9} {:>11} {:>9} {:>9} {:>12}\n",
            "concurrency", "orders", "confirmed", "orders/s", "p50 ms", "p99 ms", "pgbench tps"
        );
        for l in &self.levels {
            let tps = l
                .pgbench_tps
                .map_or_else(|| "-".to_string(), |t| format!("{t:.0}"));
            out.push_str(&format!(
                "{:>11} {:>7} {:>9} {:>11.1} {:>9.1} {:>9.1} {:>12}\n",
                l.concurrency, l.orders, l.confirmed, l.orders_per_second, l.p50_ms, l.p99_ms, tps
            ));
        }
        if let Some(note) = &self.pgbench_note {
            out.push_str(&format!("pgbench: {note}\n"));
        }
        out
    }
}

/// Places `orders_per_level` orders at each concurrency through the gateway of a fresh stack.
/// Bounded: every order waits at most 60 s for its outcome.
pub async fn saga(
    system: &System,
    concurrencies: &[usize],
    orders_per_level: usize,
) -> Result<SagaBench, StackError> {
    // The benchmark measures the saga, not the gateway's rate limit.
    let config = StackConfig {
        env: vec![(
            "gateway".into(),
            "GATEWAY_RATE_LIMIT_PER_SECOND".into(),
            "1000000".into(),
        )],
    };
    let stack = Stack::start(system, config).await?;
    let result = run_saga_levels(&stack, concurrencies, orders_per_level).await;
    stack.shutdown().await?;
    result
}

async fn run_saga_levels(
    stack: &Stack,
    concurrencies: &[usize],
    orders_per_level: usize,
) -> Result<SagaBench, StackError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StackError::Io {
            action: "building an HTTP client".into(),
            message: e.to_string(),
        })?;
    let total: usize = concurrencies.len() * orders_per_level;
    let inventory = stack.service_url("inventory")?;
    http.put(format!("{inventory}/admin/stock/sku-bench"))
        .json(&json!({"on_hand": total as i64 + 10}))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| StackError::Io {
            action: "seeding stock".into(),
            message: e.to_string(),
        })?;
    let token = faultline_gateway::mint_token(
        JWT_SECRET,
        "bench",
        &["orders:write", "orders:read"],
        "faultline",
        Duration::from_secs(3600),
    );
    let gateway = stack.service_url("gateway")?;
    let mut levels = Vec::new();
    let mut pgbench_note = None;
    for (level, &concurrency) in concurrencies.iter().enumerate() {
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let clock = Instant::now();
        let workers = (0..concurrency.max(1)).map(|_| {
            let (http, gateway, token, next) =
                (http.clone(), gateway.clone(), token.clone(), next.clone());
            async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= orders_per_level {
                        return latencies;
                    }
                    let started = Instant::now();
                    if place_and_confirm(&http, &gateway, &token, &format!("bench-{level}-{i}"))
                        .await
                    {
                        latencies.push(started.elapsed());
                    }
                }
            }
        });
        let mut latencies: Vec<Duration> = futures_util::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect();
        let elapsed = clock.elapsed();
        latencies.sort();
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |d| round(d.as_secs_f64() * 1000.0))
        };
        let pgbench_tps = match pgbench(stack, concurrency).await {
            Ok(tps) => Some(tps),
            Err(note) => {
                pgbench_note = Some(note);
                None
            }
        };
        levels.push(SagaLevel {
            concurrency,
            orders: orders_per_level,
            confirmed: latencies.len(),
            orders_per_second: round(latencies.len() as f64 / elapsed.as_secs_f64()),
            p50_ms: percentile(0.50),
            p99_ms: percentile(0.99),
            pgbench_tps,
        });
    }
    Ok(SagaBench {
        levels,
        pgbench_note,
    })
}

/// Places one order and polls it until it is settled; true when it ended CONFIRMED.
async fn place_and_confirm(http: &reqwest::Client, gateway: &str, token: &str, key: &str) -> bool {
    let body = json!({"customer_id": "bench", "sku": "sku-bench", "quantity": 1, "amount_cents": 100, "card": "4242424242424242"});
    let placed = http
        .post(format!("{gateway}/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await;
    let Ok(placed) = placed else { return false };
    let Ok(created) = placed.json::<serde_json::Value>().await else {
        return false;
    };
    let Some(order_id) = created["order_id"].as_str() else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = http
            .get(format!("{gateway}/api/orders/{order_id}"))
            .bearer_auth(token)
            .send()
            .await
        {
            if let Ok(order) = response.json::<serde_json::Value>().await {
                match order["status"].as_str() {
                    Some("CONFIRMED") => return true,
                    Some("CANCELLED") => return false,
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// pgbench's TPS on the stack's Postgres with `clients` clients for 10 s (scale 1, in a
/// database of its own).
async fn pgbench(stack: &Stack, clients: usize) -> Result<f64, String> {
    let url = stack
        .infra()
        .postgres_admin_url()
        .map_err(|e| e.to_string())?;
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new("pgbench")
            .args(&args)
            .output()
            .await
            .map_err(|e| {
                format!("cannot run pgbench ({e}); it comes with Debian's postgresql-client")
            })
    };
    let init = run(vec![
        "-i".into(),
        "-q".into(),
        "-s".into(),
        "1".into(),
        url.clone(),
    ])
    .await?;
    if !init.status.success() {
        return Err(format!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        ));
    }
    let clients = clients.max(1).to_string();
    let out = run(vec![
        "-c".into(),
        clients.clone(),
        "-j".into(),
        clients,
        "-T".into(),
        "10".into(),
        url,
    ])
    .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| {
            format!(
                "no tps in pgbench output: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
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

/// One verifier's runs in `faultline bench contracts`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifierRuns {
    pub verifier: String,
    /// What it verified.
    pub pacts: String,
    pub interactions: usize,
    /// Wall time of each run, milliseconds.
    pub runs_ms: Vec<f64>,
    pub median_ms: f64,
    pub interactions_per_second: f64,
    /// Interactions that did not pass in any run (should be 0).
    pub not_passed: usize,
}

/// The result of `faultline bench contracts`.
#[derive(Debug, Clone, Serialize)]
pub struct ContractsBench {
    pub iterations: usize,
    pub stack_start_ms: f64,
    pub verifiers: Vec<VerifierRuns>,
    pub note: Option<String>,
}

impl ContractsBench {
    /// A plain table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<26} {:<28} {:>12} {:>10} {:>16} {:>10}\n",
            "verifier", "pacts", "interactions", "median ms", "interactions/s", "not passed"
        );
        for v in &self.verifiers {
            out.push_str(&format!(
                "{:<26} {:<28} {:>12} {:>10.0} {:>16.1} {:>10}\n",
                v.verifier,
                v.pacts,
                v.interactions,
                v.median_ms,
                v.interactions_per_second,
                v.not_passed
            ));
        }
        out.push_str(&format!(
            "stack start: {:.0} ms (not included above)\n",
            self.stack_start_ms
        ));
        if let Some(note) = &self.note {
            out.push_str(&format!("{note}\n"));
        }
        out
    }
}

fn verifier_runs(
    verifier: &str,
    pacts: &str,
    interactions: usize,
    runs: Vec<Duration>,
    not_passed: usize,
) -> VerifierRuns {
    let runs_ms = runs
        .iter()
        .map(|d| round(d.as_secs_f64() * 1000.0))
        .collect();
    let median_ms = Phase::from_samples(verifier, &runs).map_or(0.0, |p| p.median_ms);
    VerifierRuns {
        verifier: verifier.into(),
        pacts: pacts.into(),
        interactions,
        runs_ms,
        interactions_per_second: if median_ms > 0.0 {
            interactions as f64 / (median_ms / 1000.0)
        } else {
            0.0
        },
        median_ms,
        not_passed,
    }
}

/// Verifies `pacts_dir` against one reference stack `iterations` times with faultline's
/// verifier and with the official verifier, `pact verifier` (message pacts through
/// [`crate::contracts::MessageBridge`]), all pacts and the HTTP ones alone, in one run.
pub async fn contracts(
    system: &System,
    iterations: usize,
    pacts_dir: &std::path::Path,
    pact_verifier: &std::path::Path,
) -> anyhow::Result<ContractsBench> {
    use crate::contracts::{run_pact_verifier, target, verify_pacts};
    use faultline_contracts::model::Interaction;

    let pacts = faultline_contracts::files::read_pacts(pacts_dir)?;
    let http: Vec<_> = pacts
        .iter()
        .filter(|(_, p)| {
            p.interactions
                .iter()
                .all(|i| matches!(i, Interaction::Http(_)))
        })
        .cloned()
        .collect();
    let count = |set: &[(std::path::PathBuf, faultline_contracts::Pact)]| {
        set.iter().map(|(_, p)| p.interactions.len()).sum::<usize>()
    };
    let started = Instant::now();
    let stack = Stack::start(system, StackConfig::default()).await?;
    let stack_start_ms = started.elapsed().as_secs_f64() * 1000.0;
    let none = std::collections::BTreeMap::new();
    let mut runs: [Vec<Duration>; 4] = Default::default();
    let mut failed = [0usize; 4];
    let official_available = pact_verifier.is_file();
    let bootstrap = stack
        .infra()
        .kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
    for _ in 0..iterations.max(1) {
        let report = verify_pacts(Some(&stack), &pacts, &none).await;
        failed[0] += report.counts().0 - report.counts().1;
        runs[0].push(report.duration);
        let report = verify_pacts(Some(&stack), &http, &none).await;
        failed[1] += report.counts().0 - report.counts().1;
        runs[1].push(report.duration);
        if !official_available {
            continue;
        }
        // The official verifier: the HTTP pacts against the providers, the message pacts
        // through a bridge that reads what the provider published to Kafka.
        let began = Instant::now();
        let mut http_time = Duration::ZERO;
        for (path, pact) in &pacts {
            let Some(t) = target(&stack, &pact.provider.name) else {
                continue;
            };
            let is_http = http.iter().any(|(p, _)| p == path);
            let one = Instant::now();
            let verdicts = if is_http {
                run_pact_verifier(pact_verifier, path, &t).await
            } else {
                let bridge = crate::contracts::MessageBridge::start(
                    pact.clone(),
                    &format!("{}/admin/provider-states", t.base_url),
                    &bootstrap,
                )
                .await?;
                let bridged = faultline_contracts::verify::ProviderTarget::http(
                    &pact.provider.name,
                    &bridge.url(),
                );
                run_pact_verifier(pact_verifier, path, &bridged).await
            };
            let lost = match verdicts {
                Ok(verdicts) => verdicts.values().filter(|v| v.is_err()).count(),
                Err(_) => pact.interactions.len(),
            };
            failed[2] += lost;
            if is_http {
                http_time += one.elapsed();
                failed[3] += lost;
            }
        }
        runs[2].push(began.elapsed());
        runs[3].push(http_time);
    }
    stack.shutdown().await?;
    let [all_runs, http_runs, official_all, official_http] = runs;
    let mut verifiers = vec![
        verifier_runs(
            "faultline",
            "all (HTTP + messages)",
            count(&pacts),
            all_runs,
            failed[0],
        ),
        verifier_runs(
            "faultline",
            "HTTP pacts",
            count(&http),
            http_runs,
            failed[1],
        ),
    ];
    let note = if official_available {
        verifiers.push(verifier_runs(
            "pact verifier",
            "all (messages via the bridge)",
            count(&pacts),
            official_all,
            failed[2],
        ));
        verifiers.push(verifier_runs(
            "pact verifier",
            "HTTP pacts",
            count(&http),
            official_http,
            failed[3],
        ));
        Some("pact verifier runs as one process per pact file".to_string())
    } else {
        Some(format!(
            "{} not found: ci/setup installs pact-python-cli there",
            pact_verifier.display()
        ))
    };
    Ok(ContractsBench {
        iterations,
        stack_start_ms,
        verifiers,
        note,
    })
}
