//! Declarative HTTP workloads: named operations a scenario sends to a described system's
//! services, with seeded generators for what varies between requests.
//!
//! ```toml
//! [workload]
//! requests = 200          # operations in all
//! concurrency = 4
//! duration = "20s"
//! retry_rate = 0.3        # fraction of operations a client sends again after an unknown outcome
//! duplicate_rate = 0.1    # fraction sent twice at once, with the same idempotency key
//! [[workload.operations]]
//! name = "transfer"
//! service = "api"                       # a described service; requests go to its own port
//! method = "POST"
//! path = "/transfers"
//! weight = 3
//! kind = "good"                         # optional: the intent, for checkers and reports
//! idempotency_key = "Idempotency-Key"   # header carrying {key}
//! headers = { Authorization = "Bearer {env:API_TOKEN}" }
//! body = { id = "{key}", from = "{pick:alice|bob}", amount = "{int:1..50}" }
//! [[workload.setup]]                    # sent once, in order, before the steady state
//! name = "open-accounts"
//! service = "api"
//! method = "PUT"
//! path = "/accounts/alice"
//! body = { balance = 1000 }
//! ```
//!
//! Generators, in paths, header values and body strings:
//!
//! | generator | gives |
//! |---|---|
//! | `{key}` | the operation's idempotency key (a UUID from the seed; the same on duplicates and retries) |
//! | `{uuid}` | a fresh UUID from the seed |
//! | `{int:A..B}` | an integer from A to B inclusive |
//! | `{pick:a\|b\|c}` | one of the choices |
//! | `{seq}` | the operation's number in the plan |
//! | `{env:NAME}` | faultline's environment variable NAME (headers only; read once at start) |
//! | `{file:PATH}` | the trimmed contents of a file, relative to the current folder (headers only) |
//! | `{command:PROGRAM ARGS…}` | the trimmed standard output of a program run once at start in the system description's folder, such as a token minter (headers only) |
//! | `{setup:NAME:/POINTER}` | the value at a JSON pointer of the answer to the set-up request `NAME`, such as the token a login answered (headers only; an earlier set-up request's for a set-up request) |
//! | `{response:/POINTER}` | the value at a JSON pointer of the request's answer (completion paths only) |
//!
//! A body string that is exactly one generator takes the generator's type (`"{int:1..5}"` is
//! a JSON number); inside longer text it is rendered as text. `{{` and `}}` are literal braces.
//!
//! An operation whose effect finishes after its answer (an order that a saga confirms later)
//! has a completion check: after a 2xx, the client reads `path` until the value at `pointer`
//! is one of `values`, at most `within`. A value of `ok` (all of `values` when not given)
//! makes the operation ok; another of `values` makes it fail (it certainly ended without its
//! effect); none within the bound leaves it unknown (info).
//!
//! ```toml
//! [workload.operations.completion]
//! path = "/api/orders/{response:/order_id}"
//! pointer = "/status"
//! values = ["CONFIRMED", "CANCELLED"]
//! ok = ["CONFIRMED"]
//! within = "30s"
//! ```
//!
//! With `wait = false` (and no `within`) the client does not wait: the answer alone decides
//! the outcome, and each accepted operation's state is read once, after the run settled,
//! for the report's outcomes — the load keeps its pace while the system finishes later.
//! Steady-state probes wait all the same (at most `within`'s default, 30 s): a probe asks
//! whether the effect happens.
//!
//! Several operations may share a name when their `kind`s differ: three `place_order`
//! operations of kinds `good`, `declining` and `out_of_stock` are one operation with three
//! intents to the history, the report (`place_order (good)`) and a checker that reads them.

use std::fmt;

/// A workload of named HTTP operations.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpWorkload {
    /// Operations to send in all.
    pub requests: u32,
    /// The operations, picked by weight.
    pub operations: Vec<Operation>,
    /// Requests sent once, in order, before the steady state (`[[workload.setup]]`): data the
    /// load needs, such as stock to sell. Each must answer 2xx.
    pub setup: Vec<Operation>,
}

