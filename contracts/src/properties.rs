//! Bounded property runs of what reads user input: the pact reader with its validation and
//! the schema compatibility check. No input may panic them; a pact that is accepted reads
//! back from its own output; a breaking change's counterexample really separates the two
//! schemas. `PROPTEST_CASES=N` runs each longer (see docs/properties.md).

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::compat::{self, Mode, Schema};
use crate::Pact;

/// `default_cases` unless `PROPTEST_CASES` asks for another number, from a fixed seed unless
/// `PROPTEST_RNG_SEED` gives another: the suite tries the same cases on every run (a failure
/// reproduces), and a search for more sets either variable.
fn config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x0fa1_7115);
    }
    config.failure_persistence = None;
    config
}

/// Strings a pact or schema reader gives meaning to, so random documents reach deep checks.
const WORDS: &[&str] = &[
    "",
    "$",
    "$.id",
    "$.items[*].id",
    "$.*",
    "$.a[0]",
    "[",
    "content",
    "contentType",
    "encoded",
    "base64",
    "json",
    "application/json",
    "text/plain",
    "match",
    "matchers",
    "combine",
    "OR",
    "regex",
    "type",
    "min",
    "max",
    "integer",
    "decimal",
    "date",
    "datetime",
    "format",
    "yyyy-MM-dd",
    "eachKey",
    "eachValue",
    "arrayContains",
    "variants",
    "index",
    "rules",
    "statusCode",
    "status",
    "body",
    "header",
    "metadata",
    "path",
    "query",
    "generators",
    "ProviderState",
    "expression",
    "${id}",
    "GET",
    "POST",
    "Synchronous/HTTP",
    "Asynchronous/Messages",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "const",
    "additionalProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "string",
    "object",
    "array",
    "null",
    "boolean",
    "number",
    "uuid",
    "date-time",
    "email",
    "a)|(b",
    "\\d+",
    "(",
    "4.0",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => ".{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..1000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        word().prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every node of `value`, as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn shipped_pacts() -> Vec<Value> {
    static PACTS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    PACTS.get_or_init(read_shipped_pacts).clone()
}

fn read_shipped_pacts() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pacts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

