//! Seed 002's `/AccessToken/{appKey}` against the real binary: minting, listing (secrets never
//! shown), updating, disabling and deleting app-scoped tokens; tokens authenticating on every
//! other surface; their rights as the intersection of their owner's and their own; and the
//! refusals, each in the seed's envelope `{code, data, error}`.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Client, Reply, Server, create_user};

fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

fn admin_basic() -> String {
    basic("admin", ADMIN_PASSWORD)
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// `method path` with `authorization` and a JSON body (none for GET and DELETE).
async fn call(client: &Client, method: &str, path: &str, authorization: &str, body: Option<&Value>) -> Reply {
    let mut headers = vec![];
    if !authorization.is_empty() {
        headers.push(("authorization", authorization));
    }
    match body {
        Some(body) => client.json(method, path, &headers, body).await,
        None => client.raw(method, path, &headers, Vec::new()).await,
    }
}

/// Mints a token under `app_key` and returns (id, secret).
async fn mint(client: &Client, app_key: &str, authorization: &str, body: &Value) -> (i64, String) {
    let reply = call(client, "POST", &format!("/AccessToken/{app_key}"), authorization, Some(body)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["code"], 200);
    assert_eq!(reply.json["error"], "");
    assert_eq!(reply.json["data"]["token_type"], "Bearer");
    let secret = reply.json["data"]["access_token"].as_str().expect("a secret").to_owned();
    assert!(secret.starts_with("wssh_"), "{secret}");
    (reply.json["data"]["id"].as_i64().expect("an id"), secret)
}

/// Asserts an error reply in the seed's envelope with `status`.
fn assert_refused(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["code"], status, "{}", reply.text);
    assert!(reply.json["data"].is_null(), "{}", reply.text);
    assert!(!reply.json["error"].as_str().unwrap_or_default().is_empty(), "{}", reply.text);
}

async fn sessions_status(client: &Client, authorization: &str) -> u16 {
    client.json("GET", "/sessions", &[("authorization", authorization)], &json!({})).await.status
}

