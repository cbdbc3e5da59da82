//! The go_ws_sh management API: `/tokens`, `/credentials` and `/sessions`.
//!
//! Each operation reads go_ws_sh's JSON body, resolves the caller, checks one permission,
//! validates through the domain types, calls the store, and answers in the seed's shapes.
//! Everything here blocks (argon2, SQLite) and runs on a blocking thread, except
//! [`answer_from_memory`]: the session list for a caller whose token or login was resolved
//! recently, served from memory on the async worker.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use wssh_auth::credentials::AuthorizationObject;
use wssh_auth::{AuthError, Credentials, Principal};
use wssh_core::{NewAccount, Services, SessionChanges, StoreCache, TokenChanges, TokenFilter, UserRef, limits};
use wssh_domain::{
    AccessToken, Password, Permission, RoleKey, Session, SessionName, SessionSpec, Timestamp, TokenSpec, User,
    UserProfile, Username,
};

use crate::error::ApiError;
use crate::respond::{self, Body, LoggedUser};
use crate::surface::{Call, Misroute, Surface};
use crate::{AppState, SharedState};

/// The three resources of the go_ws_sh API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Tokens,
    Credentials,
    Sessions,
}

/// What a request asks of its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    List,
    Update,
    Delete,
    Copy,
    Move,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RequestBody {
    authorization: Option<AuthorizationObject>,
    token: Option<TokenFields>,
    credential: Option<CredentialFields>,
    session: Option<SessionFields>,
    destination: Option<DestinationFields>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenFields {
    #[serde(alias = "identifer")]
    identifier: Option<String>,
    username: Option<String>,
    description: Option<String>,
    /// wssh's own addition (POST): the token expires after this many days; 0 or absent: never.
    expires_in_days: Option<i64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CredentialFields {
    username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for CredentialFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialFields").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionFields {
    name: Option<String>,
    cmd: Option<String>,
    args: Option<Vec<String>>,
    dir: Option<String>,
    run_as: Option<String>,
    record: Option<bool>,
    /// Absent: unchanged; `null`: the server's default; a number: the template's own.
    #[serde(deserialize_with = "present")]
    detach_timeout_seconds: Option<Option<u64>>,
}

/// A field that is present, even as `null` (`Some(None)`), told apart from one left out.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DestinationFields {
    name: Option<String>,
}

/// A successful reply: status, serialized JSON body, and the caller's name for the request log.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    pub(crate) username: String,
}

/// How long the serialized session list may be served without a look at the store; a change
/// made through this server ends it at once (see [`StoreCache`]).
const SESSION_LIST_TTL: Duration = Duration::from_secs(1);

/// The serialized session list, `[{…}, …]`, as the listing answers it, kept while no session
/// changes.
#[derive(Debug)]
pub(crate) struct SessionListCache(StoreCache<(), Bytes>);

impl Default for SessionListCache {
    fn default() -> Self {
        SessionListCache(StoreCache::new(1, SESSION_LIST_TTL))
    }
}

/// go_ws_sh's routing discriminator for POST requests.
const METHOD_OVERRIDE: &str = "x-http-method-override";

/// go_ws_sh's management API, on the shared skeleton.
pub(crate) struct GoWsSh;

impl Surface for GoWsSh {
    type Route = (Resource, Operation);

    fn route(path: &str, method: &Method, headers: &HeaderMap) -> Result<Self::Route, Misroute> {
        let resource = match path {
            "/tokens" => Resource::Tokens,
            "/credentials" => Resource::Credentials,
            "/sessions" => Resource::Sessions,
            _ => return Err(Misroute::NotFound),
        };
        let operation = operation(method, headers, resource).ok_or(Misroute::MethodNotAllowed(None))?;
        Ok((resource, operation))
    }

    fn refuse(failure: &ApiError) -> Response<Body> {
        respond::error(failure)
    }

    fn answer_from_memory(state: &SharedState, route: &Self::Route, call: &Call) -> Option<Response<Body>> {
        let authorization = authorization(&call.headers).ok()?;
        let reply = answer_from_memory(state, route.0, route.1, authorization, &call.body)?;
        Some(reply.into_response())
    }

