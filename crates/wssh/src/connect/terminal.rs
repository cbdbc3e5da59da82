//! The local terminal: its size, raw mode with a guard that restores the saved modes when
//! dropped, the signals that end a session, and a thread reading standard input.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use nix::libc;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

nix::ioctl_read_bad!(
    /// `TIOCGWINSZ`: reads a terminal's window size.
    get_window_size,
    libc::TIOCGWINSZ,
    libc::winsize
);

/// The size used when neither standard input nor standard output is a terminal.
pub(crate) const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// The local terminal's size as (columns, rows), from standard input or else standard output;
/// 80x24 when neither is a terminal.
pub(crate) fn window_size() -> (u16, u16) {
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
        // properly aligned local; an fd that is not a terminal makes it fail with ENOTTY.
        let read = unsafe { get_window_size(fd, &raw mut size) };
        if read.is_ok() && size.ws_col > 0 && size.ws_row > 0 {
            return (size.ws_col, size.ws_row);
        }
    }
    DEFAULT_SIZE
}

/// Changed terminal modes, put back as they were when dropped.
pub(crate) struct TermiosGuard {
    fd: OwnedFd,
    saved: Termios,
}

impl TermiosGuard {
    /// Saves the modes of the terminal `fd`, applies `change` to a copy, and sets that.
    pub(crate) fn apply(fd: OwnedFd, change: impl FnOnce(&mut Termios)) -> nix::Result<TermiosGuard> {
        let saved = tcgetattr(&fd)?;
        let mut changed = saved.clone();
        change(&mut changed);
        tcsetattr(&fd, SetArg::TCSANOW, &changed)?;
        Ok(TermiosGuard { fd, saved })
    }

    /// Puts standard input's terminal in raw mode (`cfmakeraw`): no echo, no line editing,
    /// no signals from keys, no output processing. `None` when standard input is no terminal.
    pub(crate) fn raw_stdin() -> std::io::Result<Option<TermiosGuard>> {
        let stdin = std::io::stdin();
        if !std::io::IsTerminal::is_terminal(&stdin) {
            return Ok(None);
        }
        let fd = stdin.as_fd().try_clone_to_owned()?;
        TermiosGuard::apply(fd, cfmakeraw).map(Some).map_err(std::io::Error::from)
    }
}

impl Drop for TermiosGuard {
    fn drop(&mut self) {
        // TCSANOW, not TCSADRAIN: a stopped terminal (Ctrl-S) must not hang the exit.
        let _ = tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// The signals that end a session: SIGINT, SIGTERM, SIGHUP. Installing them replaces the
/// default action (dying on the spot with the terminal left raw) with an orderly ending.
pub(crate) struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next of them; returns its number.
    pub(crate) async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.interrupt.recv() => libc::SIGINT,
            _ = self.terminate.recv() => libc::SIGTERM,
            _ = self.hangup.recv() => libc::SIGHUP,
        }
    }
}

/// SIGWINCH, when its handler could be installed.
pub(crate) struct WindowChanges(Option<Signal>);

impl WindowChanges {
    /// Installs the handler (or does without).
    pub(crate) fn install() -> WindowChanges {
        WindowChanges(signal(SignalKind::window_change()).ok())
    }

    /// Waits for the next window change (forever when there is no handler).
    pub(crate) async fn next(&mut self) {
        match &mut self.0 {
            Some(changes) => {
                if changes.recv().await.is_none() {
                    self.0 = None;
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}

/// Bytes read from standard input per read at most.
const STDIN_CHUNK: usize = 16 * 1024;

/// Starts a thread copying standard input into a channel, one message per read (a keystroke,
/// or a whole paste); the channel closes at end of input. A thread rather than tokio's stdin:
/// it may stay blocked in read() when the session ends, and nothing waits for it.
pub(crate) fn read_stdin() -> std::io::Result<mpsc::Receiver<Vec<u8>>> {
    let (sender, receiver) = mpsc::channel(8);
    std::thread::Builder::new().name("wssh-stdin".into()).spawn(move || {
        let mut buffer = vec![0u8; STDIN_CHUNK];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => {
                    if sender.blocking_send(buffer[..count].to_vec()).is_err() {
                        break;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })?;
    Ok(receiver)
}
