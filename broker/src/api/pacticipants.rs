//! Pacticipants and their versions, branches and tags.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{
    bad_request, base, enc, hal, link, pacticipant_href, parse_json, time, version_href, ApiError,
    ApiResult, AppState,
};
use crate::store::{self, LatestOf, PacticipantFields, PacticipantInfo, VersionInfo};

fn pacticipant_json(b: &str, p: &PacticipantInfo) -> Value {
    let href = pacticipant_href(b, &p.name);
    json!({
        "name": p.name,
        "displayName": p.display_name,
        "repositoryUrl": p.repository_url,
        "mainBranch": p.main_branch,
        "createdAt": time(&p.created_at),
        "_links": {
            "self": {"href": href},
            "pb:version": {"href": format!("{href}/versions/{{version}}"), "templated": true},
            "pb:latest-version": {"href": format!("{href}/latest-version")},
            "pb:branch-version": {"href": format!("{href}/branches/{{branch}}/versions/{{version}}"), "templated": true},
            "pb:version-tag": {"href": format!("{href}/versions/{{version}}/tags/{{tag}}"), "templated": true},
        },
    })
}

pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    let b = base(&headers);
    let all: Vec<Value> = store::pacticipants(&s.pool)
        .await?
        .iter()
        .map(|p| pacticipant_json(&b, p))
        .collect();
    // `pacticipants` beside `_embedded`: the Pact Broker serves both, and clients read either.
    hal(
        StatusCode::OK,
        json!({
            "_embedded": {"pacticipants": all},
            "pacticipants": all,
            "_links": {"self": {"href": format!("{b}/pacticipants")}},
        }),
    )
}

pub(super) async fn get(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
) -> ApiResult {
    let info = store::pacticipant(&s.pool, &p)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no pacticipant {p}")))?;
    hal(StatusCode::OK, pacticipant_json(&base(&headers), &info))
}

pub(super) async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let fields: PacticipantFields = parse_json(&body, "pacticipant")?;
    let name = fields
        .name
        .clone()
        .ok_or_else(|| bad_request("pacticipant: name is required"))?;
    store::upsert_pacticipant(&s.pool, &name, &fields).await?;
    let info = store::pacticipant(&s.pool, &name)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no pacticipant {name}")))?;
    hal(
        StatusCode::CREATED,
        pacticipant_json(&base(&headers), &info),
    )
}

pub(super) async fn update(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
    body: Bytes,
) -> ApiResult {
    let fields: PacticipantFields = if body.is_empty() {
        PacticipantFields::default()
    } else {
        parse_json(&body, "pacticipant")?
    };
    if fields.name.as_ref().is_some_and(|n| n != &p) {
        return Err(bad_request(format!(
            "pacticipant: name {:?} differs from the path's {p:?}; renaming is not supported",
            fields.name.unwrap_or_default()
        )));
    }
    store::upsert_pacticipant(&s.pool, &p, &fields).await?;
    get(State(s), headers, Path(p)).await
}

fn version_json(b: &str, p: &str, v: &VersionInfo, envs: &[store::Environment]) -> Value {
    let href = version_href(b, p, &v.number);
    let record = |kind: &str, verb: &str| -> Vec<Value> {
        envs.iter()
            .map(|e| {
                link(
                    format!("{href}/{kind}/environment/{}", e.uuid),
                    &e.name,
                    &format!(
                        "{verb} {}",
                        e.display_name.clone().unwrap_or_else(|| e.name.clone())
                    ),
                )
            })
            .collect()
    };
    json!({
        "number": v.number,
        "createdAt": time(&v.created_at),
        "branches": v.branches,
        "tags": v.tags,
        "_embedded": {
            "branchVersions": v.branches.iter().map(|br| json!({
                "name": br,
                "_links": {"self": {"href": format!("{}/branches/{}/versions/{}", pacticipant_href(b, p), enc(br), enc(&v.number))}},
            })).collect::<Vec<_>>(),
            "tags": v.tags.iter().map(|t| json!({
                "name": t,
                "_links": {"self": {"href": format!("{href}/tags/{}", enc(t))}},
            })).collect::<Vec<_>>(),
        },
        "_links": {
            "self": {"href": href, "name": v.number, "title": "Version"},
            "pb:pacticipant": link(pacticipant_href(b, p), p, "Pacticipant"),
            "pb:tag": {"href": format!("{href}/tags/{{tag}}"), "templated": true},
            "pb:record-deployment": record("deployed-versions", "Record deployment to"),
            "pb:record-release": record("released-versions", "Record release to"),
        },
    })
}

