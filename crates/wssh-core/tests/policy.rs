//! The grant rules of the services, without HTTP: a table of (the caller's permissions ×
//! operation × target) → allowed or the precise refusal, covering every path that gives or
//! takes permissions, and the last-administrator rule under concurrent requests. Real parts: a
//! real SQLite file, the real authenticator.

use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use wssh_auth::throttle::LoginThrottle;
use wssh_auth::{AuthMethod, Authenticator, Principal};
use wssh_core::{
    Conflict, CoreError, NewAccount, RoleChanges, ServiceConfig, Services, TokenChanges, UserChanges, UserRef,
};
use wssh_domain::{
    NewRole, NewUser, Password, Permission, PermissionSet, Role, RoleId, RoleKey, TokenSpec, User, UserId, UserProfile,
    Username,
};
use wssh_store::{RoleStore, UserStore};
use wssh_store_sqlite::SqliteStore;

use Permission::*;

/// A server's services over a fresh database, with an administrator, an ordinary user, a
/// custom role `ops` granting `users:write`, and a `caller` whose permissions each case sets.
struct Fixture {
    _dir: tempfile::TempDir,
    services: Services,
    admin: User,
    alice: User,
    caller: User,
    ops: Role,
    admin_role: Role,
}

fn account(name: &str, role: RoleKey) -> NewAccount {
    NewAccount {
        username: Username::parse(name).unwrap(),
        password: Password::parse(&format!("{name}-password")).unwrap(),
        role,
        disabled: false,
        profile: UserProfile::default(),
    }
}

/// An argon2id hash of a password, computed once.
fn hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| wssh_auth::password::hash_password(&Password::parse("password").unwrap()).unwrap()).clone()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("wssh.db")).unwrap());
    let auth = Authenticator::new(store.clone(), LoginThrottle::new(100, Duration::from_secs(60))).unwrap();
    let services = Services::new(Arc::new(auth), ServiceConfig::default());
    // Users made straight in the store, with one hash computed once: argon2 is slow by design.
    let user =
        |name: &str, role| store.create_user(&NewUser::new(Username::parse(name).unwrap(), hash(), role)).unwrap();
    let admin = user("admin", RoleKey::Admin);
    let alice = user("alice", RoleKey::User);
    let caller = user("caller", RoleKey::Guest);
    let ops = store
        .create_role(&NewRole {
            key: "ops".into(),
            name: "Ops".into(),
            sort: 0,
            disabled: false,
            remark: String::new(),
            permissions: PermissionSet::EMPTY.with(UsersWrite),
        })
        .unwrap();
    let admin_role = store.list_roles().unwrap().into_iter().find(Role::is_admin).unwrap();
    Fixture { _dir: dir, services, admin, alice, caller, ops, admin_role }
}

/// The caller, holding exactly `permissions` (as a custom role or a narrowed token would).
fn caller(fixture: &Fixture, permissions: &[Permission]) -> Principal {
    Principal {
        user_id: fixture.caller.id,
        username: fixture.caller.username.clone(),
        permissions: permissions.iter().copied().collect(),
        method: AuthMethod::Password,
        expires_at: None,
    }
}

const USER: [Permission; 4] = [SessionsRead, SessionsConnect, TokensRead, TokensWrite];

fn with(base: &[Permission], more: &[Permission]) -> Vec<Permission> {
    base.iter().chain(more).copied().collect()
}

/// What a case expects.
#[derive(Debug)]
enum Expect {
    Allowed,
    Forbidden(Permission),
    Exceeds(Permission),
    Outranked(Permission),
}

type Operation = fn(&Fixture, &Principal) -> Result<(), CoreError>;

fn check(name: &str, permissions: &[Permission], operation: Operation, expect: Expect) {
    let fixture = fixture();
    let principal = caller(&fixture, permissions);
    let outcome = operation(&fixture, &principal);
    let matched = match (&expect, &outcome) {
        (Expect::Allowed, Ok(())) => true,
        (Expect::Forbidden(want), Err(CoreError::Forbidden(got))) => want == got,
        (Expect::Exceeds(want), Err(CoreError::Exceeds(got))) => want == got,
        (Expect::Outranked(want), Err(CoreError::Outranked(got))) => want == got,
        _ => false,
    };
    assert!(matched, "{name} with {permissions:?}: expected {expect:?}, got {outcome:?}");
}

