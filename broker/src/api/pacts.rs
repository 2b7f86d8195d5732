//! Pacts: publishing, fetching, the pacts a provider should verify, and verification results.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    bad_request, base, enc, hal, link, pact_href, pacticipant_href, parse_json, time, version_href,
    ApiError, ApiResult, AppState,
};
use crate::store::{self, ForVerificationRequest, VerificationBody};

/// A stored pact with the links a verifier follows.
fn pact_document(b: &str, provider: &str, consumer: &str, sha: &str, content: &str) -> Value {
    let mut doc: Value = serde_json::from_str(content).unwrap_or_else(|_| json!({}));
    let at = pact_href(b, provider, consumer, sha);
    doc["_links"] = json!({
        "self": {"href": at, "name": format!("Pact between {consumer} and {provider}")},
        "pb:publish-verification-results": {"href": format!("{at}/verification-results"), "title": "Publish verification results"},
        "pb:provider": {"href": pacticipant_href(b, provider), "name": provider},
        "pb:consumer": {"href": pacticipant_href(b, consumer), "name": consumer},
    });
    doc["pactVersionSha"] = json!(sha);
    doc
}

pub(super) async fn publish(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, c, v)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let text = std::str::from_utf8(&body).map_err(|e| bad_request(format!("pact: {e}")))?;
    let published = store::publish(
        &s.pool,
        &c,
        &v,
        None,
        &[],
        &[(Some((c.clone(), p.clone())), text.to_string())],
    )
    .await?;
    let one = &published[0];
    let (_, content) = store::pact_for_version(&s.pool, &p, &c, &v).await?;
    let status = if one.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    hal(
        status,
        pact_document(&base(&headers), &p, &c, &one.sha, &content),
    )
}

pub(super) async fn for_version(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, c, v)): Path<(String, String, String)>,
) -> ApiResult {
    let (sha, content) = store::pact_for_version(&s.pool, &p, &c, &v).await?;
    hal(
        StatusCode::OK,
        pact_document(&base(&headers), &p, &c, &sha, &content),
    )
}

pub(super) async fn latest_of_integration(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, c)): Path<(String, String)>,
) -> ApiResult {
    let (_, version, _) = store::latest_pacts(&s.pool, &p)
        .await?
        .into_iter()
        .find(|(consumer, _, _)| consumer == &c)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no pact between {c} and {p}"),
            )
        })?;
    for_version(State(s), headers, Path((p, c, version))).await
}

pub(super) async fn by_sha(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, c, sha)): Path<(String, String, String)>,
) -> ApiResult {
    let content = store::pact_by_sha(&s.pool, &p, &c, &sha).await?;
    hal(
        StatusCode::OK,
        pact_document(&base(&headers), &p, &c, &sha, &content),
    )
}

fn verification_href(b: &str, p: &str, c: &str, sha: &str, id: i64) -> String {
    format!("{}/verification-results/{id}", pact_href(b, p, c, sha))
}

pub(super) async fn post_verification(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, c, sha)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let body: VerificationBody = parse_json(&body, "verification result")?;
    let id = store::record_verification(&s.pool, &p, &c, &sha, &body).await?;
    let b = base(&headers);
    hal(
        StatusCode::CREATED,
        json!({
            "id": id,
            "success": body.success,
            "providerApplicationVersion": body.provider_application_version,
            "_links": {"self": {"href": verification_href(&b, &p, &c, &sha, id)}}
        }),
    )
}

pub(super) async fn get_verification(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, c, sha, id)): Path<(String, String, String, String)>,
) -> ApiResult {
    let id: i64 = id.parse().map_err(|_| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no verification result {id:?}"),
        )
    })?;
    let record = store::verification(&s.pool, &p, &c, &sha, id).await?;
    let b = base(&headers);
    hal(
        StatusCode::OK,
        json!({
            "id": record.id,
            "success": record.success,
            "providerName": p,
            "providerApplicationVersion": record.provider_version,
            "buildUrl": record.build_url,
            "testResults": record.test_results,
            "verificationDate": time(&record.created_at),
            "_links": {
                "self": {"href": verification_href(&b, &p, &c, &sha, id)},
                "pb:pact-version": {"href": pact_href(&b, &p, &c, &sha)},
                "pb:provider-version": link(version_href(&b, &p, &record.provider_version), &record.provider_version, "Provider version"),
            },
        }),
    )
}

