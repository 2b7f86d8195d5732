//! `faultline bench saga`: the reference system's saga under load. It starts the reference
//! system and, for each concurrency level, has that many clients place orders through the
//! gateway (a bounded number per level, after [`WARMUP`] orders not counted), each waiting
//! until its order is CONFIRMED (reads
//! that wait for the saga's end, `?wait_ms=`, rather than polls): orders per
//! second and p50/p99 of the time from the request to the confirmed order. The gateway's rate
//! limit is lifted for it: it measures the saga. Beside it, `pgbench` (TPC-B-like, same
//! Postgres, same concurrency) gives the database's own transactions per second as a
//! reference bound. pgbench reaches Postgres straight, and so do the services with
//! [`Links::Direct`] (the command's default); [`Links::Toxiproxy`] measures the path a chaos
//! run takes. It measures; nothing asserts a duration.
//!
//! Each level also says where an order's time went ([`SagaProfile`]): the client's own clock
//! (the answer to the POST, then the wait until CONFIRMED was seen by polling) beside the
//! services' own metrics over the level — each route a service served and each call it made
//! to a dependency (through its proxy), as a mean per call and calls per order, and the
//! saga's duration as order records it. At concurrency 1 it also lays out the slowest orders
//! line by line ([`SlowOrder`]): every line the services logged while the order was in
//! flight — with one client, nothing else was — so that a tail shows where it went.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use faultline_harness::bench::Links;
use faultline_harness::checkers::percentile;
use faultline_harness::extension::{BenchFuture, BenchOutput, BenchSettings, Benchmark};
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
    /// Orders placed at this concurrency before the measured ones, not counted.
    pub warmup: usize,
    pub orders: usize,
    pub confirmed: usize,
    pub orders_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// pgbench on the same Postgres with as many clients, for comparison (None if pgbench is
    /// not installed or failed; the reason is in `pgbench_note`).
    pub pgbench_tps: Option<f64>,
    /// Where the level's orders spent their time.
    pub profile: SagaProfile,
    /// At concurrency 1, the slowest orders with what the services logged meanwhile.
    pub slowest: Vec<SlowOrder>,
}

/// How many of the slowest orders a level at concurrency 1 lays out.
const SLOWEST: usize = 3;

/// At most this many log lines per slow order.
const LINES_PER_ORDER: usize = 60;

/// One of the slowest orders at concurrency 1.
#[derive(Debug, Clone, Serialize)]
pub struct SlowOrder {
    /// The idempotency key it was placed with.
    pub key: String,
    pub order_id: String,
    /// When its POST was sent (wall clock, as the services' logs have it), to find it in
    /// other records of the same minutes.
    pub sent_at: chrono::DateTime<chrono::Utc>,
    /// Placed to CONFIRMED seen.
    pub total_ms: f64,
    pub answered_ms: f64,
    pub confirmed_after_ms: f64,
    /// What the services logged from the POST's sending to the client seeing CONFIRMED,
    /// in time order.
    pub lines: Vec<LoggedLine>,
}

/// One service log line during a slow order.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedLine {
    /// Since the order's POST was sent.
    pub at_ms: f64,
    pub service: String,
    pub message: String,
    /// `METHOD path` of a request served, when the line is one.
    pub request: Option<String>,
    /// A served request's own latency, as the service logged it.
    pub latency_ms: Option<f64>,
}

/// Where an order's time goes: one line per part, from the client's clock and the services'
/// metrics (deltas over one level).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SagaProfile {
    pub parts: Vec<ProfilePart>,
    /// Why the services' side is missing, when a scrape failed.
    pub note: Option<String>,
}

/// One part of an order's path.
#[derive(Debug, Clone, Serialize)]
pub struct ProfilePart {
    /// `client: …`, `<service> serves <METHOD> <route>`, `<service> calls <dependency>`,
    /// `order: saga, created to ended`.
    pub part: String,
    /// How often per confirmed order.
    pub per_order: f64,
    /// Mean duration of one, in ms.
    pub mean_ms: f64,
    /// The 99th percentile, for the client's own parts (the services' metrics give means).
    pub p99_ms: Option<f64>,
}

