//! The login API of seed 004 against the real binary: login, refresh-token rotation, replay
//! detection, logout, `GET /test`, and the access JWT working on the other surfaces.

mod support;

use serde_json::json;
use support::{ADMIN_PASSWORD, Server, create_user};

async fn login(server: &Server, username: &str, password: &str) -> support::Reply {
    server.client().json("POST", "/auth/login", &[], &json!({ "username": username, "password": password })).await
}

fn bearer(reply: &support::Reply) -> String {
    reply.header("authorization").to_owned()
}

#[tokio::test]
async fn login_refresh_logout_lifecycle() {
    let server = Server::start();
    let client = server.client();

    let reply = login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["code"], 200);
    let access = bearer(&reply);
    assert!(access.starts_with("Bearer ey"), "{access}");
    assert_eq!(reply.json["data"]["token"].as_str().map(|token| format!("Bearer {token}")), Some(access.clone()));
    let refresh = reply.header("x-refresh-token").to_owned();
    assert!(!refresh.is_empty());
    let cookie = reply.header("set-cookie");
    assert!(cookie.starts_with(&format!("token={refresh}")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");

    // The access JWT works here and on the go_ws_sh API.
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access)], Vec::new()).await.status, 204);
    let sessions = client.json("GET", "/sessions", &[("authorization", &access)], &json!({})).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    assert_eq!(sessions.json["username"], "admin");

    // Rotation: the new pair works, the old refresh token is spent.
    let rotated = client.raw("POST", "/auth/session", &[("x-refresh-token", &refresh)], Vec::new()).await;
    assert_eq!(rotated.status, 204, "{}", rotated.text);
    let refresh2 = rotated.header("x-refresh-token").to_owned();
    let access2 = bearer(&rotated);
    assert_ne!(refresh2, refresh);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access2)], Vec::new()).await.status, 204);
    // The cookie alone works too.
    let by_cookie =
        client.raw("POST", "/auth/session", &[("cookie", &format!("other=1; token={refresh2}"))], Vec::new()).await;
    assert_eq!(by_cookie.status, 204);
    let refresh3 = by_cookie.header("x-refresh-token").to_owned();

    // Replaying a spent refresh token is theft: refused, and the whole family is revoked.
    let replay = client.raw("POST", "/auth/session", &[("x-refresh-token", &refresh)], Vec::new()).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.json["code"], 401);
    assert!(replay.json["data"].is_null());
    let after_theft = client.raw("POST", "/auth/session", &[("x-refresh-token", &refresh3)], Vec::new()).await;
    assert_eq!(after_theft.status, 401);
    let access3 = bearer(&by_cookie);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access3)], Vec::new()).await.status, 401);

    // Logout ends a login at once: its access token and refresh token stop working.
    let fresh = login(&server, "admin", ADMIN_PASSWORD).await;
    let (access, refresh) = (bearer(&fresh), fresh.header("x-refresh-token").to_owned());
    let logout = client
        .raw("POST", "/auth/logout", &[("authorization", &access), ("x-refresh-token", &refresh)], Vec::new())
        .await;
    assert_eq!(logout.status, 200, "{}", logout.text);
    assert!(logout.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access)], Vec::new()).await.status, 401);
    assert_eq!(client.raw("POST", "/auth/session", &[("x-refresh-token", &refresh)], Vec::new()).await.status, 401);
    assert_eq!(client.json("GET", "/sessions", &[("authorization", &access)], &json!({})).await.status, 401);
    // Logout with only the access token works too.
    let fresh = login(&server, "admin", ADMIN_PASSWORD).await;
    let access = bearer(&fresh);
    assert_eq!(client.raw("POST", "/auth/logout", &[("authorization", &access)], Vec::new()).await.status, 200);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access)], Vec::new()).await.status, 401);
}

#[tokio::test]
async fn refusals_in_the_seed_envelope() {
    let server = Server::start();
    let client = server.client();
    let wrong = login(&server, "admin", "wrong").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["code"], 401);
    assert!(wrong.json["message"].is_string());
    assert!(wrong.json["data"].is_null());
    assert_eq!(login(&server, "ghost", "x").await.text, wrong.text, "unknown user and wrong password look alike");
    let malformed = client.raw("POST", "/auth/login", &[], b"{oops".to_vec()).await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json["code"], 400);
    let empty = client.json("POST", "/auth/login", &[], &json!({ "username": "admin" })).await;
    assert_eq!(empty.status, 400);
    assert_eq!(client.raw("GET", "/auth/login", &[], Vec::new()).await.status, 405);
    assert_eq!(client.raw("POST", "/auth/session", &[], Vec::new()).await.status, 401);
    assert_eq!(client.raw("POST", "/auth/session", &[("x-refresh-token", "wsshr_nope")], Vec::new()).await.status, 401);
    assert_eq!(client.raw("POST", "/auth/logout", &[], Vec::new()).await.status, 401);
    assert_eq!(client.raw("GET", "/test", &[], Vec::new()).await.status, 401);
    let forged = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwic2lkIjoieCIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl";
    assert_eq!(client.raw("GET", "/test", &[("authorization", forged)], Vec::new()).await.status, 401);

    // An ordinary user passes /test too; users created anywhere log in here.
    create_user(&client, "alice", "alice-password").await;
    let alice = login(&server, "alice", "alice-password").await;
    assert_eq!(alice.status, 200);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &bearer(&alice))], Vec::new()).await.status, 204);
}

