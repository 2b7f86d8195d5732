//! `faultline contracts diff`: verdicts as exit codes, one line per break, clear bad-input errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

const CREATED: &str = include_str!("../../contracts/schemas/order-created.json");

/// A fresh folder for one test's schema files.
fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-diff-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, schema: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(schema).unwrap()).unwrap();
    path
}

fn diff(args: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["contracts", "diff"])
        .args(args)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn created() -> Value {
    serde_json::from_str(CREATED).unwrap()
}

#[test]
fn a_new_required_field_exits_1_with_the_path_and_a_counterexample() {
    let dir = folder("required");
    let old = write(&dir, "v1.json", &created());
    let mut next = created();
    next["properties"]["currency"] = json!({"type": "string"});
    next["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("currency"));
    let new = write(&dir, "v2.json", &next);
    let (code, stdout, _) = diff(&[&old, &new], &[]);
    assert_eq!(code, 1, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with("BREAKING backward $.currency:"),
        "{stdout}"
    );
    assert!(lines[0].contains(r#""type":"OrderCreated""#), "{stdout}");
    // Old readers do not mind the extra field.
    let (code, stdout, _) = diff(&[&old, &new], &["--mode", "forward"]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn an_optional_field_passes_full_and_json_output_is_a_report() {
    let dir = folder("optional");
    let old = write(&dir, "v1.json", &created());
    let mut next = created();
    next["properties"]["gift"] = json!({"type": "boolean"});
    let new = write(&dir, "v2.json", &next);
    let (code, stdout, stderr) = diff(&[&old, &new], &["--mode", "full", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["breaking"], json!([]));
}

#[test]
fn history_is_checked_transitively() {
    let dir = folder("history");
    let history = dir.join("history");
    std::fs::create_dir_all(&history).unwrap();
    let mut v0 = created();
    v0["properties"]["note"] = json!({"type": "string"});
    write(&history, "v0.json", &v0);
    let old = write(&dir, "v1.json", &created());
    let mut v2 = created();
    v2["properties"]["note"] = json!({"type": "integer"});
    let new = write(&dir, "v2.json", &v2);
    assert_eq!(diff(&[&old, &new], &[]).0, 0);
    let (code, stdout, _) = diff(&[&old, &new], &["--history", history.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("$.note"), "{stdout}");
    assert!(stdout.contains("v0.json -> "), "{stdout}");
}

#[test]
fn bad_input_exits_2_naming_the_file_and_path() {
    let dir = folder("bad");
    let old = write(&dir, "v1.json", &created());
    let mut pattern = created();
    pattern["properties"]["sku"]["pattern"] = json!("^S");
    let unsupported = write(&dir, "pattern.json", &pattern);
    let malformed = dir.join("malformed.json");
    std::fs::write(&malformed, "{\n  \"type\": \"object\",\n}").unwrap();
    let missing = dir.join("missing.json");
    for (file, expected) in [
        (&unsupported, "$.properties.sku.pattern"),
        (&malformed, "line 3"),
        (&missing, "cannot read"),
    ] {
        let (code, _, stderr) = diff(&[&old, file], &[]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

const ORDER_PAYMENT: &str = include_str!("../../contracts/pacts/order-payment.json");

#[test]
fn a_pact_whose_response_field_was_renamed_exits_1_with_the_verified_answer_as_counterexample() {
    let dir = folder("pact");
    let old = dir.join("old.json");
    let new = dir.join("new.json");
    std::fs::write(&old, ORDER_PAYMENT).unwrap();
    std::fs::write(
        &new,
        ORDER_PAYMENT.replacen("\"status\": \"CHARGED\"", "\"state\": \"CHARGED\"", 1),
    )
    .unwrap();
    let (code, stdout, stderr) = diff(&[&old, &new], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("CHANGED \"a charge of an order\" (response.body)"),
        "{stdout}"
    );
    assert!(stdout.contains("counterexample (response)"), "{stdout}");
    assert!(
        stdout.contains("body $.state: expected key \"state\" is missing"),
        "{stdout}"
    );

    let (code, stdout, stderr) = diff(&[&old, &old], &[]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    assert!(stderr.contains("nothing new is asked"), "{stderr}");

    // An unreadable pact: exit 2, naming the file and where.
    let broken = dir.join("broken.json");
    std::fs::write(&broken, &ORDER_PAYMENT[..200]).unwrap();
    let (code, _, stderr) = diff(&[&old, &broken], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("broken.json") && stderr.contains("line"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs ci/check-contracts in a throw-away git repository holding a copy of the contracts.
fn check_contracts(change: impl FnOnce(&Path)) -> (i32, String) {
    let repo = folder("check-contracts");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(repo.join("ci")).unwrap();
    std::fs::copy(
        root.join("ci/check-contracts"),
        repo.join("ci/check-contracts"),
    )
    .unwrap();
    for sub in ["contracts/schemas", "contracts/pacts"] {
        std::fs::create_dir_all(repo.join(sub)).unwrap();
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, repo.join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "contracts"]);
    change(&repo);
    let output = Command::new("bash")
        .arg(repo.join("ci/check-contracts"))
        .env("FAULTLINE_BIN", env!("CARGO_BIN_EXE_faultline"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&repo).unwrap();
    (
        output.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn ci_check_contracts_fails_a_breaking_schema_change_and_shows_pact_changes() {
    let (code, out) = check_contracts(|_| {});
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no breaking change"), "{out}");

    let (code, out) = check_contracts(|repo| {
        let path = repo.join("contracts/schemas/order-created.json");
        let mut schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        schema["required"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f != "sku");
        std::fs::write(&path, serde_json::to_string_pretty(&schema).unwrap()).unwrap();
        let pact = repo.join("contracts/pacts/order-payment.json");
        let text = std::fs::read_to_string(&pact).unwrap();
        std::fs::write(
            &pact,
            text.replacen("\"status\": \"CHARGED\"", "\"state\": \"CHARGED\"", 1),
        )
        .unwrap();
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BREAKING forward $.sku"), "{out}");
    assert!(out.contains("CHANGED \"a charge of an order\""), "{out}");
}
