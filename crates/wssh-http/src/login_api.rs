//! The login API of seed 004: `POST /auth/login`, `POST /auth/session`, `POST /auth/logout`
//! and `GET /test`, answering in that seed's envelope `{code, message, data}`.
//!
//! A login returns a short-lived access JWT (`Authorization: Bearer …`, also in the body) and a
//! refresh token (`X-Refresh-Token`, and the HttpOnly, SameSite=Strict cookie `token`, scoped to
//! `/auth`). `/auth/session` rotates the refresh token; `/auth/logout` ends the login, so its
//! refresh token and its access tokens stop working at once. A refresh token works only from
//! the address and `User-Agent` that logged in: presented from elsewhere, it is refused (403)
//! and its login revoked, as the seed demands.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};
use wssh_auth::secret::hash_token_secret;
use wssh_auth::{AuthError, Credentials, LoginTokens, Origin};
use wssh_domain::LoginClient;
use wssh_domain::audit::Surface as AuditSurface;

use crate::SharedState;
use crate::error::ApiError;
use crate::input::LoginBody;
use crate::respond::{self, Body, LoggedUser};
use crate::surface::{Call, Misroute, Surface};

/// The header carrying the refresh token.
const REFRESH_HEADER: &str = "x-refresh-token";
/// The cookie carrying the refresh token.
const REFRESH_COOKIE: &str = "token";

/// The login API's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    Session,
    Logout,
    Test,
}

impl Route {
    /// The route at `path`, if it is one of these.
    pub(crate) fn at(path: &str) -> Option<Route> {
        match path {
            "/auth/login" => Some(Route::Login),
            "/auth/session" => Some(Route::Session),
            "/auth/logout" => Some(Route::Logout),
            "/test" => Some(Route::Test),
            _ => None,
        }
    }

    fn method(self) -> Method {
        match self {
            Route::Test => Method::GET,
            _ => Method::POST,
        }
    }
}

/// The seed's envelope.
fn envelope(status: StatusCode, message: &str, data: Value) -> Response<Body> {
    respond::json(status, &json!({ "code": status.as_u16(), "message": message, "msg": message, "data": data }))
}

/// An error in the seed's envelope: `{code, message, data: null}` with `code` = the status.
pub(crate) fn error(error: &ApiError) -> Response<Body> {
    respond::refusal(error, &json!({ "code": error.status.as_u16(), "message": error.message, "data": Value::Null }))
}

fn refresh_cookie(value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={value}; Path=/auth; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    ))
    .ok()
}

/// Puts a login's tokens in the response headers.
fn hand_out(response: &mut Response<Body>, tokens: &LoginTokens, refresh_max_age: i64) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", tokens.access)) {
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&tokens.refresh) {
        headers.insert(REFRESH_HEADER, value);
    }
    if let Some(cookie) = refresh_cookie(&tokens.refresh, refresh_max_age) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The refresh token from `X-Refresh-Token`, else from the `token` cookie.
fn presented_refresh(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(REFRESH_HEADER).and_then(|value| value.to_str().ok()) {
        let value = value.trim();
        if !value.is_empty() {
            return Some(value.to_owned());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The client a request comes from, as logins are bound to it: its address and the hash of
/// its `User-Agent`.
fn login_client(headers: &HeaderMap, peer: SocketAddr) -> LoginClient {
    let user_agent = headers.get(header::USER_AGENT).map(HeaderValue::as_bytes).unwrap_or_default();
    LoginClient { ip: peer.ip().to_string(), user_agent_hash: hash_token_secret(&String::from_utf8_lossy(user_agent)) }
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned)
}

/// Seed 004's login API, on the shared skeleton.
pub(crate) struct LoginApi;

impl Surface for LoginApi {
    type Route = Route;

    fn route(path: &str, method: &Method, _headers: &HeaderMap) -> Result<Route, Misroute> {
        let route = Route::at(path).ok_or(Misroute::NotFound)?;
        if *method != route.method() {
            return Err(Misroute::MethodNotAllowed(None));
        }
        Ok(route)
    }

    fn refuse(failure: &ApiError) -> Response<Body> {
        error(failure)
    }

    fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
        run(route, &call.headers, &call.body, state, call.peer)
    }
}

fn run(
    route: Route,
    headers: &HeaderMap,
    body: &[u8],
    state: &SharedState,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let auth = &state.auth;
    let refresh_max_age = auth.login_lifetimes().refresh_seconds;
    match route {
        Route::Login => {
            let login: LoginBody = serde_json::from_slice(body)
                .map_err(|error| ApiError::bad_request(format!("Malformed JSON body: {error}")))?;
            if login.username.is_empty() || login.password.is_empty() {
                return Err(ApiError::bad_request("username and password are required"));
            }
            let otp_code = (!login.otp_code.is_empty()).then_some(login.otp_code);
            let credentials = Credentials::Password { username: login.username, password: login.password, otp_code };
            let principal =
                auth.authenticate_from(&credentials, &Origin::login(AuditSurface::LoginApi, Some(peer.ip())))?;
            let access_seconds = auth.login_lifetimes().access_seconds;
            let tokens = state.services.start_login(&principal, access_seconds, login_client(headers, peer))?;
            let mut response = envelope(
                StatusCode::OK,
                "Login successful",
                json!({ "token": tokens.access, "userId": principal.user_id.0, "username": principal.username.as_str() }),
            );
            hand_out(&mut response, &tokens, refresh_max_age);
            response.extensions_mut().insert(LoggedUser(principal.username.to_string()));
            Ok(response)
        }
        Route::Session => {
            let refresh = presented_refresh(headers).ok_or(AuthError::MissingCredentials)?;
            let tokens = state.services.refresh_login(&refresh, &login_client(headers, peer))?;
            let mut response = respond::empty(StatusCode::NO_CONTENT);
            hand_out(&mut response, &tokens, refresh_max_age);
            Ok(response)
        }
        Route::Logout => {
            // Either the refresh token or the access token names the login to end.
            let login = match presented_refresh(headers) {
                Some(refresh) => state.services.login_of_refresh(&refresh)?.map(|login| login.id),
                None => None,
            };
            let login = match (login, authorization(headers)) {
                (Some(login), _) => login,
                (None, Some(header)) => {
                    let credentials = Credentials::from_authorization_header(&header)?;
                    let principal =
                        auth.authenticate_from(&credentials, &Origin::request(AuditSurface::LoginApi, None))?;
                    match principal.method {
                        wssh_auth::AuthMethod::Login(login) => login,
                        _ => return Err(AuthError::InvalidCredentials.into()),
                    }
                }
                (None, None) => return Err(AuthError::MissingCredentials.into()),
            };
            state.services.end_login(&login)?;
            let mut response = envelope(StatusCode::OK, "Logged out", Value::Null);
            if let Some(cookie) = refresh_cookie("", 0) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            Ok(response)
        }
        Route::Test => {
            let header = authorization(headers).ok_or(AuthError::MissingCredentials)?;
            let credentials = Credentials::from_authorization_header(&header)?;
            let principal =
                auth.authenticate_from(&credentials, &Origin::request(AuditSurface::LoginApi, Some(peer.ip())))?;
            if principal.permissions.iter().next().is_none() {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "Permission denied"));
            }
            let mut response = respond::empty(StatusCode::NO_CONTENT);
            response.extensions_mut().insert(LoggedUser(principal.username.to_string()));
            Ok(response)
        }
    }
}
