//! The roles, permissions and users of seed 004: `/role*`, `/perm*`, `/user*`, answering in that
//! seed's envelope `{code, message, msg, data}` (errors `{code, message, data: null}`), with
//! `code` equal to the HTTP status.
//!
//! * Roles: `POST /role`, `GET /role/list`, `GET|PUT|DELETE /role/{roleId}`.
//! * Permissions: `GET|PUT /perm?roleId=…`, `GET /perm/list`.
//! * Users: `POST /user`, `GET|PUT|DELETE /user/{uid}`, `POST /user/{uid}/bind`,
//!   `GET /user/info?username=…`.
//!
//! The users are the ones every other surface knows: a user made here logs in everywhere, and
//! disabling, deleting or rebinding it takes effect on every surface at once.

use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use wssh_auth::Principal;
use wssh_core::{Conflict, CoreError, ProfileChanges, RoleChanges, Services, UserChanges, UserRef, limits};
use wssh_domain::{
    NewRole, Password, Permission, PermissionSet, Role, RoleId, Timestamp, User, UserId, UserProfile, Username,
};

use crate::SharedState;
use crate::error::ApiError;
use crate::input::{self, Object, Query};
use crate::login_api;
use crate::respond::{self, Body, LoggedUser};
use crate::surface::{Call, Misroute, Surface};

/// Rows per page of `/role/list` when `pageSize` is absent or 0.
const DEFAULT_PAGE_SIZE: i64 = 10;
/// The most rows one page holds.
const MAX_PAGE_SIZE: i64 = 1000;

/// Whether `path` belongs to this surface.
pub(crate) fn matches(path: &str) -> bool {
    ["/role", "/perm", "/user"]
        .iter()
        .any(|prefix| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// A route of this surface, with its path parameter (raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/role`: create.
    Roles,
    /// `/role/list`: a page of roles.
    RoleList,
    /// `/role/{roleId}`: read, change, delete.
    Role(String),
    /// `/perm`: a role's permissions, read and replace.
    Permissions,
    /// `/perm/list`: every permission the server knows.
    PermissionList,
    /// `/user`: create (register).
    Users,
    /// `/user/info`: a user with its roles and permissions.
    UserInfo,
    /// `/user/{uid}`: read, change, delete.
    User(String),
    /// `/user/{uid}/bind`: replace the user's roles.
    UserBind(String),
}

impl Route {
    fn at(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = match segments.as_slice() {
            ["role"] => Route::Roles,
            ["role", "list"] => Route::RoleList,
            ["role", id] if !id.is_empty() => Route::Role((*id).to_owned()),
            ["perm"] => Route::Permissions,
            ["perm", "list"] => Route::PermissionList,
            ["user"] => Route::Users,
            ["user", "info"] => Route::UserInfo,
            ["user", id] if !id.is_empty() => Route::User((*id).to_owned()),
            ["user", id, "bind"] if !id.is_empty() => Route::UserBind((*id).to_owned()),
            _ => return None,
        };
        Some(route)
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::Roles | Route::Users | Route::UserBind(_) => &[Method::POST],
            Route::RoleList | Route::PermissionList | Route::UserInfo => &[Method::GET],
            Route::Role(_) | Route::User(_) => &[Method::GET, Method::PUT, Method::DELETE],
            Route::Permissions => &[Method::GET, Method::PUT],
        }
    }

    fn allow_header(&self) -> &'static str {
        match self {
            Route::Roles | Route::Users | Route::UserBind(_) => "POST, OPTIONS",
            Route::RoleList | Route::PermissionList | Route::UserInfo => "GET, OPTIONS",
            Route::Role(_) | Route::User(_) => "GET, PUT, DELETE, OPTIONS",
            Route::Permissions => "GET, PUT, OPTIONS",
        }
    }
}

/// The seed's success envelope; it names its message both `message` and `msg`.
fn envelope(status: StatusCode, message: &str, data: Value) -> Response<Body> {
    respond::json(status, &json!({ "code": status.as_u16(), "message": message, "msg": message, "data": data }))
}

/// A successful operation: status, message, data.
struct Reply {
    status: StatusCode,
    message: &'static str,
    data: Value,
}

impl Reply {
    fn ok(message: &'static str, data: Value) -> Self {
        Reply { status: StatusCode::OK, message, data }
    }
}

