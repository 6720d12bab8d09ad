//! The SQLite history: opening it, its schema, the one writer, and the
//! queries the CLI runs.
//!
//! All SQL lives in `migrations/` and in this module. The daemon owns the only
//! writer ([`writer::Writer`], on its own thread); the CLI opens the file
//! read-only and, thanks to WAL, never blocks it.

pub mod outbox;
pub mod query;
pub mod record;
pub mod writer;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

/// The schema, oldest first. Never edit a released file: add a new one.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_init.sql")),
    M::up(include_str!("../../migrations/0002_outages_outbox.sql")),
];

/// How long a statement waits for a lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no history database at {path}: the daemon has not written one yet; start it with `deepseek-watch run`, \
         or point --config at the config whose storage.path it uses"
    )]
    Missing { path: String },
    #[error(
        "the database {path} was written by a newer deepseek-watch (schema {found}, this one knows {known}); \
         upgrade deepseek-watch or use another storage.path"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: migrating the schema failed: {source}")]
    Migration {
        path: String,
        #[source]
        source: rusqlite_migration::Error,
    },
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// Opens (creating if needed) the database for the daemon's writer: WAL,
/// `synchronous=NORMAL` (durable across process crashes; a power cut may lose
/// the last moments, never corrupt), schema migrated to the latest version.
pub fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            sqlite(path)(rusqlite::Error::InvalidPath(
                format!("cannot create directory {}: {e}", dir.display()).into(),
            ))
        })?;
    }
    let mut conn = Connection::open(path).map_err(sqlite(path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite(path))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite(path))?;
    check_version(&conn, path)?;
    Migrations::from_slice(MIGRATIONS)
        .to_latest(&mut conn)
        .map_err(|source| StoreError::Migration {
            path: path.display().to_string(),
            source,
        })?;
    Ok(conn)
}

/// Opens the database read-only, for the CLI's queries.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite(path))?;
    check_version(&conn, path)?;
    Ok(conn)
}

/// Refuses a database from a newer version instead of misreading it.
fn check_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite(path))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            known,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        drop(open_writer(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = open_writer(&path).unwrap_err();
        assert!(e.to_string().contains("newer deepseek-watch"), "{e}");
        assert!(matches!(open_reader(&path), Err(StoreError::TooNew { .. })));
    }

    #[test]
    fn reader_on_a_missing_file_says_what_to_do() {
        let e = open_reader(Path::new("/nonexistent/h.db")).unwrap_err();
        assert!(e.to_string().contains("deepseek-watch run"), "{e}");
    }
}
