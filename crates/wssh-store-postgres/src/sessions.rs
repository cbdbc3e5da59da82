//! [`SessionStore`] on PostgreSQL.

use postgres::GenericClient;
use wssh_domain::{Session, SessionName, SessionSpec, Timestamp};
use wssh_store::{Conflict, SessionStore, StoreError};

use crate::{PgStore, backend, corrupt, get};

const SESSION_COLUMNS: &str = "name, cmd, args, dir, created_at, updated_at, run_as, detach_timeout_seconds, record";

fn load_session(row: &postgres::Row) -> Result<Session, StoreError> {
    let name: String = get(row, 0)?;
    let args: String = get(row, 2)?;
    let args: Vec<String> = serde_json::from_str(&args).map_err(corrupt)?;
    let name = SessionName::parse(&name).map_err(corrupt)?;
    let run_as: Option<String> = get(row, 6)?;
    let record: bool = get(row, 8)?;
    let detach_timeout: Option<i64> = get(row, 7)?;
    let detach_timeout = detach_timeout.map(|seconds| seconds.max(0) as u64);
    let spec = SessionSpec::new(name, get(row, 1)?, args, get(row, 3)?)
        .and_then(|spec| spec.with_run_as(run_as))
        .and_then(|spec| spec.with_detach_timeout(detach_timeout))
        .map(|spec| spec.with_record(record))
        .map_err(corrupt)?;
    Ok(Session { spec, created_at: Timestamp(get(row, 4)?), updated_at: Timestamp(get(row, 5)?) })
}

fn query_session(client: &mut impl GenericClient, name: &str) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE name = $1");
    client.query_opt(&sql, &[&name]).map_err(backend)?.as_ref().map(load_session).transpose()
}

fn args_json(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_else(|_| "[]".to_owned())
}

impl SessionStore for PgStore {
    fn create_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        self.write(|write| {
            write.execute_or(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at, run_as, detach_timeout_seconds, record) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
                &[
                    &spec.name.as_str(),
                    &spec.cmd,
                    &args_json(&spec.args),
                    &spec.dir,
                    &Timestamp::now().0,
                    &spec.run_as,
                    &detach_timeout(spec),
                    &spec.record,
                ],
                Conflict::SessionNameTaken,
            )?;
            query_session(&mut *write.client, spec.name.as_str())?.ok_or(StoreError::NotFound)
        })
    }

    fn find_session(&self, name: &str) -> Result<Option<Session>, StoreError> {
        query_session(&mut *self.connection()?, name)
    }

    fn list_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let rows = self
            .connection()?
            .query(&format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY name"), &[])
            .map_err(backend)?;
        rows.iter().map(load_session).collect()
    }

    fn update_session(&self, spec: &SessionSpec) -> Result<Session, StoreError> {
        self.write(|write| {
            let changed = write.execute(
                "UPDATE sessions SET cmd = $2, args = $3, dir = $4, updated_at = $5, run_as = $6, detach_timeout_seconds = $7, record = $8 WHERE name = $1",
                &[&spec.name.as_str(), &spec.cmd, &args_json(&spec.args), &spec.dir, &Timestamp::now().0, &spec.run_as, &detach_timeout(spec), &spec.record],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            query_session(&mut *write.client, spec.name.as_str())?.ok_or(StoreError::NotFound)
        })
    }

    fn delete_session(&self, name: &str) -> Result<(), StoreError> {
        self.write(|write| {
            let deleted = write.execute("DELETE FROM sessions WHERE name = $1", &[&name])?;
            if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
    }

    fn copy_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError> {
        self.write(|write| {
            if query_session(&mut *write.client, from.as_str())?.is_none() {
                return Err(StoreError::NotFound);
            }
            write.execute_or(
                "INSERT INTO sessions (name, cmd, args, dir, created_at, updated_at, run_as, detach_timeout_seconds, record) \
                 SELECT $2, cmd, args, dir, $3, $3, run_as, detach_timeout_seconds, record FROM sessions WHERE name = $1",
                &[&from.as_str(), &to.as_str(), &Timestamp::now().0],
                Conflict::SessionNameTaken,
            )?;
            query_session(&mut *write.client, to.as_str())?.ok_or(StoreError::NotFound)
        })
    }

    fn rename_session(&self, from: &SessionName, to: &SessionName) -> Result<Session, StoreError> {
        self.write(|write| {
            if query_session(&mut *write.client, from.as_str())?.is_none() {
                return Err(StoreError::NotFound);
            }
            if from != to && query_session(&mut *write.client, to.as_str())?.is_some() {
                return Err(StoreError::Conflict(Conflict::SessionNameTaken));
            }
            write.execute_or(
                "UPDATE sessions SET name = $2, updated_at = $3 WHERE name = $1",
                &[&from.as_str(), &to.as_str(), &Timestamp::now().0],
                Conflict::SessionNameTaken,
            )?;
            query_session(&mut *write.client, to.as_str())?.ok_or(StoreError::NotFound)
        })
    }
}

/// The template's detach timeout as stored (a signed `BIGINT`).
fn detach_timeout(spec: &SessionSpec) -> Option<i64> {
    spec.detach_timeout_seconds.map(|seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
}
