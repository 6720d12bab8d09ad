//! The one writer: a thread that owns the read-write connection and writes
//! results in batches.
//!
//! Probes hand results over through an unbounded channel and never wait on
//! the database: a slow disk or a reader holding a lock delays the write, not
//! the probe. A failed write keeps its batch and retries; nothing is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, params};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::result::ProbeResult;

/// Most results written in one transaction.
const MAX_BATCH: usize = 4096;

/// A probe as the database knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeMeta {
    pub name: String,
    pub kind: String,
    pub target: String,
}

enum Command {
    Record(ProbeResult),
    SyncProbes(Vec<ProbeMeta>, oneshot::Sender<Result<(), String>>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer thread. Cloneable; the thread ends once every handle
/// is dropped and the queue is written out.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
    /// Unix ms of the writer's last sign of life (a finished batch or an idle
    /// wake-up), for the watchdog: a stuck writer must not look alive.
    heartbeat: Arc<AtomicI64>,
}

/// Joins the writer thread at shutdown.
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    /// Waits until every queued result is written. Call after dropping all
    /// [`Writer`] handles.
    pub async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

impl Writer {
    /// Starts the writer on `conn` and registers `probes` before returning, so
    /// results recorded afterwards have their probe rows.
    pub fn spawn(
        conn: Connection,
        probes: &[ProbeMeta],
    ) -> std::io::Result<(Writer, WriterThread)> {
        let (tx, rx) = mpsc::channel();
        let heartbeat = Arc::new(AtomicI64::new(now_ms()));
        let beat = heartbeat.clone();
        let mut state = State {
            conn,
            ids: HashMap::new(),
        };
        let synced = state.sync_probes(probes);
        let handle = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || state.run(rx, &beat))?;
        if let Err(e) = synced {
            tracing::error!(error = %e, "registering probes in the database failed; will retry with the first result");
        }
        Ok((Writer { tx, heartbeat }, WriterThread(handle)))
    }

    /// Queues a result. Never blocks.
    pub fn record(&self, result: ProbeResult) {
        if self.tx.send(Command::Record(result)).is_err() {
            tracing::error!("database writer has stopped; a result could not be queued");
        }
    }

    /// Registers a changed probe set (on reload).
    pub async fn sync_probes(&self, probes: Vec<ProbeMeta>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::SyncProbes(probes, tx))
            .map_err(|_| "database writer has stopped".to_string())?;
        rx.await
            .map_err(|_| "database writer has stopped".to_string())?
    }

    /// Resolves once everything queued before it is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Unix ms when the writer last made progress.
    pub fn last_heartbeat_ms(&self) -> i64 {
        self.heartbeat.load(Ordering::Relaxed)
    }
}

struct State {
    conn: Connection,
    ids: HashMap<String, i64>,
}

impl State {
    fn run(&mut self, rx: mpsc::Receiver<Command>, beat: &AtomicI64) {
        let mut batch: Vec<ProbeResult> = Vec::new();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut backoff = Duration::from_millis(100);
        loop {
            if batch.is_empty() {
                // Idle: wake up now and then so the heartbeat shows we are alive.
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(cmd) => self.accept(cmd, &mut batch, &mut waiters),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        beat.store(now_ms(), Ordering::Relaxed);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => self.accept(cmd, &mut batch, &mut waiters),
                    Err(_) => break,
                }
            }
            match self.write(&batch) {
                Ok(()) => {
                    batch.clear();
                    backoff = Duration::from_millis(100);
                    beat.store(now_ms(), Ordering::Relaxed);
                    for w in waiters.drain(..) {
                        let _ = w.send(());
                    }
                }
                Err(e) => {
                    // Keep the batch; later results queue up in the channel.
                    tracing::warn!(error = %e, pending = batch.len(), retry_in = ?backoff, "writing results failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if !batch.is_empty() {
            // Shutting down: a last attempt or two, then say what is lost.
            for _ in 0..3 {
                match self.write(&batch) {
                    Ok(()) => {
                        batch.clear();
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "final write of results failed");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
            if !batch.is_empty() {
                tracing::error!(
                    lost = batch.len(),
                    "results could not be written before exit"
                );
            }
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }

    fn accept(
        &mut self,
        cmd: Command,
        batch: &mut Vec<ProbeResult>,
        waiters: &mut Vec<oneshot::Sender<()>>,
    ) {
        match cmd {
            Command::Record(r) => batch.push(r),
            Command::SyncProbes(probes, reply) => {
                let _ = reply.send(self.sync_probes(&probes).map_err(|e| e.to_string()));
            }
            Command::Flush(w) => waiters.push(w),
        }
    }

    fn sync_probes(&mut self, probes: &[ProbeMeta]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO probe (name, kind, target) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, target = excluded.target",
            )?;
            for p in probes {
                upsert.execute(params![p.name, p.kind, p.target])?;
            }
        }
        tx.commit()?;
        let mut stmt = self.conn.prepare("SELECT name, id FROM probe")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        self.ids = rows.collect::<rusqlite::Result<_>>()?;
        Ok(())
    }

    fn probe_id(&mut self, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.ids.get(name) {
            return Ok(*id);
        }
        // A probe we were not told about (should not happen): register it bare.
        self.conn.execute(
            "INSERT INTO probe (name, kind, target) VALUES (?1, '', '') ON CONFLICT(name) DO NOTHING",
            params![name],
        )?;
        let id =
            self.conn
                .query_row("SELECT id FROM probe WHERE name = ?1", params![name], |r| {
                    r.get(0)
                })?;
        self.ids.insert(name.to_string(), id);
        Ok(id)
    }

    fn write(&mut self, batch: &[ProbeResult]) -> rusqlite::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids = batch
            .iter()
            .map(|r| self.probe_id(&r.probe))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO result (probe_id, at, status, latency_ms, ttft_ms, http_status, error, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(probe_id, at) DO NOTHING",
            )?;
            for (r, id) in batch.iter().zip(ids) {
                // Two results of one probe in the same millisecond (a clock
                // stepped back): move the later one along rather than lose it.
                let mut at = r.at.timestamp_millis();
                loop {
                    let n = insert.execute(params![
                        id,
                        at,
                        r.status.code(),
                        r.latency_ms,
                        r.ttft_ms,
                        r.http_status,
                        r.error,
                        r.detail
                    ])?;
                    if n == 1 {
                        break;
                    }
                    at += 1;
                }
            }
        }
        tx.commit()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
