//! Broker-request faults (`kind = "kafka"`): on a service's link to Kafka, faultline's broker
//! proxy reads the conversation (Kafka's request and response frames) and picks the requests
//! of one kind — a produce to a topic, a fetch of a topic, a consumer group's offset commit —
//! every one, the n-th, or a seeded fraction, and answers them with a broker error, lets them
//! through and loses the broker's answer, delays or holds them, or kills the service that sent
//! them at that point.
//!
//! ```toml
//! [[faults]]
//! start = "1s"
//! duration = "5s"
//! target = "order->kafka"
//! kind = "kafka"
//! request = "produce"       # or "fetch", or "offset_commit"
//! topic = "order.events"    # only requests naming this topic; any when left out
//! action = "drop_answer"    # or "error" (with error = "NOT_LEADER_OR_FOLLOWER"), "delay"
//!                           # (with delay = "2s"), "hold", "kill" or "pause"
//! nth = 1                   # only the first matching request; or fraction = 0.5; else every one
//! ```
//!
//! `group = "notification"` picks the offset commits of one consumer group. A kill (or pause)
//! is a program point, as with HTTP requests: the service that sent the request is stopped
//! right when it sends it (`when = "sent"`, the default: the request never reaches the broker
//! — a consumer that handled its records and dies before committing) or right after the broker
//! answered it (`when = "answered"`: the produce was appended, the producer never heard);
//! it comes back when the fault heals.
//!
//! `error` answers every partition of the request with a broker error code by its name in
//! Kafka's protocol (default `NOT_LEADER_OR_FOLLOWER` for a produce, `REBALANCE_IN_PROGRESS`
//! for an offset commit); the request is not forwarded. A fetch can be delayed, held, or stop
//! its consumer; its answer lost or an error in its place are not offered (the consumer
//! fetches the same records again either way).

use std::time::Duration;

use super::fields::Fields;
use super::intercept::{When, Which};
use super::ScenarioError;

/// The requests of a client to its broker that faults can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KafkaRequest {
    /// Records appended to a topic's partitions (API key 0).
    Produce,
    /// Records read from a topic's partitions (API key 1).
    Fetch,
    /// A consumer group's read positions stored (API key 8).
    OffsetCommit,
}

impl KafkaRequest {
    /// The name a scenario spells it with, and the history names a hit request by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Fetch => "fetch",
            Self::OffsetCommit => "offset_commit",
        }
    }

    /// The request's API key in Kafka's protocol.
    pub fn api_key(self) -> i16 {
        match self {
            Self::Produce => 0,
            Self::Fetch => 1,
            Self::OffsetCommit => 8,
        }
    }

    /// The request of API key `key`, when faults can pick it.
    pub fn from_api_key(key: i16) -> Option<Self> {
        match key {
            0 => Some(Self::Produce),
            1 => Some(Self::Fetch),
            8 => Some(Self::OffsetCommit),
            _ => None,
        }
    }

    /// The error an `error` action answers when the scenario names none.
    pub fn default_error(self) -> Option<KafkaError> {
        match self {
            Self::Produce => KafkaError::named("NOT_LEADER_OR_FOLLOWER"),
            Self::OffsetCommit => KafkaError::named("REBALANCE_IN_PROGRESS"),
            Self::Fetch => None,
        }
    }
}

/// A broker error code, by its name in Kafka's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaError {
    /// Its name in Kafka's protocol (`NOT_LEADER_OR_FOLLOWER`).
    pub name: &'static str,
    /// Its code on the wire.
    pub code: i16,
}

/// The error codes a fault can answer with: the ones a broker answers produces and offset
/// commits with when a partition moves, a replica lags, the coordinator is busy or a request
/// times out — the errors clients are meant to survive — and the fatal ones they are not.
pub const KAFKA_ERRORS: &[(&str, i16)] = &[
    ("UNKNOWN_SERVER_ERROR", -1),
    ("CORRUPT_MESSAGE", 2),
    ("UNKNOWN_TOPIC_OR_PARTITION", 3),
    ("LEADER_NOT_AVAILABLE", 5),
    ("NOT_LEADER_OR_FOLLOWER", 6),
    ("REQUEST_TIMED_OUT", 7),
    ("MESSAGE_TOO_LARGE", 10),
    ("OFFSET_METADATA_TOO_LARGE", 12),
    ("NETWORK_EXCEPTION", 13),
    ("COORDINATOR_LOAD_IN_PROGRESS", 14),
    ("COORDINATOR_NOT_AVAILABLE", 15),
    ("NOT_COORDINATOR", 16),
    ("NOT_ENOUGH_REPLICAS", 19),
    ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", 20),
    ("ILLEGAL_GENERATION", 22),
    ("UNKNOWN_MEMBER_ID", 25),
    ("REBALANCE_IN_PROGRESS", 27),
    ("TOPIC_AUTHORIZATION_FAILED", 29),
    ("GROUP_AUTHORIZATION_FAILED", 30),
    ("KAFKA_STORAGE_ERROR", 56),
    ("FENCED_INSTANCE_ID", 82),
    ("THROTTLING_QUOTA_EXCEEDED", 89),
];

