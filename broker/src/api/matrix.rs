//! The matrix and can-i-deploy: which pacticipant versions have verified each other.
//!
//! `GET /matrix` with `q[]` selectors is the Pact Broker's question, the one its
//! `can-i-deploy` asks: `q[][pacticipant]=order&q[][version]=c1&latestby=cvpv&environment=production`
//! (against the versions in an environment), `…&tag=prod` (against the latest version of each
//! other pacticipant with that tag), two or more selectors (those versions with each other),
//! or one selector alone (against the latest versions). A selector names a version with
//! `q[][version]`, or `q[][latest]=true` with an optional `q[][tag]`, `q[][branch]` or
//! `q[][mainBranch]=true`. `ignore[][pacticipant]` leaves a pacticipant out. The answer is
//! the Pact Broker's: `summary {deployable, reason, success, failed, unknown}`, `notices
//! [{type, text}]`, and a `matrix` row per integration judged.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{
    bad_request, base, hal, pact_href, pacticipant_href, time, version_href, ApiError, ApiResult,
    AppState,
};
use crate::store::{self, Decision, LatestOf, Target};

/// A decision as the Pact Broker's matrix answer.
fn matrix_answer(b: &str, decision: &Decision) -> Value {
    let rows: Vec<Value> = decision
        .checks
        .iter()
        .map(|c| {
            let side = |name: &str, version: Option<&str>| {
                json!({
                    "name": name,
                    "_links": {"self": {"href": pacticipant_href(b, name)}},
                    "version": version.map(|v| json!({
                        "number": v,
                        "_links": {"self": {"href": version_href(b, name, v)}},
                    })),
                })
            };
            let pact = c.sha.as_ref().map(|sha| {
                json!({"pactVersionSha": sha, "_links": {"self": {"href": pact_href(b, &c.provider, &c.consumer, sha)}}})
            });
            let verification = match (&c.verification, &c.sha) {
                (Some(v), Some(sha)) => json!({
                    "success": v.success,
                    "verifiedAt": time(&v.verified_at),
                    "_links": {"self": {"href": format!("{}/verification-results/{}", pact_href(b, &c.provider, &c.consumer, sha), v.id)}},
                }),
                _ => Value::Null,
            };
            json!({
                "consumer": side(&c.consumer, Some(&c.consumer_version)),
                "provider": side(&c.provider, c.provider_version.as_deref()),
                "pact": pact,
                "verificationResult": verification,
                "reason": c.reason,
            })
        })
        .collect();
    let mut notices: Vec<Value> = decision
        .checks
        .iter()
        .map(|c| json!({"type": if c.ok { "success" } else { "error" }, "text": c.reason}))
        .collect();
    if decision.checks.is_empty() && !decision.deployable {
        notices.push(json!({"type": "error", "text": decision.reason}));
    }
    notices.extend(
        decision
            .notes
            .iter()
            .map(|n| json!({"type": "warning", "text": n})),
    );
    let success = decision.checks.iter().filter(|c| c.ok).count();
    let unknown = decision
        .checks
        .iter()
        .filter(|c| !c.ok && c.verification.is_none())
        .count();
    json!({
        "summary": {
            "deployable": decision.deployable,
            "reason": decision.reason,
            "success": success,
            "failed": decision.checks.len() - success - unknown,
            "unknown": unknown,
        },
        "notices": notices,
        "matrix": rows,
        "_links": {},
    })
}

/// One `q[]` selector.
#[derive(Debug, Default)]
struct Selector {
    pacticipant: String,
    version: Option<String>,
    latest: bool,
    tag: Option<String>,
    branch: Option<String>,
    main_branch: bool,
}

/// A matrix question read from its query string, in order (`q[]` keys belong to the
/// selector the last `q[][pacticipant]` started).
#[derive(Debug, Default)]
struct Question {
    selectors: Vec<Selector>,
    ignore: Vec<String>,
    environment: Option<String>,
    tag: Option<String>,
}

fn truthy(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(bad_request(format!(
            "query parameter {key}: expected true or false, not {other:?}"
        ))),
    }
}

fn question(pairs: &[(String, String)]) -> Result<Question, ApiError> {
    let mut q = Question::default();
    for (key, value) in pairs {
        if key == "q[][pacticipant]" {
            q.selectors.push(Selector {
                pacticipant: value.clone(),
                ..Selector::default()
            });
            continue;
        }
        if let Some(field) = key.strip_prefix("q[][") {
            let Some(selector) = q.selectors.last_mut() else {
                return Err(bad_request(format!(
                    "query parameter {key} comes before any q[][pacticipant]"
                )));
            };
            match field {
                "version]" => selector.version = Some(value.clone()),
                "latest]" => selector.latest = truthy(key, value)?,
                "tag]" => selector.tag = Some(value.clone()),
                "branch]" => selector.branch = Some(value.clone()),
                "mainBranch]" => selector.main_branch = truthy(key, value)?,
                _ => {
                    return Err(bad_request(format!(
                        "query parameter {key} is not supported; a selector takes pacticipant, version, latest, tag, branch, mainBranch"
                    )))
                }
            }
            continue;
        }
        match key.as_str() {
            "ignore[][pacticipant]" => q.ignore.push(value.clone()),
            "environment" => q.environment = Some(value.clone()),
            "tag" => q.tag = Some(value.clone()),
            // How rows are collapsed, and the single-selector default: faultline answers with
            // one row per version pair judged, which is what `cvpv` and `cvp` both ask for
            // when versions are named.
            "latestby" | "latest" | "limit" => {}
            "mainBranch" => {
                return Err(bad_request(
                    "query parameter mainBranch (can-i-merge) is not supported",
                ))
            }
            other => {
                return Err(bad_request(format!(
                    "query parameter {other} is not supported by /matrix with q[] selectors"
                )))
            }
        }
    }
    Ok(q)
}

