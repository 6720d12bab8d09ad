//! The SQLite history: opening it, its schema, the one writer, and the
//! queries the CLI runs.
//!
//! All SQL lives in `migrations/` and in this module. The daemon owns the only
//! writer ([`writer::Writer`], on its own thread); the CLI opens the file
//! read-only and, thanks to WAL, never blocks it.

pub mod note;
pub mod outbox;
pub mod query;
pub mod recent;
pub mod record;
pub mod retention;
pub mod rollup;
pub mod stats;
pub mod writer;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod plans;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

/// The schema, oldest first. Never edit a released file: add a new one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        M::up(include_str!("../../migrations/0002_outages_outbox.sql")),
        // Rollups are built from the results already there, in the same
        // transaction, so an upgraded database never has results without them.
        M::up_with_hook(include_str!("../../migrations/0003_rollups.sql"), |tx| {
            Ok(rollup::rebuild_all(tx)?)
        }),
        // Rewrites every result once (error and detail become a note id):
        // about 16 s for a year of ten probes.
        M::up(include_str!("../../migrations/0004_notes.sql")),
    ])
}

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// A database at most this large is vacuumed once at open to switch on
/// incremental vacuum (it was created before that was set); a larger one
/// keeps reusing its free pages but does not shrink.
const CONVERT_MAX_BYTES: i64 = 64 << 20;

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
    // Lets retention hand freed pages back. Takes effect only while the file
    // has no tables yet (or at the next VACUUM), so it comes first.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite(path))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite(path))?;
    check_version(&conn, path)?;
    migrations()
        .to_latest(&mut conn)
        .map_err(|source| StoreError::Migration {
            path: path.display().to_string(),
            source,
        })?;
    enable_incremental_vacuum(&conn).map_err(sqlite(path))?;
    Ok(conn)
}

/// Switches a database created without incremental vacuum over to it, if it
/// is small enough for the one-off VACUUM that takes to be quick.
fn enable_incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    if mode == 2 {
        return Ok(());
    }
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    if pages.saturating_mul(size) > CONVERT_MAX_BYTES {
        tracing::info!(
            "the database predates incremental vacuum and is too large to convert at start; \
             space freed by retention is reused but the file will not shrink"
        );
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")
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
    let known = SCHEMA_VERSION;
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
        assert!(migrations().validate().is_ok());
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
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
    fn new_databases_vacuum_incrementally() {
        let (_dir, conn) = fixture::db();
        let mode: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2);
    }

    #[test]
    fn upgrading_builds_rollups_from_existing_results() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_outages_outbox.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO probe (id, name, kind, target) VALUES (1, 'web', 'http', 'x');
             INSERT INTO result (probe_id, at, status, latency_ms) VALUES
               (1, 3600000, 0, 120), (1, 3660000, 2, 5), (1, 7200000, 0, 80);",
        )
        .unwrap();
        drop(conn);
        let conn = open_writer(&path).unwrap();
        let hours: Vec<(i64, i64)> = conn
            .prepare("SELECT hour, results FROM rollup ORDER BY hour")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(hours, [(1, 2), (2, 1)]);
        let r = rollup::load(&conn, 1, 1).unwrap().unwrap();
        assert_eq!(r.usable_failing(), (1, 1));
        let mode: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "a small old database is converted");
    }

    /// A database of schema 3 kept error and detail as text in each row.
    fn schema_3_with_texts(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_outages_outbox.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../../migrations/0003_rollups.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO probe (id, name, kind, target) VALUES (1, 'api', 'chat', 'x'), (2, 'web', 'http', 'y');
             INSERT INTO result (probe_id, at, status, latency_ms, ttft_ms, http_status, error, detail) VALUES
               (1, 1000, 0, 120, 300, 200, NULL, 'deepseek-flash 2 tokens 41 tok/s'),
               (1, 2000, 2, 15, NULL, 503, 'Server overloaded, please try again later.', NULL),
               (1, 3000, 4, 90, 95, 200, 'stream cut after 1 token: connection reset by peer', 'deepseek-flash 1 token'),
               (1, 4000, 0, 110, 280, 200, NULL, 'deepseek-flash 2 tokens 41 tok/s'),
               (1, 5000, 0, 100, 250, 200, NULL, ''),
               (2, 1500, 0, 300, NULL, 200, NULL, NULL),
               (2, 2500, 2, 20, NULL, 503, 'Server overloaded, please try again later.', NULL),
               (2, 3500, 2, 20, NULL, 503, 'Server overloaded, please try again later.', NULL);",
        )
        .unwrap();
    }

    /// Every result, as `deepseek-watch results` reads it.
    fn all_results(conn: &Connection) -> Vec<crate::result::ProbeResult> {
        query::results(conn, &query::ResultFilter::default()).unwrap()
    }

    #[test]
    fn upgrading_moves_texts_into_notes_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        schema_3_with_texts(&path);
        // The CLI reads a database the daemon has not upgraded yet.
        let before = all_results(&open_reader(&path).unwrap());
        assert_eq!(before.len(), 8);
        let words = |rs: &[crate::result::ProbeResult]| -> Vec<(Option<String>, Option<String>)> {
            rs.iter()
                .map(|r| (r.error.clone(), r.detail.clone()))
                .collect()
        };
        assert_eq!(
            words(&before[..3]),
            [
                (None, Some("deepseek-flash 2 tokens 41 tok/s".into())),
                (None, None),
                (
                    Some("Server overloaded, please try again later.".into()),
                    None
                ),
            ]
        );

        let conn = open_writer(&path).unwrap();
        let after = all_results(&conn);
        assert_eq!(
            serde_json::to_value(&after).unwrap(),
            serde_json::to_value(&before).unwrap()
        );
        // One note per distinct pair, the most frequent first.
        let notes: Vec<(i64, Option<String>, Option<String>)> = conn
            .prepare("SELECT id, error, detail FROM note ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(notes.len(), 4);
        assert_eq!(
            notes[0],
            (
                1,
                Some("Server overloaded, please try again later.".into()),
                None
            )
        );
        let untold: i64 = conn
            .query_row(
                "SELECT count(*) FROM result WHERE note_id IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(untold, 1);
        // New results share the notes the upgrade made.
        drop(conn);
        let mut conn = open_writer(&path).unwrap();
        let tx = conn.transaction().unwrap();
        let rec = record::Recorded {
            result: crate::result::ProbeResult {
                at: query::from_ms(6000),
                ..before[7].clone()
            },
            state: Default::default(),
            changes: vec![],
        };
        let mut batch = rollup::Batch::default();
        let mut notes = note::Notes::default();
        record::write(&tx, 2, &rec, &Default::default(), &mut batch, &mut notes).unwrap();
        batch.flush(&tx).unwrap();
        tx.commit().unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM note", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 4);
        let last = all_results(&conn).pop().unwrap();
        assert_eq!(
            (last.error, last.detail),
            (before[7].error.clone(), before[7].detail.clone())
        );
    }

    #[test]
    fn reader_on_a_missing_file_says_what_to_do() {
        let e = open_reader(Path::new("/nonexistent/h.db")).unwrap_err();
        assert!(e.to_string().contains("deepseek-watch run"), "{e}");
    }
}
