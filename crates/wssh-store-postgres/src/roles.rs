//! [`RoleStore`] on PostgreSQL.

use postgres::GenericClient;
use wssh_domain::{NewRole, Permission, PermissionSet, Role, RoleId, Timestamp};
use wssh_store::{Conflict, RoleStore, StoreError};

use crate::{PgStore, Write, backend, get};

const ROLE_COLUMNS: &str = "id, key, name, sort, disabled, remark, built_in, created_at, updated_at, \
     (SELECT COALESCE(string_agg(permission, ','), '') FROM role_permissions WHERE role_id = roles.id)";

fn load_role(row: &postgres::Row) -> Result<Role, StoreError> {
    let names: String = get(row, 9)?;
    Ok(Role {
        id: RoleId(get(row, 0)?),
        key: get(row, 1)?,
        name: get(row, 2)?,
        sort: get(row, 3)?,
        disabled: get(row, 4)?,
        remark: get(row, 5)?,
        built_in: get(row, 6)?,
        // Names this version does not know grant nothing here.
        permissions: names.split(',').filter_map(|name| name.parse::<Permission>().ok()).collect(),
        created_at: Timestamp(get(row, 7)?),
        updated_at: Timestamp(get(row, 8)?),
    })
}

fn query_role(client: &mut impl GenericClient, id: RoleId) -> Result<Option<Role>, StoreError> {
    let row =
        client.query_opt(&format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = $1"), &[&id.0]).map_err(backend)?;
    row.as_ref().map(load_role).transpose()
}

fn write_role_permissions(write: &mut Write<'_>, id: RoleId, permissions: PermissionSet) -> Result<(), StoreError> {
    write.execute("DELETE FROM role_permissions WHERE role_id = $1", &[&id.0])?;
    for permission in permissions.iter() {
        write.execute(
            "INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)",
            &[&id.0, &permission.as_str()],
        )?;
    }
    Ok(())
}

impl RoleStore for PgStore {
    fn create_role(&self, role: &NewRole) -> Result<Role, StoreError> {
        self.write(|write| {
            let now = Timestamp::now().0;
            let row = write.insert(
                "INSERT INTO roles (key, name, built_in, sort, disabled, remark, created_at, updated_at) \
                 VALUES ($1, $2, FALSE, $3, $4, $5, $6, $6) RETURNING id",
                &[&role.key, &role.name, &role.sort, &role.disabled, &role.remark, &now],
                Conflict::RoleKeyTaken,
            )?;
            let id = RoleId(get(&row, 0)?);
            write_role_permissions(write, id, role.permissions)?;
            query_role(&mut *write.client, id)?.ok_or(StoreError::NotFound)
        })
    }

    fn find_role(&self, id: RoleId) -> Result<Option<Role>, StoreError> {
        query_role(&mut *self.connection()?, id)
    }

    fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        let rows = self
            .connection()?
            .query(&format!("SELECT {ROLE_COLUMNS} FROM roles ORDER BY sort, id"), &[])
            .map_err(backend)?;
        rows.iter().map(load_role).collect()
    }

    fn update_role(&self, role: &Role) -> Result<Role, StoreError> {
        self.write(|write| {
            write.lock_decisions()?;
            let stored = query_role(&mut *write.client, role.id)?.ok_or(StoreError::NotFound)?;
            if stored.built_in && stored.key != role.key {
                return Err(StoreError::Conflict(Conflict::BuiltInRoleKey));
            }
            if stored.is_admin() && (role.disabled || role.permissions != PermissionSet::all()) {
                return Err(StoreError::Conflict(Conflict::AdminRoleFixed));
            }
            write.execute_or(
                "UPDATE roles SET key = $2, name = $3, sort = $4, disabled = $5, remark = $6, updated_at = $7 \
                 WHERE id = $1",
                &[&role.id.0, &role.key, &role.name, &role.sort, &role.disabled, &role.remark, &Timestamp::now().0],
                Conflict::RoleKeyTaken,
            )?;
            write_role_permissions(write, role.id, role.permissions)?;
            query_role(&mut *write.client, role.id)?.ok_or(StoreError::NotFound)
        })
    }

    fn delete_role(&self, id: RoleId) -> Result<(), StoreError> {
        self.write(|write| {
            let stored = query_role(&mut *write.client, id)?.ok_or(StoreError::NotFound)?;
            if stored.built_in {
                return Err(StoreError::Conflict(Conflict::BuiltInRoleDeleted));
            }
            write.execute("DELETE FROM user_roles WHERE role_id = $1", &[&id.0])?;
            write.execute("DELETE FROM roles WHERE id = $1", &[&id.0])?;
            Ok(())
        })
    }
}
