//! The go_ws_sh HTTP API, driven over real HTTP against the real `wssh` binary: every route,
//! every error status, the method-override rule, CORS and the permission model.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{ADMIN_PASSWORD, Server, admin, create_user, login, password_auth, token_auth};

fn bearer(authorization: &Value) -> String {
    format!("Bearer {}", STANDARD.encode(authorization.to_string()))
}

#[tokio::test]
async fn password_login_mints_a_token_shown_once() {
    let server = Server::start();
    let client = server.client();
    let reply =
        client.create("/tokens", &json!({ "authorization": admin(), "token": { "description": "Mozilla/5.0" } })).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["message"], "Login successful");
    assert_eq!(reply.json["username"], "admin");
    let token = &reply.json["token"];
    let secret = token["token"].as_str().unwrap();
    let identifier = token["identifier"].as_str().unwrap();
    assert!(secret.starts_with("wssh_") && secret.len() >= 5 + 64, "{secret}");
    assert!(identifier.bytes().all(|byte| byte.is_ascii_digit()));
    assert_eq!(token["username"], "admin");
    assert_eq!(token["description"], "Mozilla/5.0");

    // The token works on its own, with and without the identifier, and as an opaque Bearer.
    let with_identifier = client.list("/sessions", &json!({ "authorization": token_auth(identifier, secret) })).await;
    assert_eq!(with_identifier.status, 200);
    // Token auth without a username resolves the username from the identifier.
    assert_eq!(with_identifier.json["username"], "admin");
    let opaque = client.json("GET", "/sessions", &[("authorization", &format!("Bearer {secret}"))], &json!({})).await;
    assert_eq!(opaque.status, 200, "{}", opaque.text);

    // The secret is never shown again.
    let listed = client.list("/tokens", &json!({ "authorization": admin() })).await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(secret));
    let tokens = listed.json["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].get("token").is_none());
    assert_eq!(tokens[0]["identifier"], identifier);
}

#[tokio::test]
async fn browser_style_requests_with_header_and_body() {
    let server = Server::start();
    let client = server.client();
    // go_ws_sh_fe sends the same object base64-encoded in the header and in the body.
    let authorization = admin();
    let header = bearer(&authorization);
    let reply = client
        .json(
            "POST",
            "/sessions",
            &[("authorization", &header), ("x-HTTP-method-override", "GET")],
            &json!({ "authorization": authorization }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let sessions = reply.json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["name"], "bash");
    assert_eq!(sessions[0]["args"], json!(["-i"]));
    assert_eq!(sessions[0]["dir"], "/tmp");
    assert!(sessions[0]["created_at"].is_string() && sessions[0]["updated_at"].is_string());

    // The header alone decides: a wrong header fails even with a good body.
    let wrong = bearer(&password_auth("admin", "wrong"));
    let reply = client
        .json(
            "POST",
            "/sessions",
            &[("authorization", &wrong), ("x-HTTP-method-override", "GET")],
            &json!({ "authorization": admin() }),
        )
        .await;
    assert_eq!(reply.status, 401);
    // Basic works too.
    let basic = format!("Basic {}", STANDARD.encode(format!("admin:{ADMIN_PASSWORD}")));
    let reply = client.json("GET", "/sessions", &[("authorization", &basic)], &json!({})).await;
    assert_eq!(reply.status, 200);
    // An undecodable header is 401 "Invalid token".
    let reply = client.json("GET", "/sessions", &[("authorization", "Bearer %%%")], &json!({})).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json["message"], "Error: Invalid token");
}

