//! The broker's tables and the decisions made on them. Every write is one transaction, so a
//! refused request leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use faultline_contracts::Pact;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use sqlx::PgConnection;
use uuid::Uuid;

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

/// A pact as the broker keeps it: faultline's canonical text and its SHA-256.
#[derive(Debug, Clone)]
pub struct CanonicalPact {
    pub consumer: String,
    pub provider: String,
    pub text: String,
    pub sha: String,
}

impl CanonicalPact {
    /// Reads `text` strictly (a 400 names the interaction and JSON path, or line and column).
    ///
    /// The sha identifies the contract, not the file: as the Pact Broker does, it covers the
    /// consumer, the provider and the interactions but not the metadata, which each writing
    /// library stamps with its own name and version. The same contract published by two tools
    /// is one content; the first text published is the one kept.
    pub fn parse(text: &str) -> Result<Self> {
        let pact = Pact::from_json_str(text)
            .map_err(|e| StoreError::Invalid(format!("not a pact faultline accepts: {e}")))?;
        let mut identity = pact.to_json();
        if let Some(doc) = identity.as_object_mut() {
            doc.remove("metadata");
        }
        let sha = hex(&Sha256::digest(identity.to_string().as_bytes()));
        let text = pact.to_json_string();
        Ok(Self {
            consumer: pact.consumer.name,
            provider: pact.provider.name,
            text,
            sha,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn descriptions(content: &str) -> Vec<String> {
    Pact::from_json_str(content)
        .map(|p| {
            p.interactions
                .iter()
                .map(|i| i.description().to_string())
                .collect()
        })
        .unwrap_or_default()
}

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

async fn pacticipant_id(tx: &mut PgConnection, name: &str) -> Result<i64> {
    check_name("pacticipant", name)?;
    Ok(sqlx::query_scalar(
        "INSERT INTO pacticipants (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?)
}

async fn version_id(tx: &mut PgConnection, pacticipant: &str, number: &str) -> Result<i64> {
    check_name("version", number)?;
    let pid = pacticipant_id(tx, pacticipant).await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO versions (pacticipant_id, number) VALUES ($1, $2)
         ON CONFLICT (pacticipant_id, number) DO UPDATE SET number = EXCLUDED.number RETURNING id",
    )
    .bind(pid)
    .bind(number)
    .fetch_one(&mut *tx)
    .await?)
}

async fn find_version(pool: &PgPool, pacticipant: &str, number: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT v.id FROM versions v JOIN pacticipants p ON p.id = v.pacticipant_id
         WHERE p.name = $1 AND v.number = $2",
    )
    .bind(pacticipant)
    .bind(number)
    .fetch_optional(pool)
    .await?)
}

async fn add_branch(tx: &mut PgConnection, version: i64, branch: &str) -> Result<()> {
    check_name("branch", branch)?;
    sqlx::query(
        "INSERT INTO version_branches (version_id, branch) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(version)
    .bind(branch)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn add_tag(tx: &mut PgConnection, version: i64, tag: &str) -> Result<()> {
    check_name("tag", tag)?;
    sqlx::query(
        "INSERT INTO version_tags (version_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(version)
    .bind(tag)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What one publication did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub consumer: String,
    pub provider: String,
    pub consumer_version: String,
    pub sha: String,
    /// False when the same content was already published for this version (idempotent).
    pub created: bool,
}

/// Publishes `pacts` (texts) for `consumer` version `version` with its branch and tags, all or
/// nothing. `expected` names the consumer and provider the path gave, when it gave them.
pub async fn publish(
    pool: &PgPool,
    consumer: &str,
    version: &str,
    branch: Option<&str>,
    tags: &[String],
    pacts: &[(Option<(String, String)>, String)],
) -> Result<Vec<Published>> {
    if pacts.is_empty() {
        return Err(StoreError::Invalid("no contracts to publish".into()));
    }
    let mut parsed = Vec::new();
    for (index, (expected, text)) in pacts.iter().enumerate() {
        let pact = CanonicalPact::parse(text).map_err(|e| match e {
            StoreError::Invalid(m) if pacts.len() > 1 => {
                StoreError::Invalid(format!("contracts[{index}]: {m}"))
            }
            other => other,
        })?;
        if pact.consumer != consumer {
            return Err(StoreError::Invalid(format!(
                "the pact's consumer is {:?} but it is published for {consumer:?}",
                pact.consumer
            )));
        }
        if let Some((c, p)) = expected {
            if &pact.consumer != c || &pact.provider != p {
                return Err(StoreError::Invalid(format!(
                    "the pact is between {:?} and {:?} but was sent to {c:?} -> {p:?}",
                    pact.consumer, pact.provider
                )));
            }
        }
        parsed.push(pact);
    }
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, consumer, version).await?;
    if let Some(branch) = branch {
        add_branch(&mut tx, vid, branch).await?;
        // As the Pact Broker does: a first publication from a conventional main branch makes it
        // the pacticipant's main branch, unless one was set.
        sqlx::query(
            "UPDATE pacticipants SET main_branch = $2
             WHERE name = $1 AND main_branch IS NULL AND $2 IN ('main', 'master', 'develop', 'trunk')",
        )
        .bind(consumer)
        .bind(branch)
        .execute(&mut *tx)
        .await?;
    }
    for tag in tags {
        add_tag(&mut tx, vid, tag).await?;
    }
    let mut done = Vec::new();
    for pact in parsed {
        let cid = pacticipant_id(&mut tx, &pact.consumer).await?;
        let pid = pacticipant_id(&mut tx, &pact.provider).await?;
        sqlx::query(
            "INSERT INTO pact_contents (sha, consumer_id, provider_id, content) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sha) DO NOTHING",
        )
        .bind(&pact.sha)
        .bind(cid)
        .bind(pid)
        .bind(&pact.text)
        .execute(&mut *tx)
        .await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO pact_publications (consumer_version_id, provider_id, sha) VALUES ($1, $2, $3)
             ON CONFLICT (consumer_version_id, provider_id) DO NOTHING RETURNING id",
        )
        .bind(vid)
        .bind(pid)
        .bind(&pact.sha)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            let existing: String = sqlx::query_scalar(
                "SELECT sha FROM pact_publications WHERE consumer_version_id = $1 AND provider_id = $2",
            )
            .bind(vid)
            .bind(pid)
            .fetch_one(&mut *tx)
            .await?;
            if existing != pact.sha {
                return Err(StoreError::Conflict(format!(
                    "{} version {version} already published a different pact with {} (sha {existing}, this one {}); published contracts are immutable: publish it as a new version",
                    pact.consumer, pact.provider, pact.sha
                )));
            }
        }
        done.push(Published {
            consumer: pact.consumer,
            provider: pact.provider,
            consumer_version: version.to_string(),
            sha: pact.sha,
            created: inserted.is_some(),
        });
    }
    tx.commit().await?;
    Ok(done)
}

/// What a pacticipant's `PUT`, `PATCH` or `POST` may set; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacticipantFields {
    pub name: Option<String>,
    pub main_branch: Option<String>,
    pub display_name: Option<String>,
    pub repository_url: Option<String>,
}

/// Creates the pacticipant and sets the fields given.
pub async fn upsert_pacticipant(
    pool: &PgPool,
    name: &str,
    fields: &PacticipantFields,
) -> Result<()> {
    if let Some(branch) = &fields.main_branch {
        check_name("mainBranch", branch)?;
    }
    if let Some(display) = &fields.display_name {
        check_text("displayName", display)?;
    }
    if let Some(url) = &fields.repository_url {
        check_text("repositoryUrl", url)?;
    }
    let mut tx = pool.begin().await?;
    let id = pacticipant_id(&mut tx, name).await?;
    sqlx::query(
        "UPDATE pacticipants SET main_branch = COALESCE($2, main_branch),
           display_name = COALESCE($3, display_name), repository_url = COALESCE($4, repository_url)
         WHERE id = $1",
    )
    .bind(id)
    .bind(&fields.main_branch)
    .bind(&fields.display_name)
    .bind(&fields.repository_url)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A pacticipant as the broker keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PacticipantInfo {
    pub name: String,
    pub main_branch: Option<String>,
    pub display_name: Option<String>,
    pub repository_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

// Column lists as macros: sqlx takes only literal SQL, which `concat!` of literals is.
macro_rules! pacticipant_columns {
    () => {
        "name, main_branch, display_name, repository_url, created_at"
    };
}

/// The pacticipant `name`, if the broker knows it.
pub async fn pacticipant(pool: &PgPool, name: &str) -> Result<Option<PacticipantInfo>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        pacticipant_columns!(),
        " FROM pacticipants WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?)
}

/// Every pacticipant, by name.
pub async fn pacticipants(pool: &PgPool) -> Result<Vec<PacticipantInfo>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        pacticipant_columns!(),
        " FROM pacticipants ORDER BY name"
    ))
    .fetch_all(pool)
    .await?)
}

