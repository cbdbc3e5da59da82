//! Every stored row, as plain values, for moving an install from one backend to another
//! (`wssh db copy`): each backend exports its tables in these terms, and the destination
//! writes them back in its own types.

use crate::StoreError;

/// The tables wssh keeps, parents before children (the order a copy writes them in).
pub const TABLES: &[&str] = &[
    "roles",
    "role_permissions",
    "users",
    "user_roles",
    "access_tokens",
    "sessions",
    "settings",
    "logins",
    "retired_refresh_tokens",
    "ssh_keys",
    "login_failures",
    "login_known_addresses",
    "audit_events",
    "recordings",
];

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A whole number (also a flag: 0 or 1).
    Integer(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// The rows of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    /// The table.
    pub table: String,
    /// Its columns, in the order of each row's cells.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

/// A store whose rows can be read out whole.
pub trait Export {
    /// Every row of `table` (one of [`TABLES`]).
    fn export_table(&self, table: &str) -> Result<TableRows, StoreError>;
    /// How many rows `table` has.
    fn count_rows(&self, table: &str) -> Result<u64, StoreError>;
}
