//! The `wssh` binary as an operator sees it: first start, restart persistence, shutdown,
//! what lands on disk and in the logs.

mod support;

use serde_json::json;
use support::{ADMIN_PASSWORD, Server, admin, login, password_auth};

#[tokio::test]
async fn health_check_answers() {
    let server = Server::start();
    let reply = server.client().raw("GET", "/healthz", &[], Vec::new()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["status"], "ok");
}
