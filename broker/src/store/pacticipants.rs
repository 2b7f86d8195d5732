//! Pacticipants and their versions, with the branches and tags of each version; the helpers
//! that create them inside a transaction are shared with the other parts of the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPool;
use sqlx::PgConnection;

use super::{check_name, check_text, Result, StoreError};

pub(super) async fn pacticipant_id(tx: &mut PgConnection, name: &str) -> Result<i64> {
    check_name("pacticipant", name)?;
    Ok(sqlx::query_scalar(
        "INSERT INTO pacticipants (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?)
}

pub(super) async fn version_id(
    tx: &mut PgConnection,
    pacticipant: &str,
    number: &str,
) -> Result<i64> {
    check_name("version", number)?;
    let pid = pacticipant_id(tx, pacticipant).await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO versions (pacticipant_id, number) VALUES ($1, $2)
         ON CONFLICT (pacticipant_id, number) DO UPDATE SET number = EXCLUDED.number RETURNING id",
    )
    .bind(pid)
    .bind(number)
    .fetch_one(&mut *tx)
    .await?)
}

pub(super) async fn find_version(
    pool: &PgPool,
    pacticipant: &str,
    number: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT v.id FROM versions v JOIN pacticipants p ON p.id = v.pacticipant_id
         WHERE p.name = $1 AND v.number = $2",
    )
    .bind(pacticipant)
    .bind(number)
    .fetch_optional(pool)
    .await?)
}

pub(super) async fn add_branch(tx: &mut PgConnection, version: i64, branch: &str) -> Result<()> {
    check_name("branch", branch)?;
    sqlx::query(
        "INSERT INTO version_branches (version_id, branch) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(version)
    .bind(branch)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn add_tag(tx: &mut PgConnection, version: i64, tag: &str) -> Result<()> {
    check_name("tag", tag)?;
    sqlx::query(
        "INSERT INTO version_tags (version_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(version)
    .bind(tag)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What a pacticipant's `PUT`, `PATCH` or `POST` may set; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacticipantFields {
    pub name: Option<String>,
    pub main_branch: Option<String>,
    pub display_name: Option<String>,
    pub repository_url: Option<String>,
}

/// Creates the pacticipant and sets the fields given.
pub async fn upsert_pacticipant(
    pool: &PgPool,
    name: &str,
    fields: &PacticipantFields,
) -> Result<()> {
    if let Some(branch) = &fields.main_branch {
        check_name("mainBranch", branch)?;
    }
    if let Some(display) = &fields.display_name {
        check_text("displayName", display)?;
    }
    if let Some(url) = &fields.repository_url {
        check_text("repositoryUrl", url)?;
    }
    let mut tx = pool.begin().await?;
    let id = pacticipant_id(&mut tx, name).await?;
    sqlx::query(
        "UPDATE pacticipants SET main_branch = COALESCE($2, main_branch),
           display_name = COALESCE($3, display_name), repository_url = COALESCE($4, repository_url)
         WHERE id = $1",
    )
    .bind(id)
    .bind(&fields.main_branch)
    .bind(&fields.display_name)
    .bind(&fields.repository_url)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A pacticipant as the broker keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PacticipantInfo {
    pub name: String,
    pub main_branch: Option<String>,
    pub display_name: Option<String>,
    pub repository_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

// Column lists as macros: sqlx takes only literal SQL, which `concat!` of literals is.
macro_rules! pacticipant_columns {
    () => {
        "name, main_branch, display_name, repository_url, created_at"
    };
}

/// The pacticipant `name`, if the broker knows it.
pub async fn pacticipant(pool: &PgPool, name: &str) -> Result<Option<PacticipantInfo>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        pacticipant_columns!(),
        " FROM pacticipants WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?)
}

/// Every pacticipant, by name.
pub async fn pacticipants(pool: &PgPool) -> Result<Vec<PacticipantInfo>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        pacticipant_columns!(),
        " FROM pacticipants ORDER BY name"
    ))
    .fetch_all(pool)
    .await?)
}

