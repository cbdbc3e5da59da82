//! The alist-style surfaces: seed 001 (`/api/auth/*`, `/api/me*`) and seed 003
//! (`/api/admin/user/*`), answering in alist's envelope `{code, message, data}`.
//!
//! * `POST /api/auth/login` and `POST /api/auth/login/hash` (the password as alist's hex
//!   `sha256(password + "-https://github.com/alist-org/alist")`), with `otp_code` when
//!   two-factor authentication is on, return a login JWT that lives 48 hours and is accepted as
//!   `Authorization: <jwt>` or `Authorization: Bearer <jwt>` on every surface.
//! * `POST /api/auth/2fa/generate` and `/api/auth/2fa/verify` enrol TOTP; `/api/auth/2fa/cancel`
//!   (wssh's own) turns it off with a current code.
//! * `GET /api/me` and `/api/me/sshkey/{list,add,delete}` act on the caller.
//! * `/api/admin/user/{list,get,create,update,cancel_2fa,delete,del_cache}` manage users:
//!   `users:read` to read, `users:write` to change.
//!
//! Every reply is `{code, message, data}` with `code` equal to the HTTP status; errors carry
//! `data: null`. Checks run in this order: method (405), body size (413), credentials (401,
//! 429), permission (403), input (400), existence and conflicts (404, 409).

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wssh_auth::{AuthError, Credentials, Origin, Principal};
use wssh_core::{CoreError, NewAccount, ProfileChanges, UserChanges, UserRef, limits, rank};
use wssh_domain::audit::Surface as AuditSurface;
use wssh_domain::{LoginClient, Password, Permission, RoleKey, SshKey, User, UserId, UserProfile, Username};

use crate::SharedState;
use crate::error::ApiError;
use crate::input::{self, LoginBody};
use crate::respond::{self, Body, LoggedUser};
use crate::surface::{Call, Misroute, Surface};

/// How long an alist login's JWT lives: 48 hours, as alist's tokens do.
const LOGIN_SECONDS: i64 = 48 * 3600;

/// What `last_used_time` says for a key never used: Go's zero time, as alist itself returns.
const NEVER_USED: &str = "0001-01-01T00:00:00Z";

/// alist's `role` numbers.
const ALIST_ROLE_USER: i64 = 0;
const ALIST_ROLE_GUEST: i64 = 1;
const ALIST_ROLE_ADMIN: i64 = 2;

/// The routes of this surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    LoginHash,
    TwoFactorGenerate,
    TwoFactorVerify,
    TwoFactorCancel,
    Me,
    SshKeyList,
    SshKeyAdd,
    SshKeyDelete,
    UserList,
    UserGet,
    UserCreate,
    UserUpdate,
    UserCancelTwoFactor,
    UserDelete,
    UserDeleteCache,
}

impl Route {
    /// The route at `path`, if it is one of these.
    fn at(path: &str) -> Option<Route> {
        let route = match path {
            "/api/auth/login" => Route::Login,
            "/api/auth/login/hash" => Route::LoginHash,
            "/api/auth/2fa/generate" => Route::TwoFactorGenerate,
            "/api/auth/2fa/verify" => Route::TwoFactorVerify,
            "/api/auth/2fa/cancel" => Route::TwoFactorCancel,
            "/api/me" => Route::Me,
            "/api/me/sshkey/list" => Route::SshKeyList,
            "/api/me/sshkey/add" => Route::SshKeyAdd,
            "/api/me/sshkey/delete" => Route::SshKeyDelete,
            "/api/admin/user/list" => Route::UserList,
            "/api/admin/user/get" => Route::UserGet,
            "/api/admin/user/create" => Route::UserCreate,
            "/api/admin/user/update" => Route::UserUpdate,
            "/api/admin/user/cancel_2fa" => Route::UserCancelTwoFactor,
            "/api/admin/user/delete" => Route::UserDelete,
            "/api/admin/user/del_cache" => Route::UserDeleteCache,
            _ => return None,
        };
        Some(route)
    }

