//! The PTY engine of wssh, usable on its own by any tokio service.
//!
//! [`PtyCommand::spawn`] starts a program on a fresh pseudo-terminal as a new session leader
//! with the terminal as its controlling terminal. The returned [`PtyProcess`] hands out a
//! [`PtyReader`] and a [`PtyWriter`] (non-blocking master under tokio's `AsyncFd`: no thread
//! per session), resizes the terminal ([`PtyProcess::resize`]), waits for the program, and ends
//! it ([`PtyProcess::terminate`]): SIGHUP to every process of its session, SIGKILL after a
//! grace period, then reaping, so nothing is orphaned and nothing is left a zombie.
//!
//! The crate knows nothing about users, HTTP or WebSockets. It is Unix-only; ending a whole
//! session scans `/proc` and so is complete on Linux.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wssh_pty::PtyError> {
//! use wssh_pty::{PtyCommand, WindowSize};
//! let mut process = PtyCommand::new("bash").arg("-i").size(WindowSize { cols: 120, rows: 40 }).spawn()?;
//! process.writer().write_all(b"echo hi; exit\r").await?;
//! let mut buffer = vec![0; 65536];
//! while process.reader().read(&mut buffer).await? > 0 {}
//! let status = process.wait().await?;
//! # Ok(()) }
//! ```

mod process;
mod reaper;
mod session;

pub use process::{BlockingRead, OsAccount, PtyCommand, PtyError, PtyProcess, PtyReader, PtyWriter, WindowSize};
