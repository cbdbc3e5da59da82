//! Session templates: what a shell runs.

use wssh_auth::Principal;
use wssh_domain::audit::{AuditEvent, SessionSnapshot};
use wssh_domain::{Permission, Session, SessionName, SessionSpec};

use crate::policy;
use crate::{CoreError, Entity, Services};

/// Changes to a session template; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct SessionChanges {
    /// The program.
    pub cmd: Option<String>,
    /// Its arguments.
    pub args: Option<Vec<String>>,
    /// Its working directory.
    pub dir: Option<String>,
    /// The OS account it runs as; `Some("")` clears it.
    pub run_as: Option<String>,
    /// Its own detach timeout in seconds; `Some(None)` returns it to the server's.
    pub detach_timeout_seconds: Option<Option<u64>>,
    /// Whether its shells are recorded.
    pub record: Option<bool>,
}

impl Services {
    /// Every session, by name: `sessions:read`.
    pub fn sessions(&self, principal: &Principal) -> Result<Vec<Session>, CoreError> {
        policy::require(principal, Permission::SessionsRead)?;
        self.store().list_sessions().map_err(CoreError::store(Entity::Session))
    }

    fn find_session(&self, name: &str) -> Result<Session, CoreError> {
        self.store()
            .find_session(name)
            .map_err(CoreError::store(Entity::Session))?
            .ok_or(CoreError::NotFound(Entity::Session))
    }

    /// The session a shell is opened on: `sessions:connect`, and `shells:run_as_any` when the
    /// template names an OS account to run as (see [`policy::may_run_as`]).
    pub fn session_to_connect(&self, principal: &Principal, name: &str) -> Result<Session, CoreError> {
        policy::require(principal, Permission::SessionsConnect)?;
        let session = self.find_session(name)?;
        policy::may_run_as(principal, &session.spec)?;
        Ok(session)
    }

    /// Creates a session: `sessions:write`, and `shells:run_as_any` when it names an account.
    pub fn create_session(&self, principal: &Principal, spec: &SessionSpec) -> Result<Session, CoreError> {
        policy::require(principal, Permission::SessionsWrite)?;
        policy::may_run_as(principal, spec)?;
        let created = self.store().create_session(spec).map_err(CoreError::store(Entity::Session))?;
        self.audit(principal, AuditEvent::SessionCreated { new: SessionSnapshot::from(&created) });
        Ok(created)
    }

    /// Changes a session's command, arguments, directory or account: `sessions:write`, and
    /// `shells:run_as_any` when the template names an account before or after.
    pub fn update_session(
        &self,
        principal: &Principal,
        name: SessionName,
        changes: SessionChanges,
    ) -> Result<Session, CoreError> {
        policy::require(principal, Permission::SessionsWrite)?;
        let current = self.find_session(name.as_str())?;
        let old = SessionSnapshot::from(&current);
        policy::may_run_as(principal, &current.spec)?;
        let spec = SessionSpec::new(
            name,
            changes.cmd.unwrap_or(current.spec.cmd),
            changes.args.unwrap_or(current.spec.args),
            changes.dir.unwrap_or(current.spec.dir),
        )?
        .with_run_as(changes.run_as.or(current.spec.run_as))?
        .with_detach_timeout(changes.detach_timeout_seconds.unwrap_or(current.spec.detach_timeout_seconds))?
        .with_record(changes.record.unwrap_or(current.spec.record));
        policy::may_run_as(principal, &spec)?;
        let updated = self.store().update_session(&spec).map_err(CoreError::store(Entity::Session))?;
        let event = AuditEvent::SessionChanged { old, new: SessionSnapshot::from(&updated) };
        self.audit(principal, event);
        Ok(updated)
    }

    /// Deletes a session: `sessions:write`.
    pub fn delete_session(&self, principal: &Principal, name: &SessionName) -> Result<Session, CoreError> {
        policy::require(principal, Permission::SessionsWrite)?;
        let session = self.find_session(name.as_str())?;
        self.store().delete_session(name.as_str()).map_err(CoreError::store(Entity::Session))?;
        self.audit(principal, AuditEvent::SessionDeleted { old: SessionSnapshot::from(&session) });
        Ok(session)
    }

    /// Copies a session to a free name: `sessions:write`.
    pub fn copy_session(
        &self,
        principal: &Principal,
        from: &SessionName,
        to: &SessionName,
    ) -> Result<Session, CoreError> {
        policy::require(principal, Permission::SessionsWrite)?;
        let copied = self.store().copy_session(from, to).map_err(CoreError::store(Entity::Session))?;
        self.audit(principal, AuditEvent::SessionCreated { new: SessionSnapshot::from(&copied) });
        Ok(copied)
    }

    /// Renames a session to a free name: `sessions:write`; the configuration's initial
    /// sessions stay where they are.
    pub fn move_session(
        &self,
        principal: &Principal,
        from: &SessionName,
        to: &SessionName,
    ) -> Result<Session, CoreError> {
        policy::require(principal, Permission::SessionsWrite)?;
        if self.config.initial_sessions.contains(from.as_str()) {
            return Err(CoreError::Refused("Session is an initial session and cannot be moved"));
        }
        let old = self.find_session(from.as_str())?;
        let moved = self.store().rename_session(from, to).map_err(CoreError::store(Entity::Session))?;
        self.audit(
            principal,
            AuditEvent::SessionChanged { old: SessionSnapshot::from(&old), new: SessionSnapshot::from(&moved) },
        );
        Ok(moved)
    }
}
