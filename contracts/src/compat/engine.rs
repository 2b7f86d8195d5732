//! The search for counterexamples: walk writer and reader schemas together, propose a local
//! value (or a missing property) where they differ, embed it in the writer's minimal
//! example, and keep it only if the full schemas agree it is a break.

use serde_json::Value;

use super::schema::{
    ceil_int, floor_int, format_example, int_value, key_segment, Node, Ty, MAX_GENERATED_LENGTH,
};
use super::{validator, BreakingChange, Direction, Report, Schema, Unverified};

/// One step into a payload.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    /// The first array element.
    First,
}

/// A proposed break: put `value` at `at` in the writer's example.
struct Candidate {
    at: Vec<Seg>,
    /// The property the break is about, when not `at` itself (a missing property).
    property: Option<String>,
    value: Value,
    change: String,
}

pub(super) fn check_direction(
    writer: &Schema,
    reader: &Schema,
    direction: Direction,
    report: &mut Report,
) {
    let mut candidates = Vec::new();
    compare(&writer.root, &reader.root, &mut Vec::new(), &mut candidates);
    let base = writer.root.example();
    for candidate in candidates {
        let path = candidate
            .property
            .clone()
            .unwrap_or_else(|| render(&candidate.at));
        let mut payload = base.clone();
        place(
            &mut payload,
            &writer.root,
            &candidate.at,
            candidate.value.clone(),
        );
        let problem = if !writer.is_valid(&payload) {
            Some(format!(
                "candidate {payload} is not valid under the writer's schema: {}",
                writer.validate(&payload).err().unwrap_or_default()
            ))
        } else {
            match reader.validate(&payload) {
                Ok(()) => Some(format!(
                    "candidate {payload} is accepted by the reader's schema"
                )),
                Err(rejected_because) => {
                    let change = BreakingChange {
                        direction,
                        writer: writer.name.clone(),
                        reader: reader.name.clone(),
                        path: path.clone(),
                        change: candidate.change.clone(),
                        rejected_because,
                        counterexample: payload,
                    };
                    if !report.breaking.contains(&change) {
                        report.breaking.push(change);
                    }
                    None
                }
            }
        };
        if let Some(problem) = problem {
            report.unverified.push(Unverified {
                direction,
                writer: writer.name.clone(),
                reader: reader.name.clone(),
                path: candidate.property.unwrap_or_else(|| render(&candidate.at)),
                change: candidate.change,
                problem,
            });
        }
    }
}

fn render(at: &[Seg]) -> String {
    let mut path = String::from("$");
    for seg in at {
        match seg {
            Seg::Key(name) => path.push_str(&key_segment(name)),
            Seg::First => path.push_str("[0]"),
        }
    }
    path
}

/// Sets `value` at `at` inside `payload`, creating what is missing on the way from the
/// writer's schema so the rest of the payload stays valid for the writer.
fn place(payload: &mut Value, node: &Node, at: &[Seg], value: Value) {
    let Some((first, rest)) = at.split_first() else {
        *payload = value;
        return;
    };
    match first {
        Seg::Key(name) => {
            if !payload.is_object() {
                *payload = node.example_of(Ty::Object);
            }
            let child = node.properties.get(name);
            let object = payload.as_object_mut().expect("made an object above");
            let slot = object
                .entry(name.clone())
                .or_insert_with(|| child.map(Node::example).unwrap_or(Value::Null));
            match child {
                Some(child) => place(slot, child, rest, value),
                None => place(slot, &Node::any(), rest, value),
            }
        }
        Seg::First => {
            if !payload.is_array() {
                *payload = Value::Array(Vec::new());
            }
            let items = node.items.as_deref().cloned().unwrap_or_else(Node::any);
            let array = payload.as_array_mut().expect("made an array above");
            if array.is_empty() {
                array.push(items.example());
            }
            place(&mut array[0], &items, rest, value);
        }
    }
}

impl Node {
    fn any() -> Node {
        Node::parse("", "$", &Value::Bool(true)).expect("`true` is a schema")
    }
}

fn local_valid(node: &Node, value: &Value) -> bool {
    validator(&node.raw)
        .map(|v| v.is_valid(value))
        .unwrap_or(false)
}

