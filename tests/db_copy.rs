//! `wssh db copy --from PATH_OR_URL --to URL` (issue 16): an install moved from its database
//! (the SQLite file; the PostgreSQL one with `WSSH_TEST_BACKEND=postgres`) into a fresh
//! PostgreSQL database keeps every row: a server on the copy lets the same users sign in with
//! the same passwords and accepts the same tokens. Needs `WSSH_TEST_DATABASE_URL` (the test
//! says so and passes without it; `.ci/run` sets it).

mod support;

use std::process::Command;

use serde_json::json;
use support::{Server, default_config, password_auth, token_auth};
use wssh_store_postgres::scratch::ScratchDatabase;

fn db_copy(from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wssh")).args(["db", "copy", "--from", from, "--to", to]).output().unwrap()
}

#[tokio::test]
async fn an_install_copied_into_postgresql_keeps_its_users_tokens_and_sessions() {
    let Some(destination) = ScratchDatabase::from_env("db_copy") else {
        eprintln!("WSSH_TEST_DATABASE_URL is not set: db copy not run");
        return;
    };
    let mut source = Server::start();
    let client = source.client();
    support::create_user(&client, "alice", "alice-password-1").await;
    let (identifier, secret) = support::login(&client, "alice", "alice-password-1").await;
    let created = client
        .create(
            "/sessions",
            &json!({ "authorization": support::admin(), "session": { "name": "top", "cmd": "top", "args": [], "dir": "/" } }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let wrong = client.list("/sessions", &json!({ "authorization": password_auth("alice", "wrong") })).await;
    assert_eq!(wrong.status, 401);
    assert!(source.terminate().success());

    let copied = db_copy(&source.database_location(), destination.url());
    let stdout = String::from_utf8_lossy(&copied.stdout);
    assert!(copied.status.success(), "{stdout}{}", String::from_utf8_lossy(&copied.stderr));
    assert!(stdout.contains("users: 2 of 2 rows"), "{stdout}");
    assert!(stdout.contains("access_tokens: 1 of 1 rows"), "{stdout}");
    assert!(stdout.contains("login_failures: 1 of 1 rows"), "{stdout}");
    assert!(stdout.contains("counts verified"), "{stdout}");
    assert!(!stdout.contains("password"), "no secret is printed");

    // A server on the copy: the same password, the same token, the same sessions; new rows get
    // fresh ids after the copied ones.
    let root = tempfile::tempdir().unwrap();
    let config = default_config();
    std::fs::write(root.path().join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let copy =
        Server::spawn(root.path(), &["--config", "config.json", "--data-dir", "data", "--database", destination.url()]);
    let on_copy = copy.client();
    let listed = on_copy.list("/sessions", &json!({ "authorization": token_auth(&identifier, &secret) })).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.text.contains("\"top\""), "{}", listed.text);
    support::login(&on_copy, "alice", "alice-password-1").await;
    support::create_user(&on_copy, "bob", "bob-password-1").await;
    support::login(&on_copy, "bob", "bob-password-1").await;
    drop(copy);

    // A destination that already holds users is refused, and left as it was.
    let again = db_copy(&source.database_location(), destination.url());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds users"));
    // A missing source file is a clear error, not a new empty database.
    let missing = db_copy("/nonexistent/wssh.db", destination.url());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no database file"));
}
