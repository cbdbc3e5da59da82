//! No privilege escalation by any path, against the real binary: a user whose only custom role
//! grants `users:write`, and one whose role grants `roles:write`, try to make themselves (or an
//! account they control) stronger through every surface that gives or takes permissions — alist's
//! user create and update with `role: 2`, seed 004's bind and `/perm` (and `PUT /role`),
//! go_ws_sh's `/credentials` and `/tokens`, seed 002's token `permissions` and a token minted
//! for another user — and get 403 each time, with nothing changed.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Client, Reply, Server};

fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

async fn call(client: &Client, method: &str, path: &str, authorization: &str, body: Option<&Value>) -> Reply {
    let headers = [("authorization", authorization)];
    match body {
        Some(body) => client.json(method, path, &headers, body).await,
        None => client.raw(method, path, &headers, Vec::new()).await,
    }
}

fn succeeded(reply: &Reply) -> Value {
    assert!(reply.status == 200 || reply.status == 201, "{}", reply.text);
    reply.json["data"].clone()
}

fn forbidden(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {}", reply.text);
}

/// Creates a role granting `permissions` and returns its id.
async fn role(client: &Client, key: &str, permissions: &[&str]) -> i64 {
    let body = json!({ "role_name": key, "role_key": key, "permissions": permissions });
    succeeded(&call(client, "POST", "/role", &admin(), Some(&body)).await)["roleId"].as_i64().unwrap()
}

/// Creates a user (role `user`) and binds it to exactly `roles`; returns its id.
async fn user(client: &Client, name: &str, roles: &[i64]) -> i64 {
    let body = json!({ "username": name, "password": format!("{name}-password") });
    let id = succeeded(&call(client, "POST", "/user", &admin(), Some(&body)).await)["id"].as_i64().unwrap();
    if !roles.is_empty() {
        succeeded(&call(client, "POST", &format!("/user/{id}/bind"), &admin(), Some(&json!(roles))).await);
    }
    id
}

/// The roles and permissions of a user, as the administrator reads them.
async fn held(client: &Client, id: i64) -> (Value, Value) {
    let data = succeeded(&call(client, "GET", &format!("/user/{id}"), &admin(), None).await);
    (data["roles"].clone(), data["permissions"].clone())
}

