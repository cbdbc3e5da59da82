//! The storage story (`wssh_store::story`) run against a real SQLite file, and what is
//! SQLite's own: migrations, and everything surviving a reopened file.

use wssh_store::{SessionStore, TokenStore, story};
use wssh_store_sqlite::{MIGRATIONS, SqliteStore};

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("wssh.db")).unwrap();
    (dir, store)
}

#[test]
fn storage_story() {
    let (dir, store) = open();
    assert_eq!(store.migration_status().unwrap().applied, MIGRATIONS.last().unwrap().version);
    story::users_tokens_sessions_and_logins(&store);

    // Everything survives reopening the file.
    drop(store);
    let reopened = SqliteStore::open(&dir.path().join("wssh.db")).unwrap();
    assert_eq!(reopened.find_session("bash").unwrap().unwrap().spec.cmd, "zsh");
    assert_eq!(reopened.list_tokens(None).unwrap().len(), 1);
    assert!(reopened.migrate().unwrap().is_empty());
}

#[test]
fn roles_profiles_otp_keys_and_app_tokens() {
    let (_dir, store) = open();
    story::roles_profiles_otp_keys_and_app_tokens(&store);
}

#[test]
fn the_generation_moves_with_every_committed_change_and_only_then() {
    let (_dir, store) = open();
    story::the_generation_moves_with_every_committed_change_and_only_then(&store);
}

#[test]
fn the_shell_registry_follows_heartbeats() {
    let (_dir, store) = open();
    story::the_shell_registry_follows_heartbeats(&store);
}