/// Seed 004's roles, permissions and users, on the shared skeleton.
pub(crate) struct Rbac;

impl Surface for Rbac {
    type Route = Route;

    fn route(path: &str, method: &Method, _headers: &HeaderMap) -> Result<Route, Misroute> {
        let route = Route::at(path).ok_or(Misroute::NotFound)?;
        if !route.methods().contains(method) {
            return Err(Misroute::MethodNotAllowed(Some(route.allow_header())));
        }
        Ok(route)
    }

    fn refuse(failure: &ApiError) -> Response<Body> {
        login_api::error(failure)
    }

    fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
        let (reply, username) = run(state, &route, call)?;
        let mut response = envelope(reply.status, reply.message, reply.data);
        if let Some(username) = username {
            response.extensions_mut().insert(LoggedUser(username));
        }
        Ok(response)
    }
}

/// Runs one operation: the reply and the caller's name, or the refusal.
fn run(state: &SharedState, route: &Route, request: &Call) -> Result<(Reply, Option<String>), ApiError> {
    if *route == Route::Users {
        return register(state, request);
    }
    let principal = input::authenticate(state, &request.headers, request.peer, wssh_domain::audit::Surface::Rbac)?;
    let operations = Operations { services: &state.services, principal: &principal };
    let reply = match (route, &request.method) {
        (Route::Roles, _) => operations.create_role(&request.body)?,
        (Route::RoleList, _) => operations.list_roles(&request.query, &request.body)?,
        (Route::Role(id), &Method::GET) => operations.get_role(parse_id(id, "roleId")?)?,
        (Route::Role(id), &Method::PUT) => operations.update_role(parse_id(id, "roleId")?, &request.body)?,
        (Route::Role(id), _) => operations.delete_role(parse_id(id, "roleId")?)?,
        (Route::Permissions, &Method::GET) => operations.role_permissions(&request.query, &request.body)?,
        (Route::Permissions, _) => operations.set_role_permissions(&request.query, &request.body)?,
        (Route::PermissionList, _) => operations.all_permissions()?,
        (Route::UserInfo, _) => operations.user_info(&request.query)?,
        (Route::User(id), &Method::GET) => operations.get_user(UserId(parse_id(id, "uid")?))?,
        (Route::User(id), &Method::PUT) => operations.update_user(UserId(parse_id(id, "uid")?), &request.body)?,
        (Route::User(id), _) => operations.delete_user(UserId(parse_id(id, "uid")?))?,
        (Route::UserBind(id), _) => operations.bind_roles(UserId(parse_id(id, "uid")?), &request.body)?,
        (Route::Users, _) => return register(state, request),
    };
    Ok((reply, Some(principal.username.to_string())))
}

/// A path id: an integer, else 400.
fn parse_id(raw: &str, label: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::bad_request(format!("{label} must be an integer")))
}

/// Seed 004's time format, `2023-01-01 12:00:00` (UTC).
fn seed_time(moment: Timestamp) -> String {
    moment.to_rfc3339().replacen('T', " ", 1).trim_end_matches('Z').to_owned()
}

/// Seed 004's status: `"0"` enabled, `"1"` disabled.
fn status(disabled: bool) -> &'static str {
    if disabled { "1" } else { "0" }
}

/// A status field (`"0"`/`"1"`, or those as numbers) as a disabled flag; empty is absent.
fn status_field(body: &Object) -> Result<Option<bool>, ApiError> {
    match input::field(body, &["status"]) {
        None => Ok(None),
        Some(value) => match input::integer(value, "status") {
            Ok(None) => Ok(None),
            Ok(Some(0)) => Ok(Some(false)),
            Ok(Some(1)) => Ok(Some(true)),
            _ => Err(ApiError::bad_request("status must be \"0\" (enabled) or \"1\" (disabled)")),
        },
    }
}

/// A human label for a permission, as `/perm/list` shows it.
fn permission_label(permission: Permission) -> &'static str {
    match permission {
        Permission::SessionsRead => "Read sessions",
        Permission::SessionsWrite => "Create, change and delete sessions",
        Permission::SessionsConnect => "Open shells on sessions",
        Permission::TokensRead => "List own access tokens",
        Permission::TokensWrite => "Mint, change and revoke own access tokens",
        Permission::UsersRead => "Read users and their tokens",
        Permission::UsersWrite => "Create, change and delete users and their tokens",
        Permission::RolesRead => "Read roles and their permissions",
        Permission::RolesWrite => "Create, change and delete roles, and bind them to users",
        Permission::ShellsObserve => "Watch other users' live shells",
        Permission::ShellsControl => "Take part in other users' live shells",
        Permission::AuditRead => "Read the audit log",
        Permission::RecordingsRead => "List, play and delete shell recordings",
        Permission::ShellsRunAsAny => "Open shells that run as another OS account (run_as)",
    }
}