#[test]
fn every_grant_path_gives_at_most_what_the_granter_holds() {
    let all: Vec<Permission> = Permission::ALL.to_vec();
    let cases: Vec<(&str, Vec<Permission>, Operation, Expect)> = vec![
        // Creating an account binds a role (alist's create with role 2, /credentials, POST /user).
        (
            "create an administrator",
            vec![UsersWrite],
            |f, p| f.services.create_user(p, account("eve", RoleKey::Admin)).map(drop),
            Expect::Forbidden(RolesWrite),
        ),
        (
            "create an administrator",
            with(&USER, &[UsersWrite, RolesWrite]),
            |f, p| f.services.create_user(p, account("eve", RoleKey::Admin)).map(drop),
            Expect::Exceeds(SessionsWrite),
        ),
        (
            "create an administrator",
            all.clone(),
            |f, p| f.services.create_user(p, account("eve", RoleKey::Admin)).map(drop),
            Expect::Allowed,
        ),
        (
            "create a user",
            vec![UsersWrite],
            |f, p| f.services.create_user(p, account("eve", RoleKey::User)).map(drop),
            Expect::Exceeds(SessionsRead),
        ),
        (
            "create a user",
            with(&USER, &[UsersWrite]),
            |f, p| f.services.create_user(p, account("eve", RoleKey::User)).map(drop),
            Expect::Allowed,
        ),
        (
            "create a guest",
            vec![UsersWrite],
            |f, p| f.services.create_user(p, account("eve", RoleKey::Guest)).map(drop),
            Expect::Allowed,
        ),
        (
            "create without users:write",
            vec![RolesWrite],
            |f, p| f.services.create_user(p, account("eve", RoleKey::Guest)).map(drop),
            Expect::Forbidden(UsersWrite),
        ),
        // alist's update with a role number.
        (
            "promote a user to administrator",
            with(&USER, &[UsersWrite]),
            |f, p| promote(f, p, f.alice.id),
            Expect::Forbidden(RolesWrite),
        ),
        (
            "promote a user to administrator",
            with(&USER, &[UsersWrite, RolesWrite]),
            |f, p| promote(f, p, f.alice.id),
            Expect::Exceeds(SessionsWrite),
        ),
        ("promote oneself", vec![UsersWrite], |f, p| promote(f, p, f.caller.id), Expect::Forbidden(RolesWrite)),
        ("promote a user to administrator", all.clone(), |f, p| promote(f, p, f.alice.id), Expect::Allowed),
        (
            "demote an administrator",
            with(&USER, &[UsersWrite]),
            |f, p| {
                let changes = UserChanges { role: Some(RoleKey::User), ..UserChanges::default() };
                f.services.administer_user(p, f.admin.id, changes).map(drop)
            },
            Expect::Outranked(SessionsWrite),
        ),
        // Seed 004's bind.
        ("bind the admin role", vec![RolesWrite], |f, p| bind(f, p, f.alice.id, &[f.admin_role.id]), {
            Expect::Exceeds(SessionsRead)
        }),
        (
            "bind the admin role to oneself",
            with(&USER, &[RolesWrite]),
            |f, p| bind(f, p, f.caller.id, &[f.admin_role.id]),
            { Expect::Exceeds(SessionsWrite) },
        ),
        ("bind a role", vec![UsersWrite], |f, p| bind(f, p, f.caller.id, &[f.ops.id]), Expect::Forbidden(RolesWrite)),
        ("bind a role one holds", vec![RolesWrite, UsersWrite], |f, p| bind(f, p, f.caller.id, &[f.ops.id]), {
            Expect::Allowed
        }),
        ("bind the admin role", all.clone(), |f, p| bind(f, p, f.alice.id, &[f.admin_role.id]), Expect::Allowed),
        // Seed 004's /perm and PUT /role, and POST /role.
        (
            "add a permission to a role",
            vec![RolesWrite, UsersWrite],
            |f, p| set_permissions(f, p, f.ops.id, &[UsersWrite, RolesRead]),
            Expect::Exceeds(RolesRead),
        ),
        (
            "add a permission to a role",
            vec![RolesWrite, UsersWrite, RolesRead],
            |f, p| set_permissions(f, p, f.ops.id, &[UsersWrite, RolesRead]),
            Expect::Allowed,
        ),
        (
            "remove a permission one lacks from a role",
            vec![RolesWrite],
            |f, p| set_permissions(f, p, f.ops.id, &[]),
            Expect::Exceeds(UsersWrite),
        ),
        (
            "change a role without roles:write",
            vec![UsersWrite, RolesRead],
            |f, p| set_permissions(f, p, f.ops.id, &[]),
            Expect::Forbidden(RolesWrite),
        ),
        (
            "create a role granting more",
            vec![RolesWrite],
            |f, p| {
                let role = NewRole {
                    key: "wide".into(),
                    name: "Wide".into(),
                    sort: 0,
                    disabled: false,
                    remark: String::new(),
                    permissions: PermissionSet::EMPTY.with(UsersRead),
                };
                f.services.create_role(p, role).map(drop)
            },
            Expect::Exceeds(UsersRead),
        ),
        ("delete a role granting more", vec![RolesWrite], |f, p| f.services.delete_role(p, f.ops.id).map(drop), {
            Expect::Exceeds(UsersWrite)
        }),
        // go_ws_sh's /credentials and seed 004's PUT /user: another account's password.
        (
            "set an administrator's password",
            with(&USER, &[UsersWrite]),
            |f, p| change_password(f, p, UserRef::Name("admin")),
            Expect::Outranked(SessionsWrite),
        ),
        ("set a user's password", with(&USER, &[UsersWrite]), |f, p| change_password(f, p, UserRef::Id(f.alice.id)), {
            Expect::Allowed
        }),
        ("set a user's password", vec![UsersWrite], |f, p| change_password(f, p, UserRef::Id(f.alice.id)), {
            Expect::Outranked(SessionsRead)
        }),
        ("set one's own password", vec![], |f, p| change_password(f, p, UserRef::Id(f.caller.id)), Expect::Allowed),
        ("set another's password", vec![TokensWrite], |f, p| change_password(f, p, UserRef::Id(f.alice.id)), {
            Expect::Forbidden(UsersWrite)
        }),
        ("set an administrator's password", all.clone(), |f, p| change_password(f, p, UserRef::Name("admin")), {
            Expect::Allowed
        }),
        // Tokens minted for, changed or revoked of another user (go_ws_sh /tokens, seed 002).
        (
            "mint a token for an administrator",
            with(&USER, &[UsersWrite]),
            |f, p| f.services.mint_token(p, Some(UserRef::Id(f.admin.id)), TokenSpec::default()).map(drop),
            Expect::Outranked(SessionsWrite),
        ),
        (
            "mint a token for another user",
            vec![TokensWrite],
            |f, p| f.services.mint_token(p, Some(UserRef::Name("alice")), TokenSpec::default()).map(drop),
            Expect::Forbidden(UsersWrite),
        ),
        (
            "mint a token for a user",
            with(&USER, &[UsersWrite]),
            |f, p| f.services.mint_token(p, Some(UserRef::Id(f.alice.id)), TokenSpec::default()).map(drop),
            Expect::Allowed,
        ),
        (
            "widen an administrator's token",
            with(&USER, &[UsersWrite]),
            |f, p| {
                let token = admins_token(f);
                let changes = TokenChanges { permissions: Some(None), ..TokenChanges::default() };
                f.services.update_token(p, &token, None, changes).map(drop)
            },
            Expect::Outranked(SessionsWrite),
        ),
        (
            "revoke an administrator's token",
            with(&USER, &[UsersWrite]),
            |f, p| f.services.revoke_token(p, &admins_token(f), None).map(drop),
            Expect::Outranked(SessionsWrite),
        ),
        // Other changes to a stronger account.
        (
            "disable an administrator",
            with(&USER, &[UsersWrite]),
            |f, p| {
                let changes = UserChanges { disabled: Some(true), ..UserChanges::default() };
                f.services.edit_user(p, f.admin.id, changes).map(drop)
            },
            Expect::Outranked(SessionsWrite),
        ),
        (
            "delete an administrator",
            with(&USER, &[UsersWrite]),
            |f, p| f.services.delete_user(p, UserRef::Id(f.admin.id)).map(drop),
            Expect::Outranked(SessionsWrite),
        ),
        (
            "turn an administrator's 2FA off",
            with(&USER, &[UsersWrite]),
            |f, p| f.services.cancel_two_factor(p, f.admin.id),
            Expect::Outranked(SessionsWrite),
        ),
    ];
    for (name, permissions, operation, expect) in cases {
        check(name, &permissions, operation, expect);
    }
}

