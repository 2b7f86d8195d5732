//! The broker's HTTP resources, HAL+JSON with `_links` as the Pact Broker serves them (the
//! subset `pact_verifier_cli` and the publishing tools use). Links are absolute, built from the
//! request's `Host`.
//!
//! | resource | methods |
//! |---|---|
//! | `/` | GET: the index, with `pb:` links |
//! | `/pacticipants`, `/pacticipants/{p}` | POST / GET, PUT, PATCH (`mainBranch`) |
//! | `/pacticipants/{p}/versions/{v}` | GET: branches and tags |
//! | `/pacticipants/{p}/branches/{b}/versions/{v}` | PUT |
//! | `/pacticipants/{p}/versions/{v}/tags/{t}` | PUT |
//! | `/pacts/provider/{p}/consumer/{c}/version/{v}` | PUT (publish), GET |
//! | `/pacts/provider/{p}/consumer/{c}/pact-version/{sha}` | GET |
//! | `…/pact-version/{sha}/verification-results` | POST |
//! | `/pacts/provider/{p}/latest` | GET |
//! | `/pacts/provider/{p}/for-verification` | GET, POST (selectors, pending) |
//! | `/contracts/publish` | POST (several pacts of one consumer version, all or nothing) |
//! | `/environments`, `/environments/{uuid}` | POST, GET |
//! | `/pacticipants/{p}/versions/{v}/deployed-versions/environment/{e}` | POST |
//! | `/pacticipants/{p}/versions/{v}/released-versions/environment/{e}` | POST |
//! | `/matrix?pacticipant=&version=` | GET |
//! | `/can-i-deploy?pacticipant=&version=&environment=` | GET |
//!
//! Tokens: every write needs `Authorization: Bearer <write token>` (401 without a token or with
//! an unknown one, 403 with the read token). Reads (GET, and the for-verification query) need
//! the read or write token when a read token is configured, and are open otherwise. Errors are
//! JSON `{"error": "...", "errors": ["..."]}`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;

use super::store::{self, DeploymentKind, ForVerificationRequest, StoreError, VerificationBody};
use super::BrokerConfig;

#[derive(Clone)]
struct AppState {
    pool: PgPool,
    write_token: String,
    read_token: Option<String>,
}

/// The broker's routes on `pool`.
pub fn router(pool: PgPool, config: &BrokerConfig) -> Router {
    let state = AppState {
        pool,
        write_token: config.write_token.clone(),
        read_token: config.read_token.clone(),
    };
    Router::new()
        .route("/", get(index))
        .route("/pacticipants", post(create_pacticipant))
        .route(
            "/pacticipants/{p}",
            get(get_pacticipant)
                .put(update_pacticipant)
                .patch(update_pacticipant),
        )
        .route("/pacticipants/{p}/versions/{v}", get(get_version))
        .route(
            "/pacticipants/{p}/branches/{b}/versions/{v}",
            put(put_branch_version),
        )
        .route("/pacticipants/{p}/versions/{v}/tags/{t}", put(put_tag))
        .route(
            "/pacticipants/{p}/versions/{v}/deployed-versions/environment/{e}",
            post(record_deployment),
        )
        .route(
            "/pacticipants/{p}/versions/{v}/released-versions/environment/{e}",
            post(record_release),
        )
        .route(
            "/pacts/provider/{p}/consumer/{c}/version/{v}",
            put(publish_pact).get(get_pact_for_version),
        )
        .route(
            "/pacts/provider/{p}/consumer/{c}/pact-version/{sha}",
            get(get_pact_by_sha),
        )
        .route(
            "/pacts/provider/{p}/consumer/{c}/pact-version/{sha}/verification-results",
            post(post_verification),
        )
        .route("/pacts/provider/{p}/latest", get(latest_pacts))
        .route(
            "/pacts/provider/{p}/for-verification",
            get(for_verification_resource).post(for_verification),
        )
        .route("/contracts/publish", post(publish_contracts))
        .route(
            "/environments",
            get(list_environments).post(create_environment),
        )
        .route("/environments/{e}", get(get_environment))
        .route("/matrix", get(matrix))
        .route("/can-i-deploy", get(can_i_deploy))
        .layer(middleware::from_fn_with_state(state.clone(), authorise))
        .with_state(state)
}

