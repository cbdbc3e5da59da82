//! The processes of terminal sessions, children of children included, read from `/proc`.

use std::collections::HashMap;

use nix::unistd::Pid;

/// One process of a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub(crate) pid: Pid,
    /// Exited but not reaped: counts as gone.
    pub(crate) zombie: bool,
}

/// Every process on the system by session id, from one pass over `/proc/<pid>/stat` (field 6
/// is the session id). Processes that left a session with their own `setsid` are out of
/// reach, as they are for the kernel's own hang-up. Empty where there is no `/proc`.
pub(crate) fn scan_sessions() -> HashMap<i32, Vec<Member>> {
    let mut sessions: HashMap<i32, Vec<Member>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return sessions };
    for pid in entries.filter_map(Result::ok).filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok()) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The command name is in parentheses and may contain spaces: parse after the last ')'.
        let Some(end) = stat.rfind(')') else { continue };
        let mut fields = stat[end + 1..].split_whitespace();
        // Fields after the name: state, ppid, pgrp, session, ...
        let zombie = fields.next() == Some("Z");
        let Some(session) = fields.nth(2).and_then(|field| field.parse::<i32>().ok()) else { continue };
        sessions.entry(session).or_default().push(Member { pid: Pid::from_raw(pid), zombie });
    }
    sessions
}
