//! [`RecordingStore`] on SQLite. Its writes do not move the change counter: no cache keeps
//! recordings.

use rusqlite::{OptionalExtension, Row, params, params_from_iter, types::Value};
use wssh_domain::{Recording, RecordingQuery, Timestamp, UserId};

use wssh_store::{RecordingEnd, RecordingStore, StoreError};

use crate::SqliteStore;

const COLUMNS: &str =
    "id, file, session, owner, owner_id, cols, rows, started_at, ended_at, exit_status, output_bytes, dropped_bytes";

fn load(row: &Row<'_>) -> Result<Recording, rusqlite::Error> {
    Ok(Recording {
        id: row.get(0)?,
        file: row.get(1)?,
        session: row.get(2)?,
        owner: row.get(3)?,
        owner_id: UserId(row.get(4)?),
        cols: row.get(5)?,
        rows: row.get(6)?,
        started_at: Timestamp(row.get(7)?),
        ended_at: row.get::<_, Option<i64>>(8)?.map(Timestamp),
        exit_status: row.get(9)?,
        output_bytes: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
        dropped_bytes: u64::try_from(row.get::<_, i64>(11)?).unwrap_or(0),
    })
}

fn count(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

impl SqliteStore {
    fn find_recording_where(&self, column: &str, value: &str) -> Result<Option<Recording>, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM recordings WHERE {column} = ?1"))
            .and_then(|mut statement| statement.query_row([value], load).optional())
            .map_err(StoreError::backend)
    }
}

impl RecordingStore for SqliteStore {
    fn insert_recording(&self, recording: &Recording) -> Result<(), StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        connection
            .prepare_cached(&format!(
                "INSERT INTO recordings ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ))
            .and_then(|mut statement| {
                statement.execute(params![
                    recording.id,
                    recording.file,
                    recording.session,
                    recording.owner,
                    recording.owner_id.0,
                    recording.cols,
                    recording.rows,
                    recording.started_at.0,
                    recording.ended_at.map(|at| at.0),
                    recording.exit_status,
                    count(recording.output_bytes),
                    count(recording.dropped_bytes),
                ])
            })
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn end_recording(&self, id: &str, end: &RecordingEnd) -> Result<(), StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        connection
            .prepare_cached(
                "UPDATE recordings SET ended_at = ?2, exit_status = ?3, output_bytes = ?4, dropped_bytes = ?5
                 WHERE id = ?1",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    end.ended_at.0,
                    end.exit_status,
                    count(end.output_bytes),
                    count(end.dropped_bytes)
                ])
            })
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn find_recording(&self, id: &str) -> Result<Option<Recording>, StoreError> {
        self.find_recording_where("id", id)
    }

    fn find_recording_by_file(&self, file: &str) -> Result<Option<Recording>, StoreError> {
        self.find_recording_where("file", file)
    }

    fn list_recordings(&self, query: &RecordingQuery) -> Result<(u64, Vec<Recording>), StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(owner) = &query.owner {
            conditions.push("owner = ?");
            values.push(Value::Text(owner.clone()));
        }
        if let Some(session) = &query.session {
            conditions.push("session = ?");
            values.push(Value::Text(session.clone()));
        }
        if let Some(since) = query.since {
            conditions.push("started_at >= ?");
            values.push(Value::Integer(since.0));
        }
        if let Some(until) = query.until {
            conditions.push("started_at < ?");
            values.push(Value::Integer(until.0));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let total: i64 = connection
            .query_row(&format!("SELECT COUNT(*) FROM recordings{filter}"), params_from_iter(values.iter()), |row| {
                row.get(0)
            })
            .map_err(StoreError::backend)?;
        values.push(Value::Integer(count(query.limit)));
        values.push(Value::Integer(count(query.offset)));
        let mut statement = connection
            .prepare(&format!(
                "SELECT {COLUMNS} FROM recordings{filter} ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?"
            ))
            .map_err(StoreError::backend)?;
        let recordings = statement
            .query_map(params_from_iter(values.iter()), load)
            .map_err(StoreError::backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend)?;
        Ok((u64::try_from(total).unwrap_or(0), recordings))
    }

    fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let deleted = connection
            .prepare_cached("DELETE FROM recordings WHERE id = ?1")
            .and_then(|mut statement| statement.execute([id]))
            .map_err(StoreError::backend)?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(id: &str, owner: &str, session: &str, started_at: i64) -> Recording {
        Recording {
            id: id.into(),
            file: format!("{id}.cast"),
            session: session.into(),
            owner: owner.into(),
            owner_id: UserId(1),
            cols: 80,
            rows: 24,
            started_at: Timestamp(started_at),
            ended_at: None,
            exit_status: None,
            output_bytes: 0,
            dropped_bytes: 0,
        }
    }

    #[test]
    fn added_ended_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("r.db")).unwrap();
        store.insert_recording(&recording("a", "alice", "bash", 100)).unwrap();
        store.insert_recording(&recording("b", "bob", "bash", 200)).unwrap();
        store.insert_recording(&recording("c", "alice", "top", 300)).unwrap();
        assert!(store.insert_recording(&recording("c", "alice", "top", 300)).is_err());
        let end = RecordingEnd { ended_at: Timestamp(310), exit_status: Some(3), output_bytes: 42, dropped_bytes: 1 };
        store.end_recording("c", &end).unwrap();
        let c = store.find_recording("c").unwrap().unwrap();
        assert_eq!(
            (c.ended_at, c.exit_status, c.output_bytes, c.dropped_bytes),
            (Some(Timestamp(310)), Some(3), 42, 1)
        );
        assert_eq!(store.find_recording_by_file("c.cast").unwrap(), Some(c));
        let all = store.list_recordings(&RecordingQuery { limit: 10, ..RecordingQuery::default() }).unwrap();
        assert_eq!((all.0, all.1.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()), (3, vec!["c", "b", "a"]));
        let alice = RecordingQuery { owner: Some("alice".into()), limit: 10, ..RecordingQuery::default() };
        assert_eq!(store.list_recordings(&alice).unwrap().0, 2);
        let bash_early = RecordingQuery {
            session: Some("bash".into()),
            until: Some(Timestamp(150)),
            limit: 10,
            ..RecordingQuery::default()
        };
        assert_eq!(store.list_recordings(&bash_early).unwrap().1[0].id, "a");
        let page = store.list_recordings(&RecordingQuery { offset: 1, limit: 1, ..RecordingQuery::default() }).unwrap();
        assert_eq!(page.1[0].id, "b");
        assert!(store.delete_recording("b").unwrap());
        assert!(!store.delete_recording("b").unwrap());
        assert_eq!(store.find_recording("b").unwrap(), None);
    }
}
