//! [`Export`] on SQLite: every row of a table as plain values, for `wssh db copy`.

use rusqlite::types::ValueRef;
use wssh_store::StoreError;
use wssh_store::dump::{Cell, Export, TABLES, TableRows};

use crate::SqliteStore;

/// `table` if it is one of wssh's (names are never taken from input into SQL otherwise).
fn known(table: &str) -> Result<&'static str, StoreError> {
    TABLES.iter().copied().find(|known| *known == table).ok_or(StoreError::NotFound)
}

impl Export for SqliteStore {
    fn export_table(&self, table: &str) -> Result<TableRows, StoreError> {
        let table = known(table)?;
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let mut statement = connection.prepare(&format!("SELECT * FROM {table}")).map_err(StoreError::backend)?;
        let columns: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
        let width = columns.len();
        let rows = statement
            .query_map([], |row| {
                (0..width)
                    .map(|index| {
                        Ok(match row.get_ref(index)? {
                            ValueRef::Null => Cell::Null,
                            ValueRef::Integer(value) => Cell::Integer(value),
                            ValueRef::Real(value) => Cell::Text(value.to_string()),
                            ValueRef::Text(text) => Cell::Text(String::from_utf8_lossy(text).into_owned()),
                            ValueRef::Blob(bytes) => Cell::Blob(bytes.to_vec()),
                        })
                    })
                    .collect::<Result<Vec<_>, rusqlite::Error>>()
            })
            .map_err(StoreError::backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::backend)?;
        Ok(TableRows { table: table.to_owned(), columns, rows })
    }

    fn count_rows(&self, table: &str) -> Result<u64, StoreError> {
        let table = known(table)?;
        let connection = self.pool.get().map_err(StoreError::backend)?;
        let count: i64 = connection
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0))
            .map_err(StoreError::backend)?;
        Ok(count.unsigned_abs())
    }
}