/// Creates `version` of `pacticipant` (and the pacticipant), on `branch` and with `tags` when
/// given; a version that exists keeps what it had and gains them.
pub async fn put_version(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    branch: Option<&str>,
    tags: &[String],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, pacticipant, version).await?;
    if let Some(branch) = branch {
        add_branch(&mut tx, vid, branch).await?;
    }
    for tag in tags {
        add_tag(&mut tx, vid, tag).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts `version` of `pacticipant` on `branch` (creating both).
pub async fn put_branch_version(
    pool: &PgPool,
    pacticipant: &str,
    branch: &str,
    version: &str,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, pacticipant, version).await?;
    add_branch(&mut tx, vid, branch).await?;
    tx.commit().await?;
    Ok(())
}

/// Tags `version` of `pacticipant` (creating both).
pub async fn put_tag(pool: &PgPool, pacticipant: &str, version: &str, tag: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, pacticipant, version).await?;
    add_tag(&mut tx, vid, tag).await?;
    tx.commit().await?;
    Ok(())
}

/// A version with its branches and tags.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub number: String,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
}

async fn version_by_id(pool: &PgPool, id: i64) -> Result<VersionInfo> {
    let (number, created_at): (String, DateTime<Utc>) =
        sqlx::query_as("SELECT number, created_at FROM versions WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    let branches = sqlx::query_scalar(
        "SELECT branch FROM version_branches WHERE version_id = $1 ORDER BY branch",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let tags =
        sqlx::query_scalar("SELECT tag FROM version_tags WHERE version_id = $1 ORDER BY tag")
            .bind(id)
            .fetch_all(pool)
            .await?;
    Ok(VersionInfo {
        number,
        branches,
        tags,
        created_at,
    })
}

pub async fn version(pool: &PgPool, pacticipant: &str, number: &str) -> Result<VersionInfo> {
    let id = find_version(pool, pacticipant, number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("{pacticipant} has no version {number}")))?;
    version_by_id(pool, id).await
}

/// Which of a pacticipant's versions is meant, when no number is given: the latest one, or the
/// latest with a tag, on a branch, or on its main branch.
#[derive(Debug, Clone, Default)]
pub struct LatestOf {
    pub tag: Option<String>,
    pub branch: Option<String>,
    pub main_branch: bool,
}

/// The latest version of `pacticipant` (the last one the broker learnt of) that `which` picks.
pub async fn latest_version(
    pool: &PgPool,
    pacticipant: &str,
    which: &LatestOf,
) -> Result<VersionInfo> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT v.id FROM versions v JOIN pacticipants p ON p.id = v.pacticipant_id
         WHERE p.name = $1
           AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM version_tags t WHERE t.version_id = v.id AND t.tag = $2))
           AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM version_branches b WHERE b.version_id = v.id AND b.branch = $3))
           AND (NOT $4 OR EXISTS (SELECT 1 FROM version_branches b WHERE b.version_id = v.id AND b.branch = p.main_branch))
         ORDER BY v.id DESC LIMIT 1",
    )
    .bind(pacticipant)
    .bind(&which.tag)
    .bind(&which.branch)
    .bind(which.main_branch)
    .fetch_optional(pool)
    .await?;
    let id = id.ok_or_else(|| {
        let mut what = String::new();
        if let Some(tag) = &which.tag {
            what.push_str(&format!(" tagged {tag}"));
        }
        if let Some(branch) = &which.branch {
            what.push_str(&format!(" on branch {branch}"));
        }
        if which.main_branch {
            what.push_str(" on its main branch");
        }
        StoreError::NotFound(format!("{pacticipant} has no version{what}"))
    })?;
    version_by_id(pool, id).await
}

