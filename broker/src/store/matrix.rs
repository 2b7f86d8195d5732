//! The matrix (publications with their verifications) and can-i-deploy: whether a version,
//! or several together, can be deployed against an environment, a tag or other versions.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use faultline_contracts::Pact;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgPool;

use super::deployments::{environment, Environment};
use super::pacticipants::find_version;
use super::Result;

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
