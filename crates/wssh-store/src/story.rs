//! The storage story: what every backend must do, as functions any backend's tests call with
//! a fresh, empty, migrated store (the SQLite one runs them in `tests/story.rs` of this crate).
//! They panic at the first departure from the traits' contracts: every trait method, the
//! transactions, the typed conflicts, the cascades and the change counter.

use wssh_domain::{
    Login, LoginClient, LoginId, NewAccessToken, NewRole, NewSshKey, NewUser, Permission, PermissionSet, RoleId,
    RoleKey, SessionName, SessionSpec, Timestamp, TokenIdentifier, TokenSpec, Username,
};

use crate::{Rotation, Store, StoreError};

/// A session template.
fn spec(name: &str, cmd: &str) -> SessionSpec {
    SessionSpec::new(SessionName::parse(name).unwrap(), cmd.into(), vec!["-i".into()], "/tmp".into()).unwrap()
}

/// A user with a fake hash.
fn new_user(name: &str, role: RoleKey) -> NewUser {
    NewUser::new(Username::parse(name).unwrap(), "$argon2id$fake".into(), role)
}

/// A token of `user`.
fn token(identifier: &str, user: &wssh_domain::User, hash: &str) -> NewAccessToken {
    NewAccessToken {
        identifier: TokenIdentifier(identifier.into()),
        user_id: user.id,
        secret_hash: hash.into(),
        spec: TokenSpec { description: "laptop".into(), ..TokenSpec::default() },
    }
}

/// An empty, enabled role.
fn new_role(key: &str) -> NewRole {
    NewRole {
        key: key.into(),
        name: key.into(),
        sort: 0,
        disabled: false,
        remark: String::new(),
        permissions: PermissionSet::EMPTY,
    }
}

