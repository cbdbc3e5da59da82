//! The cluster's registry of live shells: every node writes its own shells with a heartbeat,
//! every node reads everyone's. A live shell stays on the node that runs its program; the
//! registry says where it is, so another node can list it, carry a client to it, or ask its
//! node to end it.

use wssh_domain::UserId;

use crate::StoreError;

/// One client attached to a live shell, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellClientRecord {
    /// Who (a user name, or `share:ID`).
    pub user: String,
    /// `control` or `observe`.
    pub mode: String,
}

impl ShellClientRecord {
    /// A list of clients as both stores keep it: a JSON array of `{"user", "mode"}`.
    pub fn list_to_json(clients: &[ShellClientRecord]) -> String {
        let list: Vec<serde_json::Value> =
            clients.iter().map(|client| serde_json::json!({ "user": client.user, "mode": client.mode })).collect();
        serde_json::Value::Array(list).to_string()
    }

    /// Reads [`ShellClientRecord::list_to_json`] back; anything unreadable reads as no clients.
    pub fn list_from_json(text: &str) -> Vec<ShellClientRecord> {
        let Ok(serde_json::Value::Array(list)) = serde_json::from_str::<serde_json::Value>(text) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|client| {
                Some(ShellClientRecord {
                    user: client.get("user")?.as_str()?.to_owned(),
                    mode: client.get("mode")?.as_str()?.to_owned(),
                })
            })
            .collect()
    }
}

/// A live shell as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellRecord {
    /// The shell's id.
    pub id: String,
    /// The node that runs it.
    pub node: String,
    /// The owner's name.
    pub owner: String,
    /// The owner's id.
    pub owner_id: UserId,
    /// The session it was started from.
    pub session: String,
    /// When it started, in seconds since the Unix epoch.
    pub created_at: i64,
    /// The terminal's width.
    pub cols: u16,
    /// The terminal's height.
    pub rows: u16,
    /// How many bytes of output it has produced.
    pub output_bytes: u64,
    /// Its clients.
    pub clients: Vec<ShellClientRecord>,
    /// Since when it has had no client, in seconds since the Unix epoch.
    pub detached_since: Option<i64>,
}

/// A node's heartbeat: who it is, where others reach it, and its shells now.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat<'a> {
    /// The node's id.
    pub node: &'a str,
    /// The URL other nodes reach it at.
    pub url: &'a str,
    /// Now, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// Nodes not seen since this time (milliseconds) are taken for dead and forgotten.
    pub expire_before_ms: i64,
    /// Every live shell of the node.
    pub shells: &'a [ShellRecord],
}

/// The cluster's live shells, shared by every node on the store.
pub trait ShellRegistryStore: Send + Sync {
    /// Records the node as alive with exactly `heartbeat.shells`, forgets dead nodes with their
    /// shells, and returns the ids of the node's shells that another node asked to end.
    fn heartbeat(&self, heartbeat: &Heartbeat<'_>) -> Result<Vec<String>, StoreError>;
    /// Every shell of the nodes seen since `alive_since_ms` that no node asked to end, each
    /// with its node's URL.
    fn cluster_shells(&self, alive_since_ms: i64) -> Result<Vec<(ShellRecord, String)>, StoreError>;
    /// Asks the node that runs shell `id` to end it at its next heartbeat; `false` when the
    /// registry has no such shell, or it was asked already.
    fn request_shell_end(&self, id: &str) -> Result<bool, StoreError>;
    /// Forgets the node and its shells (it is stopping).
    fn leave_cluster(&self, node: &str) -> Result<(), StoreError>;
}
