//! The login throttle (NIST SP 800-63B §5.2.2): failed password logins are counted by
//! (account, client address), by address and by account, in the store, so that every server
//! on one database shares them. Limits:
//!
//! * **pair**: after `max_failures` failures of one account from one address within `window`,
//!   that pair waits a delay that doubles with each further failure (one minute, two, four…,
//!   at most `window`);
//! * **address**: the same, after `address_max_failures` failures from one address across
//!   accounts (higher, so that people behind one NAT do not lock each other out);
//! * **account**: after `account_max_failures_per_hour` failures of one account within an
//!   hour from all addresses together, only addresses the account signed in from during the
//!   last 30 days may try, which caps guessing while the real user still gets in.
//!
//! A throttled attempt is refused at once ([`AuthError::TooManyAttempts`]) and counts nothing.
//! Account names are kept only as hashes, so a password typed into the name field is never
//! stored.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wssh_store::{FailureTimes, ThrottleStore};

use crate::AuthError;

/// The account-wide window.
const ACCOUNT_WINDOW: Duration = Duration::from_secs(3600);
/// How long a successful sign-in keeps an address known to the account.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The first delay once a pair or an address is throttled; it doubles with each failure.
const FIRST_DELAY: Duration = Duration::from_secs(60);

/// What the throttle knows of an attempt it lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Whether a login from this address failed within the window (for any account).
    pub address_has_failed: bool,
    /// Whether the account signed in from this address lately (a known address).
    pub address_is_known: bool,
}

/// The throttle's limits.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    max_failures: usize,
    window: Duration,
    address_max_failures: usize,
    account_max_failures_per_hour: usize,
}

impl Default for LoginThrottle {
    /// Ten failures per pair in fifteen minutes, a hundred per address, a hundred per account
    /// and hour.
    fn default() -> Self {
        LoginThrottle::new(10, Duration::from_secs(15 * 60))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// What an account name is counted under: a hash, never the name typed.
fn account_key(username: &str) -> String {
    let digest = Sha256::new().chain_update(b"wssh-throttle\0").chain_update(username.as_bytes()).finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What a client address is counted under: IPv4 as it is, IPv6 by its /64, "-" when unknown.
pub(crate) fn address_key(client: Option<IpAddr>) -> String {
    match client {
        None => "-".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                format!("{}/64", std::net::Ipv6Addr::from(segments))
            }
        },
    }
}

impl LoginThrottle {
    /// A throttle for `max_failures` failures per (account, address) pair within `window`;
    /// the address limit is ten times that, the account limit a hundred an hour.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        let max_failures = max_failures.max(1);
        LoginThrottle {
            max_failures,
            window: window.max(Duration::from_secs(1)),
            address_max_failures: max_failures.saturating_mul(10),
            account_max_failures_per_hour: 100,
        }
    }

    /// Sets the failures one address may make within the window, across accounts.
    #[must_use]
    pub fn with_address_limit(mut self, failures: usize) -> Self {
        self.address_max_failures = failures.max(1);
        self
    }

    /// Sets the failures one account may take within an hour from unknown addresses.
    #[must_use]
    pub fn with_account_limit_per_hour(mut self, failures: usize) -> Self {
        self.account_max_failures_per_hour = failures.max(1);
        self
    }

    /// The delay of a pair or an address with `count` failures, `limit` allowed.
    fn delay(&self, count: usize, limit: usize) -> Option<Duration> {
        let extra = u32::try_from(count.checked_sub(limit)?).unwrap_or(u32::MAX).min(20);
        Some(FIRST_DELAY.saturating_mul(1 << extra).min(self.window))
    }

    /// Milliseconds to wait, if any, given the failures and whether the address is known.
    fn verdict(&self, times: &FailureTimes, known: impl FnOnce() -> bool, now: i64) -> Option<i64> {
        let since = now - millis(self.window);
        let mut wait = None::<i64>;
        let mut wait_at_least = |until: i64| {
            if until > now {
                wait = Some(wait.map_or(until - now, |other| other.max(until - now)));
            }
        };
        for (recent, limit) in [(&times.pair, self.max_failures), (&times.address, self.address_max_failures)] {
            let in_window: Vec<i64> = recent.iter().copied().filter(|time| *time >= since).collect();
            if let (Some(delay), Some(last)) = (self.delay(in_window.len(), limit), in_window.last()) {
                wait_at_least(last + millis(delay));
            }
        }
        let hour_ago = now - millis(ACCOUNT_WINDOW);
        let account: Vec<i64> = times.account.iter().copied().filter(|time| *time >= hour_ago).collect();
        let limit = self.account_max_failures_per_hour;
        if account.len() >= limit && !known() {
            // Open again once enough failures have left the hour.
            let freeing = account[account.len() - limit];
            wait_at_least(freeing + millis(ACCOUNT_WINDOW));
        }
        wait
    }

