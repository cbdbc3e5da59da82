//! The alist-style surfaces (seeds 001 and 003) against the real binary: logins with a password
//! and with alist's password digest, 48-hour JWTs in both header forms, TOTP two-factor
//! authentication checked with an independent RFC 6238 implementation, `/api/me`, SSH keys
//! fingerprinted as `ssh-keygen -l` prints them, user administration, and one identity across
//! every surface (users, tokens, disabling and deleting).

mod support;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{ADMIN_PASSWORD, Client, Reply, Server, admin, create_user, login, password_auth, token_auth};

/// What alist appends to a password before hashing it for `/api/auth/login/hash`.
const DIGEST_SUFFIX: &str = "-https://github.com/alist-org/alist";

// ---------------------------------------------------------------------------------------------
// Independent implementations: alist's digest, base32, RFC 6238 TOTP, an HS256 JWT.

/// alist's `sha256(password + "-https://github.com/alist-org/alist")`, lowercase hex.
fn digest(password: &str) -> String {
    Sha256::digest(format!("{password}{DIGEST_SUFFIX}").as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// RFC 4648 base32 without padding.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut buffer, mut out) = (0u32, 0u64, Vec::new());
    for byte in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&c| c == byte.to_ascii_uppercase()).expect("base32 digit");
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The 6-digit RFC 6238 code (HMAC-SHA-1, 30-second steps) of `key` for time step `step`.
fn totp_at_step(key: &[u8], step: u64) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let number = u32::from_be_bytes([hash[offset] & 0x7f, hash[offset + 1], hash[offset + 2], hash[offset + 3]]);
    format!("{:06}", number % 1_000_000)
}

/// The code of the base32 `secret` for time step `step`.
fn totp(secret: &str, step: u64) -> String {
    totp_at_step(&base32_decode(secret), step)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The current 30-second step, waiting out the last five seconds of a step first so that the
/// codes computed from it stay within the server's one-step window for the test's duration.
fn fresh_step() -> u64 {
    let now = unix_now();
    if now % 30 >= 25 {
        std::thread::sleep(Duration::from_secs(30 - now % 30));
    }
    unix_now() / 30
}

#[test]
fn the_test_totp_matches_rfc_6238() {
    // RFC 6238 appendix B, SHA-1: the last six digits of the eight-digit codes.
    let key = b"12345678901234567890";
    for (time, code) in
        [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
    {
        assert_eq!(totp_at_step(key, time / 30), code);
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), key);
    // sha256("admin-https://github.com/alist-org/alist")
    assert_eq!(digest("admin"), "6fcb57cd10b2c11d765dcf16148d99130afd895082af83725ee8bb181b1d2b0f");
}

/// An HS256 JWT of `claims` signed with `key`.
fn sign_jwt(claims: &Value, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Calls.

async fn alist_login(client: &Client, username: &str, password: &str) -> Reply {
    client.json("POST", "/api/auth/login", &[], &json!({ "username": username, "password": password })).await
}

async fn alist_login_otp(client: &Client, username: &str, password: &str, otp: &str) -> Reply {
    let body = json!({ "username": username, "password": password, "otp_code": otp });
    client.json("POST", "/api/auth/login", &[], &body).await
}

async fn hash_login(client: &Client, username: &str, password_digest: &str) -> Reply {
    client
        .json("POST", "/api/auth/login/hash", &[], &json!({ "username": username, "password": password_digest }))
        .await
}

/// The JWT of a successful alist login.
fn jwt_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["code"], 200);
    assert_eq!(reply.json["message"], "success");
    reply.json["data"]["token"].as_str().expect("data.token").to_owned()
}

async fn admin_jwt(client: &Client) -> String {
    jwt_of(&alist_login(client, "admin", ADMIN_PASSWORD).await)
}

async fn get(client: &Client, path: &str, authorization: &str) -> Reply {
    client.raw("GET", path, &[("authorization", authorization)], Vec::new()).await
}

async fn post(client: &Client, path: &str, authorization: &str, body: &Value) -> Reply {
    client.json("POST", path, &[("authorization", authorization)], body).await
}

async fn post_empty(client: &Client, path: &str, authorization: &str) -> Reply {
    client.raw("POST", path, &[("authorization", authorization)], Vec::new()).await
}

/// Asserts a success with `data: null`.
fn assert_done(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json, json!({ "code": 200, "message": "success", "data": null }));
}

