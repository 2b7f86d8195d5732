//! `faultline report list | open | diff | index` on a reports folder of synthetic runs: what
//! each prints, and that a malformed report is exit 2 naming the file — never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline_chaos::scenario::Scenario;
use faultline_harness::report::{self, Report};
use faultline_reference::synthetic::SyntheticRun;

fn faultline(args: &[&str]) -> (Output, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// A reports folder with a passing run (older) and a failing run (newer) of one scenario.
fn reports_folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let system = faultline_reference::system();
    let scenario = Scenario::load(
        &root.join("chaos/scenarios/saga-compensation-payment-down.toml"),
        faultline_reference::registry().vocabulary(&system),
    )
    .unwrap();
    for (id, started, fail) in [
        ("saga-compensation-payment-down-aaaa", 1_000, false),
        ("saga-compensation-payment-down-bbbb", 2_000, true),
    ] {
        let mut run = SyntheticRun::of(&scenario, scenario.seed, system.topology());
        if fail {
            let last = run.verdicts.len() - 1;
            run.verdicts[last].ok = false;
        }
        let mut report = Report::build(&run.facts(&scenario));
        report.run.id = id.into();
        report.run.started_unix_ms = started;
        std::fs::create_dir_all(dir.join(id)).unwrap();
        report::write(&dir.join(id), &report).unwrap();
    }
    dir
}

#[test]
fn list_open_diff_and_index_read_the_reports_folder() {
    let dir = reports_folder("report-cli");
    let d = dir.to_str().unwrap();

    let (out, stdout, stderr) = faultline(&["report", "list", "--dir", d]);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("FAILED") && lines[0].contains("-bbbb"),
        "newest first: {stdout}"
    );
    assert!(
        lines[1].contains("passed") && lines[1].contains("-aaaa"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("2 runs in"), "{stdout}");

    // A scenario's name opens its newest run; the path is printed, nothing is started.
    let (out, stdout, stderr) = faultline(&[
        "report",
        "open",
        "saga-compensation-payment-down",
        "--dir",
        d,
    ]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout
            .trim()
            .ends_with("saga-compensation-payment-down-bbbb/report.html"),
        "{stdout}"
    );

    let (out, stdout, stderr) = faultline(&[
        "report",
        "diff",
        "saga-compensation-payment-down-aaaa",
        "saga-compensation-payment-down-bbbb",
        "--dir",
        d,
    ]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("charged-at-most-once: held -> VIOLATED"),
        "{stdout}"
    );
    assert!(stdout.contains("p99 ms"), "{stdout}");

    let (out, stdout, _) = faultline(&["report", "index", "--dir", d]);
    assert!(out.status.success());
    assert!(stdout.trim().ends_with("index.html"));
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(index.find("-bbbb/report.html").unwrap() < index.find("-aaaa/report.html").unwrap());
}

#[test]
fn a_malformed_or_missing_report_is_exit_2_naming_the_file() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-cli-malformed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cut-short")).unwrap();
    std::fs::write(
        dir.join("cut-short/report.json"),
        "{\"version\": 1, \"run\": ",
    )
    .unwrap();
    let d = dir.to_str().unwrap();

    let (out, _, stderr) = faultline(&["report", "diff", "cut-short", "cut-short", "--dir", d]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cut-short/report.json:1:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (out, _, stderr) = faultline(&["report", "open", "no-such-run", "--dir", d]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no run \"no-such-run\"") && stderr.contains("faultline report list"),
        "{stderr}"
    );

    let (out, stdout, _) = faultline(&["report", "list", "--dir", d]);
    assert!(out.status.success());
    assert!(stdout.contains("unreadable  cut-short"), "{stdout}");
}

#[test]
fn report_open_refuses_a_report_that_does_not_read_with_exit_2() {
    let good = reports_folder("report-cli-open-source").join("saga-compensation-payment-down-aaaa");
    let text = std::fs::read_to_string(good.join("report.json")).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-cli-open");
    let _ = std::fs::remove_dir_all(&dir);
    let mut other_version: serde_json::Value = serde_json::from_str(&text).unwrap();
    other_version["version"] = 1.into();
    let mut off_schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    off_schema["run"]["seed"] = "seven".into();
    let cases = [
        (
            "malformed",
            "{\"version\": 1,, }".to_string(),
            "malformed/report.json:1:",
        ),
        (
            "truncated",
            text[..text.len() / 2].to_string(),
            "truncated/report.json:",
        ),
        (
            "other-version",
            other_version.to_string(),
            "report version 1",
        ),
        (
            "off-schema",
            off_schema.to_string(),
            "does not match the report schema",
        ),
    ];
    for (name, report, expected) in cases {
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        // A page is there; the report it is drawn from is not sound.
        std::fs::copy(good.join("report.html"), run.join("report.html")).unwrap();
        std::fs::write(run.join("report.json"), report).unwrap();
        let (out, stdout, stderr) =
            faultline(&["report", "open", name, "--dir", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: no page offered: {stdout}");
    }
}
