//! Spawning a program on a pseudo-terminal, and the handles to talk to it.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;

use crate::reaper;

/// Why a program could not be started on a PTY.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// Opening or configuring the pseudo-terminal failed.
    #[error("cannot open a pseudo-terminal: {0}")]
    Open(#[source] io::Error),
    /// Starting the program failed (not found, not executable, bad directory …).
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that was asked for.
        program: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The OS account to run as does not exist or cannot be read.
    #[error("no OS account named {0:?}")]
    UnknownAccount(String),
    /// Switching to another OS account needs the server to run as root.
    #[error("cannot run a program as {0:?}: switching accounts needs the server to run as root")]
    NotPrivileged(String),
    /// Reading, writing or resizing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An OS account a program runs as: its ids, supplementary groups, home and login shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsAccount {
    /// The account's name (`USER`, `LOGNAME`).
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
    /// Every group it is in (the primary one included), as `initgroups` would set them.
    pub groups: Vec<u32>,
    /// Its home directory (`HOME`, and the working directory when none is given).
    pub home: PathBuf,
    /// Its login shell (`SHELL`).
    pub shell: PathBuf,
}

impl OsAccount {
    /// Looks the account up in the system's user and group databases (NSS). Blocks briefly.
    pub fn lookup(name: &str) -> Result<Self, PtyError> {
        let unknown = || PtyError::UnknownAccount(name.to_owned());
        let user = nix::unistd::User::from_name(name).map_err(|_| unknown())?.ok_or_else(unknown)?;
        let c_name = std::ffi::CString::new(name).map_err(|_| unknown())?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid).map_err(|error| PtyError::Io(error.into()))?;
        Ok(OsAccount {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups: groups.into_iter().map(nix::unistd::Gid::as_raw).collect(),
            home: user.dir,
            shell: user.shell,
        })
    }
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Default for WindowSize {
    fn default() -> Self {
        WindowSize { cols: 80, rows: 24 }
    }
}

impl WindowSize {
    fn winsize(self) -> Winsize {
        Winsize { ws_row: self.rows.max(1), ws_col: self.cols.max(1), ws_xpixel: 0, ws_ypixel: 0 }
    }
}

/// Environment variables passed through from the server to the program; everything else in
/// the server's environment (which may hold secrets) stays behind.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

/// What to run on a PTY: a builder in the spirit of `std::process::Command`.
#[derive(Debug, Clone)]
pub struct PtyCommand {
    program: String,
    args: Vec<String>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    size: WindowSize,
    account: Option<OsAccount>,
}

impl PtyCommand {
    /// A command running `program` (looked up in `PATH` when it has no slash).
    pub fn new(program: impl Into<String>) -> Self {
        PtyCommand {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            size: WindowSize::default(),
            account: None,
        }
    }

