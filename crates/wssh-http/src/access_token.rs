//! The access-token surface of seed 002: `/AccessToken/{appKey}` and `/AccessToken/{appKey}/{id}`,
//! answering in that seed's envelope `{code, data, error}`.

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
