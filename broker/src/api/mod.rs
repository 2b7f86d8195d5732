//! The broker's HTTP resources, HAL+JSON with `_links` as the Pact Broker serves them: what
//! the official `pact verifier` and `pact broker …` client and faultline's own client use.
//! Links are absolute, built from the request's `Host`.
//!
//! | resource | methods |
//! |---|---|
//! | `/` | GET: the index, with `pb:` links |
//! | `/pacticipants`, `/pacticipants/{p}` | GET, POST / GET, PUT, PATCH (`mainBranch`, `displayName`, `repositoryUrl`) |
//! | `/pacticipants/{p}/versions/{v}` | GET: branches, tags, `pb:record-deployment`, `pb:record-release`; PUT (`branch`, `tags`) |
//! | `/pacticipants/{p}/latest-version`, `…/latest-version/{tag}` | GET |
//! | `/pacticipants/{p}/branches/{b}/versions/{v}` | PUT |
//! | `/pacticipants/{p}/versions/{v}/tags/{t}` | PUT |
//! | `/pacts/provider/{p}/consumer/{c}/version/{v}` | PUT (publish), GET |
//! | `/pacts/provider/{p}/consumer/{c}/latest` | GET |
//! | `/pacts/provider/{p}/consumer/{c}/pact-version/{sha}` | GET |
//! | `…/pact-version/{sha}/verification-results` | POST; `…/verification-results/{id}`: GET |
//! | `/pacts/provider/{p}/latest` | GET |
//! | `/pacts/latest` | GET: the latest pact of every integration |
//! | `/pacts/provider/{p}/for-verification` | GET, POST (selectors, pending) |
//! | `/contracts/publish` | POST (several pacts of one consumer version, all or nothing) |
//! | `/environments`, `/environments/{uuid}` | GET, POST / GET |
//! | `/environments/{uuid}/deployed-versions/currently-deployed` | GET (`?pacticipant=`) |
//! | `/environments/{uuid}/released-versions/currently-supported` | GET (`?pacticipant=`) |
//! | `/pacticipants/{p}/versions/{v}/deployed-versions/environment/{e}` | POST |
//! | `/pacticipants/{p}/versions/{v}/released-versions/environment/{e}` | POST |
//! | `/deployed-versions/{uuid}`, `/released-versions/{uuid}` | GET, PATCH (`currentlyDeployed` / `currentlySupported` false) |
//! | `/matrix?q[][pacticipant]=&q[][version]=…` | GET: can-i-deploy as the Pact Broker's matrix |
//! | `/matrix?pacticipant=&version=` | GET: every publication and verification of a pacticipant |
//! | `/can-i-deploy?pacticipant=&version=&environment=` | GET |
//!
//! Tokens: every write needs `Authorization: Bearer <write token>` (401 without a token or with
//! an unknown one, 403 with the read token). Reads (GET, and the for-verification query) need
//! the read or write token when a read token is configured, and are open otherwise.
//!
//! Every refusal is JSON `{"error": "...", "errors": ["..."]}`, also those the HTTP layer
//! makes (unknown route 404, wrong method 405, body over [`MAX_BODY`] 413, path over
//! [`MAX_URI`] 414, a path that is not UTF-8 400, a body that is not JSON 415). A NUL
//! character anywhere in a path, query or JSON body is a 400 naming where. A 5xx is a fault
//! of the server: its body says so and no more; the details go to the broker's log.

mod deployments;
mod matrix;
mod pacticipants;
mod pacts;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;

use super::enc;
use super::store::StoreError;
use super::BrokerConfig;

/// The largest request body the broker reads (a publication of several large pacts fits).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// The longest path and query the broker reads.
pub const MAX_URI: usize = 8 * 1024;