fn promote(fixture: &Fixture, principal: &Principal, id: UserId) -> Result<(), CoreError> {
    let changes = UserChanges { role: Some(RoleKey::Admin), ..UserChanges::default() };
    fixture.services.administer_user(principal, id, changes).map(drop)
}

fn bind(fixture: &Fixture, principal: &Principal, id: UserId, roles: &[RoleId]) -> Result<(), CoreError> {
    fixture.services.bind_roles(principal, id, roles).map(drop)
}

fn set_permissions(
    fixture: &Fixture,
    principal: &Principal,
    role: RoleId,
    permissions: &[Permission],
) -> Result<(), CoreError> {
    let changes = RoleChanges { permissions: Some(permissions.iter().copied().collect()), ..RoleChanges::default() };
    fixture.services.update_role(principal, role, changes).map(drop)
}

fn change_password(fixture: &Fixture, principal: &Principal, target: UserRef<'_>) -> Result<(), CoreError> {
    let password = Password::parse("a-new-password").unwrap();
    fixture.services.change_password(principal, target, &password).map(drop)
}

/// A narrow token of the administrator's, minted by the administrator.
fn admins_token(fixture: &Fixture) -> String {
    let admin = principal_of(&fixture.admin);
    let spec = TokenSpec { permissions: Some(PermissionSet::EMPTY.with(SessionsRead)), ..TokenSpec::default() };
    fixture.services.mint_token(&admin, None, spec).unwrap().token.identifier.0
}

