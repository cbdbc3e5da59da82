//! Retention: the recordings of a folder (`*.cast`, `*.cast.gz`) older than a maximum age are
//! removed, then the oldest ones until the rest fit a maximum total size. Recordings still
//! being written are never removed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long and how much recordings are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Remove recordings older than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many bytes of recordings, removing the oldest first.
    pub max_total_bytes: Option<u64>,
}

/// Why a recording was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It was older than the maximum age.
    MaxAge,
    /// The recordings together were larger than the maximum total size.
    MaxTotalSize,
}

impl Reason {
    /// `max_age` or `max_total_size`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::MaxAge => "max_age",
            Reason::MaxTotalSize => "max_total_size",
        }
    }
}

/// A removed recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its path.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Why.
    pub reason: Reason,
}

/// Whether `path` names a recording.
pub fn is_recording(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.ends_with(".cast") || name.ends_with(".cast.gz"))
}

/// Applies `retention` to the recordings in `dir` at `now`, oldest first (by modification
/// time, then name); `active` says which are still being written (kept, and counted). Returns
/// what it removed.
pub fn apply(
    dir: &Path,
    retention: Retention,
    now: SystemTime,
    active: &dyn Fn(&Path) -> bool,
) -> io::Result<Vec<Removed>> {
    let mut recordings = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let metadata = entry.metadata()?;
        if metadata.is_file() && is_recording(&path) {
            recordings.push((metadata.modified()?, path, metadata.len()));
        }
    }
    recordings.sort();
    let mut removed = Vec::new();
    let mut total: u64 = recordings.iter().map(|(_, _, bytes)| bytes).sum();
    for (modified, path, bytes) in recordings {
        if active(&path) {
            continue;
        }
        let too_old =
            retention.max_age.is_some_and(|max_age| now.duration_since(modified).is_ok_and(|age| age > max_age));
        let too_much = retention.max_total_bytes.is_some_and(|max| total > max);
        let reason = match (too_old, too_much) {
            (true, _) => Reason::MaxAge,
            (false, true) => Reason::MaxTotalSize,
            (false, false) => continue,
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total -= bytes;
                removed.push(Removed { path, bytes, reason });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => total -= bytes,
            Err(error) => return Err(error),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn recording(dir: &Path, name: &str, bytes: usize, age_seconds: u64) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![b'x'; bytes]).unwrap();
        let modified = SystemTime::now() - Duration::from_secs(age_seconds);
        File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
        path
    }

    #[test]
    fn removes_the_too_old_then_the_oldest_beyond_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let ancient = recording(dir.path(), "a.cast", 10, 10_000);
        let old = recording(dir.path(), "b.cast.gz", 100, 500);
        let middle = recording(dir.path(), "c.cast", 100, 300);
        let busy = recording(dir.path(), "d.cast", 100, 200);
        let new = recording(dir.path(), "e.cast", 100, 100);
        let other = recording(dir.path(), "notes.txt", 1000, 20_000);
        let retention = Retention { max_age: Some(Duration::from_secs(3600)), max_total_bytes: Some(250) };
        let removed = apply(dir.path(), retention, SystemTime::now(), &|path| path == busy).unwrap();
        let summary: Vec<(PathBuf, Reason)> =
            removed.iter().map(|removed| (removed.path.clone(), removed.reason)).collect();
        assert_eq!(
            summary,
            vec![
                (ancient.clone(), Reason::MaxAge),
                (old.clone(), Reason::MaxTotalSize),
                (middle.clone(), Reason::MaxTotalSize)
            ]
        );
        assert!(!ancient.exists() && !old.exists() && !middle.exists());
        assert!(busy.exists() && new.exists() && other.exists(), "active and newest kept, other files untouched");
        assert!(apply(dir.path(), retention, SystemTime::now(), &|_| false).unwrap().is_empty(), "200 bytes fit");
    }
}
