//! [`Export`] on PostgreSQL, and [`PgStore::import`]: the destination of `wssh db copy`.

use postgres::types::ToSql;
use wssh_store::StoreError;
use wssh_store::dump::{Cell, Export, TABLES, TableRows};

use crate::{PgStore, Tx, Write, backend, corrupt, get};

/// `table` if it is one of wssh's (names are never taken from input into SQL otherwise).
fn known(table: &str) -> Result<&'static str, StoreError> {
    TABLES.iter().copied().find(|known| *known == table).ok_or(StoreError::NotFound)
}

/// The columns of `table` and their types, in table order.
fn columns(client: &mut postgres::Client, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .map_err(backend)?;
    rows.iter().map(|row| Ok((get(row, 0)?, get(row, 1)?))).collect()
}

/// A cell as the parameter a column of type `kind` takes.
fn parameter(cell: &Cell, kind: &str, column: &str) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let mismatch = || corrupt(format!("column {column} ({kind}) cannot take {cell:?}"));
    Ok(match (kind, cell) {
        ("bigint", Cell::Null) => Box::new(None::<i64>),
        ("bigint", Cell::Integer(value)) => Box::new(*value),
        ("integer", Cell::Null) => Box::new(None::<i32>),
        ("integer", Cell::Integer(value)) => Box::new(i32::try_from(*value).map_err(|_| mismatch())?),
        ("boolean", Cell::Null) => Box::new(None::<bool>),
        ("boolean", Cell::Integer(value)) => Box::new(*value != 0),
        ("text", Cell::Null) => Box::new(None::<String>),
        ("text", Cell::Text(text)) => Box::new(text.clone()),
        ("text", Cell::Integer(value)) => Box::new(value.to_string()),
        ("bytea", Cell::Null) => Box::new(None::<Vec<u8>>),
        ("bytea", Cell::Blob(bytes)) => Box::new(bytes.clone()),
        ("bytea", Cell::Text(text)) => Box::new(text.clone().into_bytes()),
        _ => return Err(mismatch()),
    })
}

impl Export for PgStore {
    fn export_table(&self, table: &str) -> Result<TableRows, StoreError> {
        let table = known(table)?;
        let mut client = self.connection()?;
        let columns = columns(&mut client, table)?;
        let rows = client.query(&format!("SELECT * FROM {table}"), &[]).map_err(backend)?;
        let rows = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(index, (_, kind))| {
                        Ok(match kind.as_str() {
                            "bigint" => get::<Option<i64>>(row, index)?.map_or(Cell::Null, Cell::Integer),
                            "integer" => {
                                get::<Option<i32>>(row, index)?.map_or(Cell::Null, |v| Cell::Integer(v.into()))
                            }
                            "boolean" => {
                                get::<Option<bool>>(row, index)?.map_or(Cell::Null, |v| Cell::Integer(v.into()))
                            }
                            "bytea" => get::<Option<Vec<u8>>>(row, index)?.map_or(Cell::Null, Cell::Blob),
                            _ => get::<Option<String>>(row, index)?.map_or(Cell::Null, Cell::Text),
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TableRows { table: table.to_owned(), columns: columns.into_iter().map(|(name, _)| name).collect(), rows })
    }

    fn count_rows(&self, table: &str) -> Result<u64, StoreError> {
        let table = known(table)?;
        let row = self.connection()?.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).map_err(backend)?;
        Ok(get::<i64>(&row, 0)?.unsigned_abs())
    }
}

impl PgStore {
    /// Replaces everything stored with `tables` (as [`Export`] gives them), in one transaction,
    /// and moves the id sequences past the copied ids. Refuses a database that already has
    /// users ([`StoreError::Conflict`]): a copy moves an install, it never merges two.
    pub fn import(&self, tables: &[TableRows]) -> Result<(), StoreError> {
        let mut tx = Tx::begin(self.connection()?)?;
        let mut write = Write { client: &mut tx.connection, changed: 0 };
        write.lock_decisions()?;
        let users: i64 = get(&write.client.query_one("SELECT COUNT(*) FROM users", &[]).map_err(backend)?, 0)?;
        if users > 0 {
            return Err(StoreError::Backend(Box::new(crate::PgError::NotEmpty)));
        }
        for table in TABLES.iter().rev() {
            write.execute(&format!("DELETE FROM {table}"), &[])?;
        }
        for rows in tables {
            let table = known(&rows.table)?;
            let types = columns(write.client, table)?;
            let kinds = rows
                .columns
                .iter()
                .map(|column| {
                    types
                        .iter()
                        .find(|(name, _)| name == column)
                        .map(|(_, kind)| kind.clone())
                        .ok_or_else(|| corrupt(format!("{table} has no column {column} here")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let placeholders: Vec<String> = (1..=rows.columns.len()).map(|index| format!("${index}")).collect();
            let sql = format!("INSERT INTO {table} ({}) VALUES ({})", rows.columns.join(", "), placeholders.join(", "));
            let statement = write.client.prepare(&sql).map_err(backend)?;
            for row in &rows.rows {
                let parameters = row
                    .iter()
                    .zip(&kinds)
                    .zip(&rows.columns)
                    .map(|((cell, kind), column)| parameter(cell, kind, column))
                    .collect::<Result<Vec<_>, _>>()?;
                let references: Vec<&(dyn ToSql + Sync)> = parameters.iter().map(|boxed| &**boxed).collect();
                write.changed += write.client.execute(&statement, &references).map_err(backend)?;
            }
        }
        for table in ["users", "roles", "ssh_keys"] {
            write.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )?;
        }
        let changed = write.changed;
        tx.commit(changed > 0, &self.generation)
    }
}
