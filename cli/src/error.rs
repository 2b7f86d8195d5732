//! The one place that decides the exit code: every command returns a [`CliError`], built
//! from the libraries' typed errors by the `From` impls below, and [`CliError::exit_code`]
//! maps it. The rule (docs/exit-codes.md): input the user can fix — a file, a flag, the
//! environment — is 2 and nothing was started; a check that did not hold (or a broker's
//! refusal) is 1; a command that could not do what was asked — the infrastructure, a
//! service, a broker out of reach, the disk — is 3, and says nothing about the system's
//! promises; an interrupt is 130.

use std::process::ExitCode;

use faultline_chaos::scenario::ScenarioError;
use faultline_contracts::compat::SchemaError;
use faultline_contracts::files::FileError;
use faultline_contracts::PactError;
use faultline_broker::client::ClientError;
use faultline_broker::BrokerError;
use faultline_harness::infra::InfraError;
use faultline_harness::report::ReportError;
use faultline_harness::runner::RunError;
use faultline_harness::stack::StackError;
use faultline_harness::system::DescriptionError;

/// How a command ended, when it did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// Input the user can fix: a file, a flag or the environment. `then` says what did not
    /// happen because of it ("nothing was started").
    Input {
        error: anyhow::Error,
        then: Option<&'static str>,
    },
    /// Could not do what was asked: the infrastructure or a service did not start, a broker
    /// could not be reached, an output could not be written. Nothing is known about the
    /// system's promises: never reported as a check that failed.
    CouldNotRun(anyhow::Error),
    /// A broker refused what was asked (a 409 for another content under a published
    /// version, a 400 for a malformed pact): like a check that did not hold.
    Refused(anyhow::Error),
    /// A check ran and did not hold; the command has printed what failed.
    CheckFailed,
    /// SIGINT or SIGTERM; what the command started has been removed.
    Interrupted,
}

impl CliError {
    /// Input the user can fix, whatever its type.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        CliError::Input {
            error: error.into(),
            then: None,
        }
    }

    /// The same ending, its error prefixed with what was being done.
    pub fn context(self, doing: String) -> Self {
        match self {
            CliError::Input { error, then } => CliError::Input { error: error.context(doing), then },
            CliError::CouldNotRun(error) => CliError::CouldNotRun(error.context(doing)),
            CliError::Refused(error) => CliError::Refused(error.context(doing)),
            other => other,
        }
    }

    /// The process exit code for this ending.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input { .. } => 2,
            CliError::Refused(_) | CliError::CheckFailed => 1,
            CliError::CouldNotRun(_) => 3,
            CliError::Interrupted => 130,
        }
    }

    /// Prints what the user needs to know; the command printed the rest.
    pub fn report(&self) {
        match self {
            CliError::Input { error, then } => {
                eprintln!("error: {error:#}");
                if let Some(then) = then {
                    eprintln!("{then}");
                }
            }
            CliError::CouldNotRun(error) => {
                eprintln!("error: {error:#}");
                eprintln!("could not run: nothing is known about the system's promises (exit 3)");
            }
            CliError::Refused(error) => eprintln!("error: {error:#}"),
            CliError::CheckFailed | CliError::Interrupted => {}
        }
    }
}

/// The process's exit code for a command's result, the error printed first.
pub fn exit_code(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error.report();
            ExitCode::from(error.exit_code())
        }
    }
}

/// Says what did not happen because of bad input: `.then(NOTHING_STARTED)?`.
pub trait Then<T> {
    fn then(self, then: &'static str) -> Result<T, CliError>;
}

impl<T, E: Into<CliError>> Then<T> for Result<T, E> {
    fn then(self, then: &'static str) -> Result<T, CliError> {
        self.map_err(|error| match error.into() {
            CliError::Input { error, .. } => CliError::Input {
                error,
                then: Some(then),
            },
            other => other,
        })
    }
}

pub const NOTHING_STARTED: &str = "nothing was started";

macro_rules! input {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for CliError {
            fn from(error: $error) -> Self {
                CliError::input(error)
            }
        }
    )*};
}

macro_rules! could_not_run {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for CliError {
            fn from(error: $error) -> Self {
                CliError::CouldNotRun(error.into())
            }
        }
    )*};
}

// Files the user wrote or pointed at.
input!(
    ScenarioError,
    DescriptionError,
    FileError,
    PactError,
    SchemaError,
    ReportError
);
// Writing outputs happens while running.
could_not_run!(std::io::Error, serde_json::Error);

/// A broker's refusal is its answer (1); one that cannot be reached answered nothing (3).
impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Refused { .. } => CliError::Refused(error.into()),
            ClientError::Transport { .. } => CliError::CouldNotRun(error.into()),
        }
    }
}

impl From<InfraError> for CliError {
    fn from(error: InfraError) -> Self {
        if error.is_input() {
            CliError::input(error)
        } else {
            CliError::CouldNotRun(error.into())
        }
    }
}

impl From<StackError> for CliError {
    fn from(error: StackError) -> Self {
        match error {
            StackError::Infra(infra) => infra.into(),
            other => CliError::CouldNotRun(other.into()),
        }
    }
}

impl From<RunError> for CliError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Interrupted { .. } => CliError::Interrupted,
            RunError::Stack(stack) => stack.into(),
            other => CliError::CouldNotRun(other.into()),
        }
    }
}

impl From<BrokerError> for CliError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::Config { .. } => CliError::input(error),
            other => CliError::CouldNotRun(other.into()),
        }
    }
}

/// Library code that returns `anyhow` carries its typed error inside; input is recognised
/// by the same types as above.
impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        let input = error.is::<ScenarioError>()
            || error.is::<DescriptionError>()
            || error.is::<FileError>()
            || error.is::<PactError>()
            || error.is::<SchemaError>()
            || error
                .downcast_ref::<InfraError>()
                .is_some_and(InfraError::is_input)
            || matches!(
                error.downcast_ref::<StackError>(),
                Some(StackError::Infra(infra)) if infra.is_input()
            );
        if input {
            CliError::input(error)
        } else {
            CliError::CouldNotRun(error)
        }
    }
}
