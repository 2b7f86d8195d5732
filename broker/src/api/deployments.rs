//! Environments, and the versions deployed or released in them.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    bad_request, base, hal, link, pacticipant_href, parse_json, time, version_href, ApiError,
    ApiResult, AppState,
};
use crate::store::{self, Deployment, DeploymentKind, Environment};

fn environment_json(b: &str, e: &Environment) -> Value {
    let href = format!("{b}/environments/{}", e.uuid);
    json!({
        "uuid": e.uuid,
        "name": e.name,
        "displayName": e.display_name,
        "production": e.production,
        "createdAt": time(&e.created_at),
        "_links": {
            "self": {"href": href, "name": e.name, "title": "Environment"},
            "pb:currently-deployed-deployed-versions": {
                "href": format!("{href}/deployed-versions/currently-deployed"),
                "title": "Versions currently deployed to this environment",
            },
            "pb:currently-supported-released-versions": {
                "href": format!("{href}/released-versions/currently-supported"),
                "title": "Versions released and supported in this environment",
            },
        },
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

pub(super) async fn create_environment(
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

pub(super) async fn list_environments(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
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

pub(super) async fn get_environment(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
) -> ApiResult {
    let env = store::environment(&s.pool, &e).await?;
    hal(StatusCode::OK, environment_json(&base(&headers), &env))
}

/// A deployed or released version as the Pact Broker shows it: `currentlyDeployed` and
/// `undeployedAt` for a deployment, `currentlySupported` and `supportEndedAt` for a release.
fn deployment_json(b: &str, d: &Deployment, kind: DeploymentKind) -> Value {
    let (collection, current, ended) = match kind {
        DeploymentKind::Deployment => ("deployed-versions", "currentlyDeployed", "undeployedAt"),
        DeploymentKind::Release => ("released-versions", "currentlySupported", "supportEndedAt"),
    };
    let version_at = version_href(b, &d.pacticipant, &d.version);
    let mut doc = json!({
        "uuid": d.uuid,
        "applicationInstance": null,
        "createdAt": time(&d.created_at),
        "_embedded": {
            "pacticipant": {"name": d.pacticipant, "_links": {"self": {"href": pacticipant_href(b, &d.pacticipant)}}},
            "version": {"number": d.version, "_links": {"self": {"href": version_at.clone()}}},
        },
        "_links": {
            "self": {"href": format!("{b}/{collection}/{}", d.uuid)},
            "pb:version": link(version_at, &d.version, "Version"),
            "pb:environment": {"href": format!("{b}/environments/{}", d.environment)},
        },
    });
    doc[current] = json!(d.currently);
    doc[ended] = json!(d.ended_at.as_ref().map(time));
    doc
}

async fn record(
    s: AppState,
    headers: HeaderMap,
    (p, v, e): (String, String, String),
    body: Bytes,
    kind: DeploymentKind,
) -> ApiResult {
    // The Pact Broker's clients send `{"applicationInstance", "target"}`; faultline keeps one
    // deployment per pacticipant and environment, so an application instance is refused
    // rather than silently merged with the others.
    if !body.is_empty() {
        let fields: Value = parse_json(&body, "deployment")?;
        if fields
            .get("applicationInstance")
            .is_some_and(|a| !a.is_null())
        {
            return Err(bad_request(
                "deployment: applicationInstance is not supported; faultline keeps one deployed version per pacticipant and environment",
            ));
        }
    }
    let deployment = store::record_deployment(&s.pool, &p, &v, &e, kind).await?;
    hal(
        StatusCode::CREATED,
        deployment_json(&base(&headers), &deployment, kind),
    )
}

pub(super) async fn record_deployment(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    record(s, headers, path, body, DeploymentKind::Deployment).await
}

pub(super) async fn record_release(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    record(s, headers, path, body, DeploymentKind::Release).await
}

#[derive(Deserialize)]
pub(super) struct PacticipantQuery {
    pacticipant: Option<String>,
}

async fn current(
    s: AppState,
    headers: HeaderMap,
    e: String,
    query: PacticipantQuery,
    kind: DeploymentKind,
) -> ApiResult {
    let env = store::environment(&s.pool, &e).await?;
    let b = base(&headers);
    let list: Vec<Value> =
        store::current_deployments(&s.pool, env.uuid, kind, query.pacticipant.as_deref())
            .await?
            .iter()
            .map(|d| deployment_json(&b, d, kind))
            .collect();
    let (key, path) = match kind {
        DeploymentKind::Deployment => ("deployedVersions", "deployed-versions/currently-deployed"),
        DeploymentKind::Release => ("releasedVersions", "released-versions/currently-supported"),
    };
    hal(
        StatusCode::OK,
        json!({
            "_embedded": {key: list},
            "_links": {"self": {"href": format!("{b}/environments/{}/{path}", env.uuid)}},
        }),
    )
}

pub(super) async fn currently_deployed(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
    Query(query): Query<PacticipantQuery>,
) -> ApiResult {
    current(s, headers, e, query, DeploymentKind::Deployment).await
}

pub(super) async fn currently_supported(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(e): Path<String>,
    Query(query): Query<PacticipantQuery>,
) -> ApiResult {
    current(s, headers, e, query, DeploymentKind::Release).await
}

fn deployment_uuid(text: &str, kind: DeploymentKind) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "no {} version {text:?}",
                if kind == DeploymentKind::Deployment {
                    "deployed"
                } else {
                    "released"
                }
            ),
        )
    })
}

async fn get_one(s: AppState, headers: HeaderMap, id: String, kind: DeploymentKind) -> ApiResult {
    let d = store::deployment(&s.pool, deployment_uuid(&id, kind)?, kind).await?;
    hal(StatusCode::OK, deployment_json(&base(&headers), &d, kind))
}

pub(super) async fn get_deployed(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    get_one(s, headers, id, DeploymentKind::Deployment).await
}

pub(super) async fn get_released(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    get_one(s, headers, id, DeploymentKind::Release).await
}

/// `PATCH` with `{"currentlyDeployed": false}` (a release: `{"currentlySupported": false}`)
/// ends it: what `record-undeployment` and `record-support-ended` send.
async fn patch_one(
    s: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    kind: DeploymentKind,
) -> ApiResult {
    let uuid = deployment_uuid(&id, kind)?;
    let field = match kind {
        DeploymentKind::Deployment => "currentlyDeployed",
        DeploymentKind::Release => "currentlySupported",
    };
    let fields: serde_json::Map<String, Value> = parse_json(&body, "patch")?;
    for key in fields.keys() {
        if key != field {
            return Err(bad_request(format!(
                "patch: {key} cannot be changed; only {field}: false"
            )));
        }
    }
    let d = match fields.get(field) {
        Some(Value::Bool(false)) => store::end_deployment(&s.pool, uuid, kind).await?,
        Some(Value::Bool(true)) => {
            let d = store::deployment(&s.pool, uuid, kind).await?;
            if !d.currently {
                return Err(bad_request(format!(
                    "patch: {field} cannot be set back to true; record a new one instead"
                )));
            }
            d
        }
        None => store::deployment(&s.pool, uuid, kind).await?,
        Some(other) => {
            return Err(bad_request(format!(
                "patch: {field} must be false, not {other}"
            )))
        }
    };
    hal(StatusCode::OK, deployment_json(&base(&headers), &d, kind))
}

pub(super) async fn patch_deployed(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    patch_one(s, headers, id, body, DeploymentKind::Deployment).await
}

pub(super) async fn patch_released(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    patch_one(s, headers, id, body, DeploymentKind::Release).await
}
