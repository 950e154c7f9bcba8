//! The layout's rules, read from the source: arrows point down.
//!
//! A module's imports are the `crate::<top>` paths in its files (comments left out), so
//! `use crate::{model, net}` and a path written inline both count. The test fails with the
//! circle or the offending file named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a/b/c.rs` under src -> ["a", "b", "c"]; `a/mod.rs` -> ["a"].
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b` path used in a file, as ["a", "b", ...].
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let text = without_comments(text);
    let path = regex::Regex::new(r"crate::((?:\w+::)*\w+)").expect("regex");
    let group = regex::Regex::new(r"crate::\{([^}]*)\}").expect("regex");
    let mut out: Vec<Vec<String>> = path
        .captures_iter(&text)
        .map(|c| c[1].split("::").map(str::to_string).collect())
        .collect();
    for c in group.captures_iter(&text) {
        for item in c[1].split(',') {
            let item = item.trim();
            if !item.is_empty() {
                out.push(item.split("::").map(str::to_string).collect());
            }
        }
    }
    out
}

/// Top-level module -> the top-level modules its files import.
fn top_level_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_path(&file);
        let Some(top) = module.first().cloned() else {
            continue;
        };
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let entry = graph.entry(top.clone()).or_default();
        for path in crate_paths(&text) {
            if let Some(target) = path.first()
                && *target != top
            {
                entry.insert(target.clone());
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let graph = top_level_graph();
    assert!(
        graph.contains_key("scanner") && graph.contains_key("bot"),
        "{graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle: {}\ngraph: {graph:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_circle() {
    let mut graph = top_level_graph();
    graph
        .entry("model".to_string())
        .or_default()
        .insert("scanner".to_string());
    let cycle = find_cycle(&graph).expect("model -> scanner -> model is a circle");
    assert!(cycle.contains(&"model".to_string()), "{cycle:?}");
}

#[test]
fn the_scan_model_imports_nothing_of_the_crate() {
    let mut files = Vec::new();
    rust_files(&src().join("model"), &mut files);
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        let imports: Vec<String> = crate_paths(&text)
            .into_iter()
            .filter(|p| p.first().is_some_and(|t| t != "model"))
            .map(|p| p.join("::"))
            .collect();
        assert!(imports.is_empty(), "{} imports {imports:?}", file.display());
        assert!(
            !without_comments(&text).contains("super::super"),
            "{} reaches out of model",
            file.display()
        );
    }
}

#[test]
fn sources_do_not_import_each_other() {
    let mut files = Vec::new();
    rust_files(&src().join("sources"), &mut files);
    for file in files {
        let module = module_path(&file);
        let Some(own) = module.get(1) else { continue };
        let text = std::fs::read_to_string(&file).expect("read source");
        for path in crate_paths(&text) {
            if path.first().is_some_and(|t| t == "sources") {
                assert!(
                    path.get(1) == Some(own),
                    "{} imports {}",
                    file.display(),
                    path.join("::")
                );
            }
        }
    }
}
