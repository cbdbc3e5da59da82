//! What a web terminal under test is, to the benchmark: a [`Target`] starts [`Instance`]s, an
//! instance opens [`Terminal`]s running one of a few fixed [`Program`]s, and a terminal sends
//! keystrokes and yields output.
//!
//! Everything a figure needs goes through these traits, so that adding a peer (ttyd,
//! terminado, wetty …) means writing one more implementation: how to start it
//! ([`Target::start`]), how to connect ([`Instance::open`]), how to send a keystroke
//! ([`Terminal::send`]) and how to recognise output among its frames ([`Terminal::recv`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// Any error of the benchmark; it is reported and ends the run.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// A result with [`Error`].
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed future, so that targets can live behind `dyn Target`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The terminal size every target is asked for.
pub(crate) const COLS: u16 = 80;
/// The terminal size every target is asked for.
pub(crate) const ROWS: u16 = 24;

/// A program a target must be able to run in a fresh terminal. Targets learn the command lines
/// from [`Programs`] before they start (a server's configuration names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Program {
    /// `cat` on a terminal in its default (canonical, echoing) mode: the keystroke figure.
    Cat,
    /// Prints `ready` and waits for a line (until the terminal is closed): the connect-time
    /// figure. It does not exit at once because ttyd then sometimes closes the connection
    /// before sending the output (about one connect in five here).
    Ready,
    /// Prints `ready`, waits for a line, then `cat`s the bench file, prints the sentinel and
    /// waits for another line (until the terminal is closed): the throughput figure. It does not
    /// exit after the sentinel because ttyd closes the connection as soon as its program exits,
    /// dropping output still in the PTY.
    Throughput,
}

impl Program {
    /// Every program, in the order servers are configured with them.
    pub(crate) const ALL: [Program; 3] = [Program::Cat, Program::Ready, Program::Throughput];

    /// The session (or route) name under which a server offers the program.
    pub(crate) fn session_name(self) -> &'static str {
        match self {
            Program::Cat => "cat",
            Program::Ready => "ready",
            Program::Throughput => "throughput",
        }
    }
}

/// The command lines of the [`Program`]s, fixed for a whole bench run.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// The generated file that [`Program::Throughput`] prints.
    pub(crate) file: PathBuf,
}

impl Programs {
    /// What [`Program::Ready`] and [`Program::Throughput`] print first.
    pub(crate) const READY: &'static [u8] = b"ready";
    /// The line [`Program::Throughput`] prints after the file. The shell computes the `42`, so
    /// the sentinel never appears in any command line a terminal might echo.
    pub(crate) const SENTINEL: &'static [u8] = b"BENCH-42-END";
    /// The working directory of every program.
    pub(crate) const DIR: &'static str = "/tmp";

    /// The program's argument vector (program first).
    pub(crate) fn argv(&self, program: Program) -> Vec<String> {
        let script = match program {
            Program::Cat => return vec!["cat".into()],
            Program::Ready => "echo ready; read line".to_owned(),
            Program::Throughput => {
                format!("echo ready; read line; cat {}; echo BENCH-$((40+2))-END; read line", shell_quote(&self.file))
            }
        };
        vec!["sh".into(), "-c".into(), script]
    }
}

/// `path` as one single-quoted shell word.
pub(crate) fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// What a terminal has received on the wire since it was opened (after any handshake).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WireCount {
    /// Bytes read from the socket: frame headers, envelopes, compression and payload.
    pub(crate) bytes: u64,
    /// Frames (messages) received, control messages included.
    pub(crate) frames: u64,
}

/// A web terminal under test: a name and how to start it.
pub(crate) trait Target: Send + Sync {
    /// The name in the table and the report.
    fn name(&self) -> &str;

    /// Starts a new instance (for a server: a new process with a fresh configuration and data
    /// directory, offering every [`Program`]). Dropping the instance stops it.
    fn start(&self) -> BoxFuture<'_, Result<Box<dyn Instance>>>;
}

/// A started [`Target`].
pub(crate) trait Instance: Send + Sync {
    /// The process whose CPU time and memory the figures charge to this instance's terminals
    /// running `program`, when there is one (the in-process raw PTY has none). Servers that run
    /// one command each (wetty) have one process per program.
    fn server_pid(&self, program: Program) -> Option<u32>;

    /// Connects (handshake, authentication), sizes the terminal [`COLS`]×[`ROWS`] and asks for
    /// `program`. Returns as soon as the request is made; the program may still be starting.
    fn open(&self, program: Program) -> BoxFuture<'_, Result<Box<dyn Terminal>>>;
}

/// Starts an instance of every target, in order.
pub(crate) async fn start_all(targets: &[Arc<dyn Target>]) -> Result<Vec<Box<dyn Instance>>> {
    let mut instances = Vec::with_capacity(targets.len());
    for target in targets {
        instances.push(target.start().await.map_err(|error| format!("cannot start {}: {error}", target.name()))?);
    }
    Ok(instances)
}

/// One open terminal of an [`Instance`].
pub(crate) trait Terminal: Send {
    /// Sends `input` as typed keystrokes.
    fn send<'a>(&'a mut self, input: &'a [u8]) -> BoxFuture<'a, Result<()>>;

    /// The next piece of program output (control messages are skipped); `None` once the
    /// terminal has ended.
    fn recv(&mut self) -> BoxFuture<'_, Result<Option<Bytes>>>;

    /// What arrived on the wire so far, for targets that have a wire.
    fn wire(&self) -> Option<WireCount>;

    /// Ends the terminal and waits (boundedly) for the far side to notice.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

impl dyn Terminal {
    /// Receives until the output so far contains `needle`, within `limit`. Returns everything
    /// received.
    pub(crate) async fn recv_until(&mut self, needle: &[u8], limit: Duration) -> Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        while !contains(&seen, needle) {
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Err(_) => {
                    return Err(format!(
                        "timed out waiting for {:?}; got {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&seen)
                    )
                    .into());
                }
                Ok(Ok(Some(bytes))) => seen.extend_from_slice(&bytes),
                Ok(Ok(None)) => {
                    return Err(format!(
                        "terminal ended before {:?}; got {:?}",
                        String::from_utf8_lossy(needle),
                        String::from_utf8_lossy(&seen)
                    )
                    .into());
                }
                Ok(Err(error)) => return Err(error),
            }
        }
        Ok(seen)
    }
}

/// Whether `haystack` contains `needle` (short needles, short haystacks).
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throughput_script_quotes_the_file_and_hides_the_sentinel() {
        let programs = Programs { file: PathBuf::from("/tmp/it's here/lines.txt") };
        let argv = programs.argv(Program::Throughput);
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert!(argv[2].contains(r"cat '/tmp/it'\''s here/lines.txt';"), "{}", argv[2]);
        assert!(!contains(argv[2].as_bytes(), Programs::SENTINEL));
    }
}
