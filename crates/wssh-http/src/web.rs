//! The browser terminal: the page served at `/` and its static assets.

use std::net::SocketAddr;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::SharedState;
use crate::error::ApiError;
use crate::respond::{self, Body};

/// Whether `path` belongs to this surface.
pub(crate) fn matches(_path: &str) -> bool {
    false
}

/// Answers one request of this surface.
pub(crate) async fn handle(_request: Request<Incoming>, _state: SharedState, _peer: SocketAddr) -> Response<Body> {
    respond::error(&ApiError::not_found("Not found"))
}
