//! The access-token surface of seed 002: `/AccessToken/{appKey}` (list, create) and
//! `/AccessToken/{appKey}/{id}` (update, delete), answering in that seed's envelope
//! `{code, data, error}` with `code` equal to the HTTP status.
//!
//! Tokens are the same access tokens every other surface accepts (`Authorization: Bearer
//! wssh_…`), scoped here by `appKey`: a token minted under one key is 404 under another. The
//! secret is shown once, in the reply that mints it; lists never show it. A token's rights are
//! its owner's intersected with its own `permissions`.

use http::header::HeaderMap;
use http::{Method, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use wssh_auth::Principal;
use wssh_core::{CoreError, Services, TokenChanges, UserRef, limits};
use wssh_domain::{AccessToken, Permission, PermissionSet, Timestamp, TokenSpec, UserId};

use crate::SharedState;
use crate::error::ApiError;
use crate::input::{self, Object, Query};
use crate::respond::{self, Body, LoggedUser};
use crate::surface::{Call, Misroute, Surface};

/// How the audit log names this surface.
const SURFACE: wssh_domain::audit::Surface = wssh_domain::audit::Surface::AccessToken;

/// The path prefix of this surface.
const PREFIX: &str = "/AccessToken";
/// Rows per page when `take` is absent or 0.
const DEFAULT_TAKE: u64 = 20;
/// The most rows one page holds.
const MAX_TAKE: u64 = 1000;
/// Seconds in a day.
const DAY_SECONDS: i64 = 86_400;

/// Whether `path` belongs to this surface.
pub(crate) fn matches(path: &str) -> bool {
    path == PREFIX || path.starts_with("/AccessToken/")
}

/// A route of this surface, with its path parameters (raw, still percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/AccessToken/{appKey}`: list and create.
    Collection { app_key: String },
    /// `/AccessToken/{appKey}/{id}`: update and delete.
    Item { app_key: String, id: String },
}

impl Route {
    fn at(path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/AccessToken/")?;
        let mut segments = rest.split('/');
        let app_key = segments.next().filter(|segment| !segment.is_empty())?.to_owned();
        match (segments.next(), segments.next()) {
            (None, _) => Some(Route::Collection { app_key }),
            (Some(id), None) if !id.is_empty() => Some(Route::Item { app_key, id: id.to_owned() }),
            _ => None,
        }
    }

    fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Collection { .. } => *method == Method::GET || *method == Method::POST,
            Route::Item { .. } => *method == Method::PUT || *method == Method::DELETE,
        }
    }

    fn allow_header(&self) -> &'static str {
        match self {
            Route::Collection { .. } => "GET, POST, OPTIONS",
            Route::Item { .. } => "PUT, DELETE, OPTIONS",
        }
    }
}

/// The seed's success envelope.
fn success(data: Value) -> Response<Body> {
    respond::json(StatusCode::OK, &json!({ "code": 200, "data": data, "error": "" }))
}

/// Seed 002's access tokens, on the shared skeleton.
pub(crate) struct AccessTokens;

impl Surface for AccessTokens {
    type Route = Route;

    fn route(path: &str, method: &Method, _headers: &HeaderMap) -> Result<Route, Misroute> {
        let route = Route::at(path).ok_or(Misroute::NotFound)?;
        if !route.allows(method) {
            return Err(Misroute::MethodNotAllowed(Some(route.allow_header())));
        }
        Ok(route)
    }

    /// The seed's error envelope: `{code, data: null, error}` with `code` equal to the status.
    fn refuse(failure: &ApiError) -> Response<Body> {
        respond::refusal(
            failure,
            &json!({ "code": failure.status.as_u16(), "data": Value::Null, "error": failure.message }),
        )
    }

    fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
        let (data, username) = run(state, &route, call)?;
        let mut response = success(data);
        response.extensions_mut().insert(LoggedUser(username));
        Ok(response)
    }
}

