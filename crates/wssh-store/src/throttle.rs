//! The login throttle's counts: failed logins by account and address, and the addresses an
//! account signed in from. The policy (limits, delays) is the auth crate's.

use crate::StoreError;

/// Times of recent failed logins, in milliseconds since the Unix epoch, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureTimes {
    /// Failures of this account from this address.
    pub pair: Vec<i64>,
    /// Failures from this address, any account.
    pub address: Vec<i64>,
    /// Failures of this account, any address.
    pub account: Vec<i64>,
}

/// Failed-login counts, shared by every server on the store.
pub trait ThrottleStore: Send + Sync {
    /// The failures since `since_ms` of `account` from `address`, from `address`, and of
    /// `account`; at most `limit` of each (the newest).
    fn login_failures(
        &self,
        account: &str,
        address: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<FailureTimes, StoreError>;
    /// Records a failure at `at_ms`, and forgets every failure older than `forget_before_ms`.
    fn record_login_failure(
        &self,
        account: &str,
        address: &str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records a successful login: the pair's failures are forgotten, the address is known.
    fn record_login_success(&self, account: &str, address: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Whether `account` signed in successfully from `address` since `since_ms`.
    fn is_known_address(&self, account: &str, address: &str, since_ms: i64) -> Result<bool, StoreError>;
}