/// The result of `faultline bench saga`.
#[derive(Debug, Clone, Serialize)]
pub struct SagaBench {
    pub links: Links,
    pub levels: Vec<SagaLevel>,
    pub pgbench_note: Option<String>,
    /// Whether the Docker engine's userland proxy (`docker-proxy`) ran on this host while the
    /// stack was up: then every connection to a container — the services' to Postgres and
    /// Kafka, pgbench's — went through it as well, and both sides of the ratio are slower
    /// (docs/numbers.md).
    pub docker_proxy: bool,
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
        out.push_str(match self.links {
            Links::Direct => "links: direct (services reach Postgres and each other straight, as pgbench reaches Postgres; Kafka through Toxiproxy)\n",
            Links::Toxiproxy => "links: through Toxiproxy, as in a chaos run\n",
        });
        if self.docker_proxy {
            out.push_str("published ports: through the Docker engine's userland proxy (docker-proxy)\n");
        }
        for l in &self.levels {
            out.push_str(&format!(
                "\nwhere an order's time went at concurrency {}:\n{:<58} {:>9} {:>9} {:>9}\n",
                l.concurrency, "part", "per order", "mean ms", "p99 ms"
            ));
            for part in &l.profile.parts {
                let p99 = part.p99_ms.map_or_else(String::new, |p| format!("{p:.1}"));
                out.push_str(&format!(
                    "{:<58} {:>9.2} {:>9.1} {:>9}\n",
                    part.part, part.per_order, part.mean_ms, p99
                ));
            }
            for slow in &l.slowest {
                out.push_str(&format!(
                    "\nslow order {} ({}, sent {}): {:.1} ms, answered in {:.1}, CONFIRMED seen {:.1} later\n",
                    slow.key,
                    slow.order_id,
                    slow.sent_at.format("%H:%M:%S%.3f"),
                    slow.total_ms,
                    slow.answered_ms,
                    slow.confirmed_after_ms
                ));
                for line in &slow.lines {
                    out.push_str(&format!(
                        "  {:>7.1} ms  {:<12} {}{}{}\n",
                        line.at_ms,
                        line.service,
                        line.message,
                        line.request.as_ref().map_or_else(String::new, |r| format!(" {r}")),
                        line.latency_ms.map_or_else(String::new, |ms| format!(" ({ms:.1} ms)"))
                    ));
                }
            }
            if let Some(note) = &l.profile.note {
                out.push_str(&format!("({note})\n"));
            }
        }
        out
    }
}

/// [`saga`] as the extension offers it: `faultline bench saga` finds it by name in the
/// registry of the description's extension, as it would any system's benchmark.
pub struct Saga;

impl Benchmark for Saga {
    fn name(&self) -> &str {
        "saga"
    }

    fn run<'a>(&'a self, system: &'a System, settings: &'a BenchSettings) -> BenchFuture<'a> {
        Box::pin(async move {
            let result = saga(system, &settings.concurrency, settings.units, settings.links).await?;
            let json = serde_json::to_value(&result)
                .map_err(|e| StackError::Io {
                    action: "bench saga: its result as JSON".into(),
                    message: e.to_string(),
                })?;
            Ok(BenchOutput {
                table: result.table(),
                json,
            })
        })
    }
}

/// Places `orders_per_level` orders at each concurrency through the gateway of a fresh stack
/// whose links are as `links` says. Bounded: every order waits at most 60 s for its outcome.
pub async fn saga(
    system: &System,
    concurrencies: &[usize],
    orders_per_level: usize,
    links: Links,
) -> Result<SagaBench, StackError> {
    // The benchmark measures the saga, not the gateway's rate limit nor faultline's request
    // proxies (it injects no faults); with direct links, not Toxiproxy either.
    let config = StackConfig {
        env: vec![(
            "gateway".into(),
            "GATEWAY_RATE_LIMIT_PER_SECOND".into(),
            "1000000".into(),
        )],
        without_request_proxies: true,
        direct_links: links == Links::Direct,
    };
    let stack = Stack::start(system, config).await?;
    let result = run_saga_levels(&stack, concurrencies, orders_per_level, links).await;
    stack.shutdown().await?;
    result
}

