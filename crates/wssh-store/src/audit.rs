//! The audit log's storage: append and query, nothing else. No method changes or deletes an
//! event, and the SQLite table refuses both (see migration 0007).

use wssh_domain::audit::{Actor, AuditEvent, AuditQuery, AuditRecord};

use crate::StoreError;

/// One page of the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// How many events match the query in all.
    pub total: u64,
    /// The page, newest first.
    pub events: Vec<AuditRecord>,
}

/// The audit log, append-only.
pub trait AuditStore: Send + Sync {
    /// Appends an event that happened at `at_ms` (milliseconds since the Unix epoch), done by
    /// `actor`; returns it as kept, with its id.
    fn append_audit(&self, at_ms: i64, actor: Option<&Actor>, event: &AuditEvent) -> Result<AuditRecord, StoreError>;
    /// The events matching `query`, newest first, and how many match in all.
    fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError>;
}
