//! Ending terminal sessions off the async workers.
//!
//! One thread, started on first use, ends every session asked of it: it hangs each up (SIGHUP
//! and SIGCONT to every member), then watches them all with one scan of `/proc` per tick, and
//! SIGKILLs whatever is left of a session at its deadline. However many sessions end at once,
//! the cost is one scan per tick on this thread, never a scan per session on an async worker.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::sync::oneshot;

use crate::session::{Member, scan_sessions};

/// How often the sessions being ended are looked at.
const TICK: Duration = Duration::from_millis(20);

struct Request {
    session: Pid,
    deadline: Instant,
    /// Told once no process of the session is left.
    done: Option<oneshot::Sender<()>>,
}

static REQUESTS: LazyLock<Mutex<Option<mpsc::Sender<Request>>>> = LazyLock::new(|| {
    let (sender, receiver) = mpsc::channel();
    let started = std::thread::Builder::new().name("wssh-pty-reaper".into()).spawn(move || run(&receiver));
    match started {
        Ok(_) => Mutex::new(Some(sender)),
        Err(error) => {
            tracing::warn!(%error, "cannot start the session reaper; sessions are ended in place");
            Mutex::new(None)
        }
    }
});

/// Hangs `session` up and SIGKILLs what is left of it after `grace`; the receiver is told when
/// no process of it is left (or dropped if the reaper is gone).
pub(crate) fn end_session(session: Pid, grace: Duration) -> oneshot::Receiver<()> {
    let (done, receiver) = oneshot::channel();
    submit(Request { session, deadline: Instant::now() + grace, done: Some(done) });
    receiver
}

/// SIGKILLs every process of `session` at once (from a destructor: nobody waits).
pub(crate) fn kill_session(session: Pid) {
    submit(Request { session, deadline: Instant::now(), done: None });
}

fn submit(request: Request) {
    let session = request.session;
    let sent = REQUESTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .is_some_and(|sender| sender.send(request).is_ok());
    if !sent {
        // No reaper: at least the process group goes at once.
        let _ = killpg(session, Signal::SIGKILL);
    }
}

fn signal_members(session: Pid, members: &[Member], signal: Signal) {
    let _ = killpg(session, signal);
    for member in members {
        let _ = kill(member.pid, signal);
    }
}

fn run(receiver: &mpsc::Receiver<Request>) {
    let mut pending: Vec<Request> = Vec::new();
    loop {
        let mut fresh = Vec::new();
        if pending.is_empty() {
            match receiver.recv() {
                Ok(request) => fresh.push(request),
                Err(_) => return,
            }
        } else {
            match receiver.recv_timeout(TICK) {
                Ok(request) => fresh.push(request),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        fresh.extend(receiver.try_iter());
        let mut sessions = scan_sessions();
        if !fresh.is_empty() {
            let none = Vec::new();
            for request in &fresh {
                let members = sessions.get(&request.session.as_raw()).unwrap_or(&none);
                if request.deadline > Instant::now() {
                    signal_members(request.session, members, Signal::SIGHUP);
                    // SIGHUP is ignored by some programs while stopped; SIGCONT lets it be delivered.
                    signal_members(request.session, members, Signal::SIGCONT);
                }
            }
            pending.extend(fresh);
            if pending.iter().any(|request| request.deadline > Instant::now()) {
                // Give the hang-up a moment before looking again.
                std::thread::sleep(Duration::from_millis(5));
                sessions = scan_sessions();
            }
        }
        let now = Instant::now();
        pending.retain_mut(|request| {
            let members = sessions.get(&request.session.as_raw());
            let alive = members.is_some_and(|members| members.iter().any(|member| !member.zombie));
            if alive && now < request.deadline {
                return true;
            }
            if alive {
                signal_members(request.session, members.map_or(&[][..], Vec::as_slice), Signal::SIGKILL);
            }
            if let Some(done) = request.done.take() {
                let _ = done.send(());
            }
            false
        });
        sessions_shrink(&mut sessions);
    }
}

/// Drops the scan's memory between ticks (a scan of many processes is large).
fn sessions_shrink(sessions: &mut HashMap<i32, Vec<Member>>) {
    sessions.clear();
    sessions.shrink_to(64);
}