/// Users, tokens, passwords, the last administrator, sessions, settings and logins.
pub fn users_tokens_sessions_and_logins(store: &dyn Store) {
    // Users and roles.
    let admin = store.create_user(&new_user("admin", RoleKey::Admin)).unwrap();
    assert_eq!(admin.roles, vec!["admin".to_owned()]);
    assert_eq!(admin.permissions, PermissionSet::all());
    let alice = store.create_user(&new_user("alice", RoleKey::User)).unwrap();
    assert_eq!(alice.permissions, PermissionSet::of_role(RoleKey::User));
    assert!(matches!(store.create_user(&new_user("alice", RoleKey::User)), Err(StoreError::Conflict(_))));
    assert_eq!(store.count_users().unwrap(), 2);
    assert_eq!(store.find_user("alice").unwrap().unwrap().id, alice.id);
    assert!(store.find_user("bob").unwrap().is_none());

    // Tokens: lookup by identifier and by hash, conflicts, listing per owner.
    store.insert_token(&token("1", &alice, "h1")).unwrap();
    store.insert_token(&token("2", &alice, "h2")).unwrap();
    store.insert_token(&token("3", &admin, "h3")).unwrap();
    assert!(matches!(store.insert_token(&token("1", &admin, "h9")), Err(StoreError::Conflict(_))));
    assert_eq!(store.find_token_by_secret_hash("h2").unwrap().unwrap().identifier.as_str(), "2");
    assert_eq!(store.list_tokens(Some(alice.id)).unwrap().len(), 2);
    assert_eq!(store.list_tokens(None).unwrap().len(), 3);
    let updated = store.update_token_description("1", "phone").unwrap();
    assert_eq!(updated.description, "phone");
    assert!(matches!(store.update_token_description("404", "x"), Err(StoreError::NotFound)));

    // alist's digest hash is stored only beside the password hash it was derived with.
    assert_eq!(store.alist_password_hash(alice.id).unwrap(), None);
    assert!(!store.set_alist_password_hash(alice.id, "$argon2id$stale", "$argon2id$digest").unwrap());
    assert!(store.set_alist_password_hash(alice.id, &alice.password_hash, "$argon2id$digest").unwrap());
    assert_eq!(store.alist_password_hash(alice.id).unwrap().as_deref(), Some("$argon2id$digest"));

    // A password change revokes every token but the one kept, and forgets the alist hash.
    store.set_password(alice.id, "$argon2id$new", Some(&TokenIdentifier("2".into())), None).unwrap();
    assert_eq!(store.alist_password_hash(alice.id).unwrap(), None);
    let left: Vec<_> = store.list_tokens(Some(alice.id)).unwrap().into_iter().map(|t| t.identifier.0).collect();
    assert_eq!(left, vec!["2".to_owned()]);
    assert_eq!(store.find_user("alice").unwrap().unwrap().password_hash, "$argon2id$new");

    // Deleting a user takes its tokens with it; the last admin stays.
    store.delete_user(alice.id).unwrap();
    assert!(store.find_token("2").unwrap().is_none());
    assert!(matches!(store.delete_user(alice.id), Err(StoreError::NotFound)));
    assert!(matches!(store.delete_user(admin.id), Err(StoreError::Conflict(_))));
    assert!(store.find_user("admin").unwrap().is_some());

    // Sessions: create, conflict, update, copy, rename, delete.
    store.create_session(&spec("bash", "bash")).unwrap();
    assert!(matches!(store.create_session(&spec("bash", "sh")), Err(StoreError::Conflict(_))));
    let changed = store.update_session(&spec("bash", "zsh")).unwrap();
    assert_eq!(changed.spec.cmd, "zsh");
    assert!(matches!(store.update_session(&spec("nope", "sh")), Err(StoreError::NotFound)));
    let bash = SessionName::parse("bash").unwrap();
    let copy = SessionName::parse("copy").unwrap();
    let moved = SessionName::parse("moved").unwrap();
    assert_eq!(store.copy_session(&bash, &copy).unwrap().spec.args, vec!["-i".to_owned()]);
    assert!(matches!(store.copy_session(&bash, &copy), Err(StoreError::Conflict(_))));
    assert!(matches!(store.rename_session(&copy, &bash), Err(StoreError::Conflict(_))));
    store.rename_session(&copy, &moved).unwrap();
    let names: Vec<_> = store.list_sessions().unwrap().into_iter().map(|s| s.spec.name.to_string()).collect();
    assert_eq!(names, vec!["bash".to_owned(), "moved".to_owned()]);
    store.delete_session("moved").unwrap();
    assert!(matches!(store.delete_session("moved"), Err(StoreError::NotFound)));

    // Settings are created once and then kept.
    let key = store.setting_or_create("jwt", &|| vec![1, 2, 3]).unwrap();
    assert_eq!(store.setting_or_create("jwt", &|| vec![9]).unwrap(), key);

    // Logins: rotation, replay detection revoking the family, revocation.
    let login = Login {
        id: LoginId("l1".into()),
        user_id: admin.id,
        created_at: Timestamp::now(),
        expires_at: Timestamp::now().plus_seconds(60),
        revoked: false,
        client: LoginClient { ip: "127.0.0.1".into(), user_agent_hash: "ua".into() },
    };
    store.create_login(&login, "r1").unwrap();
    assert_eq!(store.find_login(&login.id).unwrap().unwrap().client, login.client);
    assert!(matches!(store.rotate_refresh("r1", "r2").unwrap(), Rotation::Rotated(_)));
    assert_eq!(store.find_login_by_refresh("r2").unwrap().unwrap().id, login.id);
    assert!(store.find_login_by_refresh("r1").unwrap().is_none());
    assert_eq!(store.rotate_refresh("r1", "r3").unwrap(), Rotation::Replayed(login.id.clone()));
    assert!(store.find_login(&login.id).unwrap().unwrap().revoked);
    assert_eq!(store.rotate_refresh("r2", "r4").unwrap(), Rotation::Unknown, "the family is dead");
    assert_eq!(store.rotate_refresh("nope", "r5").unwrap(), Rotation::Unknown);
    assert!(matches!(store.revoke_login(&LoginId("missing".into())), Err(StoreError::NotFound)));
}

