//! Access tokens: minting, listing, changing, revoking.

use wssh_auth::Principal;
use wssh_auth::secret::{generate_token_identifier, generate_token_secret, hash_token_secret};
use wssh_domain::audit::{AuditEvent, permission_names};
use wssh_domain::{AccessToken, NewAccessToken, Permission, PermissionSet, TokenSpec, User, UserId};
use wssh_store::{Conflict, StoreError};

use crate::policy::{self, AccountManager};
use crate::users::UserRef;
use crate::{CoreError, Entity, Services};

/// A newly minted token: the stored row and the secret, which is shown once and then only its
/// hash exists.
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

/// Which tokens a go_ws_sh listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenFilter<'a> {
    /// Only this identifier.
    pub identifier: Option<&'a str>,
    /// Only this owner's, by name.
    pub username: Option<&'a str>,
}

/// One page of the tokens of an application key.
#[derive(Debug)]
pub struct AppTokenPage {
    /// How many there are in all.
    pub total: u64,
    /// The page.
    pub tokens: Vec<AccessToken>,
    /// Their owner.
    pub owner: User,
}

/// Changes to a token; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct TokenChanges {
    /// Title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Its own permissions (`Some(None)`: all of its owner's).
    pub permissions: Option<Option<PermissionSet>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

impl Services {
    /// The token's owner: the caller, or another user it may manage (`users:write`, checked
    /// before the lookup, and every permission of that user).
    fn token_owner(&self, principal: &Principal, owner: Option<UserRef<'_>>) -> Result<User, CoreError> {
        let owner = owner.unwrap_or(UserRef::Id(principal.user_id));
        if owner != UserRef::Id(principal.user_id) && owner != UserRef::Name(principal.username.as_str()) {
            policy::require(principal, Permission::UsersWrite)?;
        }
        let user = self.user_unchecked(owner)?;
        AccountManager::new(principal, &user)?;
        Ok(user)
    }

    fn user_unchecked(&self, target: UserRef<'_>) -> Result<User, CoreError> {
        let found = match target {
            UserRef::Id(id) => self.store().find_user_by_id(id),
            UserRef::Name(name) => self.store().find_user(name),
        };
        found.map_err(CoreError::store(Entity::User))?.ok_or(CoreError::NotFound(Entity::User))
    }

    /// Mints a token for the caller or for `owner` (`tokens:write`; another user's needs
    /// [`AccountManager`]'s rights). Its permissions are capped by [`policy::token_permissions`].
    /// The secret in the result is the only copy.
    pub fn mint_token(
        &self,
        principal: &Principal,
        owner: Option<UserRef<'_>>,
        mut spec: TokenSpec,
    ) -> Result<MintedToken, CoreError> {
        policy::require(principal, Permission::TokensWrite)?;
        let owner = self.token_owner(principal, owner)?;
        spec.permissions = policy::token_permissions(principal, &owner, spec.permissions);
        // Identifiers carry 12 random bits per millisecond; a clash is rare, and retried.
        let mut attempts = 0;
        loop {
            let secret = generate_token_secret();
            let new_token = NewAccessToken {
                identifier: generate_token_identifier(),
                user_id: owner.id,
                secret_hash: hash_token_secret(&secret),
                spec: spec.clone(),
            };
            match self.store().insert_token(&new_token) {
                Ok(token) => {
                    let event = AuditEvent::TokenMinted {
                        token: token.identifier.as_str().to_owned(),
                        owner: owner.username.as_str().to_owned(),
                        title: token.title.clone(),
                        permissions: token.permissions.map(permission_names),
                        expires_at: token.expires_at.map(|at| at.0),
                    };
                    self.audit(principal, event);
                    return Ok(MintedToken { token, secret });
                }
                Err(StoreError::Conflict(Conflict::TokenIdentifierTaken)) if attempts < 3 => attempts += 1,
                Err(error) => return Err(CoreError::store(Entity::Token)(error)),
            }
        }
    }

