//! The server configuration: go_ws_sh's `server-config.json` as it is, plus wssh's own keys.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid server configuration: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("server {index}: {reason}")]
    Listener { index: usize, reason: String },
}

/// The whole configuration file. Unknown keys are ignored, as go_ws_sh does.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServerConfig {
    /// Users created on start when missing; they are administrators.
    pub(crate) initial_credentials: Vec<InitialCredential>,
    /// Sessions created on start when missing.
    pub(crate) initial_sessions: Vec<InitialSession>,
    /// Listeners.
    pub(crate) servers: Vec<ListenerConfig>,
    /// go_ws_sh's per-store files: accepted and ignored, wssh keeps one database.
    #[allow(dead_code)]
    pub(crate) session_file: Option<String>,
    #[allow(dead_code)]
    pub(crate) token_file: Option<String>,
    #[allow(dead_code)]
    pub(crate) credential_file: Option<String>,
    /// wssh: where the database lives, when `--data-dir` is not given.
    pub(crate) data_dir: Option<PathBuf>,
    /// wssh: failed logins allowed per user or address within the window (default 10).
    pub(crate) lockout_max_failures: Option<usize>,
    /// wssh: the lockout window in seconds (default 900).
    pub(crate) lockout_window_seconds: Option<u64>,
    /// wssh: whether anyone may create an account with `POST /user` (default false).
    pub(crate) allow_registration: bool,
    /// wssh: listener limits, lockout, password rules (see `hardening.rs`).
    pub(crate) limits: crate::hardening::LimitsConfig,
    /// wssh: stream the audit log as JSON lines to this file, or to standard error with `-`
    /// (the `--audit-log` option wins).
    pub(crate) audit_log: Option<PathBuf>,
}

/// One `initial_credentials` entry.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct InitialCredential {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for InitialCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialCredential").field("username", &self.username).finish_non_exhaustive()
    }
}

/// One `initial_sessions` entry.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct InitialSession {
    pub(crate) name: String,
    pub(crate) cmd: String,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) dir: String,
}

/// A port, which go_ws_sh's configs write as a string (`"28080"`) and others as a number.
/// Both the server's and `wssh connect`'s configuration files use it.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum Port {
    Number(u16),
    Text(String),
}

impl Port {
    /// The port number; `None` when the text is not one.
    pub(crate) fn number(&self) -> Option<u16> {
        match self {
            Port::Number(port) => Some(*port),
            Port::Text(text) => text.trim().parse().ok(),
        }
    }

    /// Whether it was written as an empty string.
    pub(crate) fn is_blank(&self) -> bool {
        matches!(self, Port::Text(text) if text.trim().is_empty())
    }

    /// The port as written, for messages.
    pub(crate) fn as_written(&self) -> String {
        match self {
            Port::Number(port) => port.to_string(),
            Port::Text(text) => text.clone(),
        }
    }
}

/// One `servers` entry.
#[derive(Debug, Deserialize, Clone)]
pub(crate) struct ListenerConfig {
    pub(crate) port: Port,
    #[serde(default)]
    pub(crate) protocol: String,
    #[serde(default)]
    pub(crate) alpn: String,
    #[serde(default)]
    pub(crate) cert: String,
    #[serde(default)]
    pub(crate) key: String,
    /// wssh: the address to bind; go_ws_sh binds every interface.
    #[serde(default)]
    pub(crate) host: Option<String>,
}

impl ListenerConfig {
    pub(crate) fn port(&self, index: usize) -> Result<u16, ConfigError> {
        self.port.number().ok_or_else(|| ConfigError::Listener {
            index,
            reason: format!("invalid port {:?}", self.port.as_written()),
        })
    }

    /// Whether the listener speaks TLS: `protocol` https, or go_ws_sh's `alpn` h2.
    pub(crate) fn is_tls(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("https") || self.alpn.eq_ignore_ascii_case("h2")
    }
}

impl ServerConfig {
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        serde_json::from_slice(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }
}

/// The default data directory: `$XDG_DATA_HOME/wssh`, else `~/.local/share/wssh`, else
/// `./wssh-data`.
pub(crate) fn default_data_dir() -> PathBuf {
    if let Some(data_home) = std::env::var_os("XDG_DATA_HOME").filter(|value| !value.is_empty()) {
        return PathBuf::from(data_home).join("wssh");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|value| !value.is_empty()) {
        return PathBuf::from(home).join(".local/share/wssh");
    }
    PathBuf::from("wssh-data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_ws_sh_configs() {
        let config: ServerConfig = serde_json::from_str(
            r#"{"session_file":"session_store.db","credential_file":"c.db","token_file":"t.db",
                "initial_credentials":[{"username":"admin","password":"pass"}],
                "initial_sessions":[{"name":"bash","cmd":"bash","args":["-i"],"dir":"/root"}],
                "servers":[{"port":"28080","protocol":"http"},{"alpn":"h2","port":28443,"protocol":"https","cert":"a","key":"b"}],
                "unknown":1}"#,
        )
        .unwrap();
        assert_eq!(config.initial_credentials[0].username, "admin");
        assert_eq!(config.servers[0].port(0).unwrap(), 28080);
        assert!(!config.servers[0].is_tls());
        assert_eq!(config.servers[1].port(1).unwrap(), 28443);
        assert!(config.servers[1].is_tls());
    }
}