fn compare(writer: &Node, reader: &Node, at: &mut Vec<Seg>, out: &mut Vec<Candidate>) {
    // A writer limited to listed values: each value either passes the reader or is a break.
    let listed = writer
        .const_value
        .clone()
        .map(|v| vec![v])
        .or_else(|| writer.enum_values.clone());
    if let Some(values) = listed {
        if let Some(value) = values
            .into_iter()
            .find(|v| local_valid(writer, v) && !local_valid(reader, v))
        {
            out.push(Candidate {
                at: at.clone(),
                property: None,
                change: describe(writer, reader, None),
                value,
            });
        }
        return;
    }
    for ty in writer.value_types() {
        let composite = matches!(ty, Ty::Object | Ty::Array);
        if composite && reader.admits_type(ty) {
            // `enum`/`const` on an object or array: judged on the writer's example as a whole.
            let value = writer.example_of(ty);
            if (reader.enum_values.is_some() || reader.const_value.is_some())
                && local_valid(writer, &value)
                && !local_valid(reader, &value)
            {
                out.push(Candidate {
                    at: at.clone(),
                    property: None,
                    change: describe(writer, reader, Some(ty)),
                    value,
                });
            }
        }
        match ty {
            Ty::Object if reader.admits_type(Ty::Object) => compare_object(writer, reader, at, out),
            // Neither side says anything of the elements: each accepts any, and descending
            // into `any` against `any` would never end.
            Ty::Array
                if reader.admits_type(Ty::Array)
                    && writer.items.is_none()
                    && reader.items.is_none() => {}
            Ty::Array if reader.admits_type(Ty::Array) => {
                let any = Node::any();
                let w_items = writer.items.as_deref().unwrap_or(&any);
                let r_items = reader.items.as_deref().unwrap_or(&any);
                at.push(Seg::First);
                compare(w_items, r_items, at, out);
                at.pop();
            }
            _ => {
                if let Some(value) = scalar_candidates(writer, reader, ty)
                    .into_iter()
                    .find(|v| local_valid(writer, v) && !local_valid(reader, v))
                {
                    out.push(Candidate {
                        at: at.clone(),
                        property: None,
                        change: describe(writer, reader, Some(ty)),
                        value,
                    });
                }
            }
        }
    }
}

fn compare_object(writer: &Node, reader: &Node, at: &mut Vec<Seg>, out: &mut Vec<Candidate>) {
    for name in &reader.required {
        if writer.required.contains(name) {
            continue;
        }
        // The writer's minimal object leaves out every optional property.
        let how = if writer.properties.contains_key(name) {
            "optional in the writer's schema"
        } else {
            "not declared by the writer's schema"
        };
        at.push(Seg::Key(name.clone()));
        let path = render(at);
        at.pop();
        out.push(Candidate {
            at: at.clone(),
            property: Some(path.clone()),
            value: writer.example_of(Ty::Object),
            change: format!("property {path} is required by the reader but {how}"),
        });
    }
    for (name, w_prop) in &writer.properties {
        at.push(Seg::Key(name.clone()));
        match reader.properties.get(name) {
            Some(r_prop) => compare(w_prop, r_prop, at, out),
            None if !reader.additional => out.push(Candidate {
                at: at.clone(),
                property: None,
                value: w_prop.example(),
                change: format!(
                    "property {} is written but the reader does not declare it and has additionalProperties: false",
                    render(at)
                ),
            }),
            None => {}
        }
        at.pop();
    }
}

