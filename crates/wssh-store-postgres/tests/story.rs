//! The storage story (`wssh_store::story`) on PostgreSQL, each test in a fresh database on the
//! server named by `WSSH_TEST_DATABASE_URL`; when it is not set these tests say so and pass
//! (`.ci/run` sets it). Then what is PostgreSQL's own: migrations, reconnecting, and another
//! node's changes moving this node's generation.

use std::time::{Duration, Instant};

use wssh_domain::{NewUser, RoleKey, Username};
use wssh_store::{ChangeCounter, SessionStore, TokenStore, UserStore, story};
use wssh_store_postgres::PgStore;
use wssh_store_postgres::scratch::ScratchDatabase;

fn database(test: &str) -> Option<ScratchDatabase> {
    let database = ScratchDatabase::from_env(test);
    if database.is_none() {
        eprintln!("WSSH_TEST_DATABASE_URL is not set: {test} not run on PostgreSQL");
    }
    database
}

fn connect(database: &ScratchDatabase) -> PgStore {
    let store = PgStore::connect(database.url()).unwrap();
    assert!(store.is_listening(), "the listener is up once the store is handed out");
    store
}

#[test]
fn storage_story() {
    let Some(database) = database("storage_story") else { return };
    let store = connect(&database);
    let status = store.migration_status().unwrap();
    assert_eq!(status.applied, status.latest);
    story::users_tokens_sessions_and_logins(&store);

    // Everything is there for the next connection, and nothing is left to migrate.
    drop(store);
    let reopened = connect(&database);
    assert_eq!(reopened.find_session("bash").unwrap().unwrap().spec.cmd, "zsh");
    assert_eq!(reopened.list_tokens(None).unwrap().len(), 1);
    assert!(reopened.migrate().unwrap().is_empty());
}

#[test]
fn roles_profiles_otp_keys_and_app_tokens() {
    let Some(database) = database("roles_profiles") else { return };
    story::roles_profiles_otp_keys_and_app_tokens(&connect(&database));
}

#[test]
fn the_generation_moves_with_every_committed_change_and_only_then() {
    let Some(database) = database("generation") else { return };
    story::the_generation_moves_with_every_committed_change_and_only_then(&connect(&database));
}

#[test]
fn another_nodes_change_moves_the_generation_within_milliseconds() {
    let Some(database) = database("two_nodes") else { return };
    let (a, b) = (connect(&database), connect(&database));
    let before = b.generation();
    let started = Instant::now();
    a.create_user(&NewUser::new(Username::parse("alice").unwrap(), "$argon2id$x".into(), RoleKey::User)).unwrap();
    while b.generation() == before {
        assert!(started.elapsed() < Duration::from_secs(1), "node B did not hear of node A's change within 1 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!("node B's generation moved {:?} after node A's commit began", started.elapsed());
    assert!(b.find_user("alice").unwrap().is_some());
}

#[test]
fn nodes_starting_together_migrate_once() {
    let Some(database) = database("migrate_once") else { return };
    let url = database.url().to_owned();
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url).map(|store| store.migration_status().unwrap()))
        })
        .collect();
    for node in nodes {
        let status = node.join().unwrap().unwrap();
        assert_eq!(status.applied, status.latest);
    }
}

#[test]
fn a_lost_listener_turns_the_caches_off_until_it_is_back() {
    let Some(database) = database("listener_lost") else { return };
    let store = connect(&database);
    let before = store.generation();
    assert_eq!(store.generation(), before, "steady while listening");
    // End the listening connection from the server side, as a database restart would.
    let mut admin = postgres::Client::connect(database.url(), postgres::NoTls).unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'wssh-listener'",
            &[],
        )
        .unwrap();
    assert_eq!(ended.len(), 1, "one listening connection per store");
    let started = Instant::now();
    while store.is_listening() {
        assert!(started.elapsed() < Duration::from_secs(3), "the loss was not noticed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Deaf: every read of the generation is a new one, so nothing cached is served.
    if !store.is_listening() {
        let first = store.generation();
        assert_ne!(store.generation(), first);
    }
    while !store.is_listening() {
        assert!(started.elapsed() < Duration::from_secs(5), "the listener did not reconnect");
        std::thread::sleep(Duration::from_millis(5));
    }
    let back = store.generation();
    assert!(back > before, "the reconnect moved the generation");
    assert_eq!(store.generation(), back, "steady again once listening");
    // And it hears other nodes again.
    let other = connect(&database);
    other.create_user(&NewUser::new(Username::parse("bob").unwrap(), "$argon2id$x".into(), RoleKey::User)).unwrap();
    while store.generation() == back {
        assert!(started.elapsed() < Duration::from_secs(6), "no notification after the reconnect");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn the_shell_registry_follows_heartbeats() {
    let Some(database) = database("shell_registry") else { return };
    story::the_shell_registry_follows_heartbeats(&connect(&database));
}