async fn user_id(client: &Client, username: &str) -> i64 {
    let reply = call(client, "GET", &format!("/user/info?username={username}"), &admin_basic(), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["data"]["user"]["userId"].as_i64().unwrap()
}

#[tokio::test]
async fn mint_list_update_delete_and_use_everywhere() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();

    // The seed's own sample body: numbers as strings, everything empty.
    let sample = json!({
        "title": "ci", "tags": "build", "userID": "0", "description": "the CI runner",
        "permissions": "", "expireInDays": "0"
    });
    let reply = call(&client, "POST", "/AccessToken/app1", &admin, Some(&sample)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["expires_in"], 0, "0 days: never expires");
    let secret = reply.json["data"]["access_token"].as_str().unwrap().to_owned();
    let id = reply.json["data"]["id"].as_i64().unwrap();

    // The token works on every surface.
    assert_eq!(sessions_status(&client, &bearer(&secret)).await, 200);
    assert_eq!(call(&client, "GET", "/test", &bearer(&secret), None).await.status, 204);
    let info = call(&client, "GET", "/user/info", &bearer(&secret), None).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.json["data"]["user"]["username"], "admin");

    // A second one, expiring in a week (a JSON number this time).
    let (week_id, _) = mint(&client, "app1", &admin, &json!({ "title": "week", "expireInDays": 7 })).await;
    let reply = call(&client, "POST", "/AccessToken/app1", &admin, Some(&json!({ "expireInDays": 30 }))).await;
    assert_eq!(reply.json["data"]["expires_in"], 30 * 86_400);

    // Listing: rows without secrets, paged.
    let list = call(&client, "GET", "/AccessToken/app1", &admin, None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["code"], 200);
    assert_eq!(list.json["error"], "");
    assert_eq!(list.json["data"]["total"], 3);
    assert!(!list.text.contains(&secret), "a listing never shows a secret");
    let rows = list.json["data"]["data"].as_array().unwrap();
    let first = &rows[0];
    assert_eq!(first["id"], id);
    assert_eq!(first["userID"], user_id(&client, "admin").await);
    assert_eq!(first["enable"], true);
    assert_eq!(first["title"], "ci");
    assert_eq!(first["tags"], "build");
    assert_eq!(first["description"], "the CI runner");
    assert_eq!(first["accessToken"], "");
    assert_eq!(first["expireTime"], "");
    assert!(first["permissions"].as_str().unwrap().contains("users:write"), "all of the admin's: {first}");
    assert!(!first["createDate"].as_str().unwrap().is_empty());
    assert!(!first["lastUpdate"].as_str().unwrap().is_empty());
    let week = rows.iter().find(|row| row["id"] == week_id).unwrap();
    assert!(week["expireTime"].as_str().unwrap().ends_with('Z'), "{week}");
    let page = call(&client, "GET", "/AccessToken/app1?skip=1&take=1", &admin, None).await;
    assert_eq!(page.json["data"]["total"], 3);
    assert_eq!(page.json["data"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(page.json["data"]["data"][0]["id"], week_id);

    // Tokens are scoped by appKey.
    let other = call(&client, "GET", "/AccessToken/app2", &admin, None).await;
    assert_eq!(other.json["data"]["total"], 0);
    assert_refused(
        &call(&client, "PUT", &format!("/AccessToken/app2/{id}"), &admin, Some(&json!({ "title": "x" }))).await,
        404,
    );
    assert_refused(&call(&client, "DELETE", &format!("/AccessToken/app2/{id}"), &admin, None).await, 404);

    // Update, disable (refused everywhere at once), enable again.
    let path = format!("/AccessToken/app1/{id}");
    let updated = call(&client, "PUT", &path, &admin, Some(&json!({ "title": "renamed", "tags": "t2" }))).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["data"], true);
    let disabled = call(&client, "PUT", &path, &admin, Some(&json!({ "enable": false }))).await;
    assert_eq!(disabled.json["data"], true);
    assert_eq!(sessions_status(&client, &bearer(&secret)).await, 401);
    assert_refused(&call(&client, "GET", "/AccessToken/app1", &bearer(&secret), None).await, 401);
    assert_eq!(call(&client, "GET", "/user/info", &bearer(&secret), None).await.status, 401);
    let list = call(&client, "GET", "/AccessToken/app1", &admin, None).await;
    let row = list.json["data"]["data"].as_array().unwrap().iter().find(|row| row["id"] == id).unwrap().clone();
    assert_eq!(row["enable"], false);
    assert_eq!(row["title"], "renamed");
    assert_eq!(row["tags"], "t2");
    assert_eq!(row["description"], "the CI runner", "fields left out keep their values");
    call(&client, "PUT", &path, &admin, Some(&json!({ "enable": true }))).await;
    assert_eq!(sessions_status(&client, &bearer(&secret)).await, 200);

    // Delete: the token stops working; deleting again is 404.
    let deleted = call(&client, "DELETE", &path, &admin, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json["data"], true);
    assert_eq!(sessions_status(&client, &bearer(&secret)).await, 401);
    assert_refused(&call(&client, "DELETE", &path, &admin, None).await, 404);
    assert_eq!(call(&client, "GET", "/AccessToken/app1", &admin, None).await.json["data"]["total"], 2);
}

#[tokio::test]
async fn a_tokens_rights_are_its_owners_intersected_with_its_own() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();

    // An admin token narrowed to sessions:read reads sessions but cannot create one, nor
    // list or mint tokens.
    let (_, narrow) = mint(&client, "app", &admin, &json!({ "permissions": "sessions:read" })).await;
    assert_eq!(sessions_status(&client, &bearer(&narrow)).await, 200);
    let create = client
        .json(
            "POST",
            "/sessions",
            &[("authorization", &bearer(&narrow))],
            &json!({ "session": { "name": "x", "cmd": "sh" } }),
        )
        .await;
    assert_eq!(create.status, 403, "{}", create.text);
    assert_refused(&call(&client, "GET", "/AccessToken/app", &bearer(&narrow), None).await, 403);
    assert_refused(&call(&client, "POST", "/AccessToken/app", &bearer(&narrow), Some(&json!({}))).await, 403);
    let list = call(&client, "GET", "/AccessToken/app", &admin, None).await;
    assert_eq!(list.json["data"]["data"][0]["permissions"], "sessions:read");

    // An ordinary user asking for more than it holds gets only what it holds.
    create_user(&client, "alice", "alice-password-1").await;
    let alice = basic("alice", "alice-password-1");
    let (_, wide) = mint(&client, "app", &alice, &json!({ "permissions": ["sessions:read", "users:write"] })).await;
    let list = call(&client, "GET", "/AccessToken/app", &alice, None).await;
    assert_eq!(list.json["data"]["total"], 1, "alice sees her own tokens only: {}", list.text);
    assert_eq!(list.json["data"]["data"][0]["permissions"], "sessions:read");
    let create_user_reply = client
        .json(
            "POST",
            "/credentials",
            &[("authorization", &bearer(&wide))],
            &json!({ "credential": { "username": "mallory", "password": "mallory-password" } }),
        )
        .await;
    assert_eq!(create_user_reply.status, 403, "{}", create_user_reply.text);

    // A token minted with a token carries at most that token's rights.
    let (_, read_write) =
        mint(&client, "app", &admin, &json!({ "permissions": "tokens:read tokens:write sessions:read" })).await;
    let (child_id, child) = mint(&client, "app", &bearer(&read_write), &json!({ "permissions": "" })).await;
    assert_eq!(sessions_status(&client, &bearer(&child)).await, 200);
    let list = call(&client, "GET", "/AccessToken/app?take=1000", &admin, None).await;
    let row = list.json["data"]["data"].as_array().unwrap().iter().find(|row| row["id"] == child_id).unwrap().clone();
    assert_eq!(row["permissions"], "sessions:read,tokens:read,tokens:write");

    // Changing a token's permissions takes effect at once.
    let path = format!("/AccessToken/app/{child_id}");
    let narrowed = call(&client, "PUT", &path, &admin, Some(&json!({ "permissions": "tokens:read" }))).await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);
    assert_eq!(sessions_status(&client, &bearer(&child)).await, 403);
}

