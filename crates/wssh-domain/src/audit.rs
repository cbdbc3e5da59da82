//! The audit log's nouns: who did what, as typed events. An event holds names, ids and
//! before/after values of what changed, never a secret (no password, hash, token secret, TOTP
//! secret or code, share-link token); the snapshot types here have no field for one.

use serde::{Deserialize, Serialize};

use crate::{PermissionSet, Role, Session, Timestamp, User, UserProfile};

/// What stands in the audit log for a user name that matches no user: people type passwords
/// into that field, so the text itself is never kept.
pub const UNKNOWN_USER: &str = "(no such user)";

/// Where a request came in: the API surface (by the seed it follows) or the shell endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// go_ws_sh's `/tokens`, `/credentials`, `/sessions`.
    GoWsSh,
    /// Seed 004's `/auth/*` login API and `/test`.
    LoginApi,
    /// Seed 004's roles, permissions and users.
    Rbac,
    /// Seed 002's `/AccessToken/*`.
    AccessToken,
    /// Seeds 001/003's `/api/*` (alist).
    Alist,
    /// wssh's own `/api/*` routes (audit, recordings).
    Api,
    /// The shell WebSocket endpoint.
    Shell,
    /// Inside the server (configuration, retention); no request.
    Server,
}

/// How a principal proved who it is, as the audit log names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum AuditVia {
    /// A password.
    Password,
    /// An access token, by its public identifier.
    Token {
        /// The token's identifier (not its secret).
        token: String,
    },
    /// A login's access JWT, by the login's id.
    Login {
        /// The login's id.
        login: String,
    },
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user's id.
    pub user_id: i64,
    /// The user's name.
    pub username: String,
    /// How the user authenticated for this action.
    #[serde(flatten)]
    pub via: AuditVia,
}

/// A user as the audit log shows it: everything but its password hash and TOTP secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSnapshot {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub username: String,
    /// Disabled.
    pub disabled: bool,
    /// The keys of its roles.
    pub roles: Vec<String>,
    /// What its roles grant.
    pub permissions: Vec<String>,
    /// Whether two-factor authentication is on.
    pub two_factor: bool,
    /// Its profile (display name, e-mail address, alist's fields, …).
    pub profile: UserProfile,
}

impl From<&User> for UserSnapshot {
    fn from(user: &User) -> Self {
        UserSnapshot {
            id: user.id.0,
            username: user.username.as_str().to_owned(),
            disabled: user.disabled,
            roles: user.roles.clone(),
            permissions: permission_names(user.permissions),
            two_factor: user.has_otp(),
            profile: user.profile.clone(),
        }
    }
}

/// A role as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSnapshot {
    /// Its id.
    pub id: i64,
    /// Its key.
    pub key: String,
    /// Its display name.
    pub name: String,
    /// Disabled.
    pub disabled: bool,
    /// What it grants.
    pub permissions: Vec<String>,
}

impl From<&Role> for RoleSnapshot {
    fn from(role: &Role) -> Self {
        RoleSnapshot {
            id: role.id.0,
            key: role.key.clone(),
            name: role.name.clone(),
            disabled: role.disabled,
            permissions: permission_names(role.permissions),
        }
    }
}

/// A session template as the audit log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    /// Its name.
    pub name: String,
    /// The program.
    pub cmd: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its working directory.
    pub dir: String,
    /// The OS account it runs as, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// Its own detach timeout in seconds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach_timeout_seconds: Option<u64>,
    /// Whether its shells are recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
}

impl From<&Session> for SessionSnapshot {
    fn from(session: &Session) -> Self {
        SessionSnapshot {
            name: session.spec.name.as_str().to_owned(),
            cmd: session.spec.cmd.clone(),
            args: session.spec.args.clone(),
            dir: session.spec.dir.clone(),
            run_as: session.spec.run_as.clone(),
            detach_timeout_seconds: session.spec.detach_timeout_seconds,
            record: session.spec.record,
        }
    }
}

/// A permission set as names.
pub fn permission_names(permissions: PermissionSet) -> Vec<String> {
    permissions.iter().map(|permission| permission.as_str().to_owned()).collect()
}

/// Why a login failed, as far as the audit log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    /// Unknown user, wrong password, unknown, expired or revoked token, disabled user.
    InvalidCredentials,
    /// The password was right, but no two-factor code came.
    OtpRequired,
    /// The two-factor code was wrong or replayed.
    InvalidOtp,
}

/// What credential a login presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// A password (or alist's password digest).
    Password,
    /// An access token.
    Token,
}