/// The operations and set-up of a workload without its size: what a system description's
/// `[workload]` writes once, so that each scenario gives only how much to send and how
/// (`requests`, `concurrency`, `duration`, rates, and optionally `[workload.weights]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribedWorkload {
    /// The operations, picked by weight.
    pub operations: Vec<Operation>,
    /// Requests sent once, in order, before the steady state.
    pub setup: Vec<Operation>,
}

/// One kind of request.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The operation's name, in the history and reports.
    pub name: String,
    /// What this variant of the operation is meant to show (`good`, `declining`), recorded
    /// with each request so that checkers and reports can tell intents apart.
    pub kind: Option<String>,
    /// The described service it is sent to (directly, on the service's own port).
    pub service: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, with generators.
    pub path: Text,
    /// How often it is picked, relative to the other operations.
    pub weight: f64,
    /// The header carrying the operation's `{key}`, if any.
    pub idempotency_key: Option<String>,
    /// Extra headers, with generators.
    pub headers: Vec<(String, Text)>,
    /// The JSON body, if any.
    pub body: Option<Body>,
    /// How to tell that the operation's effect finished, if it finishes after the answer.
    pub completion: Option<Completion>,
    /// What it promises its client, without a fault and under one (`answers`; the default
    /// when not given).
    pub answers: super::answers::Answers,
}

/// A completion check: read `path` until the value at `pointer` is one of `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// A GET path on the same service, with `{key}` and `{response:/pointer}`.
    pub path: Text,
    /// Where in the read's JSON body the state is.
    pub pointer: String,
    /// The final states.
    pub values: Vec<serde_json::Value>,
    /// The final states in which the operation took effect.
    pub ok: Vec<serde_json::Value>,
    /// How long to keep reading.
    pub within: std::time::Duration,
    /// Whether the client waits for a final state before its next operation (`wait`, default
    /// true). When it does not, the answer alone decides the operation's outcome and the
    /// state is read once, after the run settled, for the report's outcomes (probes wait
    /// all the same).
    pub wait: bool,
}

/// One generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generator {
    /// `{key}`.
    Key,
    /// `{uuid}`.
    Uuid,
    /// `{int:A..B}`.
    Int {
        /// Smallest value.
        from: i64,
        /// Largest value.
        to: i64,
    },
    /// `{pick:a|b}`.
    Pick(Vec<String>),
    /// `{seq}`.
    Seq,
    /// `{env:NAME}`.
    Env(String),
    /// `{file:PATH}`.
    File(String),
    /// `{command:PROGRAM ARGS…}`: the program and its arguments.
    Command(Vec<String>),
    /// `{response:/POINTER}`.
    Response(String),
    /// `{setup:NAME:/POINTER}`: the value at a JSON pointer of the answer to the set-up
    /// request `NAME` (a token a login answered; headers only).
    Setup {
        /// The `[[workload.setup]]` request's name.
        name: String,
        /// Where in its answer's JSON body the value is.
        pointer: String,
    },
}

/// Where a [`Text`] is, which decides the generators it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A path or a body: generators drawn from the seed.
    Request,
    /// A header value: also what is read once at start (`{env:…}`, `{file:…}`, `{command:…}`).
    Header,
    /// A completion path: `{key}` and the answer's values (`{response:…}`).
    Completion,
}

/// A piece of a [`Text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as it is.
    Literal(String),
    /// A generator's value.
    Generate(Generator),
}

/// A string with generators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
}

/// A JSON body template.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A string: text, or exactly one generator (typed).
    Text(Text),
    /// A number.
    Number(serde_json::Number),
    /// `true` or `false`.
    Bool(bool),
    /// An array.
    Array(Vec<Body>),
    /// An object, in key order.
    Object(Vec<(String, Body)>),
}