    /// The one method the seed gives the route.
    fn method(self) -> Method {
        match self {
            Route::Me | Route::SshKeyList | Route::UserList | Route::UserGet => Method::GET,
            _ => Method::POST,
        }
    }

    /// What `Allow` says on a 405.
    fn allow(self) -> &'static str {
        if self.method() == Method::GET { "GET, OPTIONS" } else { "POST, OPTIONS" }
    }
}

/// Whether `path` belongs to this surface: everything under `/api/`.
pub(crate) fn matches(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// How the audit log names this surface.
const SURFACE: AuditSurface = AuditSurface::Alist;

/// The alist surfaces, on the shared skeleton.
pub(crate) struct Alist;

impl Surface for Alist {
    type Route = Route;

    fn route(path: &str, method: &Method, _headers: &HeaderMap) -> Result<Route, Misroute> {
        let route = Route::at(path).ok_or(Misroute::NotFound)?;
        if *method != route.method() {
            return Err(Misroute::MethodNotAllowed(Some(route.allow())));
        }
        Ok(route)
    }

    /// An error in alist's envelope: `{code, message, data: null}` with `code` = the status.
    fn refuse(failure: &ApiError) -> Response<Body> {
        respond::refusal(
            failure,
            &json!({ "code": failure.status.as_u16(), "message": failure.message, "data": Value::Null }),
        )
    }

    fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
        run(state, route, call)
    }
}

/// alist's success envelope.
pub(crate) fn success(data: Value) -> Response<Body> {
    respond::json(StatusCode::OK, &json!({ "code": 200, "message": "success", "data": data }))
}

fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
    if matches!(route, Route::Login | Route::LoginHash) {
        return login(state, route, call);
    }
    // Every form wssh reads, alist's bare JWT included.
    let principal = input::authenticate(state, &call.headers, call.peer, SURFACE)?;
    let query = call.raw_query.as_str();
    let mut response = match route {
        Route::Login | Route::LoginHash => return login(state, route, call),
        Route::TwoFactorGenerate => two_factor_generate(state, &principal),
        Route::TwoFactorVerify => two_factor_verify(state, &principal, &call.body),
        Route::TwoFactorCancel => two_factor_cancel(state, &principal, call),
        Route::Me => me(state, &principal),
        Route::SshKeyList => ssh_key_list(state, &principal),
        Route::SshKeyAdd => ssh_key_add(state, &principal, &call.body),
        Route::SshKeyDelete => ssh_key_delete(state, &principal, query),
        Route::UserList => user_list(state, &principal, query),
        Route::UserGet => user_get(state, &principal, query),
        Route::UserCreate => user_create(state, &principal, &call.body),
        Route::UserUpdate => user_update(state, &principal, &call.body),
        Route::UserCancelTwoFactor => user_cancel_two_factor(state, &principal, query),
        Route::UserDelete => user_delete(state, &principal, query),
        Route::UserDeleteCache => user_delete_cache(state, &principal, query),
    }?;
    response.extensions_mut().insert(LoggedUser(principal.username.to_string()));
    Ok(response)
}

/// Parses a JSON body: 400 with a clear message when it is missing or malformed.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("A JSON request body is required"));
    }
    serde_json::from_slice(body).map_err(|failure| ApiError::bad_request(format!("Malformed JSON body: {failure}")))
}

/// A query parameter's value, if given and not empty.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The `id` query parameter as a positive integer: 400 when missing or not one.
fn id_param(query: &str) -> Result<i64, ApiError> {
    let value = query_param(query, "id").ok_or_else(|| ApiError::bad_request("The query parameter id is required"))?;
    value
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request("The query parameter id must be a positive integer"))
}

// ---------------------------------------------------------------------------------------------
// Seed 001: logins, two-factor authentication, the caller and its SSH keys.

