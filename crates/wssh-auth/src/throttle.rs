//! The failed-login lockout: after `max_failures` failed password logins within `window` for
//! one user name, or from one client address, further attempts are refused until the oldest
//! failure leaves the window. State is in memory, per server process.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::AuthError;

/// Tracked keys beyond which new user names are no longer tracked (addresses still are), so
/// that a spray of random names cannot grow memory without bound.
const MAX_TRACKED_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// Counts failed logins per user name and per client address.
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl Default for LoginThrottle {
    /// Ten failures in fifteen minutes.
    fn default() -> Self {
        LoginThrottle::new(10, Duration::from_secs(15 * 60))
    }
}

impl LoginThrottle {
    /// A throttle that locks out after `max_failures` failures within `window`.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        LoginThrottle { max_failures: max_failures.max(1), window, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(username: &str, client: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::User(username.to_owned())).chain(client.map(Key::Address))
    }

    /// Refuses with [`AuthError::TooManyAttempts`] when the user or the address is locked out.
    pub fn check(&self, username: &str, client: Option<IpAddr>) -> Result<(), AuthError> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut retry_after = None::<Duration>;
        for key in Self::keys(username, client) {
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|time| now.duration_since(*time) >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max_failures {
                    let oldest = times.front().copied().unwrap_or(now);
                    let wait = self.window.saturating_sub(now.duration_since(oldest));
                    retry_after = Some(retry_after.map_or(wait, |other| other.max(wait)));
                }
            }
        }
        match retry_after {
            Some(wait) => Err(AuthError::TooManyAttempts { retry_after_seconds: wait.as_secs().max(1) }),
            None => Ok(()),
        }
    }

    /// Counts one failed login.
    pub fn record_failure(&self, username: &str, client: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_TRACKED_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|time| now.duration_since(*time) < self.window));
        }
        for key in Self::keys(username, client) {
            if failures.len() >= MAX_TRACKED_KEYS && !failures.contains_key(&key) && matches!(key, Key::User(_)) {
                continue;
            }
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }

    /// Forgets the failures of a user who just signed in.
    pub fn record_success(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&Key::User(username.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_max_failures() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            throttle.check("alice", Some(here)).unwrap();
            throttle.record_failure("alice", Some(here));
        }
        assert!(matches!(throttle.check("alice", Some(there)), Err(AuthError::TooManyAttempts { .. })));
        assert!(matches!(throttle.check("bob", Some(here)), Err(AuthError::TooManyAttempts { .. })));
        assert!(throttle.check("bob", Some(there)).is_ok());
    }

    #[test]
    fn failures_expire() {
        let throttle = LoginThrottle::new(1, Duration::from_millis(30));
        throttle.record_failure("alice", None);
        assert!(throttle.check("alice", None).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(throttle.check("alice", None).is_ok());
    }
}