impl KafkaError {
    /// The error named `name` (in any case), when it is one of [`KAFKA_ERRORS`].
    pub fn named(name: &str) -> Option<Self> {
        KAFKA_ERRORS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|&(name, code)| Self { name, code })
    }
}

/// What a broker-request fault does to the requests it hits.
#[derive(Debug, Clone, PartialEq)]
pub enum KafkaAction {
    /// Answered with this error on every partition it names, without being forwarded.
    Error(KafkaError),
    /// Forwarded, and once the broker answered, the service's connection is cut instead:
    /// the records were appended (or the offsets stored); the service cannot know.
    DropAnswer,
    /// Forwarded after this delay; requests behind it on the same connection wait too.
    Delay(Duration),
    /// Not forwarded until the fault heals (then forwarded).
    Hold,
    /// A program point: the service that sent it is killed with SIGKILL (or paused with
    /// SIGSTOP when `pause`) when it sends the request — which then never reaches the broker —
    /// or once the broker answered it, before the service hears. Once per fault; the service
    /// comes back when the fault heals.
    Stop {
        /// The point of the request's flow.
        when: When,
        /// Paused (SIGSTOP) rather than killed.
        pause: bool,
    },
}

impl KafkaAction {
    /// The name a scenario spells it with.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Error(_) => "error",
            Self::DropAnswer => "drop_answer",
            Self::Delay(_) => "delay",
            Self::Hold => "hold",
            Self::Stop { pause: false, .. } => "kill",
            Self::Stop { pause: true, .. } => "pause",
        }
    }
}

/// A broker-request fault on a service's link to Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaFault {
    /// The kind of request it picks.
    pub request: KafkaRequest,
    /// Only requests naming this topic; any when `None`.
    pub topic: Option<String>,
    /// Only offset commits of this consumer group; any when `None`.
    pub group: Option<String>,
    /// Which of the matching requests it hits.
    pub which: Which,
    /// What it does to them.
    pub action: KafkaAction,
}

impl KafkaFault {
    /// Whether a request of kind `request`, naming `topics` (and of consumer group `group`,
    /// for an offset commit) is one this fault picks from.
    pub fn matches(&self, request: KafkaRequest, topics: &[String], group: Option<&str>) -> bool {
        request == self.request
            && self.topic.as_ref().is_none_or(|t| topics.iter().any(|named| named == t))
            && self.group.as_deref().is_none_or(|g| group == Some(g))
    }

    /// `drop_answer on produce to order.events, the 1st`: for the terminal and reports.
    pub fn describe(&self) -> String {
        let action = match &self.action {
            KafkaAction::Error(error) => format!("error {}", error.name),
            KafkaAction::Delay(delay) => format!("delay {}ms", delay.as_millis()),
            KafkaAction::Stop { when, .. } => format!(
                "{} its sender when {}",
                self.action.name(),
                match when {
                    When::Sent => "sent",
                    When::Answered => "answered",
                }
            ),
            other => other.name().to_string(),
        };
        let mut on = self.request.name().to_string();
        if let Some(topic) = &self.topic {
            on.push_str(match self.request {
                KafkaRequest::Produce => " to ",
                _ => " of ",
            });
            on.push_str(topic);
        }
        if let Some(group) = &self.group {
            on.push_str(&format!(" by group {group}"));
        }
        format!("{action} on {on}, {}", self.which.describe())
    }
}

pub(super) const ACTIONS: &str = "error, drop_answer, delay, hold, kill or pause";
const REQUESTS: &str = "\"produce\", \"fetch\" or \"offset_commit\"";