#[tokio::test]
async fn method_override_rule() {
    let server = Server::start();
    let client = server.client();
    let body = json!({ "authorization": admin(), "session": { "name": "s1", "cmd": "sh" } });
    // POST without an override creates; with POST creates; with GET lists.
    let created = client.json("POST", "/sessions", &[], &body).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["message"], "Session created successfully");
    let body2 = json!({ "authorization": admin(), "session": { "name": "s2", "cmd": "sh" } });
    assert_eq!(client.create("/sessions", &body2).await.status, 200);
    let listed = client.list("/sessions", &json!({ "authorization": admin() })).await;
    assert_eq!(listed.json["sessions"].as_array().unwrap().len(), 3);
    // A real GET with a JSON body lists as well.
    let got =
        client.json("GET", "/sessions", &[], &json!({ "authorization": admin(), "session": { "name": "s1" } })).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json["sessions"].as_array().unwrap().len(), 1);
    // Unknown override values and unknown methods are 405.
    for value in ["PATCH", "get", "DELETE"] {
        let reply = client.json("POST", "/sessions", &[("x-HTTP-method-override", value)], &body).await;
        assert_eq!(reply.status, 405, "override {value}");
        assert!(reply.json["message"].as_str().unwrap().starts_with("Error: "));
    }
    assert_eq!(client.json("PATCH", "/sessions", &[], &body).await.status, 405);
    assert_eq!(client.json("COPY", "/tokens", &[], &body).await.status, 405);
    // PUT, DELETE, COPY and MOVE ignore the header.
    let put = client
        .json(
            "PUT",
            "/sessions",
            &[("x-HTTP-method-override", "GET")],
            &json!({ "authorization": admin(), "session": { "name": "s1", "dir": "/" } }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["session"]["cmd"], "sh", "fields left out keep their values");
    assert_eq!(put.json["session"]["dir"], "/");
}

#[tokio::test]
async fn sessions_crud_copy_move() {
    let server = Server::start();
    let client = server.client();
    let auth = admin();
    let create = |name: &str| json!({ "authorization": auth, "session": { "name": name, "cmd": "bash", "args": ["-l"], "dir": "/tmp" } });
    assert_eq!(client.create("/sessions", &create("work")).await.status, 200);
    let duplicate = client.create("/sessions", &create("work")).await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.json["message"], "Error: Session already exists");

    let copy = client
        .json(
            "COPY",
            "/sessions",
            &[("x-HTTP-method-override", "COPY")],
            &json!({ "authorization": auth, "session": { "name": "work" }, "destination": { "name": "work2" } }),
        )
        .await;
    assert_eq!(copy.status, 200, "{}", copy.text);
    assert_eq!(copy.json["session"]["name"], "work2");
    assert_eq!(copy.json["session"]["args"], json!(["-l"]));
    let copy_again = client
        .json(
            "COPY",
            "/sessions",
            &[],
            &json!({ "authorization": auth, "session": { "name": "work" }, "destination": { "name": "work2" } }),
        )
        .await;
    assert_eq!(copy_again.status, 409);
    let copy_missing = client
        .json(
            "COPY",
            "/sessions",
            &[],
            &json!({ "authorization": auth, "session": { "name": "nope" }, "destination": { "name": "x" } }),
        )
        .await;
    assert_eq!(copy_missing.status, 404);

    let moved = client
        .json(
            "MOVE",
            "/sessions",
            &[],
            &json!({ "authorization": auth, "session": { "name": "work2" }, "destination": { "name": "work3" } }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json["message"], "Session moved successfully");
    let names: Vec<String> = client.list("/sessions", &json!({ "authorization": auth })).await.json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["bash", "work", "work3"]);
    // MOVE refuses initial sessions, as go_ws_sh does.
    let initial = client
        .json(
            "MOVE",
            "/sessions",
            &[],
            &json!({ "authorization": auth, "session": { "name": "bash" }, "destination": { "name": "zsh" } }),
        )
        .await;
    assert_eq!(initial.status, 400);
    let empty_destination = client
        .json(
            "MOVE",
            "/sessions",
            &[],
            &json!({ "authorization": auth, "session": { "name": "work" }, "destination": { "name": "" } }),
        )
        .await;
    assert_eq!(empty_destination.status, 400);

    let missing = client
        .json("PUT", "/sessions", &[], &json!({ "authorization": auth, "session": { "name": "ghost", "cmd": "sh" } }))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["message"], "Error: Session not found");
    let deleted = client
        .json("DELETE", "/sessions", &[], &json!({ "authorization": auth, "session": { "name": "work3" } }))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json["message"], "Session deleted successfully");
    let deleted_again = client
        .json("DELETE", "/sessions", &[], &json!({ "authorization": auth, "session": { "name": "work3" } }))
        .await;
    assert_eq!(deleted_again.status, 404);

    // Validation: no name, no cmd, a slash in the name.
    for session in [json!({ "cmd": "sh" }), json!({ "name": "x" }), json!({ "name": "a/b", "cmd": "sh" })] {
        let reply = client.create("/sessions", &json!({ "authorization": auth, "session": session })).await;
        assert_eq!(reply.status, 400, "{session}");
    }
    // Empty lists are arrays, never null.
    let filtered = client.list("/sessions", &json!({ "authorization": auth, "session": { "name": "none" } })).await;
    assert_eq!(filtered.json["sessions"], json!([]));
}