fn login(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
    let body: LoginBody = parse_body(&call.body)?;
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    let otp_code = Some(body.otp_code.trim()).filter(|code| !code.is_empty());
    let origin = Origin::login(SURFACE, Some(call.peer.ip()));
    let auth = &state.auth;
    let resolved = if route == Route::LoginHash {
        auth.authenticate_alist_digest(&body.username, &body.password, otp_code, &origin)
    } else {
        let credentials = Credentials::Password {
            username: body.username.clone(),
            password: body.password.clone(),
            otp_code: otp_code.map(str::to_owned),
        };
        auth.authenticate_from(&credentials, &origin)
    };
    let principal = resolved.map_err(|failure| match failure {
        AuthError::InvalidOtp => ApiError::new(StatusCode::UNAUTHORIZED, "Invalid 2FA code"),
        AuthError::InvalidCredentials if route == Route::LoginHash => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials. If the password is right, log in once with the plain password \
             (POST /api/auth/login) to enable hashed logins for this user",
        ),
        other => other.into(),
    })?;
    let tokens = state.services.start_login(&principal, LOGIN_SECONDS, LoginClient::default())?;
    let mut response = success(json!({ "token": tokens.access }));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(LoggedUser(principal.username.to_string()));
    Ok(response)
}

fn two_factor_generate(state: &SharedState, principal: &Principal) -> Result<Response<Body>, ApiError> {
    let enrollment = state.services.totp_enrollment(principal)?;
    let mut response = success(json!({ "qr": enrollment.qr_data_url, "secret": enrollment.secret }));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
struct VerifyBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    secret: String,
}

fn two_factor_verify(state: &SharedState, principal: &Principal, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let body: VerifyBody = parse_body(body)?;
    if body.code.trim().is_empty() || body.secret.trim().is_empty() {
        return Err(ApiError::bad_request("code and secret are required"));
    }
    state.services.enable_totp(principal, &body.secret, &body.code).map_err(|failure| match failure {
        CoreError::Auth(AuthError::InvalidOtp) => ApiError::bad_request("Invalid 2FA code"),
        other => other.into(),
    })?;
    Ok(success(Value::Null))
}

#[derive(Deserialize)]
struct CancelBody {
    #[serde(default)]
    code: String,
}

/// wssh's own addition: the caller turns their two-factor authentication off with a current
/// code (alist only lets an administrator do it, `cancel_2fa`).
fn two_factor_cancel(state: &SharedState, principal: &Principal, call: &Call) -> Result<Response<Body>, ApiError> {
    let body: CancelBody = parse_body(&call.body)?;
    if body.code.trim().is_empty() {
        return Err(ApiError::bad_request("code is required"));
    }
    state.services.disable_own_totp(principal, &body.code, Some(call.peer.ip())).map_err(|failure| match failure {
        CoreError::Auth(AuthError::InvalidOtp) => ApiError::bad_request("Invalid 2FA code"),
        other => other.into(),
    })?;
    Ok(success(Value::Null))
}

/// alist's `role` for a user: 2 with the admin role, 1 when its roles grant nothing (the
/// built-in `guest`), 0 otherwise.
fn alist_role(user: &User) -> i64 {
    alist_role_of(rank(user))
}

/// The built-in role an alist `role` number stands for.
fn role_key(role: i64) -> Result<RoleKey, ApiError> {
    match role {
        ALIST_ROLE_USER => Ok(RoleKey::User),
        ALIST_ROLE_GUEST => Ok(RoleKey::Guest),
        ALIST_ROLE_ADMIN => Ok(RoleKey::Admin),
        _ => Err(ApiError::bad_request("role must be 0 (user), 1 (guest) or 2 (admin)")),
    }
}

/// A user as `/api/me` shows it. The password is always "": no hash ever leaves the server.
fn me_view(user: &User) -> Value {
    json!({
        "id": user.id.0,
        "username": user.username.as_str(),
        "password": "",
        "base_path": user.profile.base_path,
        "role": alist_role(user),
        "disabled": user.disabled,
        "permission": user.profile.alist_permission,
        "sso_id": user.profile.sso_id,
        "otp": user.has_otp(),
    })
}