/// Creates `version` of `pacticipant` (and the pacticipant), on `branch` and with `tags` when
/// given; a version that exists keeps what it had and gains them.
pub async fn put_version(
    pool: &PgPool,
    pacticipant: &str,
    version: &str,
    branch: Option<&str>,
    tags: &[String],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, pacticipant, version).await?;
    if let Some(branch) = branch {
        add_branch(&mut tx, vid, branch).await?;
    }
    for tag in tags {
        add_tag(&mut tx, vid, tag).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Puts `version` of `pacticipant` on `branch` (creating both).
pub async fn put_branch_version(
    pool: &PgPool,
    pacticipant: &str,
    branch: &str,
    version: &str,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, pacticipant, version).await?;
    add_branch(&mut tx, vid, branch).await?;
    tx.commit().await?;
    Ok(())
}

/// Tags `version` of `pacticipant` (creating both).
pub async fn put_tag(pool: &PgPool, pacticipant: &str, version: &str, tag: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let vid = version_id(&mut tx, pacticipant, version).await?;
    add_tag(&mut tx, vid, tag).await?;
    tx.commit().await?;
    Ok(())
}

/// A version with its branches and tags.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub number: String,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
}

async fn version_by_id(pool: &PgPool, id: i64) -> Result<VersionInfo> {
    let (number, created_at): (String, DateTime<Utc>) =
        sqlx::query_as("SELECT number, created_at FROM versions WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    let branches = sqlx::query_scalar(
        "SELECT branch FROM version_branches WHERE version_id = $1 ORDER BY branch",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let tags =
        sqlx::query_scalar("SELECT tag FROM version_tags WHERE version_id = $1 ORDER BY tag")
            .bind(id)
            .fetch_all(pool)
            .await?;
    Ok(VersionInfo {
        number,
        branches,
        tags,
        created_at,
    })
}

pub async fn version(pool: &PgPool, pacticipant: &str, number: &str) -> Result<VersionInfo> {
    let id = find_version(pool, pacticipant, number)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("{pacticipant} has no version {number}")))?;
    version_by_id(pool, id).await
}

/// Which of a pacticipant's versions is meant, when no number is given: the latest one, or the
/// latest with a tag, on a branch, or on its main branch.
#[derive(Debug, Clone, Default)]
pub struct LatestOf {
    pub tag: Option<String>,
    pub branch: Option<String>,
    pub main_branch: bool,
}

/// The latest version of `pacticipant` (the last one the broker learnt of) that `which` picks.
pub async fn latest_version(
    pool: &PgPool,
    pacticipant: &str,
    which: &LatestOf,
) -> Result<VersionInfo> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT v.id FROM versions v JOIN pacticipants p ON p.id = v.pacticipant_id
         WHERE p.name = $1
           AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM version_tags t WHERE t.version_id = v.id AND t.tag = $2))
           AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM version_branches b WHERE b.version_id = v.id AND b.branch = $3))
           AND (NOT $4 OR EXISTS (SELECT 1 FROM version_branches b WHERE b.version_id = v.id AND b.branch = p.main_branch))
         ORDER BY v.id DESC LIMIT 1",
    )
    .bind(pacticipant)
    .bind(&which.tag)
    .bind(&which.branch)
    .bind(which.main_branch)
    .fetch_optional(pool)
    .await?;
    let id = id.ok_or_else(|| {
        let mut what = String::new();
        if let Some(tag) = &which.tag {
            what.push_str(&format!(" tagged {tag}"));
        }
        if let Some(branch) = &which.branch {
            what.push_str(&format!(" on branch {branch}"));
        }
        if which.main_branch {
            what.push_str(" on its main branch");
        }
        StoreError::NotFound(format!("{pacticipant} has no version{what}"))
    })?;
    version_by_id(pool, id).await
}