    /// Runs the program as `account`: its supplementary groups, group and user are set in the
    /// child before exec, `HOME`, `USER`, `LOGNAME` and `SHELL` are the account's, the working
    /// directory defaults to its home (or `/` when that is missing), and the terminal is handed
    /// to it. Needs the server to run as root unless `account` is the server's own.
    #[must_use]
    pub fn run_as(mut self, account: OsAccount) -> Self {
        self.account = Some(account);
        self
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The working directory; by default `$HOME`, else `/`.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets an environment variable for the program.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The initial window size.
    #[must_use]
    pub fn size(mut self, size: WindowSize) -> Self {
        self.size = size;
        self
    }

    /// Starts the program on a fresh PTY, as the leader of a new session whose controlling
    /// terminal is that PTY, with `TERM=xterm-256color`. Must be called inside a tokio runtime.
    pub fn spawn(&self) -> Result<PtyProcess, PtyError> {
        let OpenptyResult { master, slave } = openpty(Some(&self.size.winsize()), None).map_err(open_error)?;
        set_cloexec(&master).map_err(open_error)?;
        set_cloexec(&slave).map_err(open_error)?;
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL).map_err(open_error)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(open_error)?;

        if let Some(account) = &self.account {
            let euid = nix::unistd::geteuid().as_raw();
            if euid != 0 && euid != account.uid {
                return Err(PtyError::NotPrivileged(account.name.clone()));
            }
            if euid == 0 {
                // The account owns its terminal, as after a login (`tty`, `mesg`, reopening it).
                nix::unistd::fchown(&slave, Some(account.uid.into()), None).map_err(open_error)?;
            }
        }
        let home = match &self.account {
            Some(account) => Some(account.home.as_os_str().to_owned()).filter(|_| account.home.is_dir()),
            None => std::env::var_os("HOME"),
        };
        let dir = self
            .dir
            .clone()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| home.clone().map_or_else(|| PathBuf::from("/"), PathBuf::from));
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args).current_dir(&dir).env_clear();
        for key in INHERITED_ENV {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        if let Some(account) = &self.account {
            command
                .env("HOME", &account.home)
                .env("USER", &account.name)
                .env("LOGNAME", &account.name)
                .env("SHELL", &account.shell);
        }
        command.env("TERM", "xterm-256color");
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        let stdio = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
        command
            .stdin(stdio(&slave).map_err(open_error)?)
            .stdout(stdio(&slave).map_err(open_error)?)
            .stderr(stdio(&slave).map_err(open_error)?);
        // Worked out before the fork: the child only makes system calls, never allocates.
        let switch = self
            .account
            .as_ref()
            .filter(|_| nix::unistd::geteuid().is_root())
            .map(|account| (account.uid, account.gid, account.groups.clone()));
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (setsid, ioctl, setgroups, setgid, setuid) on data
        // prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                if let Some((uid, gid, groups)) = &switch {
                    // Groups first, while still root; the user last, so it cannot be undone.
                    if libc::setgroups(groups.len() as _, groups.as_ptr()) == -1
                        || libc::setgid(*gid) == -1
                        || libc::setuid(*uid) == -1
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        command.kill_on_drop(true);
        let child = command.spawn().map_err(|source| PtyError::Spawn { program: self.program.clone(), source })?;
        drop(slave);
        let pid = child.id().map(|id| Pid::from_raw(id as i32)).ok_or_else(|| PtyError::Spawn {
            program: self.program.clone(),
            source: io::Error::other("exited at once"),
        })?;
        // SAFETY: the AsyncFd owns `master` (an OwnedFd), so the descriptor stays open and
        // unchanged for the AsyncFd's whole life.
        let master = unsafe { AsyncFd::register(master) }.map_err(|error| PtyError::Open(error.into()))?;
        let master = Arc::new(master);
        Ok(PtyProcess { master, child, pid, status: None })
    }
}

fn open_error(error: impl Into<io::Error>) -> PtyError {
    PtyError::Open(error.into())
}

fn set_cloexec(fd: &OwnedFd) -> Result<(), Errno> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, Winsize);

/// A program running on a PTY. Dropping it kills the program (SIGKILL to the direct child);
/// call [`PtyProcess::terminate`] to end the whole session politely.
#[derive(Debug)]
pub struct PtyProcess {
    master: Arc<AsyncFd<OwnedFd>>,
    child: tokio::process::Child,
    pid: Pid,
    status: Option<ExitStatus>,
}

impl PtyProcess {
    /// The program's process id, which is also its session and process-group id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// A handle reading what the program writes to its terminal.
    pub fn reader(&self) -> PtyReader {
        PtyReader { master: self.master.clone() }
    }

    /// A handle writing to the program's terminal, as if typed.
    pub fn writer(&self) -> PtyWriter {
        PtyWriter { master: self.master.clone() }
    }

