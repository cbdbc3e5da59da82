//! The catalogue of shell recordings (the files themselves live in the recordings folder).

use wssh_domain::{Recording, RecordingQuery, Timestamp};

use crate::StoreError;

/// How a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingEnd {
    /// When.
    pub ended_at: Timestamp,
    /// The program's exit status, if known.
    pub exit_status: Option<i32>,
    /// Output bytes recorded.
    pub output_bytes: u64,
    /// Output bytes dropped.
    pub dropped_bytes: u64,
}

/// Recordings: added when a recorded shell starts, ended when it ends, listed, removed.
pub trait RecordingStore: Send + Sync {
    /// Adds a recording. [`StoreError::Conflict`] when the id is taken.
    fn insert_recording(&self, recording: &Recording) -> Result<(), StoreError>;
    /// Notes how a recording ended.
    fn end_recording(&self, id: &str, end: &RecordingEnd) -> Result<(), StoreError>;
    /// The recording with this id, if any.
    fn find_recording(&self, id: &str) -> Result<Option<Recording>, StoreError>;
    /// The recordings matching `query`, newest first, and how many match in all.
    fn list_recordings(&self, query: &RecordingQuery) -> Result<(u64, Vec<Recording>), StoreError>;
    /// Removes a recording from the catalogue; whether there was one.
    fn delete_recording(&self, id: &str) -> Result<bool, StoreError>;
    /// The recording kept in `file`, if any.
    fn find_recording_by_file(&self, file: &str) -> Result<Option<Recording>, StoreError>;
}