/// Asserts an error in alist's envelope with `status`.
fn assert_refused(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["code"], status, "{}", reply.text);
    assert!(reply.json["data"].is_null(), "{}", reply.text);
    assert!(!reply.json["message"].as_str().unwrap_or_default().is_empty(), "{}", reply.text);
}

/// Creates a user through `/api/admin/user/create` as the admin.
async fn alist_create(client: &Client, admin_jwt: &str, user: Value) {
    assert_done(&post(client, "/api/admin/user/create", admin_jwt, &user).await);
}

/// The id of `username`, from the admin list.
async fn user_id(client: &Client, admin_jwt: &str, username: &str) -> i64 {
    let list = get(client, "/api/admin/user/list", admin_jwt).await;
    list.json["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|user| user["username"] == username)
        .and_then(|user| user["id"].as_i64())
        .unwrap_or_else(|| panic!("{username} is listed: {}", list.text))
}

// ---------------------------------------------------------------------------------------------
// Seed 001.

#[tokio::test]
async fn logins_give_a_48_hour_jwt_accepted_bare_and_as_bearer_everywhere() {
    let server = Server::start();
    let client = server.client();

    let jwt = admin_jwt(&client).await;
    let claims = jwt_claims(&jwt);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 48 * 3600);
    for authorization in [jwt.clone(), format!("Bearer {jwt}")] {
        let me = get(&client, "/api/me", &authorization).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(
            me.json["data"],
            json!({
                "id": me.json["data"]["id"], "username": "admin", "password": "", "base_path": "/", "role": 2,
                "disabled": false, "permission": 0, "sso_id": "", "otp": false
            })
        );
        assert!(me.json["data"]["id"].is_i64());
        assert!(!me.text.contains("argon2"), "no hash in {}", me.text);
    }
    // The same JWT works on go_ws_sh's API and seed 004's.
    let sessions = client.json("GET", "/sessions", &[("authorization", &jwt)], &json!({})).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    let bearer = format!("Bearer {jwt}");
    assert_eq!(client.raw("GET", "/test", &[("authorization", &bearer)], Vec::new()).await.status, 204);

    // alist's digest login, for the seeded administrator too; the hex may be upper case.
    let hashed = jwt_of(&hash_login(&client, "admin", &digest(ADMIN_PASSWORD)).await);
    assert_eq!(get(&client, "/api/me", &hashed).await.json["data"]["username"], "admin");
    jwt_of(&hash_login(&client, "admin", &digest(ADMIN_PASSWORD).to_uppercase()).await);

    // Refusals, in alist's envelope with the status as code.
    let wrong = alist_login(&client, "admin", "wrong").await;
    assert_refused(&wrong, 401);
    assert_eq!(alist_login(&client, "ghost", "wrong").await.text, wrong.text, "unknown user looks like wrong password");
    assert_refused(&hash_login(&client, "admin", ADMIN_PASSWORD).await, 401);
    assert_refused(&hash_login(&client, "admin", &digest("wrong")).await, 401);
    assert_refused(&hash_login(&client, "ghost", &digest(ADMIN_PASSWORD)).await, 401);
    assert_refused(&client.raw("POST", "/api/auth/login", &[], b"{oops".to_vec()).await, 400);
    assert_refused(&client.raw("POST", "/api/auth/login", &[], Vec::new()).await, 400);
    assert_refused(&client.json("POST", "/api/auth/login", &[], &json!({ "username": "admin" })).await, 400);
    assert_refused(&client.json("POST", "/api/auth/login/hash", &[], &json!({ "password": "x" })).await, 400);
    let not_allowed = client.raw("GET", "/api/auth/login", &[], Vec::new()).await;
    assert_refused(&not_allowed, 405);
    assert_eq!(not_allowed.header("allow"), "POST, OPTIONS");
    let not_allowed = client.raw("POST", "/api/me", &[("authorization", &jwt)], Vec::new()).await;
    assert_refused(&not_allowed, 405);
    assert_eq!(not_allowed.header("allow"), "GET, OPTIONS");
    assert_refused(&client.raw("GET", "/api/me", &[], Vec::new()).await, 401);
    assert_refused(&get(&client, "/api/me", "garbage").await, 401);
    let foreign = sign_jwt(&claims, b"some other key, not the server's");
    assert_refused(&get(&client, "/api/me", &foreign).await, 401);
    assert_refused(&get(&client, "/api/nope", &jwt).await, 404);
}