async fn run_saga_levels(
    stack: &Stack,
    concurrencies: &[usize],
    orders_per_level: usize,
    links: Links,
) -> Result<SagaBench, StackError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StackError::Io {
            action: "building an HTTP client".into(),
            message: e.to_string(),
        })?;
    let total: usize = concurrencies.len() * (WARMUP + orders_per_level);
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
    // Signed by the gateway's own program, as the description's workload does.
    let token = mint_token().await?;
    let gateway = stack.service_url("gateway")?;
    let docker_proxy = faultline_harness::bench::docker_proxy_running();
    let mut levels = Vec::new();
    let mut pgbench_note = None;
    let services: Vec<(String, String)> = stack
        .system()
        .services
        .iter()
        .filter(|s| s.listens)
        .filter_map(|s| Some((s.name.clone(), stack.service_url(&s.name).ok()?)))
        .collect();
    for (level, &concurrency) in concurrencies.iter().enumerate() {
        // Not counted: the first orders at a level open the services' connections (to the
        // database, to each other through the links) and prepare their statements.
        let _ = place_orders(&http, &gateway, &token, &format!("warm-{level}"), WARMUP, concurrency).await;
        let before = scrape(&http, &services).await;
        let clock = Instant::now();
        let confirmed =
            place_orders(&http, &gateway, &token, &format!("bench-{level}"), orders_per_level, concurrency).await;
        let elapsed = clock.elapsed();
        let after = scrape(&http, &services).await;
        let profile = profile_of(&confirmed, before, after, links);
        let slowest = if concurrency == 1 {
            slowest_of(&confirmed, &logged_lines(stack))
        } else {
            Vec::new()
        };
        let latencies: Vec<Duration> = confirmed.iter().map(|(d, _)| *d).collect();
        let pgbench_tps = match pgbench(stack, concurrency).await {
            Ok(tps) => Some(tps),
            Err(note) => {
                pgbench_note = Some(note);
                None
            }
        };
        levels.push(SagaLevel {
            concurrency,
            warmup: WARMUP,
            orders: orders_per_level,
            confirmed: latencies.len(),
            orders_per_second: round(latencies.len() as f64 / elapsed.as_secs_f64()),
            p50_ms: percentile_ms(&latencies, 0.50),
            p99_ms: percentile_ms(&latencies, 0.99),
            pgbench_tps,
            profile,
            slowest,
        });
    }
    Ok(SagaBench {
        links,
        levels,
        pgbench_note,
        docker_proxy,
    })
}

/// Orders placed at each level before it is measured.
pub const WARMUP: usize = 20;

/// `count` orders with keys `<prefix>-<i>`, placed by `concurrency` clients, each awaited
/// until it ends; the client's clock of each that was CONFIRMED.
async fn place_orders(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Vec<(Duration, Timed)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = (0..concurrency.max(1)).map(|_| async {
        let mut confirmed = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if i >= count {
                return confirmed;
            }
            let started = Instant::now();
            if let Some(timed) = place_and_confirm(http, gateway, token, &format!("{prefix}-{i}")).await {
                confirmed.push((started.elapsed(), timed));
            }
        }
    });
    futures_util::future::join_all(workers).await.into_iter().flatten().collect()
}

/// The client's clock for one confirmed order.
#[derive(Debug, Clone)]
struct Timed {
    key: String,
    order_id: String,
    /// When its POST was sent, by the wall clock the services' logs use.
    sent_at: chrono::DateTime<chrono::Utc>,
    /// From sending the POST to its answer.
    answered: Duration,
    /// From the answer to the read that saw CONFIRMED.
    confirmed_after: Duration,
    /// Reads of the order until then.
    polls: u32,
}

