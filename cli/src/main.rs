//! The `faultline` command: a thin shell over the harness library. `main` parses the command
//! line, runs the command under the process's one interrupt handler, and turns how it ended
//! into the exit code in one place ([`error::CliError::exit_code`]; docs/exit-codes.md).
//! `flags` is the command line; each command group renders its output in its own module.

mod bench;
mod broker;
mod chaos;
mod contracts;
mod error;
mod flags;
mod init;
mod interrupt;
mod report;
mod stack;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use error::{CliError, Then, NOTHING_STARTED};
use faultline_harness::system::{System, DEFAULT_FILE};
use flags::{Cli, Command};
use interrupt::Interrupt;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match Interrupt::install() {
        Ok(interrupt) => {
            interrupt
                .run(exec(cli.command, cli.system.as_deref(), &interrupt))
                .await
        }
        Err(error) => Err(error),
    };
    error::exit_code(result)
}

/// `system` is the `--system` flag: the commands that start or validate against a system
/// read it with [`system`].
async fn exec(
    command: Command,
    system: Option<&Path>,
    interrupt: &Interrupt,
) -> Result<(), CliError> {
    match command {
        Command::Init { dir } => init::exec(&dir),
        Command::Stack { command } => stack::exec(command, system).await,
        Command::Chaos { command } => chaos::exec(command, system, interrupt).await,
        Command::Bench {
            services_build,
            command,
        } => bench::exec(command, services_build, system).await,
        Command::Report { command } => report::exec(command),
        Command::Contracts { command } => contracts::exec(command, system).await,
        Command::Broker { command } => broker::exec(command, interrupt).await,
    }
}

/// The system description named by `--system`, or `./faultline.toml`; one that cannot be
/// read is input to fix, with nothing started.
/// The description `--system` names (or `faultline.toml` here) and the registry of the
/// extension it names (linked once, here); both input to fix when wrong, with nothing started.
fn system(flag: Option<&Path>) -> Result<(System, faultline_harness::extension::Registry), CliError> {
    let path = flag.map_or_else(|| PathBuf::from(DEFAULT_FILE), Path::to_path_buf);
    if flag.is_none() && !path.is_file() {
        return Err(CliError::input(anyhow::anyhow!(
            "no system description: {DEFAULT_FILE} is not in the current folder; pass --system FILE \
             (`faultline init` writes a starter; the reference system is services/faultline.toml)"
        )))
        .then(NOTHING_STARTED);
    }
    let system = System::load(&path).then(NOTHING_STARTED)?;
    let registry =
        faultline_harness::extension::Registry::linked(&system, &extensions()).then(NOTHING_STARTED)?;
    Ok((system, registry))
}

/// The extensions this program links, offered to any description that names one: the
/// reference system's.
fn extensions() -> Vec<std::sync::Arc<dyn faultline_harness::extension::Extension>> {
    vec![faultline_reference::extension()]
}

/// `<dir>` of the working directory, or of the source tree this binary was built from.
fn shipped(dir: &str) -> PathBuf {
    let local = PathBuf::from(dir);
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)
    }
}
