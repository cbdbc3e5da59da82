//! The rules a change must keep whatever the backend, checked in Rust inside a
//! [`UnitOfWork`](crate::UnitOfWork) rather than in any database's SQL.

use wssh_domain::User;

use crate::{Conflict, StoreError, UnitOfWork};

/// Whether `user` is an enabled administrator.
pub fn is_active_administrator(user: &User) -> bool {
    user.is_admin() && !user.disabled
}

/// The last-administrator rule, checked inside `work` after its writes: when `before` was an
/// enabled administrator and `after` (`None`: deleted) no longer is, another enabled
/// administrator must remain. Because the unit of work holds the write lock from its start, two
/// concurrent changes cannot both pass it.
pub fn keeps_an_administrator(work: &dyn UnitOfWork, before: &User, after: Option<&User>) -> Result<(), StoreError> {
    if !is_active_administrator(before) || after.is_some_and(is_active_administrator) {
        return Ok(());
    }
    let others = work.list_users()?.iter().any(|user| user.id != before.id && is_active_administrator(user));
    if others {
        return Ok(());
    }
    let conflict = match after {
        None => Conflict::LastAdministratorDeleted,
        Some(after) if after.disabled => Conflict::LastAdministratorDisabled,
        Some(_) => Conflict::LastAdministratorDemoted,
    };
    Err(StoreError::Conflict(conflict))
}