/// One security-relevant event. `kind` on the wire is the dotted name in each variant's
/// `rename`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum AuditEvent {
    /// A password or token login succeeded.
    #[serde(rename = "login.succeeded")]
    LoginSucceeded {
        /// Where.
        surface: Surface,
        /// With what.
        method: LoginMethod,
        /// From which address.
        client: Option<String>,
        /// As whom.
        username: String,
    },
    /// A password or token login failed.
    #[serde(rename = "login.failed")]
    LoginFailed {
        /// Where.
        surface: Surface,
        /// With what.
        method: LoginMethod,
        /// From which address.
        client: Option<String>,
        /// The user name given, [`UNKNOWN_USER`] for one matching no user; `None` for a token
        /// that matched none.
        username: Option<String>,
        /// Why.
        reason: LoginFailure,
    },
    /// A login attempt was refused at once because of earlier failures.
    #[serde(rename = "login.locked_out")]
    LockedOut {
        /// Where.
        surface: Surface,
        /// From which address.
        client: Option<String>,
        /// The user name given, or [`UNKNOWN_USER`].
        username: String,
        /// Seconds until an attempt is let through again.
        retry_after_seconds: u64,
    },
    /// An access token was minted.
    #[serde(rename = "token.minted")]
    TokenMinted {
        /// Its identifier.
        token: String,
        /// Its owner.
        owner: String,
        /// Its title.
        title: String,
        /// Its own permissions; `None`: all of its owner's.
        permissions: Option<Vec<String>>,
        /// When it expires (seconds since the epoch), if it does.
        expires_at: Option<i64>,
    },
    /// An access token was revoked.
    #[serde(rename = "token.revoked")]
    TokenRevoked {
        /// Its identifier.
        token: String,
        /// Its owner.
        owner: String,
    },
    /// A user's password was set.
    #[serde(rename = "password.changed")]
    PasswordChanged {
        /// Whose.
        user: String,
    },
    /// Two-factor authentication was turned on.
    #[serde(rename = "two_factor.enabled")]
    TwoFactorEnabled {
        /// For whom.
        user: String,
    },
    /// Two-factor authentication was turned off.
    #[serde(rename = "two_factor.disabled")]
    TwoFactorDisabled {
        /// For whom.
        user: String,
    },
    /// A user was created.
    #[serde(rename = "user.created")]
    UserCreated {
        /// The new user.
        new: Box<UserSnapshot>,
    },
    /// A user's name, state, profile or roles changed.
    #[serde(rename = "user.changed")]
    UserChanged {
        /// Before.
        old: Box<UserSnapshot>,
        /// After.
        new: Box<UserSnapshot>,
    },
    /// A user was deleted.
    #[serde(rename = "user.deleted")]
    UserDeleted {
        /// The user as it was.
        old: Box<UserSnapshot>,
    },
    /// A role was created.
    #[serde(rename = "role.created")]
    RoleCreated {
        /// The new role.
        new: RoleSnapshot,
    },
    /// A role (its name, state or permissions) changed.
    #[serde(rename = "role.changed")]
    RoleChanged {
        /// Before.
        old: RoleSnapshot,
        /// After.
        new: RoleSnapshot,
    },
    /// A role was deleted.
    #[serde(rename = "role.deleted")]
    RoleDeleted {
        /// The role as it was.
        old: RoleSnapshot,
    },
    /// A session template was created (or copied).
    #[serde(rename = "session.created")]
    SessionCreated {
        /// The new template.
        new: SessionSnapshot,
    },
    /// A session template changed (or was renamed).
    #[serde(rename = "session.changed")]
    SessionChanged {
        /// Before.
        old: SessionSnapshot,
        /// After.
        new: SessionSnapshot,
    },
    /// A session template was deleted.
    #[serde(rename = "session.deleted")]
    SessionDeleted {
        /// The template as it was.
        old: SessionSnapshot,
    },
    /// A shell started.
    #[serde(rename = "shell.started")]
    ShellStarted {
        /// The shell's id.
        shell: String,
        /// Its session template.
        session: String,
        /// Its owner.
        owner: String,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
        /// Whether it is recorded.
        recorded: bool,
    },
    /// A client attached to a shell.
    #[serde(rename = "shell.attached")]
    ShellAttached {
        /// The shell's id.
        shell: String,
        /// `control` or `observe`.
        mode: String,
    },
    /// A client detached from a shell.
    #[serde(rename = "shell.detached")]
    ShellDetached {
        /// The shell's id.
        shell: String,
        /// `control` or `observe`.
        mode: String,
    },
    /// A shell's program ended.
    #[serde(rename = "shell.ended")]
    ShellEnded {
        /// The shell's id.
        shell: String,
        /// Its exit status (the signal as 128 + n), when known.
        exit_status: Option<i32>,
    },
    /// A share link was made.
    #[serde(rename = "share.created")]
    ShareCreated {
        /// The shell's id.
        shell: String,
        /// The link's id (not its token).
        share: String,
        /// `control` or `observe`.
        mode: String,
        /// When it expires (seconds since the epoch).
        expires_at: Option<i64>,
    },
    /// A share link was used to attach.
    #[serde(rename = "share.used")]
    ShareUsed {
        /// The shell's id.
        shell: String,
        /// The link's id.
        share: String,
        /// From which address.
        client: Option<String>,
    },
    /// A share link was revoked.
    #[serde(rename = "share.revoked")]
    ShareRevoked {
        /// The shell's id.
        shell: String,
        /// The link's id.
        share: String,
    },
    /// A recording was read.
    #[serde(rename = "recording.read")]
    RecordingRead {
        /// The recording's id.
        recording: String,
    },
    /// A recording was deleted, by request or by retention.
    #[serde(rename = "recording.deleted")]
    RecordingDeleted {
        /// The recording's id.
        recording: String,
        /// `request`, `max_age` or `max_total_size`.
        reason: String,
    },
}