/// Custom roles, profiles, TOTP state, SSH keys and application tokens.
pub fn roles_profiles_otp_keys_and_app_tokens(store: &dyn Store) {
    let admin = store.create_user(&new_user("root", RoleKey::Admin)).unwrap();
    let alice = store.create_user(&new_user("alice", RoleKey::User)).unwrap();
    assert_eq!(alice.profile.base_path, "/");

    // Custom roles grant their permissions; disabling a role takes them away.
    let ops = store
        .create_role(&NewRole {
            key: "ops".into(),
            name: "Operators".into(),
            sort: 9,
            disabled: false,
            remark: String::new(),
            permissions: PermissionSet::EMPTY.with(Permission::SessionsWrite),
        })
        .unwrap();
    assert!(matches!(
        store.create_role(&NewRole { name: "again".into(), ..new_role("ops") }),
        Err(StoreError::Conflict(_))
    ));
    let user_role = store.list_roles().unwrap().into_iter().find(|role| role.key == "user").unwrap();
    let alice = store.set_user_roles(alice.id, &[user_role.id, ops.id]).unwrap();
    assert!(alice.permissions.contains(Permission::SessionsWrite));
    assert_eq!(alice.roles, vec!["user".to_owned(), "ops".to_owned()]);
    store.update_role(&wssh_domain::Role { disabled: true, ..ops.clone() }).unwrap();
    assert!(!store.find_user_by_id(alice.id).unwrap().unwrap().permissions.contains(Permission::SessionsWrite));
    assert!(matches!(store.set_user_roles(alice.id, &[RoleId(9999)]), Err(StoreError::Conflict(_))));
    // The alone admin keeps its role, its rights and its ability to sign in.
    assert!(matches!(store.set_user_roles(admin.id, &[user_role.id]), Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.update_user(&wssh_domain::User { disabled: true, ..admin.clone() }),
        Err(StoreError::Conflict(_))
    ));
    let admin_role = store.list_roles().unwrap().into_iter().find(|role| role.is_admin()).unwrap();
    assert!(matches!(
        store.update_role(&wssh_domain::Role { permissions: PermissionSet::EMPTY, ..admin_role.clone() }),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(store.delete_role(admin_role.id), Err(StoreError::Conflict(_))));
    store.delete_role(ops.id).unwrap();
    assert_eq!(store.find_user_by_id(alice.id).unwrap().unwrap().roles, vec!["user".to_owned()]);

    // Profiles and the disabled flag round-trip; names stay unique.
    let mut changed = store.find_user_by_id(alice.id).unwrap().unwrap();
    changed.profile.base_path = "/data".into();
    changed.profile.nickname = "Alice".into();
    changed.disabled = true;
    let changed = store.update_user(&changed).unwrap();
    assert!(changed.disabled);
    assert_eq!(changed.profile.nickname, "Alice");
    let renamed = wssh_domain::User { username: Username::parse("root").unwrap(), ..changed.clone() };
    assert!(matches!(store.update_user(&renamed), Err(StoreError::Conflict(_))));

    // A TOTP step is accepted once.
    store.set_otp_secret(alice.id, Some("JBSWY3DPEHPK3PXP"), 100).unwrap();
    assert_eq!(store.find_user_by_id(alice.id).unwrap().unwrap().otp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert!(!store.accept_otp_step(alice.id, 100).unwrap());
    assert!(store.accept_otp_step(alice.id, 101).unwrap());
    assert!(!store.accept_otp_step(alice.id, 101).unwrap());

    // SSH keys belong to their owner.
    let key = NewSshKey {
        user_id: alice.id,
        title: "laptop".into(),
        public_key: "ssh-ed25519 AAAA".into(),
        fingerprint: "SHA256:x".into(),
    };
    let stored = store.add_ssh_key(&key).unwrap();
    assert!(matches!(store.add_ssh_key(&key), Err(StoreError::Conflict(_))));
    assert_eq!(store.list_ssh_keys(alice.id).unwrap(), vec![stored.clone()]);
    assert!(matches!(store.delete_ssh_key(admin.id, stored.id), Err(StoreError::NotFound)));
    store.delete_ssh_key(alice.id, stored.id).unwrap();
    assert!(store.list_ssh_keys(alice.id).unwrap().is_empty());

    // Tokens minted under an appKey are listed per app, paged.
    for index in 0..5 {
        let mut minted = token(&format!("{index}"), &alice, &format!("hash{index}"));
        minted.spec.app_key = Some(if index < 4 { "app".into() } else { "other".into() });
        store.insert_token(&minted).unwrap();
    }
    let (total, page) = store.list_app_tokens("app", Some(alice.id), 1, 2).unwrap();
    assert_eq!(total, 4);
    assert_eq!(page.iter().map(|token| token.identifier.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(store.list_app_tokens("app", Some(admin.id), 0, 10).unwrap().0, 0);
    let mut first = page[0].clone();
    first.enabled = false;
    first.title = "ci".into();
    let first = store.update_token(&first).unwrap();
    assert!(!first.enabled);
    assert_eq!(first.title, "ci");
}

/// The change counter moves with every committed change, and only then.
pub fn the_generation_moves_with_every_committed_change_and_only_then(store: &dyn Store) {
    let alice = store.create_user(&new_user("alice", RoleKey::User)).unwrap();
    let start = store.generation();

    // Reads, and writes that change nothing, leave it where it is.
    store.find_user_by_id(alice.id).unwrap();
    store.list_sessions().unwrap();
    assert!(matches!(store.update_token_description("404", "x"), Err(StoreError::NotFound)));
    assert_eq!(store.generation(), start);

    // Each change moves it, whichever method made it.
    store.insert_token(&token("1", &alice, "h1")).unwrap();
    let after_token = store.generation();
    assert_ne!(after_token, start);
    store.create_session(&spec("shell", "bash")).unwrap();
    let after_session = store.generation();
    assert_ne!(after_session, after_token);
    store.delete_token("1").unwrap();
    assert_ne!(store.generation(), after_session);
}

/// The cluster's shell registry: heartbeats replace a node's shells, other nodes read them,
/// an end request reaches the owning node, dead nodes and leaving nodes take their shells
/// with them, and none of it moves the change counter.
pub fn the_shell_registry_follows_heartbeats(store: &dyn Store) {
    use crate::{Heartbeat, ShellClientRecord, ShellRecord};
    let shell = |id: &str, node: &str| ShellRecord {
        id: id.into(),
        node: node.into(),
        owner: "alice".into(),
        owner_id: wssh_domain::UserId(7),
        session: "bash".into(),
        created_at: 1_700_000_000,
        cols: 80,
        rows: 24,
        output_bytes: 1234,
        clients: vec![ShellClientRecord { user: "alice".into(), mode: "control".into() }],
        detached_since: None,
    };
    let beat = |node: &'static str, now_ms: i64, shells: &[ShellRecord]| {
        store
            .heartbeat(&Heartbeat {
                node,
                url: if node == "a" { "http://a:1" } else { "http://b:1" },
                now_ms,
                expire_before_ms: now_ms - 3000,
                shells,
            })
            .unwrap()
    };
    let generation = store.generation();
    assert!(beat("a", 10_000, &[shell("s1", "a"), shell("s2", "a")]).is_empty());
    assert!(beat("b", 10_100, &[shell("s3", "b")]).is_empty());
    let listed = store.cluster_shells(7_000).unwrap();
    let ids: Vec<(&str, &str, &str)> =
        listed.iter().map(|(shell, url)| (shell.id.as_str(), shell.node.as_str(), url.as_str())).collect();
    assert_eq!(ids, [("s1", "a", "http://a:1"), ("s2", "a", "http://a:1"), ("s3", "b", "http://b:1")]);
    assert_eq!(listed[0].0, shell("s1", "a"));

    // A's next heartbeat without s2 forgets it and updates s1.
    let mut changed = shell("s1", "a");
    changed.cols = 120;
    changed.clients.clear();
    changed.detached_since = Some(1_700_000_100);
    assert!(beat("a", 10_500, std::slice::from_ref(&changed)).is_empty());
    let listed = store.cluster_shells(7_500).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].0, changed);
    // An end request for s1 comes back to A (and only to A) until s1 is gone; from the
    // request on, s1 is no longer listed, and a second request finds nothing to ask.
    assert!(store.request_shell_end("s1").unwrap());
    assert!(!store.request_shell_end("s1").unwrap());
    assert!(!store.request_shell_end("nothing").unwrap());
    let listed = store.cluster_shells(7_500).unwrap();
    assert_eq!(listed.iter().map(|(shell, _)| shell.id.as_str()).collect::<Vec<_>>(), ["s3"]);
    assert!(beat("b", 11_000, &[shell("s3", "b")]).is_empty());
    assert_eq!(beat("a", 11_000, std::slice::from_ref(&changed)), ["s1"]);
    assert!(beat("a", 11_500, &[]).is_empty());

    // B stops beating: seen too long ago, it is not listed, and the next heartbeat of another
    // node forgets it with its shells.
    assert!(store.cluster_shells(11_001).unwrap().is_empty());
    assert!(beat("a", 14_500, &[shell("s4", "a")]).is_empty());
    assert_eq!(store.cluster_shells(0).unwrap().iter().map(|(shell, _)| shell.id.as_str()).collect::<Vec<_>>(), ["s4"]);
    // A leaves: nothing is left.
    store.leave_cluster("a").unwrap();
    assert!(store.cluster_shells(0).unwrap().is_empty());
    assert_eq!(store.generation(), generation, "the registry moves no cache generation");
}
