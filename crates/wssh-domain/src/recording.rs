//! Shell recordings: one asciicast file per recorded shell, and what is known about it.

use crate::{Timestamp, UserId};

/// A recording as the catalogue keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Its id (the recorded shell's id).
    pub id: String,
    /// Its file's name in the recordings folder.
    pub file: String,
    /// The session template the shell ran.
    pub session: String,
    /// Who started the shell.
    pub owner: String,
    /// Their id.
    pub owner_id: UserId,
    /// Columns and rows at the start.
    pub cols: u16,
    /// Rows at the start.
    pub rows: u16,
    /// When recording started.
    pub started_at: Timestamp,
    /// When it ended, if it has.
    pub ended_at: Option<Timestamp>,
    /// The program's exit status, if it ended with one.
    pub exit_status: Option<i32>,
    /// Output bytes recorded, once ended.
    pub output_bytes: u64,
    /// Output bytes dropped because the disk could not keep up, once ended.
    pub dropped_bytes: u64,
}

/// Which recordings a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingQuery {
    /// Only this owner's, by name.
    pub owner: Option<String>,
    /// Only of this session template.
    pub session: Option<String>,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// How many to skip, newest first.
    pub offset: u64,
    /// How many at most.
    pub limit: u64,
}
