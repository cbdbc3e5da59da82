//! Resolution: credentials in, a [`Principal`] or a precise refusal out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use wssh_domain::{Login, LoginClient, LoginId, Password, Permission, PermissionSet, Timestamp, User, UserId};
use wssh_store::{Rotation, Store, StoreCache};

use wssh_domain::audit::{AuditEvent, LoginFailure, LoginMethod, Surface, UNKNOWN_USER};

use crate::audit::Auditor;
use crate::jwt::{JwtKeys, claims_for};

use crate::hash_queue::{HashQueue, HashQueueLimits, Requester};
use crate::password::{
    PasswordPolicy, hash_alist_digest, hash_password, is_alist_digest, verify_decoy, verify_password,
};
use crate::secret::{generate_password, generate_token_secret, hash_token_secret, hashes_equal};
use crate::throttle::LoginThrottle;
use crate::totp::{self, TotpEnrollment};
use crate::{AuthError, AuthMethod, Credentials, Principal};

/// Where credentials were presented, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The surface.
    pub surface: Surface,
    /// The client's address, when known.
    pub client: Option<IpAddr>,
    /// Whether this authentication starts a session (a login route, a shell connection): then
    /// a successful token login is audited too. Passwords are audited on every use, and
    /// failures always.
    pub login: bool,
}

impl Origin {
    /// A request on `surface` from `client` that does not start a session.
    pub const fn request(surface: Surface, client: Option<IpAddr>) -> Self {
        Origin { surface, client, login: false }
    }

    /// An authentication on `surface` from `client` that starts a session.
    pub const fn login(surface: Surface, client: Option<IpAddr>) -> Self {
        Origin { surface, client, login: true }
    }

    fn client_text(&self) -> Option<String> {
        self.client.map(|client| client.to_string())
    }
}

/// The longest token secret looked at; anything longer is refused without hashing.
const MAX_TOKEN_BYTES: usize = 1024;

/// What a login hands the client: a short-lived access JWT and a refresh token, both shown
/// once; only the refresh token's hash is stored.
pub struct LoginTokens {
    /// The login.
    pub login: Login,
    /// The access JWT.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

impl std::fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTokens").field("login", &self.login).finish_non_exhaustive()
    }
}

/// The form of the secret a password login presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordForm {
    /// The password itself.
    Plain,
    /// alist's hex SHA-256 of the password and a fixed suffix.
    AlistDigest,
}

/// Refresh tokens start with this, so they are not mistaken for access tokens.
const REFRESH_PREFIX: &str = "wsshr_";
/// The name of the JWT signing key in the store's settings.
const SIGNING_KEY_SETTING: &str = "jwt_signing_key";

/// How long a login's tokens live.
#[derive(Debug, Clone, Copy)]
pub struct LoginLifetimes {
    /// Access JWTs, in seconds (default 15 minutes).
    pub access_seconds: i64,
    /// Refresh tokens, in seconds (default 30 days).
    pub refresh_seconds: i64,
}

impl Default for LoginLifetimes {
    fn default() -> Self {
        LoginLifetimes { access_seconds: 15 * 60, refresh_seconds: 30 * 24 * 3600 }
    }
}

/// How long a resolved token or login is served from memory. A change made through this
/// server (revocation, a disabled user, new roles) ends it at once; the bound is for changes
/// another process writes to the database, which the store's change counter cannot see.
const RESOLVED_TTL: Duration = Duration::from_secs(1);
/// At most this many resolved tokens and logins are kept.
const RESOLVED_CAPACITY: usize = 4096;

/// What a cached resolution is keyed by: never a secret itself, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ResolvedKey {
    /// An access token, by the SHA-256 of its secret.
    Token(String),
    /// A login, by its id (its JWT's signature is checked on every request).
    Login(LoginId),
}

/// Checks credentials against the store. Its methods block (argon2, storage): call them from
/// a blocking thread.
pub struct Authenticator {
    store: Arc<dyn Store>,
    throttle: LoginThrottle,
    hash_pool: HashQueue,
    password_policy: PasswordPolicy,
    jwt: JwtKeys,
    lifetimes: LoginLifetimes,
    /// Tokens and logins resolved recently, so a busy client costs no storage reads (each
    /// principal carries its credential's expiry, checked on every use).
    resolved: StoreCache<ResolvedKey, Principal>,
    /// The audit log.
    audit: Auditor,
    /// Password logins by outcome, for the metrics.
    logins: LoginCounters,
}

/// Password logins so far, by outcome.
#[derive(Debug, Default)]
struct LoginCounters {
    succeeded: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    throttled: std::sync::atomic::AtomicU64,
}

