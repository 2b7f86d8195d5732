//! `kafka <name>`: an invariant on the records of one of the described Kafka topics, judged
//! after the run on everything the topic holds (read from its beginning, without a consumer
//! group, so nothing the services consume is disturbed):
//!
//! - `unique`: what identifies a record — its key, a header, or a field of its JSON value —
//!   appears at most once. Each identity seen twice or more is a counterexample naming its
//!   partitions and offsets; a record without one is a counterexample too.
//! - `expected`: every value of a query's first column appears as an identity (an event the
//!   system's own database says happened, and that never reached the topic, is lost).
//! - `ordered_by`: per message key, a number in the value only grows in offset order.
//!
//! Counterexamples name the history events of the requests whose key is the identity.
//!
//! ```toml
//! [[expectations.kafka]]
//! name = "each-transfer-published-once"
//! topic = "ledger-events"
//! unique = "header:event-id"
//! expected = { database = "ledger", query = "SELECT transfer_id FROM transfers" }
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline_chaos::scenario::{KafkaCheck, RecordId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use super::{truncate, BoxFuture, CheckContext, Checker, Counterexample, Verdict};
use crate::history::{History, Op};
use crate::system::HARNESS_CLIENT;
use crate::stack::Stack;

/// How long reading a topic to its end may take.
const READ_BOUND: Duration = Duration::from_secs(30);

/// One record, as the checker judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The value as JSON (a string when it is not JSON).
    pub value: Value,
}

impl Record {
    fn at(&self) -> String {
        format!("{}@{}", self.partition, self.offset)
    }

    /// The identity `id` reads from this record.
    fn identity(&self, id: &RecordId) -> Option<String> {
        match id {
            RecordId::Key => self.key.clone(),
            RecordId::Header(name) => self
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
            RecordId::Value(pointer) => scalar(self.value.pointer(pointer)?),
        }
    }
}

/// A string or number as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The checker of one `[[expectations.kafka]]`.
pub struct KafkaChecker(pub KafkaCheck);

impl Checker for KafkaChecker {
    fn name(&self) -> String {
        format!("kafka {}", self.0.name)
    }

    fn check<'a>(&'a self, run: &'a CheckContext<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let name = self.name();
            let records = match read_topic(run.stack, &self.0.topic).await {
                Ok(records) => records,
                Err(e) => return Verdict::cannot_judge(&name, e),
            };
            let expected = match &self.0.expected {
                None => None,
                Some((database, query)) => match expected_ids(run.stack, database, query).await
                {
                    Ok(ids) => Some(ids),
                    Err(e) => return Verdict::cannot_judge(&name, format!("expected: {e}")),
                },
            };
            judge(&self.0, &name, &records, expected.as_deref(), run.history)
        })
    }
}

