//! Pact contents and their publications: the canonical form and sha of a pact, publishing
//! (all or nothing), and reading a version's pact, a content by sha, and the latest pacts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use faultline_contracts::Pact;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;

use super::pacticipants::{add_branch, add_tag, pacticipant_id, version_id};
use super::{Result, StoreError};

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
pub(super) struct PublicationRow {
    pub(super) consumer: String,
    pub(super) main_branch: Option<String>,
    pub(super) version: String,
    pub(super) version_id: i64,
    pub(super) sha: String,
    pub(super) branches: Vec<String>,
    pub(super) tags: Vec<String>,
    pub(super) deployed: Vec<String>,
    pub(super) released: Vec<String>,
}

pub(super) async fn publications_for(pool: &PgPool, provider: &str) -> Result<Vec<PublicationRow>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