#[tokio::test]
async fn no_surface_grants_more_than_the_granter_holds() {
    let server = Server::start();
    let client = server.client();
    let users_write = role(&client, "usermgr", &["users:write"]).await;
    let roles_write = role(&client, "rolemgr", &["roles:write", "roles:read"]).await;
    let admin_role = {
        let list = succeeded(&call(&client, "GET", "/role/list?roleKey=admin", &admin(), None).await);
        list["list"][0]["roleId"].as_i64().unwrap()
    };
    let mallory_id = user(&client, "mallory", &[users_write]).await;
    let mallory = basic("mallory", "mallory-password");
    let rita_id = user(&client, "rita", &[roles_write]).await;
    let rita = basic("rita", "rita-password");
    let victim_id = user(&client, "victim", &[]).await;
    let admin_id = succeeded(&call(&client, "GET", "/user/info", &admin(), None).await)["user"]["userId"].clone();

    // alist's create with role 2: the escalation, and no user appears.
    let body = json!({ "username": "mallory2", "password": "mallory2-password", "role": 2 });
    forbidden(&call(&client, "POST", "/api/admin/user/create", &mallory, Some(&body)).await, "alist create role 2");
    let login = json!({ "username": "mallory2", "password": "mallory2-password" });
    assert_eq!(client.json("POST", "/api/auth/login", &[], &login).await.status, 401, "no such user was made");
    // A guest, which grants nothing, is within mallory's rights: the surface itself works.
    let body = json!({ "username": "guest2", "password": "guest2-password", "role": 1 });
    assert_eq!(call(&client, "POST", "/api/admin/user/create", &mallory, Some(&body)).await.status, 200);

    // alist's update with role 2, of someone else and of herself.
    for id in [victim_id, mallory_id] {
        let body = json!({ "id": id, "role": 2 });
        forbidden(&call(&client, "POST", "/api/admin/user/update", &mallory, Some(&body)).await, "alist update");
        assert!(!held(&client, id).await.0.as_array().unwrap().contains(&json!("admin")));
    }

    // Seed 004's bind of the admin role, by a holder of roles:write.
    for id in [rita_id, victim_id] {
        let path = format!("/user/{id}/bind");
        forbidden(&call(&client, "POST", &path, &rita, Some(&json!([admin_role]))).await, "bind admin");
        forbidden(&call(&client, "POST", &path, &rita, Some(&json!([users_write]))).await, "bind usermgr");
    }
    assert_eq!(held(&client, rita_id).await.0, json!(["rolemgr"]));

    // Seed 004's /perm and PUT /role: widening her own role.
    let path = format!("/perm?roleId={roles_write}&permissions=roles:write,roles:read,users:write");
    forbidden(&call(&client, "PUT", &path, &rita, None).await, "/perm");
    let body = json!({ "permissions": ["roles:write", "roles:read", "users:read"] });
    forbidden(&call(&client, "PUT", &format!("/role/{roles_write}"), &rita, Some(&body)).await, "PUT /role");
    let body = json!({ "role_name": "wide", "role_key": "wide", "permissions": ["sessions:write"] });
    forbidden(&call(&client, "POST", "/role", &rita, Some(&body)).await, "POST /role");
    assert_eq!(held(&client, rita_id).await.1, json!(["roles:read", "roles:write"]));

    // go_ws_sh's /credentials: taking over the administrator by setting its password.
    let body = json!({ "credential": { "username": "admin", "password": "taken-over" } });
    forbidden(&client.json("PUT", "/credentials", &[("authorization", &mallory)], &body).await, "/credentials");
    assert_eq!(
        client
            .json("POST", "/api/auth/login", &[], &json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .await
            .status,
        200,
        "the administrator's password is unchanged"
    );

    // go_ws_sh's /tokens and seed 002: a token minted for the administrator.
    let body = json!({ "token": { "username": "admin", "description": "mine" } });
    forbidden(&client.json("POST", "/tokens", &[("authorization", &mallory)], &body).await, "/tokens for admin");
    let body = json!({ "userID": admin_id, "permissions": ["users:write", "roles:write"] });
    forbidden(&call(&client, "POST", "/AccessToken/app", &mallory, Some(&body)).await, "seed 002 for admin");

    // Seed 002's permissions: widening the administrator's narrow token.
    let narrow = json!({ "permissions": ["sessions:read"] });
    let minted = call(&client, "POST", "/AccessToken/app", &admin(), Some(&narrow)).await;
    let token_id = succeeded(&minted)["id"].clone();
    let token = format!("Bearer {}", minted.json["data"]["access_token"].as_str().unwrap());
    let widen = json!({ "permissions": "" });
    forbidden(&call(&client, "PUT", &format!("/AccessToken/app/{token_id}"), &mallory, Some(&widen)).await, "widen");
    assert_eq!(
        client
            .json(
                "POST",
                "/credentials",
                &[("authorization", &token)],
                &json!({ "credential": { "username": "x", "password": "y" } })
            )
            .await
            .status,
        403,
        "the administrator's token is still narrow"
    );
    // Its own token's permissions beyond its owner's are dropped, not granted (seed 002).
    let wide = json!({ "permissions": ["users:write", "roles:write"] });
    let minted = call(&client, "POST", "/AccessToken/app", &basic("victim", "victim-password"), Some(&wide)).await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let list = succeeded(&call(&client, "GET", "/AccessToken/app", &basic("victim", "victim-password"), None).await);
    assert_eq!(list["data"][0]["permissions"], "", "{list}");

    // And the administrator itself stays the only administrator.
    let admins: Vec<Value> = succeeded(&call(&client, "GET", "/api/admin/user/list", &admin(), None).await)["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|user| user["role"] == 2)
        .cloned()
        .collect();
    assert_eq!(admins.len(), 1, "{admins:?}");
}
