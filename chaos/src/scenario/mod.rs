//! Scenario files: a chaos run as data.
//!
//! A scenario (TOML, under `chaos/scenarios/`) says what load to drive, which faults to inject
//! when, what must hold before the faults and after healing, and what the run is expected to
//! show. Everything a run does can be read from the file plus its seed.
//!
//! ```
//! use faultline_chaos::scenario::{Scenario, FaultKind, Target};
//! use faultline_chaos::topology::Topology;
//! let topology = Topology::new(
//!     ["payment", "order"],
//!     ["postgres"],
//!     [("order", "payment"), ("order", "postgres"), ("payment", "postgres")],
//! );
//! let scenario = Scenario::parse("example.toml", &topology, r#"
//!     name = "payment-latency-opens-circuit"
//!     description = "Slow payments open order->payment's circuit, which recovers after healing."
//!     seed = 7
//!     [workload]
//!     requests = 100
//!     concurrency = 4
//!     duration = "30s"
//!     [[workload.operations]]
//!     name = "pay"
//!     service = "order"
//!     method = "POST"
//!     path = "/orders"
//!     [[faults]]
//!     start = "5s"
//!     duration = "10s"
//!     target = "order->payment"
//!     kind = "latency"
//!     latency = "2s"
//! "#).unwrap();
//! assert!(matches!(scenario.faults[0].target, Target::Link { .. }));
//! assert!(matches!(scenario.faults[0].kind, FaultKind::Toxic { .. }));
//! ```
//!
//! Parsing is strict: an unknown field, an unknown target or fault kind, a value out of its
//! range or a fault outside the run is a [`ScenarioError`] naming the file, the field
//! (`faults[1].latency`) and what was expected — before anything starts. Targets are checked
//! against the [`Topology`] of the system the scenario runs on: a fault can only hit a
//! service, shared server or link that system has. The README has the reference of every
//! field.

pub mod answers;
pub mod blast;
pub mod fields;
pub mod intercept;
pub mod request;
pub mod kafka;
pub mod statement;
mod vocabulary;

use std::path::Path;
use std::time::Duration;

use crate::topology::Topology;
use crate::toxiproxy::{Stream, ToxicKind};
use fields::Fields;
pub use fields::{parse_duration, MAX_DURATION};
pub use vocabulary::{Vocabulary, WorkloadReader};

/// A scenario file that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct ScenarioError {
    /// The file (or the name given to [`Scenario::parse`]).
    pub file: String,
    /// The field's path, such as `faults[1].latency`; `(file)` for the file as a whole.
    pub field: String,
    /// What was wrong and what was expected.
    pub reason: String,
}

impl ScenarioError {
    fn new(file: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A whole chaos run, as a file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name, `kebab-case`, usually the pattern the scenario proves.
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    pub description: String,
    /// The default seed for the workload generator (overridable per run).
    pub seed: u64,
    /// The load driven through the gateway.
    pub workload: Workload,
    /// The fault schedule, in file order.
    pub faults: Vec<Fault>,
    /// Probes checked before the faults and after healing.
    pub steady_state: Vec<Probe>,
    /// What the run must show.
    pub expectations: Expectations,
}

/// The client operations a run drives: a declarative HTTP workload (`requests`, `operations`)
/// for any described system, or the system's own workload written in Rust (its fields, read
/// by its [`WorkloadReader`], are kept in `params`).
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// The declarative HTTP workload, when the scenario gives `operations`.
    pub http: Option<request::HttpWorkload>,
    /// The fields of `[workload]` that belong to the system's own workload (empty for an
    /// HTTP workload), as written; its [`WorkloadReader`] validated them.
    pub params: toml::Table,
    /// How many clients send at once.
    pub concurrency: u32,
    /// Upper bound of the load phase; the run stops placing orders when it passes.
    pub duration: Duration,
    /// Fraction of orders sent a second time with the same idempotency key.
    pub duplicate_rate: f64,
    /// Fraction of orders retried by the client after a failure or timeout.
    pub retry_rate: f64,
    /// How long a client of a declarative workload waits for an answer before it counts the
    /// outcome as unknown (`client_timeout`, default 5 s): longer than the system's own
    /// timeouts, or a hold or delay measures the client instead of the system.
    pub client_timeout: Duration,
}

/// The default [`Workload::client_timeout`].
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// One planned fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it starts, from the beginning of the load phase.
    pub start: Duration,
    /// How long it lasts before it is healed.
    pub duration: Duration,
    /// What it hits.
    pub target: Target,
    /// What it does.
    pub kind: FaultKind,
}

/// What a fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A link `client->server`, faulted at its Toxiproxy proxy.
    Link {
        /// The calling side.
        client: String,
        /// The called side.
        server: String,
    },
    /// A service process.
    Process {
        /// The service.
        service: String,
    },
    /// A container of a shared server.
    Container {
        /// `postgres` or `kafka`.
        name: String,
    },
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// A Toxiproxy toxic on a link.
    Toxic {
        /// The toxic with its attributes.
        toxic: ToxicKind,
        /// The direction it applies to.
        stream: Stream,
        /// The fraction of connections it applies to.
        toxicity: f32,
    },
    /// The link's proxy disabled: connections refused and existing ones closed.
    Partition,
    /// The process killed with SIGKILL at the start and started again when the fault ends.
    Kill,
    /// The process stopped with SIGSTOP, continued with SIGCONT when the fault ends.
    Pause,
    /// The container paused (frozen), unpaused when the fault ends.
    ContainerPause,
    /// The container stopped, started again when the fault ends.
    ContainerStop,
    /// Requests on a link between two services, picked by method and path, answered, cut,
    /// delayed, held or sent twice by faultline's request proxy on that link.
    Request(intercept::RequestFault),
    /// Statements on a service's link to Postgres, picked by how they start, failed with a
    /// SQLSTATE, delayed, or run with their answer lost, by faultline's statement proxy on
    /// that link.
    Statement(statement::StatementFault),
    /// Requests on a service's link to Kafka — produces, fetches, offset commits — picked by
    /// topic or consumer group, answered with a broker error, run with their answer lost,
    /// delayed, held, or made the point where their sender is stopped, by faultline's broker
    /// proxy on that link.
    Kafka(kafka::KafkaFault),
    /// A consumer's events delivered again: the service stopped gracefully (so it leaves its
    /// group), its group's committed offsets on `topic` moved back by `events` per partition
    /// (not before the first retained record), and the service started again when the fault
    /// heals — it then reads those events a second time, behind the backlog that built
    /// meanwhile.
    Redeliver {
        /// The topic whose offsets move.
        topic: String,
        /// The service's consumer group.
        group: String,
        /// How many events back, per partition.
        events: u32,
    },
}