/// Reads the fields of a `kind = "kafka"` fault (its target already checked to be a
/// service's link to Kafka).
pub(super) fn read(fields: &mut Fields<'_>) -> Result<KafkaFault, ScenarioError> {
    let name = fields.required_string("request", REQUESTS)?;
    let request = match name.as_str() {
        "produce" => KafkaRequest::Produce,
        "fetch" => KafkaRequest::Fetch,
        "offset_commit" => KafkaRequest::OffsetCommit,
        other => {
            return Err(fields.error(
                "request",
                format!("unknown request {other:?}; expected {REQUESTS}"),
            ))
        }
    };
    let topic = fields.string("topic", "a topic name such as \"order.events\"")?;
    if topic.as_deref().is_some_and(str::is_empty) {
        return Err(fields.error("topic", "expected a topic name; leave it out for any topic"));
    }
    let group = fields.string("group", "a consumer group such as \"notification\"")?;
    if group.is_some() && request != KafkaRequest::OffsetCommit {
        return Err(fields.error(
            "group",
            format!(
                "only an offset commit names its consumer group; a {} request is picked by its topic",
                request.name()
            ),
        ));
    }
    if group.as_deref().is_some_and(str::is_empty) {
        return Err(fields.error("group", "expected a consumer group; leave it out for any group"));
    }
    let which = super::intercept::read_which(fields)?;
    let action_name = fields.required_string("action", ACTIONS)?;
    let action = match action_name.as_str() {
        "error" => {
            let named = fields.string("error", "a broker error's name such as \"NOT_LEADER_OR_FOLLOWER\"")?;
            let known = || {
                KAFKA_ERRORS
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let error = match named {
                Some(name) => KafkaError::named(&name).ok_or_else(|| {
                    fields.error(
                        "error",
                        format!("unknown broker error {name:?}; expected one of {}", known()),
                    )
                })?,
                None => request.default_error().ok_or_else(|| {
                    fields.error(
                        "action",
                        "a fetch cannot be answered with an error; delay or hold it, or stop its consumer",
                    )
                })?,
            };
            if request == KafkaRequest::Fetch {
                return Err(fields.error(
                    "action",
                    "a fetch cannot be answered with an error; delay or hold it, or stop its consumer",
                ));
            }
            KafkaAction::Error(error)
        }
        "drop_answer" => {
            if request == KafkaRequest::Fetch {
                return Err(fields.error(
                    "action",
                    "a fetch's answer is not dropped (the consumer would fetch the same records again); delay or hold it",
                ));
            }
            KafkaAction::DropAnswer
        }
        "delay" => {
            let delay = fields.required_duration("delay")?;
            if delay.is_zero() {
                return Err(fields.error("delay", "expected more than 0s"));
            }
            KafkaAction::Delay(delay)
        }
        "hold" => KafkaAction::Hold,
        "kill" | "pause" => {
            let when = match fields.string("when", "\"sent\" or \"answered\"")?.as_deref() {
                None | Some("sent") => When::Sent,
                Some("answered") => When::Answered,
                Some(other) => {
                    return Err(fields.error(
                        "when",
                        format!("unknown point {other:?}; expected \"sent\" or \"answered\""),
                    ))
                }
            };
            KafkaAction::Stop {
                when,
                pause: action_name == "pause",
            }
        }
        other => {
            return Err(fields.error(
                "action",
                format!("unknown action {other:?}; expected {ACTIONS}"),
            ))
        }
    };
    Ok(KafkaFault {
        request,
        topic,
        group,
        which,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(request: KafkaRequest, topic: Option<&str>, group: Option<&str>) -> KafkaFault {
        KafkaFault {
            request,
            topic: topic.map(String::from),
            group: group.map(String::from),
            which: Which::Every,
            action: KafkaAction::DropAnswer,
        }
    }

    #[test]
    fn a_fault_picks_its_request_kind_topic_and_group() {
        let topics = vec!["order.events".to_string(), "other".to_string()];
        let produce = fault(KafkaRequest::Produce, Some("order.events"), None);
        assert!(produce.matches(KafkaRequest::Produce, &topics, None));
        assert!(!produce.matches(KafkaRequest::Fetch, &topics, None));
        assert!(!produce.matches(KafkaRequest::Produce, &["other".to_string()], None));
        let commit = fault(KafkaRequest::OffsetCommit, None, Some("notification"));
        assert!(commit.matches(KafkaRequest::OffsetCommit, &topics, Some("notification")));
        assert!(!commit.matches(KafkaRequest::OffsetCommit, &topics, Some("order")));
        assert!(!commit.matches(KafkaRequest::OffsetCommit, &topics, None));
        let any = fault(KafkaRequest::Fetch, None, None);
        assert!(any.matches(KafkaRequest::Fetch, &[], None));
    }

    #[test]
    fn errors_are_known_by_name_in_any_case() {
        assert_eq!(KafkaError::named("not_leader_or_follower").map(|e| e.code), Some(6));
        assert_eq!(KafkaError::named("REBALANCE_IN_PROGRESS").map(|e| e.code), Some(27));
        assert_eq!(KafkaError::named("NO_SUCH_ERROR"), None);
        assert_eq!(KafkaRequest::Produce.default_error().map(|e| e.code), Some(6));
        assert_eq!(KafkaRequest::Fetch.default_error(), None);
    }

    #[test]
    fn api_keys_round_trip() {
        for request in [KafkaRequest::Produce, KafkaRequest::Fetch, KafkaRequest::OffsetCommit] {
            assert_eq!(KafkaRequest::from_api_key(request.api_key()), Some(request));
        }
        assert_eq!(KafkaRequest::from_api_key(3), None);
    }

    #[test]
    fn descriptions_name_the_request_and_the_point() {
        let mut f = fault(KafkaRequest::OffsetCommit, None, Some("notification"));
        f.action = KafkaAction::Stop {
            when: When::Sent,
            pause: false,
        };
        f.which = Which::Nth(1);
        assert_eq!(
            f.describe(),
            "kill its sender when sent on offset_commit by group notification, the 1st"
        );
        let g = fault(KafkaRequest::Produce, Some("order.events"), None);
        assert_eq!(g.describe(), "drop_answer on produce to order.events, every one");
    }
}