/// What the authenticator has done so far and holds now, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthStats {
    /// Password logins that succeeded.
    pub logins_succeeded: u64,
    /// Password logins refused: wrong password, unknown user, wrong two-factor code.
    pub logins_failed: u64,
    /// Password logins refused by the lockout without a look at the password.
    pub logins_throttled: u64,
    /// Password hashing jobs waiting or running.
    pub hashing_in_queue: usize,
    /// How many hashing jobs the queue admits at once.
    pub hashing_capacity: usize,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("throttle", &self.throttle).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Counts so far and the hashing queue now.
    pub fn stats(&self) -> AuthStats {
        use std::sync::atomic::Ordering::Relaxed;
        AuthStats {
            logins_succeeded: self.logins.succeeded.load(Relaxed),
            logins_failed: self.logins.failed.load(Relaxed),
            logins_throttled: self.logins.throttled.load(Relaxed),
            hashing_in_queue: self.hash_pool.in_queue(),
            hashing_capacity: self.hash_pool.limits().capacity,
        }
    }

    /// An authenticator over `store`, locking out as `throttle` says. The JWT signing key is
    /// read from the store, or generated (256 random bits) and kept there on the first start.
    pub fn new(store: Arc<dyn Store>, throttle: LoginThrottle) -> Result<Self, AuthError> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let threads = cores.saturating_sub(1).max(1);
        let secret = store.setting_or_create(SIGNING_KEY_SETTING, &|| {
            let mut key = vec![0u8; 32];
            crate::secret::fill_random(&mut key);
            key
        })?;
        Ok(Authenticator {
            audit: Auditor::new(store.clone()),
            store,
            throttle,
            hash_pool: HashQueue::new(threads, HashQueueLimits::for_threads(threads)),
            password_policy: PasswordPolicy::default(),
            jwt: JwtKeys::new(&secret),
            lifetimes: LoginLifetimes::default(),
            resolved: StoreCache::new(RESOLVED_CAPACITY, RESOLVED_TTL),
            logins: LoginCounters::default(),
        })
    }

    /// Sets how many password hashes may wait or run, in all and per client address.
    #[must_use]
    pub fn with_hash_queue_limits(mut self, limits: HashQueueLimits) -> Self {
        self.hash_pool.set_limits(limits);
        self
    }

    /// Sets the rules new passwords must meet.
    #[must_use]
    pub fn with_password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = policy;
        self
    }

    /// The rules new passwords must meet.
    pub fn password_policy(&self) -> PasswordPolicy {
        self.password_policy
    }

    /// How many password hashes may wait or run.
    pub fn hash_queue_limits(&self) -> HashQueueLimits {
        self.hash_pool.limits()
    }

    /// Sets how long logins' tokens live.
    #[must_use]
    pub fn with_login_lifetimes(mut self, lifetimes: LoginLifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Also streams every audit event as a JSON line to `stream` (`--audit-log`).
    #[must_use]
    pub fn with_audit_stream(mut self, stream: Box<dyn std::io::Write + Send>) -> Self {
        self.audit = self.audit.with_stream(stream);
        self
    }

    /// The audit log's writer.
    pub fn audit(&self) -> &Auditor {
        &self.audit
    }

    /// How long logins' tokens live.
    pub fn login_lifetimes(&self) -> LoginLifetimes {
        self.lifetimes
    }

    /// The store behind it.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Resolves `credentials` presented from `client` into a principal, audited as a request
    /// inside the server (see [`Authenticator::authenticate_from`]).
    pub fn authenticate(&self, credentials: &Credentials, client: Option<IpAddr>) -> Result<Principal, AuthError> {
        self.authenticate_from(credentials, &Origin::request(Surface::Server, client))
    }

    /// Resolves `credentials` presented at `origin` into a principal. The audit log gets every
    /// password login (success and failure), every failed token login, and successful token
    /// logins where `origin` starts a session.
    pub fn authenticate_from(&self, credentials: &Credentials, origin: &Origin) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::Password { username, password, otp_code } => {
                self.password_login(username, password, otp_code.as_deref(), origin, PasswordForm::Plain)
            }
            Credentials::Token { identifier, secret } => {
                let resolved = match self.authenticate_cached(credentials) {
                    Some(principal) => Ok(principal),
                    None => self.authenticate_token(identifier.as_ref().map(|id| id.as_str()), secret),
                };
                self.audit_token_login(&resolved, origin);
                resolved
            }
            Credentials::Jwt(token) => match self.authenticate_cached(credentials) {
                Some(principal) => Ok(principal),
                None => self.authenticate_jwt(token),
            },
        }
    }

    fn audit_token_login(&self, resolved: &Result<Principal, AuthError>, origin: &Origin) {
        match resolved {
            Ok(principal) if origin.login => self.audit.record_by(
                principal,
                AuditEvent::LoginSucceeded {
                    surface: origin.surface,
                    method: LoginMethod::Token,
                    client: origin.client_text(),
                    username: principal.username.as_str().to_owned(),
                },
            ),
            Err(AuthError::InvalidCredentials) => self.audit.record_failure(
                origin.client,
                AuditEvent::LoginFailed {
                    surface: origin.surface,
                    method: LoginMethod::Token,
                    client: origin.client_text(),
                    username: None,
                    reason: LoginFailure::InvalidCredentials,
                },
            ),
            _ => {}
        }
    }

    /// The standing now of a principal resolved earlier, for a connection that lasts: the
    /// user must still exist and be enabled, and the credential it authenticated with must
    /// still work (the token usable, the login active; a password is not asked again). The
    /// permissions are the current ones. `InvalidCredentials` once that is no longer so.
    pub fn recheck(&self, principal: &Principal) -> Result<Principal, AuthError> {
        let now = Timestamp::now();
        let (user_id, narrowed, expires_at) = match &principal.method {
            AuthMethod::Password => (principal.user_id, None, None),
            AuthMethod::Token(identifier) => {
                let token = self
                    .store
                    .find_token(identifier.as_str())?
                    .filter(|token| token.is_usable(now))
                    .ok_or(AuthError::InvalidCredentials)?;
                (token.user_id, Some(token.permissions.unwrap_or_else(PermissionSet::all)), token.expires_at)
            }
            AuthMethod::Login(id) => {
                let login = self
                    .store
                    .find_login(id)?
                    .filter(|login| login.is_active(now))
                    .ok_or(AuthError::InvalidCredentials)?;
                (login.user_id, None, Some(login.expires_at))
            }
        };
        if user_id != principal.user_id {
            return Err(AuthError::InvalidCredentials);
        }
        let user =
            self.store.find_user_by_id(user_id)?.filter(|user| !user.disabled).ok_or(AuthError::InvalidCredentials)?;
        let permissions = narrowed.map_or(user.permissions, |narrowed| user.permissions.intersection(narrowed));
        Ok(Principal { user_id, username: user.username, permissions, method: principal.method.clone(), expires_at })
    }

    /// Whether the user still exists, is enabled and holds `permission` now: for what a user
    /// owns beyond one connection, such as a live shell.
    pub fn user_holds(&self, user_id: UserId, permission: Permission) -> Result<bool, AuthError> {
        Ok(self
            .store
            .find_user_by_id(user_id)?
            .is_some_and(|user| !user.disabled && user.permissions.contains(permission)))
    }

    /// The store's change generation: unchanged means nothing stored changed since.
    pub fn generation(&self) -> u64 {
        self.store.generation()
    }

    /// Resolves an access token or an access JWT from memory alone, without blocking: `Some`
    /// when the same credentials were resolved less than a second ago and nothing stored has
    /// changed since. `None` for passwords and on a miss: then [`Authenticator::authenticate`],
    /// on a blocking thread, decides (and fills the cache).
    pub fn authenticate_cached(&self, credentials: &Credentials) -> Option<Principal> {
        let generation = self.store.generation();
        match credentials {
            Credentials::Token { identifier, secret } => {
                if secret.is_empty() || secret.len() > MAX_TOKEN_BYTES {
                    return None;
                }
                let key = ResolvedKey::Token(hash_token_secret(secret));
                let principal = self.cached(&key, generation)?;
                let named =
                    identifier.as_ref().is_none_or(|identifier| principal.token_identifier() == Some(identifier));
                named.then_some(principal)
            }
            Credentials::Jwt(token) => {
                let claims = self.jwt.verify(token)?;
                let principal = self.cached(&ResolvedKey::Login(claims.login_id()), generation)?;
                (Some(principal.user_id) == claims.user_id()).then_some(principal)
            }
            Credentials::Password { .. } => None,
        }
    }

    fn cached(&self, key: &ResolvedKey, generation: u64) -> Option<Principal> {
        let principal = self.resolved.get(key, generation)?;
        (!principal.has_expired(Timestamp::now())).then_some(principal)
    }

    /// Resolves an access JWT from the store, and keeps the result (see
    /// [`Authenticator::authenticate_cached`]).
    fn authenticate_jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let generation = self.store.generation();
        let claims = self.jwt.verify(token).ok_or(AuthError::InvalidCredentials)?;
        let login = self
            .store
            .find_login(&claims.login_id())?
            .filter(|login| login.is_active(Timestamp::now()) && Some(login.user_id) == claims.user_id())
            .ok_or(AuthError::InvalidCredentials)?;
        let user = self
            .store
            .find_user_by_id(login.user_id)?
            .filter(|user| !user.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        let principal = Principal {
            user_id: user.id,
            username: user.username,
            permissions: user.permissions,
            method: AuthMethod::Login(login.id),
            expires_at: Some(login.expires_at),
        };
        self.resolved.insert(ResolvedKey::Login(claims.login_id()), principal.clone(), generation);
        Ok(principal)
    }

    fn access_token(&self, user: &User, login: &Login) -> Result<String, AuthError> {
        let claims = claims_for(user.id, user.username.as_str(), &login.id, self.lifetimes.access_seconds);
        self.jwt.issue(&claims).ok_or(AuthError::Hashing)
    }

    fn new_refresh_token() -> String {
        let secret = generate_token_secret();
        format!("{REFRESH_PREFIX}{}", &secret[crate::secret::TOKEN_PREFIX.len()..])
    }

    /// Starts a login for an authenticated user: a new refresh-token family.
    pub fn start_login(&self, principal: &Principal) -> Result<LoginTokens, AuthError> {
        self.start_login_lasting(principal, self.lifetimes.access_seconds)
    }

    /// Starts a login whose first access JWT lives `access_seconds` (alist's tokens last 48
    /// hours). It is revoked like any other: by logout, or by disabling or deleting the user.
    pub fn start_login_lasting(&self, principal: &Principal, access_seconds: i64) -> Result<LoginTokens, AuthError> {
        self.start_login_from(principal, access_seconds, LoginClient::default())
    }

    /// Starts a login bound to `client`: its refresh token works only from that address and
    /// user agent (seed 004's rule).
    pub fn start_login_from(
        &self,
        principal: &Principal,
        access_seconds: i64,
        client: LoginClient,
    ) -> Result<LoginTokens, AuthError> {
        let user = self
            .store
            .find_user_by_id(principal.user_id)?
            .filter(|user| !user.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        let now = Timestamp::now();
        let login = Login {
            id: LoginId(generate_password()),
            user_id: user.id,
            created_at: now,
            expires_at: now.plus_seconds(self.lifetimes.refresh_seconds.max(access_seconds)),
            revoked: false,
            client,
        };
        let refresh = Self::new_refresh_token();
        self.store.create_login(&login, &hash_token_secret(&refresh))?;
        let claims = claims_for(user.id, user.username.as_str(), &login.id, access_seconds);
        let access = self.jwt.issue(&claims).ok_or(AuthError::Hashing)?;
        Ok(LoginTokens { login, access, refresh })
    }

    /// Rotates a refresh token: the presented one stops working, a new pair is issued. A
    /// refresh token that was already rotated away is taken as stolen: its whole login is
    /// revoked and the request refused.
    ///
    /// A login bound to a client (see [`Authenticator::start_login_from`]) refreshed from
    /// another address or user agent is revoked too: [`AuthError::ClientMismatch`].
    pub fn refresh_login(&self, refresh: &str, client: &LoginClient) -> Result<LoginTokens, AuthError> {
        if refresh.is_empty() || refresh.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        if let Some(login) = self.store.find_login_by_refresh(&hash_token_secret(refresh))? {
            let bound = &login.client;
            let moved = (!bound.ip.is_empty() && bound.ip != client.ip)
                || (!bound.user_agent_hash.is_empty()
                    && !hashes_equal(&bound.user_agent_hash, &client.user_agent_hash));
            if moved {
                self.store.revoke_login(&login.id)?;
                tracing::warn!(login = %login.id, "refresh token presented from another client; login revoked");
                return Err(AuthError::ClientMismatch);
            }
        }
        let next = Self::new_refresh_token();
        let login = match self.store.rotate_refresh(&hash_token_secret(refresh), &hash_token_secret(&next))? {
            Rotation::Rotated(login) => login,
            Rotation::Replayed(login) => {
                tracing::warn!(login = %login, "a rotated refresh token was presented again; login revoked");
                return Err(AuthError::InvalidCredentials);
            }
            Rotation::Unknown => return Err(AuthError::InvalidCredentials),
        };
        let user = self
            .store
            .find_user_by_id(login.user_id)?
            .filter(|user| !user.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        let access = self.access_token(&user, &login)?;
        Ok(LoginTokens { login, access, refresh: next })
    }

    /// The active login a refresh token belongs to, without rotating it.
    pub fn login_of_refresh(&self, refresh: &str) -> Result<Option<Login>, AuthError> {
        Ok(self.store.find_login_by_refresh(&hash_token_secret(refresh))?)
    }

    /// Ends a login: its refresh token and its access tokens stop working at once.
    pub fn end_login(&self, login: &LoginId) -> Result<(), AuthError> {
        Ok(self.store.revoke_login(login)?)
    }

    /// Resolves alist's hashed-password login (`/api/auth/login/hash`): `digest` is
    /// `sha256(password + "-https://github.com/alist-org/alist")` in hex, checked against the
    /// argon2id hash of that digest kept beside the password's own. Lockout, the disabled flag
    /// and two-factor authentication apply exactly as to a password. A user whose digest hash
    /// is not stored yet (created before it was kept, or its password set outside wssh's API)
    /// is refused like a wrong password until it logs in once with the plain password.
    pub fn authenticate_alist_digest(
        &self,
        username: &str,
        digest: &str,
        otp_code: Option<&str>,
        origin: &Origin,
    ) -> Result<Principal, AuthError> {
        self.password_login(username, digest, otp_code, origin, PasswordForm::AlistDigest)
    }

    /// A password login, audited: success, failure (the name given, or [`UNKNOWN_USER`] for a
    /// name that matches no user) or lockout.
    fn password_login(
        &self,
        username: &str,
        presented: &str,
        otp_code: Option<&str>,
        origin: &Origin,
        form: PasswordForm,
    ) -> Result<Principal, AuthError> {
        let outcome = self.check_password_login(username, presented, otp_code, origin.client, form);
        let client = origin.client_text();
        let named = || match self.store.find_user(username) {
            Ok(Some(user)) => user.username.as_str().to_owned(),
            _ => UNKNOWN_USER.to_owned(),
        };
        let failed = |reason| AuditEvent::LoginFailed {
            surface: origin.surface,
            method: LoginMethod::Password,
            client: client.clone(),
            username: Some(named()),
            reason,
        };
        match &outcome {
            Ok(principal) => self.audit.record_by(
                principal,
                AuditEvent::LoginSucceeded {
                    surface: origin.surface,
                    method: LoginMethod::Password,
                    client: client.clone(),
                    username: principal.username.as_str().to_owned(),
                },
            ),
            Err(AuthError::TooManyAttempts { retry_after_seconds }) => self.audit.record_failure(
                origin.client,
                AuditEvent::LockedOut {
                    surface: origin.surface,
                    client: client.clone(),
                    username: named(),
                    retry_after_seconds: *retry_after_seconds,
                },
            ),
            Err(AuthError::InvalidCredentials) => {
                self.audit.record_failure(origin.client, failed(LoginFailure::InvalidCredentials));
            }
            Err(AuthError::OtpRequired) => self.audit.record_failure(origin.client, failed(LoginFailure::OtpRequired)),
            Err(AuthError::InvalidOtp) => self.audit.record_failure(origin.client, failed(LoginFailure::InvalidOtp)),
            Err(_) => {}
        }
        outcome
    }

    fn check_password_login(
        &self,
        username: &str,
        presented: &str,
        otp_code: Option<&str>,
        client: Option<IpAddr>,
        form: PasswordForm,
    ) -> Result<Principal, AuthError> {
        if username.is_empty() || presented.is_empty() || presented.len() > Password::MAX_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let standing = self.throttle.check(&*self.store, username, client).inspect_err(|error| {
            if matches!(error, AuthError::TooManyAttempts { .. }) {
                self.logins.throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })?;
        let requester = Requester::Client {
            address: crate::throttle::address_key(client),
            trusted: standing.address_is_known && !standing.address_has_failed,
        };
        let user = self.store.find_user(username)?;
        let (stored, presented_form) = match (form, &user) {
            (_, None) => (None, presented.to_owned()),
            (PasswordForm::Plain, Some(user)) => (Some(user.password_hash.clone()), presented.to_owned()),
            (PasswordForm::AlistDigest, Some(user)) => {
                let stored = self.store.alist_password_hash(user.id)?.filter(|_| is_alist_digest(presented));
                (stored, presented.to_ascii_lowercase())
            }
        };
        let matches = self.hash_pool.run(&requester, move || match stored {
            Some(stored) => verify_password(&presented_form, &stored),
            None => verify_decoy(&presented_form),
        })?;
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.logins.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.throttle.record_failure(&*self.store, username, client)?;
                // A name that matches no user may be a password typed in the wrong field.
                let username = if user.is_some() { username } else { "(no such user)" };
                tracing::info!(username, client = ?client, "failed password login");
                return Err(AuthError::InvalidCredentials);
            }
        };
        if user.disabled {
            return Err(AuthError::InvalidCredentials);
        }
        if let Some(secret) = &user.otp_secret {
            let Some(code) = otp_code.filter(|code| !code.trim().is_empty()) else {
                return Err(AuthError::OtpRequired);
            };
            if !self.accept_totp(user.id, secret, code)? {
                self.logins.failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.throttle.record_failure(&*self.store, username, client)?;
                tracing::info!(username, client = ?client, "wrong or replayed two-factor code");
                return Err(AuthError::InvalidOtp);
            }
        }
        self.throttle.record_success(&*self.store, username, client)?;
        self.logins.succeeded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if form == PasswordForm::Plain {
            self.remember_alist_hash_if_missing(&user, presented);
        }
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            permissions: user.permissions,
            method: AuthMethod::Password,
            expires_at: None,
        })
    }

    /// After a successful plain-text login, stores the alist digest's hash if it is missing,
    /// so that `/api/auth/login/hash` works from then on. A failure is logged, not raised: the
    /// login itself succeeded.
    fn remember_alist_hash_if_missing(&self, user: &User, password: &str) {
        let missing = match self.store.alist_password_hash(user.id) {
            Ok(stored) => stored.is_none(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the alist password hash");
                false
            }
        };
        if !missing {
            return;
        }
        let Ok(password) = Password::parse(password) else { return };
        if let Err(error) = self.remember_alist_hash(user.id, &user.password_hash, &password) {
            tracing::warn!(%error, "cannot store the alist password hash");
        }
    }

    /// Stores the argon2id hash of `password`'s alist digest for `user`, whose password was
    /// just set to (or verified against) `password_hash`. Nothing is stored if the password
    /// has changed meanwhile. Call it wherever a password is set in plain text.
    pub fn remember_alist_hash(&self, user: UserId, password_hash: &str, password: &Password) -> Result<(), AuthError> {
        let password = password.clone();
        let alist_hash = self.hash_pool.run(&Requester::Internal, move || hash_alist_digest(&password))??;
        self.store.set_alist_password_hash(user, password_hash, &alist_hash)?;
        Ok(())
    }

    /// Checks a TOTP code and records its time step, so that it is accepted only once.
    fn accept_totp(&self, user: UserId, secret: &str, code: &str) -> Result<bool, AuthError> {
        let Some(step) = totp::check(secret, code, unix_now()) else { return Ok(false) };
        Ok(self.store.accept_otp_step(user, i64::try_from(step).unwrap_or(i64::MAX))?)
    }

    /// A fresh TOTP enrolment for the principal: shown to the user, stored only once
    /// [`Authenticator::enable_totp`] confirms a code from it.
    pub fn totp_enrollment(&self, principal: &Principal) -> Result<TotpEnrollment, AuthError> {
        totp::enroll(principal.username.as_str()).ok_or(AuthError::Hashing)
    }

    /// Turns two-factor authentication on with `secret` when `code` is valid for it now.
    pub fn enable_totp(&self, user: UserId, secret: &str, code: &str) -> Result<(), AuthError> {
        if !totp::is_valid_secret(secret) {
            return Err(AuthError::Invalid(wssh_domain::ValidationError::new(
                "secret",
                "is not a base32 secret of 128 bits or more",
            )));
        }
        let step = totp::check(secret, code, unix_now()).ok_or(AuthError::InvalidOtp)?;
        let secret = secret.trim().to_ascii_uppercase();
        self.store.set_otp_secret(user, Some(&secret), i64::try_from(step).unwrap_or(i64::MAX))?;
        Ok(())
    }

    /// Turns the user's own two-factor authentication off when `code` is a current code of
    /// the stored secret, not used before. A wrong code counts as a failed login for the
    /// (user, `client`) throttle, so codes cannot be guessed through this path either.
    pub fn disable_own_totp(&self, user: &User, code: &str, client: Option<IpAddr>) -> Result<(), AuthError> {
        let Some(secret) = &user.otp_secret else { return Err(AuthError::InvalidOtp) };
        let username = user.username.as_str();
        self.throttle.check(&*self.store, username, client)?;
        if !self.accept_totp(user.id, secret, code)? {
            self.throttle.record_failure(&*self.store, username, client)?;
            return Err(AuthError::InvalidOtp);
        }
        self.disable_totp(user.id)
    }

    /// Turns two-factor authentication off.
    pub fn disable_totp(&self, user: UserId) -> Result<(), AuthError> {
        Ok(self.store.set_otp_secret(user, None, 0)?)
    }

    /// Resolves an access token from the store, and keeps the result (see
    /// [`Authenticator::authenticate_cached`]).
    fn authenticate_token(&self, identifier: Option<&str>, secret: &str) -> Result<Principal, AuthError> {
        if secret.is_empty() || secret.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let generation = self.store.generation();
        let presented = hash_token_secret(secret);
        let token = match identifier {
            Some(identifier) => {
                self.store.find_token(identifier)?.filter(|token| hashes_equal(&token.secret_hash, &presented))
            }
            None => self.store.find_token_by_secret_hash(&presented)?,
        }
        .ok_or(AuthError::InvalidCredentials)?;
        if !token.is_usable(Timestamp::now()) {
            return Err(AuthError::InvalidCredentials);
        }
        let owner = self
            .store
            .find_user_by_id(token.user_id)?
            .filter(|owner| !owner.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        let permissions = owner.permissions.intersection(token.permissions.unwrap_or_else(PermissionSet::all));
        let principal = Principal {
            user_id: owner.id,
            username: owner.username,
            permissions,
            method: AuthMethod::Token(token.identifier),
            expires_at: token.expires_at,
        };
        self.resolved.insert(ResolvedKey::Token(presented), principal.clone(), generation);
        Ok(principal)
    }

    /// Checks a new password for `username` against the password policy (see
    /// [`PasswordPolicy::check`]); call it wherever a password is set.
    pub fn check_new_password(&self, username: &str, password: &Password) -> Result<(), AuthError> {
        self.password_policy.check(username, password)
    }

    /// Hashes a new password, within the bound on concurrent hashing.
    pub fn hash_password(&self, password: &Password) -> Result<String, AuthError> {
        let password = password.clone();
        self.hash_pool.run(&Requester::Internal, move || hash_password(&password))?
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    u64::try_from(Timestamp::now().0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wssh_domain::{AccessToken, NewAccessToken, NewUser, Permission, RoleKey, TokenSpec, Username};
    use wssh_store::UserStore;
    use wssh_store_sqlite::SqliteStore;

    use super::*;
    use crate::secret::generate_token_identifier;

    fn setup() -> (tempfile::TempDir, Authenticator, User) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("auth.db")).unwrap());
        let hash = hash_password(&Password::parse("s3cret").unwrap()).unwrap();
        let user = store.create_user(&NewUser::new(Username::parse("alice").unwrap(), hash, RoleKey::User)).unwrap();
        let authenticator = Authenticator::new(store, LoginThrottle::new(3, Duration::from_secs(60))).unwrap();
        (dir, authenticator, user)
    }

    fn password(username: &str, password: &str) -> Credentials {
        Credentials::Password { username: username.into(), password: password.into(), otp_code: None }
    }

    #[test]
    fn passwords() {
        let (_dir, auth, _) = setup();
        let principal = auth.authenticate(&password("alice", "s3cret"), None).unwrap();
        assert_eq!(principal.username.as_str(), "alice");
        assert!(principal.require(Permission::SessionsConnect).is_ok());
        assert!(matches!(principal.require(Permission::UsersWrite), Err(AuthError::Forbidden(_))));
        assert!(matches!(auth.authenticate(&password("alice", "nope"), None), Err(AuthError::InvalidCredentials)));
        assert!(matches!(auth.authenticate(&password("bob", "s3cret"), None), Err(AuthError::InvalidCredentials)));
    }

    #[test]
    fn lockout_applies_even_to_the_right_password() {
        let (_dir, auth, _) = setup();
        for _ in 0..3 {
            assert!(auth.authenticate(&password("alice", "wrong"), None).is_err());
        }
        assert!(matches!(
            auth.authenticate(&password("alice", "s3cret"), None),
            Err(AuthError::TooManyAttempts { .. })
        ));
    }

    /// Stores a token of `owner` as minting does (see `wssh-core`), and returns it with its secret.
    fn mint(auth: &Authenticator, owner: &User, spec: TokenSpec) -> (AccessToken, String) {
        let secret = generate_token_secret();
        let new_token = NewAccessToken {
            identifier: generate_token_identifier(),
            user_id: owner.id,
            secret_hash: hash_token_secret(&secret),
            spec,
        };
        (auth.store().insert_token(&new_token).unwrap(), secret)
    }

    #[test]
    fn tokens() {
        let (_dir, auth, user) = setup();
        let narrow = PermissionSet::EMPTY.with(Permission::SessionsRead).with(Permission::UsersWrite);
        let (token, secret) = mint(
            &auth,
            &user,
            TokenSpec { description: "laptop".into(), permissions: Some(narrow), ..TokenSpec::default() },
        );
        let by_hash = Credentials::Token { identifier: None, secret: secret.clone() };
        let principal = auth.authenticate(&by_hash, None).unwrap();
        // The token's rights are its owner's intersected with its own.
        assert_eq!(principal.permissions, PermissionSet::EMPTY.with(Permission::SessionsRead));
        assert_eq!(principal.token_identifier(), Some(&token.identifier));
        let by_identifier = Credentials::Token { identifier: Some(token.identifier.clone()), secret: secret.clone() };
        assert!(auth.authenticate(&by_identifier, None).is_ok());
        let wrong = Credentials::Token { identifier: Some(token.identifier.clone()), secret: "wssh_x".into() };
        assert!(matches!(auth.authenticate(&wrong, None), Err(AuthError::InvalidCredentials)));

        let (_, expired) = mint(&auth, &user, TokenSpec { expires_at: Some(Timestamp(1)), ..TokenSpec::default() });
        let expired = Credentials::Token { identifier: None, secret: expired };
        assert!(matches!(auth.authenticate(&expired, None), Err(AuthError::InvalidCredentials)));
    }

    #[test]
    fn logins_rotate_and_end() {
        let (_dir, auth, _) = setup();
        let principal = auth.authenticate(&password("alice", "s3cret"), None).unwrap();
        let first = auth.start_login(&principal).unwrap();
        let jwt = Credentials::Jwt(first.access.clone());
        assert_eq!(auth.authenticate(&jwt, None).unwrap().username.as_str(), "alice");
        let second = auth.refresh_login(&first.refresh, &LoginClient::default()).unwrap();
        assert_eq!(second.login.id, first.login.id);
        assert_ne!(second.refresh, first.refresh);
        // Replaying the old refresh token revokes the family: the new one and the JWTs die.
        assert!(auth.refresh_login(&first.refresh, &LoginClient::default()).is_err());
        assert!(auth.refresh_login(&second.refresh, &LoginClient::default()).is_err());
        assert!(auth.authenticate(&Credentials::Jwt(second.access), None).is_err());
        // Logout ends a fresh login at once.
        let third = auth.start_login(&principal).unwrap();
        auth.end_login(&third.login.id).unwrap();
        assert!(auth.authenticate(&Credentials::Jwt(third.access), None).is_err());
        assert!(auth.refresh_login(&third.refresh, &LoginClient::default()).is_err());
    }
}

