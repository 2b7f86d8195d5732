//! Toxics: the faults Toxiproxy applies to the bytes flowing through a proxy.
//!
//! A [`Toxic`] is a named [`ToxicKind`] applied to one [`Stream`] direction of a proxy, to a
//! fraction of its connections given by its toxicity. On the wire a toxic is
//!
//! ```json
//! {"name":"slow","type":"latency","stream":"downstream","toxicity":1.0,
//!  "attributes":{"latency":300,"jitter":0}}
//! ```
//!
//! The typed [`ToxicKind`] is converted to and from that shape here, so the rest of the crate
//! never handles raw `attributes` objects. A toxic type the client does not know (a newer
//! Toxiproxy, or a custom toxic compiled into the server) is kept as [`ToxicKind::Other`] with
//! its attributes untouched, so listing a proxy's toxics never fails because of one unfamiliar
//! entry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ToxiproxyError;

/// Which direction of a proxied connection a toxic applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Bytes from the client towards the upstream service (requests).
    Upstream,
    /// Bytes from the upstream service back to the client (responses). Toxiproxy's default.
    #[default]
    Downstream,
}

/// The kind of fault a toxic injects, with the attributes of that kind.
///
/// Units follow Toxiproxy's: milliseconds unless the field name says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    /// `latency`: delays every chunk of data by `latency_ms` ± `jitter_ms`.
    Latency {
        /// Delay added to each chunk, in milliseconds.
        latency_ms: u64,
        /// Random variation around the delay, in milliseconds (uniform in ±jitter).
        jitter_ms: u64,
    },
    /// `bandwidth`: limits throughput.
    Bandwidth {
        /// Rate in kilobytes per second (Toxiproxy's `rate`, "KB/s").
        kilobytes_per_second: u64,
    },
    /// `slow_close`: delays the TCP close of the connection.
    SlowClose {
        /// How long the close is held back, in milliseconds.
        delay_ms: u64,
    },
    /// `timeout`: stops all data from flowing and closes the connection after `timeout_ms`
    /// (never closes it when 0).
    Timeout {
        /// Time before the connection is closed, in milliseconds; 0 keeps it open forever.
        timeout_ms: u64,
    },
    /// `reset_peer`: closes the connection with a TCP RST after `timeout_ms` (immediately
    /// when 0).
    ResetPeer {
        /// Time before the reset, in milliseconds.
        timeout_ms: u64,
    },
    /// `slicer`: slices data into smaller packets, optionally delaying each one.
    Slicer {
        /// Average packet size, in bytes.
        average_size: u64,
        /// ± variation of the packet size, in bytes; must be less than `average_size`.
        size_variation: u64,
        /// Delay between packets, in microseconds.
        delay_us: u64,
    },
    /// `limit_data`: closes the connection once `bytes` have passed through it.
    LimitData {
        /// Number of bytes after which the connection is closed.
        bytes: u64,
    },
    /// A toxic type this client does not model, kept as the server sent it.
    ///
    /// Decoding never fails because of an unknown `type`; sending one is allowed too (for a
    /// custom toxic compiled into the server) and the server answers 400 if it does not know it.
    Other {
        /// The toxic's `type` as Toxiproxy names it.
        type_name: String,
        /// The raw `attributes` object.
        attributes: Value,
    },
}