/// The pact `consumer` version `version` published for `provider`: (sha, content).
pub async fn pact_for_version(
    pool: &PgPool,
    provider: &str,
    consumer: &str,
    version: &str,
) -> Result<(String, String)> {
    sqlx::query_as(
        "SELECT pc.sha, pc.content FROM pact_publications pp
         JOIN versions v ON v.id = pp.consumer_version_id
         JOIN pacticipants c ON c.id = v.pacticipant_id
         JOIN pacticipants p ON p.id = pp.provider_id
         JOIN pact_contents pc ON pc.sha = pp.sha
         WHERE p.name = $1 AND c.name = $2 AND v.number = $3",
    )
    .bind(provider)
    .bind(consumer)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no pact between {consumer} version {version} and {provider}"
        ))
    })
}

/// The pact content `sha` between `consumer` and `provider`.
pub async fn pact_by_sha(
    pool: &PgPool,
    provider: &str,
    consumer: &str,
    sha: &str,
) -> Result<String> {
    sqlx::query_scalar(
        "SELECT pc.content FROM pact_contents pc
         JOIN pacticipants c ON c.id = pc.consumer_id JOIN pacticipants p ON p.id = pc.provider_id
         WHERE pc.sha = $1 AND c.name = $2 AND p.name = $3",
    )
    .bind(sha)
    .bind(consumer)
    .bind(provider)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no pact version {sha} between {consumer} and {provider}"
        ))
    })
}

/// A consumer version's publication for a provider, with where that version stands.
#[derive(Debug, Clone, sqlx::FromRow)]
struct PublicationRow {
    consumer: String,
    main_branch: Option<String>,
    version: String,
    version_id: i64,
    sha: String,
    branches: Vec<String>,
    tags: Vec<String>,
    deployed: Vec<String>,
    released: Vec<String>,
}

async fn publications_for(pool: &PgPool, provider: &str) -> Result<Vec<PublicationRow>> {
    Ok(sqlx::query_as(
        "SELECT c.name AS consumer, c.main_branch, v.number AS version, v.id AS version_id, pp.sha,
           COALESCE((SELECT array_agg(b.branch) FROM version_branches b WHERE b.version_id = v.id), '{}') AS branches,
           COALESCE((SELECT array_agg(t.tag) FROM version_tags t WHERE t.version_id = v.id), '{}') AS tags,
           COALESCE((SELECT array_agg(e.name) FROM deployments d JOIN environments e ON e.uuid = d.environment_uuid
                     WHERE d.version_id = v.id AND d.currently AND d.kind = 'deployment'), '{}') AS deployed,
           COALESCE((SELECT array_agg(e.name) FROM deployments d JOIN environments e ON e.uuid = d.environment_uuid
                     WHERE d.version_id = v.id AND d.currently AND d.kind = 'release'), '{}') AS released
         FROM pact_publications pp
         JOIN versions v ON v.id = pp.consumer_version_id
         JOIN pacticipants c ON c.id = v.pacticipant_id
         JOIN pacticipants p ON p.id = pp.provider_id
         WHERE p.name = $1
         ORDER BY v.id",
    )
    .bind(provider)
    .fetch_all(pool)
    .await?)
}

/// The latest pact of each consumer of `provider`: (consumer, version, sha).
pub async fn latest_pacts(pool: &PgPool, provider: &str) -> Result<Vec<(String, String, String)>> {
    let mut latest: BTreeMap<String, (String, String)> = BTreeMap::new();
    for row in publications_for(pool, provider).await? {
        latest.insert(row.consumer, (row.version, row.sha));
    }
    Ok(latest.into_iter().map(|(c, (v, s))| (c, v, s)).collect())
}

/// The latest pact of an integration.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LatestPact {
    pub consumer: String,
    pub consumer_version: String,
    pub provider: String,
    pub sha: String,
    pub created_at: DateTime<Utc>,
}

/// The latest pact of every integration (consumer and provider), by consumer then provider.
pub async fn latest_pacts_of_every_integration(pool: &PgPool) -> Result<Vec<LatestPact>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (c.name, p.name) c.name AS consumer, v.number AS consumer_version,
                p.name AS provider, pp.sha, pp.created_at
         FROM pact_publications pp
         JOIN versions v ON v.id = pp.consumer_version_id
         JOIN pacticipants c ON c.id = v.pacticipant_id
         JOIN pacticipants p ON p.id = pp.provider_id
         ORDER BY c.name, p.name, v.id DESC",
    )
    .fetch_all(pool)
    .await?)
}

pub use crate::client::Selector;

/// The body of `POST /pacts/provider/{p}/for-verification`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForVerificationRequest {
    #[serde(default)]
    pub consumer_version_selectors: Vec<Selector>,
    #[serde(default)]
    pub include_pending_status: bool,
    pub provider_version_branch: Option<String>,
    #[serde(default)]
    pub provider_version_tags: Vec<String>,
}

/// One pact to verify, with why it was selected and whether it is pending.
#[derive(Debug, Clone, Serialize)]
pub struct PactToVerify {
    pub consumer: String,
    pub sha: String,
    /// The selected consumer versions publishing this content, with the reason.
    pub selected: Vec<String>,
    pub pending: bool,
}

/// How a selector picks publications (the server's side of [`Selector`]).
trait Pick {
    /// Rows this selector picks, and a phrase saying why.
    fn pick<'a>(
        &self,
        rows: &'a [PublicationRow],
        provider_branch: Option<&str>,
    ) -> Result<(Vec<&'a PublicationRow>, String)>;
}