impl AuditEvent {
    /// Every kind, as the wire names them (for filters and documentation).
    pub const KINDS: [&'static str; 26] = [
        "login.succeeded",
        "login.failed",
        "login.locked_out",
        "token.minted",
        "token.revoked",
        "password.changed",
        "two_factor.enabled",
        "two_factor.disabled",
        "user.created",
        "user.changed",
        "user.deleted",
        "role.created",
        "role.changed",
        "role.deleted",
        "session.created",
        "session.changed",
        "session.deleted",
        "shell.started",
        "shell.attached",
        "shell.detached",
        "shell.ended",
        "share.created",
        "share.used",
        "share.revoked",
        "recording.read",
        "recording.deleted",
    ];

    /// The event's kind, e.g. `login.failed`.
    pub const fn kind(&self) -> &'static str {
        match self {
            AuditEvent::LoginSucceeded { .. } => "login.succeeded",
            AuditEvent::LoginFailed { .. } => "login.failed",
            AuditEvent::LockedOut { .. } => "login.locked_out",
            AuditEvent::TokenMinted { .. } => "token.minted",
            AuditEvent::TokenRevoked { .. } => "token.revoked",
            AuditEvent::PasswordChanged { .. } => "password.changed",
            AuditEvent::TwoFactorEnabled { .. } => "two_factor.enabled",
            AuditEvent::TwoFactorDisabled { .. } => "two_factor.disabled",
            AuditEvent::UserCreated { .. } => "user.created",
            AuditEvent::UserChanged { .. } => "user.changed",
            AuditEvent::UserDeleted { .. } => "user.deleted",
            AuditEvent::RoleCreated { .. } => "role.created",
            AuditEvent::RoleChanged { .. } => "role.changed",
            AuditEvent::RoleDeleted { .. } => "role.deleted",
            AuditEvent::SessionCreated { .. } => "session.created",
            AuditEvent::SessionChanged { .. } => "session.changed",
            AuditEvent::SessionDeleted { .. } => "session.deleted",
            AuditEvent::ShellStarted { .. } => "shell.started",
            AuditEvent::ShellAttached { .. } => "shell.attached",
            AuditEvent::ShellDetached { .. } => "shell.detached",
            AuditEvent::ShellEnded { .. } => "shell.ended",
            AuditEvent::ShareCreated { .. } => "share.created",
            AuditEvent::ShareUsed { .. } => "share.used",
            AuditEvent::ShareRevoked { .. } => "share.revoked",
            AuditEvent::RecordingRead { .. } => "recording.read",
            AuditEvent::RecordingDeleted { .. } => "recording.deleted",
        }
    }

    /// The user the event is about, by name, when it is about one (the filter `user` matches
    /// it as well as the actor).
    pub fn subject(&self) -> Option<&str> {
        match self {
            AuditEvent::LoginSucceeded { username, .. } | AuditEvent::LockedOut { username, .. } => Some(username),
            AuditEvent::LoginFailed { username, .. } => username.as_deref(),
            AuditEvent::TokenMinted { owner, .. }
            | AuditEvent::TokenRevoked { owner, .. }
            | AuditEvent::ShellStarted { owner, .. } => Some(owner),
            AuditEvent::PasswordChanged { user }
            | AuditEvent::TwoFactorEnabled { user }
            | AuditEvent::TwoFactorDisabled { user } => Some(user),
            AuditEvent::UserCreated { new } => Some(&new.username),
            AuditEvent::UserChanged { new, .. } => Some(&new.username),
            AuditEvent::UserDeleted { old } => Some(&old.username),
            _ => None,
        }
    }
}

/// One event as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its place in the log, counting from 1.
    pub id: i64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who; `None` for a login attempt that matched no one, and for the server itself.
    pub actor: Option<Actor>,
    /// What.
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Which events a query reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// At or after this time.
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
    /// Events this user did or that were about this user, by name.
    pub user: Option<String>,
    /// Events of this kind (`login.failed`), or of this family (`login`).
    pub kind: Option<String>,
    /// How many to skip, newest first.
    pub offset: u64,
    /// How many at most.
    pub limit: u64,
}
