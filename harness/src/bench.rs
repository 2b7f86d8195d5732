//! Benchmarks of the harness itself, run by `faultline bench`. They measure; nothing asserts a
//! duration. Numbers go to stdout as a table and as JSON.
//!
//! `faultline bench infra` starts and tears down the whole stack `iterations` times and reports,
//! per phase, the minimum, median and maximum: each container from creation to its readiness
//! condition (Toxiproxy API answers, Postgres `SELECT 1`, Kafka metadata through a proxy), the
//! whole stack to ready (links included), and teardown (every container and the network gone).
//!
//! The reference system's own benchmark (`faultline bench saga`) lives with it, in the
//! `faultline-reference` crate.
//!
//! What is timed is named with the numbers ([`Builds`]): faultline's own build, and the
//! services' — by default a release build that [`build_release`] makes once with cargo, so
//! that no figure is a debug build's by accident.
//!
//! Layer 6 (tools) of the harness ([layers](crate#layers)): may import any layer below it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::infra::{Infra, InfraError};
use crate::stack::{Stack, StackConfig};
use crate::system::System;

/// Which builds a benchmark timed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Builds {
    /// faultline's own build (its verifier, its workload clients): `debug` or `release`.
    pub faultline: String,
    /// The services' build: `release` when the benchmark built them, otherwise the name of
    /// the folder they were run from (`debug` for `target/debug`).
    pub services: String,
    /// Where the services' binaries were run from.
    pub services_dir: std::path::PathBuf,
}

impl Builds {
    /// The table's first line.
    pub fn line(&self) -> String {
        format!(
            "builds: faultline {}, services {} ({})\n",
            self.faultline,
            self.services,
            self.services_dir.display()
        )
    }
}

/// The profile this faultline was compiled with.
pub fn faultline_build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// How a benchmarked system's services reach Postgres and each other (an extension's
/// benchmarks take it; it lives beside [`Benchmark`](crate::extension::Benchmark)).
pub use crate::extension::Links;

/// Whether a `docker-proxy` process (the Docker engine's userland proxy for published ports)
/// runs on this host: asked while a stack is up, whether every connection to its containers
/// passes through one. An engine elsewhere, or a host without `/proc`, answers false.
pub fn docker_proxy_running() -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|comm| comm.trim_end() == "docker-proxy")
    })
}

/// Builds `binaries` once with cargo's release profile in the workspace at `workspace` (cargo's
/// own output goes to this process's stderr) and returns the folder they are in, as cargo's
/// metadata names the target folder (so `CARGO_TARGET_DIR` and cargo's config count).
pub fn build_release(workspace: &std::path::Path, binaries: &[String]) -> Result<std::path::PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(&cargo);
    build
        .current_dir(workspace)
        .args(["build", "--release", "--workspace"]);
    for binary in binaries {
        build.args(["--bin", binary]);
    }
    let status = build
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running cargo in {}: {e}", workspace.display()))?;
    if !status.success() {
        return Err(format!(
            "`cargo build --release` of {} in {} failed ({status})",
            binaries.join(", "),
            workspace.display()
        ));
    }
    let metadata = std::process::Command::new(&cargo)
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    let target = serde_json::from_slice::<serde_json::Value>(&metadata.stdout)
        .ok()
        .and_then(|m| m["target_directory"].as_str().map(std::path::PathBuf::from))
        .ok_or_else(|| "cargo metadata did not name the target folder".to_string())?;
    Ok(target.join("release"))
}

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
    let config = crate::infra::InfraConfig::for_system(system);
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
    /// Mean time of one interaction, by kind (`Synchronous/HTTP`, `Asynchronous/Messages`),
    /// over every run: where a verifier reports each interaction's time (faultline's does).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mean_interaction_ms: BTreeMap<String, f64>,
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
        for v in self.verifiers.iter().filter(|v| !v.mean_interaction_ms.is_empty()) {
            let means: Vec<String> = v
                .mean_interaction_ms
                .iter()
                .map(|(kind, ms)| format!("{kind} {ms:.1} ms"))
                .collect();
            out.push_str(&format!("{}, one interaction on average: {}\n", v.verifier, means.join(", ")));
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
        mean_interaction_ms: BTreeMap::new(),
    }
}