#[cfg(test)]
mod two_factor_tests {
    use std::time::Duration;

    use wssh_domain::{NewUser, RoleKey, Username};
    use wssh_store::UserStore;
    use wssh_store_sqlite::SqliteStore;

    use super::*;

    #[test]
    fn totp_is_needed_once_on_and_each_code_works_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("auth.db")).unwrap());
        let hash = hash_password(&Password::parse("s3cret").unwrap()).unwrap();
        let user = store.create_user(&NewUser::new(Username::parse("bob").unwrap(), hash, RoleKey::User)).unwrap();
        let auth = Authenticator::new(store, LoginThrottle::new(100, Duration::from_secs(60))).unwrap();
        let login = |otp: Option<&str>| {
            auth.authenticate(
                &Credentials::Password {
                    username: "bob".into(),
                    password: "s3cret".into(),
                    otp_code: otp.map(Into::into),
                },
                None,
            )
        };
        assert!(login(None).is_ok());
        let principal = login(None).unwrap();
        let enrollment = auth.totp_enrollment(&principal).unwrap();
        let now = unix_now();
        let valid: Vec<String> = (0..3)
            .map(|step| {
                totp::code_at(&enrollment.secret, now + step * totp::STEP_SECONDS - totp::STEP_SECONDS).unwrap()
            })
            .collect();
        let wrong =
            ["000000", "111111", "222222", "333333"].into_iter().find(|code| !valid.iter().any(|v| v == code)).unwrap();
        assert!(matches!(auth.enable_totp(user.id, &enrollment.secret, wrong), Err(AuthError::InvalidOtp)));
        assert!(login(None).is_ok(), "a failed confirmation leaves two-factor off");
        let code = totp::code_at(&enrollment.secret, now).unwrap();
        auth.enable_totp(user.id, &enrollment.secret, &code).unwrap();
        assert!(matches!(login(None), Err(AuthError::OtpRequired)));
        // The code used to enable is spent; the next step's code works once.
        assert!(matches!(login(Some(&code)), Err(AuthError::InvalidOtp)));
        let next = totp::code_at(&enrollment.secret, now + totp::STEP_SECONDS).unwrap();
        assert!(login(Some(&next)).is_ok());
        assert!(matches!(login(Some(&next)), Err(AuthError::InvalidOtp)));
        auth.disable_totp(user.id).unwrap();
        assert!(login(None).is_ok());
    }
}

