//! `/api/shells`: the live shells a caller may see, and ending one.
//!
//! Answers are plain JSON; errors use the API's `{"message": "Error: …"}` envelope.

use std::net::SocketAddr;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use wssh_auth::Principal;
use wssh_domain::audit::AuditEvent;

use super::registry::{LiveShell, Mode, Share, ShellInfo};
use crate::SharedState;
use crate::error::ApiError;
use crate::input;
use crate::respond::{self, Body, LoggedUser};

/// The prefix this surface owns.
const PREFIX: &str = "/api/shells";

/// Whether `path` belongs to this surface.
pub(crate) fn matches(path: &str) -> bool {
    path.strip_prefix(PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether the principal may end `shell` and manage its share links.
fn may_manage(principal: &Principal, shell: &LiveShell) -> bool {
    wssh_core::shells::may_manage(principal, shell.owner_id)
}

/// Whether the principal sees `shell` in listings.
fn may_see(principal: &Principal, shell: &LiveShell) -> bool {
    wssh_core::shells::may_see(principal, shell.owner_id)
}

/// The longest a share link may live (30 days), and how long it lives when not told.
const MAX_SHARE_SECONDS: i64 = 30 * 24 * 3600;
const DEFAULT_SHARE_SECONDS: i64 = 3600;

/// Answers one request on this surface.
pub(crate) async fn handle(request: Request<Incoming>, state: SharedState, peer: SocketAddr) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (parts, incoming) = request.into_parts();
    let headers = parts.headers;
    let origin = origin_of(&headers, parts.extensions.get::<crate::proxy::PublicBase>());
    let body = match crate::router::read_incoming(&headers, incoming).await {
        Ok(body) => body,
        Err(error) => return respond::error(&error),
    };
    let auth_state = state.clone();
    let principal = tokio::task::spawn_blocking(move || {
        input::authenticate(&auth_state, &headers, peer, wssh_domain::audit::Surface::Api)
    })
    .await;
    let principal = match principal {
        Ok(Ok(principal)) => principal,
        Ok(Err(error)) => return respond::error(&error),
        Err(join_error) => return respond::error(&ApiError::internal(&join_error)),
    };
    let username = principal.username.to_string();
    let call = Call { method: &method, path: &path, body: &body, origin: &origin };
    let mut response = answer(&call, &state, &principal).unwrap_or_else(|error| respond::error(&error));
    response.extensions_mut().insert(LoggedUser(username));
    response
}

/// One request, read.
struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    body: &'a [u8],
    /// `scheme://host` of the server as the client sees it, for links.
    origin: &'a str,
}

