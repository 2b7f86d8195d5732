//! The databases and topics a description declares: created before the services start,
//! emptied or dropped and created again by a reset, and the consumer groups rewound.

use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::infra::Infra;
use crate::system::System;
use super::StackError;

/// Tables that record which migrations ran (sqlx, Flyway, Liquibase, golang-migrate, Rails,
/// goose, Diesel, Alembic): kept by a warm reset, so a service does not migrate again.
pub(super) const MIGRATION_TABLES: [&str; 9] = [
    "_sqlx_migrations",
    "flyway_schema_history",
    "databasechangelog",
    "databasechangeloglock",
    "schema_migrations",
    "goose_db_version",
    "__diesel_schema_migrations",
    "alembic_version",
    "ar_internal_metadata",
];

/// Empties every table of every described database but the migration-history ones, in one
/// `TRUNCATE … RESTART IDENTITY CASCADE` per database (bounded by a lock timeout: a
/// transaction left open by a service fails the reset instead of hanging it).
pub(super) async fn truncate_databases(system: &System, infra: &Infra) -> Result<(), StackError> {
    let Some(postgres) = &system.postgres else {
        return Ok(());
    };
    let keep = MIGRATION_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let statement = format!(
        "DO $$ DECLARE tables text; BEGIN \
         SET LOCAL lock_timeout = '5s'; \
         SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO tables FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename NOT IN ({keep}); \
         IF tables IS NOT NULL THEN EXECUTE 'TRUNCATE ' || tables || ' RESTART IDENTITY CASCADE'; END IF; \
         END $$"
    );
    let work = postgres.databases.iter().map(|database| {
        let statement = statement.clone();
        async move {
            let io = |e: sqlx::Error| StackError::Io {
                action: format!("emptying the tables of database {database}"),
                message: e.to_string(),
            };
            let url = infra.postgres_admin_url_for(database)?;
            let mut connection = sqlx::postgres::PgConnection::connect(&url).await.map_err(io)?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut connection)
                .await
                .map_err(io)?;
            let _ = connection.close().await;
            Ok::<(), StackError>(())
        }
    });
    for result in futures_util::future::join_all(work).await {
        result?;
    }
    Ok(())
}

pub(super) async fn drop_databases(system: &System, infra: &Infra) -> Result<(), StackError> {
    each_database(system, infra, "dropping", |database| {
        format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")
    })
    .await
}

pub(super) async fn create_databases(system: &System, infra: &Infra) -> Result<(), StackError> {
    each_database(system, infra, "creating", |database| format!("CREATE DATABASE \"{database}\""))
        .await
}

/// Runs `statement` for each database the description declares, on one admin connection;
/// `doing` names the work in errors ("creating database orders: …").
async fn each_database(
    system: &System,
    infra: &Infra,
    doing: &str,
    statement: impl Fn(&str) -> String,
) -> Result<(), StackError> {
    let Some(postgres) = &system.postgres else {
        return Ok(());
    };
    let url = infra.postgres_admin_url()?;
    let mut admin = sqlx::postgres::PgConnection::connect(&url)
        .await
        .map_err(|e| StackError::Io {
            action: format!("connecting to Postgres ({doing} databases)"),
            message: e.to_string(),
        })?;
    for database in &postgres.databases {
        // The names were validated when the description was read (a-z, 0-9, `_`, `-`).
        sqlx::query(sqlx::AssertSqlSafe(statement(database)))
            .execute(&mut admin)
            .await
            .map_err(|e| StackError::Io {
                action: format!("{doing} database {database}"),
                message: e.to_string(),
            })?;
    }
    let _ = admin.close().await;
    Ok(())
}

/// [`Stack::rewind_group`], on a blocking thread: the group's committed offsets read, moved
/// and committed again through the group coordinator (an empty group accepts a commit from a
/// client that is no member of it).
pub(super) fn rewind(bootstrap: &str, group: &str, topic: &str, events: u32) -> Result<Vec<(i32, i64, i64)>, String> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let timeout = Duration::from_secs(15);
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions"));
    }
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer
        .committed_offsets(wanted, timeout)
        .map_err(|e| e.to_string())?;
    let mut moves = Vec::new();
    let mut to_commit = TopicPartitionList::new();
    for element in committed.elements() {
        let Offset::Offset(from) = element.offset() else {
            continue;
        };
        let (low, _) = consumer
            .fetch_watermarks(topic, element.partition(), timeout)
            .map_err(|e| e.to_string())?;
        let to = (from - i64::from(events)).max(low);
        if to < from {
            to_commit
                .add_partition_offset(topic, element.partition(), Offset::Offset(to))
                .map_err(|e| e.to_string())?;
            moves.push((element.partition(), from, to));
        }
    }
    if !moves.is_empty() {
        consumer
            .commit(&to_commit, CommitMode::Sync)
            .map_err(|e| format!("{e} (does the group still have members? stop them first)"))?;
    }
    Ok(moves)
}