/// Judges `records` of `check.topic` (pure: the reading is done).
pub fn judge(
    check: &KafkaCheck,
    name: &str,
    records: &[Record],
    expected: Option<&[String]>,
    history: &History,
) -> Verdict {
    let mut counterexamples = Vec::new();
    let mut parts = vec![format!("{} record(s) on {}", records.len(), check.topic)];
    if let Some(id) = &check.unique {
        let mut seen: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
        for record in records {
            match record.identity(id) {
                Some(identity) => seen.entry(identity).or_default().push(record),
                None => counterexamples.push(Counterexample::new(
                    format!("the record at {} has no {id}", record.at()),
                    vec![],
                    vec![],
                )),
            }
        }
        let repeated: Vec<_> = seen.iter().filter(|(_, r)| r.len() > 1).collect();
        parts.push(format!(
            "{} distinct {id}, {} seen more than once",
            seen.len(),
            repeated.len()
        ));
        for (identity, copies) in repeated {
            let at: Vec<String> = copies.iter().map(|r| r.at()).collect();
            counterexamples.push(Counterexample::new(
                format!(
                    "{id} {identity:?} is on {} {} times (partition@offset: {})",
                    check.topic,
                    copies.len(),
                    at.join(", ")
                ),
                vec![identity.clone()],
                events_with_key(history, identity),
            ));
        }
        if let Some(expected) = expected {
            let missing: Vec<&String> = expected
                .iter()
                .filter(|e| !seen.contains_key(e.as_str()))
                .collect();
            parts.push(format!(
                "{} of {} expected present",
                expected.len() - missing.len(),
                expected.len()
            ));
            for identity in missing {
                counterexamples.push(Counterexample::new(
                    format!(
                        "{id} {identity:?} is in the database but never reached {}",
                        check.topic
                    ),
                    vec![identity.clone()],
                    events_with_key(history, identity),
                ));
            }
        }
    }
    if let Some(pointer) = &check.ordered_by {
        let mut last: BTreeMap<(i32, &str), (f64, &Record)> = BTreeMap::new();
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by_key(|r| (r.partition, r.offset));
        let mut out_of_order = 0;
        for record in sorted {
            let (Some(key), Some(position)) = (
                record.key.as_deref(),
                record.value.pointer(pointer).and_then(Value::as_f64),
            ) else {
                continue;
            };
            if let Some((before, earlier)) = last.get(&(record.partition, key)) {
                if position <= *before {
                    out_of_order += 1;
                    counterexamples.push(Counterexample::new(
                        format!(
                            "key {key:?}: {pointer} = {position} at {} after {before} at {}",
                            record.at(),
                            earlier.at()
                        ),
                        vec![key.to_string()],
                        events_with_key(history, key),
                    ));
                }
            }
            last.insert((record.partition, key), (position, record));
        }
        parts.push(format!("{out_of_order} out of order by {pointer} per key"));
    }
    Verdict::new(name, parts.join("; "), truncate(counterexamples))
}

/// History events of requests whose key is `identity`.
fn events_with_key(history: &History, identity: &str) -> Vec<usize> {
    history
        .events()
        .iter()
        .filter(|e| matches!(&e.op, Op::Request { key, .. } if key == identity))
        .map(|e| e.index)
        .collect()
}

/// Every record of `topic`, from its beginning to its end as it is now.
pub async fn read_topic(stack: &Stack, topic: &str) -> Result<Vec<Record>, String> {
    let bootstrap = stack
        .infra()
        .kafka_bootstrap(HARNESS_CLIENT)
        .map_err(|e| e.to_string())?;
    let topic = topic.to_string();
    // The client blocks: read on a thread of its own.
    tokio::task::spawn_blocking(move || read_blocking(&bootstrap, &topic))
        .await
        .map_err(|e| format!("reading the topic: {e}"))?
}

fn read_blocking(bootstrap: &str, topic: &str) -> Result<Vec<Record>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "faultline-kafka-checker")
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .map_err(|e| format!("creating a Kafka consumer for {bootstrap}: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("reading the metadata of topic {topic}: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
            .map_err(|e| format!("reading the end of {topic}/{}: {e}", partition.id()))?;
        if low < high {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Offset(low))
                .map_err(|e| e.to_string())?;
            remaining.insert(partition.id(), high);
        }
    }
    let mut records = Vec::new();
    if remaining.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + READ_BOUND;
    while !remaining.is_empty() {
        if Instant::now() >= deadline {
            return Err(format!(
                "{topic} was not read to its end within {}s (partitions left: {:?})",
                READ_BOUND.as_secs(),
                remaining.keys().collect::<Vec<_>>()
            ));
        }
        let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        // Transient reports (a partition not yet in the client's metadata) are retried.
        let Ok(message) = polled else { continue };
        if let Some(&end) = remaining.get(&message.partition()) {
            if message.offset() + 1 >= end {
                remaining.remove(&message.partition());
            }
        }
        let payload = message.payload().unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            value: serde_json::from_slice(payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned())),
        });
    }
    Ok(records)
}