    fn run(state: &SharedState, (resource, operation): Self::Route, call: &Call) -> Result<Response<Body>, ApiError> {
        let authorization = authorization(&call.headers)?;
        Ok(run(state, resource, operation, authorization, &call.body, call.peer.ip())?.into_response())
    }
}

/// The `Authorization` header, when present and not blank; one that is not text is 401.
fn authorization(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token"))?;
    Ok(Some(value).filter(|value| !value.trim().is_empty()))
}

impl Reply {
    fn into_response(self) -> Response<Body> {
        let mut response = respond::json_bytes(self.status, self.body);
        response.extensions_mut().insert(LoggedUser(self.username));
        response
    }
}

/// Picks the operation as go_ws_sh does: GET lists; POST creates, or lists when
/// `x-HTTP-method-override: GET`; PUT, DELETE, COPY and MOVE act on their real method and
/// ignore the header. Anything else is 405.
fn operation(method: &Method, headers: &HeaderMap, resource: Resource) -> Option<Operation> {
    let operation = match method.as_str() {
        "GET" => Operation::List,
        "POST" => match headers.get(METHOD_OVERRIDE).map(|value| value.as_bytes()) {
            None | Some(b"" | b"POST") => Operation::Create,
            Some(b"GET") => Operation::List,
            Some(_) => return None,
        },
        "PUT" => Operation::Update,
        "DELETE" => Operation::Delete,
        "COPY" if resource == Resource::Sessions => Operation::Copy,
        "MOVE" if resource == Resource::Sessions => Operation::Move,
        _ => return None,
    };
    Some(operation)
}

/// Answers a `/sessions` listing without blocking when everything it needs is in memory: the
/// request has no body (no filter, no credentials in it), its token or access JWT was
/// resolved recently, it may read sessions, and the list is cached. The reply is byte for byte
/// the one [`run`] gives. `None`: take [`run`] on a blocking thread, which fills the caches.
fn answer_from_memory(
    state: &AppState,
    resource: Resource,
    operation: Operation,
    authorization_header: Option<&str>,
    body: &[u8],
) -> Option<Reply> {
    if (resource, operation) != (Resource::Sessions, Operation::List) || !body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let credentials = Credentials::from_authorization_header(authorization_header?).ok()?;
    let generation = state.services.generation();
    let principal = state.auth.authenticate_cached(&credentials)?;
    if !principal.can(Permission::SessionsRead) {
        return None;
    }
    let sessions = state.session_list.0.get(&(), generation)?;
    // The keys in the order serde_json writes a map: sorted.
    let mut reply = Vec::with_capacity(sessions.len() + 96);
    reply.extend_from_slice(br#"{"message":"List of Sessions ok","sessions":"#);
    reply.extend_from_slice(&sessions);
    reply.extend_from_slice(br#","username":"#);
    serde_json::to_writer(&mut reply, principal.username.as_str()).ok()?;
    reply.push(b'}');
    Some(Reply { status: StatusCode::OK, body: Bytes::from(reply), username: principal.username.to_string() })
}

/// Parses the body; malformed JSON is a 400 before anything else is looked at.
fn parse_body(body: &[u8]) -> Result<RequestBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RequestBody::default());
    }
    serde_json::from_slice(body).map_err(|error| ApiError::bad_request(format!("Malformed JSON body: {error}")))
}