#[tokio::test]
async fn expired_and_revoked_jwts_are_refused() {
    let server = Server::start();
    let client = server.client();
    let jwt = admin_jwt(&client).await;
    let key = server.setting("jwt_signing_key");
    // A token signed with the server's key for the same login works while it is in date...
    let mut claims = jwt_claims(&jwt);
    let now = i64::try_from(unix_now()).unwrap();
    claims["iat"] = json!(now - 100);
    claims["exp"] = json!(now + 100);
    assert_eq!(get(&client, "/api/me", &sign_jwt(&claims, &key)).await.status, 200);
    // ...and not once expired.
    claims["exp"] = json!(now - 10);
    assert_refused(&get(&client, "/api/me", &sign_jwt(&claims, &key)).await, 401);

    // Logging out (seed 004's route, with the alist JWT) revokes the login at once.
    assert_eq!(client.raw("POST", "/auth/logout", &[("authorization", &jwt)], Vec::new()).await.status, 200);
    assert_refused(&get(&client, "/api/me", &jwt).await, 401);
    claims["exp"] = json!(now + 100);
    assert_refused(&get(&client, "/api/me", &sign_jwt(&claims, &key)).await, 401);
}

#[tokio::test]
async fn the_digest_login_follows_the_password_wherever_it_is_set() {
    let server = Server::start();
    let client = server.client();
    let jwt = admin_jwt(&client).await;

    // Created on go_ws_sh's API.
    create_user(&client, "bob", "bob-password-1").await;
    jwt_of(&hash_login(&client, "bob", &digest("bob-password-1")).await);
    let change = json!({ "authorization": admin(), "credential": { "username": "bob", "password": "bob-password-2" } });
    assert_eq!(client.json("PUT", "/credentials", &[], &change).await.status, 200);
    assert_refused(&hash_login(&client, "bob", &digest("bob-password-1")).await, 401);
    jwt_of(&hash_login(&client, "bob", &digest("bob-password-2")).await);

    // Created and changed here.
    alist_create(&client, &jwt, json!({ "username": "carol", "password": "carol-pw-1" })).await;
    jwt_of(&hash_login(&client, "carol", &digest("carol-pw-1")).await);
    let id = user_id(&client, &jwt, "carol").await;
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &json!({ "id": id, "password": "carol-pw-2" })).await);
    assert_refused(&hash_login(&client, "carol", &digest("carol-pw-1")).await, 401);
    assert_refused(&alist_login(&client, "carol", "carol-pw-1").await, 401);
    jwt_of(&hash_login(&client, "carol", &digest("carol-pw-2")).await);
    jwt_of(&alist_login(&client, "carol", "carol-pw-2").await);
    // An empty password in an update keeps the current one.
    let keep = json!({ "id": id, "password": "", "base_path": "/carol" });
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &keep).await);
    jwt_of(&hash_login(&client, "carol", &digest("carol-pw-2")).await);
}