/// The first column of `query`'s rows on `database`, as text.
async fn expected_ids(stack: &Stack, database: &str, query: &str) -> Result<Vec<String>, String> {
    let url = stack.database_url(database).map_err(|e| e.to_string())?;
    let mut connection = PgConnection::connect(&url)
        .await
        .map_err(|e| format!("connecting to database {database}: {e}"))?;
    let inner = query.trim().trim_end_matches(';');
    // The first column, rendered by Postgres as text, whatever its type. The query is the
    // scenario author's, run on the system's own database by design.
    let text = format!(
        "SELECT to_json(faultline_row)->>(SELECT key FROM json_each(to_json(faultline_row)) LIMIT 1) \
         FROM ({inner}) AS faultline_row"
    );
    let ids: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(text))
        .fetch_all(&mut connection)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        })?;
    let _ = connection.close().await;
    Ok(ids.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::HistoryBuilder;
    use serde_json::json;

    fn record(partition: i32, offset: i64, key: &str, value: Value) -> Record {
        Record {
            partition,
            offset,
            key: Some(key.into()),
            headers: vec![("event-id".into(), format!("e-{key}-{offset}"))],
            value,
        }
    }

    fn check(unique: Option<RecordId>, ordered_by: Option<&str>) -> KafkaCheck {
        KafkaCheck {
            name: "t".into(),
            topic: "events".into(),
            unique,
            expected: None,
            ordered_by: ordered_by.map(str::to_string),
        }
    }

    #[test]
    fn a_repeated_identity_is_a_counterexample_naming_where_each_copy_is() {
        let records = [
            record(0, 0, "a", json!({"id": "t-1"})),
            record(0, 1, "b", json!({"id": "t-2"})),
            record(1, 7, "a", json!({"id": "t-1"})),
        ];
        let by_value = check(Some(RecordId::Value("/id".into())), None);
        let history = HistoryBuilder::default().build();
        let verdict = judge(&by_value, "kafka t", &records, None, &history);
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        assert!(verdict.counterexamples[0].description.contains("\"t-1\" is on events 2 times (partition@offset: 0@0, 1@7)"));

        let by_header = check(Some(RecordId::Header("event-id".into())), None);
        assert!(judge(&by_header, "kafka t", &records, None, &history).ok);
        let by_key = check(Some(RecordId::Key), None);
        assert!(!judge(&by_key, "kafka t", &records, None, &history).ok);
    }

    #[test]
    fn an_expected_identity_missing_from_the_topic_is_lost() {
        let records = [record(0, 0, "a", json!({"id": "t-1"}))];
        let check = check(Some(RecordId::Value("/id".into())), None);
        let history = HistoryBuilder::default().build();
        let expected = ["t-1".to_string(), "t-2".to_string()];
        let verdict = judge(&check, "kafka t", &records, Some(&expected), &history);
        assert!(!verdict.ok);
        assert!(verdict.counterexamples[0].description.contains("\"t-2\" is in the database but never reached events"));
        assert!(verdict.summary.contains("1 of 2 expected present"), "{}", verdict.summary);
    }

    #[test]
    fn a_record_without_the_identity_is_a_counterexample() {
        let records = [record(0, 0, "a", json!({"other": 1}))];
        let check = check(Some(RecordId::Value("/id".into())), None);
        let verdict = judge(&check, "kafka t", &records, None, &HistoryBuilder::default().build());
        assert!(!verdict.ok);
        assert!(verdict.counterexamples[0].description.contains("has no value:/id"));
    }

    #[test]
    fn per_key_order_is_judged_in_offset_order_within_a_partition() {
        let records = [
            record(0, 2, "a", json!({"seq": 1})),
            record(0, 0, "a", json!({"seq": 1})),
            record(0, 1, "b", json!({"seq": 5})),
            record(0, 3, "b", json!({"seq": 6})),
        ];
        let ordered = check(None, Some("/seq"));
        let verdict = judge(&ordered, "kafka t", &records, None, &HistoryBuilder::default().build());
        assert!(!verdict.ok);
        assert_eq!(verdict.counterexamples.len(), 1);
        assert!(verdict.counterexamples[0].description.contains("key \"a\": /seq = 1 at 0@2 after 1 at 0@0"));
        let in_order = [record(0, 0, "a", json!({"seq": 1})), record(0, 1, "a", json!({"seq": 2}))];
        assert!(judge(&ordered, "kafka t", &in_order, None, &HistoryBuilder::default().build()).ok);
    }
}