/// Every route: its path template and the methods it answers. The router is built from the
/// same paths; `tests/broker.rs` walks this list with bad input.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/", &["GET"]),
    ("/pacticipants", &["GET", "POST"]),
    ("/pacticipants/{p}", &["GET", "PUT", "PATCH"]),
    ("/pacticipants/{p}/versions/{v}", &["GET", "PUT"]),
    ("/pacticipants/{p}/latest-version", &["GET"]),
    ("/pacticipants/{p}/latest-version/{t}", &["GET"]),
    ("/pacticipants/{p}/branches/{b}/versions/{v}", &["PUT"]),
    ("/pacticipants/{p}/versions/{v}/tags/{t}", &["PUT"]),
    (
        "/pacticipants/{p}/versions/{v}/deployed-versions/environment/{e}",
        &["POST"],
    ),
    (
        "/pacticipants/{p}/versions/{v}/released-versions/environment/{e}",
        &["POST"],
    ),
    ("/pacts/latest", &["GET"]),
    (
        "/pacts/provider/{p}/consumer/{c}/version/{v}",
        &["GET", "PUT"],
    ),
    ("/pacts/provider/{p}/consumer/{c}/latest", &["GET"]),
    (
        "/pacts/provider/{p}/consumer/{c}/pact-version/{sha}",
        &["GET"],
    ),
    (
        "/pacts/provider/{p}/consumer/{c}/pact-version/{sha}/verification-results",
        &["POST"],
    ),
    (
        "/pacts/provider/{p}/consumer/{c}/pact-version/{sha}/verification-results/{id}",
        &["GET"],
    ),
    ("/pacts/provider/{p}/latest", &["GET"]),
    ("/pacts/provider/{p}/for-verification", &["GET", "POST"]),
    ("/contracts/publish", &["POST"]),
    ("/environments", &["GET", "POST"]),
    ("/environments/{e}", &["GET"]),
    (
        "/environments/{e}/deployed-versions/currently-deployed",
        &["GET"],
    ),
    (
        "/environments/{e}/released-versions/currently-supported",
        &["GET"],
    ),
    ("/deployed-versions/{uuid}", &["GET", "PATCH"]),
    ("/released-versions/{uuid}", &["GET", "PATCH"]),
    ("/matrix", &["GET"]),
    ("/can-i-deploy", &["GET"]),
];

#[derive(Clone)]
struct AppState {
    pool: PgPool,
    write_token: String,
    read_token: Option<String>,
}

/// The broker's routes on `pool`.
pub fn router(pool: PgPool, config: &BrokerConfig) -> Router {
    use deployments as d;
    use matrix as m;
    use pacticipants as pa;
    use pacts as pc;
    let state = AppState {
        pool,
        write_token: config.write_token.clone(),
        read_token: config.read_token.clone(),
    };
    let r = ROUTES;
    Router::new()
        .route(r[0].0, get(index))
        .route(r[1].0, get(pa::list).post(pa::create))
        .route(r[2].0, get(pa::get).put(pa::update).patch(pa::update))
        .route(r[3].0, get(pa::version).put(pa::put_version))
        .route(r[4].0, get(pa::latest_version))
        .route(r[5].0, get(pa::latest_tagged_version))
        .route(r[6].0, put(pa::put_branch_version))
        .route(r[7].0, put(pa::put_tag))
        .route(r[8].0, post(d::record_deployment))
        .route(r[9].0, post(d::record_release))
        .route(r[10].0, get(pc::latest_of_every_integration))
        .route(r[11].0, put(pc::publish).get(pc::for_version))
        .route(r[12].0, get(pc::latest_of_integration))
        .route(r[13].0, get(pc::by_sha))
        .route(r[14].0, post(pc::post_verification))
        .route(r[15].0, get(pc::get_verification))
        .route(r[16].0, get(pc::latest_for_provider))
        .route(
            r[17].0,
            get(pc::for_verification_resource).post(pc::for_verification),
        )
        .route(r[18].0, post(pc::publish_contracts))
        .route(
            r[19].0,
            get(d::list_environments).post(d::create_environment),
        )
        .route(r[20].0, get(d::get_environment))
        .route(r[21].0, get(d::currently_deployed))
        .route(r[22].0, get(d::currently_supported))
        .route(r[23].0, get(d::get_deployed).patch(d::patch_deployed))
        .route(r[24].0, get(d::get_released).patch(d::patch_released))
        .route(r[25].0, get(m::matrix))
        .route(r[26].0, get(m::can_i_deploy))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(state.clone(), authorise))
        .layer(middleware::from_fn(guard))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
}

/// An error answer: status and a message a person can act on.
pub struct ApiError(StatusCode, String);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
            StoreError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            StoreError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            StoreError::Database(e) => {
                tracing::error!(error = %e, "broker request failed");
                server_fault()
            }
        }
    }
}

fn server_fault() -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the broker failed to answer; the details are in its log".into(),
    )
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

/// Reads a JSON body: a 400 names the line and column, or the JSON path of a NUL character
/// (Postgres cannot store one, and no name or text needs one).
fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("{what}: {e}")))?;
    if let Some(at) = nul_at(&value, "$") {
        return Err(bad_request(format!(
            "{what}: {at} holds a NUL character; names and texts may not"
        )));
    }
    serde_json::from_value(value).map_err(|e| bad_request(format!("{what}: {e}")))
}

/// The JSON path of the first key or string holding a NUL character.
fn nul_at(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(format!("a key of {at}"))
            } else {
                nul_at(v, &format!("{at}.{k}"))
            }
        }),
        _ => None,
    }
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!(
            "no resource at {method} {}; GET / lists the broker's resources",
            uri.path()
        ),
    )
}