/// A user as the admin API shows it: `/api/me`'s view and alist's `Salt`, always "".
fn admin_view(user: &User) -> Value {
    let mut view = me_view(user);
    view["Salt"] = json!("");
    view
}

fn me(state: &SharedState, principal: &Principal) -> Result<Response<Body>, ApiError> {
    Ok(success(me_view(&state.services.caller(principal)?)))
}

fn ssh_key_view(key: &SshKey) -> Value {
    json!({
        "id": key.id,
        "title": key.title,
        "fingerprint": key.fingerprint,
        "added_time": key.added_at.to_rfc3339(),
        "last_used_time": key.last_used_at.map_or_else(|| NEVER_USED.to_owned(), |used| used.to_rfc3339()),
    })
}

fn ssh_key_list(state: &SharedState, principal: &Principal) -> Result<Response<Body>, ApiError> {
    let keys = state.services.ssh_keys(principal)?;
    let content: Vec<Value> = keys.iter().map(ssh_key_view).collect();
    Ok(success(json!({ "total": content.len(), "content": content })))
}

#[derive(Deserialize)]
struct SshKeyBody {
    #[serde(default)]
    title: String,
    #[serde(default)]
    key: String,
}

fn ssh_key_add(state: &SharedState, principal: &Principal, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let body: SshKeyBody = parse_body(body)?;
    if body.title.trim().is_empty() || body.key.trim().is_empty() {
        return Err(ApiError::bad_request("title and key are required"));
    }
    state.services.add_ssh_key(principal, &body.title, &body.key)?;
    Ok(success(Value::Null))
}

fn ssh_key_delete(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let id = id_param(query)?;
    state.services.delete_ssh_key(principal, id)?;
    Ok(success(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Seed 003: user management.

fn user_list(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let users = state.services.users(principal)?;
    let total = users.len();
    let page = page_param(query, "page")?;
    let per_page = page_param(query, "per_page")?;
    let shown: Vec<Value> = match (page, per_page) {
        (None, None) => users.iter().map(admin_view).collect(),
        (page, per_page) => {
            let per_page = per_page.unwrap_or(total.max(1));
            let skip = (page.unwrap_or(1) - 1).saturating_mul(per_page);
            users.iter().skip(skip).take(per_page).map(admin_view).collect()
        }
    };
    Ok(success(json!({ "content": shown, "total": total })))
}

/// An optional paging parameter: a positive integer.
pub(crate) fn page_param(query: &str, name: &'static str) -> Result<Option<usize>, ApiError> {
    query_param(query, name)
        .map(|value| {
            value
                .parse::<usize>()
                .ok()
                .filter(|number| *number > 0)
                .ok_or_else(|| ApiError::bad_request(format!("The query parameter {name} must be a positive integer")))
        })
        .transpose()
}

fn user_get(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let id = refuse_early(principal, Permission::UsersRead, id_param(query))?;
    let user = state.services.administered_user(principal, UserRef::Id(UserId(id)))?;
    Ok(success(admin_view(&user)))
}

/// A refusal of the request's fields, unless the caller lacks `permission`: then that refusal,
/// as the service would give it, comes first (403 before 400).
fn refuse_early<T>(principal: &Principal, permission: Permission, parsed: Result<T, ApiError>) -> Result<T, ApiError> {
    match parsed {
        Err(_) if !principal.can(permission) => Err(CoreError::Forbidden(permission).into()),
        other => other,
    }
}

/// The body of `create` and `update`, as alist's front end sends it. Absent fields keep
/// their current value on `update`, and take alist's defaults on `create`.
#[derive(Deserialize)]
struct UserBody {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    base_path: Option<String>,
    #[serde(default)]
    role: Option<i64>,
    #[serde(default)]
    permission: Option<i64>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    sso_id: Option<String>,
}

/// A checked `base_path`: "/" when empty, otherwise at most 1024 characters without control
/// characters, made absolute.
fn checked_base_path(value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok("/".to_owned());
    }
    if value.chars().count() > limits::BASE_PATH_CHARS || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request("base_path must be at most 1024 characters without control characters"));
    }
    Ok(if value.starts_with('/') { value.to_owned() } else { format!("/{value}") })
}

