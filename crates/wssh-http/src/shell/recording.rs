//! Recording shells: which shells are recorded (`record_all_shells`, or a session template
//! marked `record`), one asciicast file each in the recordings folder (`wssh-record` writes it off the
//! output path), the catalogue kept through `wssh-core`, and retention when a recording ends.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use wssh_auth::Principal;
use wssh_core::recordings::RecordingEnd;
use wssh_domain::{Recording, SessionSpec, Timestamp};
use wssh_pty::WindowSize;
use wssh_record::retention::{self, Retention};
use wssh_record::{Header, Options, Policy, Recorder};

use crate::SharedState;

/// What is recorded, where, and for how long.
#[derive(Debug)]
pub struct RecordingSettings {
    /// The recordings folder (created with mode 0700).
    pub dir: PathBuf,
    /// Record every shell.
    pub all_shells: bool,
    /// Record the clients' input too (`record_input`).
    pub input: bool,
    /// Write gzip-compressed files (`.cast.gz`, `recording_gzip`).
    pub gzip: bool,
    /// What happens to output when the disk cannot keep up.
    pub policy: Policy,
    /// How long and how much is kept.
    pub retention: Retention,
    /// Files being written, which retention spares.
    active: Mutex<HashSet<String>>,
}

impl RecordingSettings {
    /// Settings recording into `dir`.
    pub fn new(dir: PathBuf, all_shells: bool, input: bool, policy: Policy, retention: Retention) -> Self {
        RecordingSettings { dir, all_shells, input, gzip: false, policy, retention, active: Mutex::default() }
    }

    /// The same settings, writing gzip-compressed files or not.
    #[must_use]
    pub fn with_gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    fn records(&self, session: &SessionSpec) -> bool {
        self.all_shells || session.record
    }
}

/// The recording of a shell that lives as long as its connection (go_ws_sh's framing), shared
/// by its output and input paths; taken out when it finishes, after which nothing is recorded.
pub(crate) type SharedRecording = std::sync::Arc<Mutex<Option<ShellRecording>>>;

/// Records output into a shared recording, if it still runs.
pub(crate) fn output_into(recording: &SharedRecording, bytes: &[u8]) {
    if let Some(recording) = recording.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        recording.output(bytes);
    }
}

/// The recording of one shell.
pub(crate) struct ShellRecording {
    recorder: Recorder,
    id: String,
    file: String,
    block: bool,
    state: SharedState,
}

impl std::fmt::Debug for ShellRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShellRecording").field("file", &self.file).finish_non_exhaustive()
    }
}

/// Starts recording shell `id` of `owner` on `session` when the settings or the template say so. Called before
/// the shell reads its first output, so that nothing is missed.
pub(crate) fn begin(
    state: &SharedState,
    id: &str,
    owner: &Principal,
    spec: &SessionSpec,
    size: WindowSize,
) -> Option<ShellRecording> {
    let settings = state.recording.as_ref().filter(|settings| settings.records(spec))?;
    let session = spec.name.as_str();
    let now = Timestamp::now();
    let started_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis());
    let file = format!("{started_ms}-{id}.cast{}", if settings.gzip { ".gz" } else { "" });
    let header = Header {
        width: size.cols,
        height: size.rows,
        timestamp: now.0,
        title: Some(session.to_owned()),
        command: None,
    };
    let options = Options { policy: settings.policy, input: settings.input, gzip: settings.gzip, ..Options::default() };
    let recorder = match Recorder::create(&settings.dir.join(&file), &header, options) {
        Ok(recorder) => recorder,
        Err(error) => {
            tracing::error!(%error, "cannot start a recording; the shell runs unrecorded");
            return None;
        }
    };
    settings.active.lock().unwrap_or_else(PoisonError::into_inner).insert(file.clone());
    let recording = Recording {
        id: id.to_owned(),
        file: file.clone(),
        session: session.to_owned(),
        owner: owner.username.as_str().to_owned(),
        owner_id: owner.user_id,
        cols: size.cols,
        rows: size.rows,
        started_at: now,
        ended_at: None,
        exit_status: None,
        output_bytes: 0,
        dropped_bytes: 0,
    };
    if let Err(error) = tokio::task::block_in_place(|| state.services.recording_started(&recording)) {
        tracing::error!(%error, "cannot add a recording to the catalogue");
    }
    let block = settings.policy == Policy::Block;
    Some(ShellRecording { recorder, id: id.to_owned(), file, block, state: state.clone() })
}

impl ShellRecording {
    /// Output of the shell.
    pub(crate) fn output(&self, bytes: &[u8]) {
        if self.block {
            tokio::task::block_in_place(|| self.recorder.output(bytes));
        } else {
            self.recorder.output(bytes);
        }
    }

    /// Input from a controlling client (recorded only with `record_input`).
    pub(crate) fn input(&self, bytes: &[u8]) {
        self.recorder.input(bytes);
    }

    /// The shell's new size.
    pub(crate) fn resize(&self, size: WindowSize) {
        self.recorder.resize(size.cols, size.rows);
    }

    /// The shell ended with `exit_status`: the file is finished, the catalogue updated, and
    /// retention applied, on a blocking thread.
    pub(crate) fn finish(self, exit_status: Option<i32>) {
        tokio::task::spawn_blocking(move || {
            let ShellRecording { recorder, id, file, state, .. } = self;
            let summary = recorder.finish(exit_status).unwrap_or_else(|error| {
                tracing::error!(%error, "a recording did not finish cleanly");
                wssh_record::Summary::default()
            });
            let end = RecordingEnd {
                ended_at: Timestamp::now(),
                exit_status,
                output_bytes: summary.output_bytes,
                dropped_bytes: summary.dropped_bytes,
            };
            if let Err(error) = state.services.recording_ended(&id, &end) {
                tracing::error!(%error, "cannot note the end of a recording");
            }
            let Some(settings) = state.recording.as_ref() else { return };
            settings.active.lock().unwrap_or_else(PoisonError::into_inner).remove(&file);
            apply_retention(&state, settings);
        });
    }
}

/// Removes the recordings retention no longer keeps, each audited. Blocks.
pub(crate) fn apply_retention(state: &SharedState, settings: &RecordingSettings) {
    let active = settings.active.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let is_active = |path: &std::path::Path| {
        path.file_name().and_then(|name| name.to_str()).is_some_and(|name| active.contains(name))
    };
    match retention::apply(&settings.dir, settings.retention, std::time::SystemTime::now(), &is_active) {
        Ok(removed) => {
            for removed in removed {
                let name = removed.path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
                if let Err(error) = state.services.recording_removed(name, removed.reason.as_str()) {
                    tracing::error!(%error, "cannot note a removed recording");
                }
            }
        }
        Err(error) => tracing::error!(%error, "cannot apply the recordings' retention"),
    }
}
