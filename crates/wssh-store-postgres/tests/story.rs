//! The storage story (`crates/wssh-store/tests/shared/story.rs`) on PostgreSQL, each test in a
//! fresh database on the server named by `WSSH_TEST_DATABASE_URL`; when it is not set these
//! tests say so and pass (`.ci/run` sets it).

#[path = "../../wssh-store/tests/shared/story.rs"]
mod story;

use std::sync::Arc;
use std::time::Duration;

use wssh_store::Store;
use wssh_store_postgres::PgStore;
use wssh_store_postgres::scratch::ScratchDatabase;

struct Postgres {
    database: ScratchDatabase,
}

impl story::Backend for Postgres {
    fn open(&self) -> Arc<dyn Store> {
        let store = PgStore::connect(self.database.url()).unwrap();
        assert!(store.is_listening(), "the listener is up once the store is handed out");
        Arc::new(store)
    }

    fn settle(&self) {
        // The store's own NOTIFYs come back to its listener within milliseconds.
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn backend(test: &str) -> Option<Postgres> {
    let database = ScratchDatabase::from_env(test);
    if database.is_none() {
        eprintln!("WSSH_TEST_DATABASE_URL is not set: {test} not run on PostgreSQL");
    }
    database.map(|database| Postgres { database })
}

#[test]
fn storage_story() {
    let Some(postgres) = backend("storage_story") else { return };
    story::storage_story(&postgres);
    let store = PgStore::connect(postgres.database.url()).unwrap();
    let status = store.migration_status().unwrap();
    assert_eq!(status.applied, status.latest);
    assert!(store.migrate().unwrap().is_empty());
}

#[test]
fn roles_profiles_otp_keys_and_app_tokens() {
    let Some(postgres) = backend("roles_profiles") else { return };
    story::roles_profiles_otp_keys_and_app_tokens(&postgres);
}

#[test]
fn the_generation_moves_with_every_committed_change_and_only_then() {
    let Some(postgres) = backend("generation") else { return };
    story::the_generation_moves_with_every_committed_change_and_only_then(&postgres);
}
