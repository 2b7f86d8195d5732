//! `faultline bench saga`: the reference system's saga under load. It starts the reference
//! system and, for each concurrency level, has that many clients place orders through the
//! gateway (a bounded number per level), each waiting until its order is CONFIRMED: orders per
//! second and p50/p99 of the time from the request to the confirmed order. The gateway's rate
//! limit is lifted for it: it measures the saga. Beside it, `pgbench` (TPC-B-like, same
//! Postgres, same concurrency) gives the database's own transactions per second as a
//! reference bound. It measures; nothing asserts a duration.

use std::time::{Duration, Instant};

use faultline_harness::stack::{Stack, StackConfig, StackError};
use faultline_harness::system::System;
use serde::Serialize;
use serde_json::json;

use crate::JWT_SECRET;

/// Milliseconds to one decimal.
fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
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