    /// Sets the terminal's size; the program gets SIGWINCH.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        self.writer().resize(size)
    }

    /// Waits for the program to exit and reaps it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.child.wait().await?;
        self.status = Some(status);
        Ok(status)
    }

    /// The exit status if the program has exited, reaping it; `None` while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Ends the program's whole session: SIGHUP to every process in it, then after `grace`
    /// SIGKILL to whatever is left, and reaps the program. Returns its exit status. The
    /// signalling and watching happen on the session reaper's thread, never on an async
    /// worker, so many sessions ending at once cost one `/proc` scan per tick in all.
    pub async fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        // Told when nothing of the session is left; an error only means the reaper is gone.
        let _ = reaper::end_session(self.pid, grace).await;
        self.wait().await
    }
}

impl Drop for PtyProcess {
    /// A process dropped without [`PtyProcess::terminate`] (a cancelled task, a shutting-down
    /// server) takes its whole session with it, at once.
    fn drop(&mut self) {
        if self.status.is_none() {
            reaper::kill_session(self.pid);
        }
    }
}

/// Reads a PTY's output. Cloneable handles share one master.
#[derive(Debug, Clone)]
pub struct PtyReader {
    master: Arc<AsyncFd<OwnedFd>>,
}

thread_local! {
    /// The buffer [`PtyReader::read_with`] and [`PtyReader::read_framed_with_held`] read into:
    /// one per thread, not one per terminal; taken by a consumer that keeps what was read
    /// (then the next read allocates another).
    static FRAME: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl PtyReader {
    /// Reads what is available into `buffer`, waiting until something is, and keeps reading
    /// while more is immediately available, so bulk output arrives in few large chunks.
    /// Returns 0 once the terminal is closed on the program's side (every process holding it
    /// has exited).
    pub async fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        Ok(self.when_readable(|fd| read_available(fd, buffer)).await?.unwrap_or(0))
    }

    /// Waits until the master is readable and runs `attempt` on it, again after `WouldBlock`
    /// or `EINTR`. `None` once the terminal is closed on the program's side (Linux reports a
    /// hung-up slave side as EIO on the master).
    async fn when_readable<T>(&self, mut attempt: impl FnMut(&OwnedFd) -> io::Result<T>) -> io::Result<Option<T>> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| attempt(fd.get_ref())) {
                Ok(Ok(value)) => return Ok(Some(value)),
                Ok(Err(error)) if error.raw_os_error() == Some(libc::EIO) => return Ok(None),
                Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits until output is available, reads as much as is (at most `limit` bytes) into a
    /// buffer shared by every reader on this thread, and hands it to `consume`. An idle
    /// terminal therefore holds no read buffer at all; `consume` copies what it keeps.
    /// Returns `consume`'s result, or `None` once the terminal is closed on the program's side.
    /// `consume` runs while the thread's buffer is lent to it: it must not read a terminal
    /// itself. A `limit` of 0 reads as 1.
    pub async fn read_with<T>(&self, limit: usize, consume: impl FnOnce(&[u8]) -> T) -> io::Result<Option<T>> {
        self.read_framed_with_held(&[], limit, || (), |buffer| consume(buffer)).await
    }

    /// [`PtyReader::read_with`], holding what `hold` returns (a lock's guard) from before the
    /// read until `consume` has returned (tasks that read one terminal in turn, each under the
    /// same lock, keep its output in order: a read and what is done with it are one step),
    /// and reading into a buffer that `consume` may keep: the thread's buffer holds `head` (a
    /// frame's header, say) and then the output read (at most `limit` bytes, at least one),
    /// and `consume` gets the buffer itself. Taking it (`std::mem::take`) keeps the output
    /// without copying it; the next read on this thread then allocates a new buffer (never
    /// zeroed: the kernel writes it). What `consume` leaves is reused.
    pub async fn read_framed_with_held<G, T>(
        &self,
        head: &[u8],
        limit: usize,
        hold: impl Fn() -> G,
        consume: impl FnOnce(&mut Vec<u8>) -> T,
    ) -> io::Result<Option<T>> {
        let limit = limit.max(1);
        let mut consume = Some(consume);
        let consumed = self
            .when_readable(|fd| {
                let _held = hold();
                FRAME.with_borrow_mut(|frame| {
                    frame.clear();
                    frame.extend_from_slice(head);
                    let count = read_available_into(fd, frame, limit)?;
                    Ok((count > 0).then(|| consume.take().map(|consume| consume(frame))).flatten())
                })
            })
            .await?;
        Ok(consumed.flatten())
    }
}