/// Attribute objects exactly as Toxiproxy names their fields; private to keep the wire format
/// in one place.
mod wire {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Latency {
        pub latency: u64,
        pub jitter: u64,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Bandwidth {
        pub rate: u64,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Delay {
        pub delay: u64,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Timeout {
        pub timeout: u64,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Slicer {
        pub average_size: u64,
        pub size_variation: u64,
        pub delay: u64,
    }
    #[derive(Serialize, Deserialize)]
    pub struct LimitData {
        pub bytes: u64,
    }

    /// Any kind's attributes, serialized as the bare object.
    #[derive(Serialize)]
    #[serde(untagged)]
    pub enum Attributes<'a> {
        Latency(Latency),
        Bandwidth(Bandwidth),
        Delay(Delay),
        Timeout(Timeout),
        Slicer(Slicer),
        LimitData(LimitData),
        Other(&'a serde_json::Value),
    }
}

impl ToxicKind {
    /// The toxic's `type` as Toxiproxy names it (`"latency"`, `"limit_data"`, ...).
    pub fn type_name(&self) -> &str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
            ToxicKind::Other { type_name, .. } => type_name,
        }
    }

    /// The `attributes` object Toxiproxy expects for this kind, its fields in the order
    /// Toxiproxy prints them.
    fn wire_attributes(&self) -> wire::Attributes<'_> {
        use wire::Attributes as A;
        match self {
            ToxicKind::Latency {
                latency_ms,
                jitter_ms,
            } => A::Latency(wire::Latency {
                latency: *latency_ms,
                jitter: *jitter_ms,
            }),
            ToxicKind::Bandwidth {
                kilobytes_per_second,
            } => A::Bandwidth(wire::Bandwidth {
                rate: *kilobytes_per_second,
            }),
            ToxicKind::SlowClose { delay_ms } => A::Delay(wire::Delay { delay: *delay_ms }),
            ToxicKind::Timeout { timeout_ms } | ToxicKind::ResetPeer { timeout_ms } => {
                A::Timeout(wire::Timeout {
                    timeout: *timeout_ms,
                })
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay_us,
            } => A::Slicer(wire::Slicer {
                average_size: *average_size,
                size_variation: *size_variation,
                delay: *delay_us,
            }),
            ToxicKind::LimitData { bytes } => A::LimitData(wire::LimitData { bytes: *bytes }),
            ToxicKind::Other { attributes, .. } => A::Other(attributes),
        }
    }

    /// Builds a kind from Toxiproxy's `type` and `attributes`.
    ///
    /// An unknown `type` becomes [`ToxicKind::Other`]; a known `type` whose attributes do not
    /// have the expected fields is an error.
    fn from_wire(type_name: &str, attributes: Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match type_name {
            "latency" => {
                let a: wire::Latency = from_value(attributes)?;
                ToxicKind::Latency {
                    latency_ms: a.latency,
                    jitter_ms: a.jitter,
                }
            }
            "bandwidth" => ToxicKind::Bandwidth {
                kilobytes_per_second: from_value::<wire::Bandwidth>(attributes)?.rate,
            },
            "slow_close" => ToxicKind::SlowClose {
                delay_ms: from_value::<wire::Delay>(attributes)?.delay,
            },
            "timeout" => ToxicKind::Timeout {
                timeout_ms: from_value::<wire::Timeout>(attributes)?.timeout,
            },
            "reset_peer" => ToxicKind::ResetPeer {
                timeout_ms: from_value::<wire::Timeout>(attributes)?.timeout,
            },
            "slicer" => {
                let a: wire::Slicer = from_value(attributes)?;
                ToxicKind::Slicer {
                    average_size: a.average_size,
                    size_variation: a.size_variation,
                    delay_us: a.delay,
                }
            }
            "limit_data" => ToxicKind::LimitData {
                bytes: from_value::<wire::LimitData>(attributes)?.bytes,
            },
            other => ToxicKind::Other {
                type_name: other.to_owned(),
                attributes,
            },
        })
    }
}

/// A toxic on a proxy: what [`add_toxic`](super::ToxiproxyClient::add_toxic) sends and what
/// the server reports back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "WireToxic")]
pub struct Toxic {
    /// Name, unique within the proxy.
    pub name: String,
    /// The fault and its attributes.
    pub kind: ToxicKind,
    /// The direction the fault applies to.
    pub stream: Stream,
    /// Probability in `0.0..=1.0` that a new connection gets this toxic. Checked by the client
    /// before sending: the server itself accepts any number.
    pub toxicity: f32,
}

impl Toxic {
    /// A toxic on the downstream (response) direction that applies to every connection.
    pub fn new(name: impl Into<String>, kind: ToxicKind) -> Self {
        Toxic {
            name: name.into(),
            kind,
            stream: Stream::Downstream,
            toxicity: 1.0,
        }
    }

    /// The same toxic on another direction.
    pub fn with_stream(mut self, stream: Stream) -> Self {
        self.stream = stream;
        self
    }

    /// The same toxic with another toxicity (validated when it is sent).
    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }
}

