//! Environments, and the versions deployed (one per pacticipant and environment) or released
//! (several side by side) in them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::pacticipants::find_version;
use super::{check_name, check_text, Result, StoreError};

/// An environment.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Environment {
    pub uuid: Uuid,
    pub name: String,
    pub display_name: Option<String>,
    pub production: bool,
    pub created_at: DateTime<Utc>,
}

macro_rules! environment_columns {
    () => {
        "uuid, name, display_name, production, created_at"
    };
}

pub async fn create_environment(
    pool: &PgPool,
    name: &str,
    display_name: Option<&str>,
    production: bool,
) -> Result<Environment> {
    check_name("environment", name)?;
    if let Some(display) = display_name {
        check_text("displayName", display)?;
    }
    let created: Option<Environment> = sqlx::query_as(concat!(
        "INSERT INTO environments (uuid, name, display_name, production) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING RETURNING ",
        environment_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(display_name)
    .bind(production)
    .fetch_optional(pool)
    .await?;
    created.ok_or_else(|| StoreError::Conflict(format!("environment {name} already exists")))
}

pub async fn environments(pool: &PgPool) -> Result<Vec<Environment>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        environment_columns!(),
        " FROM environments ORDER BY name"
    ))
    .fetch_all(pool)
    .await?)
}

/// The environment whose uuid or name is `key`.
pub async fn environment(pool: &PgPool, key: &str) -> Result<Environment> {
    let uuid = Uuid::parse_str(key).ok();
    let found: Option<Environment> = sqlx::query_as(concat!(
        "SELECT ",
        environment_columns!(),
        " FROM environments WHERE uuid = $1 OR name = $2"
    ))
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

impl DeploymentKind {
    fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Deployment => "deployment",
            DeploymentKind::Release => "release",
        }
    }
}

/// A deployed version (kind deployment) or a released version (kind release) of a
/// pacticipant in an environment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Deployment {
    pub uuid: Uuid,
    pub pacticipant: String,
    pub version: String,
    pub environment: Uuid,
    /// Deployed (deployment) or supported (release) now.
    pub currently: bool,
    pub created_at: DateTime<Utc>,
    /// When it was undeployed, or its support ended.
    pub ended_at: Option<DateTime<Utc>>,
}

macro_rules! deployment_select {
    () => {
        "SELECT d.uuid, p.name AS pacticipant, v.number AS version,
            d.environment_uuid AS environment, d.currently, d.created_at, d.ended_at
         FROM deployments d JOIN versions v ON v.id = d.version_id
         JOIN pacticipants p ON p.id = v.pacticipant_id"
    };
}

/// Records that `pacticipant` `version` is deployed (replacing the version deployed there
/// before) or released (beside the others) in `environment`.
pub async fn record_deployment(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    environment: &str,
    kind: DeploymentKind,
) -> Result<Deployment> {
    let env = self::environment(pool, environment).await?;
    let vid = find_version(pool, pacticipant, version).await?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "{pacticipant} has no version {version} in the broker: publish its pacts or verification results first"
        ))
    })?;
    let kind = kind.as_str();
    let mut tx = pool.begin().await?;
    // Serialises deployments to one environment, so two at once never both stay current.
    sqlx::query("SELECT uuid FROM environments WHERE uuid = $1 FOR UPDATE")
        .bind(env.uuid)
        .execute(&mut *tx)
        .await?;
    if kind == "deployment" {
        sqlx::query(
            "UPDATE deployments SET currently = false, ended_at = now()
             WHERE environment_uuid = $1 AND kind = 'deployment' AND currently AND version_id <> $2
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
    deployment(
        pool,
        uuid,
        if kind == "deployment" {
            DeploymentKind::Deployment
        } else {
            DeploymentKind::Release
        },
    )
    .await
}

/// Deployed (or released) version `uuid`.
pub async fn deployment(pool: &PgPool, uuid: Uuid, kind: DeploymentKind) -> Result<Deployment> {
    sqlx::query_as(concat!(
        deployment_select!(),
        " WHERE d.uuid = $1 AND d.kind = $2"
    ))
    .bind(uuid)
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
        StoreError::NotFound(format!(
            "no {} version {uuid}",
            if kind == DeploymentKind::Deployment {
                "deployed"
            } else {
                "released"
            }
        ))
    })
}

/// The versions currently deployed (or supported releases) in environment `env`, of
/// `pacticipant` when given.
pub async fn current_deployments(
    pool: &PgPool,
    env: Uuid,
    kind: DeploymentKind,
    pacticipant: Option<&str>,
) -> Result<Vec<Deployment>> {
    Ok(sqlx::query_as(concat!(
        deployment_select!(),
        " WHERE d.environment_uuid = $1 AND d.kind = $2 AND d.currently
           AND ($3::text IS NULL OR p.name = $3) ORDER BY d.created_at, d.uuid"
    ))
    .bind(env)
    .bind(kind.as_str())
    .bind(pacticipant)
    .fetch_all(pool)
    .await?)
}

/// Ends deployment (undeploys) or release (support ended) `uuid`; ending it again changes
/// nothing. An ended one cannot be made current again: record a new deployment instead.
pub async fn end_deployment(pool: &PgPool, uuid: Uuid, kind: DeploymentKind) -> Result<Deployment> {
    deployment(pool, uuid, kind).await?;
    sqlx::query(
        "UPDATE deployments SET currently = false, ended_at = now() WHERE uuid = $1 AND currently",
    )
    .bind(uuid)
    .execute(pool)
    .await?;
    deployment(pool, uuid, kind).await
}