    fn lookback(&self) -> Duration {
        self.window.max(ACCOUNT_WINDOW)
    }

    fn fetch_limit(&self) -> usize {
        self.max_failures.max(self.address_max_failures).max(self.account_max_failures_per_hour).saturating_mul(2) + 64
    }

    /// Refuses with [`AuthError::TooManyAttempts`] when this account, from this address, must
    /// wait; otherwise tells whether the address failed lately.
    pub fn check(
        &self,
        store: &dyn ThrottleStore,
        username: &str,
        client: Option<IpAddr>,
    ) -> Result<Standing, AuthError> {
        let now = now_ms();
        let (account, address) = (account_key(username), address_key(client));
        let times = store.login_failures(&account, &address, now - millis(self.lookback()), self.fetch_limit())?;
        let known = store.is_known_address(&account, &address, now - millis(KNOWN_FOR))?;
        let verdict = self.verdict(&times, || known, now);
        match verdict {
            Some(wait) => Err(AuthError::TooManyAttempts {
                retry_after_seconds: u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1),
            }),
            None => {
                let since = now - millis(self.window);
                Ok(Standing {
                    address_has_failed: times.address.iter().any(|time| *time >= since),
                    address_is_known: known,
                })
            }
        }
    }

    /// Counts one failed login.
    pub fn record_failure(
        &self,
        store: &dyn ThrottleStore,
        username: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let now = now_ms();
        let forget_before = now - millis(self.lookback());
        Ok(store.record_login_failure(&account_key(username), &address_key(client), now, forget_before)?)
    }

    /// Forgets the pair's failures after a successful login and remembers the address.
    pub fn record_success(
        &self,
        store: &dyn ThrottleStore,
        username: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        Ok(store.record_login_success(&account_key(username), &address_key(client), now_ms())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(10, Duration::from_secs(15 * 60)).with_address_limit(100).with_account_limit_per_hour(100)
    }

    #[test]
    fn a_pair_is_throttled_after_ten_failures_with_growing_delays() {
        let throttle = throttle();
        let now = 100 * MINUTE;
        let nine = FailureTimes { pair: vec![now - 1000; 9], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&nine, || false, now), None);
        let ten = FailureTimes { pair: vec![now - 1000; 10], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&ten, || false, now), Some(MINUTE - 1000));
        let twelve = FailureTimes { pair: vec![now - 1000; 12], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&twelve, || false, now), Some(4 * MINUTE - 1000));
        let many = FailureTimes { pair: vec![now - 1000; 40], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&many, || false, now), Some(15 * MINUTE - 1000), "at most the window");
        let old = FailureTimes { pair: vec![now - 16 * MINUTE; 40], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&old, || false, now), None, "failures leave the window");
    }

    #[test]
    fn an_address_has_a_higher_limit() {
        let throttle = throttle();
        let now = 100 * MINUTE;
        let ninety = FailureTimes { address: vec![now; 99], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&ninety, || false, now), None);
        let hundred = FailureTimes { address: vec![now; 100], ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&hundred, || false, now), Some(MINUTE));
    }

    #[test]
    fn the_account_cap_lets_known_addresses_through() {
        let throttle = throttle();
        let now = 100 * MINUTE;
        let spread: Vec<i64> = (0..100).map(|i| now - 50 * MINUTE + i * 1000).collect();
        let times = FailureTimes { account: spread.clone(), ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&times, || false, now), Some(10 * MINUTE));
        assert_eq!(throttle.verdict(&times, || true, now), None);
        let fewer = FailureTimes { account: spread[1..].to_vec(), ..FailureTimes::default() };
        assert_eq!(throttle.verdict(&fewer, || false, now), None);
    }

    #[test]
    fn names_are_kept_hashed_and_ipv6_by_prefix() {
        assert_eq!(account_key("admin").len(), 64);
        assert!(!account_key("hunter2").contains("hunter2"));
        assert_eq!(
            address_key(Some("2001:db8::1".parse().unwrap())),
            address_key(Some("2001:db8::2".parse().unwrap()))
        );
        assert_eq!(address_key(Some("::ffff:10.1.2.3".parse().unwrap())), "10.1.2.3");
    }
}
