//! Bad input to any `faultline` command is exit 2 with an error naming the file, field, flag
//! or variable and what was expected — never a panic (101), never exit 1 — and nothing is
//! started: no container or network carries the command's pid and no report folder appears.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use faultline_harness::infra::docker::{Engine, LABEL_PID};

/// A scratch folder of its own for each test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-input-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `faultline args` in `dir` with `env` set; (exit code, stderr), after checking that
/// nothing was started and that `dir/out` was not written.
async fn faultline(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let system = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/faultline.toml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultline"));
    command
        .env("FAULTLINE_SYSTEM", system)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if let Ok(engine) = Engine::connect().await {
        let (containers, networks) = engine.labelled(LABEL_PID, &pid.to_string()).await.unwrap();
        assert!(
            containers.is_empty() && networks.is_empty(),
            "{args:?} started {containers:?} {networks:?}"
        );
    }
    assert!(!dir.join("out").exists(), "{args:?} wrote a report folder");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    (output.status.code(), stderr)
}

const SCENARIO: &str = "description = \"d\"\n[workload]\nrequests = 1\nduration = \"10s\"\n";

fn scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn chaos_list_refuses_a_malformed_scenario_and_a_missing_folder_with_exit_2() {
    let dir = scratch("list");
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    scenario(
        &dir.join("scenarios"),
        "broken",
        &format!("name = \"broken\"\n{SCENARIO}[[faults]]\nstart = \"1s\"\nduration = \"1s\"\ntarget = \"order\"\nkind = \"explode\"\n"),
    );
    let (code, stderr) = faultline(&dir, &["chaos", "list", "scenarios"], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.toml") && stderr.contains("faults[0].kind"),
        "{stderr}"
    );

    let (code, stderr) = faultline(&dir, &["chaos", "list", "no-such-folder"], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no-such-folder"), "{stderr}");
}

#[tokio::test]
async fn chaos_run_of_a_file_whose_name_field_differs_exits_2() {
    let dir = scratch("misnamed");
    let file = scenario(
        &dir,
        "right-name",
        &format!("name = \"wrong-name\"\n{SCENARIO}"),
    );
    let (code, stderr) = faultline(
        &dir,
        &["chaos", "run", file.to_str().unwrap(), "--out", "out"],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("right-name.toml: name:") && stderr.contains("\"wrong-name\""),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
}

#[tokio::test]
async fn huge_durations_and_overflowing_faults_exit_2_naming_the_field() {
    let dir = scratch("durations");
    let huge = "\"99999999999999999999999h\"";
    let cases = [
        (
            format!("name = \"x\"\ndescription = \"d\"\n[workload]\nrequests = 1\nduration = {huge}\n"),
            "workload.duration",
        ),
        (
            format!("name = \"x\"\n{SCENARIO}[[steady_state.probes]]\nname = \"p\"\nprobe = \"p99_latency\"\nmax = {huge}\n"),
            "steady_state.probes[0].max",
        ),
        (
            format!("name = \"x\"\n{SCENARIO}[[faults]]\nstart = \"5000000000000000h\"\nduration = \"5000000000000000h\"\ntarget = \"order\"\nkind = \"kill\"\n"),
            "faults[0].",
        ),
        (
            format!("name = \"x\"\n{SCENARIO}[[faults]]\nstart = \"1s\"\nduration = \"1s\"\ntarget = \"order->payment\"\nkind = \"latency\"\nlatency = {huge}\n\
                     [[expectations.circuits]]\nlink = \"order->payment\"\nopens_within = \"1s\"\n"),
            "faults[0].latency",
        ),
    ];
    for (text, field) in cases {
        let file = scenario(&dir, "x", &text);
        let list = ["chaos", "list", dir.to_str().unwrap()];
        let run = ["chaos", "run", file.to_str().unwrap(), "--out", "out"];
        for (command, args) in [("list", &list[..]), ("run", &run[..])] {
            let (code, stderr) = faultline(&dir, args, &[]).await;
            assert_eq!(code, Some(2), "{command} {field}: {stderr}");
            assert!(
                stderr.contains("x.toml") && stderr.contains(field),
                "{command} {field}: {stderr}"
            );
        }
    }
}

#[tokio::test]
async fn a_toml_error_on_a_40_kb_line_shows_a_short_excerpt() {
    let dir = scratch("toml");
    std::fs::create_dir_all(dir.join("s")).unwrap();
    scenario(
        &dir.join("s"),
        "deep",
        &format!("name = {}", "[".repeat(40_000)),
    );
    let (code, stderr) = faultline(&dir, &["chaos", "list", "s"], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("deep.toml") && stderr.contains("line 1, column"),
        "{stderr}"
    );
    assert!(stderr.len() < 600, "{} bytes of error", stderr.len());
}

#[tokio::test]
async fn bad_infrastructure_settings_exit_2_naming_the_variable_before_anything_starts() {
    let dir = scratch("environment");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chaos/scenarios/saga-compensation-payment-down.toml");
    let shipped = shipped.to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["chaos", "run", shipped, "--out", "out"],
        &["stack", "up"],
        &["contracts", "verify", "--out", "out"],
        &["bench", "infra", "--iterations", "1"],
    ];
    let settings: [(&[(&str, &str)], &str); 3] = [
        (&[("FAULTLINE_INFRA", "bogus")], "FAULTLINE_INFRA"),
        (
            &[("FAULTLINE_INFRA", "external")],
            "FAULTLINE_TOXIPROXY_URL",
        ),
        (
            &[
                ("FAULTLINE_INFRA", "external"),
                ("FAULTLINE_TOXIPROXY_URL", "not a url"),
            ],
            "FAULTLINE_TOXIPROXY_URL",
        ),
    ];
    for args in commands {
        for (env, variable) in settings {
            let mut env = env.to_vec();
            if !env.iter().any(|(k, _)| *k == "FAULTLINE_TOXIPROXY_URL") {
                env.push(("FAULTLINE_TOXIPROXY_URL", ""));
            }
            let (code, stderr) = faultline(&dir, args, &env).await;
            assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
            assert!(stderr.contains(variable), "{args:?} {env:?}: {stderr}");
            assert!(stderr.contains("nothing was started"), "{args:?}: {stderr}");
        }
    }
}

#[tokio::test]
async fn a_malformed_broker_database_url_exits_2_naming_it() {
    let dir = scratch("broker");
    let (code, stderr) = faultline(
        &dir,
        &["broker", "serve", "--addr", "127.0.0.1:0"],
        &[
            (
                "FAULTLINE_BROKER_DATABASE_URL",
                "postgres://u@127.0.0.1:notaport/db",
            ),
            ("FAULTLINE_BROKER_WRITE_TOKEN", "w"),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("FAULTLINE_BROKER_DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn bench_counts_of_zero_exit_2_naming_the_flag() {
    let dir = scratch("bench");
    let cases: [(&[&str], &str); 7] = [
        (&["bench", "proxy", "--requests", "0"], "--requests"),
        (&["bench", "proxy", "--concurrency", "8,0"], "--concurrency"),
        (&["bench", "infra", "--iterations", "0"], "--iterations"),
        (&["bench", "contracts", "--iterations", "0"], "--iterations"),
        (&["bench", "saga", "--orders", "0"], "--orders"),
        (&["bench", "saga", "--concurrency", "0"], "--concurrency"),
        (&["bench", "saga", "--concurrency", "4,0"], "--concurrency"),
    ];
    for (args, flag) in cases {
        let (code, stderr) = faultline(&dir, args, &[]).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("1 or more"),
            "{args:?}: {stderr}"
        );
    }
}

/// `bench saga` is the benchmark the reference system's extension offers: a system whose
/// description names no extension offering one is input to fix, named, with nothing started.
#[tokio::test]
async fn bench_saga_of_a_system_without_that_benchmark_exits_2_naming_the_description() {
    let dir = scratch("bench-saga");
    std::fs::write(
        dir.join("faultline.toml"),
        "name = \"plain\"\n[services.app]\ncommand = [\"./app\"]\nready = { log = \"ready\" }\n",
    )
    .unwrap();
    let args = ["--system", "faultline.toml", "bench", "saga", "--orders", "1"];
    let (code, stderr) = faultline(&dir, &args, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("faultline.toml")
            && stderr.contains("no benchmark named saga")
            && stderr.contains("nothing was started"),
        "{stderr}"
    );
}

#[tokio::test]
async fn contracts_diff_of_an_empty_enum_exits_2_in_both_directions() {
    let dir = scratch("enum");
    std::fs::write(
        dir.join("empty.json"),
        r#"{"type": "object", "properties": {"state": {"enum": []}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("open.json"),
        r#"{"type": "object", "properties": {"state": {"type": "string"}}}"#,
    )
    .unwrap();
    for (old, new) in [("empty.json", "open.json"), ("open.json", "empty.json")] {
        for mode in ["backward", "forward", "full"] {
            let (code, stderr) =
                faultline(&dir, &["contracts", "diff", old, new, "--mode", mode], &[]).await;
            assert_eq!(code, Some(2), "{old} {new} {mode}: {stderr}");
            assert!(
                stderr.contains("empty.json") && stderr.contains("enum"),
                "{old} {new} {mode}: {stderr}"
            );
            assert!(!stderr.contains("BREAKING"), "{stderr}");
        }
    }
}
