//! The listener: a dedicated connection, on a thread of its own, that LISTENs for other
//! nodes' changes and moves the store's generation on every notification and reconnect.

use std::sync::{Arc, Weak};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use crate::{CHANNEL, Generation};

/// The listening connection's `application_name`.
pub(crate) const APPLICATION_NAME: &str = "wssh-listener";
/// How long one wait for a notification lasts before the store's liveness is checked.
const POLL: Duration = Duration::from_millis(250);
/// How often the connection is probed while no notification comes.
const PROBE_EVERY: u32 = 8;
/// The pause between reconnection attempts.
const RETRY: Duration = Duration::from_millis(200);
/// How long `start` waits for the first LISTEN before the store is handed out anyway.
const FIRST_LISTEN: Duration = Duration::from_secs(5);

/// Starts the listener thread; returns once it listens (or after [`FIRST_LISTEN`]). The
/// thread ends once the store is dropped.
pub(crate) fn start(config: postgres::Config, generation: &Arc<Generation>) {
    let (ready, listening) = std::sync::mpsc::channel();
    let weak = Arc::downgrade(generation);
    let spawned = std::thread::Builder::new().name("wssh-pg-listen".into()).spawn(move || run(&config, &weak, ready));
    match spawned {
        Ok(_) => {
            if listening.recv_timeout(FIRST_LISTEN).is_err() {
                tracing::warn!("PostgreSQL listener not connected yet: caches stay off until it is");
            }
        }
        Err(error) => tracing::error!(%error, "cannot start the PostgreSQL listener: caches stay off"),
    }
}

fn run(config: &postgres::Config, generation: &Weak<Generation>, ready: std::sync::mpsc::Sender<()>) {
    loop {
        let Some(strong) = generation.upgrade() else { return };
        match listen(config) {
            Ok(mut client) => {
                strong.set_listening(true);
                let _ = ready.send(());
                drop(strong);
                let outcome = receive(&mut client, generation);
                if let Some(strong) = generation.upgrade() {
                    strong.set_listening(false);
                }
                match outcome {
                    Ok(()) => return,
                    Err(error) => tracing::warn!(%error, "PostgreSQL listener lost; reconnecting"),
                }
            }
            Err(error) => tracing::debug!(%error, "PostgreSQL listener cannot connect; retrying"),
        }
        std::thread::sleep(RETRY);
    }
}

fn listen(config: &postgres::Config) -> Result<Client, postgres::Error> {
    let mut config = config.clone();
    // Named, so an operator (and a test) can tell it from the pool's connections.
    config.application_name(APPLICATION_NAME);
    let mut client = config.connect(NoTls)?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(client)
}

/// Moves the generation on every notification until the connection fails (an error) or the
/// store is dropped (`Ok`).
fn receive(client: &mut Client, generation: &Weak<Generation>) -> Result<(), postgres::Error> {
    let mut quiet = 0;
    loop {
        let mut received = false;
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(POLL);
            while let Some(notification) = waiting.next()? {
                received = true;
                let Some(strong) = generation.upgrade() else { return Ok(()) };
                if notification.payload() != strong.node {
                    strong.bump();
                }
            }
        }
        if generation.strong_count() == 0 {
            return Ok(());
        }
        quiet = if received { 0 } else { quiet + 1 };
        if quiet >= PROBE_EVERY {
            quiet = 0;
            client.simple_query("")?;
        }
    }
}
