//! Tidy checks run as a test: the layers depend downward only, the transport calls no store,
//! the store traits and the services reach no database driver, every crate is named in
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
        ("wssh-store", &["tokio", "hyper", "argon2", "wssh-auth", "wssh-http", "wssh-store-sqlite"]),
        ("wssh-store-sqlite", &["tokio", "hyper", "argon2", "wssh-auth", "wssh-core", "wssh-http"]),
        ("wssh-auth", &["tokio", "hyper", "wssh-http"]),
        ("wssh-pty", &["hyper", "rusqlite", "argon2", "wssh-store", "wssh-auth", "wssh-http"]),
        (
            "wssh-record",
            &[
                "tokio",
                "hyper",
                "http",
                "rusqlite",
                "argon2",
                "wssh-domain",
                "wssh-store",
                "wssh-auth",
                "wssh-core",
                "wssh-pty",
                "wssh-http",
            ],
        ),
        ("wssh-core", &["tokio", "hyper", "http", "wssh-pty", "wssh-http", "postgres", "wssh-store-postgres"]),
        ("wssh-http", &["wssh", "postgres", "tokio-postgres", "wssh-store-postgres"]),
        // The PostgreSQL store is a sibling of the SQLite one: it knows the store traits and
        // its driver, nothing above them.
        (
            "wssh-store-postgres",
            &["hyper", "argon2", "rusqlite", "wssh-store-sqlite", "wssh-auth", "wssh-core", "wssh-pty", "wssh-http"],
        ),
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

/// The names of a workspace member's direct normal (non-dev) dependencies, from its manifest.
fn direct_dependencies(krate: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(project_root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut names = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies && let Some((name, _)) = line.split_once(['=', '.']) {
            names.push(name.trim().to_owned());
        }
    }
    names
}

/// Database drivers and pools: what only a store implementation may depend on.
const DATABASE_DRIVERS: [&str; 9] = [
    "rusqlite",
    "r2d2",
    "r2d2_sqlite",
    "libsqlite3-sys",
    "postgres",
    "tokio-postgres",
    "r2d2_postgres",
    "sqlx",
    "wssh-store-postgres",
];

#[test]
fn the_transport_calls_no_store() {
    let dependencies = direct_dependencies("wssh-http");
    assert!(dependencies.iter().any(|name| name == "wssh-core"), "wssh-http goes through the services");
    for banned in ["wssh-store"].iter().chain(DATABASE_DRIVERS.iter()) {
        assert!(!dependencies.iter().any(|name| name == banned), "wssh-http must not depend on {banned}");
    }
    let mut files = Vec::new();
    rust_files(&project_root().join("crates/wssh-http/src"), &mut files);
    assert!(files.len() > 5);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for call in [".store()", "wssh_store::"] {
            assert!(!text.contains(call), "{} calls the store ({call}); go through wssh-core", path.display());
        }
    }
}

#[test]
fn the_store_traits_and_the_services_reach_no_database_driver() {
    let reach = reachable_dependencies();
    assert!(reach["wssh-core"].contains("wssh-store"));
    assert!(reach["wssh-store-sqlite"].contains("rusqlite"), "the check looks at the right names");
    for krate in ["wssh-store", "wssh-auth", "wssh-core", "wssh-http"] {
        for driver in DATABASE_DRIVERS.iter().chain(["wssh-store-sqlite"].iter()) {
            assert!(!reach[krate].contains(*driver), "{krate} must not reach {driver}");
        }
    }
}