/// Values of type `ty` that probe every keyword where the two schemas may differ.
fn scalar_candidates(writer: &Node, reader: &Node, ty: Ty) -> Vec<Value> {
    let mut values = vec![writer.example_of(ty)];
    match ty {
        Ty::Null => {}
        Ty::Boolean => values.push(Value::Bool(true)),
        Ty::Integer | Ty::Number => {
            let mut ints = Vec::new();
            ints.extend(writer.minimum.as_ref().map(ceil_int));
            ints.extend(writer.maximum.as_ref().map(floor_int));
            ints.extend(reader.minimum.as_ref().map(|n| ceil_int(n) - 1));
            ints.extend(reader.maximum.as_ref().map(|n| floor_int(n) + 1));
            for listed in reader
                .enum_values
                .iter()
                .flatten()
                .chain(&reader.const_value)
            {
                if let Some(n) = listed.as_i64() {
                    ints.extend([i128::from(n) - 1, i128::from(n) + 1]);
                }
            }
            values.extend(ints.iter().map(|n| int_value(*n)));
            if ty == Ty::Number {
                let fractional = ints
                    .iter()
                    .chain([&0])
                    .filter_map(|n| serde_json::Number::from_f64(*n as f64 + 0.5))
                    .map(Value::Number);
                values.extend(fractional.collect::<Vec<_>>());
            }
        }
        Ty::String => {
            let base = writer.example_string();
            let mut lengths = Vec::new();
            if writer.format.is_none() {
                lengths.extend(reader.min_length.filter(|&min| min > 0).map(|min| min - 1));
                lengths.extend(reader.max_length.map(|max| max + 1));
            }
            lengths.extend(writer.min_length);
            for len in lengths
                .into_iter()
                .filter(|&len| len <= MAX_GENERATED_LENGTH)
            {
                values.push(Value::String("x".repeat(len as usize)));
            }
            if let Some(format) = &reader.format {
                if writer.format.is_none() {
                    values.push(Value::String(format!("not-a-{format}")));
                    values.push(Value::String(format!("not an {format}")));
                }
            }
            for listed in reader
                .enum_values
                .iter()
                .flatten()
                .chain(&reader.const_value)
            {
                if let Some(text) = listed.as_str() {
                    values.push(Value::String(format!("{text}-other")));
                }
            }
            values.push(Value::String(format!("{base}-other")));
            if let Some(format) = &writer.format {
                values.push(Value::String(format_example(format).to_string()));
            }
        }
        Ty::Array | Ty::Object => {}
    }
    values
}

/// The keyword-level difference between two nodes, for the report.
fn describe(writer: &Node, reader: &Node, ty: Option<Ty>) -> String {
    if let Some(ty) = ty {
        if !reader.admits_type(ty) {
            return format!(
                "type narrowed: the writer allows {} but the reader only {}",
                type_list(writer),
                type_list(reader)
            );
        }
    }
    let mut diffs = Vec::new();
    let show = |v: &Option<Value>| v.as_ref().map_or("none".to_string(), Value::to_string);
    let pairs: [(&str, Option<Value>, Option<Value>); 7] = [
        (
            "const",
            writer.const_value.clone(),
            reader.const_value.clone(),
        ),
        (
            "enum",
            writer.enum_values.clone().map(Value::Array),
            reader.enum_values.clone().map(Value::Array),
        ),
        (
            "format",
            writer.format.clone().map(Value::String),
            reader.format.clone().map(Value::String),
        ),
        (
            "minimum",
            writer.minimum.clone().map(Value::Number),
            reader.minimum.clone().map(Value::Number),
        ),
        (
            "maximum",
            writer.maximum.clone().map(Value::Number),
            reader.maximum.clone().map(Value::Number),
        ),
        (
            "minLength",
            writer.min_length.map(Value::from),
            reader.min_length.map(Value::from),
        ),
        (
            "maxLength",
            writer.max_length.map(Value::from),
            reader.max_length.map(Value::from),
        ),
    ];
    for (keyword, w, r) in pairs {
        if w != r {
            diffs.push(format!("{keyword} {} -> {}", show(&w), show(&r)));
        }
    }
    if writer.types != reader.types {
        diffs.insert(
            0,
            format!("type {} -> {}", type_list(writer), type_list(reader)),
        );
    }
    if diffs.is_empty() {
        "the reader's schema accepts fewer values".to_string()
    } else {
        format!("values narrowed: {}", diffs.join(", "))
    }
}

fn type_list(node: &Node) -> String {
    match &node.types {
        None => "any type".to_string(),
        Some(types) => {
            let names: Vec<String> = types.iter().map(Ty::to_string).collect();
            format!("[{}]", names.join(", "))
        }
    }
}