fn principal_of(user: &User) -> Principal {
    Principal {
        user_id: user.id,
        username: user.username.clone(),
        permissions: user.permissions,
        method: AuthMethod::Password,
        expires_at: None,
    }
}

#[test]
fn a_token_never_carries_more_than_its_owner_or_the_token_it_was_minted_with() {
    let fixture = fixture();
    let alice = principal_of(&fixture.alice);
    let asked = PermissionSet::EMPTY.with(SessionsRead).with(UsersWrite);
    let spec = TokenSpec { permissions: Some(asked), ..TokenSpec::default() };
    let minted = fixture.services.mint_token(&alice, None, spec).unwrap();
    assert_eq!(minted.token.permissions, Some(PermissionSet::EMPTY.with(SessionsRead)));
    // A caller that came with a narrow token mints at most that token's rights.
    let narrow = Principal {
        method: AuthMethod::Token(minted.token.identifier.clone()),
        permissions: PermissionSet::EMPTY.with(TokensWrite).with(SessionsRead),
        ..alice.clone()
    };
    let child = fixture.services.mint_token(&narrow, None, TokenSpec::default()).unwrap();
    assert_eq!(child.token.permissions, Some(PermissionSet::EMPTY.with(TokensWrite).with(SessionsRead)));
    let changes = TokenChanges { permissions: Some(Some(PermissionSet::all())), ..TokenChanges::default() };
    let widened = fixture.services.update_token(&narrow, child.token.identifier.as_str(), None, changes).unwrap();
    assert_eq!(widened.permissions, Some(PermissionSet::EMPTY.with(TokensWrite).with(SessionsRead)));
}

