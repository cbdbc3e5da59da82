//! The server's hardening settings (the configuration's `limits` object) and the process-wide
//! steps taken for them at start: the open-files limit.

use std::time::Duration;

use serde::Deserialize;
use wssh_auth::Authenticator;
use wssh_auth::hash_queue::HashQueueLimits;
use wssh_auth::password::PasswordPolicy;
use wssh_auth::throttle::LoginThrottle;
use wssh_http::ListenerLimits;

/// The configuration's `limits` object; every key is optional (defaults in `docs/security.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LimitsConfig {
    /// Open connections across all listeners (default: from the open-files limit).
    pub(crate) max_connections: Option<usize>,
    /// Open connections from one client address (default 256).
    pub(crate) max_connections_per_address: Option<usize>,
    /// Seconds a request's headers may take, and an idle HTTP/1 connection may wait (default 10).
    pub(crate) header_read_timeout_seconds: Option<u64>,
    /// Seconds a connection may move no byte outside a WebSocket (default 60).
    pub(crate) idle_timeout_seconds: Option<u64>,
    /// Seconds a TLS handshake may take (default 10).
    pub(crate) tls_handshake_timeout_seconds: Option<u64>,
    /// Seconds a client may leave a reply unread before its connection is dropped (default 30).
    pub(crate) write_timeout_seconds: Option<u64>,
    /// Failed logins one client address may make within the lockout window, across accounts
    /// (default 100).
    pub(crate) lockout_address_max_failures: Option<usize>,
    /// Failed logins one account may take within an hour before only addresses it signed in
    /// from may try (default 100).
    pub(crate) lockout_account_max_failures_per_hour: Option<usize>,
    /// Password hashes that may wait or run at once (default 16 per hashing thread).
    pub(crate) hash_queue: Option<usize>,
    /// Of those, at most this many for one client address (default an eighth, at least 2).
    pub(crate) hash_queue_per_address: Option<usize>,
    /// Of those, this many kept for addresses without recent failed logins (default a quarter).
    pub(crate) hash_queue_reserved: Option<usize>,
    /// The fewest characters a new password may have (default 8).
    pub(crate) password_min_length: Option<usize>,
}

impl LimitsConfig {
    /// The listener limits, for a process allowed `open_files` descriptors.
    pub(crate) fn listener_limits(&self, open_files: u64) -> ListenerLimits {
        let defaults = ListenerLimits::default();
        let seconds = |value: Option<u64>, default: Duration| value.map_or(default, |s| Duration::from_secs(s.max(1)));
        ListenerLimits {
            header_read_timeout: seconds(self.header_read_timeout_seconds, defaults.header_read_timeout),
            idle_timeout: seconds(self.idle_timeout_seconds, defaults.idle_timeout),
            tls_handshake_timeout: seconds(self.tls_handshake_timeout_seconds, defaults.tls_handshake_timeout),
            write_timeout: seconds(self.write_timeout_seconds, defaults.write_timeout),
            max_connections: self
                .max_connections
                .unwrap_or_else(|| ListenerLimits::max_connections_for(open_files))
                .max(1),
            max_connections_per_address: self
                .max_connections_per_address
                .unwrap_or(defaults.max_connections_per_address)
                .max(1),
        }
    }
}

impl LimitsConfig {
    /// The login throttle: `max_failures` per (account, address) within `window` (the
    /// configuration's `lockout_max_failures` and `lockout_window_seconds`), and this object's
    /// address and account limits.
    pub(crate) fn login_throttle(&self, max_failures: Option<usize>, window_seconds: Option<u64>) -> LoginThrottle {
        LoginThrottle::new(max_failures.unwrap_or(10), Duration::from_secs(window_seconds.unwrap_or(15 * 60)))
            .with_address_limit(self.lockout_address_max_failures.unwrap_or(100))
            .with_account_limit_per_hour(self.lockout_account_max_failures_per_hour.unwrap_or(100))
    }
}

impl LimitsConfig {
    /// `auth` with the configured hashing queue limits and password policy, where set.
    pub(crate) fn configure_auth(&self, auth: Authenticator) -> Authenticator {
        let policy = PasswordPolicy { min_chars: self.password_min_length.unwrap_or(8).max(1) };
        let auth = auth.with_password_policy(policy);
        let defaults = auth.hash_queue_limits();
        let capacity = self.hash_queue.unwrap_or(defaults.capacity).max(1);
        let scaled = if self.hash_queue.is_some() { HashQueueLimits::for_capacity(capacity) } else { defaults };
        auth.with_hash_queue_limits(HashQueueLimits {
            capacity,
            per_address: self.hash_queue_per_address.unwrap_or(scaled.per_address),
            reserved: self.hash_queue_reserved.unwrap_or(scaled.reserved),
        })
    }
}

/// Raises the soft open-files limit to the hard one; returns the soft limit in force.
pub(crate) fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise the open-files limit");
        }
    }
    limit.rlim_cur
}

/// The lock file in the data directory that one server at a time holds.
const LOCK_FILE: &str = "wssh.lock";

/// The held lock, kept for the life of the process (the kernel releases it at exit).
static DATA_DIR_LOCK: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Takes the data directory for this process: an exclusive `flock` on `wssh.lock`, which
/// holds our pid. A second server on the same directory is refused with a clear error.
pub(crate) fn lock_data_dir(data_dir: &std::path::Path) -> Result<(), String> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|error| format!("cannot open the lock file {}: {error}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
            return Err(format!(
                "another wssh server{by} is already using the data directory {}; stop it first, or give this one \
                 another --data-dir",
                data_dir.display()
            ));
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(format!("cannot lock {}: {error}", path.display()));
        }
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    let _ = DATA_DIR_LOCK.set(file);
    Ok(())
}

/// Makes the database and its companions owner-only (0600) before SQLite opens it, whatever
/// the data directory's mode: a new database is created 0600 (SQLite gives its `-wal` and
/// `-shm` files the database's mode), and existing files are narrowed.
pub(crate) fn protect_database(database: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(database)
        .map_err(|error| format!("cannot create the database {}: {error}", database.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        if path.exists() {
            narrow_to_owner(&path)?;
        }
    }
    Ok(())
}

/// Sets a file's mode to 0600 unless it already grants nothing to group and others.
pub(crate) fn narrow_to_owner(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| format!("cannot make {} owner-only: {error}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_configuration_or_the_defaults() {
        let config: LimitsConfig =
            serde_json::from_str(r#"{"max_connections_per_address": 5, "header_read_timeout_seconds": 2}"#).unwrap();
        let limits = config.listener_limits(1024);
        assert_eq!(limits.max_connections_per_address, 5);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(limits.idle_timeout, ListenerLimits::default().idle_timeout);
        assert_eq!(limits.max_connections, ListenerLimits::max_connections_for(1024));
    }
}
