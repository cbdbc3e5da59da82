//! This node in a cluster: its id and the URL other nodes reach it at, the heartbeat that
//! mirrors its live shells into the shared registry (and ends the ones another node was asked
//! to end), and leaving the registry on a clean stop. The registry's rules are `wssh-core`'s
//! (`wssh_core::cluster`).

use std::sync::{Mutex, OnceLock, PoisonError};

use wssh_auth::node::NodeKey;
use wssh_core::cluster::{HEARTBEAT_INTERVAL, ShellClientRecord, ShellRecord};

use crate::SharedState;
use crate::shell::registry::LiveShell;

/// This node.
#[derive(Debug)]
pub(crate) struct Node {
    /// Its id: random for each start, so a restarted node is a new one.
    pub(crate) id: String,
    /// The URL other nodes reach it at (`node_url`, else its first listener).
    url: Mutex<Option<String>>,
    /// The cluster's node key, once read from the store.
    key: OnceLock<NodeKey>,
}

impl Default for Node {
    fn default() -> Self {
        let mut bytes = [0u8; 6];
        wssh_auth::secret::fill_random(&mut bytes);
        let id: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        Node { id, url: Mutex::new(None), key: OnceLock::new() }
    }
}

impl Node {
    /// The URL other nodes reach this one at.
    pub(crate) fn url(&self) -> Option<String> {
        self.url.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sets the URL, unless one is set already.
    pub(crate) fn set_url_if_unset(&self, url: String) {
        self.url.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(url);
    }

    /// Sets the URL.
    pub(crate) fn set_url(&self, url: String) {
        *self.url.lock().unwrap_or_else(PoisonError::into_inner) = Some(url);
    }

    /// The cluster's node key (read from the store once; call from a blocking thread).
    pub(crate) fn key(&self, state: &crate::AppState) -> Option<NodeKey> {
        if let Some(key) = self.key.get() {
            return Some(key.clone());
        }
        match state.services.node_key() {
            Ok(key) => Some(self.key.get_or_init(|| key).clone()),
            Err(error) => {
                tracing::warn!(%error, "cannot read the node key");
                None
            }
        }
    }
}

/// A live shell as the registry holds it.
fn record(node: &str, shell: &LiveShell) -> ShellRecord {
    let info = shell.info();
    ShellRecord {
        id: info.id,
        node: node.to_owned(),
        owner: info.owner,
        owner_id: shell.owner_id,
        session: info.session,
        created_at: info.created_at.0,
        cols: info.size.cols,
        rows: info.size.rows,
        output_bytes: info.output_bytes,
        clients: info
            .clients
            .iter()
            .map(|client| ShellClientRecord { user: client.user.clone(), mode: client.mode.name().to_owned() })
            .collect(),
        detached_since: info.detached_since.map(|since| since.0),
    }
}

/// Writes a heartbeat every [`HEARTBEAT_INTERVAL`], and at once when a shell starts or ends;
/// ends the shells another node asked to end. Runs until the server stops.
pub(crate) async fn heartbeat(state: SharedState) {
    let mut stopping = state.stopping();
    let mut failing = false;
    loop {
        let Some(url) = state.node.url() else { return };
        let records: Vec<ShellRecord> =
            state.shells.all_live().iter().map(|shell| record(&state.node.id, shell)).collect();
        let beat_state = state.clone();
        let beat = tokio::task::spawn_blocking(move || {
            beat_state.services.cluster_heartbeat(&beat_state.node.id, &url, &records)
        })
        .await;
        match beat {
            Ok(Ok(ending)) => {
                if failing {
                    tracing::info!("cluster heartbeat written again");
                    failing = false;
                }
                for id in ending {
                    if let Some(shell) = state.shells.get(&id) {
                        tracing::info!(shell = %crate::shell::registry::short(&id), "shell ended on another node's request");
                        shell.end();
                    }
                }
            }
            Ok(Err(error)) if !failing => {
                tracing::warn!(%error, "cannot write the cluster heartbeat");
                failing = true;
            }
            _ => {}
        }
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
            () = state.shells.changed.notified() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// Takes this node and its shells out of the registry (a clean stop).
pub(crate) async fn leave(state: SharedState) {
    let result = tokio::task::spawn_blocking(move || state.services.leave_cluster(&state.node.id)).await;
    match result {
        Ok(Ok(())) => tracing::info!("left the cluster registry"),
        Ok(Err(error)) => tracing::warn!(%error, "cannot leave the cluster registry"),
        Err(_) => {}
    }
}
