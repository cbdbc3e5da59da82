//! Shell recordings: the catalogue, reading (with `recordings:read`, or one's own), deleting
//! (`recordings:read`), and what the recorder reports (started, ended, removed by retention).
//! Every read and deletion is audited.

use std::path::PathBuf;

use wssh_auth::Principal;
use wssh_domain::audit::AuditEvent;
use wssh_domain::{Permission, Recording, RecordingQuery};
pub use wssh_store::RecordingEnd;

use crate::policy;
use crate::{CoreError, Entity, Services};

/// The most recordings one page holds.
pub const MAX_RECORDINGS_PAGE: u64 = 500;

impl Services {
    /// One page of recordings, newest first. With `recordings:read`, anyone's; without it, only
    /// the caller's own (a filter for another owner is refused).
    pub fn recordings(
        &self,
        principal: &Principal,
        mut query: RecordingQuery,
    ) -> Result<(u64, Vec<Recording>), CoreError> {
        if !principal.can(Permission::RecordingsRead) {
            if query.owner.as_deref().is_some_and(|owner| owner != principal.username.as_str()) {
                return Err(CoreError::Forbidden(Permission::RecordingsRead));
            }
            query.owner = Some(principal.username.as_str().to_owned());
        }
        query.limit = query.limit.clamp(1, MAX_RECORDINGS_PAGE);
        self.store().list_recordings(&query).map_err(CoreError::store(Entity::Recording))
    }

    /// A recording to play, and its file: `recordings:read`, or the caller's own. Another
    /// user's recording without the permission is "not found", so that ids leak nothing. The
    /// caller reports the read with [`Services::recording_read`] once it has the file.
    pub fn recording_path_checked(&self, principal: &Principal, id: &str) -> Result<(Recording, PathBuf), CoreError> {
        let recording = self
            .store()
            .find_recording(id)
            .map_err(CoreError::store(Entity::Recording))?
            .filter(|recording| principal.can(Permission::RecordingsRead) || recording.owner_id == principal.user_id)
            .ok_or(CoreError::NotFound(Entity::Recording))?;
        let path = self.recording_path(&recording)?;
        Ok((recording, path))
    }

    /// Records that `principal` read recording `id`.
    pub fn recording_read(&self, principal: &Principal, id: &str) {
        self.audit(principal, AuditEvent::RecordingRead { recording: id.to_owned() });
    }

    /// Deletes a recording and its file: `recordings:read` (owners may not erase their own).
    /// Audited.
    pub fn delete_recording(&self, principal: &Principal, id: &str) -> Result<Recording, CoreError> {
        policy::require(principal, Permission::RecordingsRead)?;
        let recording = self
            .store()
            .find_recording(id)
            .map_err(CoreError::store(Entity::Recording))?
            .ok_or(CoreError::NotFound(Entity::Recording))?;
        let path = self.recording_path(&recording)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return Err(CoreError::Refused("The recording's file cannot be removed")),
        }
        self.store().delete_recording(id).map_err(CoreError::store(Entity::Recording))?;
        let event = AuditEvent::RecordingDeleted { recording: recording.id.clone(), reason: "request".into() };
        self.audit(principal, event);
        Ok(recording)
    }

    fn recording_path(&self, recording: &Recording) -> Result<PathBuf, CoreError> {
        let dir = self.config.recordings_dir.as_ref().ok_or(CoreError::NotFound(Entity::Recording))?;
        Ok(dir.join(&recording.file))
    }

    /// A recorded shell started (the recorder reports it).
    pub fn recording_started(&self, recording: &Recording) -> Result<(), CoreError> {
        self.store().insert_recording(recording).map_err(CoreError::store(Entity::Recording))
    }

    /// A recorded shell ended (the recorder reports it).
    pub fn recording_ended(&self, id: &str, end: &RecordingEnd) -> Result<(), CoreError> {
        self.store().end_recording(id, end).map_err(CoreError::store(Entity::Recording))
    }

    /// Retention removed the recording in `file` for `reason`: it leaves the catalogue, and the
    /// audit log says so (by the server).
    pub fn recording_removed(&self, file: &str, reason: &str) -> Result<(), CoreError> {
        let found = self.store().find_recording_by_file(file).map_err(CoreError::store(Entity::Recording))?;
        let id = match found {
            Some(recording) => {
                self.store().delete_recording(&recording.id).map_err(CoreError::store(Entity::Recording))?;
                recording.id
            }
            None => file.to_owned(),
        };
        self.audit_server(AuditEvent::RecordingDeleted { recording: id, reason: reason.to_owned() });
        Ok(())
    }
}
