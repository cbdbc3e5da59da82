//! Roles and the permissions they grant.

use super::*;

pub(crate) const ROLE_COLUMNS: &str = "id, key, name, sort, disabled, remark, built_in, created_at, updated_at";

pub(crate) fn load_role(connection: &Connection, row: &Row<'_>) -> Result<Role, rusqlite::Error> {
    let id = RoleId(row.get(0)?);
    let mut permissions_query =
        connection.prepare_cached("SELECT permission FROM role_permissions WHERE role_id = ?1")?;
    let permissions = permissions_query
        .query_map([id.0], |row| row.get::<_, String>(0))?
        .filter_map(|name| name.map(|name| name.parse::<Permission>().ok()).transpose())
        .collect::<Result<PermissionSet, _>>()?;
    Ok(Role {
        id,
        key: row.get(1)?,
        name: row.get(2)?,
        sort: row.get(3)?,
        disabled: row.get(4)?,
        remark: row.get(5)?,
        built_in: row.get(6)?,
        permissions,
        created_at: Timestamp(row.get(7)?),
        updated_at: Timestamp(row.get(8)?),
    })
}

pub(crate) fn query_role(connection: &Connection, id: RoleId) -> Result<Option<Role>, StoreError> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = ?1")).map_err(backend)?;
    statement.query_row([id.0], |row| load_role(connection, row)).optional().map_err(backend)
}

pub(crate) fn write_role_permissions(
    connection: &Connection,
    id: RoleId,
    permissions: PermissionSet,
) -> Result<(), StoreError> {
    connection.execute("DELETE FROM role_permissions WHERE role_id = ?1", [id.0]).map_err(backend)?;
    for permission in permissions.iter() {
        connection
            .execute(
                "INSERT INTO role_permissions (role_id, permission) VALUES (?1, ?2)",
                params![id.0, permission.as_str()],
            )
            .map_err(backend)?;
    }
    Ok(())
}

impl RoleStore for SqliteStore {
    fn create_role(&self, role: &NewRole) -> Result<Role, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let now = Timestamp::now().0;
        transaction
            .execute(
                "INSERT INTO roles (key, name, built_in, sort, disabled, remark, created_at, updated_at) \
                 VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?6)",
                params![role.key, role.name, role.sort, role.disabled, role.remark, now],
            )
            .map_err(|error| map_error(error, Conflict::RoleKeyTaken))?;
        let id = RoleId(transaction.last_insert_rowid());
        write_role_permissions(&transaction, id, role.permissions)?;
        let created = query_role(&transaction, id)?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(created)
    }

    fn find_role(&self, id: RoleId) -> Result<Option<Role>, StoreError> {
        query_role(&*self.connection()?, id)
    }

    fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        let connection = self.connection()?;
        let mut statement = connection
            .prepare_cached(&format!("SELECT {ROLE_COLUMNS} FROM roles ORDER BY sort, id"))
            .map_err(backend)?;
        statement
            .query_map([], |row| load_role(&connection, row))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)
    }

    fn update_role(&self, role: &Role) -> Result<Role, StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let stored = query_role(&transaction, role.id)?.ok_or(StoreError::NotFound)?;
        if stored.built_in && stored.key != role.key {
            return Err(StoreError::Conflict(Conflict::BuiltInRoleKey));
        }
        if stored.is_admin() && (role.disabled || role.permissions != PermissionSet::all()) {
            return Err(StoreError::Conflict(Conflict::AdminRoleFixed));
        }
        transaction
            .execute(
                "UPDATE roles SET key = ?2, name = ?3, sort = ?4, disabled = ?5, remark = ?6, updated_at = ?7 \
                 WHERE id = ?1",
                params![role.id.0, role.key, role.name, role.sort, role.disabled, role.remark, Timestamp::now().0],
            )
            .map_err(|error| map_error(error, Conflict::RoleKeyTaken))?;
        write_role_permissions(&transaction, role.id, role.permissions)?;
        let updated = query_role(&transaction, role.id)?.ok_or(StoreError::NotFound)?;
        transaction.commit().map_err(backend)?;
        Ok(updated)
    }

    fn delete_role(&self, id: RoleId) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        let transaction = connection.transaction().map_err(backend)?;
        let stored = query_role(&transaction, id)?.ok_or(StoreError::NotFound)?;
        if stored.built_in {
            return Err(StoreError::Conflict(Conflict::BuiltInRoleDeleted));
        }
        transaction.execute("DELETE FROM user_roles WHERE role_id = ?1", [id.0]).map_err(backend)?;
        transaction.execute("DELETE FROM roles WHERE id = ?1", [id.0]).map_err(backend)?;
        transaction.commit().map_err(backend)
    }
}
