//! What users do with their own account: logins, two-factor authentication, SSH keys.

use std::net::IpAddr;

use wssh_auth::ssh_key::parse_public_key;
use wssh_auth::totp::TotpEnrollment;
use wssh_auth::{Credentials, LoginTokens, Origin, Principal};
use wssh_domain::audit::AuditEvent;
use wssh_domain::{Login, LoginClient, LoginId, NewSshKey, SshKey, ValidationError};

use crate::{CoreError, Entity, Services, limits};

impl Services {
    /// Resolves credentials presented at `origin` into a principal, audited (see
    /// [`wssh_auth::Authenticator::authenticate_from`]).
    pub fn authenticate(&self, credentials: &Credentials, origin: &Origin) -> Result<Principal, CoreError> {
        Ok(self.auth.authenticate_from(credentials, origin)?)
    }

    /// Starts a login for an authenticated principal; its first access JWT lives
    /// `access_seconds`, and its refresh token works only from `client` when that is set.
    pub fn start_login(
        &self,
        principal: &Principal,
        access_seconds: i64,
        client: LoginClient,
    ) -> Result<LoginTokens, CoreError> {
        Ok(self.auth.start_login_from(principal, access_seconds, client)?)
    }

    /// Rotates a refresh token (see [`wssh_auth::Authenticator::refresh_login`]).
    pub fn refresh_login(&self, refresh: &str, client: &LoginClient) -> Result<LoginTokens, CoreError> {
        Ok(self.auth.refresh_login(refresh, client)?)
    }

    /// The active login a refresh token belongs to, if any.
    pub fn login_of_refresh(&self, refresh: &str) -> Result<Option<Login>, CoreError> {
        Ok(self.auth.login_of_refresh(refresh)?)
    }

    /// Ends a login: its refresh token and access JWTs stop working.
    pub fn end_login(&self, login: &LoginId) -> Result<(), CoreError> {
        Ok(self.auth.end_login(login)?)
    }

    /// A new TOTP secret for the caller to scan; refused while two-factor authentication is on.
    pub fn totp_enrollment(&self, principal: &Principal) -> Result<TotpEnrollment, CoreError> {
        if self.caller(principal)?.has_otp() {
            return Err(CoreError::Refused("2FA is already enabled"));
        }
        Ok(self.auth.totp_enrollment(principal)?)
    }

    /// Turns the caller's two-factor authentication on once `code` matches `secret`.
    pub fn enable_totp(&self, principal: &Principal, secret: &str, code: &str) -> Result<(), CoreError> {
        if self.caller(principal)?.has_otp() {
            return Err(CoreError::Refused("2FA is already enabled"));
        }
        self.auth.enable_totp(principal.user_id, secret, code).map_err(CoreError::auth(Entity::User))?;
        self.audit(principal, AuditEvent::TwoFactorEnabled { user: principal.username.as_str().to_owned() });
        Ok(())
    }

    /// Turns the caller's own two-factor authentication off, confirmed by a current code
    /// (`client`: the caller's address, for the login throttle).
    pub fn disable_own_totp(&self, principal: &Principal, code: &str, client: Option<IpAddr>) -> Result<(), CoreError> {
        let user = self.caller(principal)?;
        if !user.has_otp() {
            return Err(CoreError::Refused("2FA is not enabled"));
        }
        self.auth.disable_own_totp(&user, code, client).map_err(CoreError::auth(Entity::User))?;
        self.audit(principal, AuditEvent::TwoFactorDisabled { user: principal.username.as_str().to_owned() });
        Ok(())
    }

    /// The caller's SSH keys, oldest first.
    pub fn ssh_keys(&self, principal: &Principal) -> Result<Vec<SshKey>, CoreError> {
        self.store().list_ssh_keys(principal.user_id).map_err(CoreError::store(Entity::SshKey))
    }

    /// Validates an SSH public key (title: 1 to 128 characters) and adds it to the caller's
    /// account.
    pub fn add_ssh_key(&self, principal: &Principal, title: &str, key: &str) -> Result<SshKey, CoreError> {
        let title = title.trim();
        if title.is_empty()
            || title.chars().count() > limits::SSH_KEY_TITLE_CHARS
            || title.chars().any(char::is_control)
        {
            return Err(ValidationError::new("title", "must be 1 to 128 characters").into());
        }
        let parsed = parse_public_key(key)
            .map_err(|_| CoreError::from(ValidationError::new("key", "is not a valid OpenSSH public key")))?;
        let key = NewSshKey {
            user_id: principal.user_id,
            title: title.to_owned(),
            public_key: parsed.openssh,
            fingerprint: parsed.fingerprint,
        };
        self.store().add_ssh_key(&key).map_err(CoreError::store(Entity::SshKey))
    }

    /// Deletes one of the caller's SSH keys.
    pub fn delete_ssh_key(&self, principal: &Principal, id: i64) -> Result<(), CoreError> {
        self.store().delete_ssh_key(principal.user_id, id).map_err(CoreError::store(Entity::SshKey))
    }
}