#[tokio::test]
async fn refusals_in_the_seed_envelope() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();
    create_user(&client, "alice", "alice-password-1").await;
    let alice = basic("alice", "alice-password-1");
    let admin_id = user_id(&client, "admin").await;
    let (id, _) = mint(&client, "app", &admin, &json!({ "title": "admin's" })).await;
    let item = format!("/AccessToken/app/{id}");

    // Credentials: none, wrong password, unknown token, malformed header.
    let none = call(&client, "GET", "/AccessToken/app", "", None).await;
    assert_refused(&none, 401);
    assert!(none.header("www-authenticate").starts_with("Bearer"));
    assert_refused(&call(&client, "GET", "/AccessToken/app", &basic("admin", "wrong"), None).await, 401);
    assert_refused(&call(&client, "GET", "/AccessToken/app", "Bearer wssh_nope", None).await, 401);
    assert_refused(&call(&client, "POST", "/AccessToken/app", "Bearer !!!", Some(&json!({}))).await, 401);
    assert_refused(&call(&client, "PUT", &item, "", Some(&json!({}))).await, 401);
    assert_refused(&call(&client, "DELETE", &item, "", None).await, 401);

    // Malformed input.
    assert_refused(&call(&client, "POST", "/AccessToken/app", &admin, Some(&json!({ "expireInDays": -1 }))).await, 400);
    assert_refused(
        &call(&client, "POST", "/AccessToken/app", &admin, Some(&json!({ "expireInDays": "-3" }))).await,
        400,
    );
    assert_refused(
        &call(&client, "POST", "/AccessToken/app", &admin, Some(&json!({ "expireInDays": "soon" }))).await,
        400,
    );
    assert_refused(
        &call(&client, "POST", "/AccessToken/app", &admin, Some(&json!({ "permissions": "root" }))).await,
        400,
    );
    assert_refused(&call(&client, "POST", "/AccessToken/app", &admin, Some(&json!({ "title": 5 }))).await, 400);
    let malformed = client.raw("POST", "/AccessToken/app", &[("authorization", &admin)], b"{oops".to_vec()).await;
    assert_refused(&malformed, 400);
    assert_refused(&call(&client, "PUT", &item, &admin, Some(&json!({ "enable": "maybe" }))).await, 400);
    assert_refused(&call(&client, "PUT", "/AccessToken/app/abc", &admin, Some(&json!({}))).await, 400);
    assert_refused(&call(&client, "GET", "/AccessToken/app?skip=-1", &admin, None).await, 400);
    assert_refused(&call(&client, "GET", "/AccessToken/app?take=x", &admin, None).await, 400);

    // Unknown ids.
    assert_refused(&call(&client, "PUT", "/AccessToken/app/12345", &admin, Some(&json!({}))).await, 404);
    assert_refused(&call(&client, "DELETE", "/AccessToken/app/12345", &admin, None).await, 404);
    assert_refused(&call(&client, "GET", "/AccessToken/app?userId=99999", &admin, None).await, 404);
    assert_refused(&call(&client, "POST", "/AccessToken/app", &admin, Some(&json!({ "userID": 99999 }))).await, 404);
    assert_refused(&call(&client, "GET", "/AccessToken", &admin, None).await, 404);
    assert_refused(&call(&client, "GET", "/AccessToken/app/1/2", &admin, None).await, 404);

    // Missing permission: another user's tokens.
    let others = format!("/AccessToken/app?userId={admin_id}");
    assert_refused(&call(&client, "GET", &others, &alice, None).await, 403);
    let for_admin = json!({ "userID": admin_id });
    assert_refused(&call(&client, "POST", "/AccessToken/app", &alice, Some(&for_admin)).await, 403);
    assert_refused(&call(&client, "PUT", &item, &alice, Some(&json!({ "enable": false }))).await, 403);
    assert_refused(&call(&client, "DELETE", &item, &alice, None).await, 403);

    // Methods.
    let patch = call(&client, "PATCH", "/AccessToken/app", &admin, None).await;
    assert_refused(&patch, 405);
    assert_eq!(patch.header("allow"), "GET, POST, OPTIONS");
    let get_item = call(&client, "GET", &item, &admin, None).await;
    assert_refused(&get_item, 405);
    assert_eq!(get_item.header("allow"), "PUT, DELETE, OPTIONS");

    // The admin mints for alice; alice's token lists as hers, and the admin sees it too.
    let alice_id = user_id(&client, "alice").await;
    let (_, for_alice) = mint(&client, "app", &admin, &json!({ "userID": alice_id.to_string() })).await;
    let info = call(&client, "GET", "/user/info", &bearer(&for_alice), None).await;
    assert_eq!(info.json["data"]["user"]["username"], "alice");
    let hers = call(&client, "GET", &format!("/AccessToken/app?userId={alice_id}"), &admin, None).await;
    assert_eq!(hers.json["data"]["total"], 1);
    assert_eq!(call(&client, "GET", "/AccessToken/app", &alice, None).await.json["data"]["total"], 1);
}