impl Text {
    /// Parses `text`; `allow_external` admits `{env:…}`, `{file:…}` and `{command:…}`
    /// (headers only).
    pub fn parse(text: &str, allow_external: bool) -> Result<Self, String> {
        Self::parse_at(
            text,
            if allow_external {
                Place::Header
            } else {
                Place::Request
            },
        )
    }

    /// Parses `text` found at `place`.
    pub fn parse_at(text: &str, place: Place) -> Result<Self, String> {
        let pieces = super::fields::split_braces(text)?
            .into_iter()
            .map(|piece| match piece {
                super::fields::Braced::Text(literal) => Ok(Piece::Literal(literal)),
                super::fields::Braced::Placeholder(inner) => {
                    parse_generator(inner, place).map(Piece::Generate)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { pieces })
    }

    /// The generator, when the text is exactly one.
    pub fn single(&self) -> Option<&Generator> {
        match self.pieces.as_slice() {
            [Piece::Generate(g)] => Some(g),
            _ => None,
        }
    }

    /// The generators it uses.
    pub fn generators(&self) -> impl Iterator<Item = &Generator> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Generate(g) => Some(g),
            Piece::Literal(_) => None,
        })
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => {
                    write!(f, "{}", text.replace('{', "{{").replace('}', "}}"))?
                }
                Piece::Generate(g) => write!(f, "{{{g}}}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key => write!(f, "key"),
            Self::Uuid => write!(f, "uuid"),
            Self::Int { from, to } => write!(f, "int:{from}..{to}"),
            Self::Pick(choices) => write!(f, "pick:{}", choices.join("|")),
            Self::Seq => write!(f, "seq"),
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{path}"),
            Self::Command(argv) => write!(f, "command:{}", argv.join(" ")),
            Self::Response(pointer) => write!(f, "response:{pointer}"),
            Self::Setup { name, pointer } => write!(f, "setup:{name}:{pointer}"),
        }
    }
}

const GENERATORS: &str = "{key}, {uuid}, {int:A..B}, {pick:a|b}, {seq}; in headers also \
     {env:NAME}, {file:PATH}, {command:PROGRAM ARGS} and {setup:NAME:/POINTER}; in completion \
     paths {key} and {response:/POINTER} only";

