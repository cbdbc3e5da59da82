//! wssh's own `/api/*` routes, in the envelope of the other `/api/*` routes (alist's
//! `{code, message, data}`, `code` equal to the HTTP status; a page is `{content, total}`):
//!
//! * `GET /api/audit` — the audit log, newest first: `audit:read`. Query parameters: `page`
//!   and `per_page` (at most 500, default 50), `since` and `until` (Unix seconds; `until`
//!   excluded), `user` (events the user did or that were about the user), `kind` (a kind such
//!   as `login.failed`, or a family such as `login`).

use http::header::HeaderMap;
use http::{Method, Response};
use serde_json::{Value, json};
use wssh_auth::Principal;
use wssh_core::CoreError;
use wssh_domain::audit::{AuditEvent, AuditQuery, Surface as AuditSurface};
use wssh_domain::{Permission, Timestamp};

use crate::SharedState;
use crate::alist::{Alist, page_param, query_param, success};
use crate::error::ApiError;
use crate::input;
use crate::respond::{Body, LoggedUser};
use crate::surface::{Call, Misroute, Surface};

/// A page of the audit log when `per_page` is not given.
const DEFAULT_PER_PAGE: usize = 50;

/// Whether `path` is one of these routes.
pub(crate) fn matches(path: &str) -> bool {
    path == "/api/audit"
}

/// The routes of wssh's own `/api/*`.
pub(crate) enum Route {
    /// `GET /api/audit`.
    Audit,
}

/// wssh's own `/api/*` routes, on the shared skeleton, in alist's envelope.
pub(crate) struct Api;

impl Surface for Api {
    type Route = Route;

    fn route(path: &str, method: &Method, _headers: &HeaderMap) -> Result<Route, Misroute> {
        match path {
            "/api/audit" if *method == Method::GET => Ok(Route::Audit),
            "/api/audit" => Err(Misroute::MethodNotAllowed(Some("GET, OPTIONS"))),
            _ => Err(Misroute::NotFound),
        }
    }

    fn refuse(failure: &ApiError) -> Response<Body> {
        Alist::refuse(failure)
    }

    fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
        let principal = input::authenticate(state, &call.headers, call.peer, AuditSurface::Api)?;
        let mut response = match route {
            Route::Audit => audit(state, &principal, &call.raw_query)?,
        };
        response.extensions_mut().insert(LoggedUser(principal.username.to_string()));
        Ok(response)
    }
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