fn checked_sso_id(value: &str) -> Result<String, ApiError> {
    if value.chars().count() > limits::SSO_ID_CHARS || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request("sso_id must be at most 256 characters without control characters"));
    }
    Ok(value.to_owned())
}

fn checked_permission(value: i64) -> Result<i64, ApiError> {
    if !(0..=i64::from(i32::MAX)).contains(&value) {
        return Err(ApiError::bad_request("permission must be a non-negative 32-bit integer"));
    }
    Ok(value)
}

fn user_create(state: &SharedState, principal: &Principal, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let parsed = (|| {
        let body: UserBody = parse_body(body)?;
        Ok(NewAccount {
            username: Username::parse(body.username.as_deref().unwrap_or_default())?,
            password: Password::parse(body.password.as_deref().unwrap_or_default())?,
            role: role_key(body.role.unwrap_or(ALIST_ROLE_USER))?,
            disabled: body.disabled.unwrap_or(false),
            profile: UserProfile {
                base_path: checked_base_path(body.base_path.as_deref().unwrap_or_default())?,
                alist_permission: checked_permission(body.permission.unwrap_or(0))?,
                sso_id: checked_sso_id(body.sso_id.as_deref().unwrap_or_default())?,
                ..UserProfile::default()
            },
        })
    })();
    let account = refuse_early(principal, Permission::UsersWrite, parsed)?;
    state.services.create_user(principal, account)?;
    Ok(success(Value::Null))
}

fn user_update(state: &SharedState, principal: &Principal, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let parsed = (|| {
        let body: UserBody = parse_body(body)?;
        let id = body.id.filter(|id| *id > 0).ok_or_else(|| ApiError::bad_request("id must be a positive integer"))?;
        let changes = UserChanges {
            username: body.username.as_deref().map(Username::parse).transpose()?,
            disabled: body.disabled,
            profile: ProfileChanges {
                base_path: body.base_path.as_deref().map(checked_base_path).transpose()?,
                alist_permission: body.permission.map(checked_permission).transpose()?,
                sso_id: body.sso_id.as_deref().map(checked_sso_id).transpose()?,
                ..ProfileChanges::default()
            },
            role: body.role.map(role_key).transpose()?,
            password: body
                .password
                .as_deref()
                .filter(|password| !password.is_empty())
                .map(Password::parse)
                .transpose()?,
        };
        Ok((UserId(id), changes))
    })();
    let (id, changes) = refuse_early(principal, Permission::UsersWrite, parsed)?;
    // One transaction; the caller's own token survives a change of its own password, as on
    // /credentials.
    state.services.administer_user(principal, id, changes)?;
    Ok(success(Value::Null))
}

/// The alist `role` number of a built-in role.
fn alist_role_of(role: RoleKey) -> i64 {
    match role {
        RoleKey::Admin => ALIST_ROLE_ADMIN,
        RoleKey::Guest => ALIST_ROLE_GUEST,
        RoleKey::User => ALIST_ROLE_USER,
    }
}

fn user_cancel_two_factor(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let id = refuse_early(principal, Permission::UsersWrite, id_param(query))?;
    state.services.cancel_two_factor(principal, UserId(id))?;
    Ok(success(Value::Null))
}

fn user_delete(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let id = refuse_early(principal, Permission::UsersWrite, id_param(query))?;
    state.services.delete_user(principal, UserRef::Id(UserId(id)))?;
    Ok(success(Value::Null))
}

fn user_delete_cache(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let username = refuse_early(
        principal,
        Permission::UsersWrite,
        query_param(query, "username").ok_or_else(|| ApiError::bad_request("The query parameter username is required")),
    )?;
    // wssh caches no user: every request reads the store. Only existence is checked.
    state.services.check_user_exists(principal, &username)?;
    Ok(success(Value::Null))
}
