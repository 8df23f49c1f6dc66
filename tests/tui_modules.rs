//! The screen's modules form layers: no module of `src/tui/` uses one that uses it back, however
//! far round (the state below the parts of `update`, those below `update`, the loop on top; the
//! keymap and the mouse only turn events into commands). Read from the sources, so a new import
//! that closes a loop fails here with the loop named.

use std::collections::BTreeMap;
use std::path::Path;

/// Each module of `src/tui/` and the modules of `src/tui/` it names in code (comments aside).
fn imports() -> BTreeMap<String, Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tui");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut uses = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for prefix in ["super::", "crate::tui::"] {
                for (at, _) in line.match_indices(prefix) {
                    let rest = &line[at + prefix.len()..];
                    // `super::{a, b}` names several.
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        Some(list) => list.split('}').next().unwrap().split(',').collect(),
                        None => vec![rest],
                    };
                    for n in names {
                        let module: String = n
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        if !module.is_empty() && module != "super" && module != name {
                            uses.push(module);
                        }
                    }
                }
            }
        }
        uses.sort();
        uses.dedup();
        graph.insert(name, uses);
    }
    graph
}

/// A loop of imports, if there is one: the modules around it.
fn find_loop(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.iter().any(|n| n == node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next) {
                if let Some(cycle) = visit(next, graph, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.push(node.to_string());
        None
    }
    let mut done = Vec::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_of_the_screen_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(graph.len() >= 15, "{graph:?}");
    // The layers hold: the state imports none of the parts that change it.
    for part in [
        "app", "act", "menu", "takes", "answer", "stream", "mouse", "view", "run",
    ] {
        assert!(
            !graph["state"].contains(&part.to_string()),
            "state uses {part}"
        );
    }
    assert!(graph["app"].contains(&"mouse".to_string()), "{graph:?}");
    // The mouse only says what a pointer event asks (commands): it changes nothing itself.
    for part in ["app", "act", "menu", "takes", "answer", "stream"] {
        assert!(
            !graph["mouse"].contains(&part.to_string()),
            "mouse uses {part}"
        );
    }
    assert_eq!(find_loop(&graph), None, "{graph:?}");
    // The check finds a loop where there is one.
    let mut looped = graph.clone();
    looped.get_mut("state").unwrap().push("app".into());
    let found = find_loop(&looped).expect("a loop through state and app");
    assert!(found.contains(&"state".to_string()) && found.contains(&"app".to_string()));
}