/// `{total, list: [{name, permission}]}` of a set.
fn permission_list(permissions: PermissionSet) -> Value {
    let list: Vec<Value> = permissions
        .iter()
        .map(|permission| json!({ "name": permission_label(permission), "permission": permission.as_str() }))
        .collect();
    json!({ "total": list.len(), "list": list })
}

fn names(permissions: PermissionSet) -> Vec<&'static str> {
    permissions.iter().map(Permission::as_str).collect()
}

/// A role in both of the seed's spellings: the examples' camelCase and the schema's snake_case.
fn role_view(role: &Role) -> Value {
    json!({
        "roleId": role.id.0,
        "roleName": role.name,
        "roleKey": role.key,
        "roleSort": role.sort,
        "status": status(role.disabled),
        "createTime": seed_time(role.created_at),
        "updateTime": seed_time(role.updated_at),
        "remark": role.remark,
        "builtIn": role.built_in,
        "menuIds": [],
        "permissions": names(role.permissions),
        "role_id": role.id.0,
        "role_name": role.name,
        "role_key": role.key,
        "role_sort": role.sort,
        "create_by": Value::Null,
        "create_time": role.created_at.to_rfc3339(),
        "update_by": Value::Null,
        "update_time": role.updated_at.to_rfc3339(),
    })
}

/// The seed's user object. `password` is always empty: no hash ever leaves the server.
fn user_view(user: &User) -> Value {
    let profile = &user.profile;
    json!({
        "userId": user.id.0,
        "username": user.username.as_str(),
        "nickname": profile.nickname,
        "password": "",
        "avatar": profile.avatar,
        "phone": profile.phone,
        "email": profile.email,
        "sex": profile.sex,
        "status": status(user.disabled),
        "createTime": seed_time(user.created_at),
        "updateTime": seed_time(user.updated_at),
        "remark": profile.remark,
        "roles": user.roles,
        "permissions": names(user.permissions),
    })
}

/// The role fields a body may carry, in either spelling.
struct RoleFields {
    name: Option<String>,
    key: Option<String>,
    sort: Option<i64>,
    disabled: Option<bool>,
    remark: Option<String>,
    permissions: Option<PermissionSet>,
}

impl RoleFields {
    fn read(body: &Object) -> Result<RoleFields, ApiError> {
        let remark = input::text_field(body, &["remark"], "remark")?;
        if let Some(remark) = &remark {
            input::check_text("remark", remark, limits::REMARK_CHARS)?;
        }
        let permissions = match input::field(body, &["permissions", "permission"]) {
            None => None,
            Some(value) => Some(input::permission_names(value, "permissions")?.into_iter().collect()),
        };
        Ok(RoleFields {
            name: input::text_field(body, &["role_name", "roleName"], "role_name")?,
            key: input::text_field(body, &["role_key", "roleKey"], "role_key")?,
            sort: input::integer_field(body, &["role_sort", "roleSort"], "role_sort")?,
            disabled: status_field(body)?,
            remark,
            permissions,
        })
    }
}

/// `POST /user`: open to anyone when registration is allowed, else it needs `users:write`.
/// Users made by a holder of `users:write` get the `user` role; self-registered ones `guest`.
fn register(state: &SharedState, request: &Call) -> Result<(Reply, Option<String>), ApiError> {
    let services = &state.services;
    let presented = request.headers.get(header::AUTHORIZATION).is_some();
    let principal = if presented || !services.config().allow_registration {
        Some(input::authenticate(state, &request.headers, request.peer, wssh_domain::audit::Surface::Rbac)?)
    } else {
        None
    };
    services.may_register(principal.as_ref())?;
    let body = input::object_body(&request.body)?;
    let username = input::text_field(&body, &["username", "userName"], "username")?.unwrap_or_default();
    let password = input::text_field(&body, &["password"], "password")?.unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::bad_request("username and password are required"));
    }
    let username = Username::parse(&username)?;
    let password = Password::parse(&password)?;
    let mut profile = UserProfile::default();
    profile_changes(&body)?.apply(&mut profile);
    // The seed lists 400 as this route's only refusal of input: a taken name is one.
    let user = services.register(principal.as_ref(), username, password, profile).map_err(|failure| match failure {
        CoreError::Conflict(Conflict::UsernameTaken) => ApiError::bad_request("User already exists"),
        other => other.into(),
    })?;
    let reply = Reply {
        status: StatusCode::CREATED,
        message: "User created",
        data: json!({ "id": user.id.0, "username": user.username.as_str() }),
    };
    let caller = principal.map_or_else(|| user.username.to_string(), |principal| principal.username.to_string());
    Ok((reply, Some(caller)))
}

