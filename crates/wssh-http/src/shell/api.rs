//! `/api/shells`: the live shells a caller may see, and ending one.
//!
//! Answers are plain JSON; errors use the API's `{"message": "Error: …"}` envelope.

use std::net::SocketAddr;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use wssh_auth::Principal;
use wssh_domain::Permission;

use super::registry::{LiveShell, ShellInfo};
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

/// Whether the principal may see and end every user's shells (administrators may).
fn oversees(principal: &Principal) -> bool {
    principal.require(Permission::UsersWrite).is_ok()
}

/// Whether the principal may see `shell` in listings and end it.
fn may_manage(principal: &Principal, shell: &LiveShell) -> bool {
    shell.owner == principal.username.as_str() || oversees(principal)
}

/// Answers one request on this surface.
pub(crate) async fn handle(request: Request<Incoming>, state: SharedState, peer: SocketAddr) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let auth_state = state.clone();
    let principal = tokio::task::spawn_blocking(move || input::authenticate(&auth_state, &headers, peer)).await;
    let principal = match principal {
        Ok(Ok(principal)) => principal,
        Ok(Err(error)) => return respond::error(&error),
        Err(join_error) => return respond::error(&ApiError::internal(&join_error)),
    };
    let username = principal.username.to_string();
    let mut response = answer(&method, &path, &state, &principal).unwrap_or_else(|error| respond::error(&error));
    response.extensions_mut().insert(LoggedUser(username));
    response
}

fn answer(method: &Method, path: &str, state: &SharedState, principal: &Principal) -> Result<Response<Body>, ApiError> {
    principal.require(Permission::SessionsConnect)?;
    let rest = path.strip_prefix(PREFIX).unwrap_or_default().trim_start_matches('/');
    let segments: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
    match (method, segments.as_slice()) {
        (&Method::GET, []) => {
            let mut shells: Vec<ShellInfo> = state
                .shells
                .all()
                .iter()
                .filter(|shell| may_manage(principal, shell))
                .map(|shell| shell.info())
                .collect();
            shells.sort_by(|a, b| a.created_at.0.cmp(&b.created_at.0).then_with(|| a.id.cmp(&b.id)));
            let shells: Vec<serde_json::Value> = shells.iter().map(describe).collect();
            Ok(respond::json(StatusCode::OK, &json!({ "shells": shells })))
        }
        (&Method::DELETE, [id]) => {
            let shell = state
                .shells
                .get(id)
                .filter(|shell| may_manage(principal, shell))
                .ok_or_else(|| ApiError::not_found("Shell not found"))?;
            shell.end();
            tracing::info!(shell = %super::registry::short(&shell.id), by = %principal.username, "shell ended on request");
            Ok(respond::empty(StatusCode::NO_CONTENT))
        }
        (_, [] | [_]) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found("Not found")),
    }
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
