//! What a provider should verify (the consumer version selectors, pending status) and the
//! verification results it records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgPool;

use super::pacticipants::version_id;
use super::pacts::{pact_by_sha, publications_for, PublicationRow};
use super::{check_text, Result, Selector, StoreError};

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
}