/// A change to an existing toxic: [`update_toxic`](super::ToxiproxyClient::update_toxic).
///
/// Toxiproxy can change a toxic's attributes and toxicity, not its name, type or stream
/// (remove it and add another for that). The kind sent must be the toxic's own kind: the
/// server would silently ignore attributes of another kind, so the client reports a
/// [`ToxiproxyError::KindMismatch`] instead.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicUpdate {
    /// The new attributes (all of them are replaced).
    pub kind: ToxicKind,
    /// The new toxicity; `None` keeps the current one.
    pub toxicity: Option<f32>,
}

impl ToxicUpdate {
    /// New attributes, toxicity unchanged.
    pub fn new(kind: ToxicKind) -> Self {
        ToxicUpdate {
            kind,
            toxicity: None,
        }
    }

    /// Also set the toxicity.
    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = Some(toxicity);
        self
    }
}

impl Serialize for ToxicUpdate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            attributes: wire::Attributes<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            toxicity: Option<f32>,
        }
        Wire {
            attributes: self.kind.wire_attributes(),
            toxicity: self.toxicity,
        }
        .serialize(serializer)
    }
}

/// Checks a toxicity before it is sent: the server would accept any number (even 7 or -1).
pub(crate) fn validate_toxicity(toxicity: f32) -> Result<(), ToxiproxyError> {
    if (0.0..=1.0).contains(&toxicity) {
        Ok(())
    } else {
        Err(ToxiproxyError::InvalidToxicity(toxicity))
    }
}

impl Serialize for Toxic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Field order as in Toxiproxy's README.
        #[derive(Serialize)]
        struct Wire<'a> {
            name: &'a str,
            #[serde(rename = "type")]
            type_name: &'a str,
            stream: Stream,
            toxicity: f32,
            attributes: wire::Attributes<'a>,
        }
        Wire {
            name: &self.name,
            type_name: self.kind.type_name(),
            stream: self.stream,
            toxicity: self.toxicity,
            attributes: self.kind.wire_attributes(),
        }
        .serialize(serializer)
    }
}

/// A toxic as the server sends it, before its attributes are typed.
#[derive(Deserialize)]
struct WireToxic {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    stream: Stream,
    toxicity: f32,
    attributes: Value,
}

impl TryFrom<WireToxic> for Toxic {
    type Error = String;

