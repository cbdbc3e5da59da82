//! The audit log: reading it (`audit:read`), and the events of shells, share links and
//! recordings, which the layers that run them report here.

use wssh_auth::Principal;
use wssh_domain::Permission;
use wssh_domain::audit::{AuditEvent, AuditQuery};
pub use wssh_store::AuditPage;

use crate::policy;
use crate::{CoreError, Services};

/// The most events one page holds.
pub const MAX_AUDIT_PAGE: u64 = 500;

impl Services {
    /// One page of the audit log, newest first: `audit:read`. The page size is capped at
    /// [`MAX_AUDIT_PAGE`].
    pub fn audit_log(&self, principal: &Principal, mut query: AuditQuery) -> Result<AuditPage, CoreError> {
        policy::require(principal, Permission::AuditRead)?;
        query.limit = query.limit.clamp(1, MAX_AUDIT_PAGE);
        Ok(self.store().query_audit(&query)?)
    }

    /// Records an event done by `principal` (shells, share links, recordings).
    pub fn audit(&self, principal: &Principal, event: AuditEvent) {
        self.auth.audit().record_by(principal, event);
    }

    /// Records an event the server did on its own (a shell ending, retention).
    pub fn audit_server(&self, event: AuditEvent) {
        self.auth.audit().record(None, event);
    }
}