/// `GET /sessions` with a Bearer token and no body is answered from memory once the token and
/// the list have been read: the same bytes as the stored answer, and every change seen by the
/// next request.
#[tokio::test]
async fn a_listing_from_memory_is_the_stored_one_and_follows_every_change() {
    let server = Server::start();
    let client = server.client();
    let (identifier, secret) = login(&client, "admin", ADMIN_PASSWORD).await;
    let token = format!("Bearer {secret}");
    let basic = format!("Basic {}", STANDARD.encode(format!("admin:{ADMIN_PASSWORD}")));
    // A password is never kept, so a Basic request is always answered from the store.
    let stored = || async { client.raw("GET", "/sessions", &[("authorization", &basic)], Vec::new()).await };
    let listed = || async { client.raw("GET", "/sessions", &[("authorization", &token)], Vec::new()).await };

    for _ in 0..3 {
        let (from_memory, from_store) = (listed().await, stored().await);
        assert_eq!(from_memory.status, 200, "{}", from_memory.text);
        assert_eq!(from_memory.text, from_store.text);
    }

    let created = client
        .create("/sessions", &json!({ "authorization": admin(), "session": { "name": "fresh", "cmd": "sh" } }))
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let after_create = listed().await;
    assert!(after_create.text.contains(r#""name":"fresh""#), "{}", after_create.text);
    assert_eq!(after_create.text, stored().await.text);

    let deleted = client
        .json("DELETE", "/tokens", &[], &json!({ "authorization": admin(), "token": { "identifier": identifier } }))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(listed().await.status, 401);
}

#[tokio::test]
async fn tokens_update_delete_and_logout() {
    let server = Server::start();
    let client = server.client();
    let (identifier, secret) = login(&client, "admin", ADMIN_PASSWORD).await;
    let auth = token_auth(&identifier, &secret);
    let updated = client
        .json(
            "PUT",
            "/tokens",
            &[],
            &json!({ "authorization": auth, "token": { "identifier": identifier, "description": "renamed" } }),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["token"]["description"], "renamed");
    assert_eq!(updated.json["token"]["username"], "admin");
    let no_identifier = client.json("PUT", "/tokens", &[], &json!({ "authorization": auth, "token": {} })).await;
    assert_eq!(no_identifier.status, 400);
    let unknown =
        client.json("PUT", "/tokens", &[], &json!({ "authorization": auth, "token": { "identifier": "1" } })).await;
    assert_eq!(unknown.status, 404);
    // The seed's misspelling `identifer` is understood too.
    let filtered =
        client.list("/tokens", &json!({ "authorization": auth, "token": { "identifer": identifier } })).await;
    assert_eq!(filtered.json["tokens"].as_array().unwrap().len(), 1);
    let none = client.list("/tokens", &json!({ "authorization": auth, "token": { "identifier": "999" } })).await;
    assert_eq!(none.status, 200);
    assert_eq!(none.json["tokens"], json!([]));

    // Logout: DELETE of one's own token; afterwards it no longer works.
    let logout = client
        .json("DELETE", "/tokens", &[], &json!({ "authorization": auth, "token": { "identifier": identifier } }))
        .await;
    assert_eq!(logout.status, 200);
    assert_eq!(logout.json["message"], "Token deleted successfully");
    let after = client.list("/sessions", &json!({ "authorization": auth })).await;
    assert_eq!(after.status, 401);
    let again = client
        .json("DELETE", "/tokens", &[], &json!({ "authorization": admin(), "token": { "identifier": identifier } }))
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn credentials_and_the_permission_model() {
    let server = Server::start();
    let client = server.client();
    create_user(&client, "alice", "alice-password").await;
    create_user(&client, "bob", "bob-password").await;
    let duplicate = client
        .create(
            "/credentials",
            &json!({ "authorization": admin(), "credential": { "username": "alice", "password": "other-pw-42" } }),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    let missing_password = client
        .create("/credentials", &json!({ "authorization": admin(), "credential": { "username": "carol" } }))
        .await;
    assert_eq!(missing_password.status, 400);

    let listed = client.list("/credentials", &json!({ "authorization": admin() })).await;
    assert_eq!(listed.status, 200);
    let names: Vec<&str> =
        listed.json["credentials"].as_array().unwrap().iter().map(|c| c["username"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["admin", "alice", "bob"]);
    assert!(!listed.text.contains("password"), "{}", listed.text);
    assert!(!listed.text.contains("argon2"), "{}", listed.text);

    let alice = password_auth("alice", "alice-password");
    // An ordinary user lists sessions, sees only itself among users, and may not manage others.
    assert_eq!(client.list("/sessions", &json!({ "authorization": alice })).await.status, 200);
    let own = client.list("/credentials", &json!({ "authorization": alice })).await;
    assert_eq!(own.json["credentials"].as_array().unwrap().len(), 1);
    for (method, path, body) in [
        ("POST", "/sessions", json!({ "authorization": alice, "session": { "name": "x", "cmd": "sh" } })),
        ("DELETE", "/sessions", json!({ "authorization": alice, "session": { "name": "bash" } })),
        (
            "POST",
            "/credentials",
            json!({ "authorization": alice, "credential": { "username": "eve", "password": "other-pw-42" } }),
        ),
        (
            "PUT",
            "/credentials",
            json!({ "authorization": alice, "credential": { "username": "bob", "password": "other-pw-42" } }),
        ),
        ("DELETE", "/credentials", json!({ "authorization": alice, "credential": { "username": "bob" } })),
        ("POST", "/tokens", json!({ "authorization": alice, "token": { "username": "bob" } })),
    ] {
        let reply = client.json(method, path, &[], &body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.text);
    }
    // Another user's token is off limits too.
    let (bob_token, _) = login(&client, "bob", "bob-password").await;
    let reply = client
        .json("DELETE", "/tokens", &[], &json!({ "authorization": alice, "token": { "identifier": bob_token } }))
        .await;
    assert_eq!(reply.status, 403);
    let alice_tokens = client.list("/tokens", &json!({ "authorization": alice })).await;
    assert_eq!(alice_tokens.json["tokens"], json!([]), "users see only their own tokens");

    // Alice changes her own password with a token: her other tokens are revoked, the one in use survives.
    let (first, first_secret) = login(&client, "alice", "alice-password").await;
    let (second, second_secret) = login(&client, "alice", "alice-password").await;
    let changed = client
        .json("PUT", "/credentials", &[], &json!({ "authorization": token_auth(&second, &second_secret), "credential": { "username": "alice", "password": "new-password-2" } }))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json["message"], "Password updated successfully");
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": password_auth("alice", "alice-password") })).await.status,
        401
    );
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": password_auth("alice", "new-password-2") })).await.status,
        200
    );
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": token_auth(&first, &first_secret) })).await.status,
        401
    );
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": token_auth(&second, &second_secret) })).await.status,
        200
    );

    // The admin resets bob's password and then deletes bob: bob's tokens die with him.
    let (bob_id, bob_secret) = login(&client, "bob", "bob-password").await;
    let reset = client
        .json(
            "PUT",
            "/credentials",
            &[],
            &json!({ "authorization": admin(), "credential": { "username": "bob", "password": "reset-pw-3" } }),
        )
        .await;
    assert_eq!(reset.status, 200);
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": token_auth(&bob_id, &bob_secret) })).await.status,
        401
    );
    let (bob_id, bob_secret) = login(&client, "bob", "reset-pw-3").await;
    let deleted = client
        .json("DELETE", "/credentials", &[], &json!({ "authorization": admin(), "credential": { "username": "bob" } }))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json["message"], "Credential deleted successfully");
    assert_eq!(
        client.list("/sessions", &json!({ "authorization": token_auth(&bob_id, &bob_secret) })).await.status,
        401
    );
    let gone = client
        .json("DELETE", "/credentials", &[], &json!({ "authorization": admin(), "credential": { "username": "bob" } }))
        .await;
    assert_eq!(gone.status, 404);
    let unknown_user = client
        .json(
            "PUT",
            "/credentials",
            &[],
            &json!({ "authorization": admin(), "credential": { "username": "nobody", "password": "other-pw-42" } }),
        )
        .await;
    assert_eq!(unknown_user.status, 404);
    // The last administrator cannot be deleted.
    let last = client
        .json(
            "DELETE",
            "/credentials",
            &[],
            &json!({ "authorization": admin(), "credential": { "username": "admin" } }),
        )
        .await;
    assert_eq!(last.status, 409);
}