/// The profile fields a body carries, checked.
fn profile_changes(body: &Object) -> Result<ProfileChanges, ApiError> {
    let field = |name: &'static str, max: usize| -> Result<Option<String>, ApiError> {
        let value = input::text_field(body, &[name], name)?;
        if let Some(value) = &value {
            input::check_text(name, value, max)?;
        }
        Ok(value)
    };
    Ok(ProfileChanges {
        nickname: field("nickname", limits::PROFILE_CHARS)?,
        avatar: field("avatar", limits::AVATAR_CHARS)?,
        phone: field("phone", limits::PROFILE_CHARS)?,
        email: field("email", limits::PROFILE_CHARS)?,
        sex: field("sex", limits::PROFILE_CHARS)?,
        remark: field("remark", limits::REMARK_CHARS)?,
        ..ProfileChanges::default()
    })
}

struct Operations<'a> {
    services: &'a Services,
    principal: &'a Principal,
}

impl Operations<'_> {
    fn create_role(&self, body: &[u8]) -> Result<Reply, ApiError> {
        let parsed = input::object_body(body).and_then(|body| RoleFields::read(&body));
        let fields = self.refuse_early(Permission::RolesWrite, parsed)?;
        let name = fields.name.unwrap_or_default();
        let key = fields.key.unwrap_or_default();
        if name.is_empty() || key.is_empty() {
            return Err(ApiError::bad_request("role_name and role_key are required"));
        }
        let role = NewRole {
            key,
            name,
            sort: fields.sort.unwrap_or(0),
            disabled: fields.disabled.unwrap_or(false),
            remark: fields.remark.unwrap_or_default(),
            permissions: fields.permissions.unwrap_or(PermissionSet::EMPTY),
        };
        let role = self.services.create_role(self.principal, role)?;
        Ok(Reply::ok("Role created", role_view(&role)))
    }

    fn list_roles(&self, query: &Query, body: &[u8]) -> Result<Reply, ApiError> {
        // The seed sends these in a GET body; the query string is read first. A body that is
        // not a JSON object is ignored.
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            _ => Object::new(),
        };
        let integer = |name: &str| -> Result<Option<i64>, ApiError> {
            match query.integer(name)? {
                Some(value) => Ok(Some(value)),
                None => input::integer_field(&body, &[name], name),
            }
        };
        let text = |name: &str| -> Result<String, ApiError> {
            match query.get(name) {
                Some(value) => Ok(value.to_owned()),
                None => Ok(input::text_field(&body, &[name], name)?.unwrap_or_default()),
            }
        };
        let roles = self.services.roles(self.principal)?;
        let page = integer("pageNum")?.unwrap_or(1);
        let size = integer("pageSize")?.unwrap_or(0);
        if page < 0 || size < 0 {
            return Err(ApiError::bad_request("pageNum and pageSize must not be negative"));
        }
        let page = page.max(1);
        let size = if size == 0 { DEFAULT_PAGE_SIZE } else { size.min(MAX_PAGE_SIZE) };
        let name = text("roleName")?.to_lowercase();
        let key = text("roleKey")?.to_lowercase();
        let wanted_status = match text("status")?.trim() {
            "" => None,
            "0" => Some(false),
            "1" => Some(true),
            _ => return Err(ApiError::bad_request("status must be \"0\" (enabled) or \"1\" (disabled)")),
        };
        let roles: Vec<Role> = roles
            .into_iter()
            .filter(|role| role.name.to_lowercase().contains(&name))
            .filter(|role| role.key.to_lowercase().contains(&key))
            .filter(|role| wanted_status.is_none_or(|disabled| role.disabled == disabled))
            .collect();
        let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
        let take = usize::try_from(size).unwrap_or(usize::MAX);
        let list: Vec<Value> = roles.iter().skip(skip).take(take).map(role_view).collect();
        Ok(Reply::ok("Roles listed", json!({ "total": roles.len(), "list": list })))
    }

    fn get_role(&self, id: i64) -> Result<Reply, ApiError> {
        Ok(Reply::ok("Role found", role_view(&self.services.role(self.principal, RoleId(id))?)))
    }

    fn update_role(&self, id: i64, body: &[u8]) -> Result<Reply, ApiError> {
        let parsed = input::object_body(body).and_then(|body| RoleFields::read(&body));
        let fields = self.refuse_early(Permission::RolesWrite, parsed)?;
        let changes = RoleChanges {
            name: fields.name,
            key: fields.key,
            sort: fields.sort,
            disabled: fields.disabled,
            remark: fields.remark,
            permissions: fields.permissions,
        };
        let updated = self.services.update_role(self.principal, RoleId(id), changes)?;
        Ok(Reply::ok("Role updated", role_view(&updated)))
    }

    /// A refusal of the body's fields, unless the caller lacks `permission`: then that refusal,
    /// as the service would give it, comes first (403 before 400).
    fn refuse_early<T>(&self, permission: Permission, parsed: Result<T, ApiError>) -> Result<T, ApiError> {
        match parsed {
            Err(_) if !self.principal.can(permission) => Err(CoreError::Forbidden(permission).into()),
            other => other,
        }
    }

    fn delete_role(&self, id: i64) -> Result<Reply, ApiError> {
        let role = self.services.delete_role(self.principal, RoleId(id))?;
        Ok(Reply::ok("Role deleted", role_view(&role)))
    }

    /// `roleId` from the query string, else from a JSON body.
    fn role_id_param(query: &Query, body: &Object) -> Result<Option<i64>, ApiError> {
        match query.integer("roleId")? {
            Some(id) => Ok(Some(id)),
            None => input::integer_field(body, &["roleId", "role_id"], "roleId"),
        }
    }

    fn role_permissions(&self, query: &Query, body: &[u8]) -> Result<Reply, ApiError> {
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            _ => Object::new(),
        };
        match Self::role_id_param(query, &body)? {
            Some(id) => {
                let role = self.services.role(self.principal, RoleId(id))?;
                Ok(Reply::ok("Permissions listed", permission_list(role.permissions)))
            }
            // Without a role: the permissions this request holds.
            None => Ok(Reply::ok("Permissions listed", permission_list(self.principal.permissions))),
        }
    }

    fn set_role_permissions(&self, query: &Query, body: &[u8]) -> Result<Reply, ApiError> {
        let parsed = (|| {
            let body = input::object_body(body)?;
            let id = Self::role_id_param(query, &body)?.ok_or_else(|| ApiError::bad_request("roleId is required"))?;
            let permissions: PermissionSet = if query.has("permissions") {
                let mut set = PermissionSet::EMPTY;
                for value in query.all("permissions") {
                    for permission in input::permission_names(&Value::String(value.to_owned()), "permissions")? {
                        set = set.with(permission);
                    }
                }
                set
            } else if let Some(value) = input::field(&body, &["permissions", "permission"]) {
                input::permission_names(value, "permissions")?.into_iter().collect()
            } else {
                return Err(ApiError::bad_request("permissions is required (empty to clear)"));
            };
            Ok((id, permissions))
        })();
        let (id, permissions) = self.refuse_early(Permission::RolesWrite, parsed)?;
        let changes = RoleChanges { permissions: Some(permissions), ..RoleChanges::default() };
        let updated = self.services.update_role(self.principal, RoleId(id), changes)?;
        Ok(Reply::ok("Permissions updated", permission_list(updated.permissions)))
    }

    fn all_permissions(&self) -> Result<Reply, ApiError> {
        Ok(Reply::ok("Permissions listed", permission_list(self.services.permission_catalogue(self.principal)?)))
    }

    fn user_info(&self, query: &Query) -> Result<Reply, ApiError> {
        let wanted = query.get("username").map(str::trim).filter(|name| !name.is_empty());
        let user = match wanted {
            Some(name) => self.services.user(self.principal, UserRef::Name(name))?,
            None => self.services.caller(self.principal)?,
        };
        let profile = &user.profile;
        Ok(Reply::ok(
            "User found",
            json!({ "user": {
                "id": user.id.0,
                "userId": user.id.0,
                "username": user.username.as_str(),
                "nickname": profile.nickname,
                "avatar": profile.avatar,
                "email": profile.email,
                "deptId": 0,
                "deptName": "",
                "deptPath": "",
                "roles": user.roles,
                "permissions": names(user.permissions),
                "dataScope": "",
                "deptIds": [],
                "status": status(user.disabled),
            } }),
        ))
    }

    fn get_user(&self, id: UserId) -> Result<Reply, ApiError> {
        Ok(Reply::ok("User found", user_view(&self.services.user(self.principal, UserRef::Id(id))?)))
    }

    fn update_user(&self, id: UserId, body: &[u8]) -> Result<Reply, ApiError> {
        let parsed = (|| {
            let body = input::object_body(body)?;
            let username = input::text_field(&body, &["username", "userName"], "username")?
                .filter(|name| !name.is_empty())
                .map(|name| Username::parse(&name))
                .transpose()?;
            Ok(UserChanges {
                username,
                disabled: status_field(&body)?,
                profile: profile_changes(&body)?,
                role: None,
                password: input::text_field(&body, &["password"], "password")?
                    .filter(|password| !password.is_empty())
                    .map(|password| Password::parse(&password))
                    .transpose()?,
            })
        })();
        let changes =
            if id == self.principal.user_id { parsed? } else { self.refuse_early(Permission::UsersWrite, parsed)? };
        // The user's other tokens are revoked with a new password; the one this request came
        // with survives when users change their own.
        let updated = self.services.edit_user(self.principal, id, changes)?;
        Ok(Reply::ok("User updated", user_view(&updated)))
    }

    fn delete_user(&self, id: UserId) -> Result<Reply, ApiError> {
        let user = self.services.delete_user(self.principal, UserRef::Id(id))?;
        Ok(Reply::ok("User deleted", user_view(&user)))
    }

    fn bind_roles(&self, id: UserId, body: &[u8]) -> Result<Reply, ApiError> {
        let parsed = (|| {
            let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError::bad_request("The body must be an array of role ids"));
            } else {
                serde_json::from_slice(body)
                    .map_err(|error| ApiError::bad_request(format!("Malformed JSON body: {error}")))?
            };
            let items = match &value {
                Value::Array(items) => items,
                Value::Object(object) => match input::field(object, &["roleIds", "role_ids", "roles"]) {
                    Some(Value::Array(items)) => items,
                    _ => return Err(ApiError::bad_request("The body must be an array of role ids")),
                },
                _ => return Err(ApiError::bad_request("The body must be an array of role ids")),
            };
            let mut roles = Vec::with_capacity(items.len());
            for item in items {
                let id = input::integer(item, "role id")?.ok_or_else(|| ApiError::bad_request("role id is empty"))?;
                roles.push(RoleId(id));
            }
            Ok(roles)
        })();
        let roles = self.refuse_early(Permission::RolesWrite, parsed)?;
        let user = self.services.bind_roles(self.principal, id, &roles)?;
        Ok(Reply::ok("Roles bound", user_view(&user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::at("/role"), Some(Route::Roles));
        assert_eq!(Route::at("/role/list"), Some(Route::RoleList));
        assert_eq!(Route::at("/role/7"), Some(Route::Role("7".into())));
        assert_eq!(Route::at("/perm"), Some(Route::Permissions));
        assert_eq!(Route::at("/perm/list"), Some(Route::PermissionList));
        assert_eq!(Route::at("/user"), Some(Route::Users));
        assert_eq!(Route::at("/user/info"), Some(Route::UserInfo));
        assert_eq!(Route::at("/user/3"), Some(Route::User("3".into())));
        assert_eq!(Route::at("/user/3/bind"), Some(Route::UserBind("3".into())));
        assert_eq!(Route::at("/user/3/other"), None);
        assert_eq!(Route::at("/role/"), None);
        assert!(matches("/role") && matches("/user/1/bind") && matches("/perm/list"));
        assert!(!matches("/roles") && !matches("/username") && !matches("/permission"));
    }

    #[test]
    fn seed_times() {
        assert_eq!(seed_time(Timestamp(1_795_000_000)), "2026-11-18 11:06:40");
    }
}