/// Mean time of one interaction by kind, over `reports`.
fn mean_by_kind(reports: &[faultline_contracts::verify::Report]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (Duration, u32)> = BTreeMap::new();
    for interaction in reports.iter().flat_map(|r| &r.pacts).flat_map(|p| &p.interactions) {
        let (sum, n) = sums.entry(interaction.kind.clone()).or_default();
        *sum += interaction.duration;
        *n += 1;
    }
    sums.into_iter()
        .map(|(kind, (sum, n))| (kind, round(sum.as_secs_f64() * 1000.0 / f64::from(n))))
        .collect()
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
    // Verification injects no faults: the links between services skip the request proxies.
    let stack = Stack::start(
        system,
        StackConfig {
            without_request_proxies: true,
            ..StackConfig::default()
        },
    )
    .await?;
    let stack_start_ms = started.elapsed().as_secs_f64() * 1000.0;
    let none = std::collections::BTreeMap::new();
    let mut runs: [Vec<Duration>; 4] = Default::default();
    let mut failed = [0usize; 4];
    let official_available = pact_verifier.is_file();
    let bootstrap = stack
        .infra()
        .kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
    let mut all_reports = Vec::new();
    for _ in 0..iterations.max(1) {
        let report = verify_pacts(Some(&stack), &pacts, &none).await;
        failed[0] += report.counts().0 - report.counts().1;
        runs[0].push(report.duration);
        all_reports.push(report);
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
        VerifierRuns {
            mean_interaction_ms: mean_by_kind(&all_reports),
            ..verifier_runs(
                "faultline",
                "all (HTTP + messages)",
                count(&pacts),
                all_runs,
                failed[0],
            )
        },
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

/// One concurrency level of `faultline bench proxy`: the same requests sent straight to a
/// callee on 127.0.0.1 and through a [`RequestProxy`](crate::intercept::RequestProxy) in front
/// of it, in microseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProxyLevel {
    pub concurrency: usize,
    pub requests: usize,
    pub direct_p50_us: f64,
    pub direct_p99_us: f64,
    pub direct_per_second: f64,
    pub proxied_p50_us: f64,
    pub proxied_p99_us: f64,
    pub proxied_per_second: f64,
    /// What the proxy adds to a request's median.
    pub added_p50_us: f64,
}

/// The result of `faultline bench proxy`.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyBench {
    pub levels: Vec<ProxyLevel>,
}

impl ProxyBench {
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| concurrency | requests | direct p50 / p99 | through the proxy p50 / p99 | added at p50 | direct req/s | proxied req/s |\n|---|---|---|---|---|---|---|\n",
        );
        for l in &self.levels {
            out.push_str(&format!(
                "| {} | {} | {:.0} / {:.0} µs | {:.0} / {:.0} µs | {:.0} µs | {:.0} | {:.0} |\n",
                l.concurrency,
                l.requests,
                l.direct_p50_us,
                l.direct_p99_us,
                l.proxied_p50_us,
                l.proxied_p99_us,
                l.added_p50_us,
                l.direct_per_second,
                l.proxied_per_second
            ));
        }
        out
    }
}

