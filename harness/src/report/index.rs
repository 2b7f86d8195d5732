//! `reports/index.html` and `faultline report list`: the runs in a reports folder, newest
//! first, with their verdicts. A run is a sub-folder holding a `report.json`; a folder whose
//! report cannot be read is listed with the reason rather than hidden.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::html::escape;
use super::model::RunInfo;
use super::{load, write_atomically, Report, ReportError};

/// What the index shows of a run: its facts and the checkers that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: RunInfo,
    /// The names of the verdicts that failed, failing first as in the report.
    pub failed: Vec<String>,
}

impl RunSummary {
    pub fn of(report: &Report) -> Self {
        RunSummary {
            run: report.run.clone(),
            failed: report.failures().map(|v| v.checker.clone()).collect(),
        }
    }
}

/// One run found in a reports folder.
#[derive(Debug)]
pub struct RunEntry {
    /// The run's folder.
    pub dir: PathBuf,
    /// What its report says, or why it could not be read.
    pub report: Result<RunSummary, String>,
}

impl RunEntry {
    /// The folder's name: the run's id.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    fn started(&self) -> u64 {
        self.report.as_ref().map_or(0, |r| r.run.started_unix_ms)
    }
}

/// The summaries the last index was drawn from, by folder name, each with the size and time of
/// the `report.json` it was read from: `<reports>/.index.json`. A folder whose report is
/// unchanged is not read again, so that rewriting the index after each run of a long
/// exploration does not read every earlier report each time.
const CACHE: &str = ".index.json";
const CACHE_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: u32,
    runs: BTreeMap<String, Cached>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    len: u64,
    modified_ns: u128,
    summary: RunSummary,
}

/// `report.json`'s size and modification time, which say whether a cached summary still holds.
fn stamp(report: &Path) -> Option<(u64, u128)> {
    let metadata = std::fs::metadata(report).ok()?;
    let modified = metadata.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((metadata.len(), modified.as_nanos()))
}

/// The runs under `reports_dir`, newest first (unreadable ones last). Folders without a
/// `report.json` (a run in progress, or one interrupted) are left out.
pub fn list_runs(reports_dir: &Path) -> Result<Vec<RunEntry>, ReportError> {
    scan(reports_dir).map(|(runs, _)| runs)
}

/// [`list_runs`], with the summaries as the cache would hold them now.
fn scan(reports_dir: &Path) -> Result<(Vec<RunEntry>, Cache), ReportError> {
    let entries = std::fs::read_dir(reports_dir).map_err(|source| ReportError::Io {
        path: reports_dir.to_path_buf(),
        source,
    })?;
    let cached: Cache = std::fs::read_to_string(reports_dir.join(CACHE))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .filter(|cache: &Cache| cache.version == CACHE_VERSION)
        .unwrap_or_default();
    let mut fresh = Cache {
        version: CACHE_VERSION,
        runs: BTreeMap::new(),
    };
    let mut runs = Vec::new();
    for dir in entries.flatten().map(|e| e.path()) {
        let report = dir.join("report.json");
        if !report.is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let stamp = stamp(&report);
        let hit = cached
            .runs
            .get(&name)
            .filter(|c| stamp == Some((c.len, c.modified_ns)))
            .map(|c| c.summary.clone());
        let summary = match hit {
            Some(summary) => Ok(summary),
            None => load(&report).map(|r| RunSummary::of(&r)).map_err(|e| e.to_string()),
        };
        if let (Ok(summary), Some((len, modified_ns))) = (&summary, stamp) {
            fresh.runs.insert(
                name,
                Cached {
                    len,
                    modified_ns,
                    summary: summary.clone(),
                },
            );
        }
        runs.push(RunEntry { report: summary, dir });
    }
    runs.sort_by(|a, b| b.started().cmp(&a.started()).then(a.name().cmp(&b.name())));
    Ok((runs, fresh))
}

/// The run folder `run` names: a path to a run folder or its `report.json`, a folder name in
/// `reports_dir`, or the start of one (`saga-compensation-payment-down` names that scenario's
/// newest run).
pub fn find_run(reports_dir: &Path, run: &str) -> Result<PathBuf, ReportError> {
    let as_path = Path::new(run);
    if as_path.is_file() {
        if let Some(parent) = as_path.parent() {
            return Ok(parent.to_path_buf());
        }
    }
    if as_path.join("report.json").is_file() {
        return Ok(as_path.to_path_buf());
    }
    if reports_dir.join(run).join("report.json").is_file() {
        return Ok(reports_dir.join(run));
    }
    let not_found = || ReportError::NoSuchRun {
        run: run.to_string(),
        dir: reports_dir.to_path_buf(),
    };
    if !reports_dir.is_dir() {
        return Err(not_found());
    }
    list_runs(reports_dir)?
        .into_iter()
        .find(|r| r.name().starts_with(run))
        .map(|r| r.dir)
        .ok_or_else(not_found)
}

/// Writes `reports_dir/index.html` from the runs there.
pub fn write_index(reports_dir: &Path) -> Result<(), ReportError> {
    let (runs, cache) = scan(reports_dir)?;
    write_atomically(&reports_dir.join("index.html"), render(&runs).as_bytes())?;
    let cache = serde_json::to_vec(&cache).expect("summaries serialize");
    write_atomically(&reports_dir.join(CACHE), &cache)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The index page of `runs`.
pub fn render(runs: &[RunEntry]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>faultline reports</title><style>\
         body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:0 auto;padding:16px}\
         table{border-collapse:collapse;width:100%}th,td{border:1px solid #dde;padding:4px 6px;text-align:left}\
         th{background:#f3f5f7}.passed{color:#1f7a3f;font-weight:600}.failed{color:#b3261e;font-weight:600}\
         </style></head><body><h1>faultline reports</h1>\n",
    );
    let failed = runs
        .iter()
        .filter(|r| r.report.as_ref().map_or(true, |r| !r.run.passed))
        .count();
    let _ = write!(
        page,
        "<p>{} runs, {} failed or unreadable; newest first.</p>\n<table><tr><th>started</th><th>scenario</th><th>verdict</th><th>seed</th><th>duration</th><th>run</th></tr>\n",
        runs.len(),
        failed
    );
    for run in runs {
        let name = escape(&run.name());
        match &run.report {
            Ok(report) => {
                let failures: Vec<&str> = report.failed.iter().map(String::as_str).collect();
                let verdict = if report.run.passed {
                    "<span class=\"passed\">passed</span>".to_string()
                } else {
                    format!(
                        "<span class=\"failed\">FAILED</span> {}",
                        escape(&failures.join(", "))
                    )
                };
                let _ = writeln!(
                    page,
                    "<tr><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td><td>{:.1} s</td><td><a href=\"{name}/report.html\">{name}</a></td></tr>",
                    utc(report.run.started_unix_ms),
                    escape(&report.run.scenario),
                    report.run.seed,
                    report.run.duration_ms as f64 / 1000.0
                );
            }
            Err(error) => {
                let _ = writeln!(
                    page,
                    "<tr><td></td><td></td><td class=\"failed\">unreadable: {}</td><td></td><td></td><td>{name}</td></tr>",
                    escape(error)
                );
            }
        }
    }
    page.push_str("</table></body></html>\n");
    page
}
