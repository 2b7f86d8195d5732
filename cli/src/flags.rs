//! The command line: every subcommand, flag and its help, and nothing else. Each command's
//! arguments are a struct of their own, so a flag is added in one place.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "faultline",
    version,
    about = "Contract testing and chaos engineering for microservices, on real Postgres, Kafka and Toxiproxy."
)]
pub struct Cli {
    /// The system description, for the commands that start or validate against a system
    /// [default: ./faultline.toml]. The reference system: services/faultline.toml.
    #[arg(long, global = true, env = "FAULTLINE_SYSTEM", value_name = "FILE")]
    pub system: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write a commented starter faultline.toml and a first scenario into DIR (default: the
    /// current folder), both valid as written. Never overwrites a file.
    Init {
        /// Where to write them.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// The run's infrastructure: Postgres, Kafka and Toxiproxy.
    Stack {
        #[command(subcommand)]
        command: StackCommand,
    },
    /// Chaos scenarios.
    Chaos {
        #[command(subcommand)]
        command: ChaosCommand,
    },
    /// Measurements of the harness itself.
    Bench {
        /// Which build of the system's `{bin:…}` services to time: `release` builds them
        /// once with cargo's release profile from faultline's source tree; `as-is` runs the
        /// ones beside faultline (FAULTLINE_SERVICE_BIN_DIR or its own target folder).
        #[arg(long, global = true, value_enum, default_value_t = ServicesBuild::Release)]
        services_build: ServicesBuild,
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Resilience reports of chaos runs (the folders `chaos run` writes).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Contracts: provider verification of pact files, schema and pact compatibility.
    Contracts {
        #[command(subcommand)]
        command: ContractsCommand,
    },
    /// The contract broker (published pacts, verification results, deployments).
    Broker {
        #[command(subcommand)]
        command: BrokerCommand,
    },
}

#[derive(Subcommand)]
pub enum BrokerCommand {
    /// Serve the broker until interrupted. Configuration from the environment:
    /// FAULTLINE_BROKER_DATABASE_URL (its own Postgres database; migrated at start),
    /// FAULTLINE_BROKER_WRITE_TOKEN (bearer token for writes), FAULTLINE_BROKER_READ_TOKEN
    /// (optional: then reads need a token too).
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9292")]
    pub addr: SocketAddr,
}

/// Where the broker is and how to authenticate.
#[derive(Args, Clone)]
pub struct BrokerArgs {
    /// The broker's base URL.
    #[arg(long, env = "FAULTLINE_BROKER_URL", value_parser = http_url)]
    pub broker_url: String,
    /// Bearer token (the write token for publishing and recording).
    #[arg(long, env = "FAULTLINE_BROKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl BrokerArgs {
    pub fn client(&self) -> faultline_broker::BrokerClient {
        faultline_broker::BrokerClient::new(&self.broker_url, self.token.clone())
    }
}

#[derive(Subcommand)]
pub enum ContractsCommand {
    /// Verify pact files against the real providers: starts the reference system (real
    /// Postgres, Kafka, Toxiproxy; services in test mode), sets each interaction's provider
    /// states, replays it, reads message interactions from Kafka. Writes verification.json,
    /// verification.junit.xml and verification.html. Exit 0 when every interaction holds, 1 when one fails, 2 for
    /// unreadable pacts (nothing is started), 130 when interrupted.
    Verify(VerifyArgs),
    /// Publish pact files to the broker for a consumer version and branch (one request per
    /// consumer, each all or nothing). Exit 0 published (or already published identically),
    /// 1 refused (a different pact for the same version: 409; a malformed pact: 400), 2 for
    /// unreadable files (nothing sent).
    Publish(PublishArgs),
    /// Can this version of a pacticipant be deployed to an environment? Exit 0 yes, 1 no
    /// (printing what is missing or failed) or when the broker cannot answer.
    CanIDeploy(CanIDeployArgs),
    /// Record that a version is now deployed to (or, with --release, released in) an
    /// environment.
    RecordDeployment(RecordDeploymentArgs),
    /// Compare two versions of an event's JSON Schema, or of a pact file. Schemas: exit 0 when
    /// compatible, 1 when a change breaks (each shown with a counterexample payload). Pacts:
    /// exit 0 when the new one asks nothing new of the provider, 1 when it does (each changed
    /// interaction with a counterexample where the matching rules show one). 2 for unreadable
    /// input.
    Diff(DiffArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Only the pacts whose provider is P.
    #[arg(long)]
    pub provider: Option<String>,
    /// A folder of *.json pact files, or one file [default: contracts/pacts].
    #[arg(long)]
    pub pacts: Option<PathBuf>,
    /// Verify against this already running provider instead of starting the reference
    /// system (needs --provider; states go to URL/admin/provider-states).
    #[arg(long, requires = "provider")]
    pub provider_url: Option<String>,
    /// With --provider-url: Kafka bootstrap servers to read the provider's messages from.
    #[arg(long, requires = "provider_url")]
    pub kafka_bootstrap: Option<String>,
    /// Where the results go [default: reports/contracts-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fetch the pacts for verification from this broker instead of files (needs
    /// --provider and --provider-version; pending pacts do not fail the run).
    #[arg(long, requires_all = ["provider", "provider_version"], conflicts_with = "pacts", value_parser = http_url)]
    pub broker_url: Option<String>,
    /// Bearer token for the broker.
    #[arg(long, env = "FAULTLINE_BROKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The provider version being verified (recorded with published results).
    #[arg(long)]
    pub provider_version: Option<String>,
    /// The provider's branch (pending pacts are judged per branch).
    #[arg(long)]
    pub provider_branch: Option<String>,
    /// Consumer version selectors as JSON objects (repeatable) [default: {"mainBranch":
    /// true} and {"deployedOrReleased": true}].
    #[arg(long)]
    pub consumer_version_selectors: Vec<String>,
    /// Publish the results to the broker.
    #[arg(long, requires = "broker_url")]
    pub publish: bool,
    /// The CI build's URL, recorded with published results.
    #[arg(long)]
    pub build_url: Option<String>,
}

#[derive(Args)]
pub struct PublishArgs {
    /// The consumer version (e.g. the git commit).
    #[arg(long)]
    pub version: String,
    /// The consumer's branch.
    #[arg(long)]
    pub branch: Option<String>,
    /// A folder of *.json pact files, or one file [default: contracts/pacts].
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

#[derive(Args)]
pub struct CanIDeployArgs {
    #[arg(long)]
    pub pacticipant: String,
    #[arg(long)]
    pub version: String,
    #[arg(long)]
    pub to_environment: String,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

#[derive(Args)]
pub struct RecordDeploymentArgs {
    #[arg(long)]
    pub pacticipant: String,
    #[arg(long)]
    pub version: String,
    #[arg(long)]
    pub environment: String,
    /// A release (stays supported beside other releases) rather than a deployment
    /// (replaces the version deployed there before).
    #[arg(long)]
    pub release: bool,
    /// Create the environment when the broker does not know it.
    #[arg(long)]
    pub create_environment: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The earlier schema.
    pub old: PathBuf,
    /// The later schema.
    pub new: PathBuf,
    /// backward: new readers read old data; forward: old readers read new data; full: both.
    #[arg(long, default_value = "backward")]
    pub mode: faultline_contracts::compat::Mode,
    /// Earlier versions (files, or folders of *.json taken in name order), oldest first:
    /// then every version in HISTORY.., OLD, NEW is checked against all earlier ones.
    #[arg(long, num_args = 1..)]
    pub history: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum StackCommand {
    /// Start the infrastructure the system description asks for (Postgres, Kafka, Toxiproxy,
    /// a proxy per link), print where everything listens, then tear it down (or hold it
    /// until Ctrl-C with --hold).
    Up(StackUpArgs),
    /// Remove containers and networks that crashed runs on this host left behind.
    Sweep,
}

#[derive(Args)]
pub struct StackUpArgs {
    /// Keep the stack running until interrupted.
    #[arg(long)]
    pub hold: bool,
    /// Print the endpoints as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Save the containers' logs to this folder before tearing down.
    #[arg(long)]
    pub logs: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ChaosCommand {
    /// List the scenarios in a folder (default: the shipped ones), validating each.
    List(ChaosListArgs),
    /// Run a scenario file, or every scenario in a folder, each on a fresh stack.
    Run(ChaosRunArgs),
    /// Find the faults that break the system: run the scenario's workload once without
    /// faults, recording every call between services and every consumer group, then run one
    /// experiment per fault (each request fault at each call site, each kill at each point, a
    /// redelivery per consumer) and the combinations their runs reveal, on one stack reset
    /// between experiments, each judged by the scenario's checkers, a liveness probe, the
    /// answers users got and the fault's blast radius.
    /// Writes explore.json, explore.html and junit.xml into --out; running it again resumes.
    Explore(ChaosExploreArgs),
}

#[derive(Args)]
pub struct ChaosExploreArgs {
    /// The base scenario: its workload (keep it short: each experiment runs it), its
    /// expectations and probes; its own faults are left out.
    pub scenario: PathBuf,
    /// At most this many experiments in this session.
    #[arg(long, value_parser = at_least_one)]
    pub budget: Option<usize>,
    /// Start no experiment after this long, such as 10m.
    #[arg(long, value_parser = duration)]
    pub time: Option<std::time::Duration>,
    /// The workload's seed and the experiments' order (default: the scenario's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long a delay experiment holds each request, at every call site [default: 5s, or
    /// 2s past the longest timeout the description states for the call's caller or callee].
    #[arg(long, value_parser = duration)]
    pub delay: Option<std::time::Duration>,
    /// The exploration's folder [default: reports/explore-<scenario>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start over instead of resuming the exploration in --out.
    #[arg(long)]
    pub fresh: bool,
    /// Report failures as found, without confirming and shrinking each to a reproducer.
    #[arg(long)]
    pub no_shrink: bool,
    /// At most this many runs for confirming and shrinking one failure.
    #[arg(long, default_value_t = 30, value_parser = at_least_one)]
    pub shrink_runs: usize,
    /// Run only the experiments whose id (KIND@LINK METHOD ROUTE, as listed in explore.json)
    /// contains this text (repeatable); the others stay pending.
    #[arg(long)]
    pub only: Vec<String>,
    /// Stop once a failure has been found and shrunk.
    #[arg(long)]
    pub until_failure: bool,
    /// How to reset the stack between experiments, over the description's `reset`: warm
    /// keeps the services running and empties their tables and topics (docs/system-description.md).
    #[arg(long, value_parser = ["fresh", "warm"])]
    pub reset: Option<String>,
    /// Also explore the statements of each service's conversation with Postgres, as
    /// discovery saw them: sql-error (40001), sql-drop-answer and sql-delay at each.
    #[arg(long)]
    pub statements: bool,
    /// Also explore the produces, fetches and offset commits of each service's conversation
    /// with Kafka, as discovery saw them: kafka-error, kafka-drop-answer, kafka-kill-sent and
    /// kafka-kill-answered at each produce and offset commit, kafka-hold at each fetch.
    #[arg(long)]
    pub broker_requests: bool,
    /// Extra environment for one service, over the description's: SERVICE:VARIABLE=VALUE
    /// (repeatable).
    #[arg(long = "service-env", value_name = "SERVICE:VARIABLE=VALUE", value_parser = service_env)]
    pub service_env: Vec<(String, String, String)>,
}

/// `order:ORDER_SEEDED_BUGS=order-no-attempt-timeout`.
fn service_env(text: &str) -> Result<(String, String, String), String> {
    let expected = || format!("expected SERVICE:VARIABLE=VALUE, found {text:?}");
    let (service, rest) = text.split_once(':').ok_or_else(expected)?;
    let (variable, value) = rest.split_once('=').ok_or_else(expected)?;
    if service.is_empty() || variable.is_empty() {
        return Err(expected());
    }
    Ok((service.to_string(), variable.to_string(), value.to_string()))
}

/// A duration such as 500ms, 30s or 10m.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    faultline_chaos::scenario::fields::parse_duration(text)
        .ok_or_else(|| format!("expected a duration such as 500ms, 30s or 10m, found {text:?}"))
}

#[derive(Args)]
pub struct ChaosListArgs {
    /// Folder of scenario files.
    pub dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct ChaosRunArgs {
    /// A scenario file or a folder of them.
    pub path: PathBuf,
    /// The workload's seed (default: each scenario's own).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where each run's folder is written.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Extra environment for one service, over the description's: SERVICE:VARIABLE=VALUE
    /// (repeatable), as explore takes it: a reproducer of a bug switched on this way replays.
    #[arg(long = "service-env", value_name = "SERVICE:VARIABLE=VALUE", value_parser = service_env)]
    pub service_env: Vec<(String, String, String)>,
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// The runs in the reports folder, newest first, with their verdicts.
    List {
        /// The reports folder.
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
    },
    /// Print the path of a run's report.html (and open it in a browser with --browser).
    Open {
        /// A run folder, its name in the reports folder, or the start of one (a scenario's
        /// name gives its newest run).
        run: String,
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
        /// Open the page with $BROWSER, or xdg-open.
        #[arg(long)]
        browser: bool,
    },
    /// What changed from run A to run B: verdicts, request latency and error rate.
    Diff {
        a: String,
        b: String,
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
    },
    /// Rewrite the reports folder's index.html from the runs there.
    Index {
        #[arg(long, default_value = "reports")]
        dir: PathBuf,
    },
}

/// `bench saga --links`: [`faultline_harness::bench::Links`] as a flag.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Links {
    /// Straight, as pgbench reaches Postgres: the system without faultline's instruments.
    /// Kafka stays behind its per-client Toxiproxy proxies, which its broker advertises.
    Direct,
    /// Through Toxiproxy, as in a chaos run (with no fault on them).
    Toxiproxy,
}

impl From<Links> for faultline_harness::bench::Links {
    fn from(links: Links) -> Self {
        match links {
            Links::Direct => Self::Direct,
            Links::Toxiproxy => Self::Toxiproxy,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServicesBuild {
    Release,
    AsIs,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Orders per second and p50/p99 through the gateway at several concurrencies, beside
    /// pgbench on the same Postgres.
    Saga(BenchSagaArgs),
    /// Contract verification throughput and wall time on one reference stack: faultline's
    /// verifier beside the official `pact verifier` on the same pacts and providers.
    Contracts(BenchContractsArgs),
    /// Cold start of each container to ready, whole stack to ready, and teardown.
    Infra(BenchInfraArgs),
    /// What a link's request proxy adds to a request: keyed POSTs to a callee on 127.0.0.1,
    /// straight and through a request proxy, at each concurrency (no stack, no system).
    Proxy(BenchProxyArgs),
}

#[derive(Args)]
pub struct BenchProxyArgs {
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8], value_parser = at_least_one)]
    pub concurrency: Vec<usize>,
    /// Requests each way at each level.
    #[arg(long, default_value_t = 4000, value_parser = at_least_one)]
    pub requests: usize,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchSagaArgs {
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16], value_parser = at_least_one)]
    pub concurrency: Vec<usize>,
    /// Orders placed at each level.
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    pub orders: usize,
    /// How the services reach Postgres and each other.
    #[arg(long, value_enum, default_value_t = Links::Direct)]
    pub links: Links,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchContractsArgs {
    /// Verification rounds (each: every verifier once).
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
    pub iterations: usize,
    /// A folder of pact files [default: contracts/pacts].
    #[arg(long)]
    pub pacts: Option<PathBuf>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchInfraArgs {
    /// How many times to start and tear down the stack.
    #[arg(long, default_value_t = 3, value_parser = at_least_one)]
    pub iterations: usize,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A count of one or more: a measurement of nothing measures nothing.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("expected 1 or more, found 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a whole number of 1 or more: {e}")),
    }
}

/// An `http://` or `https://` URL with a host.
fn http_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| format!("expected a URL such as http://127.0.0.1:9292: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected an http:// or https:// URL with a host".into());
    }
    Ok(text.to_string())
}
