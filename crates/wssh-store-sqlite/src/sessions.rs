//! Session templates.

use super::*;

pub(crate) const SESSION_COLUMNS: &str =
    "name, cmd, args, dir, created_at, updated_at, run_as, detach_timeout_seconds, record";

pub(crate) fn load_session(row: &Row<'_>) -> Result<Session, rusqlite::Error> {
    let name: String = row.get(0)?;
    let args: String = row.get(2)?;
    let args: Vec<String> = serde_json::from_str(&args).map_err(|error| corrupt(error.to_string()))?;
    let name = SessionName::parse(&name).map_err(|error| corrupt(error.to_string()))?;
    let run_as: Option<String> = row.get(6)?;
    let record: bool = row.get(8)?;
    let detach_timeout: Option<i64> = row.get(7)?;
    let detach_timeout = detach_timeout.map(|seconds| seconds.max(0) as u64);
    let spec = SessionSpec::new(name, row.get(1)?, args, row.get(3)?)
        .and_then(|spec| spec.with_run_as(run_as))
        .and_then(|spec| spec.with_detach_timeout(detach_timeout))
        .map(|spec| spec.with_record(record))
        .map_err(|error| corrupt(error.to_string()))?;
    Ok(Session { spec, created_at: Timestamp(row.get(4)?), updated_at: Timestamp(row.get(5)?) })
}

pub(crate) fn query_session(connection: &Connection, name: &str) -> Result<Option<Session>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE name = ?1"))
        .map_err(backend)?;
    statement.query_row([name], load_session).optional().map_err(backend)
}

pub(crate) fn args_json(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_else(|_| "[]".to_owned())
}

impl SessionStore for SqliteStore {
    fn create_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        let connection = self.connection()?;
        connection
            .execute(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at, run_as, detach_timeout_seconds, record) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
                params![
                    spec.name.as_str(),
                    spec.cmd,
                    args_json(&spec.args),
                    spec.dir,
                    Timestamp::now().0,
                    spec.run_as,
                    detach_timeout(spec),
                    spec.record
                ],
            )
            .map_err(|error| map_error(error, Conflict::SessionNameTaken))?;
        query_session(&connection, spec.name.as_str())?.ok_or(StoreError::NotFound)
    }

    fn find_session(&self, name: &str) -> Result<Option<Session>, StoreError> {
        query_session(&*self.connection()?, name)
    }

    fn list_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let connection = self.connection()?;
        let mut statement = connection
            .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY name"))
            .map_err(backend)?;
        statement.query_map([], load_session).map_err(backend)?.collect::<Result<Vec<_>, _>>().map_err(backend)
    }

    fn update_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        let connection = self.connection()?;
        let changed = connection
            .execute(
                "UPDATE sessions SET cmd = ?2, args = ?3, dir = ?4, updated_at = ?5, run_as = ?6, detach_timeout_seconds = ?7, record = ?8 WHERE name = ?1",
                params![spec.name.as_str(), spec.cmd, args_json(&spec.args), spec.dir, Timestamp::now().0, spec.run_as, detach_timeout(spec), spec.record],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        query_session(&connection, spec.name.as_str())?.ok_or(StoreError::NotFound)
    }

    fn delete_session(&self, name: &str) -> Result<(), StoreError> {
        let deleted = self.connection()?.execute("DELETE FROM sessions WHERE name = ?1", [name]).map_err(backend)?;
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    fn copy_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        if query_session(&transaction, from.as_str())?.is_none() {
            return Err(StoreError::NotFound);
        }
        transaction
            .execute(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at, run_as, detach_timeout_seconds, record) \
                 SELECT ?2, cmd, args, dir, ?3, ?3, run_as, detach_timeout_seconds, record FROM sessions WHERE name = ?1",
                params![from.as_str(), to.as_str(), Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::SessionNameTaken))?;
        let copied = query_session(&transaction, to.as_str())?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(copied)
    }

    fn rename_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        if query_session(&transaction, from.as_str())?.is_none() {
            return Err(StoreError::NotFound);
        }
        if from != to && query_session(&transaction, to.as_str())?.is_some() {
            return Err(StoreError::Conflict(Conflict::SessionNameTaken));
        }
        transaction
            .execute(
                "UPDATE sessions SET name = ?2, updated_at = ?3 WHERE name = ?1",
                params![from.as_str(), to.as_str(), Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::SessionNameTaken))?;
        let moved = query_session(&transaction, to.as_str())?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(moved)
    }
}

/// The template's detach timeout as stored (SQLite integers are signed).
fn detach_timeout(spec: &SessionSpec) -> Option<i64> {
    spec.detach_timeout_seconds.map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
}
