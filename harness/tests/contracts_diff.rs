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
