//! The server configuration: go_ws_sh's `server-config.json` plus wssh's own keys, from a file
//! and from `WSSH_…` environment variables, read strictly: an unknown key is an error that
//! names the closest known one.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{source_name} is not valid JSON: {reason}")]
    Syntax { source_name: String, reason: String },
    #[error("{source_name}: unknown key `{key}`{hint}")]
    UnknownKey { source_name: String, key: String, hint: String },
    #[error("{source_name}: `{path}`: {reason}")]
    Invalid { source_name: String, path: String, reason: String },
    #[error("server {index}: {reason}")]
    Listener { index: usize, reason: String },
}

/// The top-level keys, each with the environment variable that can set it
/// (`WSSH_` + the key in capitals).
pub(crate) const TOP_KEYS: &[&str] = &[
    "initial_credentials",
    "initial_sessions",
    "servers",
    "session_file",
    "token_file",
    "credential_file",
    "data_dir",
    "database",
    "lockout_max_failures",
    "lockout_window_seconds",
    "allow_registration",
    "trusted_proxies",
    "base_path",
    "metrics_listen",
    "limits",
    "shell_detach_timeout_seconds",
    "shell_history_bytes",
    "shell_limit_per_user",
    "shell_limit_total",
    "audit_log",
    "record_all_shells",
    "recording_policy",
    "recording_max_age_seconds",
    "recording_max_total_bytes",
    "node_url",
    "record_input",
    "recording_gzip",
];
/// Keys of one `servers` entry.
const SERVER_KEYS: &[&str] = &["port", "protocol", "alpn", "cert", "key", "host"];
/// Keys of one `initial_sessions` entry.
const SESSION_KEYS: &[&str] = &["name", "cmd", "args", "dir", "record", "run_as", "detach_timeout_seconds"];
/// Keys of one `initial_credentials` entry.
const CREDENTIAL_KEYS: &[&str] = &["username", "password"];
/// Top-level keys whose environment variable is taken as text as it is (never as JSON).
const TEXT_KEYS: &[&str] = &[
    "session_file",
    "token_file",
    "credential_file",
    "data_dir",
    "base_path",
    "metrics_listen",
    "audit_log",
    "recording_policy",
    "database",
    "node_url",
];

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// wssh: a PostgreSQL URL, when `--database` is not given (default: SQLite in the data
    /// directory).
    pub(crate) database: Option<String>,
    /// wssh: the URL other nodes of a cluster reach this one at (`http://10.0.0.5:8080`);
    /// default: the first listener's address.
    pub(crate) node_url: Option<String>,
    /// wssh: failed logins allowed per user or address within the window (default 10).
    pub(crate) lockout_max_failures: Option<usize>,
    /// wssh: the lockout window in seconds (default 900).
    pub(crate) lockout_window_seconds: Option<u64>,
    /// wssh: whether anyone may create an account with `POST /user` (default false).
    pub(crate) allow_registration: bool,
    /// wssh: proxies (addresses or CIDR ranges) whose forwarding headers are believed; a list,
    /// or one string with commas.
    pub(crate) trusted_proxies: Option<List>,
    /// wssh: the path prefix everything is served under, e.g. `/wssh`.
    pub(crate) base_path: Option<String>,
    /// wssh: where `GET /metrics` is served (a listener of its own), e.g. `127.0.0.1:9100`.
    pub(crate) metrics_listen: Option<String>,
    /// wssh: how long a shell with no client attached keeps running, in seconds (default 300;
    /// 0 ends it with its last connection).
    pub(crate) shell_detach_timeout_seconds: Option<u64>,
    /// wssh: output bytes each shell keeps for clients that come back (default 4 MiB).
    pub(crate) shell_history_bytes: Option<usize>,
    /// wssh: live shells one user may have at once (default 50).
    pub(crate) shell_limit_per_user: Option<usize>,
    /// wssh: live shells on the server at once (default 1000).
    pub(crate) shell_limit_total: Option<usize>,
    /// wssh: listener limits, lockout, password rules (see `hardening.rs`).
    pub(crate) limits: crate::hardening::LimitsConfig,
    /// wssh: stream the audit log as JSON lines to this file, or to standard error with `-`
    /// (the `--audit-log` option wins).
    pub(crate) audit_log: Option<PathBuf>,
    /// wssh: record every shell (default false; see also a session's `record`).
    pub(crate) record_all_shells: bool,
    /// wssh: `drop` (default: keep the shell running, mark the gap) or `block` (pause output
    /// until the recording catches up) when the disk cannot keep up.
    pub(crate) recording_policy: Option<String>,
    /// wssh: remove recordings older than this many seconds.
    pub(crate) recording_max_age_seconds: Option<u64>,
    /// wssh: keep at most this many bytes of recordings, removing the oldest first.
    pub(crate) recording_max_total_bytes: Option<u64>,
    /// wssh: record the clients' input too (default false: keystrokes carry passwords).
    pub(crate) record_input: bool,
    /// wssh: write recordings gzip-compressed (`.cast.gz`; default false).
    pub(crate) recording_gzip: bool,
}