/// An error answer: status and a message a person can act on.
pub struct ApiError(StatusCode, String);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "broker request failed");
        }
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": self.1, "errors": [self.1]}).to_string(),
        )
            .into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

type ApiResult = Result<Response, ApiError>;

fn hal(status: StatusCode, body: Value) -> ApiResult {
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/hal+json")],
        body.to_string(),
    )
        .into_response())
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("{what}: {e}")))
}

async fn authorise(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let write = !(request.method() == Method::GET
        || request.method() == Method::HEAD
        || (request.method() == Method::POST
            && request.uri().path().ends_with("/for-verification")));
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let is_write = token == Some(state.write_token.as_str());
    let is_read = state.read_token.is_some() && token == state.read_token.as_deref();
    let denied = if write {
        if is_write {
            None
        } else if is_read {
            Some((
                StatusCode::FORBIDDEN,
                "this token may only read; writes need the write token",
            ))
        } else {
            Some((
                StatusCode::UNAUTHORIZED,
                "writes need Authorization: Bearer <write token>",
            ))
        }
    } else if state.read_token.is_some() && !is_write && !is_read {
        Some((
            StatusCode::UNAUTHORIZED,
            "reads need Authorization: Bearer <read or write token>",
        ))
    } else {
        None
    };
    match denied {
        Some((status, why)) => {
            let mut response = ApiError(status, why.into()).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"faultline-broker\""),
                );
            }
            response
        }
        None => next.run(request).await,
    }
}

fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn index(headers: HeaderMap) -> ApiResult {
    let b = base(&headers);
    hal(
        StatusCode::OK,
        json!({
            "name": "faultline contract broker",
            "_links": {
                "self": {"href": b},
                "pb:publish-pact": {"href": format!("{b}/pacts/provider/{{provider}}/consumer/{{consumer}}/version/{{consumerApplicationVersion}}"), "templated": true},
                "pb:publish-contracts": {"href": format!("{b}/contracts/publish")},
                "pb:latest-provider-pacts": {"href": format!("{b}/pacts/provider/{{provider}}/latest"), "templated": true},
                "pb:provider-pacts-for-verification": {"href": format!("{b}/pacts/provider/{{provider}}/for-verification"), "templated": true},
                "pb:pacticipant": {"href": format!("{b}/pacticipants/{{pacticipant}}"), "templated": true},
                "pb:pacticipant-version": {"href": format!("{b}/pacticipants/{{pacticipant}}/versions/{{version}}"), "templated": true},
                "pb:pacticipant-branch-version": {"href": format!("{b}/pacticipants/{{pacticipant}}/branches/{{branch}}/versions/{{version}}"), "templated": true},
                "pb:environments": {"href": format!("{b}/environments")},
                "pb:matrix": {"href": format!("{b}/matrix")},
                "pb:can-i-deploy-pacticipant-version-to-environment": {"href": format!("{b}/can-i-deploy?pacticipant={{pacticipant}}&version={{version}}&environment={{environment}}"), "templated": true},
            }
        }),
    )
}

fn pacticipant_links(b: &str, p: &str) -> Value {
    let p = enc(p);
    json!({
        "self": {"href": format!("{b}/pacticipants/{p}")},
        "pb:version": {"href": format!("{b}/pacticipants/{p}/versions/{{version}}"), "templated": true},
        "pb:branch-version": {"href": format!("{b}/pacticipants/{p}/branches/{{branch}}/versions/{{version}}"), "templated": true},
        "pb:version-tag": {"href": format!("{b}/pacticipants/{p}/versions/{{version}}/tags/{{tag}}"), "templated": true},
    })
}

