//! Seed 004's roles, permissions and users against the real binary: role CRUD and paging,
//! role permissions, users created, read, changed, rebound, disabled and deleted — with the
//! effect on every other surface at once — registration, and the refusals, each in the seed's
//! envelope `{code, message, data}`.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Client, Reply, Server, default_config};

fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))
}

fn admin_basic() -> String {
    basic("admin", ADMIN_PASSWORD)
}

/// `method path` with `authorization` and a JSON body (none when `body` is `None`).
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

/// Asserts a success in the seed's envelope with `status`, and returns its data.
fn ok(reply: &Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["code"], status, "{}", reply.text);
    assert!(reply.json["message"].is_string() && reply.json["msg"].is_string(), "{}", reply.text);
    reply.json["data"].clone()
}

/// Asserts an error in the seed's envelope with `status`.
fn refused(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["code"], status, "{}", reply.text);
    assert!(reply.json["message"].as_str().is_some_and(|message| !message.is_empty()), "{}", reply.text);
    assert!(reply.json["data"].is_null(), "{}", reply.text);
}

/// The id of the role with `key`.
async fn role_id(client: &Client, key: &str) -> i64 {
    let list = call(client, "GET", &format!("/role/list?roleKey={key}&pageSize=100"), &admin_basic(), None).await;
    let data = ok(&list, 200);
    data["list"].as_array().unwrap().iter().find(|role| role["roleKey"] == key).expect("role")["roleId"]
        .as_i64()
        .unwrap()
}

/// Creates a user as the admin through `POST /user` and returns its id.
async fn create_user(client: &Client, username: &str, password: &str) -> i64 {
    let reply =
        call(client, "POST", "/user", &admin_basic(), Some(&json!({ "username": username, "password": password })))
            .await;
    let data = ok(&reply, 201);
    assert_eq!(data["username"], username);
    data["id"].as_i64().unwrap()
}

