//! The audit log's writer: every event goes to the store's append-only table and, when the
//! operator asked for it (`--audit-log`), as one JSON line to a file or standard error.
//!
//! Failed logins and lockouts are what an attacker can produce at will; they are recorded
//! within a budget per client address ([`FAILURES_PER_MINUTE`] a minute), so that a flood
//! cannot grow the table without bound. Everything else is recorded always.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use wssh_domain::audit::{Actor, AuditEvent, AuditRecord, AuditVia};
use wssh_store::Store;

use crate::{AuthMethod, Principal};

/// Failed-login and lockout events recorded per client address and minute; more are counted
/// in the server log only.
pub const FAILURES_PER_MINUTE: u32 = 60;

/// Addresses the failure budget tracks at once.
const BUDGET_ADDRESSES: usize = 4096;

/// The actor of an action done by `principal`.
pub fn actor(principal: &Principal) -> Actor {
    let via = match &principal.method {
        AuthMethod::Password => AuditVia::Password,
        AuthMethod::Token(identifier) => AuditVia::Token { token: identifier.as_str().to_owned() },
        AuthMethod::Login(login) => AuditVia::Login { login: login.as_str().to_owned() },
    };
    Actor { user_id: principal.user_id.0, username: principal.username.as_str().to_owned(), via }
}

/// Appends audit events to the store and, when set, to a JSON-lines stream.
pub struct Auditor {
    store: Arc<dyn Store>,
    stream: Option<Mutex<Box<dyn Write + Send>>>,
    budget: Mutex<Budget>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").field("stream", &self.stream.is_some()).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Budget {
    minute: i64,
    spent: HashMap<IpAddr, u32>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(0))
}

impl Auditor {
    /// An auditor appending to `store`'s audit log.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Auditor { store, stream: None, budget: Mutex::new(Budget::default()) }
    }

    /// Also writes every event as one JSON line to `stream`.
    #[must_use]
    pub fn with_stream(mut self, stream: Box<dyn Write + Send>) -> Self {
        self.stream = Some(Mutex::new(stream));
        self
    }

    /// Records `event`, done by `actor` (`None`: by no one signed in, or by the server). A
    /// failure to store it is logged, never raised: the action it describes has happened.
    pub fn record(&self, actor: Option<Actor>, event: AuditEvent) {
        // With a stream, the store's append and the stream's line happen under its lock, so
        // that the stream's order is the log's (events are recorded from many threads).
        let stream = self.stream.as_ref().map(|stream| stream.lock().unwrap_or_else(PoisonError::into_inner));
        let at_ms = now_ms();
        let record = match self.store.append_audit(at_ms, actor.as_ref(), &event) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(%error, kind = event.kind(), "cannot append to the audit log");
                AuditRecord { id: 0, at_ms, actor, event }
            }
        };
        if let Some(mut stream) = stream {
            let Ok(mut line) = serde_json::to_vec(&record) else { return };
            line.push(b'\n');
            if let Err(error) = stream.write_all(&line).and_then(|()| stream.flush()) {
                tracing::error!(%error, "cannot write to the audit stream");
            }
        }
    }

    /// Records `event` by `principal`.
    pub fn record_by(&self, principal: &Principal, event: AuditEvent) {
        self.record(Some(actor(principal)), event);
    }

    /// Records a failed login or a lockout from `client`, within the address's budget.
    pub(crate) fn record_failure(&self, client: Option<IpAddr>, event: AuditEvent) {
        if let Some(client) = client
            && !self.spend(client)
        {
            tracing::info!(kind = event.kind(), "audit budget of the address spent; event not recorded");
            return;
        }
        self.record(None, event);
    }

    fn spend(&self, client: IpAddr) -> bool {
        let minute = now_ms() / 60_000;
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        if budget.minute != minute {
            budget.minute = minute;
            budget.spent.clear();
        }
        if budget.spent.len() >= BUDGET_ADDRESSES && !budget.spent.contains_key(&client) {
            return false;
        }
        let spent = budget.spent.entry(client).or_insert(0);
        *spent += 1;
        *spent <= FAILURES_PER_MINUTE
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use wssh_domain::audit::{AuditQuery, LoginFailure, LoginMethod, Surface};
    use wssh_store::AuditStore;
    use wssh_store_sqlite::SqliteStore;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stores_streams_and_budgets_failures() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("a.db")).unwrap());
        let lines = Lines::default();
        let auditor = Auditor::new(store.clone()).with_stream(Box::new(lines.clone()));
        let failed = AuditEvent::LoginFailed {
            surface: Surface::LoginApi,
            method: LoginMethod::Token,
            client: Some("10.0.0.9".into()),
            username: None,
            reason: LoginFailure::InvalidCredentials,
        };
        let client: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..3 * FAILURES_PER_MINUTE {
            auditor.record_failure(Some(client), failed.clone());
        }
        auditor.record(None, AuditEvent::PasswordChanged { user: "bob".into() });
        let stored = store.query_audit(&AuditQuery { limit: 1000, ..AuditQuery::default() }).unwrap();
        // 180 failures: 60 recorded within one minute, at most 120 if a minute boundary fell
        // in between; and the other event.
        let budget = u64::from(FAILURES_PER_MINUTE);
        assert!((budget + 1..=2 * budget + 1).contains(&stored.total), "{}", stored.total);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let streamed: Vec<AuditRecord> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(streamed.len() as u64, stored.total, "every stored event is streamed, one per line");
        assert_eq!(streamed.last().unwrap(), &stored.events[0]);
        assert!(text.lines().last().unwrap().contains(r#""kind":"password.changed""#));
    }
}
