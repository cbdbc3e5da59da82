//! [`AuditStore`] and [`RecordingStore`] on PostgreSQL. Their writes announce nothing: an
//! appended event or a recording changes nothing a cache keeps.

use wssh_domain::audit::{Actor, AuditEvent, AuditQuery, AuditRecord};
use wssh_domain::{Recording, RecordingQuery, Timestamp, UserId};
use wssh_store::{AuditPage, AuditStore, RecordingEnd, RecordingStore, StoreError};

use crate::{PgStore, backend, clamp, get};

impl AuditStore for PgStore {
    fn append_audit(&self, at_ms: i64, actor: Option<&Actor>, event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        let data = serde_json::to_string(event).map_err(backend)?;
        let actor_json = actor.map(serde_json::to_string).transpose().map_err(backend)?;
        let row = self
            .connection()?
            .query_one(
                "INSERT INTO audit_events (at_ms, kind, actor_id, actor_name, actor, subject, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &at_ms,
                    &event.kind(),
                    &actor.map(|actor| actor.user_id),
                    &actor.map(|actor| actor.username.as_str()),
                    &actor_json,
                    &event.subject(),
                    &data,
                ],
            )
            .map_err(backend)?;
        Ok(AuditRecord { id: get(&row, 0)?, at_ms, actor: actor.cloned(), event: event.clone() })
    }

    fn query_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        // A kind (`login.failed`) or a family (`login`): compared as text, never as a pattern.
        let family = query.kind.as_ref().map(|kind| format!("{kind}."));
        let filter = "WHERE ($1::BIGINT IS NULL OR at_ms >= $1) AND ($2::BIGINT IS NULL OR at_ms < $2)
             AND ($3::TEXT IS NULL OR actor_name = $3 OR subject = $3)
             AND ($4::TEXT IS NULL OR kind = $4 OR left(kind, length($5::TEXT)) = $5)";
        let since = query.since.map(|since| since.0.saturating_mul(1000));
        let until = query.until.map(|until| until.0.saturating_mul(1000));
        let mut client = self.connection()?;
        let total: i64 = get(
            &client
                .query_one(
                    &format!("SELECT COUNT(*) FROM audit_events {filter}"),
                    &[&since, &until, &query.user, &query.kind, &family],
                )
                .map_err(backend)?,
            0,
        )?;
        let rows = client
            .query(
                &format!(
                    "SELECT id, at_ms, actor, data FROM audit_events {filter} ORDER BY id DESC LIMIT $6 OFFSET $7"
                ),
                &[&since, &until, &query.user, &query.kind, &family, &clamp(query.limit), &clamp(query.offset)],
            )
            .map_err(backend)?;
        let events = rows
            .iter()
            .map(|row| {
                let actor: Option<String> = get(row, 2)?;
                let data: String = get(row, 3)?;
                Ok(AuditRecord {
                    id: get(row, 0)?,
                    at_ms: get(row, 1)?,
                    actor: actor.as_deref().map(serde_json::from_str).transpose().map_err(backend)?,
                    event: serde_json::from_str(&data).map_err(backend)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AuditPage { total: total.unsigned_abs(), events })
    }
}

const COLUMNS: &str =
    "id, file, session, owner, owner_id, cols, rows, started_at, ended_at, exit_status, output_bytes, dropped_bytes";

fn load(row: &postgres::Row) -> Result<Recording, StoreError> {
    let size = |index| -> Result<u16, StoreError> { u16::try_from(get::<i32>(row, index)?).map_err(backend) };
    Ok(Recording {
        id: get(row, 0)?,
        file: get(row, 1)?,
        session: get(row, 2)?,
        owner: get(row, 3)?,
        owner_id: UserId(get(row, 4)?),
        cols: size(5)?,
        rows: size(6)?,
        started_at: Timestamp(get(row, 7)?),
        ended_at: get::<Option<i64>>(row, 8)?.map(Timestamp),
        exit_status: get(row, 9)?,
        output_bytes: u64::try_from(get::<i64>(row, 10)?).unwrap_or(0),
        dropped_bytes: u64::try_from(get::<i64>(row, 11)?).unwrap_or(0),
    })
}

impl PgStore {
    fn find_recording_where(&self, column: &str, value: &str) -> Result<Option<Recording>, StoreError> {
        let row = self
            .connection()?
            .query_opt(&format!("SELECT {COLUMNS} FROM recordings WHERE {column} = $1"), &[&value])
            .map_err(backend)?;
        row.as_ref().map(load).transpose()
    }
}

impl RecordingStore for PgStore {
    fn insert_recording(&self, recording: &Recording) -> Result<(), StoreError> {
        self.connection()?
            .execute(
                &format!(
                    "INSERT INTO recordings ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ),
                &[
                    &recording.id,
                    &recording.file,
                    &recording.session,
                    &recording.owner,
                    &recording.owner_id.0,
                    &i32::from(recording.cols),
                    &i32::from(recording.rows),
                    &recording.started_at.0,
                    &recording.ended_at.map(|at| at.0),
                    &recording.exit_status,
                    &clamp(recording.output_bytes),
                    &clamp(recording.dropped_bytes),
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_recording(&self, id: &str, end: &RecordingEnd) -> Result<(), StoreError> {
        self.connection()?
            .execute(
                "UPDATE recordings SET ended_at = $2, exit_status = $3, output_bytes = $4, dropped_bytes = $5
                 WHERE id = $1",
                &[&id, &end.ended_at.0, &end.exit_status, &clamp(end.output_bytes), &clamp(end.dropped_bytes)],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn find_recording(&self, id: &str) -> Result<Option<Recording>, StoreError> {
        self.find_recording_where("id", id)
    }

    fn find_recording_by_file(&self, file: &str) -> Result<Option<Recording>, StoreError> {
        self.find_recording_where("file", file)
    }

    fn list_recordings(&self, query: &RecordingQuery) -> Result<(u64, Vec<Recording>), StoreError> {
        let filter = "WHERE ($1::TEXT IS NULL OR owner = $1) AND ($2::TEXT IS NULL OR session = $2)
             AND ($3::BIGINT IS NULL OR started_at >= $3) AND ($4::BIGINT IS NULL OR started_at < $4)";
        let since = query.since.map(|at| at.0);
        let until = query.until.map(|at| at.0);
        let mut client = self.connection()?;
        let total: i64 = get(
            &client
                .query_one(
                    &format!("SELECT COUNT(*) FROM recordings {filter}"),
                    &[&query.owner, &query.session, &since, &until],
                )
                .map_err(backend)?,
            0,
        )?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM recordings {filter} ORDER BY started_at DESC, id DESC LIMIT $5 OFFSET $6"
                ),
                &[&query.owner, &query.session, &since, &until, &clamp(query.limit), &clamp(query.offset)],
            )
            .map_err(backend)?;
        Ok((total.unsigned_abs(), rows.iter().map(load).collect::<Result<_, _>>()?))
    }

    fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self.connection()?.execute("DELETE FROM recordings WHERE id = $1", &[&id]).map_err(backend)?;
        Ok(deleted > 0)
    }
}
