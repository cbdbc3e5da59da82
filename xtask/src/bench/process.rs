//! Server processes of the bench: starting one in its own process group with its output in a
//! log file, finding its listening port in that log, and stopping it for sure.
//!
//! Stopping escalates: SIGTERM, a second SIGTERM (ttyd only asks for a second one, or ^C, to
//! really exit), then SIGKILL to the whole process group (the shells it left behind too), and
//! the process is always reaped. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::target::Result;

/// How long a process has to exit after each SIGTERM.
const TERM_GRACE: Duration = Duration::from_millis(1500);
/// How long the kernel has to reap after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A server process, stopped ([`stop`]) when dropped.
pub(crate) struct ServerProcess {
    /// The process; `None` once stopped.
    child: Option<Child>,
    /// Where its standard output and error go.
    log: PathBuf,
    /// Its name in messages.
    name: String,
}

impl ServerProcess {
    /// Spawns `command` in a new process group, standard input closed, standard output and error
    /// appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> Result<ServerProcess> {
        use std::os::unix::process::CommandExt as _;
        let file = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot start {name}: {error}"))?;
        Ok(ServerProcess { child: Some(child), log: log.to_owned(), name: name.to_owned() })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits (polling the log, at most `limit`) for a line containing `marker` and returns what
    /// follows the marker on that line, trimmed. Fails early when the process exits.
    pub(crate) async fn wait_for_line(&mut self, marker: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = text.lines().find_map(|line| line.split_once(marker).map(|(_, rest)| rest)) {
                return Ok(rest.trim().to_owned());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(
                    format!("{} exited ({status}) before it listened; see {}", self.name, self.log.display()).into()
                );
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not listen within {limit:?}; see {}", self.name, self.log.display()).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The port after `marker` in the log (`Listening on port: 35043`, `listening on 35043`).
    pub(crate) async fn wait_for_port(&mut self, marker: &str, limit: Duration) -> Result<u16> {
        let rest = self.wait_for_line(marker, limit).await?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().map_err(|_| format!("{}: no port in {rest:?}", self.name).into())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }
}

/// Stops `child` and reaps it: SIGTERM, a second SIGTERM, then SIGKILL; then SIGKILL to its
/// process group, when it led one, for whatever it left behind.
pub(crate) fn stop(child: &mut Child) {
    let Ok(raw) = i32::try_from(child.id()) else { return };
    let pid = Pid::from_raw(raw);
    let exited = |child: &mut Child, grace: Duration| {
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return true,
                Ok(None) if Instant::now() > deadline => return false,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    };
    let done = [Signal::SIGTERM, Signal::SIGTERM]
        .into_iter()
        .any(|signal| kill(pid, signal).is_err() || exited(child, TERM_GRACE));
    if !done {
        let _ = child.kill();
        let _ = exited(child, KILL_GRACE);
    }
    // A process group led by the child (spawned with `process_group(0)`) shares its id.
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.try_wait();
}

/// Runs `command` to completion within `limit`, output to `log`; kills it when it overruns.
pub(crate) fn run_bounded(mut command: Command, log: &Path, limit: Duration) -> Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let program = format!("{:?}", command.get_program());
    let mut child = command.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).spawn()?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("{program} failed ({status}); see {}", log.display()).into())
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{program} took more than {limit:?}; see {}", log.display()).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A loopback port that was free a moment ago, for servers that cannot report the port they
/// bound (wetty prints the port it was given).
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `port` on loopback accepts connections, at most `limit`; fails early when
/// `process` exits.
pub(crate) async fn wait_for_listener(process: &mut ServerProcess, port: u16, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if let Some(child) = process.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(format!("{} exited ({status}); see {}", process.name, process.log.display()).into());
        }
        if Instant::now() > deadline {
            return Err(
                format!("{} did not listen within {limit:?}; see {}", process.name, process.log.display()).into()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ignores_sigterm_is_killed_and_reaped() {
        let mut command = Command::new("sh");
        command.args(["-c", "trap '' TERM; echo 'listening on 4242'; sleep 60"]);
        let log = std::env::temp_dir().join(format!("wssh-bench-process-{}.log", std::process::id()));
        let mut process = ServerProcess::spawn("sh", command, &log).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let port = runtime.block_on(process.wait_for_port("listening on", Duration::from_secs(10))).unwrap();
        assert_eq!(port, 4242);
        let pid = process.pid();
        let started = Instant::now();
        drop(process);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "not reaped");
        let _ = std::fs::remove_file(log);
    }
}
