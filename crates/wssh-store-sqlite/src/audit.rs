//! [`AuditStore`] on SQLite. Its writes do not move the change counter: an appended event
//! changes nothing a cache keeps.

use rusqlite::{params, params_from_iter, types::Value};
use wssh_domain::audit::{Actor, AuditEvent, AuditQuery, AuditRecord};

use wssh_store::{AuditPage, AuditStore, StoreError};

use crate::SqliteStore;

impl AuditStore for SqliteStore {
    fn append_audit(&self, at_ms: i64, actor: Option<&Actor>, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        let data = serde_json::to_string(event).map_err(StoreError::backend)?;
        let actor_json = actor.map(serde_json::to_string).transpose().map_err(StoreError::backend)?;
        let connection = self.pool.get().map_err(StoreError::backend)?;
        connection
            .prepare_cached(
                "INSERT INTO audit_events (at_ms, kind, actor_id, actor_name, actor, subject, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    at_ms,
                    event.kind(),
                    actor.map(|actor| actor.user_id),
                    actor.map(|actor| actor.username.as_str()),
                    actor_json,
                    event.subject(),
                    data
                ])
            })
            .map_err(StoreError::backend)?;
        let id = connection.last_insert_rowid();
        Ok(AuditRecord { id, at_ms, actor: actor.cloned(), event: event.clone() })
    }

    fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(since) = query.since {
            conditions.push("at_ms >= ?");
            values.push(Value::Integer(since.0.saturating_mul(1000)));
        }
        if let Some(until) = query.until {
            conditions.push("at_ms < ?");
            values.push(Value::Integer(until.0.saturating_mul(1000)));
        }
        if let Some(user) = &query.user {
            conditions.push("(actor_name = ? OR subject = ?)");
            values.push(Value::Text(user.clone()));
            values.push(Value::Text(user.clone()));
        }
        if let Some(kind) = &query.kind {
            // A kind (`login.failed`) or a family (`login`): the family's kinds start with it
            // and a dot. Compared as text, never as a pattern.
            conditions.push("(kind = ? OR substr(kind, 1, ?) = ?)");
            let family = format!("{kind}.");
            values.push(Value::Text(kind.clone()));
            values.push(Value::Integer(i64::try_from(family.len()).unwrap_or(i64::MAX)));
            values.push(Value::Text(family));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let total: i64 = connection
            .query_row(&format!("SELECT COUNT(*) FROM audit_events{filter}"), params_from_iter(values.iter()), |row| {
                row.get(0)
            })
            .map_err(StoreError::backend)?;
        values.push(Value::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
        values.push(Value::Integer(i64::try_from(query.offset).unwrap_or(i64::MAX)));
        let mut statement = connection
            .prepare(&format!(
                "SELECT id, at_ms, actor, data FROM audit_events{filter}
                 ORDER BY id DESC LIMIT ? OFFSET ?"
            ))
            .map_err(StoreError::backend)?;
        let rows = statement
            .query_map(params_from_iter(values.iter()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(StoreError::backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend)?;
        let events = rows
            .into_iter()
            .map(|(id, at_ms, actor, data)| {
                let event: AuditEvent = serde_json::from_str(&data).map_err(StoreError::backend)?;
                let actor: Option<Actor> =
                    actor.as_deref().map(serde_json::from_str).transpose().map_err(StoreError::backend)?;
                Ok(AuditRecord { id, at_ms, actor, event })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AuditPage { total: u64::try_from(total).unwrap_or(0), events })
    }
}

#[cfg(test)]
mod tests {
    use wssh_domain::Timestamp;
    use wssh_domain::audit::{AuditVia, LoginFailure, LoginMethod, Surface, UNKNOWN_USER};

    use super::*;

    fn failed(username: Option<&str>) -> AuditEvent {
        AuditEvent::LoginFailed {
            surface: Surface::Alist,
            method: LoginMethod::Password,
            client: Some("127.0.0.1".into()),
            username: username.map(str::to_owned),
            reason: LoginFailure::InvalidCredentials,
        }
    }

    #[test]
    fn appends_queries_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db")).unwrap();
        let admin = Actor { user_id: 1, username: "admin".into(), via: AuditVia::Token { token: "42".into() } };
        let first = store.append_audit(1_000, None, &failed(Some(UNKNOWN_USER))).unwrap();
        let second =
            store.append_audit(2_000, Some(&admin), &AuditEvent::PasswordChanged { user: "bob".into() }).unwrap();
        store.append_audit(3_000, None, &failed(Some("bob"))).unwrap();
        assert!(second.id > first.id);

        let all = store.query_audit(&AuditQuery { limit: 10, ..AuditQuery::default() }).unwrap();
        assert_eq!(all.total, 3);
        assert_eq!(all.events.iter().map(|event| event.at_ms).collect::<Vec<_>>(), vec![3_000, 2_000, 1_000]);
        assert_eq!(all.events[1].actor.as_ref(), Some(&admin), "the actor comes back whole");

        let bob = store.query_audit(&AuditQuery { user: Some("bob".into()), limit: 10, ..AuditQuery::default() });
        assert_eq!(bob.unwrap().total, 2, "as subject and as the changed user");
        let by_admin =
            store.query_audit(&AuditQuery { user: Some("admin".into()), limit: 10, ..AuditQuery::default() });
        assert_eq!(by_admin.unwrap().events[0].event.kind(), "password.changed");
        let family = store.query_audit(&AuditQuery { kind: Some("login".into()), limit: 10, ..AuditQuery::default() });
        assert_eq!(family.unwrap().total, 2);
        let none = store.query_audit(&AuditQuery { kind: Some("log".into()), limit: 10, ..AuditQuery::default() });
        assert_eq!(none.unwrap().total, 0, "a family is a whole dotted prefix");
        let window =
            AuditQuery { since: Some(Timestamp(2)), until: Some(Timestamp(3)), limit: 10, ..AuditQuery::default() };
        assert_eq!(store.query_audit(&window).unwrap().events, vec![second.clone()]);
        let page = store.query_audit(&AuditQuery { offset: 1, limit: 1, ..AuditQuery::default() }).unwrap();
        assert_eq!((page.total, page.events), (3, vec![second]));

        let connection = store.pool.get().unwrap();
        assert!(connection.execute("UPDATE audit_events SET kind = 'x'", []).is_err(), "no update");
        assert!(connection.execute("DELETE FROM audit_events", []).is_err(), "no delete");
        assert_eq!(store.query_audit(&AuditQuery { limit: 10, ..AuditQuery::default() }).unwrap().total, 3);
    }
}