#[cfg(test)]
mod alist_digest_tests {
    use std::time::Duration;

    use wssh_domain::{NewUser, RoleKey, Username};
    use wssh_store::UserStore;
    use wssh_store_sqlite::SqliteStore;

    use super::*;
    use crate::password::alist_digest;

    #[test]
    fn the_digest_login_works_once_the_hash_is_kept_and_stops_when_the_password_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("auth.db")).unwrap());
        let hash = hash_password(&Password::parse("s3cret").unwrap()).unwrap();
        let user = store.create_user(&NewUser::new(Username::parse("carol").unwrap(), hash, RoleKey::User)).unwrap();
        let auth = Authenticator::new(store.clone(), LoginThrottle::new(100, Duration::from_secs(60))).unwrap();
        let digest = alist_digest("s3cret");
        let by_digest = |digest: &str| {
            auth.authenticate_alist_digest("carol", digest, None, &Origin::request(Surface::Alist, None))
        };
        assert!(matches!(by_digest(&digest), Err(AuthError::InvalidCredentials)), "no hash kept yet");
        let plain = Credentials::Password { username: "carol".into(), password: "s3cret".into(), otp_code: None };
        auth.authenticate(&plain, None).unwrap();
        assert_eq!(by_digest(&digest).unwrap().username.as_str(), "carol");
        assert!(by_digest(&digest.to_ascii_uppercase()).is_ok(), "hex in either case");
        assert!(matches!(by_digest("s3cret"), Err(AuthError::InvalidCredentials)), "the password is not a digest");
        assert!(matches!(by_digest(&alist_digest("wrong")), Err(AuthError::InvalidCredentials)));
        // A new password set anywhere forgets the old digest; remembering the new one restores it.
        let new_password = Password::parse("n3w-secret").unwrap();
        let new_hash = auth.hash_password(&new_password).unwrap();
        store.set_password(user.id, &new_hash, None, None).unwrap();
        assert!(by_digest(&digest).is_err());
        assert!(by_digest(&alist_digest("n3w-secret")).is_err());
        auth.remember_alist_hash(user.id, &new_hash, &new_password).unwrap();
        assert!(by_digest(&alist_digest("n3w-secret")).is_ok());
        // A stale password hash stores nothing.
        auth.remember_alist_hash(user.id, "$argon2id$stale", &Password::parse("other").unwrap()).unwrap();
        assert!(by_digest(&alist_digest("other")).is_err());
    }
}
