//! `faultline init` writes a starter description and scenario that the other commands accept
//! as they are, and never overwrites.

use std::process::Command;

fn faultline(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(dir)
        .env_remove("FAULTLINE_SYSTEM")
        .output()
        .unwrap()
}

#[test]
fn init_writes_a_starter_that_validates_and_never_overwrites() {
    let dir = std::env::temp_dir().join(format!("faultline-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let output = faultline(&dir, &["init"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let description = std::fs::read_to_string(dir.join("faultline.toml")).unwrap();
    assert!(description.contains("[services.api]"));
    assert!(dir
        .join("scenarios/api-survives-a-slow-database.toml")
        .is_file());

    // The default description is ./faultline.toml: `chaos list` validates the scenario
    // against it and lists its fault.
    let output = faultline(&dir, &["chaos", "list", "scenarios"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout.contains("api-survives-a-slow-database"), "{stdout}");
    assert!(stdout.contains("api->postgres"), "{stdout}");

    // A second init refuses, naming the file, and leaves what is there alone.
    std::fs::write(dir.join("faultline.toml"), "# mine\n").unwrap();
    let output = faultline(&dir, &["init"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("faultline.toml exists already"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("faultline.toml")).unwrap(),
        "# mine\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
