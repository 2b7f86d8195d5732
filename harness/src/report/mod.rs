//! Resilience reports: what a chaos run tells afterwards, to a person in a browser and to CI.
//!
//! A run's folder (`reports/<scenario>-<run id>/`) gets four files, all drawn from one
//! [`Report`] built by [`Report::build`] from what the runner recorded:
//!
//! | file | for | written by |
//! |---|---|---|
//! | `report.json` | the source of truth; format pinned by [`SCHEMA`] (`version` field) | [`model`] |
//! | `report.html` | a person: self-contained page, inline SVG charts, no script | [`html`] |
//! | `junit.xml` | CI: one test case per expectation, failures carry the counterexample | [`junit`] |
//! | `summary.md` | a pull-request comment | [`markdown`] |
//!
//! and the reports folder gets `index.html`, every run newest first ([`index`]).
//! [`diff`] compares two runs. Files are written to a temporary name and renamed, so a reader
//! never sees half a report; `report.json` is renamed last, so its presence means the others
//! are there too.
//!
//! ```no_run
//! # fn demo(report: &faultline_harness::report::Report) -> Result<(), faultline_harness::report::ReportError> {
//! use faultline_harness::report;
//! let dir = std::path::Path::new("reports/saga-compensation-payment-down-1a2b");
//! report::write(dir, report)?;                 // the four files
//! report::write_index("reports".as_ref())?;    // reports/index.html
//! let again = report::load(&dir.join("report.json"))?; // parsed and schema-checked
//! assert_eq!(&again, report);
//! # Ok(()) }
//! ```
//!
//! Layer 4 (reports) of the harness ([layers](crate#layers)): built from what layers 1–3
//! recorded; imports nothing above them.

pub mod contracts_html;
pub mod diff;
pub mod html;
pub mod index;
pub mod junit;
pub mod markdown;
pub mod model;


use std::path::{Path, PathBuf};

use serde_json::Value;

pub use index::{find_run, list_runs, write_index, RunEntry};
pub use model::{
    Durations, FinalState, Outcomes, Report, RunFacts, StackFacts, Versions, WorkloadState,
    REPORT_VERSION,
};

/// The JSON Schema of `report.json`, version 2 (committed in `harness/schemas/`).
pub const SCHEMA: &str = include_str!("../../schemas/report-v2.schema.json");

/// The files of a run's report, in the order they are written.
pub const FILES: [&str; 4] = ["report.html", "junit.xml", "summary.md", "report.json"];

/// Why a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}:{line}:{column}: not a report: {message}\nhint: report.json is written by `faultline chaos run`; was the file edited or cut short?", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: does not match the report schema (version {REPORT_VERSION}):\n{}", path.display(), problems.join("\n"))]
    Schema {
        path: PathBuf,
        problems: Vec<String>,
    },

    #[error("{}: report version {found}, but this faultline reads version {REPORT_VERSION}\nhint: open it with the faultline that wrote it, or re-run the scenario", path.display())]
    Version { path: PathBuf, found: Value },

    #[error("no run {run:?} in {}\nhint: `faultline report list --dir {}` shows the runs there", dir.display(), dir.display())]
    NoSuchRun { run: String, dir: PathBuf },
}

fn schema_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the committed schema is JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .expect("the committed schema is a valid draft 2020-12 schema")
}

/// Every way `value` breaks the report schema, each as `$.json.path: problem`; empty when it
/// is a valid report.
pub fn schema_problems(value: &Value) -> Vec<String> {
    schema_validator()
        .iter_errors(value)
        .map(|error| {
            let pointer = error.instance_path().as_str().to_string();
            let path = if pointer.is_empty() {
                "$".to_string()
            } else {
                format!("${}", pointer.replace('/', "."))
            };
            format!("  at {path}: {error}")
        })
        .collect()
}

/// Reads `report.json` (or a run folder holding one): parsed, version-checked and validated
/// against the schema.
pub fn load(path: &Path) -> Result<Report, ReportError> {
    let path = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    from_json_str(&path, &text)
}

/// Reads the text of a `report.json`: parsed, version-checked and validated against the
/// schema; `path` names it in errors.
pub fn from_json_str(path: &Path, text: &str) -> Result<Report, ReportError> {
    let path = path.to_path_buf();
    let parse_error = |e: serde_json::Error, path: &Path| ReportError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let value: Value = serde_json::from_str(text).map_err(|e| parse_error(e, &path))?;
    match value.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(REPORT_VERSION)) => {}
        found => {
            return Err(ReportError::Version {
                path,
                found: found.cloned().unwrap_or(Value::Null),
            })
        }
    }
    let problems = schema_problems(&value);
    if !problems.is_empty() {
        return Err(ReportError::Schema { path, problems });
    }
    serde_json::from_value(value).map_err(|e| parse_error(e, &path))
}

/// Writes the run's four files into `dir` (which must exist), each atomically.
pub fn write(dir: &Path, report: &Report) -> Result<(), ReportError> {
    let json = serde_json::to_string_pretty(report).expect("a report serialises");
    // Every report written is checked against the committed schema, in every build: one that
    // does not match is an error naming the problems, and nothing of it is written.
    let problems = schema_problems(&serde_json::from_str(&json).expect("JSON"));
    if !problems.is_empty() {
        return Err(ReportError::Schema {
            path: dir.join("report.json"),
            problems,
        });
    }
    let contents = [
        html::render(report),
        junit::render(report),
        markdown::render(report),
        json,
    ];
    for (name, text) in FILES.iter().zip(contents) {
        write_atomically(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`: readers see
/// the old file or the new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let io = |source, path: &Path| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&temporary, bytes).map_err(|e| io(e, &temporary))?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        io(e, path)
    })
}