/// A steady-state probe: a measurement with its tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// What the probe is called in reports.
    pub name: String,
    /// What it measures and the tolerance.
    pub check: ProbeCheck,
    /// Tried again (a new sample each time) until it holds, for at most this long; once
    /// when `None`. For "good operations complete again after the heal": a breaker the fault
    /// opened may admit only a trial call at first.
    pub within: Option<std::time::Duration>,
}

/// The measurements a probe can make.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeCheck {
    /// Every service answers `/health/ready`.
    Ready,
    /// Of `sample` operations of the workload, at least `min` (a fraction) are ok (with a
    /// completion check: reach a final state in its `ok`).
    SuccessRate {
        /// Operations sent for the probe.
        sample: u32,
        /// Lowest acceptable fraction.
        min: f64,
    },
    /// Of `sample` operations of the workload, the 99th percentile latency is at most `max`.
    P99Latency {
        /// Operations sent for the probe.
        sample: u32,
        /// Highest acceptable p99.
        max: Duration,
    },
}

/// What the run must show.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expectations {
    /// Named invariants to check: checkers registered for the system (see [`Vocabulary`]);
    /// the system workload's defaults when the file names none.
    pub invariants: Vec<String>,
    /// Circuit-breaker behaviour per link.
    pub circuits: Vec<CircuitExpectation>,
    /// Service-level objectives over the whole run.
    pub slo: Option<Slo>,
    /// SQL invariants on the described databases.
    pub sql: Vec<SqlCheck>,
    /// Invariants on the records of the described Kafka topics.
    pub kafka: Vec<KafkaCheck>,
    /// Probes of the services' HTTP APIs after the run.
    pub http: Vec<HttpCheck>,
    /// `answers = false`: the workload's answers are not judged against their operations'
    /// promises (see [`answers`]); they are by default.
    pub unjudged_answers: bool,
    /// How the operations outside a fault's reach are judged while it is on (see [`blast`]).
    pub blast_radius: blast::BlastRadius,
}

/// A request to one of the system's services after the run, and the answer it must get.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// The verdict's name, `kebab-case`.
    pub name: String,
    /// A described service that listens on `{port}`.
    pub service: String,
    /// `GET` unless given.
    pub method: String,
    /// The path, starting with `/`.
    pub path: String,
    /// The status the answer must have; any 2xx when not given.
    pub status: Option<u16>,
    /// A JSON pointer into the answer's body and the value it must hold there.
    pub body: Option<(String, serde_json::Value)>,
}

/// An invariant on the records of one Kafka topic, judged after the run on everything the
/// topic holds: each record's identity (`unique`) appears once, every identity a query
/// expects appears (`expected`), and per message key a field of the value only grows
/// (`ordered_by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaCheck {
    /// The verdict's name, `kebab-case`.
    pub name: String,
    /// A topic of the system description's `[kafka]`.
    pub topic: String,
    /// What identifies a record, which must appear at most once.
    pub unique: Option<RecordId>,
    /// A query on a described database whose rows' first column each must appear as an
    /// identity (`unique`) on the topic.
    pub expected: Option<(String, String)>,
    /// A JSON pointer into the record's value: per message key, its number only grows in
    /// offset order.
    pub ordered_by: Option<String>,
}

/// What identifies a Kafka record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordId {
    /// The message key.
    Key,
    /// A header's value.
    Header(String),
    /// A string or number at a JSON pointer of the (JSON) value.
    Value(String),
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key => write!(f, "key"),
            Self::Header(name) => write!(f, "header:{name}"),
            Self::Value(pointer) => write!(f, "value:{pointer}"),
        }
    }
}

/// An invariant written as SQL, judged on the system's databases after the run: `query` must
/// return no rows (each row is a counterexample); or, with `equals`, both queries must return
/// the same single value (conservation: `SELECT sum(balance) …` equals `SELECT 1000`); or,
/// with `rows`, every row of `query` must be among (or none among) the rows of a query on
/// another database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlCheck {
    /// The verdict's name, `kebab-case`.
    pub name: String,
    /// A database of the system description's `[postgres]`.
    pub database: String,
    /// The SELECT that must return no rows (or the value compared with `equals`).
    pub query: String,
    /// A second SELECT whose single value must equal the query's.
    pub equals: Option<String>,
    /// The database `equals` runs on, when not `database` (`equals = { database, query }`).
    pub equals_database: Option<String>,
    /// Rows `query`'s rows must be among, or none among (`in` / `not_in`).
    pub rows: Option<SqlRows>,
}

/// `in = { database, query }` or `not_in = { … }` of an `[[expectations.sql]]`: how the rows
/// of its query relate to the rows of another query, on the same or another database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlRows {
    /// Whether every row must be among the other's (`in`) or none (`not_in`).
    pub among: bool,
    /// The other query's database.
    pub database: String,
    /// The other query; its rows have as many columns as the first's.
    pub query: String,
}

/// How a link's circuit breaker must behave.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitExpectation {
    /// The link, `client->server`.
    pub link: String,
    /// Whether the circuit must open at all during the run.
    pub opens: bool,
    /// When it must open: at most this long after the first fault on the link begins.
    pub opens_within: Option<Duration>,
    /// When it must close again: at most this long after the faults on the link heal.
    pub closes_within: Option<Duration>,
}

/// Service-level objectives.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Highest acceptable p99 latency of the workload clients' requests.
    pub p99_latency: Option<Duration>,
    /// Highest acceptable fraction of failed operations.
    pub error_rate: Option<f64>,
    /// The same objectives over one operation's requests each
    /// (`[expectations.slo.operations.place_order]`), in the file's order of keys.
    pub operations: Vec<OperationSlo>,
}

/// Objectives over the requests of one operation of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationSlo {
    /// The operation's name (every kind of it), or `name (kind)` for one kind.
    pub operation: String,
    /// Highest acceptable p99 latency of its requests.
    pub p99_latency: Option<Duration>,
    /// Highest acceptable fraction of its requests not ok.
    pub error_rate: Option<f64>,
}

impl OperationSlo {
    /// Whether a request of `operation` (of `kind`) is one of those this objective is about.
    pub fn covers(&self, operation: &str, kind: Option<&str>) -> bool {
        self.operation == operation || self.operation == blast::label(operation, kind)
    }
}

