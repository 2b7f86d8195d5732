//! `faultline report list | open | diff | index`: reading the folders chaos runs write. A
//! report that cannot be found or read is input to fix (exit 2), naming the file and what is
//! wrong with it.

use faultline_harness::report::{self, diff::ReportDiff, index::utc};

use crate::error::CliError;
use crate::flags::ReportCommand;

pub fn exec(command: ReportCommand) -> Result<(), CliError> {
    match command {
        ReportCommand::List { dir } => {
            let runs = report::list_runs(&dir)?;
            for run in &runs {
                match &run.report {
                    Ok(r) => {
                        let failed: Vec<&str> = r.failed.iter().map(String::as_str).collect();
                        println!(
                            "{}  {:<6}  {}{}",
                            utc(r.run.started_unix_ms),
                            if r.run.passed { "passed" } else { "FAILED" },
                            run.name(),
                            if failed.is_empty() {
                                String::new()
                            } else {
                                format!("  ({})", failed.join(", "))
                            }
                        );
                    }
                    Err(error) => println!("unreadable  {}: {error}", run.name()),
                }
            }
            let plural = if runs.len() == 1 { "" } else { "s" };
            println!("{} run{plural} in {}", runs.len(), dir.display());
            Ok(())
        }
        ReportCommand::Open { run, dir, browser } => {
            let found = report::find_run(&dir, &run)?;
            // The page is drawn from report.json: a report that does not read is not one to
            // show, however its page looks.
            report::load(&found)?;
            let page = found.join("report.html");
            if !page.is_file() {
                return Err(CliError::input(anyhow::anyhow!(
                    "{} is missing although report.json is there\nhint: re-run the scenario (`faultline chaos run`) to write its report again",
                    page.display()
                )));
            }
            let page = page.canonicalize().unwrap_or(page);
            println!("{}", page.display());
            if browser {
                let program = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
                std::process::Command::new(&program)
                    .arg(&page)
                    .spawn()
                    .map_err(|error| {
                        CliError::CouldNotRun(anyhow::anyhow!(
                            "starting {program} {}: {error}\nhint: set BROWSER to your browser's command",
                            page.display()
                        ))
                    })?;
            }
            Ok(())
        }
        ReportCommand::Diff { a, b, dir } => {
            let load = |run: &str| report::find_run(&dir, run).and_then(|d| report::load(&d));
            let (a, b) = (load(&a)?, load(&b)?);
            print!("{}", ReportDiff::between(&a, &b).render(&a, &b));
            Ok(())
        }
        ReportCommand::Index { dir } => {
            report::write_index(&dir)?;
            println!("{}", dir.join("index.html").display());
            Ok(())
        }
    }
}