#[tokio::test]
async fn two_factor_authentication_with_independently_computed_codes() {
    let server = Server::start();
    let client = server.client();
    let admin_jwt = admin_jwt(&client).await;
    alist_create(&client, &admin_jwt, json!({ "username": "dave", "password": "dave-pw-1" })).await;
    let jwt = jwt_of(&alist_login(&client, "dave", "dave-pw-1").await);

    let generated = post_empty(&client, "/api/auth/2fa/generate", &jwt).await;
    assert_eq!(generated.status, 200, "{}", generated.text);
    let secret = generated.json["data"]["secret"].as_str().unwrap().to_owned();
    assert!(base32_decode(&secret).len() >= 16, "{secret}");
    let qr = generated.json["data"]["qr"].as_str().unwrap();
    let png = STANDARD.decode(qr.strip_prefix("data:image/png;base64,").expect("a PNG data URL")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    assert_refused(&post_empty(&client, "/api/auth/2fa/generate", "").await, 401);

    let step = fresh_step();
    let codes: Vec<String> = (0..4).map(|offset| totp(&secret, step - 1 + offset)).collect();
    let wrong = ["000000", "111111", "222222", "333333", "444444"]
        .into_iter()
        .find(|candidate| codes.iter().all(|code| code != candidate))
        .unwrap();
    let verify = |code: &str, secret: &str| json!({ "code": code, "secret": secret });
    assert_refused(&post(&client, "/api/auth/2fa/verify", &jwt, &verify(wrong, &secret)).await, 400);
    assert_refused(&post(&client, "/api/auth/2fa/verify", &jwt, &json!({ "code": codes[1] })).await, 400);
    assert_refused(&post(&client, "/api/auth/2fa/verify", &jwt, &verify(&codes[1], "not base32!")).await, 400);
    assert_refused(&client.raw("POST", "/api/auth/2fa/verify", &[("authorization", &jwt)], b"{".to_vec()).await, 400);
    assert_refused(&post(&client, "/api/auth/2fa/verify", "", &verify(&codes[1], &secret)).await, 401);
    // Still off after the failures.
    assert_eq!(get(&client, "/api/me", &jwt).await.json["data"]["otp"], false);
    jwt_of(&alist_login(&client, "dave", "dave-pw-1").await);

    // The previous step's code is within the window: it turns two-factor on.
    assert_done(&post(&client, "/api/auth/2fa/verify", &jwt, &verify(&codes[0], &secret)).await);
    assert_eq!(get(&client, "/api/me", &jwt).await.json["data"]["otp"], true);
    assert_refused(&post_empty(&client, "/api/auth/2fa/generate", &jwt).await, 400);
    assert_refused(&post(&client, "/api/auth/2fa/verify", &jwt, &verify(&codes[1], &secret)).await, 400);

    // Every password login now needs a fresh code, on every surface.
    let missing = alist_login(&client, "dave", "dave-pw-1").await;
    assert_refused(&missing, 401);
    assert_eq!(missing.json["message"], "Two-factor code required");
    let replayed = alist_login_otp(&client, "dave", "dave-pw-1", &codes[0]).await;
    assert_refused(&replayed, 401);
    assert_eq!(replayed.json["message"], "Invalid 2FA code");
    assert_refused(&alist_login_otp(&client, "dave", "dave-pw-1", wrong).await, 401);
    assert_refused(&alist_login_otp(&client, "dave", "wrong", &codes[1]).await, 401);
    let with_code = alist_login_otp(&client, "dave", "dave-pw-1", &codes[1]).await;
    jwt_of(&with_code);
    assert_refused(&alist_login_otp(&client, "dave", "dave-pw-1", &codes[1]).await, 401);
    let digest_login = json!({ "username": "dave", "password": digest("dave-pw-1"), "otp_code": codes[1] });
    assert_refused(&client.json("POST", "/api/auth/login/hash", &[], &digest_login).await, 401);

    // go_ws_sh's authorization object carries the code as otp_code.
    let no_code = json!({ "authorization": password_auth("dave", "dave-pw-1") });
    assert_eq!(client.list("/sessions", &no_code).await.status, 401);
    let mut with_next = password_auth("dave", "dave-pw-1");
    with_next["otp_code"] = json!(codes[2]);
    let sessions = client.list("/sessions", &json!({ "authorization": with_next })).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    assert_eq!(client.list("/sessions", &json!({ "authorization": with_next })).await.status, 401, "replayed");
    // Seed 004's login too, and Basic (which cannot carry a code).
    let login_004 = json!({ "username": "dave", "password": "dave-pw-1" });
    assert_eq!(client.json("POST", "/auth/login", &[], &login_004).await.status, 401);
    let basic = format!("Basic {}", STANDARD.encode("dave:dave-pw-1"));
    assert_eq!(client.json("GET", "/sessions", &[("authorization", &basic)], &json!({})).await.status, 401);
    // Tokens and JWTs need no code.
    assert_eq!(get(&client, "/api/me", &jwt).await.status, 200);

    // An administrator turns it off; only users:write may.
    let id = user_id(&client, &admin_jwt, "dave").await;
    let cancel = format!("/api/admin/user/cancel_2fa?id={id}");
    assert_refused(&post_empty(&client, &cancel, &jwt).await, 403);
    assert_done(&post_empty(&client, &cancel, &admin_jwt).await);
    assert_eq!(get(&client, "/api/me", &jwt).await.json["data"]["otp"], false);
    jwt_of(&alist_login(&client, "dave", "dave-pw-1").await);
    assert_refused(&post_empty(&client, "/api/admin/user/cancel_2fa?id=999999", &admin_jwt).await, 404);
    assert_refused(&post_empty(&client, "/api/admin/user/cancel_2fa", &admin_jwt).await, 400);
}

/// Generates a key pair with `ssh-keygen` and returns (public key line, fingerprint as
/// `ssh-keygen -l` prints it).
fn ssh_keygen(dir: &std::path::Path, name: &str, args: &[&str]) -> (String, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs (package openssh-client)");
    assert!(status.success());
    let listed = Command::new("ssh-keygen").arg("-l").arg("-f").arg(path.with_extension("pub")).output().unwrap();
    assert!(listed.status.success());
    let fingerprint = String::from_utf8(listed.stdout).unwrap().split_whitespace().nth(1).unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    (std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_owned(), fingerprint)
}

#[tokio::test]
async fn ssh_keys_are_validated_and_fingerprinted_as_ssh_keygen_does() {
    let server = Server::start();
    let client = server.client();
    let admin_jwt = admin_jwt(&client).await;
    alist_create(&client, &admin_jwt, json!({ "username": "erin", "password": "erin-pw-1" })).await;
    let erin = jwt_of(&alist_login(&client, "erin", "erin-pw-1").await);
    let keys_dir = tempfile::tempdir().unwrap();
    let generated = [
        ssh_keygen(keys_dir.path(), "id_ed25519", &["-t", "ed25519"]),
        ssh_keygen(keys_dir.path(), "id_rsa", &["-t", "rsa", "-b", "2048"]),
        ssh_keygen(keys_dir.path(), "id_ecdsa", &["-t", "ecdsa", "-b", "256"]),
    ];
    for (index, (key, _)) in generated.iter().enumerate() {
        let body = json!({ "title": format!("key {index}"), "key": key });
        assert_done(&post(&client, "/api/me/sshkey/add", &erin, &body).await);
    }
    let list = get(&client, "/api/me/sshkey/list", &erin).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["data"]["total"], 3);
    let content = list.json["data"]["content"].as_array().unwrap();
    for (index, ((_, fingerprint), listed)) in generated.iter().zip(content).enumerate() {
        assert_eq!(listed["title"], format!("key {index}"));
        assert_eq!(listed["fingerprint"], fingerprint.as_str());
        assert!(listed["id"].is_i64());
        assert!(listed["added_time"].as_str().unwrap().ends_with('Z'), "{listed}");
        assert_eq!(listed["last_used_time"], "0001-01-01T00:00:00Z");
    }

    // Refusals.
    let duplicate = json!({ "title": "again", "key": generated[0].0 });
    assert_refused(&post(&client, "/api/me/sshkey/add", &erin, &duplicate).await, 409);
    for malformed in
        ["ssh-ed25519 AAAA", "not a key", &generated[0].0.replacen("ssh-ed25519", "ssh-rsa", 1), &generated[0].0[..40]]
    {
        let body = json!({ "title": "bad", "key": malformed });
        assert_refused(&post(&client, "/api/me/sshkey/add", &erin, &body).await, 400);
    }
    assert_refused(&post(&client, "/api/me/sshkey/add", &erin, &json!({ "key": generated[0].0 })).await, 400);
    assert_refused(&post(&client, "/api/me/sshkey/add", &erin, &json!({ "title": "t", "key": 5 })).await, 400);
    assert_refused(
        &post(&client, "/api/me/sshkey/add", "", &json!({ "title": "t", "key": generated[0].0 })).await,
        401,
    );
    assert_refused(&get(&client, "/api/me/sshkey/list", "").await, 401);

    // Keys are per user: the admin sees none of erin's, cannot delete them, may add the same key.
    let first = content[0]["id"].as_i64().unwrap();
    let admin_list = get(&client, "/api/me/sshkey/list", &admin_jwt).await;
    assert_eq!(admin_list.json["data"], json!({ "content": [], "total": 0 }));
    let delete_first = format!("/api/me/sshkey/delete?id={first}");
    assert_refused(&post_empty(&client, &delete_first, &admin_jwt).await, 404);
    assert_done(&post(&client, "/api/me/sshkey/add", &admin_jwt, &duplicate).await);

    assert_done(&post_empty(&client, &delete_first, &erin).await);
    assert_refused(&post_empty(&client, &delete_first, &erin).await, 404);
    assert_eq!(get(&client, "/api/me/sshkey/list", &erin).await.json["data"]["total"], 2);
    assert_refused(&post_empty(&client, "/api/me/sshkey/delete", &erin).await, 400);
    assert_refused(&post_empty(&client, "/api/me/sshkey/delete?id=abc", &erin).await, 400);
    assert_refused(&post_empty(&client, &delete_first, "").await, 401);
    assert_refused(&client.raw("GET", &delete_first, &[("authorization", &erin)], Vec::new()).await, 405);
}