/// Runs one operation; the data of the reply and the caller's name, or the refusal.
fn run(state: &SharedState, route: &Route, call: &Call) -> Result<(Value, String), ApiError> {
    let principal = input::authenticate(state, &call.headers, call.peer, SURFACE)?;
    let operations = Operations { services: &state.services, principal: &principal };
    let data = match route {
        Route::Collection { app_key } => {
            let app_key = decode_app_key(app_key)?;
            if call.method == Method::GET {
                operations.list(&app_key, &call.query)?
            } else {
                operations.create(&app_key, &call.body)?
            }
        }
        Route::Item { app_key, id } => {
            let app_key = decode_app_key(app_key)?;
            let identifier = parse_identifier(id)?;
            if call.method == Method::PUT {
                operations.update(&app_key, &identifier, &call.body)?
            } else {
                operations.delete(&app_key, &identifier)?
            }
        }
    };
    Ok((data, principal.username.to_string()))
}

/// The `appKey` path segment, percent-decoded and checked.
fn decode_app_key(raw: &str) -> Result<String, ApiError> {
    let app_key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("appKey is not valid UTF-8"))?
        .into_owned();
    if app_key.trim().is_empty() {
        return Err(ApiError::bad_request("appKey is empty"));
    }
    input::check_text("appKey", &app_key, limits::APP_KEY_CHARS)?;
    Ok(app_key)
}

/// The `{id}` path segment: a token's decimal identifier.
fn parse_identifier(raw: &str) -> Result<String, ApiError> {
    raw.parse::<u64>().map(|id| id.to_string()).map_err(|_| ApiError::bad_request("id must be a token id (an integer)"))
}

/// The seed's `UserAccessToken`, whose secret is never shown: `accessToken` is empty.
fn token_view(token: &AccessToken, owner_permissions: PermissionSet) -> Value {
    let effective = owner_permissions.intersection(token.permissions.unwrap_or_else(PermissionSet::all));
    json!({
        "id": token.identifier.as_str().parse::<i64>().unwrap_or_default(),
        "userID": token.user_id.0,
        "enable": token.enabled,
        "permissions": input::comma_names(effective),
        "title": token.title,
        "accessToken": "",
        "tags": token.tags,
        "description": token.description,
        "expireTime": token.expires_at.map(Timestamp::to_rfc3339).unwrap_or_default(),
        "createDate": token.created_at.to_rfc3339(),
        "lastUpdate": token.updated_at.to_rfc3339(),
    })
}

/// The permissions field of a body: absent is `None` (nothing to change), `""` or `[]` is
/// `Some(None)` (all of the owner's), names are `Some(Some(set))`.
fn permissions_field(body: &Object) -> Result<Option<Option<PermissionSet>>, ApiError> {
    let Some(value) = input::field(body, &["permissions"]) else { return Ok(None) };
    let names = input::permission_names(value, "permissions")?;
    Ok(Some((!names.is_empty()).then(|| names.into_iter().collect())))
}

/// Reads an optional free-text field, checked.
fn text(body: &Object, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let value = input::text_field(body, &[name], name)?;
    if let Some(value) = &value {
        input::check_text(name, value, max)?;
    }
    Ok(value)
}

struct Operations<'a> {
    services: &'a Services,
    principal: &'a Principal,
}