async fn version_answer(s: &AppState, headers: &HeaderMap, p: &str, v: &VersionInfo) -> ApiResult {
    let envs = store::environments(&s.pool).await?;
    hal(StatusCode::OK, version_json(&base(headers), p, v, &envs))
}

pub(super) async fn version(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, v)): Path<(String, String)>,
) -> ApiResult {
    let info = store::version(&s.pool, &p, &v).await?;
    version_answer(&s, &headers, &p, &info).await
}

/// The body of `PUT /pacticipants/{p}/versions/{v}` (what `create-or-update-version` sends).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VersionBody {
    branch: Option<String>,
    build_url: Option<String>,
    #[serde(default)]
    tags: Vec<TagField>,
}

/// A tag as a name or as `{"name": …}`; the Pact Broker's clients send either.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TagField {
    Name(String),
    Object { name: String },
}

pub(super) async fn put_version(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, v)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let fields: VersionBody = if body.is_empty() {
        VersionBody::default()
    } else {
        parse_json(&body, "version")?
    };
    if let Some(url) = &fields.build_url {
        store::check_text("buildUrl", url)?;
    }
    let tags: Vec<String> = fields
        .tags
        .into_iter()
        .map(|t| match t {
            TagField::Name(name) | TagField::Object { name } => name,
        })
        .collect();
    store::put_version(&s.pool, &p, &v, fields.branch.as_deref(), &tags).await?;
    let info = store::version(&s.pool, &p, &v).await?;
    version_answer(&s, &headers, &p, &info).await
}

pub(super) async fn latest_version(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<String>,
) -> ApiResult {
    let info = store::latest_version(&s.pool, &p, &LatestOf::default()).await?;
    version_answer(&s, &headers, &p, &info).await
}

pub(super) async fn latest_tagged_version(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, tag)): Path<(String, String)>,
) -> ApiResult {
    let which = LatestOf {
        tag: Some(tag),
        ..LatestOf::default()
    };
    let info = store::latest_version(&s.pool, &p, &which).await?;
    version_answer(&s, &headers, &p, &info).await
}

/// A body the resource does not need is still read: it must be JSON (or empty), so a NUL or a
/// wrong type is refused as everywhere else.
fn ignored_body(body: &Bytes, what: &str) -> Result<(), ApiError> {
    if !body.is_empty() {
        parse_json::<Value>(body, what)?;
    }
    Ok(())
}

pub(super) async fn put_branch_version(
    State(s): State<AppState>,
    Path((p, branch, v)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    ignored_body(&body, "branch version")?;
    store::put_branch_version(&s.pool, &p, &branch, &v).await?;
    hal(
        StatusCode::OK,
        json!({"pacticipant": p, "branch": branch, "version": v, "_links": {}}),
    )
}

pub(super) async fn put_tag(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((p, v, tag)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    ignored_body(&body, "tag")?;
    store::put_tag(&s.pool, &p, &v, &tag).await?;
    let b = base(&headers);
    let href = version_href(&b, &p, &v);
    hal(
        StatusCode::OK,
        json!({
            "pacticipant": p,
            "version": v,
            "name": tag,
            "_links": {
                "self": {"href": format!("{href}/tags/{}", enc(&tag))},
                "pb:version": link(href, &v, "Version"),
                "pb:pacticipant": link(pacticipant_href(&b, &p), &p, "Pacticipant"),
            },
        }),
    )
}