impl Pick for Selector {
    /// Rows this selector picks, and a phrase saying why.
    fn pick<'a>(
        &self,
        rows: &'a [PublicationRow],
        provider_branch: Option<&str>,
    ) -> Result<(Vec<&'a PublicationRow>, String)> {
        let env_ok = |names: &[String]| match &self.environment {
            Some(e) => names.contains(e),
            None => !names.is_empty(),
        };
        let in_consumer =
            |r: &&PublicationRow| self.consumer.as_ref().is_none_or(|c| &r.consumer == c);
        let rows = rows.iter().filter(in_consumer);
        let where_env = self
            .environment
            .as_ref()
            .map(|e| format!(" in {e}"))
            .unwrap_or_default();
        let (picked, why, latest_only): (Vec<_>, String, bool) = if self.main_branch == Some(true) {
            (
                rows.filter(|r| {
                    r.main_branch
                        .as_ref()
                        .is_some_and(|m| r.branches.contains(m))
                })
                .collect(),
                "latest version from the main branch".into(),
                true,
            )
        } else if let Some(branch) = &self.branch {
            (
                rows.filter(|r| r.branches.contains(branch)).collect(),
                format!("latest version from branch {branch}"),
                self.latest != Some(false),
            )
        } else if self.matching_branch == Some(true) {
            let Some(branch) = provider_branch else {
                return Err(StoreError::Invalid(
                    "consumerVersionSelectors: matchingBranch needs providerVersionBranch".into(),
                ));
            };
            (
                rows.filter(|r| r.branches.iter().any(|b| b == branch))
                    .collect(),
                format!("latest version from the branch matching the provider's ({branch})"),
                true,
            )
        } else if self.deployed_or_released == Some(true) {
            (
                rows.filter(|r| env_ok(&r.deployed) || env_ok(&r.released))
                    .collect(),
                format!("deployed or released{where_env}"),
                false,
            )
        } else if self.deployed == Some(true) {
            (
                rows.filter(|r| env_ok(&r.deployed)).collect(),
                format!("currently deployed{where_env}"),
                false,
            )
        } else if self.released == Some(true) {
            (
                rows.filter(|r| env_ok(&r.released)).collect(),
                format!("currently released{where_env}"),
                false,
            )
        } else if let Some(tag) = &self.tag {
            (
                rows.filter(|r| r.tags.contains(tag)).collect(),
                format!("version tagged {tag}"),
                self.latest == Some(true),
            )
        } else if self.latest == Some(true) || self.consumer.is_some() {
            (rows.collect(), "latest version".into(), true)
        } else {
            return Err(StoreError::Invalid(format!(
                "consumerVersionSelectors: {} selects nothing faultline knows; use mainBranch, branch, matchingBranch, deployed, released, deployedOrReleased, tag, latest or consumer",
                serde_json::to_string(self).unwrap_or_default()
            )));
        };
        if !latest_only {
            return Ok((picked, why));
        }
        let mut latest: BTreeMap<&str, &PublicationRow> = BTreeMap::new();
        for row in picked {
            let entry = latest.entry(&row.consumer).or_insert(row);
            if row.version_id > entry.version_id {
                *entry = row;
            }
        }
        Ok((latest.into_values().collect(), why))
    }
}

/// Whether content `sha` has been verified successfully by a version of `provider` on
/// `branch` (any version when `None`).
pub async fn verified_on_branch(
    pool: &PgPool,
    provider: &str,
    sha: &str,
    branch: Option<&str>,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (
           SELECT 1 FROM verifications vf
           JOIN versions pv ON pv.id = vf.provider_version_id
           JOIN pacticipants p ON p.id = pv.pacticipant_id
           WHERE vf.sha = $1 AND vf.success AND p.name = $2
             AND ($3::text IS NULL OR EXISTS (
               SELECT 1 FROM version_branches b WHERE b.version_id = pv.id AND b.branch = $3)))",
    )
    .bind(sha)
    .bind(provider)
    .bind(branch)
    .fetch_one(pool)
    .await?)
}

/// The pacts `provider` should verify, by the request's selectors (none: each consumer's
/// latest), each content once.
pub async fn pacts_for_verification(
    pool: &PgPool,
    provider: &str,
    request: &ForVerificationRequest,
) -> Result<Vec<PactToVerify>> {
    let rows = publications_for(pool, provider).await?;
    let selectors = if request.consumer_version_selectors.is_empty() {
        vec![Selector {
            latest: Some(true),
            ..Selector::default()
        }]
    } else {
        request.consumer_version_selectors.clone()
    };
    let mut by_sha: BTreeMap<String, PactToVerify> = BTreeMap::new();
    let mut order = Vec::new();
    for selector in &selectors {
        let (picked, why) = selector.pick(&rows, request.provider_version_branch.as_deref())?;
        for row in picked {
            let entry = by_sha.entry(row.sha.clone()).or_insert_with(|| {
                order.push(row.sha.clone());
                PactToVerify {
                    consumer: row.consumer.clone(),
                    sha: row.sha.clone(),
                    selected: Vec::new(),
                    pending: false,
                }
            });
            let note = format!("{} ({why})", row.version);
            if !entry.selected.contains(&note) {
                entry.selected.push(note);
            }
        }
    }
    let mut out = Vec::new();
    for sha in order {
        let mut pact = by_sha
            .remove(&sha)
            .expect("every ordered sha is in the map");
        if request.include_pending_status {
            pact.pending = !verified_on_branch(
                pool,
                provider,
                &sha,
                request.provider_version_branch.as_deref(),
            )
            .await?;
        }
        out.push(pact);
    }
    Ok(out)
}

/// The body of a verification result (the Pact Broker's format).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationBody {
    pub success: bool,
    pub provider_application_version: String,
    pub build_url: Option<String>,
    #[serde(default)]
    pub test_results: Vec<Value>,
    pub verified_by: Option<Value>,
}

/// Records that `provider` version `body.provider_application_version` verified content
/// `sha` of `consumer`; returns the verification's id.
pub async fn record_verification(
    pool: &PgPool,
    provider: &str,
    consumer: &str,
    sha: &str,
    body: &VerificationBody,
) -> Result<i64> {
    if let Some(url) = &body.build_url {
        check_text("buildUrl", url)?;
    }
    pact_by_sha(pool, provider, consumer, sha).await?;
    let mut tx = pool.begin().await?;
    let pvid = version_id(&mut tx, provider, &body.provider_application_version).await?;
    let id = sqlx::query_scalar(
        "INSERT INTO verifications (sha, provider_version_id, success, build_url, test_results, verified_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(sha)
    .bind(pvid)
    .bind(body.success)
    .bind(&body.build_url)
    .bind(Value::Array(body.test_results.clone()))
    .bind(&body.verified_by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A verification result as it was published, with when it was recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VerificationRecord {
    pub id: i64,
    pub provider_version: String,
    pub success: bool,
    pub build_url: Option<String>,
    pub test_results: Value,
    pub created_at: DateTime<Utc>,
}

/// Verification `id` of content `sha` between `consumer` and `provider`.
pub async fn verification(
    pool: &PgPool,
    provider: &str,
    consumer: &str,
    sha: &str,
    id: i64,
) -> Result<VerificationRecord> {
    sqlx::query_as(
        "SELECT vf.id, pv.number AS provider_version, vf.success, vf.build_url, vf.test_results, vf.created_at
         FROM verifications vf
         JOIN versions pv ON pv.id = vf.provider_version_id
         JOIN pacticipants p ON p.id = pv.pacticipant_id
         JOIN pact_contents pc ON pc.sha = vf.sha
         JOIN pacticipants c ON c.id = pc.consumer_id
         WHERE vf.id = $1 AND vf.sha = $2 AND p.name = $3 AND c.name = $4",
    )
    .bind(id)
    .bind(sha)
    .bind(provider)
    .bind(consumer)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("no verification result {id} of pact version {sha}")))
}

/// An environment.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Environment {
    pub uuid: Uuid,
    pub name: String,
    pub display_name: Option<String>,
    pub production: bool,
    pub created_at: DateTime<Utc>,
}

