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
use wssh_core::cluster::ShellRecord;
use wssh_domain::Timestamp;

use crate::error::ApiError;
use crate::input;
use crate::respond::{self, Body, LoggedUser};
use crate::{AppState, SharedState};

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
    let remote_path = path.clone();
    let remote_method = method.clone();
    let principal = tokio::task::spawn_blocking(move || {
        let principal = input::authenticate(&auth_state, &headers, peer, wssh_domain::audit::Surface::Api)?;
        let remote = remote_part(&auth_state, &principal, &remote_method, &remote_path)?;
        Ok::<_, ApiError>((principal, remote))
    })
    .await;
    let (principal, remote) = match principal {
        Ok(Ok(principal)) => principal,
        Ok(Err(error)) => return respond::error(&error),
        Err(join_error) => return respond::error(&ApiError::internal(&join_error)),
    };
    let username = principal.username.to_string();
    let call = Call { method: &method, path: &path, body: &body, origin: &origin };
    let mut response = match remote {
        Remote::Ended => {
            tracing::info!(by = %principal.username, "shell on another node asked to end");
            respond::empty(StatusCode::NO_CONTENT)
        }
        Remote::Listed(others) => list(state.as_ref(), &principal, &others),
        Remote::None => answer(&call, &state, &principal).unwrap_or_else(|error| respond::error(&error)),
    };
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

/// What the cluster's registry adds to a request, read on a blocking thread.
enum Remote {
    /// Nothing: the request is about this node's shells.
    None,
    /// A listing: the shells of the other nodes that the caller may see.
    Listed(Vec<ShellRecord>),
    /// A shell on another node was asked to end.
    Ended,
}

/// The registry's part of a request: the other nodes' shells for a listing; for ending a shell
/// this node does not run, the request to its node.
fn remote_part(state: &AppState, principal: &Principal, method: &Method, path: &str) -> Result<Remote, ApiError> {
    let rest = path.strip_prefix(PREFIX).unwrap_or_default().trim_start_matches('/');
    if wssh_core::shells::require_shell_user(principal).is_err() {
        return Ok(Remote::None);
    }
    let node = &state.node.id;
    match (method, rest) {
        (&Method::GET, "") => {
            let others = state.services.remote_shells(principal, node)?;
            Ok(Remote::Listed(others.into_iter().map(|(shell, _)| shell).collect()))
        }
        (&Method::DELETE, id) if !id.is_empty() && !id.contains('/') && state.shells.get(id).is_none() => {
            if state.services.end_remote_shell(principal, id, node)? { Ok(Remote::Ended) } else { Ok(Remote::None) }
        }
        _ => Ok(Remote::None),
    }
}

/// The shells `principal` may see: this node's and `others`, oldest first.
fn list(state: &AppState, principal: &Principal, others: &[ShellRecord]) -> Response<Body> {
    let node = state.node.id.as_str();
    let mut shells: Vec<(i64, String, serde_json::Value)> = state
        .shells
        .all_live()
        .iter()
        .filter(|shell| may_see(principal, shell))
        .map(|shell| {
            let info = shell.info();
            (info.created_at.0, info.id.clone(), describe(&info, node))
        })
        .collect();
    shells.extend(others.iter().map(|shell| (shell.created_at, shell.id.clone(), describe_record(shell))));
    shells.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let shells: Vec<serde_json::Value> = shells.into_iter().map(|(_, _, shell)| shell).collect();
    respond::json(StatusCode::OK, &json!({ "shells": shells }))
}

fn answer(call: &Call<'_>, state: &SharedState, principal: &Principal) -> Result<Response<Body>, ApiError> {
    wssh_core::shells::require_shell_user(principal)?;
    let rest = call.path.strip_prefix(PREFIX).unwrap_or_default().trim_start_matches('/');
    let segments: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
    let managed = |id: &str| {
        state
            .shells
            .get_live(id)
            .filter(|shell| may_manage(principal, shell))
            .ok_or_else(|| ApiError::not_found("Shell not found"))
    };
    match (call.method, segments.as_slice()) {
        (&Method::GET, []) => Ok(list(state, principal, &[])),
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
            if object.get("expires_in").is_some_and(|value| !value.is_number() && !value.is_null()) {
                return Err(ApiError::bad_request("expires_in must be an integer"));
            }
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

/// A shell of another node as the API shows it.
fn describe_record(shell: &ShellRecord) -> serde_json::Value {
    let clients: Vec<serde_json::Value> =
        shell.clients.iter().map(|client| json!({ "user": client.user, "mode": client.mode })).collect();
    json!({
        "id": shell.id,
        "node": shell.node,
        "session": shell.session,
        "owner": shell.owner,
        "created_at": Timestamp(shell.created_at).to_rfc3339(),
        "cols": shell.cols,
        "rows": shell.rows,
        "output_bytes": shell.output_bytes,
        "clients": clients,
        "detached_since": shell.detached_since.map(|since| Timestamp(since).to_rfc3339()),
    })
}

/// A shell of this node (`node`) as the API shows it.
fn describe(shell: &ShellInfo, node: &str) -> serde_json::Value {
    let clients: Vec<serde_json::Value> =
        shell.clients.iter().map(|client| json!({ "user": client.user, "mode": client.mode })).collect();
    json!({
        "id": shell.id,
        "node": node,
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