/// Every path that could remove the last enabled administrator.
#[test]
fn the_last_administrator_stays_on_every_path() {
    let fixture = fixture();
    let admin = principal_of(&fixture.admin);
    let user_role = fixture.services.roles(&admin).unwrap().into_iter().find(|role| role.key == "user").unwrap();
    let last = |outcome: Result<User, CoreError>, conflict: Conflict| match outcome {
        Err(CoreError::Conflict(got)) => assert_eq!(got, conflict),
        other => panic!("expected {conflict:?}, got {other:?}"),
    };
    last(fixture.services.delete_user(&admin, UserRef::Id(fixture.admin.id)), Conflict::LastAdministratorDeleted);
    let disable = UserChanges { disabled: Some(true), ..UserChanges::default() };
    last(fixture.services.edit_user(&admin, fixture.admin.id, disable), Conflict::LastAdministratorDisabled);
    let demote = UserChanges { role: Some(RoleKey::User), ..UserChanges::default() };
    last(fixture.services.administer_user(&admin, fixture.admin.id, demote), Conflict::LastAdministratorDemoted);
    last(fixture.services.bind_roles(&admin, fixture.admin.id, &[user_role.id]), Conflict::LastAdministratorDemoted);
    // A refused multi-part change writes none of its parts.
    let mixed = UserChanges {
        disabled: Some(true),
        password: Some(Password::parse("changed-password").unwrap()),
        ..UserChanges::default()
    };
    last(fixture.services.edit_user(&admin, fixture.admin.id, mixed), Conflict::LastAdministratorDisabled);
    let stored = fixture.services.user(&admin, UserRef::Id(fixture.admin.id)).unwrap();
    assert_eq!(stored.password_hash, fixture.admin.password_hash);
    assert!(!stored.disabled);
}

/// Two administrators remove each other at the same moment, many times over, on every path:
/// exactly one succeeds each time, and an enabled administrator always remains.
#[test]
fn the_last_administrator_stays_under_concurrent_requests() {
    type Remove = fn(&Services, &Principal, UserId) -> Result<User, CoreError>;
    let removals: [(&str, Remove); 3] = [
        ("delete", |services, principal, id| services.delete_user(principal, UserRef::Id(id))),
        ("disable", |services, principal, id| {
            services.edit_user(principal, id, UserChanges { disabled: Some(true), ..UserChanges::default() })
        }),
        ("demote", |services, principal, id| {
            services.administer_user(principal, id, UserChanges { role: Some(RoleKey::User), ..UserChanges::default() })
        }),
    ];
    for (name, remove) in removals {
        for round in 0..4 {
            let fixture = fixture();
            let root = principal_of(&fixture.admin);
            let second = fixture.services.create_user(&root, account("second", RoleKey::Admin)).unwrap();
            let (first, second) = (principal_of(&fixture.admin), principal_of(&second));
            let barrier = Barrier::new(2);
            let outcomes: Vec<Result<User, CoreError>> = std::thread::scope(|scope| {
                let run = |actor: &Principal, target: UserId| {
                    let (services, barrier) = (&fixture.services, &barrier);
                    let actor = actor.clone();
                    scope.spawn(move || {
                        barrier.wait();
                        remove(services, &actor, target)
                    })
                };
                let one = run(&first, second.user_id);
                let two = run(&second, first.user_id);
                vec![one.join().unwrap(), two.join().unwrap()]
            });
            let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
            let refused = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, Err(CoreError::Conflict(conflict)) if conflict.to_string().contains("last administrator")))
                .count();
            assert_eq!((succeeded, refused), (1, 1), "{name}, round {round}: {outcomes:?}");
            let users = fixture.services.users(&root).unwrap();
            assert_eq!(
                users.iter().filter(|user| user.is_admin() && !user.disabled).count(),
                1,
                "{name}, round {round}: {users:?}"
            );
        }
    }
}