impl Operations<'_> {
    fn list(&self, app_key: &str, query: &Query) -> Result<Value, ApiError> {
        let parsed = (|| {
            let owner = query.integer("userId")?.filter(|id| *id != 0).map(UserId);
            let skip = query.integer("skip")?.unwrap_or(0);
            let take = query.integer("take")?.unwrap_or(0);
            let skip = u64::try_from(skip).map_err(|_| ApiError::bad_request("skip must not be negative"))?;
            let take = u64::try_from(take).map_err(|_| ApiError::bad_request("take must not be negative"))?;
            Ok((owner, skip, if take == 0 { DEFAULT_TAKE } else { take.min(MAX_TAKE) }))
        })();
        let (owner, skip, take) = refuse_early(self.principal, Permission::TokensRead, parsed)?;
        let page = self.services.app_tokens(self.principal, app_key, owner, skip, take)?;
        let rows: Vec<Value> = page.tokens.iter().map(|token| token_view(token, page.owner.permissions)).collect();
        Ok(json!({ "total": page.total, "data": rows }))
    }

    fn create(&self, app_key: &str, body: &[u8]) -> Result<Value, ApiError> {
        let parsed = (|| {
            let body = input::object_body(body)?;
            let owner = input::integer_field(&body, &["userID", "userId", "user_id"], "userID")?
                .filter(|id| *id != 0)
                .map(UserId);
            let days = input::integer_field(&body, &["expireInDays", "expire_in_days"], "expireInDays")?.unwrap_or(0);
            if days < 0 {
                return Err(ApiError::bad_request("expireInDays must not be negative (0 means never)"));
            }
            if days > limits::TOKEN_EXPIRY_DAYS {
                return Err(ApiError::bad_request(format!(
                    "expireInDays must be at most {}",
                    limits::TOKEN_EXPIRY_DAYS
                )));
            }
            let spec = TokenSpec {
                description: text(&body, "description", limits::TOKEN_TEXT_CHARS)?.unwrap_or_default(),
                permissions: permissions_field(&body)?.flatten(),
                expires_at: (days > 0).then(|| Timestamp::now().plus_seconds(days * DAY_SECONDS)),
                app_key: Some(app_key.to_owned()),
                title: text(&body, "title", limits::TOKEN_TITLE_CHARS)?.unwrap_or_default(),
                tags: text(&body, "tags", limits::TOKEN_TEXT_CHARS)?.unwrap_or_default(),
            };
            Ok((owner, days, spec))
        })();
        let (owner, days, spec) = refuse_early(self.principal, Permission::TokensWrite, parsed)?;
        let minted = self.services.mint_token(self.principal, owner.map(UserRef::Id), spec)?;
        Ok(json!({
            "access_token": minted.secret,
            "token_type": "Bearer",
            "expires_in": days * DAY_SECONDS,
            "id": minted.token.identifier.as_str().parse::<i64>().unwrap_or_default(),
        }))
    }

    fn update(&self, app_key: &str, identifier: &str, body: &[u8]) -> Result<Value, ApiError> {
        let parsed = (|| {
            let body = input::object_body(body)?;
            Ok(TokenChanges {
                title: text(&body, "title", limits::TOKEN_TITLE_CHARS)?,
                tags: text(&body, "tags", limits::TOKEN_TEXT_CHARS)?,
                description: text(&body, "description", limits::TOKEN_TEXT_CHARS)?,
                permissions: permissions_field(&body)?,
                enabled: input::bool_field(&body, &["enable", "enabled"], "enable")?,
            })
        })();
        let changes = refuse_early(self.principal, Permission::TokensWrite, parsed)?;
        self.services.update_token(self.principal, identifier, Some(app_key), changes)?;
        Ok(Value::Bool(true))
    }

    fn delete(&self, app_key: &str, identifier: &str) -> Result<Value, ApiError> {
        self.services.revoke_token(self.principal, identifier, Some(app_key))?;
        Ok(Value::Bool(true))
    }
}

/// A refusal of the request's fields, unless the caller lacks `permission`: then that refusal,
/// as the service would give it, comes first (403 before 400).
fn refuse_early<T>(principal: &Principal, permission: Permission, parsed: Result<T, ApiError>) -> Result<T, ApiError> {
    match parsed {
        Err(_) if !principal.can(permission) => Err(CoreError::Forbidden(permission).into()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::at("/AccessToken/app"), Some(Route::Collection { app_key: "app".into() }));
        assert_eq!(Route::at("/AccessToken/app/12"), Some(Route::Item { app_key: "app".into(), id: "12".into() }));
        assert_eq!(Route::at("/AccessToken"), None);
        assert_eq!(Route::at("/AccessToken/"), None);
        assert_eq!(Route::at("/AccessToken/app/"), None);
        assert_eq!(Route::at("/AccessToken/app/1/2"), None);
        assert!(matches("/AccessToken") && matches("/AccessToken/x") && !matches("/AccessTokens"));
    }

    #[test]
    fn identifiers_are_integers() {
        assert_eq!(parse_identifier("0042").unwrap(), "42");
        assert!(parse_identifier("x").is_err());
        assert!(parse_identifier("-1").is_err());
    }
}