/// A list written as a JSON array or as one comma-separated string.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum List {
    Items(Vec<String>),
    Text(String),
}

impl List {
    /// The items, trimmed, empty ones dropped.
    pub(crate) fn items(&self) -> Vec<String> {
        let items: Vec<&str> = match self {
            List::Items(items) => items.iter().map(String::as_str).collect(),
            List::Text(text) => text.split(',').collect(),
        };
        items.into_iter().map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
    }
}

/// Checks and normalises a base path: `/`-separated segments of unreserved URL characters,
/// no trailing slash; `/` or empty means none.
pub(crate) fn base_path(text: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && trimmed[1..].split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
        });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(format!("invalid base path {text:?}: expected /segment[/segment…] of letters, digits and -._~"))
    }
}

/// One `initial_credentials` entry.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
pub(crate) struct InitialSession {
    pub(crate) name: String,
    pub(crate) cmd: String,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) dir: String,
    /// wssh: record this session's shells (`true`), or stop recording them (`false`); left
    /// out, the stored template's flag stays as it is.
    pub(crate) record: Option<bool>,
    /// wssh: the OS account its program runs as (needs the server to run as root).
    pub(crate) run_as: Option<String>,
    /// wssh: how long its live shells outlive their last client (else the server's).
    pub(crate) detach_timeout_seconds: Option<u64>,
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
#[serde(deny_unknown_fields)]
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
    /// wssh: the address (or host name) to bind; go_ws_sh binds every interface.
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
    /// The live-shell settings, defaults filled in.
    pub(crate) fn shell_settings(&self) -> wssh_http::ShellSettings {
        let defaults = wssh_http::ShellSettings::default();
        wssh_http::ShellSettings {
            history_bytes: self.shell_history_bytes.unwrap_or(defaults.history_bytes),
            detach_timeout: self
                .shell_detach_timeout_seconds
                .map_or(defaults.detach_timeout, std::time::Duration::from_secs),
            max_per_user: self.shell_limit_per_user.unwrap_or(defaults.max_per_user),
            max_total: self.shell_limit_total.unwrap_or(defaults.max_total),
        }
    }

    /// Reads the file at `path` (if any), then the `WSSH_…` variables in `env` (which win), and
    /// checks every key's name and type.
    pub(crate) fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut value, file_name) = match path {
            Some(path) => {
                let text = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                let source_name = path.display().to_string();
                let value: Value = serde_json::from_slice(&text).map_err(|error| ConfigError::Syntax {
                    source_name: source_name.clone(),
                    reason: error.to_string(),
                })?;
                check_keys(&value, &source_name)?;
                (value, source_name)
            }
            None => (Value::Object(Map::new()), "the configuration".to_owned()),
        };
        let Value::Object(object) = &mut value else {
            return Err(ConfigError::Invalid {
                source_name: file_name,
                path: ".".into(),
                reason: "the configuration must be a JSON object".into(),
            });
        };
        for (name, text) in env {
            let Some(key) = name.strip_prefix("WSSH_").map(str::to_ascii_lowercase) else { continue };
            let Some(key) = TOP_KEYS.iter().find(|known| **known == key) else { continue };
            let value = if TEXT_KEYS.contains(key) {
                Value::String(text)
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            let single = Value::Object(Map::from_iter([((*key).to_owned(), value.clone())]));
            check_keys(&single, &name)?;
            deserialize(single, &name)?;
            object.insert((*key).to_owned(), value);
        }
        deserialize(value, &file_name)
    }
}

fn deserialize(value: Value, source_name: &str) -> Result<ServerConfig, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        ConfigError::Invalid { source_name: source_name.to_owned(), path, reason: error.into_inner().to_string() }
    })
}

/// Refuses the first unknown key, at the top level or in a list entry, naming the closest
/// known key when one is close.
fn check_keys(value: &Value, source_name: &str) -> Result<(), ConfigError> {
    let Value::Object(top) = value else { return Ok(()) };
    check_object(top, TOP_KEYS, "", source_name)?;
    for (list, keys) in
        [("servers", SERVER_KEYS), ("initial_sessions", SESSION_KEYS), ("initial_credentials", CREDENTIAL_KEYS)]
    {
        if let Some(Value::Array(entries)) = top.get(list) {
            for (index, entry) in entries.iter().enumerate() {
                if let Value::Object(entry) = entry {
                    check_object(entry, keys, &format!("{list}[{index}]."), source_name)?;
                }
            }
        }
    }
    Ok(())
}