async fn get_pacticipant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
) -> ApiResult {
    let main_branch = store::pacticipant(&s.pool, &p)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no pacticipant {p}")))?;
    hal(
        StatusCode::OK,
        json!({"name": p, "mainBranch": main_branch, "_links": pacticipant_links(&base(&headers), &p)}),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PacticipantBody {
    name: Option<String>,
    main_branch: Option<String>,
}

async fn create_pacticipant(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body: PacticipantBody = parse_json(&body, "pacticipant")?;
    let name = body
        .name
        .ok_or_else(|| bad_request("pacticipant: name is required"))?;
    store::upsert_pacticipant(&s.pool, &name, body.main_branch.as_deref()).await?;
    get_pacticipant(State(s), headers, Path(name)).await
}

async fn update_pacticipant(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body: PacticipantBody = if body.is_empty() {
        PacticipantBody {
            name: None,
            main_branch: None,
        }
    } else {
        parse_json(&body, "pacticipant")?
    };
    store::upsert_pacticipant(&s.pool, &p, body.main_branch.as_deref()).await?;
    get_pacticipant(State(s), headers, Path(p)).await
}

async fn get_version(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, v)): Path<(String, String)>,
) -> ApiResult {
    let info = store::version(&s.pool, &p, &v).await?;
    let b = base(&headers);
    hal(
        StatusCode::OK,
        json!({
            "number": info.number,
            "branches": info.branches,
            "tags": info.tags,
            "_links": {
                "self": {"href": format!("{b}/pacticipants/{}/versions/{}", enc(&p), enc(&v))},
                "pb:pacticipant": {"href": format!("{b}/pacticipants/{}", enc(&p))},
            }
        }),
    )
}

async fn put_branch_version(
    State(s): State<AppState>,
    Path((p, branch, v)): Path<(String, String, String)>,
) -> ApiResult {
    store::put_branch_version(&s.pool, &p, &branch, &v).await?;
    hal(
        StatusCode::OK,
        json!({"pacticipant": p, "branch": branch, "version": v, "_links": {}}),
    )
}

async fn put_tag(
    State(s): State<AppState>,
    Path((p, v, tag)): Path<(String, String, String)>,
) -> ApiResult {
    store::put_tag(&s.pool, &p, &v, &tag).await?;
    hal(
        StatusCode::OK,
        json!({"pacticipant": p, "version": v, "name": tag, "_links": {}}),
    )
}

/// A stored pact with the links a verifier follows.
fn pact_document(b: &str, provider: &str, consumer: &str, sha: &str, content: &str) -> Value {
    let mut doc: Value = serde_json::from_str(content).unwrap_or_else(|_| json!({}));
    let at = format!(
        "{b}/pacts/provider/{}/consumer/{}/pact-version/{sha}",
        enc(provider),
        enc(consumer)
    );
    doc["_links"] = json!({
        "self": {"href": at, "name": format!("Pact between {consumer} and {provider}")},
        "pb:publish-verification-results": {"href": format!("{at}/verification-results"), "title": "Publish verification results"},
        "pb:provider": {"href": format!("{b}/pacticipants/{}", enc(provider)), "name": provider},
        "pb:consumer": {"href": format!("{b}/pacticipants/{}", enc(consumer)), "name": consumer},
    });
    doc["pactVersionSha"] = json!(sha);
    doc
}

async fn publish_pact(
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

async fn get_pact_for_version(
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

async fn get_pact_by_sha(
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

async fn post_verification(
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
            "_links": {"self": {"href": format!("{b}/pacts/provider/{}/consumer/{}/pact-version/{sha}/verification-results/{id}", enc(&p), enc(&c))}}
        }),
    )
}

