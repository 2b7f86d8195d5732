//! `reports/index.html` and `faultline report list`: the runs in a reports folder, newest
//! first, with their verdicts. A run is a sub-folder holding a `report.json`; a folder whose
//! report cannot be read is listed with the reason rather than hidden.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::html::escape;
use super::{load, write_atomically, Report, ReportError};

/// One run found in a reports folder.
#[derive(Debug)]
pub struct RunEntry {
    /// The run's folder.
    pub dir: PathBuf,
    /// Its report, or why it could not be read.
    pub report: Result<Report, String>,
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

/// The runs under `reports_dir`, newest first (unreadable ones last). Folders without a
/// `report.json` (a run in progress, or one interrupted) are left out.
pub fn list_runs(reports_dir: &Path) -> Result<Vec<RunEntry>, ReportError> {
    let entries = std::fs::read_dir(reports_dir).map_err(|source| ReportError::Io {
        path: reports_dir.to_path_buf(),
        source,
    })?;
    let mut runs: Vec<RunEntry> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|dir| dir.join("report.json").is_file())
        .map(|dir| RunEntry {
            report: load(&dir.join("report.json")).map_err(|e| e.to_string()),
            dir,
        })
        .collect();
    runs.sort_by(|a, b| b.started().cmp(&a.started()).then(a.name().cmp(&b.name())));
    Ok(runs)
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
    let runs = list_runs(reports_dir)?;
    write_atomically(&reports_dir.join("index.html"), render(&runs).as_bytes())
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
                let failures: Vec<&str> = report.failures().map(|v| v.checker.as_str()).collect();
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
