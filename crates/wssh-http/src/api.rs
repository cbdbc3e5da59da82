//! wssh's own `/api/*` routes, in the envelope of the other `/api/*` routes (alist's
//! `{code, message, data}`, `code` equal to the HTTP status; a page is `{content, total}`):
//!
//! * `GET /api/audit` — the audit log, newest first: `audit:read`. Query parameters: `page`
//!   and `per_page` (at most 500, default 50), `since` and `until` (Unix seconds; `until`
//!   excluded), `user` (events the user did or that were about the user), `kind` (a kind such
//!   as `login.failed`, or a family such as `login`).
//! * `GET /api/recordings` — shell recordings, newest first: anyone's with `recordings:read`,
//!   otherwise the caller's own. Query parameters: `page`, `per_page`, `user` (the owner),
//!   `session`, `since`, `until` (Unix seconds, of the start).
//! * `GET /api/recordings/{id}` — the asciicast file (`application/x-asciicast`); audited.
//! * `DELETE /api/recordings/{id}` — `recordings:read`; audited.

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
    path == "/api/audit" || path == "/api/recordings" || path.starts_with("/api/recordings/")
}

/// The routes of wssh's own `/api/*`.
pub(crate) enum Route {
    /// `GET /api/audit`.
    Audit,
    /// `GET /api/recordings`.
    Recordings,
    /// `GET /api/recordings/{id}`.
    Recording(String),
    /// `DELETE /api/recordings/{id}`.
    DeleteRecording(String),
}

/// wssh's own `/api/*` routes, on the shared skeleton, in alist's envelope.
pub(crate) struct Api;

impl Surface for Api {
    type Route = Route;

    fn route(path: &str, method: &Method, _headers: &HeaderMap) -> Result<Route, Misroute> {
        match path {
            "/api/audit" if *method == Method::GET => Ok(Route::Audit),
            "/api/audit" => Err(Misroute::MethodNotAllowed(Some("GET, OPTIONS"))),
            "/api/recordings" if *method == Method::GET => Ok(Route::Recordings),
            "/api/recordings" => Err(Misroute::MethodNotAllowed(Some("GET, OPTIONS"))),
            _ => {
                let id = path.strip_prefix("/api/recordings/").filter(|id| !id.is_empty() && !id.contains('/'));
                match (id, method) {
                    (Some(id), &Method::GET) => Ok(Route::Recording(id.to_owned())),
                    (Some(id), &Method::DELETE) => Ok(Route::DeleteRecording(id.to_owned())),
                    (Some(_), _) => Err(Misroute::MethodNotAllowed(Some("GET, DELETE, OPTIONS"))),
                    (None, _) => Err(Misroute::NotFound),
                }
            }
        }
    }

    fn refuse(failure: &ApiError) -> Response<Body> {
        Alist::refuse(failure)
    }

    fn run(state: &SharedState, route: Route, call: &Call) -> Result<Response<Body>, ApiError> {
        let principal = input::authenticate(state, &call.headers, call.peer, AuditSurface::Api)?;
        let mut response = match route {
            Route::Audit => audit(state, &principal, &call.raw_query)?,
            Route::Recordings => recordings(state, &principal, &call.raw_query)?,
            Route::Recording(id) => recording(state, &principal, &id, &call.headers)?,
            Route::DeleteRecording(id) => {
                state.services.delete_recording(&principal, &id)?;
                success(Value::Null)
            }
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

/// Bytes of a recording read at a time while it is served.
const SERVE_CHUNK: usize = 64 * 1024;
/// Chunks read ahead of the client at most: serving a recording of any size holds this many.
const SERVE_AHEAD: usize = 4;

fn recordings(state: &SharedState, principal: &Principal, query: &str) -> Result<Response<Body>, ApiError> {
    let per_page = page_param(query, "per_page")?.unwrap_or(DEFAULT_PER_PAGE);
    let max = wssh_core::recordings::MAX_RECORDINGS_PAGE;
    if per_page as u64 > max {
        return Err(ApiError::bad_request(format!("The query parameter per_page must be at most {max}")));
    }
    let page = page_param(query, "page")?.unwrap_or(1);
    let recording_query = wssh_domain::RecordingQuery {
        owner: query_param(query, "user"),
        session: query_param(query, "session"),
        since: time_param(query, "since")?,
        until: time_param(query, "until")?,
        offset: ((page - 1) as u64).saturating_mul(per_page as u64),
        limit: per_page as u64,
    };
    let (total, found) = state.services.recordings(principal, recording_query)?;
    let content: Vec<Value> = found
        .iter()
        .map(|recording| {
            json!({
                "id": recording.id,
                "session": recording.session,
                "user": recording.owner,
                "cols": recording.cols,
                "rows": recording.rows,
                "started_at": recording.started_at.to_rfc3339(),
                "ended_at": recording.ended_at.map(Timestamp::to_rfc3339),
                "exit_status": recording.exit_status,
                "output_bytes": recording.output_bytes,
                "dropped_bytes": recording.dropped_bytes,
            })
        })
        .collect();
    Ok(success(json!({ "content": content, "total": total })))
}

/// A recording, streamed from disk. A compressed one (`.cast.gz`) goes out as it is stored,
/// with `Content-Encoding: gzip`, to clients that accept gzip, and decompressed to others.
fn recording(
    state: &SharedState,
    principal: &Principal,
    id: &str,
    headers: &http::HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let (_, path) = state.services.recording_path_checked(principal, id)?;
    let file = std::fs::File::open(&path).map_err(|_| CoreError::NotFound(wssh_core::Entity::Recording))?;
    let length = file.metadata().map_err(|_| CoreError::NotFound(wssh_core::Entity::Recording))?.len();
    let compressed = path.extension().is_some_and(|extension| extension == "gz");
    state.services.recording_read(principal, id);
    let as_stored = !compressed || crate::web::accepts(headers, "gzip");
    let mut response = crate::respond::empty(http::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-asciicast"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    if compressed {
        headers.insert(http::header::VARY, http::HeaderValue::from_static("accept-encoding"));
    }
    if as_stored {
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(length));
        if compressed {
            headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
        }
        *response.body_mut() = stream_reader(file);
    } else {
        *response.body_mut() = stream_reader(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    }
    Ok(response)
}

/// Streams what `reader` reads, on a blocking thread that stays at most [`SERVE_AHEAD`] chunks
/// ahead of the client and stops when the client is gone.
fn stream_reader(mut reader: impl std::io::Read + Send + 'static) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(SERVE_AHEAD);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buffer = vec![0; SERVE_CHUNK];
            let chunk = match reader.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => {
                    buffer.truncate(read);
                    Ok(bytes::Bytes::from(buffer))
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    tracing::error!(%error, "cannot read a recording being served");
                    Err(error)
                }
            };
            let failed = chunk.is_err();
            if sender.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    crate::respond::streamed(futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    }))
}