impl Scenario {
    /// Reads and validates the scenario file at `path` for a system of `topology`. A
    /// scenario whose `name` differs from its file name is an error, so a run's name always
    /// finds its file.
    pub fn load<'v>(
        path: &Path,
        vocabulary: impl Into<Vocabulary<'v>>,
    ) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::new(&file, "(file)", format!("cannot read: {e}")))?;
        let scenario = Self::parse(&file, vocabulary, &text)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if scenario.name != stem {
            return Err(ScenarioError::new(
                &file,
                "name",
                format!(
                    "expected {stem:?}, the file's name, found {:?}",
                    scenario.name
                ),
            ));
        }
        Ok(scenario)
    }

    /// Reads every `*.toml` scenario in `dir` with [`Scenario::load`], sorted by file name;
    /// the first bad file is the error.
    pub fn load_dir<'v>(
        dir: &Path,
        vocabulary: impl Into<Vocabulary<'v>>,
    ) -> Result<Vec<(std::path::PathBuf, Self)>, ScenarioError> {
        let vocabulary = vocabulary.into();
        let dir_name = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ScenarioError::new(&dir_name, "(directory)", format!("cannot read: {e}"))
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| Self::load(&path, vocabulary).map(|scenario| (path, scenario)))
            .collect()
    }

    /// Parses and validates scenario text for a system of `vocabulary` (a bare [`Topology`]
    /// when the system has no checkers or workload of its own); `file` names it in errors.
    pub fn parse<'v>(
        file: &str,
        vocabulary: impl Into<Vocabulary<'v>>,
        text: &str,
    ) -> Result<Self, ScenarioError> {
        let vocabulary = vocabulary.into();
        let topology = vocabulary.topology;
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| ScenarioError::new(file, "(file)", toml_error(text, &e)))?;
        let mut top = Fields::new(file, "", table);

        let name = top.required_string("name", "the scenario's name in kebab-case")?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(top.error(
                "name",
                format!("expected kebab-case (a-z, 0-9, -), found {name:?}"),
            ));
        }
        let description =
            top.required_string("description", "a sentence saying what the scenario shows")?;
        let seed = top.integer_in("seed", 0..=i64::MAX)?.unwrap_or(0) as u64;

        let mut workload_fields = top
            .table("workload")?
            .ok_or_else(|| top.error("workload", "required: a [workload] table"))?;
        // Operations of its own: the system's invariants are not assumed to apply.
        let own_operations = workload_fields.raw().contains_key("operations");
        let workload = read_workload(&mut workload_fields, &vocabulary)?;
        workload_fields.finish()?;

        let mut faults = Vec::new();
        for mut fault_fields in top.tables("faults")? {
            let fault = read_fault(&mut fault_fields, topology, workload.duration)?;
            fault_fields.finish()?;
            faults.push(fault);
        }

        let mut steady_state = match top.table("steady_state")? {
            Some(mut section) => {
                let probes = read_steady_state(&mut section)?;
                section.finish()?;
                probes
            }
            None => Vec::new(),
        };
        if steady_state.is_empty() {
            steady_state = vocabulary.steady_state.to_vec();
        }

        let expectations = match top.table("expectations")? {
            Some(mut section) => {
                let expectations =
                    read_expectations(&mut section, &vocabulary, &faults, &workload, own_operations)?;
                section.finish()?;
                expectations
            }
            None => Expectations {
                invariants: default_invariants(&vocabulary, &workload, own_operations),
                ..Default::default()
            },
        };
        top.finish()?;

        Ok(Self {
            name,
            description,
            seed,
            workload,
            faults,
            steady_state,
            expectations,
        })
    }
}

/// The longest piece of a line an error shows: enough to recognise the spot, never a whole
/// generated file squeezed onto one line.
const EXCERPT_CHARS: usize = 60;

/// "not valid TOML at line L, column C: what", with a short excerpt around the spot.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    let Some(span) = error.span() else {
        return format!("not valid TOML: {message}");
    };
    let mut at = span.start.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line_number = text[..line_start].matches('\n').count() + 1;
    let before: Vec<char> = text[line_start..at].chars().collect();
    let after: Vec<char> = text[at..line_end].chars().collect();
    let column = before.len() + 1;
    let half = EXCERPT_CHARS / 2;
    let from = before.len().saturating_sub(half);
    let mut excerpt = String::new();
    if from > 0 {
        excerpt.push('…');
    }
    excerpt.extend(&before[from..]);
    excerpt.extend(after.iter().take(half));
    if after.len() > half {
        excerpt.push('…');
    }
    format!(
        "not valid TOML at line {line_number}, column {column}: {message}\n    {}",
        excerpt.trim_end()
    )
}

fn read_workload(
    fields: &mut Fields<'_>,
    vocabulary: &Vocabulary<'_>,
) -> Result<Workload, ScenarioError> {
    let topology = vocabulary.topology;
    let raw = fields.raw().clone();
    let own = if raw.contains_key("operations") {
        Some(read_operations(fields, topology)?)
    } else {
        None
    };
    let http = match (own, vocabulary.described) {
        (Some(own), _) => Some(own),
        (None, Some(described)) => Some(weighted(fields, described)?),
        (None, None) => None,
    };
    let http = match http {
        None => None,
        Some(request::DescribedWorkload { operations, setup }) => {
            let requests = fields
                .integer_in("requests", 1..=1_000_000)?
                .ok_or_else(|| {
                    fields.error("requests", "required: how many operations to send in all")
                })? as u32;
            Some(request::HttpWorkload {
                requests,
                operations,
                setup,
            })
        }
    };
    let concurrency = fields.integer_in("concurrency", 1..=256)?.unwrap_or(1);
    let duration = fields.required_duration("duration")?;
    if duration.is_zero() || duration > MAX_DURATION {
        return Err(fields.error("duration", "expected more than 0s and at most 1h"));
    }
    let duplicate_rate = fields
        .number_in("duplicate_rate", 0.0..=1.0)?
        .unwrap_or(0.0);
    let retry_rate = fields.number_in("retry_rate", 0.0..=1.0)?.unwrap_or(0.0);
    let client_timeout = fields.duration("client_timeout")?.unwrap_or(CLIENT_TIMEOUT);
    if client_timeout.is_zero() || client_timeout > Duration::from_secs(600) {
        return Err(fields.error("client_timeout", "expected more than 0s and at most 10m"));
    }
    let mut params = toml::Table::new();
    if http.is_none() {
        let Some(own) = vocabulary.workload else {
            return Err(fields.error(
                "operations",
                "required: [[workload.operations]] with requests (this system has no workload \
                 of its own)",
            ));
        };
        own.read(fields)?;
        const COMMON: [&str; 8] = [
            "operations",
            "weights",
            "requests",
            "concurrency",
            "duration",
            "duplicate_rate",
            "retry_rate",
            "client_timeout",
        ];
        params = raw
            .into_iter()
            .filter(|(key, _)| !COMMON.contains(&key.as_str()))
            .collect();
    }
    Ok(Workload {
        http,
        params,
        concurrency: concurrency as u32,
        duration,
        duplicate_rate,
        retry_rate,
        client_timeout,
    })
}