async fn jwt_login(client: &Client, username: &str, password: &str) -> String {
    let reply = client.json("POST", "/auth/login", &[], &json!({ "username": username, "password": password })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.header("authorization").to_owned()
}

async fn sessions_status(client: &Client, authorization: &str) -> u16 {
    client.json("GET", "/sessions", &[("authorization", authorization)], &json!({})).await.status
}

#[tokio::test]
async fn roles_are_created_listed_changed_and_deleted() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();

    // The built-in roles, in both of the seed's spellings.
    let data = ok(&call(&client, "GET", "/role/list", &admin, None).await, 200);
    assert_eq!(data["total"], 3);
    let keys: Vec<&str> =
        data["list"].as_array().unwrap().iter().map(|role| role["roleKey"].as_str().unwrap()).collect();
    assert_eq!(keys, ["admin", "user", "guest"]);
    let admin_role = &data["list"][0];
    assert_eq!(admin_role["role_key"], "admin");
    assert_eq!(admin_role["status"], "0");
    assert_eq!(
        admin_role["permissions"].as_array().unwrap().len(),
        14,
        "every permission, shells:observe, shells:control, audit:read, recordings:read and shells:run_as_any included"
    );
    assert_eq!(admin_role["roleId"], admin_role["role_id"]);
    let create_time = admin_role["createTime"].as_str().unwrap();
    assert_eq!(create_time.len(), "2023-01-01 12:00:00".len(), "{create_time}");

    // Paging and filters, in the query string or in the seed's GET body.
    let page = ok(&call(&client, "GET", "/role/list?pageNum=2&pageSize=1", &admin, None).await, 200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["list"][0]["roleKey"], "user");
    let guests = ok(&call(&client, "GET", "/role/list?roleKey=gue", &admin, None).await, 200);
    assert_eq!(guests["total"], 1);
    let by_body = call(
        &client,
        "GET",
        "/role/list",
        &admin,
        Some(&json!({ "pageNum": 1, "pageSize": 2, "roleName": "", "roleKey": "", "status": "" })),
    )
    .await;
    let by_body = ok(&by_body, 200);
    assert_eq!(by_body["total"], 3);
    assert_eq!(by_body["list"].as_array().unwrap().len(), 2);
    assert_eq!(ok(&call(&client, "GET", "/role/list?status=1", &admin, None).await, 200)["total"], 0);

    // Create.
    let ops = json!({
        "role_name": "Operators", "role_key": "ops", "role_sort": 5, "status": "0", "remark": "on call",
        "permissions": ["sessions:read", "sessions:write"]
    });
    let created = ok(&call(&client, "POST", "/role", &admin, Some(&ops)).await, 200);
    assert_eq!(created["roleKey"], "ops");
    assert_eq!(created["roleName"], "Operators");
    assert_eq!(created["roleSort"], 5);
    assert_eq!(created["remark"], "on call");
    assert_eq!(created["permissions"], json!(["sessions:read", "sessions:write"]));
    let ops_id = created["roleId"].as_i64().unwrap();
    refused(&call(&client, "POST", "/role", &admin, Some(&ops)).await, 409);
    refused(&call(&client, "POST", "/role", &admin, Some(&json!({ "role_name": "No key" }))).await, 400);
    refused(
        &call(&client, "POST", "/role", &admin, Some(&json!({ "role_name": "x", "role_key": "has space" }))).await,
        400,
    );
    refused(
        &call(&client, "POST", "/role", &admin, Some(&json!({ "role_name": "x", "role_key": "x", "status": "2" })))
            .await,
        400,
    );
    refused(
        &call(
            &client,
            "POST",
            "/role",
            &admin,
            Some(&json!({ "role_name": "x", "role_key": "x", "permissions": ["root"] })),
        )
        .await,
        400,
    );
    refused(&client.raw("POST", "/role", &[("authorization", &admin)], b"{oops".to_vec()).await, 400);

    // Read, change, delete.
    let path = format!("/role/{ops_id}");
    assert_eq!(ok(&call(&client, "GET", &path, &admin, None).await, 200)["roleKey"], "ops");
    let changed =
        ok(&call(&client, "PUT", &path, &admin, Some(&json!({ "role_name": "Ops", "status": "1" }))).await, 200);
    assert_eq!(changed["roleName"], "Ops");
    assert_eq!(changed["status"], "1");
    assert_eq!(changed["remark"], "on call", "fields left out keep their values");
    assert_eq!(ok(&call(&client, "GET", "/role/list?status=1", &admin, None).await, 200)["total"], 1);
    refused(&call(&client, "GET", "/role/abc", &admin, None).await, 400);
    refused(&call(&client, "GET", "/role/99999", &admin, None).await, 404);
    refused(&call(&client, "PUT", "/role/99999", &admin, Some(&json!({ "remark": "x" }))).await, 404);
    let user_role = role_id(&client, "user").await;
    let admin_role_id = role_id(&client, "admin").await;
    refused(&call(&client, "DELETE", &format!("/role/{user_role}"), &admin, None).await, 409);
    refused(
        &call(&client, "PUT", &format!("/role/{user_role}"), &admin, Some(&json!({ "role_key": "member" }))).await,
        409,
    );
    refused(
        &call(&client, "PUT", &format!("/role/{admin_role_id}"), &admin, Some(&json!({ "status": "1" }))).await,
        409,
    );
    refused(&call(&client, "PUT", &path, &admin, Some(&json!({ "role_key": "user" }))).await, 409);
    assert_eq!(ok(&call(&client, "DELETE", &path, &admin, None).await, 200)["roleKey"], "ops");
    refused(&call(&client, "DELETE", &path, &admin, None).await, 404);

    // Methods and unknown paths.
    let wrong_method = call(&client, "GET", "/role", &admin, None).await;
    refused(&wrong_method, 405);
    assert_eq!(wrong_method.header("allow"), "POST, OPTIONS");
    assert_eq!(call(&client, "PATCH", &path, &admin, None).await.header("allow"), "GET, PUT, DELETE, OPTIONS");
    refused(&call(&client, "GET", "/role/1/extra", &admin, None).await, 404);
}

