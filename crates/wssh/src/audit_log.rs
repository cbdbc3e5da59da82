//! `--audit-log PATH|-` (config key `audit_log`): where the audit log is streamed as JSON
//! lines besides the database, for an operator's log pipeline.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The stream for `target`: standard error for `-`, otherwise the file, opened for appending
/// and created with mode 0600.
pub(crate) fn open(target: &Path) -> Result<Box<dyn Write + Send>, String> {
    if target.as_os_str() == "-" {
        return Ok(Box::new(std::io::stderr()));
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(target)
        .map_err(|error| format!("cannot open the audit log {}: {error}", target.display()))?;
    Ok(Box::new(file))
}