// ---------------------------------------------------------------------------------------------
// Seed 003.

#[tokio::test]
async fn administrators_manage_users_and_no_one_else_may() {
    let server = Server::start();
    let client = server.client();
    let jwt = admin_jwt(&client).await;

    let list = get(&client, "/api/admin/user/list", &jwt).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["data"]["total"], 1);
    let admin_view = &list.json["data"]["content"][0];
    assert_eq!(admin_view["username"], "admin");
    assert_eq!(admin_view["role"], 2);
    assert_eq!(admin_view["password"], "");
    assert_eq!(admin_view["Salt"], "");
    let admin_id = admin_view["id"].as_i64().unwrap();

    // Create, with every field alist sends.
    let frank = json!({
        "id": 0, "username": "frank", "password": "frank-pw-1", "base_path": "/data", "role": 0,
        "permission": 60, "disabled": false, "sso_id": "sso-frank"
    });
    alist_create(&client, &jwt, frank.clone()).await;
    let frank_id = user_id(&client, &jwt, "frank").await;
    let got = get(&client, &format!("/api/admin/user/get?id={frank_id}"), &jwt).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(
        got.json["data"],
        json!({
            "id": frank_id, "username": "frank", "Salt": "", "password": "", "base_path": "/data", "role": 0,
            "disabled": false, "permission": 60, "sso_id": "sso-frank", "otp": false
        })
    );
    let frank_jwt = jwt_of(&alist_login(&client, "frank", "frank-pw-1").await);
    assert_eq!(get(&client, "/api/me", &frank_jwt).await.json["data"]["base_path"], "/data");
    alist_create(&client, &jwt, json!({ "username": "guest1", "password": "guest-pw-1", "role": 1 })).await;
    let guest_jwt = jwt_of(&alist_login(&client, "guest1", "guest-pw-1").await);
    assert_eq!(get(&client, "/api/me", &guest_jwt).await.json["data"]["role"], 1);

    // Refused input.
    for (body, status) in [
        (frank.clone(), 409),
        (json!({ "username": "x", "password": "" }), 400),
        (json!({ "username": "x" }), 400),
        (json!({ "username": "", "password": "p-password-1" }), 400),
        (json!({ "username": "a:b", "password": "p-password-1" }), 400),
        (json!({ "username": "x", "password": "p-password-1", "role": 7 }), 400),
        (json!({ "username": "x", "password": "p-password-1", "role": "2" }), 400),
        (json!({ "username": "x", "password": "p-password-1", "permission": -1 }), 400),
        (json!({ "username": "x", "password": "p-password-1", "base_path": "/a\u{0}b" }), 400),
    ] {
        assert_refused(&post(&client, "/api/admin/user/create", &jwt, &body).await, status);
    }
    let malformed = client.raw("POST", "/api/admin/user/create", &[("authorization", &jwt)], b"{".to_vec()).await;
    assert_refused(&malformed, 400);

    // Ordinary users and guests get 403 on every admin route; no credentials, 401.
    let get_frank = format!("/api/admin/user/get?id={frank_id}");
    let delete_frank = format!("/api/admin/user/delete?id={frank_id}");
    for caller in [&frank_jwt, &guest_jwt] {
        assert_refused(&get(&client, "/api/admin/user/list", caller).await, 403);
        assert_refused(&get(&client, &get_frank, caller).await, 403);
        let body = json!({ "username": "y", "password": "y-pw" });
        assert_refused(&post(&client, "/api/admin/user/create", caller, &body).await, 403);
        let body = json!({ "id": frank_id, "role": 2 });
        assert_refused(&post(&client, "/api/admin/user/update", caller, &body).await, 403);
        assert_refused(&post_empty(&client, &delete_frank, caller).await, 403);
        assert_refused(&post_empty(&client, "/api/admin/user/del_cache?username=frank", caller).await, 403);
    }
    assert_refused(&client.raw("GET", "/api/admin/user/list", &[], Vec::new()).await, 401);
    assert_refused(&client.raw("POST", "/api/admin/user/delete?id=1", &[], Vec::new()).await, 401);
    assert_refused(&client.raw("POST", "/api/admin/user/list", &[("authorization", &jwt)], Vec::new()).await, 405);

    // Unknown ids and names.
    assert_refused(&get(&client, "/api/admin/user/get?id=999999", &jwt).await, 404);
    assert_refused(&get(&client, "/api/admin/user/get", &jwt).await, 400);
    assert_refused(&get(&client, "/api/admin/user/get?id=x", &jwt).await, 400);
    assert_refused(&post(&client, "/api/admin/user/update", &jwt, &json!({ "id": 999999 })).await, 404);
    assert_refused(&post(&client, "/api/admin/user/update", &jwt, &json!({ "username": "z" })).await, 400);
    assert_refused(&post_empty(&client, "/api/admin/user/delete?id=999999", &jwt).await, 404);
    assert_done(&post_empty(&client, "/api/admin/user/del_cache?username=frank", &jwt).await);
    assert_refused(&post_empty(&client, "/api/admin/user/del_cache?username=nobody", &jwt).await, 404);
    assert_refused(&post_empty(&client, "/api/admin/user/del_cache", &jwt).await, 400);

    // Update: profile fields, a promotion to admin, a name taken.
    let update = json!({ "id": frank_id, "base_path": "/srv", "permission": 256, "sso_id": "", "role": 2 });
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &update).await);
    let me = get(&client, "/api/me", &frank_jwt).await;
    assert_eq!(me.json["data"]["role"], 2);
    assert_eq!(me.json["data"]["base_path"], "/srv");
    assert_eq!(me.json["data"]["permission"], 256);
    assert_eq!(get(&client, "/api/admin/user/list", &frank_jwt).await.status, 200, "frank is an admin now");
    let taken = json!({ "id": frank_id, "username": "admin" });
    assert_refused(&post(&client, "/api/admin/user/update", &jwt, &taken).await, 409);
    let renamed = json!({ "id": frank_id, "username": "francis", "role": 0 });
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &renamed).await);
    assert_eq!(get(&client, &get_frank, &jwt).await.json["data"]["username"], "francis");
    assert_refused(&get(&client, "/api/admin/user/list", &frank_jwt).await, 403);
    jwt_of(&alist_login(&client, "francis", "frank-pw-1").await);

    // Paging.
    let page = get(&client, "/api/admin/user/list?page=2&per_page=2", &jwt).await;
    assert_eq!(page.json["data"]["total"], 3);
    assert_eq!(page.json["data"]["content"].as_array().unwrap().len(), 1);
    assert_refused(&get(&client, "/api/admin/user/list?page=0", &jwt).await, 400);

    // The last administrator can be neither disabled, demoted nor deleted.
    let disable_admin = json!({ "id": admin_id, "disabled": true });
    assert_refused(&post(&client, "/api/admin/user/update", &jwt, &disable_admin).await, 409);
    let demote_admin = json!({ "id": admin_id, "role": 0 });
    assert_refused(&post(&client, "/api/admin/user/update", &jwt, &demote_admin).await, 409);
    assert_refused(&post_empty(&client, &format!("/api/admin/user/delete?id={admin_id}"), &jwt).await, 409);
    assert_eq!(get(&client, "/api/me", &jwt).await.json["data"]["role"], 2);

    assert_done(&post_empty(&client, &delete_frank, &jwt).await);
    assert_refused(&get(&client, &get_frank, &jwt).await, 404);
    assert_refused(&get(&client, "/api/me", &frank_jwt).await, 401);
}

