//! Tidy checks run as a test: the layers depend downward only, every crate is named in
//! docs/architecture.md, and every Rust file starts with a `//!` doc saying what it holds.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Package name → names of every package it reaches through normal (non-dev) dependencies.
fn reachable_dependencies() -> HashMap<String, HashSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustc = Command::new("rustc").arg("-vV").output().expect("rustc runs");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names its host");
    // Only this platform's dependencies: they are the ones a build has already fetched.
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host])
        .current_dir(project_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| (package["id"].as_str().unwrap(), package["name"].as_str().unwrap()))
        .collect();
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let normal = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dep| dep["dep_kinds"].as_array().unwrap().iter().any(|kind| kind["kind"].is_null()));
        edges.insert(node["id"].as_str().unwrap(), normal.map(|dep| dep["pkg"].as_str().unwrap()).collect());
    }
    let mut reach = HashMap::new();
    for member in metadata["workspace_members"].as_array().unwrap() {
        let start = member.as_str().unwrap();
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            for next in edges.get(id).into_iter().flatten() {
                if seen.insert(*next) {
                    stack.push(next);
                }
            }
        }
        reach.insert(names[start].to_owned(), seen.iter().map(|id| names[id].to_owned()).collect());
    }
    reach
}

#[test]
fn layers_depend_downward_only() {
    let reach = reachable_dependencies();
    let forbidden: &[(&str, &[&str])] = &[
        ("wssh-domain", &["tokio", "hyper", "rusqlite", "argon2", "nix", "wssh-store", "wssh-auth", "wssh-http"]),
        ("wssh-store", &["tokio", "hyper", "argon2", "wssh-auth", "wssh-http"]),
        ("wssh-auth", &["tokio", "hyper", "wssh-http"]),
        ("wssh-pty", &["hyper", "rusqlite", "argon2", "wssh-store", "wssh-auth", "wssh-http"]),
        ("wssh-http", &["wssh"]),
    ];
    for (krate, banned) in forbidden {
        let reached = reach.get(*krate).unwrap_or_else(|| panic!("{krate} is a workspace member"));
        for name in *banned {
            assert!(!reached.contains(*name), "{krate} must not reach {name}");
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let root = project_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask/src", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10);
    let missing: Vec<_> = files
        .iter()
        .filter(|path| !path.components().any(|part| part.as_os_str() == "target"))
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a //! header: {missing:?}");
}

#[test]
fn architecture_doc_names_every_crate() {
    let root = project_root();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(doc.contains(&format!("`crates/{name}`")), "docs/architecture.md does not describe crates/{name}");
    }
}