/// Refuses, before any handler runs, what no resource accepts: a path and query longer than
/// [`MAX_URI`], a path that is not UTF-8 once percent-decoded, a NUL character in the path
/// or query, and a body declared as anything but JSON.
async fn guard(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let length = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if length > MAX_URI {
        return ApiError(
            StatusCode::URI_TOO_LONG,
            format!("the path and query are {length} bytes; at most {MAX_URI} are read"),
        )
        .into_response();
    }
    let path = percent_decode(uri.path().as_bytes());
    let Ok(path) = String::from_utf8(path) else {
        return bad_request("the path is not UTF-8 once percent-decoded").into_response();
    };
    if path.contains('\0') {
        return bad_request("the path holds a NUL character (%00)").into_response();
    }
    if let Some(query) = uri.query() {
        if percent_decode(query.as_bytes()).contains(&0) {
            return bad_request("the query holds a NUL character (%00)").into_response();
        }
    }
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let json = content_type
            .to_str()
            .ok()
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
        if !json {
            return ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {:?}: the broker reads JSON (application/json or application/hal+json)",
                    String::from_utf8_lossy(content_type.as_bytes())
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Gives every refusal the JSON error body, also those axum and its extractors make with a
/// plain-text or empty body (404, 405, 413, a path parameter that is not UTF-8…). A 5xx body
/// is replaced whatever it held: it must not show internals.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        // The handlers' own refusals; for a 5xx they say no more than that it happened.
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let mut message = if status.is_server_error() {
        server_fault().1
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    if status == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
        {
            message = format!("{message}; this resource answers {allow}");
        }
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        message = format!("{message}; the broker reads bodies of at most {MAX_BODY} bytes");
    }
    let body = json!({"error": message, "errors": [message]}).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
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
                    HeaderValue::from_static("Bearer realm=\"faultline-broker\""),
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

/// A timestamp as the Pact Broker writes them (RFC 3339, UTC).
fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `{"href", "name", "title"}`: the Pact Broker's link shape; its clients read all three.
fn link(href: String, name: &str, title: &str) -> Value {
    json!({"href": href, "name": name, "title": title})
}

fn pacticipant_href(b: &str, p: &str) -> String {
    format!("{b}/pacticipants/{}", enc(p))
}

fn version_href(b: &str, p: &str, v: &str) -> String {
    format!("{b}/pacticipants/{}/versions/{}", enc(p), enc(v))
}

fn pact_href(b: &str, provider: &str, consumer: &str, sha: &str) -> String {
    format!(
        "{b}/pacts/provider/{}/consumer/{}/pact-version/{sha}",
        enc(provider),
        enc(consumer)
    )
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
                "pb:latest-pact-versions": {"href": format!("{b}/pacts/latest")},
                "pb:latest-provider-pacts": {"href": format!("{b}/pacts/provider/{{provider}}/latest"), "templated": true},
                "pb:provider-pacts-for-verification": {"href": format!("{b}/pacts/provider/{{provider}}/for-verification"), "templated": true},
                "pb:pacticipants": {"href": format!("{b}/pacticipants")},
                "pb:pacticipant": {"href": format!("{b}/pacticipants/{{pacticipant}}"), "templated": true},
                "pb:latest-version": {"href": format!("{b}/pacticipants/{{pacticipant}}/latest-version"), "templated": true},
                "pb:latest-tagged-version": {"href": format!("{b}/pacticipants/{{pacticipant}}/latest-version/{{tag}}"), "templated": true},
                "pb:pacticipant-version": {"href": format!("{b}/pacticipants/{{pacticipant}}/versions/{{version}}"), "templated": true},
                "pb:pacticipant-branch-version": {"href": format!("{b}/pacticipants/{{pacticipant}}/branches/{{branch}}/versions/{{version}}"), "templated": true},
                "pb:pacticipant-version-tag": {"href": format!("{b}/pacticipants/{{pacticipant}}/versions/{{version}}/tags/{{tag}}"), "templated": true},
                "pb:environments": {"href": format!("{b}/environments")},
                "pb:environment": {"href": format!("{b}/environments/{{uuid}}"), "templated": true},
                "pb:matrix": {"href": format!("{b}/matrix")},
                "pb:can-i-deploy-pacticipant-version-to-environment": {"href": format!("{b}/can-i-deploy?pacticipant={{pacticipant}}&version={{version}}&environment={{environment}}"), "templated": true},
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode(b"a%2Fb"), b"a/b");
        assert_eq!(percent_decode(b"%00"), b"\0");
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(percent_decode(b"%FF"), [0xFF]);
    }

    #[test]
    fn a_nul_anywhere_in_a_body_is_found_with_its_path() {
        let value = json!({"a": [1, {"b": "x\u{0}y"}]});
        assert_eq!(nul_at(&value, "$").as_deref(), Some("$.a[1].b"));
        assert_eq!(
            nul_at(&json!({"k\u{0}": 1}), "$").as_deref(),
            Some("a key of $")
        );
        assert_eq!(nul_at(&json!({"a": "fine"}), "$"), None);
    }
}
