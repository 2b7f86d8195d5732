//! Errors of the infrastructure module. Each says what went wrong and what to do next.

use std::time::Duration;

use faultline_chaos::toxiproxy::ToxiproxyError;

/// Why the infrastructure could not be started, used or torn down.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error(
        "cannot reach the Docker engine at {docker_host}: {source}\n\
         hint: start the engine, or run `ci/setup` (installs and starts one where none runs), \
         or point DOCKER_HOST at a running engine"
    )]
    DockerUnreachable {
        docker_host: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "image `{image}` (from {variable}) is not available: {reason}\n\
         hint: run `ci/setup` to build the local images (faultline finds them in \
         .faultline/images.env), or set {variable} to an image this Docker engine has"
    )]
    ImageUnavailable {
        variable: &'static str,
        image: String,
        reason: String,
    },

    #[error(
        "image `{image}` (named by {named_by}) is not available: {reason}\n\
         hint: build it or load it into this Docker engine (`docker image ls` lists what it has)"
    )]
    DescribedImageUnavailable {
        image: String,
        named_by: String,
        reason: String,
    },

    #[error("docker: {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// Boxed: testcontainers' error is large, and this one travels up through every run error.
    #[error("testcontainers: {action}: {source}")]
    Testcontainers {
        action: String,
        #[source]
        source: Box<testcontainers::TestcontainersError>,
    },

    #[error(
        "{service} did not become ready within {timeout:?}; last check: {last_error}\n\
         --- last lines of the {service} container log ---\n{log_tail}"
    )]
    NotReady {
        service: String,
        timeout: Duration,
        last_error: String,
        log_tail: String,
    },

    #[error(
        "the {service} container exited during start-up (exit code {exit_code:?})\n\
         --- last lines of its log ---\n{log_tail}"
    )]
    Exited {
        service: String,
        exit_code: Option<i64>,
        log_tail: String,
    },

    #[error("toxiproxy: {0}")]
    Toxiproxy(#[from] ToxiproxyError),

    /// An environment variable the user sets is missing or malformed: input to fix, found
    /// before anything starts.
    #[error("{variable}: {problem}")]
    Environment {
        variable: &'static str,
        problem: String,
    },

    #[error("configuration: {0}")]
    Config(String),

    /// A description's value the user must fix (an unset variable it names), found before
    /// anything starts.
    #[error("{0}")]
    Input(String),

    #[error("{0} is not part of this stack (the infrastructure was started without it)")]
    Missing(&'static str),
}

impl InfraError {
    pub(crate) fn docker(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        Self::Docker {
            action: action.into(),
            source,
        }
    }

    /// Whether the user can fix this by changing their input (an environment variable, a
    /// description's value): found before anything started.
    pub fn is_input(&self) -> bool {
        matches!(self, Self::Environment { .. } | Self::Input(_))
    }

    /// An [`InfraError::ImageUnavailable`] for an image a description names rather than a
    /// variable; any other error as it is.
    pub fn named_by(self, field: String) -> Self {
        match self {
            Self::ImageUnavailable { image, reason, .. } => Self::DescribedImageUnavailable {
                image,
                named_by: field,
                reason,
            },
            other => other,
        }
    }
}