/// Places one order and reads it until it is settled — each read waiting up to 1 s for the
/// saga to end (`?wait_ms=1000`), so the client learns of the end at once instead of at its
/// next poll; its times when it ended CONFIRMED.
async fn place_and_confirm(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    key: &str,
) -> Option<Timed> {
    let sent = Instant::now();
    let sent_at = chrono::Utc::now();
    let body = json!({"customer_id": "bench", "sku": "sku-bench", "quantity": 1, "amount_cents": 100, "card": "4242424242424242"});
    let placed = http
        .post(format!("{gateway}/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await;
    let placed = placed.ok()?;
    let created = placed.json::<serde_json::Value>().await.ok()?;
    let order_id = created["order_id"].as_str()?;
    let answered_at = Instant::now();
    let deadline = answered_at + Duration::from_secs(60);
    let mut polls = 0;
    while Instant::now() < deadline {
        polls += 1;
        if let Ok(response) = http
            .get(format!("{gateway}/api/orders/{order_id}?wait_ms=1000"))
            .bearer_auth(token)
            .send()
            .await
        {
            if let Ok(order) = response.json::<serde_json::Value>().await {
                match order["status"].as_str() {
                    Some("CONFIRMED") => {
                        return Some(Timed {
                            key: key.to_string(),
                            order_id: order_id.to_string(),
                            sent_at,
                            answered: answered_at - sent,
                            confirmed_after: answered_at.elapsed(),
                            polls,
                        })
                    }
                    Some("CANCELLED") => return None,
                    Some(_) => continue, // still PENDING after a full wait: read again
                    None => {}
                }
            }
        }
        // No answer or no order: a short pause before trying again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Each service's histograms (`…_sum` and `…_count`) by service, metric and labels.
type Scrape = Result<BTreeMap<(String, String, String), (f64, f64)>, String>;

/// Reads every service's `/metrics` (the kit serves them on the service's own port).
async fn scrape(http: &reqwest::Client, services: &[(String, String)]) -> Scrape {
    let mut series = BTreeMap::new();
    for (service, url) in services {
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("{service} /metrics: {e}"))?
            .text()
            .await
            .map_err(|e| format!("{service} /metrics: {e}"))?;
        for (name, labels, sum, count) in histograms(&text) {
            let entry = series
                .entry((service.clone(), name, labels))
                .or_insert((0.0, 0.0));
            entry.0 += sum;
            entry.1 += count;
        }
    }
    Ok(series)
}

/// The histograms of a Prometheus text exposition as `(name, labels without status, sum,
/// count)`; series that differ only by status add up.
fn histograms(text: &str) -> Vec<(String, String, f64, f64)> {
    let mut sums: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let (base, is_sum) = if let Some(base) = name.strip_suffix("_sum") {
            (base, true)
        } else if let Some(base) = name.strip_suffix("_count") {
            (base, false)
        } else {
            continue;
        };
        let labels: Vec<&str> = labels
            .split(',')
            .filter(|l| !l.is_empty() && !l.starts_with("status="))
            .collect();
        let entry = sums
            .entry((base.to_string(), labels.join(",")))
            .or_insert((0.0, 0.0));
        if is_sum {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    sums.into_iter()
        .map(|((name, labels), (sum, count))| (name, labels, sum, count))
        .collect()
}

/// The value of `key="…"` in a label list.
fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|l| l.strip_prefix(key)?.strip_prefix("=\"")?.strip_suffix('"'))
        .unwrap_or("?")
}

/// The level's profile: the client's parts, then each service histogram that moved, in
/// the order the services were described.
fn profile_of(confirmed: &[(Duration, Timed)], before: Scrape, after: Scrape, links: Links) -> SagaProfile {
    let orders = confirmed.len().max(1) as f64;
    let client_part = |part: &str, per_order: f64, f: &dyn Fn(&(Duration, Timed)) -> Duration| {
        let took: Vec<Duration> = confirmed.iter().map(f).collect();
        ProfilePart {
            part: part.into(),
            per_order,
            mean_ms: round(took.iter().map(|d| d.as_secs_f64() * 1000.0).sum::<f64>() / orders),
            p99_ms: Some(percentile_ms(&took, 0.99)),
        }
    };
    let mut parts = vec![
        client_part("client: order placed to CONFIRMED seen", 1.0, &|(d, _)| *d),
        client_part("client: POST /api/orders answered", 1.0, &|(_, t)| t.answered),
        client_part(
            "client: answer to CONFIRMED seen (reads waiting for the saga)",
            round(confirmed.iter().map(|(_, t)| f64::from(t.polls)).sum::<f64>() / orders),
            &|(_, t)| t.confirmed_after,
        ),
    ];
    let (before, after) = match (before, after) {
        (Ok(before), Ok(after)) => (before, after),
        (Err(note), _) | (_, Err(note)) => return SagaProfile { parts, note: Some(note) },
    };
    for ((service, name, labels), (sum, count)) in &after {
        let (sum0, count0) = before
            .get(&(service.clone(), name.clone(), labels.clone()))
            .copied()
            .unwrap_or_default();
        let calls = count - count0;
        if calls <= 0.0 {
            continue;
        }
        let part = match name.as_str() {
            "http_server_request_duration_seconds" => format!(
                "{service} serves {} {}",
                label(labels, "method"),
                label(labels, "route")
            ),
            "faultline_http_client_duration_seconds" => format!(
                "{service} calls {}{}",
                label(labels, "dependency"),
                if links == Links::Toxiproxy { " (through its proxy)" } else { "" }
            ),
            "order_saga_duration_seconds" => format!("{service}: saga, created to ended"),
            _ => continue,
        };
        parts.push(ProfilePart {
            part,
            per_order: round(calls / orders),
            mean_ms: round((sum - sum0) / calls * 1000.0),
            p99_ms: None,
        });
    }
    SagaProfile { parts, note: None }
}

/// The `q` quantile of `samples` (nearest rank) in milliseconds; 0 when empty.
fn percentile_ms(samples: &[Duration], q: f64) -> f64 {
    percentile(samples, q).map_or(0.0, |d| round(d.as_secs_f64() * 1000.0))
}

/// A line of a service's log, with its time.
struct Logged {
    at: chrono::DateTime<chrono::Utc>,
    service: String,
    line: serde_json::Value,
}

/// Every JSON line the stack's services logged so far, in time order (lines without a
/// timestamp left out).
fn logged_lines(stack: &Stack) -> Vec<Logged> {
    let mut lines = Vec::new();
    for service in &stack.system().services {
        let Ok(text) = stack.service_log(&service.name) else { continue };
        for line in text.lines() {
            let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let Some(at) = line["timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            else {
                continue;
            };
            lines.push(Logged {
                at: at.with_timezone(&chrono::Utc),
                service: service.name.clone(),
                line,
            });
        }
    }
    lines.sort_by_key(|l| l.at);
    lines
}

/// The [`SLOWEST`] orders of a level at concurrency 1, each with the lines logged while it
/// was in flight.
fn slowest_of(confirmed: &[(Duration, Timed)], logged: &[Logged]) -> Vec<SlowOrder> {
    let mut by_time: Vec<&(Duration, Timed)> = confirmed.iter().collect();
    by_time.sort_by_key(|o| std::cmp::Reverse(o.0));
    let ms = |d: Duration| round(d.as_secs_f64() * 1000.0);
    by_time
        .into_iter()
        .take(SLOWEST)
        .map(|(total, timed)| {
            let end = timed.sent_at
                + chrono::Duration::from_std(*total).unwrap_or_else(|_| chrono::Duration::zero());
            let lines = logged
                .iter()
                .filter(|l| l.at >= timed.sent_at && l.at <= end)
                .take(LINES_PER_ORDER)
                .map(|l| LoggedLine {
                    at_ms: round((l.at - timed.sent_at).num_microseconds().unwrap_or(0) as f64 / 1000.0),
                    service: l.service.clone(),
                    message: l.line["message"].as_str().unwrap_or_default().to_string(),
                    request: l.line["method"].as_str().map(|method| {
                        format!("{method} {}", l.line["path"].as_str().unwrap_or_default())
                    }),
                    latency_ms: l.line["latency_ms"].as_f64().map(round),
                })
                .collect();
            SlowOrder {
                key: timed.key.clone(),
                order_id: timed.order_id.clone(),
                sent_at: timed.sent_at,
                total_ms: ms(*total),
                answered_ms: ms(timed.answered),
                confirmed_after_ms: ms(timed.confirmed_after),
                lines,
            }
        })
        .collect()
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

    const METRICS: &str = r#"# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{method="POST",route="/orders",status="201",le="0.005"} 3
http_server_request_duration_seconds_sum{method="POST",route="/orders",status="201"} 0.03
http_server_request_duration_seconds_count{method="POST",route="/orders",status="201"} 3
http_server_request_duration_seconds_sum{method="POST",route="/orders",status="409"} 0.01
http_server_request_duration_seconds_count{method="POST",route="/orders",status="409"} 1
faultline_http_client_duration_seconds_sum{dependency="payment"} 0.5
faultline_http_client_duration_seconds_count{dependency="payment"} 4
order_sagas_total{outcome="confirmed",reason=""} 4
"#;

    #[test]
    fn histograms_add_up_across_statuses_and_skip_counters_and_buckets() {
        let found = histograms(METRICS);
        assert_eq!(
            found,
            [
                ("faultline_http_client_duration_seconds".to_string(), r#"dependency="payment""#.to_string(), 0.5, 4.0),
                ("http_server_request_duration_seconds".to_string(), r#"method="POST",route="/orders""#.to_string(), 0.04, 4.0),
            ]
        );
        assert_eq!(label(&found[1].1, "route"), "/orders");
        assert_eq!(label(&found[1].1, "nothing"), "?");
    }

    #[test]
    fn the_slowest_orders_come_with_the_lines_logged_while_each_was_in_flight() {
        let start = chrono::Utc::now();
        let at = |ms: i64| start + chrono::Duration::milliseconds(ms);
        let order = |key: &str, sent: i64, total: u64| {
            (
                Duration::from_millis(total),
                Timed {
                    key: key.into(),
                    order_id: format!("id-{key}"),
                    sent_at: at(sent),
                    answered: Duration::from_millis(5),
                    confirmed_after: Duration::from_millis(total - 5),
                    polls: 1,
                },
            )
        };
        let confirmed: Vec<(Duration, Timed)> = (0..5).map(|i| order(&format!("o{i}"), i * 100, 10 + i as u64)).collect();
        let logged = vec![
            Logged { at: at(401), service: "gateway".into(), line: json!({"message": "request served", "method": "POST", "path": "/api/orders", "latency_ms": 4.26}) },
            Logged { at: at(409), service: "order".into(), line: json!({"message": "saga ended"}) },
            Logged { at: at(500), service: "order".into(), line: json!({"message": "too late"}) },
        ];
        let slowest = slowest_of(&confirmed, &logged);
        let keys: Vec<&str> = slowest.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["o4", "o3", "o2"]);
        assert_eq!(slowest[0].total_ms, 14.0);
        let lines: Vec<(f64, &str, Option<&str>, Option<f64>)> = slowest[0]
            .lines
            .iter()
            .map(|l| (l.at_ms, l.message.as_str(), l.request.as_deref(), l.latency_ms))
            .collect();
        assert_eq!(
            lines,
            [(1.0, "request served", Some("POST /api/orders"), Some(4.3)), (9.0, "saga ended", None, None)]
        );
        assert!(slowest[1].lines.is_empty(), "nothing was logged while o3 was in flight");
    }

    #[test]
    fn a_profile_is_the_level_s_deltas_per_order_beside_the_client_s_clock() {
        let key = |name: &str, labels: &str| ("order".to_string(), name.to_string(), labels.to_string());
        let served = key("http_server_request_duration_seconds", r#"method="POST",route="/orders""#);
        let calls = key("faultline_http_client_duration_seconds", r#"dependency="payment""#);
        let before = BTreeMap::from([(served.clone(), (1.0, 10.0))]);
        let after = BTreeMap::from([(served, (1.02, 12.0)), (calls, (0.06, 4.0))]);
        let timed = |answered, after, polls| {
            (
                Duration::from_millis(answered + after),
                Timed {
                    key: format!("k{answered}"),
                    order_id: format!("o{answered}"),
                    sent_at: chrono::Utc::now(),
                    answered: Duration::from_millis(answered),
                    confirmed_after: Duration::from_millis(after),
                    polls,
                },
            )
        };
        let orders = [timed(10, 30, 2), timed(20, 50, 4)];
        let profile = profile_of(&orders, Ok(before.clone()), Ok(after.clone()), Links::Toxiproxy);
        let row = |part: &str| {
            let p = profile.parts.iter().find(|p| p.part == part).unwrap_or_else(|| panic!("{part}: {profile:?}"));
            (p.per_order, p.mean_ms)
        };
        assert_eq!(row("client: order placed to CONFIRMED seen"), (1.0, 55.0));
        assert_eq!(row("client: POST /api/orders answered"), (1.0, 15.0));
        assert_eq!(row("client: answer to CONFIRMED seen (reads waiting for the saga)"), (3.0, 40.0));
        assert_eq!(row("order serves POST /orders"), (1.0, 10.0));
        assert_eq!(row("order calls payment (through its proxy)"), (2.0, 15.0));
        let p99 = |part: &str| profile.parts.iter().find(|p| p.part == part).and_then(|p| p.p99_ms);
        assert_eq!(p99("client: order placed to CONFIRMED seen"), Some(70.0));
        assert_eq!(p99("client: POST /api/orders answered"), Some(20.0));
        assert_eq!(p99("order serves POST /orders"), None, "the services' metrics give means");
        let direct = profile_of(&orders, Ok(before), Ok(after), Links::Direct);
        assert!(direct.parts.iter().any(|p| p.part == "order calls payment"), "{direct:?}");

        let failed = profile_of(&[], Err("gateway /metrics: refused".into()), Ok(BTreeMap::new()), Links::Direct);
        assert_eq!(failed.parts.len(), 3);
        assert_eq!(failed.note.as_deref(), Some("gateway /metrics: refused"));
    }
}

/// A token the stack's gateway accepts (`gateway mint-token`, with the stack's secret): its
/// program is among the services' binaries.
async fn mint_token() -> Result<String, StackError> {
    let program = faultline_harness::stack::service_bin_dir().join("gateway");
    let failed = |message: String| StackError::Io {
        action: format!("minting a token with {} mint-token", program.display()),
        message,
    };
    let output = tokio::process::Command::new(&program)
        .args(["mint-token", "--secret", JWT_SECRET, "--subject", "bench"])
        .output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