/// `doc` with the node at one of its pointers replaced by `replacement` (or removed).
fn mutate(mut doc: Value, pick: prop::sample::Index, replacement: Option<Value>) -> Value {
    let mut all = Vec::new();
    pointers(&doc, String::new(), &mut all);
    let at = &all[pick.index(all.len())];
    if at.is_empty() {
        return replacement.unwrap_or(Value::Null);
    }
    let (parent, last) = at
        .rsplit_once('/')
        .expect("a non-root pointer has a parent");
    match (doc.pointer_mut(parent), replacement) {
        (Some(Value::Object(map)), None) => {
            map.remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        (Some(Value::Array(items)), None) => {
            if let Ok(i) = last.parse::<usize>() {
                items.remove(i);
            }
        }
        (_, Some(value)) => {
            if let Some(node) = doc.pointer_mut(at) {
                *node = value;
            }
        }
        _ => {}
    }
    doc
}

/// Accepted pacts read back from their own output, unchanged.
fn reads_back(pact: &Pact) -> Result<(), TestCaseError> {
    let text = pact.to_json_string();
    let again = Pact::from_json_str(&text);
    prop_assert!(again.is_ok(), "{:?}\n{text}", again.err());
    prop_assert_eq!(&again.unwrap(), pact);
    Ok(())
}

/// A schema in (and a little outside) the supported subset.
fn schema() -> impl Strategy<Value = Value> {
    let types = prop::sample::subsequence(
        vec![
            "null", "boolean", "integer", "number", "string", "array", "object",
        ],
        0..3,
    );
    let keyword = prop_oneof![
        prop::sample::select(vec!["string", "integer", "object", "array", "null"])
            .prop_map(|t| ("type".to_string(), Value::from(t))),
        types.prop_map(|t| ("type".to_string(), Value::from(t))),
        prop::collection::vec(leaf(), 0..3).prop_map(|v| ("enum".to_string(), Value::Array(v))),
        leaf().prop_map(|v| ("const".to_string(), v)),
        prop::sample::select(vec!["uuid", "date-time", "email", "color"])
            .prop_map(|f| ("format".to_string(), Value::from(f))),
        (-5i64..5).prop_map(|n| ("minimum".to_string(), Value::from(n))),
        (-5i64..5).prop_map(|n| ("maximum".to_string(), Value::from(n))),
        (0u64..4).prop_map(|n| ("minLength".to_string(), Value::from(n))),
        (0u64..4).prop_map(|n| ("maxLength".to_string(), Value::from(n))),
        any::<bool>().prop_map(|b| ("additionalProperties".to_string(), Value::from(b))),
        prop::sample::subsequence(vec!["a", "b", "c"], 0..3)
            .prop_map(|r| ("required".to_string(), Value::from(r))),
    ];
    let flat = prop::collection::vec(keyword, 0..4)
        .prop_map(|kws| Value::Object(kws.into_iter().collect::<Map<_, _>>()));
    flat.prop_recursive(3, 16, 3, |inner| {
        (
            prop::collection::vec(
                (prop::sample::select(vec!["a", "b", "c"]), inner.clone()),
                0..3,
            ),
            prop::option::of(inner),
            prop::collection::vec(leaf(), 0..2),
            any::<bool>(),
        )
            .prop_map(|(props, items, listed, object)| {
                let mut m = Map::new();
                m.insert(
                    "type".into(),
                    Value::from(if object { "object" } else { "array" }),
                );
                let props: Map<String, Value> =
                    props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                m.insert("properties".into(), Value::Object(props));
                m.insert("required".into(), Value::from(vec!["a"]));
                if let Some(items) = items {
                    m.insert("items".into(), items);
                }
                if !listed.is_empty() {
                    m.insert("enum".into(), Value::Array(listed));
                }
                Value::Object(m)
            })
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_never_panics_the_pact_reader(text in any::<String>()) {
        let _ = Pact::from_json_str(&text);
    }

    #[test]
    fn arbitrary_documents_never_panic_the_pact_reader(doc in json()) {
        if let Ok(pact) = Pact::from_json(&doc) {
            reads_back(&pact)?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_schema_reader(text in any::<String>()) {
        let _ = Schema::from_json_str("fuzz.json", &text);
    }

    #[test]
    fn the_compatibility_check_never_panics_and_its_counterexamples_are_real(
        old in schema(), new in schema(),
    ) {
        let (Ok(old), Ok(new)) = (Schema::from_value("old.json", old), Schema::from_value("new.json", new)) else {
            return Ok(());
        };
        for mode in [Mode::Backward, Mode::Forward] {
            let report = compat::check(&old, &new, mode);
            let (writer, reader) = match mode {
                Mode::Backward => (&old, &new),
                _ => (&new, &old),
            };
            for change in &report.breaking {
                prop_assert!(writer.is_valid(&change.counterexample), "{change}");
                prop_assert!(!reader.is_valid(&change.counterexample), "{change}");
            }
        }
        let _ = compat::check_transitive(&[old, new], Mode::Full);
    }

    #[test]
    fn arbitrary_documents_never_panic_the_compatibility_check(old in json(), new in json()) {
        if let (Ok(old), Ok(new)) = (Schema::from_value("old.json", old), Schema::from_value("new.json", new)) {
            let _ = compat::check(&old, &new, Mode::Full);
        }
    }
}

proptest! {
    // Each case reads a whole pact, compiling its regexes twice: fewer cases, same reach.
    #![proptest_config(config(64))]

    #[test]
    fn mutated_committed_pacts_never_panic_the_reader_and_read_back_when_accepted(
        which in 0usize..4,
        pick in any::<prop::sample::Index>(),
        replacement in prop::option::of(json()),
    ) {
        let pacts = shipped_pacts();
        let doc = mutate(pacts[which % pacts.len()].clone(), pick, replacement);
        if let Ok(pact) = Pact::from_json(&doc) {
            reads_back(&pact)?;
        }
    }
}
