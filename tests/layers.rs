//! Imports point one way. For every crate of the workspace, the top-level modules (each file or
//! folder under `src/`) import each other without a cycle; and the harness's modules import
//! only from their own layer or the layers below it, as the table in `harness/src/lib.rs`
//! ("Layers") places them.
//!
//! A module imports another when one of its code lines (not a comment, not its unit tests)
//! names `crate::other` (also inside `crate::{…}`). The check reads text, so it needs no build
//! and names the file and line of each import that breaks a rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The workspace's member folders with a `src/`, from the root `Cargo.toml`.
fn crates() -> Vec<PathBuf> {
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| root().join(m.as_str().unwrap()))
        .filter(|dir| dir.join("src").is_dir())
        .collect()
}

/// One import: `from` names `to` at `at` (`file:line`).
#[derive(Debug, Clone)]
struct Import {
    from: String,
    to: String,
    at: String,
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The top-level modules of the crate whose sources are in `src`, each with its files.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            modules.insert(name, files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.insert(name, vec![path]);
        }
    }
    modules
}

/// The names `line` reaches as `crate::name` or inside `crate::{…}`.
fn named(line: &str) -> Vec<String> {
    let word = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut names = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|item| word(item.trim())));
        } else {
            names.push(word(rest));
        }
    }
    names
}

/// Every import between the top-level modules of the crate in `dir`.
fn imports(dir: &Path) -> (BTreeSet<String>, Vec<Import>) {
    let modules = modules(&dir.join("src"));
    let mut found = Vec::new();
    for (module, files) in &modules {
        for file in files {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            // A module's unit tests may reach anything.
            let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for to in named(line) {
                    if &to != module && modules.contains_key(&to) {
                        found.push(Import {
                            from: module.clone(),
                            to,
                            at: format!("{}:{}", file.strip_prefix(root()).unwrap().display(), n + 1),
                        });
                    }
                }
            }
        }
    }
    (modules.keys().cloned().collect(), found)
}

/// The modules that reach `start` again through imports, as one cycle (`a -> b -> a`), if any.
fn cycle_through(start: &str, imports: &[Import]) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap().clone();
        for import in imports.iter().filter(|i| i.from == last) {
            if import.to == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(import.to.clone()) {
                let mut longer = path.clone();
                longer.push(import.to.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_crate_has_an_import_cycle_between_its_top_level_modules() {
    let mut problems = Vec::new();
    for dir in crates() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (modules, imports) = imports(&dir);
        let mut reported = BTreeSet::new();
        for module in &modules {
            let Some(cycle) = cycle_through(module, &imports) else { continue };
            let mut members: Vec<String> = cycle[..cycle.len() - 1].to_vec();
            members.sort();
            if !reported.insert(members.clone()) {
                continue;
            }
            let lines: Vec<String> = cycle
                .windows(2)
                .map(|step| {
                    let at = imports.iter().find(|i| i.from == step[0] && i.to == step[1]).unwrap();
                    format!("    {} -> {} at {}", step[0], step[1], at.at)
                })
                .collect();
            problems.push(format!("{name}: {}\n{}", cycle.join(" -> "), lines.join("\n")));
        }
    }
    assert!(problems.is_empty(), "import cycles:\n{}", problems.join("\n"));
}

/// The harness's layers, in order, as its crate documentation's table lists them: rows
/// `//! | N. name | modules | … |`, each module in backticks.
fn harness_layers() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(root().join("harness/src/lib.rs")).unwrap();
    let mut layers = Vec::new();
    for line in text.lines() {
        let Some(row) = line.strip_prefix("//! | ") else { continue };
        let cells: Vec<&str> = row.split(" | ").collect();
        if cells.len() < 3 || !cells[0].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        let modules = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        layers.push((cells[0].to_string(), modules));
    }
    layers
}

#[test]
fn harness_modules_import_only_from_their_own_layer_or_below() {
    let layers = harness_layers();
    assert!(layers.len() >= 5, "the layer table in harness/src/lib.rs was not found: {layers:?}");
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, (_, modules))| modules.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let (modules, imports) = imports(&root().join("harness"));
    let unplaced: Vec<&String> = modules.iter().filter(|m| !layer_of.contains_key(m.as_str())).collect();
    assert!(unplaced.is_empty(), "harness modules in no layer of harness/src/lib.rs's table: {unplaced:?}");
    let upward: Vec<String> = imports
        .iter()
        .filter(|i| layer_of[i.to.as_str()] > layer_of[i.from.as_str()])
        .map(|i| {
            format!(
                "{} (layer {}) imports {} (layer {}) at {}",
                i.from, layers[layer_of[i.from.as_str()]].0, i.to, layers[layer_of[i.to.as_str()]].0, i.at
            )
        })
        .collect();
    assert!(upward.is_empty(), "imports from a layer above:\n{}", upward.join("\n"));
}

#[test]
fn the_check_sees_imports_in_paths_groups_and_not_in_comments() {
    assert_eq!(named("use crate::stack::Stack;"), ["stack"]);
    assert_eq!(named("use crate::{history::Op, system};"), ["history", "system"]);
    assert_eq!(named("let x = crate::infra::HARNESS_CLIENT; crate::report::write()"), ["infra", "report"]);
    let imports = vec![
        Import { from: "a".into(), to: "b".into(), at: "a.rs:1".into() },
        Import { from: "b".into(), to: "c".into(), at: "b.rs:1".into() },
        Import { from: "c".into(), to: "a".into(), at: "c.rs:1".into() },
    ];
    assert_eq!(cycle_through("a", &imports).unwrap(), ["a", "b", "c", "a"]);
    assert!(cycle_through("a", &imports[..2]).is_none());
}
