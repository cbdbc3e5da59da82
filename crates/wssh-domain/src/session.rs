//! Shell sessions: go_ws_sh's named command templates (name → cmd, args, dir).
//!
//! A session is not a running process: every connection to it spawns a fresh one.

use std::fmt;

use crate::{Timestamp, ValidationError, check_name};

/// A valid session name, usable as one URL path segment: 1 to 128 characters, no `/`, no
/// control characters, not `.` or `..`, no white space at either end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(String);

impl SessionName {
    /// Validates `value` as a session name; `field` names it in the refusal.
    pub fn parse_field(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        check_name(field, value, 128)?;
        if value.contains('/') {
            return Err(ValidationError::new(field, "contains a slash"));
        }
        if value == "." || value == ".." {
            return Err(ValidationError::new(field, "is a dot segment"));
        }
        Ok(SessionName(value.to_owned()))
    }

    /// Validates `value` as `session.name`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::parse_field("session.name", value)
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a session runs: a command, its arguments and a working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// The session's name.
    pub name: SessionName,
    /// The program, looked up in `PATH` when it has no slash.
    pub cmd: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The working directory; empty means the home directory of the account it runs as.
    pub dir: String,
    /// The OS account the program runs as (`run_as`); `None` runs it as the server's own.
    pub run_as: Option<String>,
    /// How long its live shells outlive their last client, in seconds
    /// (`detach_timeout_seconds`); `None` takes the server's `shell_detach_timeout_seconds`.
    pub detach_timeout_seconds: Option<u64>,
    /// Whether its shells are recorded (`record`).
    pub record: bool,
}

impl SessionSpec {
    /// The longest command, argument or directory accepted, in bytes.
    pub const MAX_FIELD_BYTES: usize = 4096;
    /// The most arguments accepted.
    pub const MAX_ARGS: usize = 256;

    /// Validates a session template.
    pub fn new(name: SessionName, cmd: String, args: Vec<String>, dir: String) -> Result<Self, ValidationError> {
        if cmd.is_empty() {
            return Err(ValidationError::new("session.cmd", "is empty"));
        }
        if cmd.contains('\0') || args.iter().any(|arg| arg.contains('\0')) || dir.contains('\0') {
            return Err(ValidationError::new("session", "contains a NUL byte"));
        }
        if cmd.len() > Self::MAX_FIELD_BYTES
            || dir.len() > Self::MAX_FIELD_BYTES
            || args.iter().any(|arg| arg.len() > Self::MAX_FIELD_BYTES)
        {
            return Err(ValidationError::new("session", "has a field that is too long"));
        }
        if args.len() > Self::MAX_ARGS {
            return Err(ValidationError::new("session.args", "has too many elements"));
        }
        Ok(SessionSpec { name, cmd, args, dir, run_as: None, detach_timeout_seconds: None, record: false })
    }

    /// The longest detach timeout a template may set: 30 days, in seconds.
    pub const MAX_DETACH_TIMEOUT_SECONDS: u64 = 30 * 86_400;

    /// The template with its own detach timeout (`None`: the server's); 0 ends its shells
    /// with their last connection.
    pub fn with_detach_timeout(mut self, seconds: Option<u64>) -> Result<Self, ValidationError> {
        if seconds.is_some_and(|seconds| seconds > Self::MAX_DETACH_TIMEOUT_SECONDS) {
            return Err(ValidationError::new("session.detach_timeout_seconds", "is more than 30 days"));
        }
        self.detach_timeout_seconds = seconds;
        Ok(self)
    }

    /// The template with its shells recorded or not.
    #[must_use]
    pub fn with_record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// The longest OS account name accepted, in bytes.
    pub const MAX_RUN_AS_BYTES: usize = 32;

    /// The template with the OS account its program runs as; an empty name means none.
    /// A name is 1 to 32 bytes of letters, digits, `_`, `.` or `-`, not starting with `-`.
    pub fn with_run_as(mut self, run_as: Option<String>) -> Result<Self, ValidationError> {
        self.run_as = match run_as.filter(|name| !name.is_empty()) {
            None => None,
            Some(name) => {
                let valid = name.len() <= Self::MAX_RUN_AS_BYTES
                    && !name.starts_with('-')
                    && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'));
                if !valid {
                    return Err(ValidationError::new("session.run_as", "is not a valid account name"));
                }
                Some(name)
            }
        };
        Ok(self)
    }
}

/// A stored session template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Name, command, arguments and directory.
    pub spec: SessionSpec,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(SessionName::parse("bash").is_ok());
        assert!(SessionName::parse("my sh").is_ok());
        assert!(SessionName::parse("a/b").is_err());
        assert!(SessionName::parse("..").is_err());
        assert!(SessionName::parse("").is_err());
    }

    #[test]
    fn specs() {
        let name = SessionName::parse("bash").unwrap();
        assert!(SessionSpec::new(name.clone(), "bash".into(), vec!["-i".into()], String::new()).is_ok());
        assert!(SessionSpec::new(name.clone(), String::new(), vec![], String::new()).is_err());
        assert!(SessionSpec::new(name.clone(), "bash".into(), vec!["a\0b".into()], String::new()).is_err());
        let spec = SessionSpec::new(name, "bash".into(), vec![], String::new()).unwrap();
        assert_eq!(spec.clone().with_run_as(Some("nobody".into())).unwrap().run_as.as_deref(), Some("nobody"));
        assert_eq!(spec.clone().with_run_as(Some(String::new())).unwrap().run_as, None);
        assert!(spec.clone().with_run_as(Some("-rf".into())).is_err());
        assert!(spec.with_run_as(Some("a b".into())).is_err());
    }
}