/// Reads the `[[operations]]` (at least one) and `[[setup]]` of a workload table — a
/// scenario's `[workload]`, or a system description's, written once for all its scenarios.
/// Operations may share a name only with distinct `kind`s.
pub fn read_operations(
    fields: &mut Fields<'_>,
    topology: &Topology,
) -> Result<request::DescribedWorkload, ScenarioError> {
    let tables = fields.tables("operations")?;
    if tables.is_empty() {
        return Err(fields.error("operations", "expected at least one [[operations]] table"));
    }
    let mut operations = Vec::new();
    for mut operation in tables {
        operations.push(read_operation(&mut operation, topology)?);
        operation.finish()?;
    }
    for (i, op) in operations.iter().enumerate() {
        if operations[..i]
            .iter()
            .any(|o| o.name == op.name && o.kind == op.kind)
        {
            return Err(fields.error(
                &format!("operations[{i}].name"),
                format!(
                    "{:?} is the name of an earlier operation{}: operations sharing a name \
                     need distinct `kind`s",
                    op.name,
                    op.kind
                        .as_ref()
                        .map_or(String::new(), |k| format!(" of the same kind {k:?}"))
                ),
            ));
        }
    }
    if operations.iter().all(|op| op.weight <= 0.0) {
        return Err(fields.error(
            "operations",
            "expected an operation of weight above 0 (weight 0 is sent only when a scenario \
             weights it)",
        ));
    }
    let mut setup = Vec::new();
    for mut operation in fields.tables("setup")? {
        setup.push(read_operation(&mut operation, topology)?);
        operation.finish()?;
    }
    // `{setup:NAME:…}` names a set-up request sent before it: any for an operation, an earlier
    // one for a set-up request.
    let named = |list: &str, i: usize, op: &request::Operation, before: &[request::Operation]| {
        for (header, text) in &op.headers {
            for generator in text.generators() {
                if let request::Generator::Setup { name, .. } = generator {
                    if !before.iter().any(|s| &s.name == name) {
                        let known: Vec<&str> = before.iter().map(|s| s.name.as_str()).collect();
                        return Err(fields.error(
                            &format!("{list}[{i}].headers.{header}"),
                            format!(
                                "{{{generator}}}: no [[setup]] request {name:?} is sent before it; {}",
                                if known.is_empty() {
                                    "none is".to_string()
                                } else {
                                    format!("sent before it: {}", known.join(", "))
                                }
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    };
    for (i, op) in setup.iter().enumerate() {
        named("setup", i, op, &setup[..i])?;
    }
    for (i, op) in operations.iter().enumerate() {
        named("operations", i, op, &setup)?;
    }
    Ok(request::DescribedWorkload { operations, setup })
}

/// The description's operations as a scenario weights them: `[workload.weights]` maps an
/// operation's kind (or its name, when it has no kind) to its weight; operations it does not
/// name are not sent. Without `weights`, the description's own weights hold.
fn weighted(
    fields: &mut Fields<'_>,
    described: &request::DescribedWorkload,
) -> Result<request::DescribedWorkload, ScenarioError> {
    let mut workload = described.clone();
    let Some(value) = fields.value("weights") else {
        workload.operations.retain(|op| op.weight > 0.0);
        return Ok(workload);
    };
    let label = |op: &request::Operation| op.kind.clone().unwrap_or_else(|| op.name.clone());
    let known: Vec<String> = workload.operations.iter().map(label).collect();
    let toml::Value::Table(table) = value else {
        return Err(fields.error(
            "weights",
            format!("expected a table of weights by operation kind ({})", known.join(", ")),
        ));
    };
    let mut weights = std::collections::BTreeMap::new();
    for (key, weight) in table {
        let field = format!("weights.{key}");
        if !known.contains(&key) {
            return Err(fields.error(
                &field,
                format!(
                    "{key:?} is not a kind of the described workload's operations; known: {}",
                    known.join(", ")
                ),
            ));
        }
        let weight = match weight {
            toml::Value::Integer(n) => n as f64,
            toml::Value::Float(x) => x,
            other => {
                return Err(fields.error(
                    &field,
                    format!("expected a number of at least 0, found {}", other.type_str()),
                ))
            }
        };
        if !(0.0..=1e6).contains(&weight) {
            return Err(fields.error(&field, "expected a number from 0 to 1000000"));
        }
        weights.insert(key, weight);
    }
    workload.operations.retain_mut(|op| match weights.get(&label(op)) {
        Some(&weight) if weight > 0.0 => {
            op.weight = weight;
            true
        }
        _ => false,
    });
    if workload.operations.is_empty() {
        return Err(fields.error("weights", "expected at least one weight above 0"));
    }
    Ok(workload)
}

/// The invariants judged when a scenario names none: none for a scenario with operations of
/// its own; for the system's own workload, its Rust workload's choice or, for the workload its
/// description writes, every invariant the system's checkers answer.
fn default_invariants(
    vocabulary: &Vocabulary<'_>,
    workload: &Workload,
    own_operations: bool,
) -> Vec<String> {
    match vocabulary.workload {
        _ if own_operations => Vec::new(),
        Some(own) if workload.http.is_none() => own.default_invariants(),
        _ => vocabulary.invariants.to_vec(),
    }
}

fn read_operation(
    fields: &mut Fields<'_>,
    topology: &Topology,
) -> Result<request::Operation, ScenarioError> {
    let name = fields.required_string("name", "the operation's name")?;
    word(fields, "name", &name)?;
    let kind = fields.string("kind", "the operation's intent, such as \"good\"")?;
    if let Some(kind) = &kind {
        word(fields, "kind", kind)?;
    }
    let (service, method) = read_service_and_method(fields, topology)?;
    let path_text = fields.required_string("path", "the request's path, starting with `/`")?;
    if !path_text.starts_with('/') {
        return Err(fields.error(
            "path",
            format!("expected a path starting with `/`, found {path_text:?}"),
        ));
    }
    let path = request::Text::parse(&path_text, false).map_err(|e| fields.error("path", e))?;
    // 0: sent only when a scenario weights it (`[workload.weights]`).
    let weight = fields.number_in("weight", 0.0..=1e6)?.unwrap_or(1.0);
    let idempotency_key =
        fields.string("idempotency_key", "the name of the header carrying {key}")?;
    let mut headers = Vec::new();
    if let Some(mut header_fields) = fields.table("headers")? {
        for (key, value) in header_fields.named_strings()? {
            let text =
                request::Text::parse(&value, true).map_err(|e| header_fields.error(&key, e))?;
            headers.push((key, text));
        }
        header_fields.finish()?;
    }
    let body = match fields.value("body") {
        None => None,
        Some(value) => Some(
            request::body_of(&value, &fields.path_of("body"))
                .map_err(|(field, reason)| ScenarioError::new(fields.file(), field, reason))?,
        ),
    };
    let completion = match fields.table("completion")? {
        None => None,
        Some(mut check) => {
            let completion = read_completion(&mut check)?;
            check.finish()?;
            Some(completion)
        }
    };
    let answers = match fields.table("answers")? {
        None => answers::Answers::default(),
        Some(mut table) => {
            let answers = answers::read(&mut table)?;
            table.finish()?;
            answers
        }
    };
    Ok(request::Operation {
        name,
        kind,
        service,
        method,
        path,
        weight,
        idempotency_key,
        headers,
        body,
        completion,
        answers,
    })
}

/// A name made of letters, digits, `-` and `_`, or an error naming `field`.
fn word(fields: &Fields<'_>, field: &str, value: &str) -> Result<(), ScenarioError> {
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(fields.error(
            field,
            format!("expected letters, digits, `-` and `_`, found {value:?}"),
        ));
    }
    Ok(())
}

/// A request's `service` (a described one) and `method` (`GET` when not given).
fn read_service_and_method(
    fields: &mut Fields<'_>,
    topology: &Topology,
) -> Result<(String, String), ScenarioError> {
    let service =
        fields.required_string("service", "a described service the request is sent to")?;
    if !topology.is_service(&service) {
        return Err(fields.error(
            "service",
            format!(
                "unknown service {service:?}; services: {}",
                topology.services().join(", ")
            ),
        ));
    }
    let method = fields
        .string("method", "an HTTP method such as \"POST\"")?
        .unwrap_or_else(|| "GET".into());
    if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
        return Err(fields.error(
            "method",
            format!("expected GET, POST, PUT, PATCH, DELETE or HEAD, found {method:?}"),
        ));
    }
    Ok((service, method))
}

fn read_completion(fields: &mut Fields<'_>) -> Result<request::Completion, ScenarioError> {
    let path_text = fields.required_string(
        "path",
        "the GET path to read, such as \"/orders/{response:/order_id}\"",
    )?;
    if !path_text.starts_with('/') {
        return Err(fields.error(
            "path",
            format!("expected a path starting with `/`, found {path_text:?}"),
        ));
    }
    let path = request::Text::parse_at(&path_text, request::Place::Completion)
        .map_err(|e| fields.error("path", e))?;
    let pointer = fields.required_string("pointer", "a JSON pointer into what the path answers")?;
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(fields.error(
            "pointer",
            format!("expected a JSON pointer starting with `/`, found {pointer:?}"),
        ));
    }
    let json_list = |fields: &mut Fields<'_>, key: &'static str| -> Result<Option<Vec<serde_json::Value>>, ScenarioError> {
        match fields.value(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(_) | toml::Value::Integer(_) | toml::Value::Boolean(_) => {
                        serde_json::to_value(item)
                            .map_err(|e| fields.error(key, format!("not a JSON value: {e}")))
                    }
                    other => Err(fields.error(
                        key,
                        format!("expected strings, integers or booleans, found {}", other.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(fields.error(key, "expected a non-empty array of values")),
        }
    };
    let values = json_list(fields, "values")?
        .ok_or_else(|| fields.error("values", "required: the final states to wait for"))?;
    let ok = match json_list(fields, "ok")? {
        None => values.clone(),
        Some(ok) => {
            if let Some(stray) = ok.iter().find(|v| !values.contains(v)) {
                return Err(fields.error(
                    "ok",
                    format!("{stray} is not one of `values`: ok names final states that took effect"),
                ));
            }
            ok
        }
    };
    let wait = fields.boolean("wait")?.unwrap_or(true);
    let within = fields.duration("within")?;
    if within.is_some() && !wait {
        return Err(fields.error(
            "within",
            "applies only when the client waits (`wait = false` reads the state once, at the end)",
        ));
    }
    let within = within.unwrap_or(Duration::from_secs(30));
    if within.is_zero() || within > Duration::from_secs(600) {
        return Err(fields.error("within", "expected more than 0s and at most 10m"));
    }
    Ok(request::Completion {
        path,
        pointer,
        values,
        ok,
        within,
        wait,
    })
}

fn read_target(fields: &mut Fields<'_>, topology: &Topology) -> Result<Target, ScenarioError> {
    let text = fields.required_string(
        "target",
        "a link (\"order->payment\"), a service or a container",
    )?;
    if let Some((client, server)) = text.split_once("->") {
        let (client, server) = (client.trim(), server.trim());
        if !topology.is_link(client, server) {
            return Err(fields.error(
                "target",
                format!(
                    "unknown link {text:?}; links are: {}",
                    topology.link_names().join(", ")
                ),
            ));
        }
        return Ok(Target::Link {
            client: client.into(),
            server: server.into(),
        });
    }
    if topology.is_service(&text) {
        return Ok(Target::Process { service: text });
    }
    if topology.is_server(&text) {
        return Ok(Target::Container { name: text });
    }
    Err(fields.error(
        "target",
        format!(
            "unknown target {text:?}; expected a link such as \"order->payment\", a service ({}) or a container ({})",
            topology.services().join(", "),
            topology.servers().join(", ")
        ),
    ))
}

const FAULT_KINDS: &str =
    "latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, \
     partition (links); request (links between services); statement (links to postgres); kafka (links to kafka); kill, pause, redeliver (services); \
     container_pause, container_stop (containers)";

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn read_fault(
    fields: &mut Fields<'_>,
    topology: &Topology,
    run: Duration,
) -> Result<Fault, ScenarioError> {
    let start = fields.required_duration("start")?;
    let duration = fields.required_duration("duration")?;
    if duration.is_zero() {
        return Err(fields.error("duration", "expected more than 0s: a fault must last"));
    }
    match start.checked_add(duration) {
        Some(end) if end <= run => {}
        end => {
            let end = end.map_or_else(|| "beyond any time".to_string(), |end| format!("{end:?}"));
            return Err(fields.error(
                "duration",
                format!(
                    "the fault ends at {end}, after the workload's duration of {run:?}: every fault must heal within the run"
                ),
            ));
        }
    }
    let target = read_target(fields, topology)?;
    let kind_name = fields.required_string("kind", FAULT_KINDS)?;
    if kind_name == "request" {
        let between_services = match &target {
            Target::Link { client, server } if topology.is_service(server) => {
                Some((client.clone(), server.clone()))
            }
            _ => None,
        };
        let Some((caller, callee)) = between_services else {
            return Err(fields.error(
                "target",
                format!(
                    "kind \"request\" applies to a link between two services, which speaks HTTP; links between services are: {}",
                    topology
                        .service_links()
                        .map(|l| l.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let fault = intercept::read(fields, &caller, &callee)?;
        return Ok(Fault {
            start,
            duration,
            target,
            kind: FaultKind::Request(fault),
        });
    }
    if kind_name == "statement" {
        if !matches!(&target, Target::Link { server, .. } if server == "postgres") {
            let to_postgres: Vec<String> = topology
                .links()
                .iter()
                .filter(|l| l.server == "postgres")
                .map(|l| l.name())
                .collect();
            return Err(fields.error(
                "target",
                format!(
                    "kind \"statement\" applies to a service's link to postgres, which speaks its protocol; such links are: {}",
                    if to_postgres.is_empty() { "none".to_string() } else { to_postgres.join(", ") }
                ),
            ));
        }
        let fault = statement::read(fields)?;
        return Ok(Fault {
            start,
            duration,
            target,
            kind: FaultKind::Statement(fault),
        });
    }
    if kind_name == "kafka" {
        if !matches!(&target, Target::Link { server, .. } if server == "kafka") {
            let to_kafka: Vec<String> = topology
                .links()
                .iter()
                .filter(|l| l.server == "kafka")
                .map(|l| l.name())
                .collect();
            return Err(fields.error(
                "target",
                format!(
                    "kind \"kafka\" applies to a service's link to kafka, which speaks its protocol; such links are: {}",
                    if to_kafka.is_empty() { "none".to_string() } else { to_kafka.join(", ") }
                ),
            ));
        }
        let fault = kafka::read(fields)?;
        return Ok(Fault {
            start,
            duration,
            target,
            kind: FaultKind::Kafka(fault),
        });
    }
    let link_only = |fields: &Fields<'_>| -> Result<(), ScenarioError> {
        match target {
            Target::Link { .. } => Ok(()),
            _ => Err(fields.error(
                "target",
                format!("kind {kind_name:?} applies to a link (\"client->server\")"),
            )),
        }
    };
    if kind_name == "redeliver" {
        if !matches!(target, Target::Process { .. }) {
            return Err(fields.error(
                "target",
                format!(
                    "kind \"redeliver\" applies to a service that consumes a topic ({})",
                    topology.services().join(", ")
                ),
            ));
        }
        let topic = fields.required_string("topic", "the topic the service consumes")?;
        if !topology.topics().is_empty() && !topology.topics().contains(&topic) {
            return Err(fields.error(
                "topic",
                format!(
                    "unknown topic {topic:?}; the system's topics are: {}",
                    topology.topics().join(", ")
                ),
            ));
        }
        let group = fields.required_string("group", "the service's consumer group")?;
        if group.trim().is_empty() {
            return Err(fields.error("group", "expected a consumer group's name"));
        }
        let events = fields
            .integer_in("events", 1..=1_000_000)?
            .ok_or_else(|| fields.error("events", "required: how many events back, per partition"))?
            as u32;
        return Ok(Fault {
            start,
            duration,
            target,
            kind: FaultKind::Redeliver {
                topic,
                group,
                events,
            },
        });
    }
    let toxic = match kind_name.as_str() {
        "latency" => Some(ToxicKind::Latency {
            latency_ms: millis(fields.required_duration("latency")?),
            jitter_ms: millis(fields.duration("jitter")?.unwrap_or_default()),
        }),
        "bandwidth" => Some(ToxicKind::Bandwidth {
            kilobytes_per_second: fields
                .integer_in("rate_kbps", 0..=10_000_000)?
                .ok_or_else(|| fields.error("rate_kbps", "required: the rate in KB/s"))?
                as u64,
        }),
        "slow_close" => Some(ToxicKind::SlowClose {
            delay_ms: millis(fields.required_duration("delay")?),
        }),
        "timeout" => Some(ToxicKind::Timeout {
            timeout_ms: millis(fields.duration("timeout")?.unwrap_or_default()),
        }),
        "reset_peer" => Some(ToxicKind::ResetPeer {
            timeout_ms: millis(fields.duration("timeout")?.unwrap_or_default()),
        }),
        "slicer" => {
            let average_size = fields
                .integer_in("average_size", 1..=1_000_000)?
                .ok_or_else(|| {
                    fields.error("average_size", "required: the average packet size in bytes")
                })? as u64;
            let size_variation = fields
                .integer_in("size_variation", 0..=1_000_000)?
                .unwrap_or(0) as u64;
            if size_variation >= average_size {
                return Err(fields.error("size_variation", "expected less than average_size"));
            }
            let delay_us = fields.duration("delay")?.unwrap_or_default().as_micros() as u64;
            Some(ToxicKind::Slicer {
                average_size,
                size_variation,
                delay_us,
            })
        }
        "limit_data" => Some(ToxicKind::LimitData {
            bytes: fields.integer_in("bytes", 0..=i64::MAX)?.ok_or_else(|| {
                fields.error("bytes", "required: bytes after which the connection closes")
            })? as u64,
        }),
        _ => None,
    };
    let kind = if let Some(toxic) = toxic {
        link_only(fields)?;
        let stream = match fields
            .string("stream", "\"upstream\" or \"downstream\"")?
            .as_deref()
        {
            None | Some("downstream") => Stream::Downstream,
            Some("upstream") => Stream::Upstream,
            Some(other) => {
                return Err(fields.error(
                    "stream",
                    format!("expected \"upstream\" or \"downstream\", found {other:?}"),
                ))
            }
        };
        let toxicity = fields.number_in("toxicity", 0.0..=1.0)?.unwrap_or(1.0) as f32;
        FaultKind::Toxic {
            toxic,
            stream,
            toxicity,
        }
    } else {
        let (kind, wanted) = match kind_name.as_str() {
            "partition" => (FaultKind::Partition, "link"),
            "kill" => (FaultKind::Kill, "process"),
            "pause" => (FaultKind::Pause, "process"),
            "container_pause" => (FaultKind::ContainerPause, "container"),
            "container_stop" => (FaultKind::ContainerStop, "container"),
            other => {
                return Err(fields.error(
                    "kind",
                    format!("unknown fault kind {other:?}; expected one of: {FAULT_KINDS}"),
                ))
            }
        };
        let fits = matches!(
            (&target, wanted),
            (Target::Link { .. }, "link")
                | (Target::Process { .. }, "process")
                | (Target::Container { .. }, "container")
        );
        if !fits {
            let example = match wanted {
                "link" => "a link (\"client->server\")".to_string(),
                "process" => format!("a service ({})", topology.services().join(", ")),
                _ => format!("a shared server ({})", topology.servers().join(", ")),
            };
            return Err(fields.error("target", format!("kind {kind_name:?} applies to {example}")));
        }
        kind
    };
    Ok(Fault {
        start,
        duration,
        target,
        kind,
    })
}

/// Reads the `[[probes]]` of a `[steady_state]` table: a scenario's, or a system
/// description's (the probes of every scenario that gives none).
pub fn read_steady_state(fields: &mut Fields<'_>) -> Result<Vec<Probe>, ScenarioError> {
    let mut probes = Vec::new();
    for mut probe_fields in fields.tables("probes")? {
        probes.push(read_probe(&mut probe_fields)?);
        probe_fields.finish()?;
    }
    Ok(probes)
}

fn read_probe(fields: &mut Fields<'_>) -> Result<Probe, ScenarioError> {
    let name = fields.required_string("name", "the probe's name")?;
    let kind = fields.required_string("probe", "ready, success_rate or p99_latency")?;
    let check = match kind.as_str() {
        "ready" => ProbeCheck::Ready,
        "success_rate" => ProbeCheck::SuccessRate {
            sample: fields.integer_in("sample", 1..=10_000)?.unwrap_or(20) as u32,
            min: fields.number_in("min", 0.0..=1.0)?.ok_or_else(|| {
                fields.error("min", "required: the lowest acceptable success fraction")
            })?,
        },
        "p99_latency" => ProbeCheck::P99Latency {
            sample: fields.integer_in("sample", 1..=10_000)?.unwrap_or(20) as u32,
            max: fields.required_duration("max")?,
        },
        other => {
            return Err(fields.error(
                "probe",
                format!("unknown probe {other:?}; expected ready, success_rate or p99_latency"),
            ))
        }
    };
    let within = fields.duration("within")?;
    if let Some(within) = within {
        if within > std::time::Duration::from_secs(600) {
            return Err(fields.error("within", "expected at most 10m"));
        }
    }
    Ok(Probe {
        name,
        check,
        within,
    })
}

fn read_expectations(
    fields: &mut Fields<'_>,
    vocabulary: &Vocabulary<'_>,
    faults: &[Fault],
    workload: &Workload,
    own_operations: bool,
) -> Result<Expectations, ScenarioError> {
    let topology = vocabulary.topology;
    let invariants = match fields.strings("invariants")? {
        None => default_invariants(vocabulary, workload, own_operations),
        Some(names) => {
            for name in &names {
                if !vocabulary.invariants.iter().any(|known| known == name) {
                    let known = if vocabulary.invariants.is_empty() {
                        "this system registers none: state invariants as [[expectations.sql]]"
                            .to_string()
                    } else {
                        format!("expected any of: {}", vocabulary.invariants.join(", "))
                    };
                    return Err(fields.error(
                        "invariants",
                        format!("unknown invariant {name:?}; {known}"),
                    ));
                }
            }
            names
        }
    };
    let mut circuits = Vec::new();
    for mut circuit in fields.tables("circuits")? {
        let link = circuit.required_string("link", "a service link such as \"order->payment\"")?;
        let is_service_link = link.split_once("->").is_some_and(|(c, s)| {
            topology.is_link(c.trim(), s.trim()) && topology.is_service(s.trim())
        });
        if !is_service_link {
            let known: Vec<String> = topology.service_links().map(|l| l.name()).collect();
            return Err(circuit.error(
                "link",
                format!(
                    "{link:?} has no circuit breaker; links with one: {}",
                    known.join(", ")
                ),
            ));
        }
        let opens = circuit.boolean("opens")?.unwrap_or(true);
        let opens_within = circuit.duration("opens_within")?;
        let closes_within = circuit.duration("closes_within")?;
        let faulted = faults.iter().any(|f| matches!(&f.target, Target::Link { client, server } if format!("{client}->{server}") == link));
        if opens && !faulted {
            return Err(circuit.error(
                "opens",
                format!("expects {link}'s circuit to open, but no fault targets {link}"),
            ));
        }
        circuit.finish()?;
        circuits.push(CircuitExpectation {
            link,
            opens,
            opens_within,
            closes_within,
        });
    }
    let mut sql = Vec::new();
    for mut check in fields.tables("sql")? {
        let name = verdict_name(&mut check, "name")?;
        let database = read_database(&mut check, topology)?;
        let query = check.required_string(
            "query",
            "a SELECT that returns no rows when the invariant holds",
        )?;
        let what = "a second SELECT whose single value must equal the query's, or { database, query } for one on another database";
        let (equals, equals_database) = match check.string_or_table("equals", what)? {
            None => (None, None),
            Some(fields::StringOrTable::String(text)) => (Some(text), None),
            Some(fields::StringOrTable::Table(mut other)) => {
                let database = read_database(&mut other, topology)?;
                let query = read_query(&mut other, "query", "a SELECT of one value")?;
                other.finish()?;
                (Some(query), Some(database))
            }
        };
        let mut rows = None;
        for (key, among) in [("in", true), ("not_in", false)] {
            let Some(mut other) = check.table(key)? else {
                continue;
            };
            let database = read_database(&mut other, topology)?;
            let query = read_query(&mut other, "query", "a SELECT of as many columns as the first")?;
            other.finish()?;
            if rows.is_some() || equals.is_some() {
                return Err(check.error(
                    key,
                    "expected one of equals, in and not_in: each says what the query's rows must be",
                ));
            }
            rows = Some(SqlRows { among, database, query });
        }
        if query.trim().is_empty() || query.contains('\0') {
            return Err(check.error("query", "expected a SQL query"));
        }
        if equals.as_ref().is_some_and(|text| text.trim().is_empty() || text.contains('\0')) {
            return Err(check.error("equals", "expected a SQL query"));
        }
        check.finish()?;
        sql.push(SqlCheck {
            name,
            database,
            query,
            equals,
            equals_database,
            rows,
        });
    }
    let mut http_checks = Vec::new();
    for mut check in fields.tables("http")? {
        http_checks.push(read_http_check(&mut check, topology)?);
        check.finish()?;
    }
    let mut kafka = Vec::new();
    for mut check in fields.tables("kafka")? {
        kafka.push(read_kafka_check(&mut check, topology)?);
        check.finish()?;
    }
    let slo = match fields.table("slo")? {
        None => None,
        Some(mut slo_fields) => {
            let p99_latency = slo_fields.duration("p99_latency")?;
            let error_rate = slo_fields.number_in("error_rate", 0.0..=1.0)?;
            let mut operations = Vec::new();
            if let Some(mut per_operation) = slo_fields.table("operations")? {
                let known: Vec<String> = workload
                    .http
                    .iter()
                    .flat_map(|http| &http.operations)
                    .flat_map(|op| [op.name.clone(), blast::label(&op.name, op.kind.as_deref())])
                    .collect();
                for (operation, mut objectives) in per_operation.named_tables()? {
                    // A workload written in Rust names its operations itself: not checked here.
                    if workload.http.is_some() && !known.contains(&operation) {
                        let mut names = known.clone();
                        names.dedup();
                        return Err(per_operation.error(
                            &operation,
                            format!(
                                "{operation:?} is not an operation of the workload: expected an operation's name, or its name and kind as `name (kind)`; the workload has: {}",
                                names.join(", ")
                            ),
                        ));
                    }
                    let slo = OperationSlo {
                        operation,
                        p99_latency: objectives.duration("p99_latency")?,
                        error_rate: objectives.number_in("error_rate", 0.0..=1.0)?,
                    };
                    objectives.finish()?;
                    if slo.p99_latency.is_none() && slo.error_rate.is_none() {
                        return Err(per_operation.error(
                            &slo.operation,
                            "expected p99_latency, error_rate or both: objectives of this operation",
                        ));
                    }
                    operations.push(slo);
                }
                per_operation.finish()?;
            }
            slo_fields.finish()?;
            Some(Slo {
                p99_latency,
                error_rate,
                operations,
            })
        }
    };
    // `answers = false`: the operations' answers are not judged (the verdict `answers`).
    let unjudged_answers = !fields.boolean("answers")?.unwrap_or(true);
    let blast_radius = blast::read(fields)?;
    Ok(Expectations {
        invariants,
        circuits,
        slo,
        sql,
        kafka,
        http: http_checks,
        unjudged_answers,
        blast_radius,
    })
}

fn read_http_check(
    fields: &mut Fields<'_>,
    topology: &Topology,
) -> Result<HttpCheck, ScenarioError> {
    let name = verdict_name(fields, "name")?;
    let (service, method) = read_service_and_method(fields, topology)?;
    let path = fields.required_string("path", "the path, starting with `/`")?;
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fields.error(
            "path",
            format!("expected a path starting with `/`, without spaces, found {path:?}"),
        ));
    }
    let status = fields
        .integer_in("status", 100..=599)?
        .map(|s| s as u16);
    let pointer = fields.string("pointer", "a JSON pointer into the answer's body")?;
    let equals = fields.value("equals");
    let body = match (pointer, equals) {
        (None, None) => None,
        (Some(pointer), Some(value)) if pointer.is_empty() || pointer.starts_with('/') => {
            let value = serde_json::to_value(&value)
                .map_err(|e| fields.error("equals", format!("not a JSON value: {e}")))?;
            Some((pointer, value))
        }
        (Some(pointer), Some(_)) => {
            return Err(fields.error(
                "pointer",
                format!("expected a JSON pointer starting with `/`, found {pointer:?}"),
            ))
        }
        (Some(_), None) => {
            return Err(fields.error("equals", "required with `pointer`: the value it must hold"))
        }
        (None, Some(_)) => {
            return Err(fields.error("pointer", "required with `equals`: where in the body"))
        }
    };
    Ok(HttpCheck {
        name,
        service,
        method,
        path,
        status,
        body,
    })
}

/// `database`: one of the described system's databases.
fn read_database(fields: &mut Fields<'_>, topology: &Topology) -> Result<String, ScenarioError> {
    let database = fields.required_string("database", "a database of the system's [postgres]")?;
    if !topology.databases().iter().any(|d| d == &database) {
        return Err(fields.error(
            "database",
            format!(
                "unknown database {database:?}; the system's databases: {}",
                if topology.databases().is_empty() {
                    "(none)".to_string()
                } else {
                    topology.databases().join(", ")
                }
            ),
        ));
    }
    Ok(database)
}

/// A required SQL query at `key`.
fn read_query(fields: &mut Fields<'_>, key: &'static str, what: &str) -> Result<String, ScenarioError> {
    let query = fields.required_string(key, what)?;
    if query.trim().is_empty() || query.contains('\0') {
        return Err(fields.error(key, "expected a SQL query"));
    }
    Ok(query)
}

/// A kebab-case name for a verdict, or an error naming `key`.
fn verdict_name(fields: &mut Fields<'_>, key: &'static str) -> Result<String, ScenarioError> {
    let name = fields.required_string(key, "the invariant's name")?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(fields.error(
            key,
            format!("expected kebab-case (a-z, 0-9, -), found {name:?}"),
        ));
    }
    Ok(name)
}

fn read_kafka_check(
    fields: &mut Fields<'_>,
    topology: &Topology,
) -> Result<KafkaCheck, ScenarioError> {
    let name = verdict_name(fields, "name")?;
    let topic = fields.required_string("topic", "a topic of the system's [kafka]")?;
    if !topology.topics().iter().any(|t| t == &topic) {
        return Err(fields.error(
            "topic",
            format!(
                "unknown topic {topic:?}; the system's topics: {}",
                if topology.topics().is_empty() {
                    "(none)".to_string()
                } else {
                    topology.topics().join(", ")
                }
            ),
        ));
    }
    let pointer_error = |fields: &Fields<'_>, key: &str, found: &str| {
        fields.error(
            key,
            format!("expected a JSON pointer starting with `/`, found {found:?}"),
        )
    };
    let unique = match fields.string("unique", "key, header:NAME or value:/json/pointer")? {
        None => None,
        Some(text) => Some(match text.split_once(':') {
            None if text == "key" => RecordId::Key,
            Some(("header", name)) if !name.is_empty() => RecordId::Header(name.to_string()),
            Some(("value", pointer)) if pointer.starts_with('/') => {
                RecordId::Value(pointer.to_string())
            }
            Some(("value", pointer)) => return Err(pointer_error(fields, "unique", pointer)),
            _ => {
                return Err(fields.error(
                    "unique",
                    format!("expected key, header:NAME or value:/json/pointer, found {text:?}"),
                ))
            }
        }),
    };
    let expected = match fields.table("expected")? {
        None => None,
        Some(mut expected) => {
            let database = read_database(&mut expected, topology)?;
            let query = expected.required_string(
                "query",
                "a SELECT whose first column lists the identities the topic must hold",
            )?;
            if query.trim().is_empty() || query.contains('\0') {
                return Err(expected.error("query", "expected a SQL query"));
            }
            expected.finish()?;
            Some((database, query))
        }
    };
    if expected.is_some() && unique.is_none() {
        return Err(fields.error(
            "expected",
            "says which identities must appear: give `unique` too (what identifies a record)",
        ));
    }
    let ordered_by = fields.string("ordered_by", "a JSON pointer into the record's value")?;
    if let Some(pointer) = &ordered_by {
        if !pointer.starts_with('/') {
            return Err(pointer_error(fields, "ordered_by", pointer));
        }
    }
    if unique.is_none() && ordered_by.is_none() {
        return Err(fields.error(
            "unique",
            "required: what identifies a record (key, header:NAME, value:/pointer), or ordered_by",
        ));
    }
    Ok(KafkaCheck {
        name,
        topic,
        unique,
        expected,
        ordered_by,
    })
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_vocabulary;
#[cfg(test)]
mod tests;