/// Where the client reached the server: the `Origin` header a browser sends, else the `Host`.
/// Where the page is, as the client sees it: its origin (the `Origin` header, else the scheme
/// and `Host`) and the base path.
fn origin_of(headers: &http::HeaderMap, base: Option<&crate::proxy::PublicBase>) -> String {
    let base_path = base.map_or("", |base| base.base_path.as_str());
    if let Some(origin) = headers.get(http::header::ORIGIN).and_then(|value| value.to_str().ok())
        && (origin.starts_with("http://") || origin.starts_with("https://"))
    {
        return format!("{}{base_path}", origin.trim_end_matches('/'));
    }
    let host = headers.get(http::header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("localhost");
    let scheme = if base.is_some_and(|base| base.secure) { "https" } else { "http" };
    format!("{scheme}://{host}{base_path}")
}

fn answer(call: &Call<'_>, state: &SharedState, principal: &Principal) -> Result<Response<Body>, ApiError> {
    wssh_core::shells::require_shell_user(principal)?;
    let rest = call.path.strip_prefix(PREFIX).unwrap_or_default().trim_start_matches('/');
    let segments: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
    let managed = |id: &str| {
        state
            .shells
            .get(id)
            .filter(|shell| may_manage(principal, shell))
            .ok_or_else(|| ApiError::not_found("Shell not found"))
    };
    match (call.method, segments.as_slice()) {
        (&Method::GET, []) => {
            let mut shells: Vec<ShellInfo> =
                state.shells.all().iter().filter(|shell| may_see(principal, shell)).map(|shell| shell.info()).collect();
            shells.sort_by(|a, b| a.created_at.0.cmp(&b.created_at.0).then_with(|| a.id.cmp(&b.id)));
            let shells: Vec<serde_json::Value> = shells.iter().map(describe).collect();
            Ok(respond::json(StatusCode::OK, &json!({ "shells": shells })))
        }
        (&Method::DELETE, [id]) => {
            let shell = managed(id)?;
            shell.end();
            tracing::info!(shell = %super::registry::short(&shell.id), by = %principal.username, "shell ended on request");
            Ok(respond::empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, [id, "shares"]) => {
            let shell = managed(id)?;
            let object = input::object_body(call.body)?;
            let mode = match input::text_field(&object, &["mode"], "mode")? {
                None => Mode::Observe,
                Some(text) => {
                    Mode::parse(&text).ok_or_else(|| ApiError::bad_request("mode must be control or observe"))?
                }
            };
            let seconds =
                input::integer_field(&object, &["expires_in"], "expires_in")?.unwrap_or(DEFAULT_SHARE_SECONDS);
            if !(1..=MAX_SHARE_SECONDS).contains(&seconds) {
                return Err(ApiError::bad_request(format!("expires_in must be 1 to {MAX_SHARE_SECONDS} seconds")));
            }
            let lifetime = std::time::Duration::from_secs(seconds.unsigned_abs());
            let (share, token) = shell
                .add_share(mode, lifetime, principal.username.as_str())
                .map_err(|error| ApiError::new(StatusCode::TOO_MANY_REQUESTS, capitalised(&error.to_string())))?;
            let session: String = form_urlencoded::byte_serialize(shell.session.as_bytes()).collect();
            let link = format!("{}/?session={session}&shell={}#share={token}", call.origin, shell.id);
            tracing::info!(shell = %super::registry::short(&shell.id), share = %share.id, by = %principal.username, "share link made");
            let event = AuditEvent::ShareCreated {
                shell: shell.id.clone(),
                share: share.id.clone(),
                mode: share.mode.name().into(),
                expires_at: Some(share.expires_at.0),
            };
            super::audit::record(&state.auth, Some(principal), event);
            let mut reply = describe_share(&share);
            reply["token"] = json!(token);
            reply["link"] = json!(link);
            Ok(respond::json(StatusCode::CREATED, &reply))
        }
        (&Method::GET, [id, "shares"]) => {
            let shell = managed(id)?;
            let shares: Vec<serde_json::Value> = shell.shares().iter().map(describe_share).collect();
            Ok(respond::json(StatusCode::OK, &json!({ "shares": shares })))
        }
        (&Method::DELETE, [id, "shares", share]) => {
            let shell = managed(id)?;
            if !shell.revoke_share(share) {
                return Err(ApiError::not_found("Share not found"));
            }
            tracing::info!(shell = %super::registry::short(&shell.id), share = %share, "share link revoked");
            let event = AuditEvent::ShareRevoked { shell: shell.id.clone(), share: (*share).to_owned() };
            super::audit::record(&state.auth, Some(principal), event);
            Ok(respond::empty(StatusCode::NO_CONTENT))
        }
        (_, [] | [_] | [_, "shares"] | [_, "shares", _]) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found("Not found")),
    }
}

/// The methods `path` (under `/api/shells`) answers, for `Allow`; `None` past the API's paths.
pub(crate) fn allowed_methods(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/shells")?;
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    match (rest.is_empty(), segments.as_slice()) {
        (true, _) => Some("GET, OPTIONS"),
        (false, [_]) => Some("DELETE, OPTIONS"),
        (false, [_, "shares"]) => Some("GET, POST, OPTIONS"),
        (false, [_, "shares", _]) => Some("DELETE, OPTIONS"),
        _ => None,
    }
}

/// A share link as the API shows it (never its token, which is not kept).
fn describe_share(share: &Share) -> serde_json::Value {
    json!({
        "id": share.id,
        "mode": share.mode,
        "created_by": share.created_by,
        "created_at": share.created_at.to_rfc3339(),
        "expires_at": share.expires_at.to_rfc3339(),
    })
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A shell as the API shows it.
fn describe(shell: &ShellInfo) -> serde_json::Value {
    let clients: Vec<serde_json::Value> =
        shell.clients.iter().map(|client| json!({ "user": client.user, "mode": client.mode })).collect();
    json!({
        "id": shell.id,
        "session": shell.session,
        "owner": shell.owner,
        "created_at": shell.created_at.to_rfc3339(),
        "cols": shell.size.cols,
        "rows": shell.size.rows,
        "output_bytes": shell.output_bytes,
        "clients": clients,
        "detached_since": shell.detached_since.map(|since| since.to_rfc3339()),
    })
}
