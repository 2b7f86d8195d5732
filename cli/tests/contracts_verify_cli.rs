//! `faultline contracts verify` refuses unreadable pacts before anything starts: exit code 2,
//! an error naming the file and what is wrong, no container created, no results written.

use std::path::Path;
use std::process::Command;

use faultline_harness::infra::docker::{Engine, LABEL_PID};

const GOOD_INTERACTION: &str = r#"{"type": "Synchronous/HTTP", "description": "get",
  "request": {"method": "GET", "path": "/x"}, "response": {"status": 200}}"#;

fn pact_text(interaction: &str, version: &str) -> String {
    format!(
        "{{\"consumer\": {{\"name\": \"a\"}}, \"provider\": {{\"name\": \"payment\"}},\n\
         \"interactions\": [{interaction}],\n\
         \"metadata\": {{\"pactSpecification\": {{\"version\": \"{version}\"}}}}}}\n"
    )
}

/// Runs `verify --pacts <file>` on `text`; (exit code, stderr). Checks nothing was started.
async fn verify(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!(
        "faultline-verify-cli-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["contracts", "verify", "--pacts"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    if let Ok(engine) = Engine::connect().await {
        let (containers, networks) = engine.labelled(LABEL_PID, &pid.to_string()).await.unwrap();
        assert!(
            containers.is_empty() && networks.is_empty(),
            "{containers:?} {networks:?}"
        );
    }
    assert!(
        !Path::new(&out).exists(),
        "no results for a verification that never started"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn malformed_json_exits_2_with_file_line_and_column() {
    let text =
        pact_text(GOOD_INTERACTION, "4.0").replace("\"interactions\": [", "\"interactions\": [,");
    let (code, stderr) = verify("malformed", &text).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("malformed.json"),
        "names the file: {stderr}"
    );
    assert!(stderr.contains("line 2, column"), "says where: {stderr}");
    assert!(stderr.contains("nothing was started"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_matcher_exits_2_naming_interaction_and_path() {
    let interaction = r#"{"type": "Synchronous/HTTP", "description": "get",
      "request": {"method": "GET", "path": "/x"},
      "response": {"status": 200, "matchingRules": {"body": {"$.id": {"matchers": [{"match": "telepathy"}]}}}}}"#;
    let (code, stderr) = verify("matcher", &pact_text(interaction, "4.0")).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("matcher.json"), "{stderr}");
    assert!(
        stderr.contains("unsupported matcher \"telepathy\""),
        "{stderr}"
    );
    assert!(stderr.contains("interaction \"get\""), "{stderr}");
    assert!(
        stderr.contains("$.interactions[0].response.matchingRules.body"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_pact_of_an_unsupported_spec_version_exits_2() {
    let (code, stderr) = verify("v3", &pact_text(GOOD_INTERACTION, "3.0.0")).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("v3.json"), "{stderr}");
    assert!(
        stderr.contains("unsupported Pact specification version \"3.0.0\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn no_pact_for_the_named_provider_exits_2() {
    let dir =
        std::env::temp_dir().join(format!("faultline-verify-cli-{}-none", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a-payment.json"),
        pact_text(GOOD_INTERACTION, "4.0"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["contracts", "verify", "--provider", "inventory", "--pacts"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no pact in") && stderr.contains("\"inventory\""),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A JSON pointer into a pact and its new value (`None`: removed; `/-`: appended).
type Change<'a> = (&'a str, Option<serde_json::Value>);

/// A one-interaction pact with the `changes` made.
fn pact_with(changes: &[Change]) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&pact_text(
        r#"{"type": "Synchronous/HTTP", "description": "get",
            "request": {"method": "GET", "path": "/x"},
            "response": {"status": 200, "body": {"content": {"id": "a1"}, "contentType": "application/json"}}}"#,
        "4.0",
    ))
    .unwrap();
    for (pointer, value) in changes {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{pointer}"));
        match (parent, value) {
            (serde_json::Value::Array(items), Some(v)) => items.push(v.clone()),
            (serde_json::Value::Object(map), Some(v)) => {
                map.insert(key.to_string(), v.clone());
            }
            (serde_json::Value::Object(map), None) => {
                map.remove(key);
            }
            _ => panic!("{pointer}"),
        }
    }
    doc.to_string()
}

#[tokio::test]
async fn pacts_that_pass_the_json_shape_but_mean_nothing_exit_2_naming_the_path() {
    use serde_json::json;
    let rules = |rules: serde_json::Value| Some(json!({"body": rules}));
    let message = json!({"type": "Asynchronous/Messages", "description": "an event",
                         "metadata": {"topic": "t"}});
    // (file name, changes to the pact, what the error must say)
    type Case<'a> = (&'a str, Vec<Change<'a>>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "status-0",
            vec![("/interactions/0/response/status", Some(json!(0)))],
            "$.interactions[0].response.status",
        ),
        (
            "status-999",
            vec![("/interactions/0/response/status", Some(json!(999)))],
            "$.interactions[0].response.status",
        ),
        (
            "duplicate",
            vec![(
                "/interactions/-",
                Some(json!({"type": "Synchronous/HTTP", "description": "get",
            "request": {"method": "GET", "path": "/y"}, "response": {"status": 200}})),
            )],
            "$.interactions[1].description",
        ),
        (
            "no-contents",
            vec![("/interactions/-", Some(message))],
            "$.interactions[1].contents",
        ),
        (
            "own-regex",
            vec![(
                "/interactions/0/response/matchingRules",
                rules(json!({"$.id": {"matchers": [{"match": "regex", "regex": "\\d+"}]}})),
            )],
            "$.interactions[0].response.matchingRules.body",
        ),
        (
            "absent-path",
            vec![(
                "/interactions/0/response/matchingRules",
                rules(json!({"$.name": {"matchers": [{"match": "type"}]}})),
            )],
            "$.interactions[0].response.matchingRules.body['$.name']",
        ),
        (
            "min-above-max",
            vec![(
                "/interactions/0/response/matchingRules",
                rules(json!({"$.id": {"matchers": [{"match": "type", "min": 2, "max": 1}]}})),
            )],
            "matchers[0].min",
        ),
        (
            "wrapped-regex",
            vec![(
                "/interactions/0/response/matchingRules",
                rules(json!({"$.id": {"matchers": [{"match": "regex", "regex": "a1)|(b"}]}})),
            )],
            "matchers[0].regex",
        ),
        (
            "not-base64",
            vec![(
                "/interactions/0/response/body",
                Some(
                    json!({"content": "*** not base64 ***", "contentType": "application/octet-stream", "encoded": "base64"}),
                ),
            )],
            "$.interactions[0].response.body.content",
        ),
        (
            "not-json",
            vec![(
                "/interactions/0/response/body",
                Some(
                    json!({"content": "{\"id\": ", "contentType": "application/json", "encoded": "json"}),
                ),
            )],
            "$.interactions[0].response.body.content",
        ),
        (
            "method-space",
            vec![("/interactions/0/request/method", Some(json!("GET ALL")))],
            "$.interactions[0].request.method",
        ),
        (
            "version-number",
            vec![("/metadata/pactSpecification/version", Some(json!(4.0)))],
            "must be a string",
        ),
    ];
    for (name, changes, expected) in cases {
        let (code, stderr) = verify(name, &pact_with(&changes)).await;
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}.json")),
            "{name}: names the file: {stderr}"
        );
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(stderr.contains("nothing was started"), "{name}: {stderr}");
    }
}