macro_rules! environment_columns {
    () => {
        "uuid, name, display_name, production, created_at"
    };
}

pub async fn create_environment(
    pool: &PgPool,
    name: &str,
    display_name: Option<&str>,
    production: bool,
) -> Result<Environment> {
    check_name("environment", name)?;
    if let Some(display) = display_name {
        check_text("displayName", display)?;
    }
    let created: Option<Environment> = sqlx::query_as(concat!(
        "INSERT INTO environments (uuid, name, display_name, production) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING RETURNING ",
        environment_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(display_name)
    .bind(production)
    .fetch_optional(pool)
    .await?;
    created.ok_or_else(|| StoreError::Conflict(format!("environment {name} already exists")))
}

pub async fn environments(pool: &PgPool) -> Result<Vec<Environment>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        environment_columns!(),
        " FROM environments ORDER BY name"
    ))
    .fetch_all(pool)
    .await?)
}

/// The environment whose uuid or name is `key`.
pub async fn environment(pool: &PgPool, key: &str) -> Result<Environment> {
    let uuid = Uuid::parse_str(key).ok();
    let found: Option<Environment> = sqlx::query_as(concat!(
        "SELECT ",
        environment_columns!(),
        " FROM environments WHERE uuid = $1 OR name = $2"
    ))
    .bind(uuid)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    match found {
        Some(e) => Ok(e),
        None => {
            let known: Vec<String> = environments(pool)
                .await?
                .into_iter()
                .map(|e| e.name)
                .collect();
            Err(StoreError::NotFound(format!(
                "no environment {key:?} (known: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// `deployment` or `release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentKind {
    Deployment,
    Release,
}

impl DeploymentKind {
    fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Deployment => "deployment",
            DeploymentKind::Release => "release",
        }
    }
}

/// A deployed version (kind deployment) or a released version (kind release) of a
/// pacticipant in an environment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Deployment {
    pub uuid: Uuid,
    pub pacticipant: String,
    pub version: String,
    pub environment: Uuid,
    /// Deployed (deployment) or supported (release) now.
    pub currently: bool,
    pub created_at: DateTime<Utc>,
    /// When it was undeployed, or its support ended.
    pub ended_at: Option<DateTime<Utc>>,
}

macro_rules! deployment_select {
    () => {
        "SELECT d.uuid, p.name AS pacticipant, v.number AS version,
            d.environment_uuid AS environment, d.currently, d.created_at, d.ended_at
         FROM deployments d JOIN versions v ON v.id = d.version_id
         JOIN pacticipants p ON p.id = v.pacticipant_id"
    };
}

/// Records that `pacticipant` `version` is deployed (replacing the version deployed there
/// before) or released (beside the others) in `environment`.
pub async fn record_deployment(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    environment: &str,
    kind: DeploymentKind,
) -> Result<Deployment> {
    let env = self::environment(pool, environment).await?;
    let vid = find_version(pool, pacticipant, version).await?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "{pacticipant} has no version {version} in the broker: publish its pacts or verification results first"
        ))
    })?;
    let kind = kind.as_str();
    let mut tx = pool.begin().await?;
    // Serialises deployments to one environment, so two at once never both stay current.
    sqlx::query("SELECT uuid FROM environments WHERE uuid = $1 FOR UPDATE")
        .bind(env.uuid)
        .execute(&mut *tx)
        .await?;
    if kind == "deployment" {
        sqlx::query(
            "UPDATE deployments SET currently = false, ended_at = now()
             WHERE environment_uuid = $1 AND kind = 'deployment' AND currently AND version_id <> $2
               AND version_id IN (SELECT id FROM versions WHERE pacticipant_id =
                   (SELECT pacticipant_id FROM versions WHERE id = $2))",
        )
        .bind(env.uuid)
        .bind(vid)
        .execute(&mut *tx)
        .await?;
    }
    let existing: Option<Uuid> = sqlx::query_scalar(
        "SELECT uuid FROM deployments WHERE version_id = $1 AND environment_uuid = $2 AND kind = $3 AND currently",
    )
    .bind(vid)
    .bind(env.uuid)
    .bind(kind)
    .fetch_optional(&mut *tx)
    .await?;
    let uuid = match existing {
        Some(uuid) => uuid,
        None => {
            let uuid = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO deployments (uuid, version_id, environment_uuid, kind) VALUES ($1, $2, $3, $4)",
            )
            .bind(uuid)
            .bind(vid)
            .bind(env.uuid)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
            uuid
        }
    };
    tx.commit().await?;
    deployment(
        pool,
        uuid,
        if kind == "deployment" {
            DeploymentKind::Deployment
        } else {
            DeploymentKind::Release
        },
    )
    .await
}

/// Deployed (or released) version `uuid`.
pub async fn deployment(pool: &PgPool, uuid: Uuid, kind: DeploymentKind) -> Result<Deployment> {
    sqlx::query_as(concat!(
        deployment_select!(),
        " WHERE d.uuid = $1 AND d.kind = $2"
    ))
    .bind(uuid)
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no {} version {uuid}",
            if kind == DeploymentKind::Deployment {
                "deployed"
            } else {
                "released"
            }
        ))
    })
}