fn check_object(
    object: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    source_name: &str,
) -> Result<(), ConfigError> {
    for key in object.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let closest = known
            .iter()
            .map(|candidate| (strsim::jaro_winkler(key, candidate), *candidate))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let hint = closest.map(|(_, candidate)| format!(" (did you mean `{prefix}{candidate}`?)")).unwrap_or_default();
        return Err(ConfigError::UnknownKey {
            source_name: source_name.to_owned(),
            key: format!("{prefix}{key}"),
            hint,
        });
    }
    Ok(())
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

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        ServerConfig::load(Some(file.path()), env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn reads_go_ws_sh_configs() {
        let config = load_text(
            r#"{"session_file":"session_store.db","credential_file":"c.db","token_file":"t.db",
                "initial_credentials":[{"username":"admin","password":"pass"}],
                "initial_sessions":[{"name":"bash","cmd":"bash","args":["-i"],"dir":"/root"}],
                "servers":[{"port":"28080","protocol":"http"},{"alpn":"h2","port":28443,"protocol":"https","cert":"a","key":"b"}]}"#,
            &[],
        )
        .unwrap();
        assert_eq!(config.initial_credentials[0].username, "admin");
        assert_eq!(config.servers[0].port(0).unwrap(), 28080);
        assert!(!config.servers[0].is_tls());
        assert_eq!(config.servers[1].port(1).unwrap(), 28443);
        assert!(config.servers[1].is_tls());
    }

    #[test]
    fn unknown_keys_are_refused_with_the_closest_known_one() {
        let error = load_text(r#"{"initial_session":[]}"#, &[]).unwrap_err().to_string();
        assert!(error.contains("unknown key `initial_session`"), "{error}");
        assert!(error.contains("did you mean `initial_sessions`"), "{error}");
        let error = load_text(r#"{"servers":[{"port":1,"hots":"x"}]}"#, &[]).unwrap_err().to_string();
        assert!(error.contains("`servers[0].hots`") && error.contains("`servers[0].host`"), "{error}");
        let error = load_text(r#"{"zzzzzzzz":1}"#, &[]).unwrap_err().to_string();
        assert!(error.contains("`zzzzzzzz`") && !error.contains("did you mean"), "{error}");
    }

    #[test]
    fn base_paths_and_lists() {
        assert_eq!(base_path("/wssh/").unwrap(), "/wssh");
        assert_eq!(base_path("/").unwrap(), "");
        assert_eq!(base_path("/a/b-c").unwrap(), "/a/b-c");
        for bad in ["wssh", "/a//b", "/a/../b", "/a?b", "/a b", "/%41"] {
            assert!(base_path(bad).is_err(), "{bad}");
        }
        let config = load_text(r#"{"trusted_proxies":["10.0.0.1"]}"#, &[]).unwrap();
        assert_eq!(config.trusted_proxies.unwrap().items(), ["10.0.0.1"]);
        let config = load_text("{}", &[("WSSH_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16")]).unwrap();
        assert_eq!(config.trusted_proxies.unwrap().items(), ["10.0.0.1", "192.168.0.0/16"]);
    }

    #[test]
    fn wrong_types_name_the_key() {
        let error = load_text(r#"{"lockout_max_failures":"ten"}"#, &[]).unwrap_err().to_string();
        assert!(error.contains("lockout_max_failures"), "{error}");
    }

    #[test]
    fn environment_variables_set_every_key_and_win() {
        let config = load_text(
            r#"{"lockout_max_failures":3,"data_dir":"from-file"}"#,
            &[
                ("WSSH_LOCKOUT_MAX_FAILURES", "7"),
                ("WSSH_DATA_DIR", "123"),
                ("WSSH_ALLOW_REGISTRATION", "true"),
                ("WSSH_SERVERS", r#"[{"port":9000}]"#),
                ("WSSH_INITIAL_SESSIONS", r#"[{"name":"top","cmd":"top"}]"#),
                ("WSSH_WORKERS", "2"),
            ],
        )
        .unwrap();
        assert_eq!(config.lockout_max_failures, Some(7));
        assert_eq!(config.data_dir, Some(PathBuf::from("123")));
        assert!(config.allow_registration);
        assert_eq!(config.servers[0].port(0).unwrap(), 9000);
        assert_eq!(config.initial_sessions[0].cmd, "top");
        let error = load_text("{}", &[("WSSH_SERVERS", r#"[{"prot":1}]"#)]).unwrap_err().to_string();
        assert!(error.contains("WSSH_SERVERS") && error.contains("servers[0].prot"), "{error}");
    }
}
