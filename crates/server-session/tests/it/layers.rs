//! The library's top-level modules form layers (ARCHITECTURE.md, "Modules"):
//! each imports only from layers below its own, so no two modules depend on
//! each other, directly or through others.

use std::collections::BTreeMap;
use std::path::Path;

/// Each layer's modules, lowest first.
const LAYERS: &[&[&str]] = &[
    &["clock", "id", "msgpack", "users"],
    &["cookie", "record"],
    &["store"],
    &["error"],
    &["change", "value", "config"],
    &["engine"],
    &["session"],
    &["sessions"],
    &["admin", "adapters", "fuzzing"],
];

/// The top-level modules each top-level module names as `crate::module`,
/// outside comments and test modules.
fn imports(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path()),
            );
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let top = relative.iter().next().unwrap().to_str().unwrap();
        let module = top.trim_end_matches(".rs").to_owned();
        if module == "lib" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let names = found.entry(module.clone()).or_default();
        for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let rest = rest.strip_prefix('{').unwrap_or(rest);
                // `crate::{a, b::c}` names several.
                let group = if line[at..].starts_with("crate::{") {
                    rest.split('}').next().unwrap().split(',').collect::<Vec<_>>()
                } else {
                    vec![rest]
                };
                for item in group {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty()
                        && name != module
                        && name.starts_with(|c: char| c.is_ascii_lowercase())
                    {
                        names.push(name);
                    }
                }
            }
        }
    }
    found
}

#[test]
fn modules_import_only_from_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer_of = |module: &str| LAYERS.iter().position(|layer| layer.contains(&module));
    let mut wrong = Vec::new();
    for (module, names) in imports(&src) {
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{module} is in no layer: add it to LAYERS and ARCHITECTURE.md"
            ));
            continue;
        };
        for name in names {
            match layer_of(&name) {
                Some(layer) if layer < own => {}
                // An item re-exported at the crate root, not a module.
                None if !src.join(&name).exists() && !src.join(format!("{name}.rs")).exists() => {}
                _ => wrong.push(format!("{module} imports {name}, which is not below it")),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