/// The versions currently deployed (or supported releases) in environment `env`, of
/// `pacticipant` when given.
pub async fn current_deployments(
    pool: &PgPool,
    env: Uuid,
    kind: DeploymentKind,
    pacticipant: Option<&str>,
) -> Result<Vec<Deployment>> {
    Ok(sqlx::query_as(concat!(
        deployment_select!(),
        " WHERE d.environment_uuid = $1 AND d.kind = $2 AND d.currently
           AND ($3::text IS NULL OR p.name = $3) ORDER BY d.created_at, d.uuid"
    ))
    .bind(env)
    .bind(kind.as_str())
    .bind(pacticipant)
    .fetch_all(pool)
    .await?)
}

/// Ends deployment (undeploys) or release (support ended) `uuid`; ending it again changes
/// nothing. An ended one cannot be made current again: record a new deployment instead.
pub async fn end_deployment(pool: &PgPool, uuid: Uuid, kind: DeploymentKind) -> Result<Deployment> {
    deployment(pool, uuid, kind).await?;
    sqlx::query(
        "UPDATE deployments SET currently = false, ended_at = now() WHERE uuid = $1 AND currently",
    )
    .bind(uuid)
    .execute(pool)
    .await?;
    deployment(pool, uuid, kind).await
}

/// One row of the matrix: a pact publication and a verification of it (if any).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MatrixRow {
    pub consumer: String,
    pub consumer_version: String,
    pub provider: String,
    pub provider_version: Option<String>,
    pub sha: String,
    pub success: Option<bool>,
    pub build_url: Option<String>,
}

/// Every publication where `pacticipant` (at `version`, when given) is consumer or provider,
/// with each verification of it.
pub async fn matrix(
    pool: &PgPool,
    pacticipant: &str,
    version: Option<&str>,
) -> Result<Vec<MatrixRow>> {
    Ok(sqlx::query_as(
        "SELECT c.name AS consumer, cv.number AS consumer_version, p.name AS provider,
                pv.number AS provider_version, pp.sha, vf.success, vf.build_url
         FROM pact_publications pp
         JOIN versions cv ON cv.id = pp.consumer_version_id
         JOIN pacticipants c ON c.id = cv.pacticipant_id
         JOIN pacticipants p ON p.id = pp.provider_id
         LEFT JOIN verifications vf ON vf.sha = pp.sha
         LEFT JOIN versions pv ON pv.id = vf.provider_version_id AND pv.pacticipant_id = p.id
         WHERE (c.name = $1 AND ($2::text IS NULL OR cv.number = $2))
            OR (p.name = $1 AND ($2::text IS NULL OR pv.number = $2))
         ORDER BY pp.id, vf.id",
    )
    .bind(pacticipant)
    .bind(version)
    .fetch_all(pool)
    .await?)
}

/// A verification can-i-deploy relied on.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationRef {
    pub id: i64,
    pub success: bool,
    pub verified_at: DateTime<Utc>,
}

/// One integration can-i-deploy judged.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub consumer: String,
    pub consumer_version: String,
    pub provider: String,
    pub provider_version: Option<String>,
    pub sha: Option<String>,
    /// `true` verified, `false` failed or missing.
    pub ok: bool,
    pub reason: String,
    /// The latest verification of the pact by that provider version, if any.
    pub verification: Option<VerificationRef>,
}

/// can-i-deploy's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub deployable: bool,
    pub reason: String,
    pub checks: Vec<Check>,
    /// Integrations not judged because the other side has no version to judge against.
    pub notes: Vec<String>,
}

/// What a pacticipant version is judged against (the Pact Broker's matrix questions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The versions currently deployed or released in an environment (name or uuid):
    /// `--to-environment`.
    Environment(String),
    /// The latest version of each other pacticipant with this tag: `--to TAG`.
    Tag(String),
    /// The latest version of each other pacticipant.
    Latest,
    /// Exactly these versions (pacticipant, version); other pacticipants are not part of the
    /// question: `--pacticipant A --version 1 --pacticipant B --version 2`.
    Versions(Vec<(String, String)>),
}

/// A target with its environment looked up.
enum Resolved {
    Environment(Environment),
    Tag(String),
    Latest,
    Versions(Vec<(String, String)>),
}

impl Resolved {
    /// Where the other side's version comes from, as a reason says it: "in production".
    fn place(&self) -> String {
        match self {
            Resolved::Environment(env) => format!("in {}", env.name),
            Resolved::Tag(tag) => format!("latest tagged {tag}"),
            Resolved::Latest => "latest".into(),
            Resolved::Versions(_) => "selected".into(),
        }
    }

