//! The storage story (`shared/story.rs`) on a real SQLite file, and what only SQLite has.

#[path = "shared/story.rs"]
mod story;

use std::path::PathBuf;
use std::sync::Arc;

use wssh_store::{SqliteStore, Store};

/// A SQLite file in a temporary directory.
struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wssh.db");
        Sqlite { _dir: dir, path }
    }
}

impl story::Backend for Sqlite {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path).unwrap())
    }
}

#[test]
fn storage_story() {
    let sqlite = Sqlite::new();
    story::storage_story(&sqlite);
    let store = SqliteStore::open(&sqlite.path).unwrap();
    assert_eq!(store.migration_status().unwrap().applied, wssh_store::MIGRATIONS.last().unwrap().version);
    assert!(store.migrate().unwrap().is_empty());
}

#[test]
fn roles_profiles_otp_keys_and_app_tokens() {
    story::roles_profiles_otp_keys_and_app_tokens(&Sqlite::new());
}

#[test]
fn the_generation_moves_with_every_committed_change_and_only_then() {
    story::the_generation_moves_with_every_committed_change_and_only_then(&Sqlite::new());
}
