//! Where `wssh connect` goes and as whom: the URL on the command line, go_ws_sh's
//! `client-config.json`, and the flags, merged into one [`Plan`] (flags win over the file).

use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use wssh_auth::credentials::AuthorizationObject;

use crate::config::Port;

use super::{ConnectArgs, ConnectError};

/// Characters escaped in a session name that becomes a URL path segment.
const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'/').add(b'<').add(b'>').add(b'?');
const SEGMENT_EXTRA: &AsciiSet =
    &SEGMENT.add(b'`').add(b'{').add(b'}').add(b'[').add(b']').add(b'\\').add(b'^').add(b'|');

/// The server endpoint of one shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `wss` rather than `ws`.
    pub(crate) tls: bool,
    /// The host name for the `Host` header and TLS server name (IPv6 without brackets).
    pub(crate) host: String,
    /// The address to dial: `host`, or the config's `ip`.
    pub(crate) dial: String,
    /// The TCP port.
    pub(crate) port: u16,
    /// The request path, starting with `/` (the session name, percent-encoded).
    pub(crate) path: String,
}

impl Target {
    /// The WebSocket URI, `ws://host:port/path` or `wss://…`.
    pub(crate) fn uri(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}", authority(&self.host, self.port), self.path)
    }
}

/// Whether a request path names a session: something after its last `/` (`/bash`,
/// `/base/bash`; not `/` or `/base/`).
pub(crate) fn has_session(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    !path.rsplit('/').next().unwrap_or_default().is_empty()
}

/// `path` naming `session` (percent-encoded) instead: after a trailing `/` it is appended
/// (`/` and `/base/` become `/SESSION` and `/base/SESSION`), else it replaces the last segment
/// (`/base/other` becomes `/base/SESSION`); any query is dropped.
pub(crate) fn with_session(path: &str, session: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let prefix = path.rsplit_once('/').map_or("", |(prefix, _)| prefix);
    let session: String = percent_encoding::utf8_percent_encode(session, percent_encoding::NON_ALPHANUMERIC).collect();
    format!("{prefix}/{session}")
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The credentials to present, before any password prompt.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Login {
    /// A user name; the password when already known (environment or config file).
    Password {
        /// The user name.
        username: String,
        /// The password, or `None` to prompt for it.
        password: Option<String>,
    },
    /// An access token, with its identifier for go_ws_sh's token form.
    Token {
        /// The secret.
        token: String,
        /// The identifier, when given.
        identifier: Option<String>,
    },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Password { username, password } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .finish(),
            Login::Token { identifier, .. } => {
                f.debug_struct("Token").field("identifier", identifier).finish_non_exhaustive()
            }
        }
    }
}

/// How to verify the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TrustSettings {
    /// A PEM file of trusted certificates.
    pub(crate) ca: Option<PathBuf>,
    /// Accept any certificate.
    pub(crate) insecure: bool,
}

/// Everything needed to open the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Where.
    pub(crate) target: Target,
    /// As whom.
    pub(crate) login: Login,
    /// Which certificates to trust (https only).
    pub(crate) trust: TrustSettings,
}

/// go_ws_sh's `client-config.json`. Unknown keys are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ClientConfig {
    /// Who to log in as: go_ws_sh's `authorization` object (`type`, `username`, `password`,
    /// `token`, `identifier`), the same shape the server reads.
    pub(crate) credentials: AuthorizationObject,
    /// Which session to open.
    pub(crate) sessions: ConfigSession,
    /// Which server to reach.
    pub(crate) servers: ConfigServer,
}

/// The `sessions` object: `name` (older go_ws_sh versions: `path`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConfigSession {
    /// The session name.
    pub(crate) name: String,
    /// The older spelling of the session name.
    pub(crate) path: String,
}

/// The `servers` object.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConfigServer {
    /// The port.
    pub(crate) port: Option<Port>,
    /// `http` or `https`.
    pub(crate) protocol: String,
    /// A PEM file of trusted certificates.
    pub(crate) ca: String,
    /// Accept any certificate.
    pub(crate) insecure: bool,
    /// The host name (Host header, TLS server name).
    pub(crate) host: String,
    /// The address to dial, when it differs from `host`.
    pub(crate) ip: String,
}