    /// go_ws_sh's listing: `tokens:read`; everyone's with `users:read`, else the caller's.
    pub fn tokens(&self, principal: &Principal, filter: TokenFilter<'_>) -> Result<Vec<AccessToken>, CoreError> {
        policy::require(principal, Permission::TokensRead)?;
        let owner = if principal.can(Permission::UsersRead) { None } else { Some(principal.user_id) };
        let tokens = self.store().list_tokens(owner).map_err(CoreError::store(Entity::Token))?;
        Ok(tokens
            .into_iter()
            .filter(|token| filter.identifier.is_none_or(|wanted| token.identifier.as_str() == wanted))
            .filter(|token| filter.username.is_none_or(|wanted| token.username.as_str() == wanted))
            .collect())
    }

    /// One page of the tokens under `app_key` of the caller or of `owner` (`tokens:read`;
    /// another's needs `users:read`, checked before the lookup).
    pub fn app_tokens(
        &self,
        principal: &Principal,
        app_key: &str,
        owner: Option<UserId>,
        skip: u64,
        take: u64,
    ) -> Result<AppTokenPage, CoreError> {
        policy::require(principal, Permission::TokensRead)?;
        let owner = self.user(principal, UserRef::Id(owner.unwrap_or(principal.user_id)))?;
        let (total, tokens) = self
            .store()
            .list_app_tokens(app_key, Some(owner.id), skip, take)
            .map_err(CoreError::store(Entity::Token))?;
        Ok(AppTokenPage { total, tokens, owner })
    }

    /// The token `identifier` (under `app_key` when given), which the caller owns or manages.
    fn managed_token(
        &self,
        principal: &Principal,
        identifier: &str,
        app_key: Option<&str>,
    ) -> Result<(AccessToken, User), CoreError> {
        let token = self
            .store()
            .find_token(identifier)
            .map_err(CoreError::store(Entity::Token))?
            .filter(|token| app_key.is_none_or(|app_key| token.app_key.as_deref() == Some(app_key)))
            .ok_or(CoreError::NotFound(Entity::Token))?;
        if token.user_id != principal.user_id && !principal.can(Permission::UsersWrite) {
            return Err(CoreError::NotOwner);
        }
        let owner = self.user_unchecked(UserRef::Id(token.user_id))?;
        AccountManager::new(principal, &owner)?;
        Ok((token, owner))
    }

    /// Changes a token (`tokens:write`, the caller's own or one it manages); new permissions
    /// are capped as on minting.
    pub fn update_token(
        &self,
        principal: &Principal,
        identifier: &str,
        app_key: Option<&str>,
        changes: TokenChanges,
    ) -> Result<AccessToken, CoreError> {
        policy::require(principal, Permission::TokensWrite)?;
        let (mut token, owner) = self.managed_token(principal, identifier, app_key)?;
        let nothing = changes.title.is_none()
            && changes.tags.is_none()
            && changes.description.is_none()
            && changes.permissions.is_none()
            && changes.enabled.is_none();
        if nothing {
            return Ok(token);
        }
        token.title = changes.title.unwrap_or(token.title);
        token.tags = changes.tags.unwrap_or(token.tags);
        token.description = changes.description.unwrap_or(token.description);
        if let Some(permissions) = changes.permissions {
            token.permissions = policy::token_permissions(principal, &owner, permissions);
        }
        token.enabled = changes.enabled.unwrap_or(token.enabled);
        self.store().update_token(&token).map_err(CoreError::store(Entity::Token))
    }

    /// Revokes a token (`tokens:write`, the caller's own or one it manages).
    pub fn revoke_token(
        &self,
        principal: &Principal,
        identifier: &str,
        app_key: Option<&str>,
    ) -> Result<AccessToken, CoreError> {
        policy::require(principal, Permission::TokensWrite)?;
        let (token, _) = self.managed_token(principal, identifier, app_key)?;
        self.store().delete_token(token.identifier.as_str()).map_err(CoreError::store(Entity::Token))?;
        let event = AuditEvent::TokenRevoked {
            token: token.identifier.as_str().to_owned(),
            owner: token.username.as_str().to_owned(),
        };
        self.audit(principal, event);
        Ok(token)
    }
}