#[tokio::test]
async fn role_permissions_take_effect_on_every_surface() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();

    let all = ok(&call(&client, "GET", "/perm/list", &admin, None).await, 200);
    assert_eq!(all["total"], 14);
    let names: Vec<&str> =
        all["list"].as_array().unwrap().iter().map(|entry| entry["permission"].as_str().unwrap()).collect();
    assert!(names.contains(&"sessions:connect") && names.contains(&"roles:write"), "{names:?}");
    assert!(all["list"].as_array().unwrap().iter().all(|entry| !entry["name"].as_str().unwrap().is_empty()));

    let user_role = role_id(&client, "user").await;
    let user_permissions = ok(&call(&client, "GET", &format!("/perm?roleId={user_role}"), &admin, None).await, 200);
    let names: Vec<&str> = user_permissions["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["permission"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sessions:read", "sessions:connect", "tokens:read", "tokens:write"]);
    // Without a role: the caller's own.
    assert_eq!(ok(&call(&client, "GET", "/perm", &admin, None).await, 200)["total"], 14);

    // A custom role, its permissions replaced with PUT /perm, bound to a user.
    let created = ok(
        &call(&client, "POST", "/role", &admin, Some(&json!({ "role_name": "Readers", "role_key": "readers" }))).await,
        200,
    );
    let readers = created["roleId"].as_i64().unwrap();
    assert_eq!(created["permissions"], json!([]));
    let dave = create_user(&client, "dave", "dave-password-1").await;
    ok(&call(&client, "POST", &format!("/user/{dave}/bind"), &admin, Some(&json!([readers]))).await, 200);
    let dave_auth = basic("dave", "dave-password-1");
    assert_eq!(sessions_status(&client, &dave_auth).await, 403, "a role without permissions grants nothing");
    let set = call(
        &client,
        "PUT",
        &format!("/perm?roleId={readers}&permissions=sessions:read&permissions=roles:read"),
        &admin,
        None,
    )
    .await;
    let set = ok(&set, 200);
    assert_eq!(set["total"], 2);
    assert_eq!(sessions_status(&client, &dave_auth).await, 200);
    assert_eq!(call(&client, "GET", "/perm/list", &dave_auth, None).await.status, 200);
    // Comma-separated works too; the change applies at once.
    let set =
        call(&client, "PUT", &format!("/perm?roleId={readers}&permissions=roles:read,users:read"), &admin, None).await;
    assert_eq!(ok(&set, 200)["total"], 2);
    assert_eq!(sessions_status(&client, &dave_auth).await, 403);
    let info = ok(&call(&client, "GET", "/user/info", &dave_auth, None).await, 200);
    assert_eq!(info["user"]["roles"], json!(["readers"]));
    assert_eq!(info["user"]["permissions"], json!(["users:read", "roles:read"]));
    // Clearing with an empty value.
    let cleared = call(&client, "PUT", &format!("/perm?roleId={readers}&permissions="), &admin, None).await;
    assert_eq!(ok(&cleared, 200)["total"], 0);

    // Refusals.
    let admin_role = role_id(&client, "admin").await;
    refused(
        &call(&client, "PUT", &format!("/perm?roleId={admin_role}&permissions=sessions:read"), &admin, None).await,
        409,
    );
    refused(&call(&client, "PUT", &format!("/perm?roleId={readers}&permissions=root"), &admin, None).await, 400);
    refused(&call(&client, "PUT", "/perm?permissions=sessions:read", &admin, None).await, 400);
    refused(&call(&client, "PUT", &format!("/perm?roleId={readers}"), &admin, None).await, 400);
    refused(&call(&client, "PUT", "/perm?roleId=99999&permissions=sessions:read", &admin, None).await, 404);
    refused(&call(&client, "GET", "/perm?roleId=99999", &admin, None).await, 404);
    refused(&call(&client, "GET", "/perm?roleId=x", &admin, None).await, 400);
    // dave (no permissions now) may not read or change roles.
    refused(&call(&client, "GET", "/perm/list", &dave_auth, None).await, 403);
    refused(&call(&client, "GET", &format!("/perm?roleId={readers}"), &dave_auth, None).await, 403);
    refused(
        &call(&client, "PUT", &format!("/perm?roleId={readers}&permissions=roles:write"), &dave_auth, None).await,
        403,
    );
    refused(&call(&client, "GET", "/role/list", &dave_auth, None).await, 403);
    refused(
        &call(&client, "POST", "/role", &dave_auth, Some(&json!({ "role_name": "x", "role_key": "x" }))).await,
        403,
    );
    refused(&call(&client, "DELETE", &format!("/role/{readers}"), &dave_auth, None).await, 403);
    refused(&call(&client, "GET", "/perm/list", "", None).await, 401);
}

