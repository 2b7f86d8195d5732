//! `faultline init [DIR]`: a commented starter `faultline.toml` and a first scenario, both
//! valid as written, for a team pointing faultline at its own services. It never overwrites:
//! a file already there is input to fix (exit 2), and then nothing is written.

use std::path::Path;

use anyhow::anyhow;

use crate::error::CliError;

const DESCRIPTION: &str = include_str!("starter/faultline.toml");
const SCENARIO: &str = include_str!("starter/scenario.toml");
const SCENARIO_FILE: &str = "scenarios/api-survives-a-slow-database.toml";

pub fn exec(dir: &Path) -> Result<(), CliError> {
    let files = [
        (dir.join("faultline.toml"), DESCRIPTION),
        (dir.join(SCENARIO_FILE), SCENARIO),
    ];
    for (path, _) in &files {
        if path.exists() {
            return Err(CliError::input(anyhow!(
                "{} exists already; faultline init writes only new files (nothing was written)",
                path.display()
            )));
        }
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::CouldNotRun(anyhow!("creating {}: {e}", parent.display())))?;
        }
        std::fs::write(path, text)
            .map_err(|e| CliError::CouldNotRun(anyhow!("writing {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    println!(
        "next: describe your services in {}, then `faultline chaos run {}`",
        files[0].0.display(),
        files[1].0.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_chaos::scenario::Scenario;
    use faultline_harness::system::System;

    #[test]
    fn the_starter_files_are_valid_as_written() {
        let system = System::parse("faultline.toml", Path::new("."), DESCRIPTION)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(system.topology().link_names(), ["api->postgres"]);
        let scenario = Scenario::parse(SCENARIO_FILE, system.topology(), SCENARIO)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            format!("scenarios/{}.toml", scenario.name),
            SCENARIO_FILE,
            "the scenario is named for its file"
        );
    }
}