#[tokio::test]
async fn a_disabled_administrator_does_not_count_as_the_one_left() {
    let server = Server::start();
    let client = server.client();
    let jwt = admin_jwt(&client).await;
    let admin_id = user_id(&client, &jwt, "admin").await;
    alist_create(&client, &jwt, json!({ "username": "root2", "password": "root2-pw", "role": 2 })).await;
    let root2 = user_id(&client, &jwt, "root2").await;
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &json!({ "id": root2, "disabled": true })).await);
    // Deleting the only enabled administrator would leave nobody able to administer.
    let delete_admin = format!("/api/admin/user/delete?id={admin_id}");
    assert_refused(&post_empty(&client, &delete_admin, &jwt).await, 409);
    let basic = format!("Basic {}", STANDARD.encode(format!("admin:{ADMIN_PASSWORD}")));
    let by_004 = client.raw("DELETE", &format!("/user/{admin_id}"), &[("authorization", &basic)], Vec::new()).await;
    assert_eq!(by_004.status, 409, "{}", by_004.text);
    assert_eq!(get(&client, "/api/me", &jwt).await.status, 200);
    // A disabled administrator may go while an enabled one stays.
    assert_done(&post_empty(&client, &format!("/api/admin/user/delete?id={root2}"), &jwt).await);
}