impl ClientConfig {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<ClientConfig, ConnectError> {
        let text = std::fs::read(path)
            .map_err(|error| ConnectError::Usage(format!("cannot read {}: {error}", path.display())))?;
        serde_json::from_slice(&text).map_err(|error| {
            ConnectError::Usage(format!("{} is not a valid client configuration: {error}", path.display()))
        })
    }

    /// The target the `servers` and `sessions` objects describe.
    fn target(&self) -> Result<Target, ConnectError> {
        let server = &self.servers;
        let tls = match server.protocol.to_ascii_lowercase().as_str() {
            "http" | "ws" | "" => false,
            "https" | "wss" => true,
            other => return Err(ConnectError::Usage(format!("unknown protocol {other:?} in the configuration"))),
        };
        let host = match (server.host.trim(), server.ip.trim()) {
            ("", "") => return Err(ConnectError::Usage("the configuration names no server host".into())),
            ("", ip) => ip,
            (host, _) => host,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let dial = if server.ip.trim().is_empty() { host.clone() } else { server.ip.trim().to_owned() };
        let port = match &server.port {
            None => default_port(tls),
            Some(port) if port.is_blank() => default_port(tls),
            Some(port) => port
                .number()
                .ok_or_else(|| ConnectError::Usage(format!("bad port {:?} in the configuration", port.as_written())))?,
        };
        let name = if self.sessions.name.is_empty() { &self.sessions.path } else { &self.sessions.name };
        let path = format!("/{}", utf8_percent_encode(name.trim_start_matches('/'), SEGMENT_EXTRA));
        Ok(Target { tls, host, dial: dial.trim_start_matches('[').trim_end_matches(']').to_owned(), port, path })
    }
}

fn default_port(tls: bool) -> u16 {
    if tls { 443 } else { 80 }
}

/// Parses `http://HOST[:PORT]/SESSION` (also `https`, `ws`, `wss`).
pub(crate) fn parse_url(url: &str) -> Result<Target, ConnectError> {
    let bad = |why: &str| ConnectError::Usage(format!("bad URL {url:?}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http://HOST:PORT/SESSION"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    // Drop a fragment; keep a query (the server ignores it).
    let path = path.split('#').next().unwrap_or("/");
    if authority.contains('@') {
        return Err(bad("put credentials in --user or --token, not in the URL"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad("junk after the IPv6 address")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None | Some("") => default_port(tls),
        Some(port) => port.parse().map_err(|_| bad("the port must be a number up to 65535"))?,
    };
    Ok(Target { tls, host: host.to_owned(), dial: host.to_owned(), port, path: path.to_owned() })
}

/// Merges the URL, the config file and the flags into a [`Plan`]. `env` looks up environment
/// variables (the password variable), so tests can do without the real environment.
pub(crate) fn plan(args: &ConnectArgs, env: impl Fn(&str) -> Option<String>) -> Result<Plan, ConnectError> {
    let config = args.login.config.as_deref().map(ClientConfig::load).transpose()?;
    let config_dir = args.login.config.as_deref().and_then(Path::parent).map(Path::to_owned);
    plan_with(args, config.as_ref(), config_dir.as_deref(), env)
}

/// As [`plan`], for a call on the server as a whole (`wssh shells`): the URL needs no session.
pub(crate) fn plan_server(args: &ConnectArgs, env: impl Fn(&str) -> Option<String>) -> Result<Plan, ConnectError> {
    let config = args.login.config.as_deref().map(ClientConfig::load).transpose()?;
    let config_dir = args.login.config.as_deref().and_then(Path::parent).map(Path::to_owned);
    plan_inner(args, config.as_ref(), config_dir.as_deref(), env, false)
}

fn plan_with(
    args: &ConnectArgs,
    config: Option<&ClientConfig>,
    config_dir: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Plan, ConnectError> {
    plan_inner(args, config, config_dir, env, true)
}

fn plan_inner(
    args: &ConnectArgs,
    config: Option<&ClientConfig>,
    config_dir: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    needs_session: bool,
) -> Result<Plan, ConnectError> {
    let target = match (&args.url, config) {
        (Some(url), _) => parse_url(url)?,
        (None, Some(config)) => config.target()?,
        (None, None) if needs_session => {
            return Err(ConnectError::Usage("give a URL (http://HOST:PORT/SESSION) or --config FILE".into()));
        }
        (None, None) => {
            return Err(ConnectError::Usage("give the server's URL (http://HOST:PORT) or --config FILE".into()));
        }
    };
    if needs_session && (target.path == "/" || target.path.is_empty()) {
        return Err(ConnectError::Usage("no session name: use http://HOST:PORT/SESSION".into()));
    }

    let from_file = config.map(|config| &config.credentials);
    let nonempty = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let login = if let Some(token) = &args.login.token {
        let identifier =
            args.login.identifier.clone().or_else(|| from_file.and_then(|file| nonempty(&file.identifier)));
        Login::Token { token: token.clone(), identifier }
    } else if let Some(username) = &args.login.user {
        let file_password =
            from_file.filter(|file| file.username == *username).and_then(|file| nonempty(&file.password));
        let password = env(&args.login.password_env).filter(|password| !password.is_empty()).or(file_password);
        Login::Password { username: username.clone(), password }
    } else {
        match from_file {
            Some(file)
                if file.kind.eq_ignore_ascii_case("token") || (file.username.is_empty() && !file.token.is_empty()) =>
            {
                if file.token.is_empty() {
                    return Err(ConnectError::Usage("the configuration's token credentials have no token".into()));
                }
                Login::Token {
                    token: file.token.clone(),
                    identifier: args.login.identifier.clone().or_else(|| nonempty(&file.identifier)),
                }
            }
            Some(file) if !file.username.is_empty() => {
                let password = env(&args.login.password_env)
                    .filter(|password| !password.is_empty())
                    .or_else(|| nonempty(&file.password));
                Login::Password { username: file.username.clone(), password }
            }
            _ => return Err(ConnectError::Usage("no credentials: give --user NAME or --token SECRET".into())),
        }
    };

    let server = config.map(|config| &config.servers);
    let ca = args.login.ca.clone().or_else(|| {
        let ca = server.map(|server| server.ca.trim()).filter(|ca| !ca.is_empty())?;
        Some(resolve_relative(Path::new(ca), config_dir))
    });
    let insecure = args.login.insecure || server.is_some_and(|server| server.insecure);
    Ok(Plan { target, login, trust: TrustSettings { ca, insecure } })
}

/// A relative path from the config file: as given when it exists from the working directory
/// (go_ws_sh's behaviour), else next to the config file.
fn resolve_relative(path: &Path, config_dir: Option<&Path>) -> PathBuf {
    match config_dir {
        Some(dir) if path.is_relative() && !path.exists() => dir.join(path),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_a_session_after_its_last_slash() {
        for (path, named) in [("/bash", true), ("/base/bash", true), ("/", false), ("", false), ("/base/", false)] {
            assert_eq!(has_session(path), named, "{path}");
        }
        assert_eq!(with_session("/", "bash"), "/bash");
        assert_eq!(with_session("", "bash"), "/bash");
        assert_eq!(with_session("/base/", "bash"), "/base/bash");
        assert_eq!(with_session("/base/other?x=1", "my shell"), "/base/my%20shell");
        assert_eq!(with_session("/other", "bash"), "/bash");
    }

    fn args(url: Option<&str>) -> ConnectArgs {
        ConnectArgs {
            url: url.map(str::to_owned),
            login: crate::connect::LoginArgs {
                user: None,
                password_env: "WSSH_PASSWORD".into(),
                token: None,
                identifier: None,
                config: None,
                ca: None,
                insecure: false,
            },
            attach: None,
            observe: false,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn urls() {
        let target = parse_url("http://127.0.0.1:8080/sh").unwrap();
        assert_eq!(target.uri(), "ws://127.0.0.1:8080/sh");
        assert_eq!((target.dial.as_str(), target.port, target.tls), ("127.0.0.1", 8080, false));
        let target = parse_url("https://example.com/my%20shell").unwrap();
        assert_eq!(target.uri(), "wss://example.com:443/my%20shell");
        let target = parse_url("http://[::1]:9/sh").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 9));
        assert_eq!(target.uri(), "ws://[::1]:9/sh");
        assert_eq!(parse_url("wss://h/x#frag").unwrap().path, "/x");
        for bad in ["127.0.0.1/sh", "ftp://h/sh", "http://:80/sh", "http://h:99999/sh", "http://u:p@h/sh"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_url_needs_a_session() {
        let mut arguments = args(Some("http://h:1"));
        arguments.login.user = Some("admin".into());
        assert!(plan_with(&arguments, None, None, no_env).is_err());
    }

    #[test]
    fn flags_choose_the_credentials() {
        let mut arguments = args(Some("http://h:1/sh"));
        assert!(plan_with(&arguments, None, None, no_env).is_err(), "no credentials at all");
        arguments.login.user = Some("admin".into());
        let env = |name: &str| (name == "WSSH_PASSWORD").then(|| "pw".to_owned());
        let plan = plan_with(&arguments, None, None, env).unwrap();
        assert_eq!(plan.login, Login::Password { username: "admin".into(), password: Some("pw".into()) });
        let plan = plan_with(&arguments, None, None, no_env).unwrap();
        assert_eq!(plan.login, Login::Password { username: "admin".into(), password: None });
        arguments.login.token = Some("wssh_x".into());
        let plan = plan_with(&arguments, None, None, env).unwrap();
        assert_eq!(plan.login, Login::Token { token: "wssh_x".into(), identifier: None });
    }

    #[test]
    fn a_config_file_alone_is_enough() {
        let config: ClientConfig = serde_json::from_str(
            r#"{"credentials":{"type":"token","username":"admin","token":"abc","identifier":"1"},
                "sessions":{"name":"pwsh"},
                "servers":{"port":"28443","protocol":"https","ca":"localhost.crt","insecure":false,
                           "host":"localhost","ip":"127.0.0.1"}}"#,
        )
        .unwrap();
        let plan = plan_with(&args(None), Some(&config), Some(Path::new("/etc/wssh")), no_env).unwrap();
        assert_eq!(
            plan.target,
            Target { tls: true, host: "localhost".into(), dial: "127.0.0.1".into(), port: 28443, path: "/pwsh".into() }
        );
        assert_eq!(plan.target.uri(), "wss://localhost:28443/pwsh");
        assert_eq!(plan.login, Login::Token { token: "abc".into(), identifier: Some("1".into()) });
        assert_eq!(plan.trust.ca, Some(PathBuf::from("/etc/wssh/localhost.crt")));

        // Flags override the file.
        let mut arguments = args(Some("http://other:1/sh"));
        arguments.login.user = Some("bob".into());
        arguments.login.insecure = true;
        let env = |_: &str| Some("secret".to_owned());
        let plan = plan_with(&arguments, Some(&config), None, env).unwrap();
        assert_eq!(plan.target.uri(), "ws://other:1/sh");
        assert_eq!(plan.login, Login::Password { username: "bob".into(), password: Some("secret".into()) });
        assert!(plan.trust.insecure);
    }

    #[test]
    fn password_configs_and_odd_session_names() {
        let config: ClientConfig = serde_json::from_str(
            r#"{"credentials":{"type":"password","username":"admin","password":"pw"},
                "sessions":{"name":"my shell"},
                "servers":{"port":8080,"protocol":"http","host":"example.com"}}"#,
        )
        .unwrap();
        let plan = plan_with(&args(None), Some(&config), None, no_env).unwrap();
        assert_eq!(plan.target.uri(), "ws://example.com:8080/my%20shell");
        assert_eq!(plan.login, Login::Password { username: "admin".into(), password: Some("pw".into()) });
        let debug = format!("{:?}", plan.login);
        assert!(!debug.contains("pw\""), "{debug}");
    }
}