pub(super) async fn latest_for_provider(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
) -> ApiResult {
    let b = base(&headers);
    let pacts: Vec<Value> = store::latest_pacts(&s.pool, &p)
        .await?
        .into_iter()
        .map(|(c, v, sha)| {
            json!({
                "href": pact_href(&b, &p, &c, &sha),
                "name": format!("Pact between {c} ({v}) and {p}"),
            })
        })
        .collect();
    if pacts.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no pacts for provider {p}"),
        ));
    }
    hal(
        StatusCode::OK,
        json!({"_links": {"self": {"href": format!("{b}/pacts/provider/{}/latest", enc(&p))}, "pacts": pacts}}),
    )
}

pub(super) async fn latest_of_every_integration(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult {
    let b = base(&headers);
    let pacts: Vec<Value> = store::latest_pacts_of_every_integration(&s.pool)
        .await?
        .iter()
        .map(|l| {
            let integration = format!(
                "{b}/pacts/provider/{}/consumer/{}",
                enc(&l.provider),
                enc(&l.consumer)
            );
            json!({
                "createdAt": time(&l.created_at),
                "pactVersionSha": l.sha,
                "_embedded": {
                    "consumer": {
                        "name": l.consumer,
                        "_links": {"self": {"href": pacticipant_href(&b, &l.consumer)}},
                        "_embedded": {"version": {"number": l.consumer_version}},
                    },
                    "provider": {
                        "name": l.provider,
                        "_links": {"self": {"href": pacticipant_href(&b, &l.provider)}},
                    },
                },
                "_links": {"self": [
                    {"href": format!("{integration}/latest")},
                    {"href": format!("{integration}/version/{}", enc(&l.consumer_version))},
                ]},
            })
        })
        .collect();
    hal(
        StatusCode::OK,
        json!({"pacts": pacts, "_links": {"self": {"href": format!("{b}/pacts/latest")}}}),
    )
}

pub(super) async fn for_verification_resource(
    headers: HeaderMap,
    Path(p): Path<String>,
) -> ApiResult {
    let b = base(&headers);
    hal(
        StatusCode::OK,
        json!({"_links": {"self": {"href": format!("{b}/pacts/provider/{}/for-verification", enc(&p))}}}),
    )
}

pub(super) async fn for_verification(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
    body: Bytes,
) -> ApiResult {
    let request: ForVerificationRequest = if body.is_empty() {
        ForVerificationRequest::default()
    } else {
        parse_json(&body, "pacts for verification")?
    };
    let b = base(&headers);
    let pacts: Vec<Value> = store::pacts_for_verification(&s.pool, &p, &request)
        .await?
        .into_iter()
        .map(|pact| {
            let mut notices = vec![json!({
                "when": "before_verification",
                "text": format!("The pact at {} is being verified because it matches: {}", pact_href(&b, &p, &pact.consumer, &pact.sha), pact.selected.join(", ")),
            })];
            if request.include_pending_status {
                notices.push(json!({
                    "when": "before_verification",
                    "text": if pact.pending {
                        format!("This pact is in pending state for this version of {p}: it has not yet been verified successfully{}, so a failure will not fail the build.", request.provider_version_branch.as_ref().map(|b| format!(" by a version on branch {b}")).unwrap_or_default())
                    } else {
                        format!("This pact is not pending: {p} has verified it successfully before, so a failure fails the build.")
                    },
                }));
            }
            json!({
                "shortDescription": format!("{} {}", pact.consumer, pact.selected.join(", ")),
                "verificationProperties": {"pending": pact.pending, "notices": notices},
                "_links": {"self": {
                    "href": pact_href(&b, &p, &pact.consumer, &pact.sha),
                    "name": format!("Pact between {} and {p}", pact.consumer),
                }},
            })
        })
        .collect();
    hal(
        StatusCode::OK,
        json!({
            "_embedded": {"pacts": pacts},
            "_links": {"self": {"href": format!("{b}/pacts/provider/{}/for-verification", enc(&p))}},
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishContracts {
    pacticipant_name: String,
    pacticipant_version_number: String,
    branch: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    build_url: Option<String>,
    contracts: Vec<Contract>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contract {
    consumer_name: String,
    provider_name: String,
    specification: Option<String>,
    content_type: Option<String>,
    content: String,
}

/// `POST /contracts/publish`, answered as the Pact Broker does: the pacticipant and version
/// embedded, a notice per pact (`{type, text}`), and `pb:contracts` links with titles.
pub(super) async fn publish_contracts(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body: PublishContracts = parse_json(&body, "contracts/publish")?;
    if let Some(url) = &body.build_url {
        store::check_text("buildUrl", url)?;
    }
    let mut pacts = Vec::new();
    for (i, contract) in body.contracts.iter().enumerate() {
        if contract.specification.as_deref().unwrap_or("pact") != "pact" {
            return Err(bad_request(format!(
                "contracts[{i}].specification: only \"pact\" is supported"
            )));
        }
        if let Some(content_type) = &contract.content_type {
            if content_type != "application/json" {
                return Err(bad_request(format!(
                    "contracts[{i}].contentType {content_type:?}: only application/json pacts are supported"
                )));
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(contract.content.trim())
            .map_err(|e| bad_request(format!("contracts[{i}].content: not base64: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| bad_request(format!("contracts[{i}].content: not UTF-8: {e}")))?;
        pacts.push((
            Some((
                contract.consumer_name.clone(),
                contract.provider_name.clone(),
            )),
            text,
        ));
    }
    let consumer = &body.pacticipant_name;
    let version = &body.pacticipant_version_number;
    let published = store::publish(
        &s.pool,
        consumer,
        version,
        body.branch.as_deref(),
        &body.tags,
        &pacts,
    )
    .await?;
    let b = base(&headers);
    let mut notices: Vec<Value> = Vec::new();
    notices.push(json!({"type": "info", "text": format!(
        "{consumer} version {version}{}{}",
        body.branch.as_ref().map(|br| format!(" on branch {br}")).unwrap_or_default(),
        if body.tags.is_empty() { String::new() } else { format!(", tagged {}", body.tags.join(", ")) },
    )}));
    for p in &published {
        notices.push(json!({"type": "success", "text": format!(
            "Pact between {} ({}) and {} {} (sha {}): {}",
            p.consumer, p.consumer_version, p.provider,
            if p.created { "published" } else { "already published with the same content" },
            p.sha,
            pact_href(&b, &p.provider, &p.consumer, &p.sha),
        )}));
    }
    let logs: Vec<Value> = notices
        .iter()
        .map(|n| json!({"level": "info", "message": n["text"], "deprecationWarning": "Replaced by notices"}))
        .collect();
    let contracts: Vec<Value> = published
        .iter()
        .map(|p| {
            link(
                pact_href(&b, &p.provider, &p.consumer, &p.sha),
                &format!(
                    "Pact between {} ({}) and {}",
                    p.consumer, p.consumer_version, p.provider
                ),
                "Pact",
            )
        })
        .collect();
    let version_at = version_href(&b, consumer, version);
    let tags: Vec<Value> = body
        .tags
        .iter()
        .map(|t| link(format!("{version_at}/tags/{}", enc(t)), t, "Tag"))
        .collect();
    hal(
        StatusCode::OK,
        json!({
            "notices": notices,
            "logs": logs,
            "published": published,
            "_embedded": {
                "pacticipant": {"name": consumer, "_links": {"self": {"href": pacticipant_href(&b, consumer)}}},
                "version": {
                    "number": version,
                    "_links": {"self": link(version_at.clone(), version, "Version")},
                },
            },
            "_links": {
                "pb:pacticipant": link(pacticipant_href(&b, consumer), consumer, "Pacticipant"),
                "pb:pacticipant-version": link(version_at, version, "Pacticipant version"),
                "pb:pacticipant-version-tags": tags,
                "pb:contracts": contracts,
            },
        }),
    )
}
