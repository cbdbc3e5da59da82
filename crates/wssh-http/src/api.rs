//! wssh's own `/api/*` routes, in the envelope of the other `/api/*` routes (alist's
//! `{code, message, data}`, `code` equal to the HTTP status; a page is `{content, total}`):
//!
//! * `GET /api/audit` — the audit log, newest first: `audit:read`. Query parameters: `page`
//!   and `per_page` (at most 500, default 50), `since` and `until` (Unix seconds; `until`
//!   excluded), `user` (events the user did or that were about the user), `kind` (a kind such
//!   as `login.failed`, or a family such as `login`).

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};
use wssh_auth::Principal;
use wssh_core::CoreError;
use wssh_domain::audit::{AuditEvent, AuditQuery, Surface};
use wssh_domain::{Permission, Timestamp};

use crate::SharedState;
use crate::alist::{error, page_param, query_param, success};
use crate::error::ApiError;
use crate::input;
use crate::respond::{Body, LoggedUser};
use crate::router::read_body;

/// A page of the audit log when `per_page` is not given.
const DEFAULT_PER_PAGE: usize = 50;

/// Whether `path` is one of these routes.
pub(crate) fn matches(path: &str) -> bool {
    path == "/api/audit"
}

/// Answers one request of these routes.
pub(crate) async fn handle(request: Request<Incoming>, state: SharedState, peer: SocketAddr) -> Response<Body> {
    if *request.method() != Method::GET {
        let mut response = error(&ApiError::method_not_allowed());
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, OPTIONS"));
        return response;
    }
    let headers = request.headers().clone();
    let query = request.uri().query().unwrap_or_default().to_owned();
    // Read (and bounded) like every other route's, though these routes take no body.
    if let Err(failure) = read_body(request).await {
        return error(&failure);
    }
    tokio::task::spawn_blocking(move || {
        let principal = input::authenticate(&state, &headers, peer, Surface::Api)?;
        let mut response = audit(&state, &principal, &query)?;
        response.extensions_mut().insert(LoggedUser(principal.username.to_string()));
        Ok::<_, ApiError>(response)
    })
    .await
    .unwrap_or_else(|join_error| Err(ApiError::internal(&join_error)))
    .unwrap_or_else(|failure| error(&failure))
}

/// A time parameter: Unix seconds.
fn time_param(query: &str, name: &'static str) -> Result<Option<Timestamp>, ApiError> {
    query_param(query, name)
        .map(|value| {
            value.parse::<i64>().map(Timestamp).map_err(|_| {
                ApiError::bad_request(format!("The query parameter {name} must be a time in Unix seconds"))
            })
        })
        .transpose()
}

fn audit(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    if !principal.can(Permission::AuditRead) {
        return Err(CoreError::Forbidden(Permission::AuditRead).into());
    }
    let per_page = page_param(query, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
    if per_page > wssh_core::audit::MAX_AUDIT_PAGE as usize {
        return Err(ApiError::bad_request(format!(
            "The query parameter per_page must be at most {}",
            wssh_core::audit::MAX_AUDIT_PAGE
        )));
    }
    let page = page_param(query, "page")?.unwrap_or(1);
    let kind = query_param(query, "kind");
    if let Some(kind) = &kind {
        let known = AuditEvent::KINDS.iter().any(|known| known == kind || known.split('.').next() == Some(kind));
        if !known {
            return Err(ApiError::bad_request(format!("Unknown event kind {kind:?}")));
        }
    }
    let audit_query = AuditQuery {
        since: time_param(query, "since")?,
        until: time_param(query, "until")?,
        user: query_param(query, "user"),
        kind,
        offset: ((page - 1) as u64).saturating_mul(per_page as u64),
        limit: per_page as u64,
    };
    let found = state.services.audit_log(principal, audit_query)?;
    let content: Vec<Value> =
        found.events.iter().map(|event| serde_json::to_value(event).unwrap_or(Value::Null)).collect();
    Ok(success(json!({ "content": content, "total": found.total })))
}