async fn latest_pacts(
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
                "href": format!("{b}/pacts/provider/{}/consumer/{}/pact-version/{sha}", enc(&p), enc(&c)),
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

async fn for_verification_resource(headers: HeaderMap, Path(p): Path<String>) -> ApiResult {
    let b = base(&headers);
    hal(
        StatusCode::OK,
        json!({"_links": {"self": {"href": format!("{b}/pacts/provider/{}/for-verification", enc(&p))}}}),
    )
}

async fn for_verification(
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
                "text": format!("The pact at {b}/pacts/provider/{p}/consumer/{}/pact-version/{} is being verified because it matches: {}", pact.consumer, pact.sha, pact.selected.join(", ")),
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
                    "href": format!("{b}/pacts/provider/{}/consumer/{}/pact-version/{}", enc(&p), enc(&pact.consumer), pact.sha),
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
    contracts: Vec<Contract>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contract {
    consumer_name: String,
    provider_name: String,
    specification: Option<String>,
    content: String,
}

async fn publish_contracts(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body: PublishContracts = parse_json(&body, "contracts/publish")?;
    let mut pacts = Vec::new();
    for (i, contract) in body.contracts.iter().enumerate() {
        if contract.specification.as_deref().unwrap_or("pact") != "pact" {
            return Err(bad_request(format!(
                "contracts[{i}].specification: only \"pact\" is supported"
            )));
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
    let published = store::publish(
        &s.pool,
        &body.pacticipant_name,
        &body.pacticipant_version_number,
        body.branch.as_deref(),
        &body.tags,
        &pacts,
    )
    .await?;
    let b = base(&headers);
    let notices: Vec<Value> = published
        .iter()
        .map(|p| {
            json!({"type": "success", "text": format!(
                "Pact between {} ({}) and {} {} (sha {})",
                p.consumer, p.consumer_version, p.provider,
                if p.created { "published" } else { "already published with the same content" },
                p.sha
            )})
        })
        .collect();
    let links: Vec<Value> = published
        .iter()
        .map(|p| json!({"href": format!("{b}/pacts/provider/{}/consumer/{}/pact-version/{}", enc(&p.provider), enc(&p.consumer), p.sha), "name": format!("Pact between {} and {}", p.consumer, p.provider)}))
        .collect();
    hal(
        StatusCode::OK,
        json!({"notices": notices, "published": published, "_links": {"pb:contracts": links}}),
    )
}

fn environment_json(b: &str, e: &store::Environment) -> Value {
    json!({
        "uuid": e.uuid,
        "name": e.name,
        "displayName": e.display_name,
        "production": e.production,
        "_links": {"self": {"href": format!("{b}/environments/{}", e.uuid)}},
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentBody {
    name: String,
    display_name: Option<String>,
    #[serde(default)]
    production: bool,
}

async fn create_environment(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body: EnvironmentBody = parse_json(&body, "environment")?;
    let env = store::create_environment(
        &s.pool,
        &body.name,
        body.display_name.as_deref(),
        body.production,
    )
    .await?;
    hal(StatusCode::CREATED, environment_json(&base(&headers), &env))
}

async fn list_environments(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    let b = base(&headers);
    let envs: Vec<Value> = store::environments(&s.pool)
        .await?
        .iter()
        .map(|e| environment_json(&b, e))
        .collect();
    hal(
        StatusCode::OK,
        json!({"_embedded": {"environments": envs}, "_links": {"self": {"href": format!("{b}/environments")}}}),
    )
}

async fn get_environment(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
) -> ApiResult {
    let env = store::environment(&s.pool, &e).await?;
    hal(StatusCode::OK, environment_json(&base(&headers), &env))
}

async fn record(
    s: AppState,
    headers: HeaderMap,
    (p, v, e): (String, String, String),
    kind: DeploymentKind,
) -> ApiResult {
    let uuid = store::record_deployment(&s.pool, &p, &v, &e, kind).await?;
    let b = base(&headers);
    hal(
        StatusCode::CREATED,
        json!({
            "uuid": uuid,
            "pacticipant": p,
            "version": v,
            "environment": e,
            "currentlyDeployed": kind == DeploymentKind::Deployment,
            "currentlySupported": kind == DeploymentKind::Release,
            "_links": {"pb:pacticipant-version": {"href": format!("{b}/pacticipants/{}/versions/{}", enc(&p), enc(&v))}},
        }),
    )
}

async fn record_deployment(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
) -> ApiResult {
    record(s, headers, path, DeploymentKind::Deployment).await
}

async fn record_release(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
) -> ApiResult {
    record(s, headers, path, DeploymentKind::Release).await
}

fn required<'a>(query: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad_request(format!("query parameter {name} is required")))
}

async fn matrix(
    State(s): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let pacticipant = required(&query, "pacticipant")?;
    let rows = store::matrix(
        &s.pool,
        pacticipant,
        query.get("version").map(String::as_str),
    )
    .await?;
    hal(StatusCode::OK, json!({"matrix": rows, "_links": {}}))
}

async fn can_i_deploy(
    State(s): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let pacticipant = required(&query, "pacticipant")?;
    let version = required(&query, "version")?;
    let environment = required(&query, "environment")?;
    let decision = store::can_i_deploy(&s.pool, pacticipant, version, environment).await?;
    let failed = decision.checks.iter().filter(|c| !c.ok).count();
    hal(
        StatusCode::OK,
        json!({
            "summary": {
                "deployable": decision.deployable,
                "reason": decision.reason,
                "success": decision.checks.len() - failed,
                "failed": failed,
                "unknown": 0,
            },
            "matrix": decision.checks,
            "notices": decision.notes,
            "_links": {},
        }),
    )
}
