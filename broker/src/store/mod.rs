//! The broker's tables and the decisions made on them. Every write is one transaction, so a
//! refused request leaves nothing behind.
//!
//! One file per concern: `pacts.rs` (canonical contents, publishing, reading pacts),
//! `pacticipants.rs` (pacticipants, versions, branches, tags), `verification.rs` (what a provider
//! should verify, and its results), `deployments.rs` (environments, deployed and released
//! versions), and `matrix.rs` (the matrix and can-i-deploy). Their public items are re-exported
//! here.

mod deployments;
mod matrix;
mod pacticipants;
mod pacts;
mod verification;

pub use crate::client::Selector;
pub use deployments::{
    create_environment, current_deployments, deployment, end_deployment, environment, environments,
    record_deployment, Deployment, DeploymentKind, Environment,
};
pub use matrix::{
    can_i_deploy, can_i_deploy_together, matrix, Check, Decision, MatrixRow, Target,
    VerificationRef,
};
pub use pacticipants::{
    latest_version, pacticipant, pacticipants, put_branch_version, put_tag, put_version,
    upsert_pacticipant, version, LatestOf, PacticipantFields, PacticipantInfo, VersionInfo,
};
pub use pacts::{
    latest_pacts, latest_pacts_of_every_integration, pact_by_sha, pact_for_version, publish,
    CanonicalPact, LatestPact, Published,
};
pub use verification::{
    pacts_for_verification, record_verification, verification, verified_on_branch,
    ForVerificationRequest, PactToVerify, VerificationBody, VerificationRecord,
};

/// Why a request was refused; the API turns each into its status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// 400: the request is malformed; the message says what and where.
    #[error("{0}")]
    Invalid(String),
    /// 409: it contradicts what is stored (a published contract is immutable).
    #[error("{0}")]
    Conflict(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 500: a fault of the server; the message is for its log, never for the answer.
    #[error("database: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    /// Postgres refuses some values as data exceptions (SQLSTATE class 22: a NUL character in
    /// text, an invalid byte sequence, a value out of range). Those came from the request, so
    /// they are the client's to fix, not a fault of the server.
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.code().is_some_and(|c| c.starts_with("22")) {
                return StoreError::Invalid(
                    "the request holds a value the broker cannot store (such as a NUL character)"
                        .into(),
                );
            }
        }
        StoreError::Database(e)
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// Pacticipant and version names: non-empty, at most 200 characters, no `/` (they are path
/// segments of every resource). Branches and tags may hold `/` (`feature/x`): they travel
/// percent-encoded.
///
/// `.` and `..` are refused everywhere: as path segments they would resolve to other resources.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let slash_allowed = matches!(what, "branch" | "tag" | "mainBranch");
    if name.trim().is_empty()
        || name.len() > 200
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
        || (!slash_allowed && name.contains('/'))
    {
        return Err(StoreError::Invalid(format!(
            "{what} {name:?}: expected a non-empty name of at most 200 characters, without control characters, not \".\" or \"..\"{}",
            if slash_allowed { "" } else { ", without '/'" }
        )));
    }
    Ok(())
}

/// Free text a person reads (display names, build URLs): at most 2000 characters, no control
/// characters other than tab and newline.
pub fn check_text(what: &str, text: &str) -> Result<()> {
    if text.len() > 2000
        || text
            .chars()
            .any(|c| c.is_control() && c != '\t' && c != '\n')
    {
        return Err(StoreError::Invalid(format!(
            "{what}: expected at most 2000 characters without control characters"
        )));
    }
    Ok(())
}