/// Runs one go_ws_sh API operation.
fn run(
    state: &AppState,
    resource: Resource,
    operation: Operation,
    authorization_header: Option<&str>,
    body: &[u8],
    client: IpAddr,
) -> Result<Reply, ApiError> {
    let mut body = parse_body(body)?;
    // go_ws_sh: a non-empty Authorization header alone decides; otherwise the body's object.
    let credentials = match authorization_header {
        Some(value) => Credentials::from_authorization_header(value)?,
        None => body.authorization.take().ok_or(AuthError::MissingCredentials)?.into_credentials()?,
    };
    let origin = wssh_auth::Origin::request(wssh_domain::audit::Surface::GoWsSh, Some(client));
    let principal = state.services.authenticate(&credentials, &origin)?;
    let operations = Operations { state, principal: &principal };
    let (message, mut reply) = match (resource, operation) {
        (Resource::Tokens, Operation::Create) => operations.create_token(body.token.unwrap_or_default())?,
        (Resource::Tokens, Operation::List) => operations.list_tokens(body.token.unwrap_or_default())?,
        (Resource::Tokens, Operation::Update) => operations.update_token(body.token.unwrap_or_default())?,
        (Resource::Tokens, Operation::Delete) => operations.delete_token(body.token.unwrap_or_default())?,
        (Resource::Credentials, Operation::Create) => {
            operations.create_credential(body.credential.unwrap_or_default())?
        }
        (Resource::Credentials, Operation::List) => operations.list_credentials(body.credential.unwrap_or_default())?,
        (Resource::Credentials, Operation::Update) => {
            operations.change_password(body.credential.unwrap_or_default())?
        }
        (Resource::Credentials, Operation::Delete) => {
            operations.delete_credential(body.credential.unwrap_or_default())?
        }
        (Resource::Sessions, Operation::Create) => operations.create_session(body.session.unwrap_or_default())?,
        (Resource::Sessions, Operation::List) => operations.list_sessions(body.session.unwrap_or_default())?,
        (Resource::Sessions, Operation::Update) => operations.update_session(body.session.unwrap_or_default())?,
        (Resource::Sessions, Operation::Delete) => operations.delete_session(body.session.unwrap_or_default())?,
        (Resource::Sessions, Operation::Copy | Operation::Move) => operations.copy_or_move_session(
            operation == Operation::Move,
            body.session.unwrap_or_default(),
            body.destination.unwrap_or_default(),
        )?,
        (_, Operation::Copy | Operation::Move) => return Err(ApiError::method_not_allowed()),
    };
    if let Value::Object(map) = &mut reply {
        map.insert("message".into(), Value::String(message.into()));
        map.insert("username".into(), Value::String(principal.username.to_string()));
    }
    let body = Bytes::from(serde_json::to_vec(&reply).map_err(|error| ApiError::internal(&error))?);
    Ok(Reply { status: StatusCode::OK, body, username: principal.username.to_string() })
}

fn token_view(token: &AccessToken) -> Value {
    json!({
        "identifier": token.identifier.as_str(),
        "username": token.username.as_str(),
        "description": token.description,
        "created_at": token.created_at.to_rfc3339(),
        "updated_at": token.updated_at.to_rfc3339(),
        "expires_at": token.expires_at.map(|expiry| expiry.to_rfc3339()),
    })
}

fn credential_view(user: &User) -> Value {
    json!({
        "username": user.username.as_str(),
        "roles": user.roles,
        "disabled": user.disabled,
        "created_at": user.created_at.to_rfc3339(),
        "updated_at": user.updated_at.to_rfc3339(),
    })
}

fn session_view(session: &Session) -> Value {
    let mut view = json!({
        "name": session.spec.name.as_str(),
        "cmd": session.spec.cmd,
        "args": session.spec.args,
        "dir": session.spec.dir,
        "created_at": session.created_at.to_rfc3339(),
        "updated_at": session.updated_at.to_rfc3339(),
    });
    // go_ws_sh's shape, plus `run_as` only on templates that name an account.
    if let Some(run_as) = &session.spec.run_as {
        view["run_as"] = json!(run_as);
    }
    // And the template's own detach timeout, only when it has one.
    if let Some(seconds) = session.spec.detach_timeout_seconds {
        view["detach_timeout_seconds"] = json!(seconds);
    }
    // … and `record` only on templates whose shells are recorded.
    if session.spec.record {
        view["record"] = json!(true);
    }
    view
}

/// A non-empty value, or a 400 naming the field.
fn required(value: Option<String>, message: &str) -> Result<String, ApiError> {
    value.filter(|value| !value.is_empty()).ok_or_else(|| ApiError::bad_request(message))
}

type Outcome = Result<(&'static str, Value), ApiError>;

struct Operations<'a> {
    state: &'a AppState,
    principal: &'a Principal,
}