fn parse_generator(inner: &str, place: Place) -> Result<Generator, String> {
    let allow_external = place == Place::Header;
    let (head, argument) = match inner.split_once(':') {
        Some((h, a)) => (h.trim(), Some(a)),
        None => (inner.trim(), None),
    };
    if place == Place::Completion {
        return match (head, argument) {
            ("key", None) => Ok(Generator::Key),
            ("response", Some(pointer)) if pointer.trim().starts_with('/') => {
                Ok(Generator::Response(pointer.trim().to_string()))
            }
            ("response", _) => Err(format!(
                "{{{inner}}}: expected {{response:/POINTER}}, a JSON pointer into the answer"
            )),
            _ => Err(format!(
                "{{{inner}}} is not allowed in a completion path; allowed: {{key}}, {{response:/POINTER}}"
            )),
        };
    }
    let bare = |g: Generator| match argument {
        None => Ok(g),
        Some(_) => Err(format!("generator {{{head}}} takes no argument")),
    };
    match (head, argument) {
        ("key", _) => bare(Generator::Key),
        ("uuid", _) => bare(Generator::Uuid),
        ("seq", _) => bare(Generator::Seq),
        ("int", Some(range)) => {
            let parsed = range.split_once("..").and_then(|(a, b)| {
                Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?))
            });
            match parsed {
                Some((from, to)) if from <= to => Ok(Generator::Int { from, to }),
                _ => Err(format!(
                    "{{int:{range}}}: expected a range A..B of integers with A <= B"
                )),
            }
        }
        ("pick", Some(choices)) => {
            let choices: Vec<String> = choices.split('|').map(|c| c.trim().to_string()).collect();
            if choices.iter().any(String::is_empty) {
                return Err(format!(
                    "{{pick:{}}}: expected choices a|b|c, none empty",
                    choices.join("|")
                ));
            }
            Ok(Generator::Pick(choices))
        }
        ("env" | "file" | "command", Some(_)) if !allow_external => Err(format!(
            "{{{head}:…}} is read once at start and only allowed in header values"
        )),
        ("setup", Some(_)) if !allow_external => Err(
            "{setup:…} is read from a set-up request's answer and only allowed in header values"
                .to_string(),
        ),
        ("setup", Some(argument)) => match argument.split_once(':') {
            Some((name, pointer))
                if !name.trim().is_empty()
                    && (pointer.trim().is_empty() || pointer.trim().starts_with('/')) =>
            {
                Ok(Generator::Setup {
                    name: name.trim().to_string(),
                    pointer: pointer.trim().to_string(),
                })
            }
            _ => Err(format!(
                "{{setup:{argument}}}: expected {{setup:NAME:/POINTER}}, a [[workload.setup]] request's name and a JSON pointer into its answer"
            )),
        },
        ("command", Some(line)) if !line.trim().is_empty() => Ok(Generator::Command(
            line.split_whitespace().map(str::to_string).collect(),
        )),
        ("env", Some(name)) if !name.trim().is_empty() => Ok(Generator::Env(name.trim().into())),
        ("file", Some(path)) if !path.trim().is_empty() => Ok(Generator::File(path.trim().into())),
        _ => Err(format!(
            "unknown generator {{{inner}}}; known: {GENERATORS}"
        )),
    }
}

/// The body template of a TOML value; `path` names it in errors.
pub fn body_of(value: &toml::Value, path: &str) -> Result<Body, (String, String)> {
    Ok(match value {
        toml::Value::String(s) => {
            Body::Text(Text::parse(s, false).map_err(|e| (path.to_string(), e))?)
        }
        toml::Value::Integer(i) => Body::Number((*i).into()),
        toml::Value::Float(f) => Body::Number(
            serde_json::Number::from_f64(*f)
                .ok_or_else(|| (path.to_string(), format!("{f} is not a JSON number")))?,
        ),
        toml::Value::Boolean(b) => Body::Bool(*b),
        toml::Value::Datetime(d) => Body::Text(Text {
            pieces: vec![Piece::Literal(d.to_string())],
        }),
        toml::Value::Array(items) => Body::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| body_of(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Body::Object(
            table
                .iter()
                .map(|(k, v)| {
                    Ok::<_, (String, String)>((k.clone(), body_of(v, &format!("{path}.{k}"))?))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_parse_inside_text_and_alone() {
        let t = Text::parse("/accounts/{pick:alice|bob}/x{{y}}", false).unwrap();
        assert_eq!(t.generators().count(), 1);
        assert_eq!(t.to_string(), "/accounts/{pick:alice|bob}/x{{y}}");
        let t = Text::parse("{int:1..20}", false).unwrap();
        assert_eq!(t.single(), Some(&Generator::Int { from: 1, to: 20 }));
        let t = Text::parse("Bearer {env:TOKEN}", true).unwrap();
        assert_eq!(t.generators().next(), Some(&Generator::Env("TOKEN".into())));
    }

    #[test]
    fn malformed_generators_say_what_is_allowed() {
        for (text, external, says) in [
            ("{nope}", false, "unknown generator {nope}; known: {key}"),
            ("{int:5..1}", false, "A <= B"),
            ("{int:a..b}", false, "range A..B"),
            ("{pick:a||b}", false, "none empty"),
            ("{key:1}", false, "takes no argument"),
            ("{env:TOKEN}", false, "only allowed in header values"),
            ("{uuid", false, "unclosed"),
        ] {
            let e = Text::parse(text, external).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
