//! Many nodes on one store: the registry of live shells that every node writes with its
//! heartbeat, and the key nodes prove themselves to each other with.
//!
//! A live shell stays on the node that runs its program. The node keeps its own shells in
//! memory (the source of truth for them) and mirrors them here every heartbeat; the other
//! nodes read this registry to list the cluster's shells, to carry a client to the owning node,
//! and to ask it to end one. A node not seen for [`EXPIRY_HEARTBEATS`] heartbeats is taken for
//! dead: its shells leave the registry.

use std::time::Duration;

use wssh_auth::Principal;
pub use wssh_store::{Heartbeat, ShellClientRecord, ShellRecord};

use crate::{CoreError, Services, shells};

/// How often a node writes its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// After how many missed heartbeats a node is taken for dead.
pub const EXPIRY_HEARTBEATS: u32 = 3;

/// The setting that holds the key nodes sign their requests to each other with.
const NODE_KEY_SETTING: &str = "node_key";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The oldest heartbeat (milliseconds) of a node still taken for alive at `now_ms`.
pub fn alive_since(now_ms: i64) -> i64 {
    let expiry = HEARTBEAT_INTERVAL * EXPIRY_HEARTBEATS;
    now_ms - i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX)
}

impl Services {
    /// Writes this node's heartbeat with its shells; returns the ids of its shells that
    /// another node asked to end.
    pub fn cluster_heartbeat(&self, node: &str, url: &str, shells: &[ShellRecord]) -> Result<Vec<String>, CoreError> {
        let now_ms = now_ms();
        let beat = Heartbeat { node, url, now_ms, expire_before_ms: alive_since(now_ms), shells };
        Ok(self.store().heartbeat(&beat)?)
    }

    /// Removes this node and its shells from the registry (it is stopping).
    pub fn leave_cluster(&self, node: &str) -> Result<(), CoreError> {
        Ok(self.store().leave_cluster(node)?)
    }

    /// The shells of the other live nodes that `principal` may see, each with its node's URL.
    pub fn remote_shells(&self, principal: &Principal, node: &str) -> Result<Vec<(ShellRecord, String)>, CoreError> {
        let shells = self.store().cluster_shells(alive_since(now_ms()))?;
        Ok(shells
            .into_iter()
            .filter(|(shell, _)| shell.node != node && shells::may_see(principal, shell.owner_id))
            .collect())
    }

    /// The shell `id` if another live node runs it, with that node's URL (no permission is
    /// checked: the owning node checks the client's own credential).
    pub fn locate_remote_shell(&self, id: &str, node: &str) -> Result<Option<(ShellRecord, String)>, CoreError> {
        let shells = self.store().cluster_shells(alive_since(now_ms()))?;
        Ok(shells.into_iter().find(|(shell, _)| shell.id == id && shell.node != node))
    }

    /// Asks the node that runs shell `id` (another node) to end it, if `principal` may;
    /// `false` when there is no such shell or `principal` may not see it.
    pub fn end_remote_shell(&self, principal: &Principal, id: &str, node: &str) -> Result<bool, CoreError> {
        let Some((shell, _)) = self.locate_remote_shell(id, node)? else { return Ok(false) };
        if !shells::may_manage(principal, shell.owner_id) {
            return Ok(false);
        }
        Ok(self.store().request_shell_end(id)?)
    }

    /// The key nodes sign their requests to each other with: 32 random bytes made by the first
    /// node and shared through the store, never sent anywhere.
    pub fn node_key(&self) -> Result<wssh_auth::node::NodeKey, CoreError> {
        let create = || {
            let mut key = vec![0u8; 32];
            wssh_auth::secret::fill_random(&mut key);
            key
        };
        Ok(wssh_auth::node::NodeKey::new(self.store().setting_or_create(NODE_KEY_SETTING, &create)?))
    }
}
