//! The broker's tables and the decisions made on them. Every write is one transaction, so a
//! refused request leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};

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
    /// 500.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
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
    pub fn parse(text: &str) -> Result<Self> {
        let pact = Pact::from_json_str(text)
            .map_err(|e| StoreError::Invalid(format!("not a pact faultline accepts: {e}")))?;
        let text = pact.to_json_string();
        let sha = hex(&Sha256::digest(text.as_bytes()));
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
fn check_name(what: &str, name: &str) -> Result<()> {
    let slash_allowed = matches!(what, "branch" | "tag" | "mainBranch");
    if name.trim().is_empty()
        || name.len() > 200
        || name.chars().any(char::is_control)
        || (!slash_allowed && name.contains('/'))
    {
        return Err(StoreError::Invalid(format!(
            "{what} {name:?}: expected a non-empty name of at most 200 characters{}",
            if slash_allowed { "" } else { " without '/'" }
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

/// Creates the pacticipant (and sets its main branch when given).
pub async fn upsert_pacticipant(
    pool: &PgPool,
    name: &str,
    main_branch: Option<&str>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let id = pacticipant_id(&mut tx, name).await?;
    if let Some(branch) = main_branch {
        check_name("mainBranch", branch)?;
        sqlx::query("UPDATE pacticipants SET main_branch = $2 WHERE id = $1")
            .bind(id)
            .bind(branch)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A pacticipant's name and main branch.
pub async fn pacticipant(pool: &PgPool, name: &str) -> Result<Option<Option<String>>> {
    Ok(
        sqlx::query_scalar("SELECT main_branch FROM pacticipants WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
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
}

pub async fn version(pool: &PgPool, pacticipant: &str, number: &str) -> Result<VersionInfo> {
    let id = find_version(pool, pacticipant, number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("{pacticipant} has no version {number}")))?;
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
        number: number.into(),
        branches,
        tags,
    })
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

/// A consumer version selector (the Pact Broker's fields faultline honours).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub consumer: Option<String>,
    pub main_branch: Option<bool>,
    pub branch: Option<String>,
    pub matching_branch: Option<bool>,
    pub tag: Option<String>,
    pub latest: Option<bool>,
    pub deployed: Option<bool>,
    pub released: Option<bool>,
    pub deployed_or_released: Option<bool>,
    pub environment: Option<String>,
}

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

impl Selector {
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

/// An environment.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Environment {
    pub uuid: Uuid,
    pub name: String,
    pub display_name: Option<String>,
    pub production: bool,
}

pub async fn create_environment(
    pool: &PgPool,
    name: &str,
    display_name: Option<&str>,
    production: bool,
) -> Result<Environment> {
    check_name("environment", name)?;
    let created: Option<Environment> = sqlx::query_as(
        "INSERT INTO environments (uuid, name, display_name, production) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING RETURNING uuid, name, display_name, production",
    )
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(display_name)
    .bind(production)
    .fetch_optional(pool)
    .await?;
    created.ok_or_else(|| StoreError::Conflict(format!("environment {name} already exists")))
}

pub async fn environments(pool: &PgPool) -> Result<Vec<Environment>> {
    Ok(sqlx::query_as(
        "SELECT uuid, name, display_name, production FROM environments ORDER BY name",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn environment(pool: &PgPool, key: &str) -> Result<Environment> {
    let uuid = Uuid::parse_str(key).ok();
    let found: Option<Environment> = sqlx::query_as(
        "SELECT uuid, name, display_name, production FROM environments WHERE uuid = $1 OR name = $2",
    )
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

/// Records that `pacticipant` `version` is deployed (replacing the version deployed there
/// before) or released (beside the others) in `environment`.
pub async fn record_deployment(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    environment: &str,
    kind: DeploymentKind,
) -> Result<Uuid> {
    let env = self::environment(pool, environment).await?;
    let vid = find_version(pool, pacticipant, version).await?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "{pacticipant} has no version {version} in the broker: publish its pacts or verification results first"
        ))
    })?;
    let kind = match kind {
        DeploymentKind::Deployment => "deployment",
        DeploymentKind::Release => "release",
    };
    let mut tx = pool.begin().await?;
    // Serialises deployments to one environment, so two at once never both stay current.
    sqlx::query("SELECT uuid FROM environments WHERE uuid = $1 FOR UPDATE")
        .bind(env.uuid)
        .execute(&mut *tx)
        .await?;
    if kind == "deployment" {
        sqlx::query(
            "UPDATE deployments SET currently = false
             WHERE environment_uuid = $1 AND kind = 'deployment' AND currently
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
    Ok(uuid)
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
}

/// can-i-deploy's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub deployable: bool,
    pub reason: String,
    pub checks: Vec<Check>,
    /// Integrations not judged because nothing of the other side is in the environment.
    pub notes: Vec<String>,
}

/// The versions of `pacticipant_id` currently deployed or released in `env`.
async fn in_environment(
    pool: &PgPool,
    pacticipant_id: i64,
    env: Uuid,
) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT v.id, v.number FROM deployments d JOIN versions v ON v.id = d.version_id
         WHERE d.environment_uuid = $1 AND d.currently AND v.pacticipant_id = $2 ORDER BY v.id",
    )
    .bind(env)
    .bind(pacticipant_id)
    .fetch_all(pool)
    .await?)
}

/// Judges whether `provider_version_id` verified `sha` (of consumer `consumer_id`): `Ok` or
/// the reason, naming failed or never-verified interactions.
async fn judge(
    pool: &PgPool,
    sha: &str,
    consumer_id: i64,
    provider_version_id: i64,
) -> Result<std::result::Result<(), String>> {
    let latest: Option<(bool, Value)> = sqlx::query_as(
        "SELECT success, test_results FROM verifications WHERE sha = $1 AND provider_version_id = $2
         ORDER BY id DESC LIMIT 1",
    )
    .bind(sha)
    .bind(provider_version_id)
    .fetch_optional(pool)
    .await?;
    match latest {
        Some((true, _)) => Ok(Ok(())),
        Some((false, results)) => {
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
            Ok(Err(if failed.is_empty() {
                "the verification failed".to_string()
            } else {
                format!("the verification failed: {}", quote_list(&failed))
            }))
        }
        None => {
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
            Ok(Err(if missing.is_empty() || known.is_empty() {
                "no verification result".to_string()
            } else {
                format!(
                    "no verification result; never verified: {}",
                    quote_list(&missing)
                )
            }))
        }
    }
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Can `pacticipant` `version` be deployed to `environment`? See the module docs of
/// [`crate::broker`] for the rules.
pub async fn can_i_deploy(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    environment: &str,
) -> Result<Decision> {
    let env = self::environment(pool, environment).await?;
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
    // As consumer: each pact this version published, against the provider versions there.
    let pacts: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT pp.sha, p.id, p.name FROM pact_publications pp JOIN pacticipants p ON p.id = pp.provider_id
         WHERE pp.consumer_version_id = $1 ORDER BY p.name",
    )
    .bind(vid)
    .fetch_all(pool)
    .await?;
    for (sha, provider_id, provider) in pacts {
        let there = in_environment(pool, provider_id, env.uuid).await?;
        if there.is_empty() {
            notes.push(format!(
                "{provider} has no version in {}; the pact with it was not checked",
                env.name
            ));
        }
        for (pvid, pversion) in there {
            let verdict = judge(pool, &sha, me, pvid).await?;
            checks.push(Check {
                consumer: pacticipant.into(),
                consumer_version: version.into(),
                provider: provider.clone(),
                provider_version: Some(pversion.clone()),
                sha: Some(sha.clone()),
                ok: verdict.is_ok(),
                reason: match verdict {
                    Ok(()) => format!("verified by {provider} {pversion} (in {})", env.name),
                    Err(why) => format!(
                        "pact {pacticipant} {version} -> {provider} (sha {}): {why} by {provider} {pversion} (in {})",
                        &sha[..12],
                        env.name
                    ),
                },
            });
        }
    }
    // As provider: each consumer version there whose pact with this pacticipant exists.
    let consumers: Vec<(String, i64, String, String)> = sqlx::query_as(
        "SELECT DISTINCT c.name, c.id, cv.number, pp.sha FROM deployments d
         JOIN versions cv ON cv.id = d.version_id
         JOIN pacticipants c ON c.id = cv.pacticipant_id
         JOIN pact_publications pp ON pp.consumer_version_id = cv.id AND pp.provider_id = $2
         WHERE d.environment_uuid = $1 AND d.currently ORDER BY c.name, cv.number",
    )
    .bind(env.uuid)
    .bind(me)
    .fetch_all(pool)
    .await?;
    for (consumer, consumer_id, cversion, sha) in consumers {
        let verdict = judge(pool, &sha, consumer_id, vid).await?;
        checks.push(Check {
            consumer: consumer.clone(),
            consumer_version: cversion.clone(),
            provider: pacticipant.into(),
            provider_version: Some(version.into()),
            sha: Some(sha.clone()),
            ok: verdict.is_ok(),
            reason: match verdict {
                Ok(()) => format!("verified the pact of {consumer} {cversion} (in {})", env.name),
                Err(why) => format!(
                    "pact {consumer} {cversion} (in {}) -> {pacticipant} (sha {}): {why} by {pacticipant} {version}",
                    env.name,
                    &sha[..12]
                ),
            },
        });
    }
    let failing: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    let deployable = failing.is_empty();
    let reason = if deployable {
        format!(
            "{pacticipant} {version} can be deployed to {}: {} integration(s) verified",
            env.name,
            checks.len()
        )
    } else {
        format!(
            "{pacticipant} {version} cannot be deployed to {}: {}",
            env.name,
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
}
