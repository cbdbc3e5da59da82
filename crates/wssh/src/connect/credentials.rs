//! Credentials for `wssh connect`: the password prompt on `/dev/tty` (echo off) and the
//! `Authorization` header the server reads (`Basic` for a password, `Bearer` for a token).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nix::sys::termios::{LocalFlags, SpecialCharacterIndices};
use tokio::sync::oneshot;

use super::terminal::{Signals, TermiosGuard};
use super::{ConnectError, Interrupted};

/// The `Authorization` header value for a user and password.
pub(crate) fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

/// The `Authorization` header value for a token: the opaque `wssh_…` secret as it is, or with
/// an identifier go_ws_sh's `Bearer base64(json)` form.
pub(crate) fn bearer(token: &str, identifier: Option<&str>) -> String {
    match identifier {
        None => format!("Bearer {token}"),
        Some(identifier) => {
            let object = serde_json::json!({ "type": "token", "token": token, "identifier": identifier });
            format!("Bearer {}", STANDARD.encode(object.to_string()))
        }
    }
}

/// What the password prompt can end with besides a password.
pub(crate) enum PromptError {
    /// A signal (or Ctrl-C at the prompt) ended it; the signal number.
    Interrupted(Interrupted),
    /// No terminal to prompt on, or it failed.
    Failed(ConnectError),
}

/// Asks for `username`'s password on the controlling terminal with echo off. The terminal's
/// modes come back on every path: the guard lives here, in the async task, so a signal that
/// ends the wait restores them even though the reading thread stays blocked.
pub(crate) async fn prompt_password(username: &str, signals: &mut Signals) -> Result<String, PromptError> {
    let no_terminal = |error: std::io::Error| {
        PromptError::Failed(ConnectError::Usage(format!(
            "no password: set the password variable (--password-env) or run on a terminal ({error})"
        )))
    };
    let mut tty = OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(no_terminal)?;
    let mut reader = tty.try_clone().map_err(no_terminal)?;
    let guard_fd = tty.as_fd().try_clone_to_owned().map_err(no_terminal)?;
    // Echo goes off before the prompt shows, so nothing typed after it is ever echoed.
    let guard = TermiosGuard::apply(guard_fd, |termios| {
        termios.local_flags.remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG);
        termios.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        termios.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    })
    .map_err(|error| no_terminal(error.into()))?;
    write!(tty, "Password for {username}: ").and_then(|()| tty.flush()).map_err(no_terminal)?;

    let (sender, receiver) = oneshot::channel();
    // A plain thread, not spawn_blocking: it may stay blocked in read() after a signal, and
    // the runtime must not wait for it on shutdown.
    std::thread::Builder::new()
        .name("wssh-password".into())
        .spawn(move || {
            let _ = sender.send(read_secret_line(&mut reader));
        })
        .map_err(no_terminal)?;
    let outcome = tokio::select! {
        line = receiver => match line {
            Ok(Ok(Some(password))) => Ok(password),
            Ok(Ok(None)) => Err(PromptError::Interrupted(Interrupted::PromptCancelled)),
            Ok(Err(error)) => Err(no_terminal(error)),
            Err(_) => Err(no_terminal(std::io::Error::other("the prompt ended"))),
        },
        signal = signals.next() => Err(PromptError::Interrupted(Interrupted::Signal(signal))),
    };
    drop(guard);
    let _ = tty.write_all(b"\r\n");
    outcome
}

/// Reads one line byte by byte with line editing of our own (the terminal is non-canonical):
/// Enter ends it, Backspace and Ctrl-U edit, Ctrl-C (and Ctrl-D on an empty line) cancel.
fn read_secret_line(tty: &mut File) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match tty.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            0x03 => return Ok(None),
            0x04 if line.is_empty() => return Ok(None),
            0x7f | 0x08 => {
                // Drop one whole UTF-8 character.
                while let Some(last) = line.pop() {
                    if last & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => line.clear(),
            other => line.push(other),
        }
    }
    String::from_utf8(line).map(Some).map_err(|_| std::io::Error::other("the password is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        assert_eq!(basic("admin", "p:w"), format!("Basic {}", STANDARD.encode("admin:p:w")));
        assert_eq!(bearer("wssh_abc", None), "Bearer wssh_abc");
        let header = bearer("abc", Some("7"));
        let json = STANDARD.decode(header.strip_prefix("Bearer ").unwrap()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value, serde_json::json!({ "type": "token", "token": "abc", "identifier": "7" }));
    }
}