#[tokio::test]
async fn the_signing_key_survives_a_restart_and_logins_too() {
    let server = Server::start();
    let reply = login(&server, "admin", ADMIN_PASSWORD).await;
    let (access, refresh) = (bearer(&reply), reply.header("x-refresh-token").to_owned());
    let server = server.restart();
    let client = server.client();
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access)], Vec::new()).await.status, 204);
    assert_eq!(client.raw("POST", "/auth/session", &[("x-refresh-token", &refresh)], Vec::new()).await.status, 204);
}

#[tokio::test]
async fn a_refresh_token_from_another_user_agent_is_refused_and_its_login_revoked() {
    let server = Server::start();
    let client = server.client();
    let body = serde_json::to_vec(&json!({ "username": "admin", "password": ADMIN_PASSWORD })).unwrap();
    let headers = [("content-type", "application/json"), ("user-agent", "browser-a/1.0")];
    let reply = client.raw("POST", "/auth/login", &headers, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let access = bearer(&reply);
    let refresh = reply.header("x-refresh-token").to_owned();

    // From the same client, rotation works.
    let same = [("x-refresh-token", refresh.as_str()), ("user-agent", "browser-a/1.0")];
    let rotated = client.raw("POST", "/auth/session", &same, Vec::new()).await;
    assert_eq!(rotated.status, 204, "{}", rotated.text);
    let refresh2 = rotated.header("x-refresh-token").to_owned();

    // From another user agent: 403, and the login is over for everyone.
    let other = [("x-refresh-token", refresh2.as_str()), ("user-agent", "curl/8.0")];
    let stolen = client.raw("POST", "/auth/session", &other, Vec::new()).await;
    assert_eq!(stolen.status, 403, "{}", stolen.text);
    assert_eq!(stolen.json["code"], 403);
    let back = [("x-refresh-token", refresh2.as_str()), ("user-agent", "browser-a/1.0")];
    assert_eq!(client.raw("POST", "/auth/session", &back, Vec::new()).await.status, 401);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access)], Vec::new()).await.status, 401);
}

#[tokio::test]
async fn every_401_of_the_login_api_carries_a_challenge() {
    let server = Server::start();
    let client = server.client();
    let refusals = [
        login(&server, "admin", "wrong").await,
        client.raw("GET", "/test", &[], Vec::new()).await,
        client.raw("POST", "/auth/session", &[("x-refresh-token", "wsshr_nope")], Vec::new()).await,
        client.raw("POST", "/auth/logout", &[], Vec::new()).await,
    ];
    for reply in refusals {
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"wssh\"");
    }
}

#[tokio::test]
async fn a_password_change_ends_the_users_other_logins_on_every_surface() {
    let server = Server::start();
    let client = server.client();
    create_user(&client, "alice", "alice-password").await;
    let alist_login = |password: &'static str| {
        let client = server.client();
        async move {
            let reply = client
                .json("POST", "/api/auth/login", &[], &json!({ "username": "alice", "password": password }))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.json["data"]["token"].as_str().unwrap().to_owned()
        }
    };
    let test = |authorization: String| {
        let client = server.client();
        async move { client.raw("GET", "/test", &[("authorization", &authorization)], Vec::new()).await.status }
    };

    // An administrator resets the password: every login of the user ends at once.
    let alist_jwt = alist_login("alice-password").await;
    let reply = login(&server, "alice", "alice-password").await;
    let (access, refresh) = (bearer(&reply), reply.header("x-refresh-token").to_owned());
    let admin = bearer(&login(&server, "admin", ADMIN_PASSWORD).await);
    let info = client.raw("GET", "/user/info?username=alice", &[("authorization", &admin)], Vec::new()).await;
    let uid = info.json["data"]["user"]["userId"].as_i64().unwrap();
    let reset = client
        .json("PUT", &format!("/user/{uid}"), &[("authorization", &admin)], &json!({ "password": "reset-password" }))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(test(alist_jwt).await, 401, "the alist JWT died with the old password");
    assert_eq!(test(access).await, 401, "the seed 004 access JWT died with the old password");
    assert_eq!(client.raw("POST", "/auth/session", &[("x-refresh-token", &refresh)], Vec::new()).await.status, 401);

    // Changing one's own password keeps the login it was changed with, and ends the others.
    let other = alist_login("reset-password").await;
    let own = alist_login("reset-password").await;
    let change = client
        .json(
            "POST",
            "/api/admin/user/update",
            &[("authorization", &admin)],
            &json!({ "id": uid, "password": "x-password-9" }),
        )
        .await;
    assert_eq!(change.status, 200, "{}", change.text);
    assert_eq!(test(own.clone()).await, 401, "an administrator's reset spares nothing");
    let own = alist_login("x-password-9").await;
    let other_after = alist_login("x-password-9").await;
    let changed = client
        .json("PUT", &format!("/user/{uid}"), &[("authorization", &own)], &json!({ "password": "mine-now-42" }))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(test(own).await, 204, "the login that changed the password survives");
    assert_eq!(test(other_after).await, 401);
    assert_eq!(test(other).await, 401);
}
