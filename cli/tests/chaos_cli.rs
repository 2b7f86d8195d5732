//! `faultline chaos run` refuses a malformed scenario, or a malformed system description,
//! before anything starts: exit code 2, an error naming the file and the field, and no
//! container created by the command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline_harness::infra::docker::{Engine, LABEL_PID};

fn reference_description() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/faultline.toml")
}

/// Runs `faultline` with `args` in `dir`; its output and pid.
fn faultline(dir: &Path, args: &[&str]) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(dir)
        .env_remove("FAULTLINE_SYSTEM")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

/// Asserts that no container or network carries `pid`'s label.
async fn nothing_started_by(pid: u32) {
    if let Ok(engine) = Engine::connect().await {
        let (containers, networks) = engine.labelled(LABEL_PID, &pid.to_string()).await.unwrap();
        assert!(
            containers.is_empty() && networks.is_empty(),
            "{containers:?} {networks:?}"
        );
    }
}

const SCENARIO: &str =
    "name = \"ok\"\ndescription = \"d\"\n[workload]\nrequests = 1\nduration = \"10s\"\n";

#[tokio::test]
async fn every_class_of_bad_description_exits_2_naming_file_and_field_and_starts_nothing() {
    let dir = std::env::temp_dir().join(format!("faultline-system-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ok.toml"), SCENARIO).unwrap();
    let service = |extra: &str| {
        format!(
            "[postgres]\ndatabases = [\"a\"]\n[services.a]\ncommand = [\"./a\"]\n\
             env = {{ PORT = \"{{port}}\", DB = \"{{postgres.url:a}}\" }}\n{extra}\n\
             [services.b]\ncommand = [\"./b\"]\nenv = {{ PORT = \"{{port}}\", A = \"{{link:b->a}}\" }}\n"
        )
    };
    let cases = [
        (
            "unknown-field",
            service("colour = \"red\""),
            "services.a.colour",
            "unknown field",
        ),
        (
            "unknown-placeholder",
            service("").replace("{postgres.url:a}", "{postgres.link:a}"),
            "services.a.env.DB",
            "unknown placeholder",
        ),
        (
            "cycle",
            service("depends_on = [\"b\"]"),
            "services.a.depends_on",
            "dependency cycle",
        ),
        (
            "unknown-link",
            service("").replace("{link:b->a}", "{link:b->c}"),
            "services.b.env.A",
            "not another described service",
        ),
        // Read well, but refused when the stack would start, before anything does.
        (
            "container-env-unset",
            service("").replace(
                "[services.a]",
                "[containers.cache]\nimage = \"redis:7\"\nport = 6379\n\
                 env = { PASSWORD = \"{env:FAULTLINE_CLI_TEST_SURELY_UNSET}\" }\n[services.a]",
            ) + "[workload]\n[[workload.operations]]\nname = \"get\"\nservice = \"a\"\nmethod = \"GET\"\npath = \"/\"\n",
            "containers.cache.env.PASSWORD",
            "the variable FAULTLINE_CLI_TEST_SURELY_UNSET is not set for faultline",
        ),
        (
            "not-toml",
            "[services\n".to_string(),
            "(file)",
            "not valid TOML",
        ),
    ];
    for (name, text, field, says) in cases {
        let file = dir.join(format!("{name}.faultline.toml"));
        std::fs::write(&file, text).unwrap();
        let (output, pid) = faultline(
            &dir,
            &[
                "--system",
                &file.display().to_string(),
                "chaos",
                "run",
                "ok.toml",
                "--out",
                "out",
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}.faultline.toml: {field}: ")),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(stderr.contains("nothing was started"), "{name}: {stderr}");
        nothing_started_by(pid).await;
        assert!(!dir.join("out").exists(), "{name}: no report folder");
    }

    // Without --system, a folder with no faultline.toml is refused the same way.
    let (output, pid) = faultline(&dir, &["chaos", "run", "ok.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no system description: faultline.toml"),
        "{stderr}"
    );
    nothing_started_by(pid).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_scenario_targeting_what_the_description_lacks_exits_2() {
    let dir = std::env::temp_dir().join(format!("faultline-topology-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // payment->kafka is no link of the reference system: payment does not use Kafka.
    std::fs::write(
        dir.join("ok.toml"),
        format!("{SCENARIO}[[faults]]\nstart = \"1s\"\nduration = \"1s\"\ntarget = \"payment->kafka\"\nkind = \"partition\"\n"),
    )
    .unwrap();
    let (output, pid) = faultline(
        &dir,
        &[
            "--system",
            &reference_description().display().to_string(),
            "chaos",
            "run",
            "ok.toml",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("ok.toml: faults[0].target: unknown link \"payment->kafka\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("order->payment"),
        "lists the links there are: {stderr}"
    );
    nothing_started_by(pid).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_malformed_scenario_exits_2_naming_file_and_field_and_starts_nothing() {
    let dir = std::env::temp_dir().join(format!("faultline-chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "name = \"broken\"\ndescription = \"d\"\n[workload]\nrequests = 1\nduration = \"10s\"\n\
         [[faults]]\nstart = \"1s\"\nduration = \"1s\"\ntarget = \"order\"\nkind = \"explode\"\n",
    )
    .unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("--system")
        .arg(reference_description())
        .args(["chaos", "run"])
        .arg(&file)
        .args(["--out", &dir.join("out").display().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("broken.toml"), "names the file: {stderr}");
    assert!(
        stderr.contains("faults[0].kind"),
        "names the field: {stderr}"
    );
    assert!(
        stderr.contains("unknown fault kind \"explode\""),
        "says what is wrong: {stderr}"
    );

    // Nothing was started: no container or network carries the command's pid.
    if let Ok(engine) = Engine::connect().await {
        let (containers, networks) = engine.labelled(LABEL_PID, &pid.to_string()).await.unwrap();
        assert!(
            containers.is_empty() && networks.is_empty(),
            "{containers:?} {networks:?}"
        );
    }
    assert!(
        !dir.join("out").exists(),
        "no report folder for a run that never started"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `chaos explore` refuses what it cannot use before anything starts: a malformed base
/// scenario, a bad flag, and a folder holding another exploration (resuming would mix two).
#[tokio::test]
async fn explore_refuses_a_bad_base_a_bad_flag_and_another_explorations_folder_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("faultline-explore-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let system = reference_description();
    let system = system.to_str().unwrap();
    std::fs::write(dir.join("bad.toml"), "name = \"bad\"\ndescription = \"d\"\n[workload]\nrequests = 0\nduration = \"5s\"\n").unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaos/explore/place-orders.toml");
    let base = base.to_str().unwrap();
    // Another base's exploration in the folder.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(include_str!("explore-state.json")).unwrap();
    state["scenario"] = "someone-else".into();
    std::fs::write(other.join("explore.json"), state.to_string()).unwrap();
    let other = other.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--system", system, "chaos", "explore", "bad.toml"], "requests"),
        (&["--system", system, "chaos", "explore", base, "--time", "soon"], "--time"),
        (&["--system", system, "chaos", "explore", base, "--budget", "0"], "--budget"),
        (&["--system", system, "chaos", "explore", base, "--out", other], "someone-else"),
    ];
    for (args, names) in cases {
        let (output, pid) = faultline(&dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?} names {names}: {stderr}");
        nothing_started_by(pid).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A system that cannot start is not a system that broke a promise: `chaos run DIR` names
/// every scenario as not run (none silently skipped), claims no reports, and exits 3 — what
/// it started removed.
#[tokio::test]
async fn scenarios_that_could_not_run_exit_3_each_named_and_nothing_left_behind() {
    let dir = std::env::temp_dir().join(format!("faultline-not-run-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    std::fs::write(
        dir.join("faultline.toml"),
        "name = \"broken\"\n[services.api]\ncommand = [\"sh\", \"-c\", \"echo starting; exit $CODE\"]\nready_timeout = \"5s\"\n[services.api.env]\nAPI_PORT = \"{port}\"\nCODE = \"7\"\n",
    )
    .unwrap();
    for name in ["one", "two"] {
        std::fs::write(
            dir.join(format!("scenarios/{name}.toml")),
            format!("name = \"{name}\"\ndescription = \"d\"\n[workload]\nrequests = 1\nduration = \"2s\"\n[[workload.operations]]\nname = \"ping\"\nservice = \"api\"\nmethod = \"GET\"\npath = \"/\"\n"),
        )
        .unwrap();
    }
    let (output, pid) = faultline(&dir, &["--system", "faultline.toml", "chaos", "run", "scenarios", "--out", "reports"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    for name in ["one", "two"] {
        assert!(stdout.contains(&format!("NOT RUN {name} ")), "{stdout}");
    }
    assert!(stdout.contains("2 scenarios in ") && stdout.contains(": 0 passed, 0 failed, 2 could not run"), "{stdout}");
    assert!(!stdout.contains("reports listed"), "no report was written: {stdout}");
    assert!(stderr.contains("could not run: nothing is known about the system's promises (exit 3)"), "{stderr}");
    nothing_started_by(pid).await;

    // --service-env reaches the service (here: the code it exits with), as explore's does.
    let (output, pid) = faultline(
        &dir,
        &["--system", "faultline.toml", "chaos", "run", "scenarios/one.toml", "--out", "reports", "--service-env", "api:CODE=5"],
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("NOT RUN one") && stdout.contains("exit status: 5"), "{stdout}");
    nothing_started_by(pid).await;

    // A migration step (`before`) that fails is a start that failed: it runs with the
    // service's environment (the code it exits with), the service itself never starts.
    std::fs::write(
        dir.join("migrating.toml"),
        "name = \"migrating\"\n[services.api]\ncommand = [\"sh\", \"-c\", \"echo serving; exit 7\"]\nbefore = [\"sh\", \"-c\", \"echo migrating; exit $CODE\"]\nready_timeout = \"5s\"\n[services.api.env]\nAPI_PORT = \"{port}\"\nCODE = \"0\"\n",
    )
    .unwrap();
    let (output, pid) = faultline(
        &dir,
        &["--system", "migrating.toml", "chaos", "run", "scenarios/one.toml", "--out", "reports", "--service-env", "api:CODE=4"],
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("NOT RUN one")
            && stdout.contains("sh -c echo migrating; exit $CODE) failed: exit status: 4")
            && stdout.contains("migrating")
            && !stdout.contains("serving"),
        "{stdout}"
    );
    nothing_started_by(pid).await;

    // One naming no described service is input: exit 2, nothing started.
    let (output, pid) = faultline(
        &dir,
        &["--system", "faultline.toml", "chaos", "run", "scenarios", "--service-env", "ap:CODE=5"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--service-env ap:CODE=…: \"ap\" is not a service of faultline.toml; its services: api")
            && stderr.contains("nothing was started"),
        "{stderr}"
    );
    nothing_started_by(pid).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