    fn try_from(wire: WireToxic) -> Result<Self, Self::Error> {
        let kind = ToxicKind::from_wire(&wire.type_name, wire.attributes).map_err(|e| {
            format!(
                "toxic {:?} of type {:?} has unexpected attributes: {e}",
                wire.name, wire.type_name
            )
        })?;
        Ok(Toxic {
            name: wire.name,
            kind,
            stream: wire.stream,
            toxicity: wire.toxicity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Serializes `toxic`, compares it byte for byte with the JSON Toxiproxy uses, and decodes
    /// that JSON back into the same toxic.
    fn assert_wire_round_trip(toxic: Toxic, expected: &str) {
        assert_eq!(serde_json::to_string(&toxic).unwrap(), expected);
        let decoded: Toxic = serde_json::from_str(expected).unwrap();
        assert_eq!(decoded, toxic);
    }

    #[test]
    fn latency_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new(
                "slow",
                ToxicKind::Latency {
                    latency_ms: 300,
                    jitter_ms: 0,
                },
            ),
            r#"{"name":"slow","type":"latency","stream":"downstream","toxicity":1.0,"attributes":{"latency":300,"jitter":0}}"#,
        );
    }

    #[test]
    fn bandwidth_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new(
                "narrow",
                ToxicKind::Bandwidth {
                    kilobytes_per_second: 64,
                },
            )
            .with_stream(Stream::Upstream)
            .with_toxicity(0.5),
            r#"{"name":"narrow","type":"bandwidth","stream":"upstream","toxicity":0.5,"attributes":{"rate":64}}"#,
        );
    }

    #[test]
    fn slow_close_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new("linger", ToxicKind::SlowClose { delay_ms: 1500 }),
            r#"{"name":"linger","type":"slow_close","stream":"downstream","toxicity":1.0,"attributes":{"delay":1500}}"#,
        );
    }

    #[test]
    fn timeout_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new("blackhole", ToxicKind::Timeout { timeout_ms: 0 }),
            r#"{"name":"blackhole","type":"timeout","stream":"downstream","toxicity":1.0,"attributes":{"timeout":0}}"#,
        );
    }

    #[test]
    fn reset_peer_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new("rst", ToxicKind::ResetPeer { timeout_ms: 250 }).with_toxicity(0.25),
            r#"{"name":"rst","type":"reset_peer","stream":"downstream","toxicity":0.25,"attributes":{"timeout":250}}"#,
        );
    }

    #[test]
    fn slicer_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new(
                "chop",
                ToxicKind::Slicer {
                    average_size: 64,
                    size_variation: 32,
                    delay_us: 10,
                },
            )
            .with_stream(Stream::Upstream),
            r#"{"name":"chop","type":"slicer","stream":"upstream","toxicity":1.0,"attributes":{"average_size":64,"size_variation":32,"delay":10}}"#,
        );
    }

    #[test]
    fn limit_data_matches_toxiproxy_json() {
        assert_wire_round_trip(
            Toxic::new("cap", ToxicKind::LimitData { bytes: 4096 }),
            r#"{"name":"cap","type":"limit_data","stream":"downstream","toxicity":1.0,"attributes":{"bytes":4096}}"#,
        );
    }

    #[test]
    fn toxic_decodes_as_the_server_prints_it() {
        // Go prints a float32 toxicity of 1 as `1` and orders fields its own way.
        let from_server = r#"{"attributes":{"latency":300,"jitter":25},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}"#;
        let toxic: Toxic = serde_json::from_str(from_server).unwrap();
        assert_eq!(
            toxic,
            Toxic::new(
                "latency_downstream",
                ToxicKind::Latency {
                    latency_ms: 300,
                    jitter_ms: 25
                }
            )
        );
    }

    #[test]
    fn unknown_toxic_type_decodes_as_other_and_round_trips() {
        let from_server = r#"{"name":"h","type":"http_header","stream":"upstream","toxicity":1.0,"attributes":{"header":"X-A","value":"1"}}"#;
        let toxic: Toxic = serde_json::from_str(from_server).unwrap();
        assert_eq!(
            toxic.kind,
            ToxicKind::Other {
                type_name: "http_header".into(),
                attributes: json!({"header": "X-A", "value": "1"}),
            }
        );
        assert_eq!(toxic.stream, Stream::Upstream);
        assert_eq!(serde_json::to_string(&toxic).unwrap(), from_server);
    }

    #[test]
    fn known_type_with_wrong_attributes_is_a_decode_error_naming_the_toxic() {
        let bad = r#"{"name":"slow","type":"latency","stream":"downstream","toxicity":1,"attributes":{"rate":1}}"#;
        let err = serde_json::from_str::<Toxic>(bad).unwrap_err().to_string();
        assert!(err.contains("\"slow\"") && err.contains("latency"), "{err}");
    }

    #[test]
    fn unknown_stream_is_a_decode_error() {
        let bad = r#"{"name":"x","type":"latency","stream":"sideways","toxicity":1,"attributes":{"latency":1,"jitter":0}}"#;
        assert!(serde_json::from_str::<Toxic>(bad).is_err());
    }

    #[test]
    fn toxic_update_sends_attributes_and_only_a_given_toxicity() {
        let keep = ToxicUpdate::new(ToxicKind::Timeout { timeout_ms: 10 });
        assert_eq!(
            serde_json::to_string(&keep).unwrap(),
            r#"{"attributes":{"timeout":10}}"#
        );
        let change = keep.with_toxicity(0.75);
        assert_eq!(
            serde_json::to_string(&change).unwrap(),
            r#"{"attributes":{"timeout":10},"toxicity":0.75}"#
        );
    }

    #[test]
    fn toxicity_inside_unit_interval_is_accepted() {
        for ok in [0.0, 0.001, 0.5, 1.0] {
            assert!(validate_toxicity(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn toxicity_outside_unit_interval_is_rejected() {
        for bad in [
            -0.01,
            1.0001,
            7.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            match validate_toxicity(bad) {
                Err(ToxiproxyError::InvalidToxicity(t)) => {
                    assert!(t.to_bits() == bad.to_bits(), "{t} != {bad}")
                }
                other => panic!("{bad} gave {other:?}"),
            }
        }
    }
}