    /// The question, as the decision's reason says it: "to production".
    fn question(&self) -> String {
        match self {
            Resolved::Environment(env) => format!("to {}", env.name),
            Resolved::Tag(tag) => format!("with the latest versions tagged {tag}"),
            Resolved::Latest => "with the latest versions".into(),
            Resolved::Versions(versions) => format!(
                "with {}",
                versions
                    .iter()
                    .map(|(p, v)| format!("{p} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The versions of `pacticipant` (id, name) to judge against.
    async fn versions_of(
        &self,
        pool: &PgPool,
        pacticipant: (i64, &str),
    ) -> Result<Vec<(i64, String)>> {
        let (id, name) = pacticipant;
        Ok(match self {
            Resolved::Environment(env) => sqlx::query_as(
                "SELECT DISTINCT v.id, v.number FROM deployments d JOIN versions v ON v.id = d.version_id
                 WHERE d.environment_uuid = $1 AND d.currently AND v.pacticipant_id = $2 ORDER BY v.id",
            )
            .bind(env.uuid)
            .bind(id)
            .fetch_all(pool)
            .await?,
            Resolved::Tag(_) | Resolved::Latest => {
                let tag = match self {
                    Resolved::Tag(tag) => Some(tag.as_str()),
                    _ => None,
                };
                sqlx::query_as(
                    "SELECT v.id, v.number FROM versions v WHERE v.pacticipant_id = $1
                       AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM version_tags t WHERE t.version_id = v.id AND t.tag = $2))
                     ORDER BY v.id DESC LIMIT 1",
                )
                .bind(id)
                .bind(tag)
                .fetch_all(pool)
                .await?
            }
            Resolved::Versions(versions) => {
                let mut found = Vec::new();
                for (p, v) in versions.iter().filter(|(p, _)| p == name) {
                    if let Some(vid) = find_version(pool, p, v).await? {
                        found.push((vid, v.clone()));
                    }
                }
                found
            }
        })
    }
}

/// Judges whether `provider_version_id` verified `sha` (of consumer `consumer_id`): the
/// latest verification, and `Ok` or the reason, naming failed or never-verified interactions.
async fn judge(
    pool: &PgPool,
    sha: &str,
    consumer_id: i64,
    provider_version_id: i64,
) -> Result<(Option<VerificationRef>, std::result::Result<(), String>)> {
    let latest: Option<(i64, bool, Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, success, test_results, created_at FROM verifications WHERE sha = $1 AND provider_version_id = $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(sha)
    .bind(provider_version_id)
    .fetch_optional(pool)
    .await?;
    let Some((id, success, results, verified_at)) = latest else {
        let content: String =
            sqlx::query_scalar("SELECT content FROM pact_contents WHERE sha = $1")
                .bind(sha)
                .fetch_one(pool)
                .await?;
        let verified: Vec<String> = sqlx::query_scalar(
            "SELECT pc.content FROM verifications vf JOIN pact_contents pc ON pc.sha = vf.sha
             WHERE vf.provider_version_id = $1 AND vf.success AND pc.consumer_id = $2",
        )
        .bind(provider_version_id)
        .bind(consumer_id)
        .fetch_all(pool)
        .await?;
        let known: BTreeSet<String> = verified.iter().flat_map(|c| descriptions(c)).collect();
        let missing: Vec<String> = descriptions(&content)
            .into_iter()
            .filter(|d| !known.contains(d))
            .collect();
        return Ok((
            None,
            Err(if missing.is_empty() || known.is_empty() {
                "no verification result".to_string()
            } else {
                format!(
                    "no verification result; never verified: {}",
                    quote_list(&missing)
                )
            }),
        ));
    };
    let verification = Some(VerificationRef {
        id,
        success,
        verified_at,
    });
    if success {
        return Ok((verification, Ok(())));
    }
    let failed: Vec<String> = results
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["success"] == Value::Bool(false))
        .map(|r| {
            r["interactionDescription"]
                .as_str()
                .or(r["interactionId"].as_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    Ok((
        verification,
        Err(if failed.is_empty() {
            "the verification failed".to_string()
        } else {
            format!("the verification failed: {}", quote_list(&failed))
        }),
    ))
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Can `pacticipant` `version` be deployed, judged against `target`? Checks with the
/// pacticipants in `ignore` are left out (and said so). See the module docs of
/// [the crate docs](crate) for the rules.
pub async fn can_i_deploy(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    target: &Target,
    ignore: &[String],
) -> Result<Decision> {
    let target = match target {
        Target::Environment(e) => Resolved::Environment(self::environment(pool, e).await?),
        Target::Tag(tag) => Resolved::Tag(tag.clone()),
        Target::Latest => Resolved::Latest,
        Target::Versions(versions) => Resolved::Versions(versions.clone()),
    };
    let place = target.place();
    let Some(vid) = find_version(pool, pacticipant, version).await? else {
        return Ok(Decision {
            deployable: false,
            reason: format!("{pacticipant} version {version} is unknown to the broker"),
            checks: Vec::new(),
            notes: Vec::new(),
        });
    };
    let me: i64 = sqlx::query_scalar("SELECT pacticipant_id FROM versions WHERE id = $1")
        .bind(vid)
        .fetch_one(pool)
        .await?;
    let mut checks = Vec::new();
    let mut notes = Vec::new();
    let ignored = |name: &str| ignore.iter().any(|i| i == name);
    // As consumer: each pact this version published, against the provider's versions there.
    let pacts: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT pp.sha, p.id, p.name FROM pact_publications pp JOIN pacticipants p ON p.id = pp.provider_id
         WHERE pp.consumer_version_id = $1 ORDER BY p.name",
    )
    .bind(vid)
    .fetch_all(pool)
    .await?;
    for (sha, provider_id, provider) in pacts {
        if ignored(&provider) {
            notes.push(format!(
                "{provider} is ignored: the pact with it was not checked"
            ));
            continue;
        }
        let there = target.versions_of(pool, (provider_id, &provider)).await?;
        if there.is_empty() && !matches!(target, Resolved::Versions(_)) {
            notes.push(format!(
                "{provider} has no version {place}; the pact with it was not checked"
            ));
        }
        for (pvid, pversion) in there {
            let (verification, verdict) = judge(pool, &sha, me, pvid).await?;
            checks.push(Check {
                consumer: pacticipant.into(),
                consumer_version: version.into(),
                provider: provider.clone(),
                provider_version: Some(pversion.clone()),
                sha: Some(sha.clone()),
                ok: verdict.is_ok(),
                reason: match verdict {
                    Ok(()) => format!("verified by {provider} {pversion} ({place})"),
                    Err(why) => format!(
                        "pact {pacticipant} {version} -> {provider} (sha {}): {why} by {provider} {pversion} ({place})",
                        &sha[..12]
                    ),
                },
                verification,
            });
        }
    }
    // As provider: each consumer's versions there whose pact with this pacticipant exists.
    let consumers: Vec<(i64, String)> = sqlx::query_as(
        "SELECT DISTINCT c.id, c.name FROM pact_publications pp
         JOIN versions cv ON cv.id = pp.consumer_version_id
         JOIN pacticipants c ON c.id = cv.pacticipant_id
         WHERE pp.provider_id = $1 ORDER BY c.name",
    )
    .bind(me)
    .fetch_all(pool)
    .await?;
    for (consumer_id, consumer) in consumers {
        if ignored(&consumer) {
            continue;
        }
        for (cvid, cversion) in target.versions_of(pool, (consumer_id, &consumer)).await? {
            let sha: Option<String> = sqlx::query_scalar(
                "SELECT sha FROM pact_publications WHERE consumer_version_id = $1 AND provider_id = $2",
            )
            .bind(cvid)
            .bind(me)
            .fetch_optional(pool)
            .await?;
            let Some(sha) = sha else { continue };
            let (verification, verdict) = judge(pool, &sha, consumer_id, vid).await?;
            checks.push(Check {
                consumer: consumer.clone(),
                consumer_version: cversion.clone(),
                provider: pacticipant.into(),
                provider_version: Some(version.into()),
                sha: Some(sha.clone()),
                ok: verdict.is_ok(),
                reason: match verdict {
                    Ok(()) => format!("verified the pact of {consumer} {cversion} ({place})"),
                    Err(why) => format!(
                        "pact {consumer} {cversion} ({place}) -> {pacticipant} (sha {}): {why} by {pacticipant} {version}",
                        &sha[..12]
                    ),
                },
                verification,
            });
        }
    }
    let failing: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    let deployable = failing.is_empty();
    let question = target.question();
    let reason = if deployable {
        format!(
            "{pacticipant} {version} can be deployed {question}: {} integration(s) verified",
            checks.len()
        )
    } else {
        format!(
            "{pacticipant} {version} cannot be deployed {question}: {}",
            failing
                .iter()
                .map(|c| c.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    Ok(Decision {
        deployable,
        reason,
        checks,
        notes,
    })
}

/// Can these versions (pacticipant, version) be deployed together? Each is judged against
/// the others; a check seen from both sides counts once.
pub async fn can_i_deploy_together(
    pool: &PgPool,
    versions: &[(String, String)],
    ignore: &[String],
) -> Result<Decision> {
    let mut checks: Vec<Check> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (i, (pacticipant, version)) in versions.iter().enumerate() {
        let others: Vec<(String, String)> = versions
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, v)| v.clone())
            .collect();
        let one = can_i_deploy(
            pool,
            pacticipant,
            version,
            &Target::Versions(others),
            ignore,
        )
        .await?;
        if one.checks.is_empty() && !one.deployable {
            return Ok(one);
        }
        for check in one.checks {
            let seen = checks.iter().any(|c| {
                c.consumer == check.consumer
                    && c.consumer_version == check.consumer_version
                    && c.provider == check.provider
                    && c.provider_version == check.provider_version
            });
            if !seen {
                checks.push(check);
            }
        }
        for note in one.notes {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    let named = versions
        .iter()
        .map(|(p, v)| format!("{p} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.reason.as_str())
        .collect();
    let deployable = failing.is_empty();
    let reason = if deployable {
        format!(
            "{named} can be deployed together: {} integration(s) verified",
            checks.len()
        )
    } else {
        format!(
            "{named} cannot be deployed together: {}",
            failing.join("; ")
        )
    };
    Ok(Decision {
        deployable,
        reason,
        checks,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        consumer: &str,
        version_id: i64,
        branches: &[&str],
        deployed: &[&str],
    ) -> PublicationRow {
        PublicationRow {
            consumer: consumer.into(),
            main_branch: Some("main".into()),
            version: format!("v{version_id}"),
            version_id,
            sha: format!("sha-{consumer}-{version_id}"),
            branches: branches.iter().map(|b| b.to_string()).collect(),
            tags: Vec::new(),
            deployed: deployed.iter().map(|e| e.to_string()).collect(),
            released: Vec::new(),
        }
    }

    fn rows() -> Vec<PublicationRow> {
        vec![
            row("order", 1, &["main"], &["production"]),
            row("order", 2, &["main"], &[]),
            row("order", 3, &["feature/x"], &["staging"]),
            row("gateway", 4, &["main"], &[]),
        ]
    }

    fn picked(selector: Selector, provider_branch: Option<&str>) -> Vec<String> {
        let rows = rows();
        let (picked, _) = selector.pick(&rows, provider_branch).unwrap();
        let mut versions: Vec<String> = picked
            .iter()
            .map(|r| format!("{}:{}", r.consumer, r.version))
            .collect();
        versions.sort();
        versions
    }

    #[test]
    fn main_branch_picks_the_latest_main_version_of_each_consumer() {
        let selector = Selector {
            main_branch: Some(true),
            ..Selector::default()
        };
        assert_eq!(picked(selector, None), ["gateway:v4", "order:v2"]);
    }

    #[test]
    fn branch_and_matching_branch_pick_the_latest_on_that_branch() {
        let branch = Selector {
            branch: Some("feature/x".into()),
            ..Selector::default()
        };
        assert_eq!(picked(branch, None), ["order:v3"]);
        let matching = Selector {
            matching_branch: Some(true),
            ..Selector::default()
        };
        assert_eq!(
            picked(matching.clone(), Some("main")),
            ["gateway:v4", "order:v2"]
        );
        let rows = rows();
        assert!(matches!(
            matching.pick(&rows, None),
            Err(StoreError::Invalid(m)) if m.contains("providerVersionBranch")
        ));
    }

    #[test]
    fn deployed_picks_every_version_in_the_environment_or_any() {
        let production = Selector {
            deployed: Some(true),
            environment: Some("production".into()),
            ..Selector::default()
        };
        assert_eq!(picked(production, None), ["order:v1"]);
        let anywhere = Selector {
            deployed_or_released: Some(true),
            ..Selector::default()
        };
        assert_eq!(picked(anywhere, None), ["order:v1", "order:v3"]);
    }

    #[test]
    fn a_consumer_filter_narrows_and_an_empty_selector_is_refused() {
        let gateway = Selector {
            consumer: Some("gateway".into()),
            main_branch: Some(true),
            ..Selector::default()
        };
        assert_eq!(picked(gateway, None), ["gateway:v4"]);
        let rows = rows();
        assert!(matches!(
            Selector::default().pick(&rows, None),
            Err(StoreError::Invalid(m)) if m.contains("selects nothing")
        ));
    }

    #[test]
    fn the_same_contract_has_the_same_sha_whatever_its_whitespace() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../contracts/pacts/order-payment.json"
        ))
        .unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let compact = serde_json::to_string(&value).unwrap();
        let a = CanonicalPact::parse(&text).unwrap();
        let b = CanonicalPact::parse(&compact).unwrap();
        assert_eq!(a.sha, b.sha);
        assert_eq!(a.sha.len(), 64);
        let changed = compact.replace("a charge of an order", "a charge");
        assert_ne!(CanonicalPact::parse(&changed).unwrap().sha, a.sha);
    }

    #[test]
    fn the_same_contract_written_by_another_library_has_the_same_sha() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../contracts/pacts/order-payment.json"
        ))
        .unwrap();
        let mut other: Value = serde_json::from_str(&text).unwrap();
        other["metadata"]["pactRust"] = serde_json::json!({"models": "1.3.16"});
        let a = CanonicalPact::parse(&text).unwrap();
        let b = CanonicalPact::parse(&other.to_string()).unwrap();
        assert_eq!(a.sha, b.sha, "metadata is not part of the contract");
        assert_ne!(a.text, b.text, "the text kept is the one published");
    }
}