/// `faultline bench proxy`: what a link's request proxy costs a request. A callee on
/// 127.0.0.1 answers every POST 201 with a small JSON body; `requests` POSTs, each with its own
/// idempotency key, go to it at each concurrency, first straight, then through a request proxy
/// that counts calls in flight and notes each keyed answer, as on every link of a run. The
/// client keeps its connections, as the services' clients do. Nothing starts but the two
/// listeners; nothing leaves 127.0.0.1.
pub async fn proxy(concurrency: &[usize], requests: usize) -> std::io::Result<ProxyBench> {
    let callee = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callee_address = callee.local_addr()?;
    let served = tokio_util::sync::CancellationToken::new();
    crate::intercept::serve_http(callee, served.clone(), |_, body| async move {
        crate::intercept::answer(201, &[], format!("{{\"ok\":true,\"received\":{}}}", body.len()))
    });
    // The callee stops when the benchmark ends, however it ends.
    let _stop = crate::intercept::StopOnDrop(served);
    let proxy = crate::intercept::RequestProxy::start("bench->callee", callee_address).await?;
    proxy.watch_idempotency(hyper::header::HeaderName::from_static("idempotency-key"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(std::io::Error::other)?;
    let direct = format!("http://{callee_address}/charges");
    let proxied = format!("http://{}/charges", proxy.address());
    let mut levels = Vec::new();
    for &c in concurrency {
        // Warm both paths' connections first.
        for url in [&direct, &proxied] {
            send_all(&client, url, c * 4, c).await?;
        }
        // Two rounds each, alternating, so neither path has the machine to itself.
        let (mut direct_latencies, mut direct_wall) = (Vec::new(), Duration::ZERO);
        let (mut proxied_latencies, mut proxied_wall) = (Vec::new(), Duration::ZERO);
        for round in 0..2 {
            let half = requests / 2 + (requests % 2) * round;
            let (latencies, wall) = send_all(&client, &direct, half, c).await?;
            direct_latencies.extend(latencies);
            direct_wall += wall;
            let (latencies, wall) = send_all(&client, &proxied, half, c).await?;
            proxied_latencies.extend(latencies);
            proxied_wall += wall;
        }
        // What the run would judge after: the keyed answers stay bounded by the run's length.
        proxy.forget();
        let us = |samples: &[Duration], q: f64| {
            crate::checkers::percentile(samples, q).map_or(0.0, |d| round(d.as_secs_f64() * 1e6))
        };
        let per_second = |wall: Duration| round(requests as f64 / wall.as_secs_f64().max(1e-9));
        levels.push(ProxyLevel {
            concurrency: c,
            requests,
            direct_p50_us: us(&direct_latencies, 0.5),
            direct_p99_us: us(&direct_latencies, 0.99),
            direct_per_second: per_second(direct_wall),
            proxied_p50_us: us(&proxied_latencies, 0.5),
            proxied_p99_us: us(&proxied_latencies, 0.99),
            proxied_per_second: per_second(proxied_wall),
            added_p50_us: round(us(&proxied_latencies, 0.5) - us(&direct_latencies, 0.5)),
        });
    }
    Ok(ProxyBench { levels })
}

/// Sends `requests` keyed POSTs to `url` from `concurrency` tasks; each one's latency, and the
/// wall time of all. A request that fails is an error: the benchmark has no faults.
async fn send_all(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
) -> std::io::Result<(Vec<Duration>, Duration)> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, next) = (client.clone(), url.to_string(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= requests {
                    return Ok::<_, std::io::Error>(latencies);
                }
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("idempotency-key", format!("bench-{n}-{}", uuid::Uuid::new_v4()))
                    .body(r#"{"amount_cents":1234}"#)
                    .send()
                    .await
                    .map_err(std::io::Error::other)?;
                let status = answer.status();
                answer.bytes().await.map_err(std::io::Error::other)?;
                if status != reqwest::StatusCode::CREATED {
                    return Err(std::io::Error::other(format!("{url} answered {status}")));
                }
                latencies.push(sent.elapsed());
            }
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.map_err(std::io::Error::other)??);
    }
    Ok((latencies, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_named_docker_proxy_is_seen() {
        // A copy of `sleep` under that name stands in for the engine's proxy.
        let dir = std::env::temp_dir().join(format!("faultline-fake-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("docker-proxy");
        std::fs::copy("/bin/sleep", &fake).unwrap();
        let mut child = std::process::Command::new(&fake).arg("30").spawn().unwrap();
        // The child carries its new name only once it has exec'd, a moment after the spawn.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = docker_proxy_running();
        while !seen && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            seen = docker_proxy_running();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(seen, "a running process named docker-proxy was not found in /proc");
    }

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

    /// The benchmark measures both paths at each level: every request answered (one that is
    /// not fails the benchmark), latencies and rates from real requests.
    #[tokio::test]
    async fn the_proxy_benchmark_times_both_paths_at_each_level() {
        let result = proxy(&[1, 3], 40).await.unwrap();
        assert_eq!(result.levels.iter().map(|l| l.concurrency).collect::<Vec<_>>(), vec![1, 3]);
        for level in &result.levels {
            assert_eq!(level.requests, 40);
            assert!(level.direct_p50_us > 0.0 && level.direct_p50_us <= level.direct_p99_us, "{level:?}");
            assert!(level.proxied_p50_us > 0.0 && level.proxied_p50_us <= level.proxied_p99_us, "{level:?}");
            assert!(level.direct_per_second > 0.0 && level.proxied_per_second > 0.0, "{level:?}");
        }
        assert!(result.table().lines().count() == 4, "{}", result.table());
    }
}