/// Makes `topics` as good as new without recreating them: every record deleted (each
/// partition's start moved to its end, so a reader from the start reads nothing old) and,
/// with `delete_groups`, every consumer group with offsets on them deleted (so a consumer
/// starting again begins where the topic now starts; the services must be stopped, as a
/// group with members cannot be deleted). A running consumer goes on from where it was,
/// or from the new start if that was before it.
pub(super) async fn empty_topics(infra: &Infra, topics: &[String], delete_groups: bool) -> Result<(), String> {
    use rdkafka::admin::AdminOptions;
    use rdkafka::{Offset, TopicPartitionList};
    if topics.is_empty() {
        return Ok(());
    }
    let bootstrap = infra
        .kafka_bootstrap(crate::infra::HARNESS_CLIENT)
        .map_err(|e| e.to_string())?;
    let admin = kafka_admin(infra, "connecting to Kafka to empty topics").map_err(|e| e.to_string())?;
    // Partitions and groups are read on a blocking thread: librdkafka's calls wait.
    let (partitions, groups) = {
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || -> Result<_, String> {
            let partitions = partitions_of(&bootstrap, &topics)?;
            for name in &topics {
                if !partitions.iter().any(|(topic, _)| topic == name) {
                    return Err(format!("topic {name} is not there"));
                }
            }
            let groups = if delete_groups {
                groups_consuming(&bootstrap, &partitions)?
            } else {
                Vec::new()
            };
            Ok((partitions, groups))
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let mut everything = TopicPartitionList::new();
    for (topic, partition) in &partitions {
        everything
            .add_partition_offset(topic, *partition, Offset::End)
            .map_err(|e| e.to_string())?;
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let deleted = admin
        .delete_records(&everything, &options)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(failed) = deleted.elements().iter().find(|e| e.error().is_err()) {
        return Err(format!(
            "deleting the records of {}/{}: {:?}",
            failed.topic(),
            failed.partition(),
            failed.error()
        ));
    }
    let group_names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
    if !group_names.is_empty() {
        for result in admin
            .delete_groups(&group_names, &options)
            .await
            .map_err(|e| e.to_string())?
        {
            if let Err((group, code)) = result {
                return Err(format!("deleting consumer group {group}: {code}"));
            }
        }
    }
    Ok(())
}

/// Every `(topic, partition)` of those of `topics` that exist, topic by topic; blocking.
pub(super) fn partitions_of(bootstrap: &str, topics: &[String]) -> Result<Vec<(String, i32)>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(15))
        .map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    for name in topics {
        for topic in metadata.topics().iter().filter(|t| t.name() == name) {
            partitions.extend(topic.partitions().iter().map(|p| (name.clone(), p.id())));
        }
    }
    Ok(partitions)
}

/// The consumer groups with committed offsets on any of `partitions` (as
/// [`partitions_of`] reads them), each with those topics; blocking.
pub(super) fn groups_consuming(
    bootstrap: &str,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, Vec<String>)>, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let timeout = Duration::from_secs(15);
    let config = |group: &str| {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("log_level", "3")
            .create::<BaseConsumer>()
            .map_err(|e| e.to_string())
    };
    let mut wanted = TopicPartitionList::new();
    for (topic, partition) in partitions {
        wanted.add_partition(topic, *partition);
    }
    let lister = config("faultline-harness-lister")?;
    let groups = lister.fetch_group_list(None, timeout).map_err(|e| e.to_string())?;
    let mut consuming = Vec::new();
    for group in groups.groups() {
        let consumer = config(group.name())?;
        let committed = consumer
            .committed_offsets(wanted.clone(), timeout)
            .map_err(|e| e.to_string())?;
        let mut on: Vec<String> = committed
            .elements()
            .iter()
            .filter(|e| matches!(e.offset(), Offset::Offset(_)))
            .map(|e| e.topic().to_string())
            .collect();
        on.dedup();
        if !on.is_empty() {
            consuming.push((group.name().to_string(), on));
        }
    }
    consuming.sort();
    Ok(consuming)
}

pub(super) fn kafka_admin(
    infra: &Infra,
    action: &str,
) -> Result<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>, StackError> {
    let bootstrap = infra.kafka_bootstrap(crate::infra::HARNESS_CLIENT)?;
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|e: rdkafka::error::KafkaError| StackError::Io {
            action: action.to_string(),
            message: e.to_string(),
        })
}

/// Creates the described topics (a topic that exists already is fine).
pub(super) async fn create_topics(system: &System, infra: &Infra) -> Result<(), StackError> {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    use rdkafka::types::RDKafkaErrorCode;
    let Some(kafka) = &system.kafka else {
        return Ok(());
    };
    if kafka.topics.is_empty() {
        return Ok(());
    }
    let admin = kafka_admin(infra, "connecting to Kafka to create topics")?;
    let new_topics: Vec<NewTopic<'_>> = kafka
        .topics
        .iter()
        .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| StackError::Io {
            action: "creating Kafka topics".into(),
            message: e.to_string(),
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(StackError::Io {
                    action: format!("creating Kafka topic {topic}"),
                    message: code.to_string(),
                })
            }
        }
    }
    // Closing an rdkafka client blocks while it talks to the broker.
    let _ = tokio::task::spawn_blocking(move || drop(admin)).await;
    Ok(())
}

/// Deletes `topics` and waits (bounded) until the broker no longer lists them, so they can
/// be created afresh.
pub(super) async fn delete_topics(infra: &Infra, topics: &[String]) -> Result<(), StackError> {
    use rdkafka::admin::AdminOptions;
    if topics.is_empty() {
        return Ok(());
    }
    let admin = kafka_admin(infra, "connecting to Kafka to delete topics")?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    // Unknown topics are fine: a run may not have created them.
    let _ = admin
        .delete_topics(&names, &AdminOptions::new())
        .await
        .map_err(|e| StackError::Io {
            action: "deleting topics".into(),
            message: e.to_string(),
        })?;
    let topics = topics.to_vec();
    let gone = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(5)) {
                if !metadata
                    .topics()
                    .iter()
                    .any(|t| topics.iter().any(|name| name == t.name()))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    })
    .await
    .unwrap_or(false);
    if gone {
        Ok(())
    } else {
        Err(StackError::Io {
            action: "deleting Kafka topics".into(),
            message: "still listed after 30 s".into(),
        })
    }
}