#[tokio::test]
async fn disabling_or_deleting_the_owner_stops_its_tokens_at_once() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();
    create_user(&client, "bob", "bob-password-1").await;
    let bob_id = user_id(&client, "bob").await;
    let (_, minted_by_admin) = mint(&client, "app", &admin, &json!({ "userID": bob_id })).await;
    let (_, own) = mint(&client, "app", &basic("bob", "bob-password-1"), &json!({})).await;
    for token in [&minted_by_admin, &own] {
        assert_eq!(sessions_status(&client, &bearer(token)).await, 200);
    }

    let user = format!("/user/{bob_id}");
    let disabled = call(&client, "PUT", &user, &admin, Some(&json!({ "status": "1" }))).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    for token in [&minted_by_admin, &own] {
        assert_eq!(sessions_status(&client, &bearer(token)).await, 401);
        assert_refused(&call(&client, "GET", "/AccessToken/app", &bearer(token), None).await, 401);
    }
    call(&client, "PUT", &user, &admin, Some(&json!({ "status": "0" }))).await;
    assert_eq!(sessions_status(&client, &bearer(&own)).await, 200);

    let deleted = call(&client, "DELETE", &user, &admin, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    for token in [&minted_by_admin, &own] {
        assert_eq!(sessions_status(&client, &bearer(token)).await, 401);
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_everywhere() {
    let server = Server::start();
    let client = server.client();
    let (id, secret) = mint(&client, "app", &admin_basic(), &json!({ "title": "soon", "expireInDays": 1 })).await;
    assert_eq!(sessions_status(&client, &bearer(&secret)).await, 200);
    // A day cannot pass in a test: move the expiry into the past in the real database file,
    // as the clock would, while the server runs.
    let changed = server.execute_sql(
        "UPDATE access_tokens SET expires_at = strftime('%s', 'now') - 1 WHERE identifier = ?1",
        "UPDATE access_tokens SET expires_at = extract(epoch FROM now())::BIGINT - 1 WHERE identifier = $1",
        &id.to_string(),
    );
    assert_eq!(changed, 1);
    // A change written by another process is seen within a second: the server keeps a
    // resolved token that long when its own writes have not ended it (docs/decisions.md).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(sessions_status(&client, &bearer(&secret)).await, 401);
    assert_refused(&call(&client, "GET", "/AccessToken/app", &bearer(&secret), None).await, 401);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &bearer(&secret))], Vec::new()).await.status, 401);
}