#[tokio::test]
async fn users_made_here_live_everywhere_and_die_everywhere() {
    let server = Server::start();
    let client = server.client();
    let admin = admin_basic();

    let carol = create_user(&client, "carol", "carol-password-1").await;
    refused(
        &call(&client, "POST", "/user", &admin, Some(&json!({ "username": "carol", "password": "carol-other-pw" })))
            .await,
        400,
    );
    refused(&call(&client, "POST", "/user", &admin, Some(&json!({ "username": "erin" }))).await, 400);
    refused(
        &call(&client, "POST", "/user", &admin, Some(&json!({ "username": "a:b", "password": "a-b-password" }))).await,
        400,
    );
    refused(&client.raw("POST", "/user", &[("authorization", &admin)], b"[1,".to_vec()).await, 400);

    // Carol logs in on every surface.
    let carol_basic = basic("carol", "carol-password-1");
    let carol_jwt = jwt_login(&client, "carol", "carol-password-1").await;
    assert_eq!(sessions_status(&client, &carol_basic).await, 200);
    assert_eq!(sessions_status(&client, &carol_jwt).await, 200);
    let minted = call(&client, "POST", "/AccessToken/app", &carol_jwt, Some(&json!({}))).await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let carol_token = format!("Bearer {}", minted.json["data"]["access_token"].as_str().unwrap());
    let info = ok(&call(&client, "GET", "/user/info", &carol_token, None).await, 200);
    assert_eq!(info["user"]["username"], "carol");
    assert_eq!(info["user"]["userId"], carol);
    assert_eq!(info["user"]["roles"], json!(["user"]));
    assert_eq!(
        info["user"]["permissions"],
        json!(["sessions:read", "sessions:connect", "tokens:read", "tokens:write"])
    );

    // Reading users: self, or users:read.
    let me = format!("/user/{carol}");
    let view = ok(&call(&client, "GET", &me, &carol_jwt, None).await, 200);
    assert_eq!(view["username"], "carol");
    assert_eq!(view["password"], "", "never a hash");
    assert_eq!(view["status"], "0");
    let admin_id = ok(&call(&client, "GET", "/user/info", &admin, None).await, 200)["user"]["userId"].as_i64().unwrap();
    refused(&call(&client, "GET", &format!("/user/{admin_id}"), &carol_jwt, None).await, 403);
    refused(&call(&client, "GET", "/user/info?username=admin", &carol_jwt, None).await, 403);
    assert_eq!(
        ok(&call(&client, "GET", "/user/info?username=carol", &admin, None).await, 200)["user"]["userId"],
        carol
    );
    refused(&call(&client, "GET", "/user/info?username=nobody", &admin, None).await, 404);
    refused(&call(&client, "GET", "/user/99999", &admin, None).await, 404);
    refused(&call(&client, "GET", "/user/abc", &admin, None).await, 400);

    // Changing oneself: profile yes, status and name no.
    let profile = json!({ "nickname": "Caz", "email": "carol@example.com", "phone": "123", "sex": "f", "remark": "hi", "avatar": "a.png", "status": "0" });
    let changed = ok(&call(&client, "PUT", &me, &carol_jwt, Some(&profile)).await, 200);
    assert_eq!(changed["nickname"], "Caz");
    assert_eq!(changed["email"], "carol@example.com");
    refused(&call(&client, "PUT", &me, &carol_jwt, Some(&json!({ "status": "1" }))).await, 403);
    refused(&call(&client, "PUT", &me, &carol_jwt, Some(&json!({ "username": "caroline" }))).await, 403);
    refused(
        &call(&client, "PUT", &format!("/user/{admin_id}"), &carol_jwt, Some(&json!({ "nickname": "x" }))).await,
        403,
    );
    refused(&call(&client, "PUT", &me, &carol_jwt, Some(&json!({ "status": "maybe" }))).await, 400);
    refused(&call(&client, "PUT", "/user/99999", &admin, Some(&json!({ "nickname": "x" }))).await, 404);
    refused(&call(&client, "PUT", &me, &admin, Some(&json!({ "username": "admin" }))).await, 409);
    refused(&call(&client, "DELETE", &me, &carol_jwt, None).await, 403);
    refused(&call(&client, "POST", &format!("/user/{carol}/bind"), &carol_jwt, Some(&json!([1]))).await, 403);

    // Binding the guest role takes carol's rights away at once, on every surface.
    let guest = role_id(&client, "guest").await;
    let user_role = role_id(&client, "user").await;
    let bound = ok(&call(&client, "POST", &format!("/user/{carol}/bind"), &admin, Some(&json!([guest]))).await, 200);
    assert_eq!(bound["roles"], json!(["guest"]));
    for credential in [&carol_basic, &carol_jwt, &carol_token] {
        assert_eq!(sessions_status(&client, credential).await, 403);
        assert_eq!(call(&client, "GET", "/test", credential, None).await.status, 403);
    }
    ok(
        &call(&client, "POST", &format!("/user/{carol}/bind"), &admin, Some(&json!([user_role.to_string()]))).await,
        200,
    );
    assert_eq!(sessions_status(&client, &carol_token).await, 200);
    refused(&call(&client, "POST", &format!("/user/{carol}/bind"), &admin, Some(&json!([99999]))).await, 400);
    refused(&call(&client, "POST", "/user/99999/bind", &admin, Some(&json!([user_role]))).await, 404);
    refused(&call(&client, "POST", &format!("/user/{carol}/bind"), &admin, Some(&json!("x"))).await, 400);
    refused(&call(&client, "POST", &format!("/user/{carol}/bind"), &admin, Some(&json!(["x"]))).await, 400);
    let admin_role = role_id(&client, "admin").await;
    refused(&call(&client, "POST", &format!("/user/{admin_id}/bind"), &admin, Some(&json!([user_role]))).await, 409);
    // Last administrator: cannot be disabled or deleted.
    refused(&call(&client, "PUT", &format!("/user/{admin_id}"), &admin, Some(&json!({ "status": "1" }))).await, 409);
    refused(&call(&client, "DELETE", &format!("/user/{admin_id}"), &admin, None).await, 409);
    assert!(admin_role > 0);

    // Disabling carol stops her password, JWT and token at once; enabling brings them back.
    ok(&call(&client, "PUT", &me, &admin, Some(&json!({ "status": "1" }))).await, 200);
    for credential in [&carol_basic, &carol_jwt, &carol_token] {
        assert_eq!(sessions_status(&client, credential).await, 401);
        refused(&call(&client, "GET", "/user/info", credential, None).await, 401);
    }
    assert_eq!(
        client
            .json("POST", "/auth/login", &[], &json!({ "username": "carol", "password": "carol-password-1" }))
            .await
            .status,
        401
    );
    ok(&call(&client, "PUT", &me, &admin, Some(&json!({ "status": "0" }))).await, 200);
    assert_eq!(sessions_status(&client, &carol_jwt).await, 200);

    // Her own password change: the old password stops, the new one works, the token that made
    // the change survives, her other tokens do not.
    let second = call(&client, "POST", "/AccessToken/app", &carol_basic, Some(&json!({}))).await;
    let second = format!("Bearer {}", second.json["data"]["access_token"].as_str().unwrap());
    let empty_keeps = ok(&call(&client, "PUT", &me, &carol_token, Some(&json!({ "password": "" }))).await, 200);
    assert_eq!(empty_keeps["username"], "carol");
    assert_eq!(sessions_status(&client, &carol_basic).await, 200, "an empty password keeps the old one");
    ok(&call(&client, "PUT", &me, &carol_token, Some(&json!({ "password": "carol-password-2" }))).await, 200);
    assert_eq!(sessions_status(&client, &carol_basic).await, 401);
    assert_eq!(sessions_status(&client, &basic("carol", "carol-password-2")).await, 200);
    assert_eq!(sessions_status(&client, &carol_token).await, 200);
    assert_eq!(sessions_status(&client, &second).await, 401);

    // Deleting carol: everything of hers stops.
    let deleted = ok(&call(&client, "DELETE", &me, &admin, None).await, 200);
    assert_eq!(deleted["username"], "carol");
    for credential in [&basic("carol", "carol-password-2"), &carol_jwt, &carol_token] {
        assert_eq!(sessions_status(&client, credential).await, 401);
    }
    refused(&call(&client, "GET", &me, &admin, None).await, 404);
    refused(&call(&client, "DELETE", &me, &admin, None).await, 404);

    // A revoked login (logout) is refused here too.
    let jwt = jwt_login(&client, "admin", ADMIN_PASSWORD).await;
    assert_eq!(call(&client, "GET", "/user/info", &jwt, None).await.status, 200);
    assert_eq!(call(&client, "POST", "/auth/logout", &jwt, None).await.status, 200);
    refused(&call(&client, "GET", "/user/info", &jwt, None).await, 401);
    refused(&call(&client, "GET", "/user/info", &basic("admin", "wrong"), None).await, 401);
    refused(&call(&client, "GET", "/user/info", "", None).await, 401);
}

