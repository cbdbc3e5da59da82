//! Resolution: credentials in, a [`Principal`] or a precise refusal out.

use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};

use wssh_domain::{AccessToken, NewAccessToken, Password, PermissionSet, Timestamp, User};
use wssh_store::{Store, StoreError};

use crate::password::{hash_password, verify_decoy, verify_password};
use crate::secret::{generate_token_identifier, generate_token_secret, hash_token_secret, hashes_equal};
use crate::throttle::LoginThrottle;
use crate::{AuthError, AuthMethod, Credentials, Principal};

/// The longest token secret looked at; anything longer is refused without hashing.
const MAX_TOKEN_BYTES: usize = 1024;

/// A newly minted token: the stored row and the secret, which is shown once and then only
/// its hash exists.
pub struct MintedToken {
    /// The stored token.
    pub token: AccessToken,
    /// The secret, to hand to the client once.
    pub secret: String,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken").field("token", &self.token).finish_non_exhaustive()
    }
}

/// A counting semaphore bounding concurrent argon2 runs, so a login storm costs bounded
/// memory (19 MiB each) and leaves cores for everything else.
#[derive(Debug)]
struct HashSlots {
    free: Mutex<usize>,
    released: Condvar,
}

impl HashSlots {
    fn new(slots: usize) -> Self {
        HashSlots { free: Mutex::new(slots.max(1)), released: Condvar::new() }
    }

    fn run<T>(&self, work: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            while *free == 0 {
                free = self.released.wait(free).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            *free -= 1;
        }
        let result = work();
        *self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) += 1;
        self.released.notify_one();
        result
    }
}

/// Checks credentials against the store. Its methods block (argon2, storage): call them from
/// a blocking thread.
pub struct Authenticator {
    store: Arc<dyn Store>,
    throttle: LoginThrottle,
    hash_slots: HashSlots,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("throttle", &self.throttle).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator over `store`, locking out as `throttle` says.
    pub fn new(store: Arc<dyn Store>, throttle: LoginThrottle) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Authenticator { store, throttle, hash_slots: HashSlots::new(cores) }
    }

    /// The store behind it.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Resolves `credentials` presented from `client` into a principal.
    pub fn authenticate(&self, credentials: &Credentials, client: Option<IpAddr>) -> Result<Principal, AuthError> {
        match credentials {
            Credentials::Password { username, password } => self.authenticate_password(username, password, client),
            Credentials::Token { identifier, secret } => {
                self.authenticate_token(identifier.as_ref().map(|id| id.as_str()), secret)
            }
        }
    }

    fn authenticate_password(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        if username.is_empty() || password.is_empty() || password.len() > Password::MAX_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        self.throttle.check(username, client)?;
        let user = self.store.find_user(username)?;
        let matches = self.hash_slots.run(|| match &user {
            Some(user) => verify_password(password, &user.password_hash),
            None => verify_decoy(password),
        });
        let user = match user {
            Some(user) if matches => user,
            _ => {
                self.throttle.record_failure(username, client);
                tracing::info!(username, client = ?client, "failed password login");
                return Err(AuthError::InvalidCredentials);
            }
        };
        if user.disabled {
            return Err(AuthError::InvalidCredentials);
        }
        self.throttle.record_success(username);
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            permissions: user.permissions,
            method: AuthMethod::Password,
        })
    }

    fn authenticate_token(&self, identifier: Option<&str>, secret: &str) -> Result<Principal, AuthError> {
        if secret.is_empty() || secret.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let presented = hash_token_secret(secret);
        let token = match identifier {
            Some(identifier) => {
                self.store.find_token(identifier)?.filter(|token| hashes_equal(&token.secret_hash, &presented))
            }
            None => self.store.find_token_by_secret_hash(&presented)?,
        }
        .ok_or(AuthError::InvalidCredentials)?;
        if token.is_expired(Timestamp::now()) {
            return Err(AuthError::InvalidCredentials);
        }
        let owner = self
            .store
            .find_user_by_id(token.user_id)?
            .filter(|owner| !owner.disabled)
            .ok_or(AuthError::InvalidCredentials)?;
        let permissions = owner.permissions.intersection(token.permissions.unwrap_or_else(PermissionSet::all));
        Ok(Principal {
            user_id: owner.id,
            username: owner.username,
            permissions,
            method: AuthMethod::Token(token.identifier),
        })
    }

    /// Hashes a new password, within the bound on concurrent hashing.
    pub fn hash_password(&self, password: &Password) -> Result<String, AuthError> {
        self.hash_slots.run(|| hash_password(password))
    }

    /// Mints a token for `owner`; the secret in the result is the only copy.
    pub fn mint_token(
        &self,
        owner: &User,
        description: &str,
        permissions: Option<PermissionSet>,
        expires_at: Option<Timestamp>,
    ) -> Result<MintedToken, AuthError> {
        // Identifiers carry 22 random bits per millisecond; a clash is rare, and retried.
        let mut attempts = 0;
        loop {
            let secret = generate_token_secret();
            let new_token = NewAccessToken {
                identifier: generate_token_identifier(),
                user_id: owner.id,
                description: description.to_owned(),
                secret_hash: hash_token_secret(&secret),
                permissions,
                expires_at,
            };
            match self.store.insert_token(&new_token) {
                Ok(token) => return Ok(MintedToken { token, secret }),
                Err(StoreError::Conflict(_)) if attempts < 3 => attempts += 1,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wssh_domain::{NewUser, Permission, RoleKey, Username};
    use wssh_store::{SqliteStore, UserStore};

    use super::*;

    fn setup() -> (tempfile::TempDir, Authenticator, User) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("auth.db")).unwrap());
        let hash = hash_password(&Password::parse("s3cret").unwrap()).unwrap();
        let user = store
            .create_user(&NewUser {
                username: Username::parse("alice").unwrap(),
                password_hash: hash,
                role: RoleKey::User,
            })
            .unwrap();
        let authenticator = Authenticator::new(store, LoginThrottle::new(3, Duration::from_secs(60)));
        (dir, authenticator, user)
    }

    fn password(username: &str, password: &str) -> Credentials {
        Credentials::Password { username: username.into(), password: password.into() }
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

    #[test]
    fn tokens() {
        let (_dir, auth, user) = setup();
        let narrow = PermissionSet::EMPTY.with(Permission::SessionsRead).with(Permission::UsersWrite);
        let minted = auth.mint_token(&user, "laptop", Some(narrow), None).unwrap();
        let by_hash = Credentials::Token { identifier: None, secret: minted.secret.clone() };
        let principal = auth.authenticate(&by_hash, None).unwrap();
        // The token's rights are its owner's intersected with its own.
        assert_eq!(principal.permissions, PermissionSet::EMPTY.with(Permission::SessionsRead));
        assert_eq!(principal.token_identifier(), Some(&minted.token.identifier));
        let by_identifier =
            Credentials::Token { identifier: Some(minted.token.identifier.clone()), secret: minted.secret.clone() };
        assert!(auth.authenticate(&by_identifier, None).is_ok());
        let wrong = Credentials::Token { identifier: Some(minted.token.identifier.clone()), secret: "wssh_x".into() };
        assert!(matches!(auth.authenticate(&wrong, None), Err(AuthError::InvalidCredentials)));

        let expired = auth.mint_token(&user, "old", None, Some(Timestamp(1))).unwrap();
        let expired = Credentials::Token { identifier: None, secret: expired.secret };
        assert!(matches!(auth.authenticate(&expired, None), Err(AuthError::InvalidCredentials)));
    }
}
