//! `faultline chaos run` refuses a malformed scenario before anything starts: exit code 2, an
//! error naming the file and the field, and no container created by the command.

use std::process::Command;

use faultline_harness::infra::docker::{Engine, LABEL_PID};

#[tokio::test]
async fn a_malformed_scenario_exits_2_naming_file_and_field_and_starts_nothing() {
    let dir = std::env::temp_dir().join(format!("faultline-chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(
        &file,
        "name = \"broken\"\ndescription = \"d\"\n[workload]\norders = 1\nduration = \"10s\"\n\
         [[faults]]\nstart = \"1s\"\nduration = \"1s\"\ntarget = \"order\"\nkind = \"explode\"\n",
    )
    .unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
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
