//! Signalling every process of a terminal session, children of children included.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Sends `signal` to every process whose session id is `session` (the session leader's pid),
/// and to its process group. Processes that left the session with their own `setsid` are out
/// of reach, as they are for the kernel's own hang-up.
pub(crate) fn signal_session(session: Pid, signal: Signal) {
    let _ = killpg(session, signal);
    for pid in session_members(session) {
        let _ = kill(pid, signal);
    }
}

/// The processes of `session`, read from `/proc/<pid>/stat` (field 6 is the session id).
/// Empty where there is no `/proc`.
fn session_members(session: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| session_of(*pid) == Some(session.as_raw()))
        .map(Pid::from_raw)
        .collect()
}

fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name: state, ppid, pgrp, session, ...
    after_name.split_whitespace().nth(3)?.parse().ok()
}

/// Whether any process of `session` is still alive (zombies count as gone).
pub(crate) fn session_alive(session: Pid) -> bool {
    session_members(session).into_iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rfind(')').map(|end| stat[end + 1..].trim_start().starts_with('Z')))
            .is_some_and(|zombie| !zombie)
    })
}