/// The version a selector names: its number, or the latest one it picks.
async fn resolve(s: &AppState, selector: &Selector) -> Result<Option<String>, ApiError> {
    if let Some(version) = &selector.version {
        return Ok(Some(version.clone()));
    }
    let which = LatestOf {
        tag: selector.tag.clone(),
        branch: selector.branch.clone(),
        main_branch: selector.main_branch,
    };
    if !selector.latest && which.tag.is_none() && which.branch.is_none() && !which.main_branch {
        return Err(bad_request(format!(
            "selector for {}: give q[][version], or q[][latest]=true (with q[][tag], q[][branch] or q[][mainBranch])",
            selector.pacticipant
        )));
    }
    match store::latest_version(&s.pool, &selector.pacticipant, &which).await {
        Ok(v) => Ok(Some(v.number)),
        Err(store::StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn ask(s: &AppState, q: Question) -> Result<Decision, ApiError> {
    if q.selectors.is_empty() {
        return Err(bad_request(
            "query parameter q[][pacticipant] is required (with q[][version])",
        ));
    }
    let mut versions = Vec::new();
    for selector in &q.selectors {
        match resolve(s, selector).await? {
            Some(v) => versions.push((selector.pacticipant.clone(), v)),
            None => {
                return Ok(Decision {
                    deployable: false,
                    reason: format!(
                        "{} has no version the selector picks (latest{}{}{})",
                        selector.pacticipant,
                        selector
                            .tag
                            .as_ref()
                            .map(|t| format!(" tagged {t}"))
                            .unwrap_or_default(),
                        selector
                            .branch
                            .as_ref()
                            .map(|b| format!(" on branch {b}"))
                            .unwrap_or_default(),
                        if selector.main_branch {
                            " on its main branch"
                        } else {
                            ""
                        },
                    ),
                    checks: Vec::new(),
                    notes: Vec::new(),
                })
            }
        }
    }
    let target = match (&q.environment, &q.tag) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "query parameters environment and tag: give one of them, not both",
            ))
        }
        (Some(env), None) => Some(Target::Environment(env.clone())),
        (None, Some(tag)) => Some(Target::Tag(tag.clone())),
        (None, None) => None,
    };
    match (versions.as_slice(), target) {
        ([(p, v)], Some(target)) => Ok(store::can_i_deploy(&s.pool, p, v, &target, &q.ignore).await?),
        ([(p, v)], None) => Ok(store::can_i_deploy(&s.pool, p, v, &Target::Latest, &q.ignore).await?),
        (_, None) => Ok(store::can_i_deploy_together(&s.pool, &versions, &q.ignore).await?),
        (_, Some(_)) => Err(bad_request(
            "with environment or tag, give one q[][pacticipant] selector: the versions it is judged against come from there",
        )),
    }
}

/// `GET /matrix`: with `q[]` selectors, the Pact Broker's can-i-deploy question; with
/// `pacticipant` (and `version`), every publication of it and each verification.
pub(super) async fn matrix(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult {
    if pairs.iter().any(|(k, _)| k.starts_with("q[]")) {
        let decision = ask(&s, question(&pairs)?).await?;
        return hal(StatusCode::OK, matrix_answer(&base(&headers), &decision));
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let pacticipant = get("pacticipant")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            bad_request("query parameter q[][pacticipant] (or pacticipant) is required")
        })?;
    let rows = store::matrix(&s.pool, pacticipant, get("version")).await?;
    hal(StatusCode::OK, json!({"matrix": rows, "_links": {}}))
}

/// `GET /can-i-deploy?pacticipant=&version=&environment=`: the same answer as the matrix
/// question with one selector and an environment.
pub(super) async fn can_i_deploy(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult {
    let get = |name: &str| -> Result<String, ApiError> {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .ok_or_else(|| bad_request(format!("query parameter {name} is required")))
    };
    let decision = store::can_i_deploy(
        &s.pool,
        &get("pacticipant")?,
        &get("version")?,
        &Target::Environment(get("environment")?),
        &[],
    )
    .await?;
    hal(StatusCode::OK, matrix_answer(&base(&headers), &decision))
}
