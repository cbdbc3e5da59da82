//! One long storage story run against a real SQLite file: every trait method, the
//! transactions, the conflicts and the cascades.

use wssh_domain::{Login, LoginId, Timestamp};
use wssh_domain::{
    NewAccessToken, NewUser, PermissionSet, RoleKey, SessionName, SessionSpec, TokenIdentifier, Username,
};
use wssh_store::{LoginStore, Rotation, SessionStore, SqliteStore, StoreError, TokenStore, UserStore};

fn spec(name: &str, cmd: &str) -> SessionSpec {
    SessionSpec::new(SessionName::parse(name).unwrap(), cmd.into(), vec!["-i".into()], "/tmp".into()).unwrap()
}

fn new_user(name: &str, role: RoleKey) -> NewUser {
    NewUser { username: Username::parse(name).unwrap(), password_hash: "$argon2id$fake".into(), role }
}

fn token(identifier: &str, user: &wssh_domain::User, hash: &str) -> NewAccessToken {
    NewAccessToken {
        identifier: TokenIdentifier(identifier.into()),
        user_id: user.id,
        description: "laptop".into(),
        secret_hash: hash.into(),
        permissions: None,
        expires_at: None,
    }
}

#[test]
fn storage_story() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wssh.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migration_status().unwrap().applied, 2);

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

    // A password change revokes every token but the one kept.
    store.set_password(alice.id, "$argon2id$new", Some(&TokenIdentifier("2".into()))).unwrap();
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
    };
    store.create_login(&login, "r1").unwrap();
    assert!(matches!(store.rotate_refresh("r1", "r2").unwrap(), Rotation::Rotated(_)));
    assert_eq!(store.find_login_by_refresh("r2").unwrap().unwrap().id, login.id);
    assert!(store.find_login_by_refresh("r1").unwrap().is_none());
    assert_eq!(store.rotate_refresh("r1", "r3").unwrap(), Rotation::Replayed(login.id.clone()));
    assert!(store.find_login(&login.id).unwrap().unwrap().revoked);
    assert_eq!(store.rotate_refresh("r2", "r4").unwrap(), Rotation::Unknown, "the family is dead");
    assert_eq!(store.rotate_refresh("nope", "r5").unwrap(), Rotation::Unknown);
    assert!(matches!(store.revoke_login(&LoginId("missing".into())), Err(StoreError::NotFound)));

    // Everything survives reopening the file.
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.find_session("bash").unwrap().unwrap().spec.cmd, "zsh");
    assert_eq!(reopened.list_tokens(None).unwrap().len(), 1);
    assert!(reopened.migrate().unwrap().is_empty());
}
