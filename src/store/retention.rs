//! Retention: raw results older than `storage.retention` are deleted, the
//! hourly rollups stay for ever, and freed pages go back to the file system
//! (incremental vacuum), so the file stops growing.
//!
//! The writer thread runs this one short step at a time when it has nothing
//! to write: each step is its own transaction deleting at most
//! [`BATCH_ROWS`] rows of one probe (a few milliseconds), so a probe result
//! that arrives meanwhile waits for one step at most. The cutoff is whole
//! hours, so after a pass every hour is either all raw or all gone, and it
//! never reaches into a probe's open outage or its current failure streak:
//! those results are the evidence of what is going on now.
//!
//! Notes (`note`, the error and detail texts results share) stay, even once
//! no result names them: finding those would read every result (`note_id`
//! has no index, and one would cost more per result than the notes do), and
//! they are few (about 11 000 small rows for a year of ten probes, under
//! 0.1 byte per result). Never deleting them also keeps the writer's memory
//! of note ids valid.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::record;
use super::rollup::HOUR_MS;

/// Most rows deleted in one transaction.
pub const BATCH_ROWS: i64 = 5000;
/// Pages handed back per vacuum step (1 MiB with 4 KiB pages).
const VACUUM_PAGES: i64 = 256;
/// How often a pass starts; the cutoff moves by whole hours.
const EVERY_MS: i64 = HOUR_MS;
/// After a failed step, try again this much later.
const RETRY_MS: i64 = 60_000;

/// The retention schedule and the pass in progress, owned by the writer.
#[derive(Debug)]
pub struct Retention {
    keep_ms: i64,
    next_pass_ms: i64,
    pass: Option<Pass>,
}

#[derive(Debug)]
struct Pass {
    cutoff_ms: i64,
    /// Probes still to clear, the next one last.
    probes: Vec<i64>,
    deleted: u64,
    /// Free pages at the last vacuum step, to stop if they stop shrinking.
    free_pages: Option<i64>,
}

impl Retention {
    /// Keeps raw results for `keep`; the first pass starts at `now_ms`.
    pub fn new(keep: Duration, now_ms: i64) -> Retention {
        Retention {
            keep_ms: i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            next_pass_ms: now_ms,
            pass: None,
        }
    }

    /// A step is due: a pass is under way or the next one should start.
    /// The writer checks this whenever its queue is empty, so retention
    /// progresses even when results never stop arriving for a whole second.
    pub fn due(&self, now_ms: i64) -> bool {
        self.pass.is_some() || now_ms >= self.next_pass_ms
    }

    /// Does one short step if one is due. Errors are logged and the pass
    /// retried later: retention must never stop the writer.
    pub fn step(&mut self, conn: &Connection, now_ms: i64) {
        if let Err(e) = self.try_step(conn, now_ms) {
            tracing::warn!(error = %e, "deleting old results failed; will retry in a minute");
            self.pass = None;
            self.next_pass_ms = now_ms + RETRY_MS;
        }
    }

    fn try_step(&mut self, conn: &Connection, now_ms: i64) -> rusqlite::Result<()> {
        let pass = match &mut self.pass {
            Some(p) => p,
            None if now_ms < self.next_pass_ms => return Ok(()),
            None => {
                let mut probes: Vec<i64> = conn
                    .prepare_cached("SELECT id FROM probe ORDER BY id DESC")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                probes.shrink_to_fit();
                self.pass.insert(Pass {
                    cutoff_ms: cutoff(now_ms, self.keep_ms),
                    probes,
                    deleted: 0,
                    free_pages: None,
                })
            }
        };
        if let Some(&probe_id) = pass.probes.last() {
            let n = delete_batch(conn, probe_id, pass.cutoff_ms)?;
            pass.deleted += n as u64;
            if (n as i64) < BATCH_ROWS {
                pass.probes.pop();
            }
            return Ok(());
        }
        if let Some(free) = vacuum_step(conn)? {
            if pass.free_pages.is_none_or(|before| free < before) {
                pass.free_pages = Some(free);
                return Ok(());
            }
        }
        if pass.deleted > 0 {
            tracing::info!(
                deleted = pass.deleted,
                before = %crate::result::format_time(&super::query::from_ms(pass.cutoff_ms)),
                "deleted raw results past the retention period; hourly rollups keep their statistics"
            );
        }
        self.pass = None;
        self.next_pass_ms = now_ms + EVERY_MS;
        Ok(())
    }
}

/// Raw results before this are deleted: `keep` back from `now_ms`, rounded
/// down to a whole hour.
pub fn cutoff(now_ms: i64, keep_ms: i64) -> i64 {
    now_ms.saturating_sub(keep_ms).div_euclid(HOUR_MS) * HOUR_MS
}

/// Deletes up to [`BATCH_ROWS`] of `probe_id`'s oldest results before
/// `cutoff_ms`, in one transaction; returns how many.
pub fn delete_batch(conn: &Connection, probe_id: i64, cutoff_ms: i64) -> rusqlite::Result<usize> {
    let tx = conn.unchecked_transaction()?;
    let limit = match protected_from(&tx, probe_id)? {
        Some(p) => p.min(cutoff_ms),
        None => cutoff_ms,
    };
    let last: Option<i64> = tx
        .prepare_cached(
            "SELECT at FROM result WHERE probe_id = ?1 AND at < ?2 ORDER BY at LIMIT 1 OFFSET ?3",
        )?
        .query_row(params![probe_id, limit, BATCH_ROWS - 1], |r| r.get(0))
        .optional()?;
    let n = match last {
        Some(last) => tx
            .prepare_cached("DELETE FROM result WHERE probe_id = ?1 AND at <= ?2")?
            .execute(params![probe_id, last])?,
        None => tx
            .prepare_cached("DELETE FROM result WHERE probe_id = ?1 AND at < ?2")?
            .execute(params![probe_id, limit])?,
    };
    tx.commit()?;
    Ok(n)
}

/// The earliest result the probe's current trouble needs: the start of its
/// open outage, or of a failure streak that may yet open one.
fn protected_from(conn: &Connection, probe_id: i64) -> rusqlite::Result<Option<i64>> {
    let open: Option<i64> = conn
        .prepare_cached(
            "SELECT min(started_at) FROM outage WHERE probe_id = ?1 AND ended_at IS NULL",
        )?
        .query_row([probe_id], |r| r.get(0))?;
    let state = record::load_tracker(conn, probe_id)?;
    let tracked = [
        open,
        state.open.map(|o| o.started_ms),
        state.fail_started_ms,
    ];
    Ok(tracked.into_iter().flatten().min())
}

/// Hands up to [`VACUUM_PAGES`] free pages back to the file system. Returns
/// the free pages there were, or `None` if there is nothing to do (none free,
/// or a database created before incremental vacuum was switched on).
fn vacuum_step(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    if mode != 2 || free == 0 {
        return Ok(None);
    }
    // Each step of this statement frees one page: run it to the end.
    let mut stmt = conn.prepare_cached(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(Some(free))
}

/// Runs a whole pass now, step by step: for tools and tests. Returns the
/// number of results deleted.
pub fn purge(conn: &Connection, keep: Duration, now_ms: i64) -> rusqlite::Result<u64> {
    let mut r = Retention::new(keep, now_ms);
    let mut deleted = 0;
    loop {
        r.try_step(conn, now_ms)?;
        match &r.pass {
            Some(p) => deleted = p.deleted,
            None => return Ok(deleted),
        }
    }
}
