//! `--audit-log PATH|-` (config key `audit_log`): where the audit log is streamed as JSON
//! lines besides the database, for an operator's log pipeline. SIGHUP reopens the file (for
//! logrotate and the like: rename, then `kill -HUP`).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The open audit log file, shared by the writer and [`reopen`].
struct Opened {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

/// The audit log file of this process, once opened.
static OPENED: OnceLock<Opened> = OnceLock::new();

/// Writes to whichever file is open at the moment.
struct SharedFile(Arc<Mutex<File>>);

impl Write for SharedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush()
    }
}

fn open_file(target: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(target)
        .map_err(|error| format!("cannot open the audit log {}: {error}", target.display()))
}

/// The stream for `target`: standard error for `-`, otherwise the file, opened for appending
/// and created with mode 0600.
pub(crate) fn open(target: &Path) -> Result<Box<dyn Write + Send>, String> {
    if target.as_os_str() == "-" {
        return Ok(Box::new(std::io::stderr()));
    }
    let file = Arc::new(Mutex::new(open_file(target)?));
    let _ = OPENED.set(Opened { path: target.to_owned(), file: file.clone() });
    Ok(Box::new(SharedFile(file)))
}

/// SIGHUP: opens the audit log's path again (a new file if it was moved away); lines written
/// from now on go there. `Ok(None)` when no audit log file is open; on an error the old file
/// stays in use.
pub(crate) fn reopen() -> Result<Option<PathBuf>, String> {
    let Some(opened) = OPENED.get() else { return Ok(None) };
    let file = open_file(&opened.path)?;
    *opened.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = file;
    Ok(Some(opened.path.clone()))
}