/// A user named in a body: empty is the caller.
fn named(username: Option<&str>) -> Option<UserRef<'_>> {
    username.filter(|name| !name.is_empty()).map(UserRef::Name)
}

impl Operations<'_> {
    fn services(&self) -> &Services {
        &self.state.services
    }

    fn create_token(&self, fields: TokenFields) -> Outcome {
        let description = fields.description.unwrap_or_default();
        if description.chars().count() > limits::TOKEN_TEXT_CHARS {
            return Err(ApiError::bad_request("Token description is too long"));
        }
        let days = fields.expires_in_days.unwrap_or(0);
        if !(0..=limits::TOKEN_EXPIRY_DAYS).contains(&days) {
            return Err(ApiError::bad_request(format!(
                "expires_in_days must be 0 (never) to {}",
                limits::TOKEN_EXPIRY_DAYS
            )));
        }
        let expires_at = (days > 0).then(|| Timestamp::now().plus_seconds(days * 86_400));
        let spec = TokenSpec { description, expires_at, ..TokenSpec::default() };
        let minted = self.services().mint_token(self.principal, named(fields.username.as_deref()), spec)?;
        let mut token = token_view(&minted.token);
        token["token"] = Value::String(minted.secret);
        Ok(("Login successful", json!({ "token": token })))
    }

    fn list_tokens(&self, fields: TokenFields) -> Outcome {
        let filter = TokenFilter {
            identifier: fields.identifier.as_deref().filter(|identifier| !identifier.is_empty()),
            username: fields.username.as_deref().filter(|username| !username.is_empty()),
        };
        let tokens: Vec<Value> = self.services().tokens(self.principal, filter)?.iter().map(token_view).collect();
        Ok(("Tokens listed successfully", json!({ "tokens": tokens })))
    }

    fn update_token(&self, fields: TokenFields) -> Outcome {
        let identifier = required(fields.identifier, "Identifier is empty")?;
        if fields.description.as_ref().is_some_and(|description| description.chars().count() > limits::TOKEN_TEXT_CHARS)
        {
            return Err(ApiError::bad_request("Token description is too long"));
        }
        let changes = TokenChanges { description: fields.description, ..TokenChanges::default() };
        let updated = self.services().update_token(self.principal, &identifier, None, changes)?;
        Ok(("Token updated successfully", json!({ "token": token_view(&updated) })))
    }

    fn delete_token(&self, fields: TokenFields) -> Outcome {
        let identifier = required(fields.identifier, "Identifier is empty")?;
        let token = self.services().revoke_token(self.principal, &identifier, None)?;
        Ok(("Token deleted successfully", json!({ "token": token_view(&token) })))
    }

    fn create_credential(&self, fields: CredentialFields) -> Outcome {
        const EMPTY: &str = "New password is empty or username is empty";
        require(self.principal, Permission::UsersWrite)?;
        let username = Username::parse(&required(fields.username, EMPTY)?)?;
        let password = Password::parse(&required(fields.password, EMPTY)?)?;
        let account =
            NewAccount { username, password, role: RoleKey::User, disabled: false, profile: UserProfile::default() };
        let user = self.services().create_user(self.principal, account)?;
        Ok(("username and Password create successfully", json!({ "credential": credential_view(&user) })))
    }

    fn list_credentials(&self, fields: CredentialFields) -> Outcome {
        let wanted = fields.username.filter(|username| !username.is_empty());
        let credentials: Vec<Value> = self
            .services()
            .visible_users(self.principal)?
            .iter()
            .filter(|user| wanted.as_deref().is_none_or(|wanted| user.username.as_str() == wanted))
            .map(credential_view)
            .collect();
        Ok(("Credentials listed successfully", json!({ "credentials": credentials })))
    }

    fn change_password(&self, fields: CredentialFields) -> Outcome {
        let target = named(fields.username.as_deref()).unwrap_or(UserRef::Id(self.principal.user_id));
        if matches!(target, UserRef::Name(name) if name != self.principal.username.as_str()) {
            require(self.principal, Permission::UsersWrite)?;
        }
        let password = Password::parse(&required(fields.password, "New password is empty or username is empty")?)?;
        // Every other token of the user is revoked; the caller's own token survives so that
        // changing one's password does not sign the current client out.
        let user = self.services().change_password(self.principal, target, &password)?;
        Ok(("Password updated successfully", json!({ "credential": credential_view(&user) })))
    }

    fn delete_credential(&self, fields: CredentialFields) -> Outcome {
        require(self.principal, Permission::UsersWrite)?;
        let username = required(fields.username, "Username is empty")?;
        let user = self.services().delete_user(self.principal, UserRef::Name(&username))?;
        Ok(("Credential deleted successfully", json!({ "credential": credential_view(&user) })))
    }

    fn session_name(&self, name: Option<String>, field: &'static str) -> Result<SessionName, ApiError> {
        Ok(SessionName::parse_field(field, &required(name, "Name is empty")?)?)
    }

    fn create_session(&self, fields: SessionFields) -> Outcome {
        require(self.principal, Permission::SessionsWrite)?;
        let name = self.session_name(fields.name, "session.name")?;
        let spec = SessionSpec::new(
            name,
            fields.cmd.unwrap_or_default(),
            fields.args.unwrap_or_default(),
            fields.dir.unwrap_or_default(),
        )?
        .with_run_as(fields.run_as)?
        .with_detach_timeout(fields.detach_timeout_seconds.flatten())?
        .with_record(fields.record.unwrap_or(false));
        let session = self.services().create_session(self.principal, &spec)?;
        Ok(("Session created successfully", json!({ "session": session_view(&session) })))
    }

    fn list_sessions(&self, fields: SessionFields) -> Outcome {
        let wanted = fields.name.filter(|name| !name.is_empty());
        let generation = self.services().generation();
        let sessions: Vec<Value> = self
            .services()
            .sessions(self.principal)?
            .iter()
            .filter(|session| wanted.as_deref().is_none_or(|wanted| session.spec.name.as_str() == wanted))
            .map(session_view)
            .collect();
        if wanted.is_none()
            && let Ok(serialized) = serde_json::to_vec(&sessions)
        {
            self.state.session_list.0.insert((), Bytes::from(serialized), generation);
        }
        Ok(("List of Sessions ok", json!({ "sessions": sessions })))
    }

    fn update_session(&self, fields: SessionFields) -> Outcome {
        require(self.principal, Permission::SessionsWrite)?;
        let name = self.session_name(fields.name, "session.name")?;
        // Fields left out keep their values (go_ws_sh blanked them).
        let changes = SessionChanges {
            cmd: fields.cmd,
            args: fields.args,
            dir: fields.dir,
            run_as: fields.run_as,
            detach_timeout_seconds: fields.detach_timeout_seconds,
            record: fields.record,
        };
        let session = self.services().update_session(self.principal, name, changes)?;
        Ok(("Session updated successfully", json!({ "session": session_view(&session) })))
    }

    fn delete_session(&self, fields: SessionFields) -> Outcome {
        require(self.principal, Permission::SessionsWrite)?;
        let name = self.session_name(fields.name, "session.name")?;
        let session = self.services().delete_session(self.principal, &name)?;
        Ok(("Session deleted successfully", json!({ "session": session_view(&session) })))
    }

    fn copy_or_move_session(&self, is_move: bool, source: SessionFields, destination: DestinationFields) -> Outcome {
        require(self.principal, Permission::SessionsWrite)?;
        let from = self.session_name(source.name, "session.name")?;
        let to =
            SessionName::parse_field("destination.name", &required(destination.name, "Destination name is empty")?)?;
        if is_move {
            let session = self.services().move_session(self.principal, &from, &to)?;
            Ok(("Session moved successfully", json!({ "session": session_view(&session) })))
        } else {
            let session = self.services().copy_session(self.principal, &from, &to)?;
            Ok(("Session copied successfully", json!({ "session": session_view(&session) })))
        }
    }
}

/// Refuses early, before the body's fields are read, when the caller lacks `permission`: the
/// seed's order (403 before 400). The service checks it again.
fn require(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    if principal.can(permission) { Ok(()) } else { Err(AuthError::Forbidden(permission).into()) }
}