#[tokio::test]
async fn registration_is_closed_unless_the_config_opens_it() {
    let server = Server::start();
    let client = server.client();
    let body = json!({ "username": "frank", "password": "frank-password-1" });
    refused(&call(&client, "POST", "/user", "", Some(&body)).await, 401);
    create_user(&client, "alice", "alice-password-1").await;
    refused(&call(&client, "POST", "/user", &basic("alice", "alice-password-1"), Some(&body)).await, 403);
    refused(&call(&client, "POST", "/user", &basic("alice", "wrong"), Some(&body)).await, 401);
    let wrong_method = call(&client, "GET", "/user", "", None).await;
    refused(&wrong_method, 405);
    assert_eq!(wrong_method.header("allow"), "POST, OPTIONS");
    drop(server);

    let mut config = default_config();
    config["allow_registration"] = json!(true);
    let server = Server::start_with(config);
    let client = server.client();
    let data = ok(&call(&client, "POST", "/user", "", Some(&body)).await, 201);
    assert_eq!(data["username"], "frank");
    refused(&call(&client, "POST", "/user", "", Some(&body)).await, 400);
    refused(&call(&client, "POST", "/user", "", Some(&json!({ "username": "x", "password": "" }))).await, 400);
    // Self-registered users can sign in, but hold nothing until an administrator binds a role.
    let frank = basic("frank", "frank-password-1");
    let info = ok(&call(&client, "GET", "/user/info", &frank, None).await, 200);
    assert_eq!(info["user"]["roles"], json!(["guest"]));
    assert_eq!(call(&client, "GET", "/test", &frank, None).await.status, 403);
    assert!(!jwt_login(&client, "frank", "frank-password-1").await.is_empty());
    // An administrator creating a user still gives it the user role.
    let grace = create_user(&client, "grace", "grace-password-1").await;
    let view = ok(&call(&client, "GET", &format!("/user/{grace}"), &admin_basic(), None).await, 200);
    assert_eq!(view["roles"], json!(["user"]));
}