#[tokio::test]
async fn client_errors_get_the_envelope_and_the_right_status() {
    let server = Server::start();
    let client = server.client();
    let malformed = client.raw("POST", "/sessions", &[("x-HTTP-method-override", "GET")], b"{not json".to_vec()).await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.json["message"].as_str().unwrap().starts_with("Error: "));
    let wrong_shape =
        client.json("POST", "/sessions", &[], &json!({ "authorization": admin(), "session": { "name": 5 } })).await;
    assert_eq!(wrong_shape.status, 400);
    let no_credentials = client.list("/sessions", &json!({})).await;
    assert_eq!(no_credentials.status, 401);
    let empty_body = client.raw("POST", "/sessions", &[("x-HTTP-method-override", "GET")], Vec::new()).await;
    assert_eq!(empty_body.status, 401);
    // Unknown user and wrong password get the very same answer.
    let unknown = client.list("/sessions", &json!({ "authorization": password_auth("ghost", "x") })).await;
    let wrong = client.list("/sessions", &json!({ "authorization": password_auth("admin", "x") })).await;
    assert_eq!((unknown.status, &unknown.text), (wrong.status, &wrong.text));
    assert_eq!(wrong.json["message"], "Error: Invalid credentials");
    let not_found = client.raw("GET", "/nowhere", &[], Vec::new()).await;
    assert_eq!(not_found.status, 404);
    assert!(not_found.json["message"].is_string());
    let huge = vec![b' '; 1024 * 1024 + 10];
    let too_large = client.raw("POST", "/sessions", &[], huge).await;
    assert_eq!(too_large.status, 413);
    assert!(too_large.json["message"].is_string());
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let server = Server::start();
    let client = server.client();
    let preflight = client
        .raw(
            "OPTIONS",
            "/sessions",
            &[
                ("origin", "http://localhost:60001"),
                ("access-control-request-method", "COPY"),
                ("access-control-request-headers", "authorization,content-type,x-http-method-override"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), "*");
    let methods = preflight.header("access-control-allow-methods");
    for method in ["GET", "POST", "PUT", "DELETE", "COPY", "MOVE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = preflight.header("access-control-allow-headers").to_ascii_lowercase();
    for header in ["authorization", "content-type", "x-http-method-override"] {
        assert!(headers.contains(header), "{headers}");
    }
    // Errors carry CORS headers too, so a browser can read them.
    let error = client.json("POST", "/sessions", &[("origin", "http://elsewhere")], &json!({})).await;
    assert_eq!(error.status, 401);
    assert_eq!(error.header("access-control-allow-origin"), "*");
}

#[tokio::test]
async fn repeated_failures_lock_the_user_out() {
    let server = Server::start();
    let client = server.client();
    for attempt in 0..10 {
        let reply = client.list("/sessions", &json!({ "authorization": password_auth("admin", "wrong") })).await;
        assert_eq!(reply.status, 401, "attempt {attempt}");
    }
    // Now even the right password is refused, with 429 and Retry-After.
    let locked = client.list("/sessions", &json!({ "authorization": admin() })).await;
    assert_eq!(locked.status, 429);
    assert!(locked.header("retry-after").parse::<u64>().unwrap() > 0);
    assert!(locked.json["message"].as_str().unwrap().starts_with("Error: "));
}