#[tokio::test]
async fn one_identity_across_every_surface() {
    let server = Server::start();
    let client = server.client();
    let jwt = admin_jwt(&client).await;

    // A user created here logs in on go_ws_sh's API and seed 004's login.
    alist_create(&client, &jwt, json!({ "username": "gina", "password": "gina-pw-1", "role": 0 })).await;
    let gina_id = user_id(&client, &jwt, "gina").await;
    let sessions = client.list("/sessions", &json!({ "authorization": password_auth("gina", "gina-pw-1") })).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    let login_004 =
        client.json("POST", "/auth/login", &[], &json!({ "username": "gina", "password": "gina-pw-1" })).await;
    assert_eq!(login_004.status, 200, "{}", login_004.text);
    let access_004 = login_004.header("authorization").to_owned();
    let gina_jwt = jwt_of(&alist_login(&client, "gina", "gina-pw-1").await);
    let (token_id, token_secret) = login(&client, "gina", "gina-pw-1").await;
    let gows_token = json!({ "authorization": token_auth(&token_id, &token_secret) });
    // Every credential works on every surface.
    assert_eq!(get(&client, "/api/me", &format!("Bearer {token_secret}")).await.status, 200);
    assert_eq!(get(&client, "/api/me", &access_004).await.status, 200);
    assert_eq!(client.list("/sessions", &gows_token).await.status, 200);
    let basic = format!("Basic {}", STANDARD.encode("gina:gina-pw-1"));
    assert_eq!(get(&client, "/api/me", &basic).await.json["data"]["username"], "gina");

    // Disabling stops everything at once; enabling brings the tokens back.
    let disable = json!({ "id": gina_id, "disabled": true });
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &disable).await);
    assert_refused(&get(&client, "/api/me", &gina_jwt).await, 401);
    assert_refused(&get(&client, "/api/me", &access_004).await, 401);
    assert_eq!(client.list("/sessions", &gows_token).await.status, 401);
    assert_eq!(client.raw("GET", "/test", &[("authorization", &access_004)], Vec::new()).await.status, 401);
    assert_refused(&alist_login(&client, "gina", "gina-pw-1").await, 401);
    assert_refused(&hash_login(&client, "gina", &digest("gina-pw-1")).await, 401);
    let sessions = client.list("/sessions", &json!({ "authorization": password_auth("gina", "gina-pw-1") })).await;
    assert_eq!(sessions.status, 401);
    assert_eq!(get(&client, &format!("/api/admin/user/get?id={gina_id}"), &jwt).await.json["data"]["disabled"], true);
    assert_done(&post(&client, "/api/admin/user/update", &jwt, &json!({ "id": gina_id, "disabled": false })).await);
    assert_eq!(get(&client, "/api/me", &gina_jwt).await.status, 200);
    assert_eq!(client.list("/sessions", &gows_token).await.status, 200);

    // A token revoked on go_ws_sh's API stops working here.
    let (other_id, other_secret) = login(&client, "gina", "gina-pw-1").await;
    let revoke = json!({ "authorization": admin(), "token": { "identifier": other_id } });
    assert_eq!(client.json("DELETE", "/tokens", &[], &revoke).await.status, 200);
    assert_refused(&get(&client, "/api/me", &format!("Bearer {other_secret}")).await, 401);

    // Deleting stops everything too.
    assert_done(&post_empty(&client, &format!("/api/admin/user/delete?id={gina_id}"), &jwt).await);
    assert_refused(&get(&client, "/api/me", &gina_jwt).await, 401);
    assert_refused(&get(&client, "/api/me", &format!("Bearer {token_secret}")).await, 401);
    assert_eq!(client.list("/sessions", &gows_token).await.status, 401);
    assert_refused(&alist_login(&client, "gina", "gina-pw-1").await, 401);

    // A user created on go_ws_sh's API is an ordinary user here.
    create_user(&client, "hank", "hank-pw-1").await;
    let hank = jwt_of(&alist_login(&client, "hank", "hank-pw-1").await);
    assert_eq!(get(&client, "/api/me", &hank).await.json["data"]["role"], 0);
    assert_refused(&get(&client, "/api/admin/user/list", &hank).await, 403);
}

#[tokio::test]
async fn repeated_failures_lock_alist_logins_out() {
    let server = Server::start();
    let client = server.client();
    for _ in 0..10 {
        assert_refused(&alist_login(&client, "admin", "wrong").await, 401);
    }
    let locked = alist_login(&client, "admin", ADMIN_PASSWORD).await;
    assert_refused(&locked, 429);
    assert!(locked.header("retry-after").parse::<u64>().unwrap() > 0);
    assert_refused(&hash_login(&client, "admin", &digest(ADMIN_PASSWORD)).await, 429);
}