/// What [`PtyReader::read_blocking`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingRead {
    /// This many bytes were appended.
    Read(usize),
    /// No output came within the timeout.
    TimedOut,
    /// The terminal is closed on the program's side.
    Closed,
}

impl PtyReader {
    /// Blocks the calling thread until output is available or `timeout` passes, then appends
    /// as much as is available, at most `limit` bytes, to `buffer`. A `limit` of 0 reads as 1.
    ///
    /// For a thread of its own (`spawn_blocking`), never an async worker: it lets a terminal be
    /// drained while another thread sends what was read. Only one reader, blocking or async,
    /// may read a terminal at a time, or the output's order is lost between them.
    pub fn read_blocking(&self, buffer: &mut Vec<u8>, limit: usize, timeout: Duration) -> io::Result<BlockingRead> {
        let fd = self.master.get_ref();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            // Rounded up, so that a timeout below a millisecond still waits.
            let wait = PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
            let mut polled = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut polled, wait) {
                Ok(0) => return Ok(BlockingRead::TimedOut),
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(error) => return Err(error.into()),
            }
            match read_available_into(fd, buffer, limit.max(1)) {
                Ok(0) => return Ok(BlockingRead::Closed),
                Ok(count) => return Ok(BlockingRead::Read(count)),
                Err(error) if error.raw_os_error() == Some(libc::EIO) => return Ok(BlockingRead::Closed),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
    }
}

/// Reads until `buffer` is full or nothing more is available; `WouldBlock` only when nothing
/// was read at all.
fn read_available(fd: &OwnedFd, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the same memory, seen as possibly uninitialised: `read_available_uninit` only
    // ever stores bytes read(2) wrote, so the slice stays initialised.
    let uninit = unsafe { &mut *(std::ptr::from_mut(buffer) as *mut [std::mem::MaybeUninit<u8>]) };
    read_available_uninit(fd, uninit)
}

/// [`read_available`] into the spare capacity of `buffer` (at most `limit` bytes, appended),
/// without initialising it first; the count appended.
fn read_available_into(fd: &OwnedFd, buffer: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    buffer.reserve(limit);
    let start = buffer.len();
    let count = read_available_uninit(fd, &mut buffer.spare_capacity_mut()[..limit])?;
    // SAFETY: the kernel initialised these `count` bytes right after the old length.
    unsafe { buffer.set_len(start + count) };
    Ok(count)
}

/// [`read_available`] into memory that may be uninitialised: the bytes before the count
/// returned are initialised, by the kernel.
fn read_available_uninit(fd: &OwnedFd, buffer: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let rest = &mut buffer[filled..];
        // SAFETY: `rest` is writable memory of `rest.len()` bytes; read(2) writes at most that
        // many and says how many it wrote.
        let count = unsafe { libc::read(fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match usize::try_from(count) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(_) => match Errno::last() {
                Errno::EINTR => continue,
                _ if filled > 0 => break,
                error => return Err(error.into()),
            },
        }
    }
    Ok(filled)
}

/// Writes to a PTY's input. Cloneable handles share one master.
#[derive(Debug, Clone)]
pub struct PtyWriter {
    master: Arc<AsyncFd<OwnedFd>>,
}

impl PtyWriter {
    /// Sets the terminal's size; the program gets SIGWINCH.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        // SAFETY: the fd is a valid open PTY master for as long as `self.master` lives, and the
        // pointer is to a properly initialised winsize on the stack.
        unsafe { set_window_size(self.master.get_ref().as_raw_fd(), &size.winsize()) }
            .map(drop)
            .map_err(io::Error::from)
    }

    /// Writes all of `data`, waiting while the terminal's input queue is full.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(count)) => data = &data[count..],
                Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}
