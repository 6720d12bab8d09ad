//! The one writer: a thread that owns the read-write connection.
//!
//! Probes hand results over through an unbounded channel and never wait on
//! the database: a slow disk or a reader holding a lock delays the write, not
//! the probe. A failed write keeps its batch and retries; nothing is dropped.
//! Each result is written with its tracker state, outage rows, events and
//! outbox rows in one transaction (see [`super::record`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tokio::sync::{Notify, oneshot};

use super::note::Notes;
use super::outbox::{self, Attempt, Due};
use super::record::{self, ChannelRoute, Recorded, Routing};
use super::retention::Retention;
use super::rollup;
use crate::outage::TrackerState;

/// Most results written in one transaction.
const MAX_BATCH: usize = 4096;
/// How long a quiet result (one that raises no event) may wait for others
/// to share its commit. A commit per result was a third of the daemon's CPU
/// time with 200 probes (examples/footprint.rs); results that open, extend
/// or close an outage, flushes and full batches never wait.
const LINGER: Duration = Duration::from_secs(1);

/// A probe as the database knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeMeta {
    pub name: String,
    pub kind: String,
    pub target: String,
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum Command {
    Record(Box<Recorded>),
    Configure(Vec<ProbeMeta>, Vec<ChannelRoute>, Reply<()>),
    LoadTracker(String, Reply<TrackerState>),
    Due(i64, Reply<Due>),
    Attempted(Attempt, Reply<()>),
    Flush(oneshot::Sender<()>),
    Retain(Duration),
}

/// Handle to the writer thread. Cloneable; the thread ends once every handle
/// is dropped and the queue is written out.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
    /// Unix ms of the writer's last sign of life (a finished batch or an idle
    /// wake-up), for the watchdog: a stuck writer must not look alive.
    heartbeat: Arc<AtomicI64>,
    /// Woken after a commit that queued deliveries.
    outbox: Arc<Notify>,
    /// The writer thread, unparked by everything except a quiet result:
    /// those wait for the linger to end without waking it one by one.
    thread: std::thread::Thread,
}

impl Drop for Writer {
    /// The last handle gone means shutdown: don't let it wait out a linger.
    fn drop(&mut self) {
        // Close this handle's end first, so that the woken thread sees the
        // queue disconnected (when this was the last) rather than empty.
        let (dead, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, dead));
        self.thread.unpark();
    }
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

fn stopped<E>(_: E) -> String {
    "the database writer has stopped".to_string()
}

impl Writer {
    /// Starts the writer on `conn` with `probes` and `channels` registered
    /// before it returns, so the first results find their probe rows.
    pub fn spawn(
        conn: Connection,
        probes: &[ProbeMeta],
        channels: Vec<ChannelRoute>,
    ) -> Result<(Writer, WriterThread), String> {
        let (tx, rx) = mpsc::channel();
        let heartbeat = Arc::new(AtomicI64::new(now_ms()));
        let outbox = Arc::new(Notify::new());
        let mut state = State {
            conn,
            ids: HashMap::new(),
            routing: Routing::default(),
            outbox: outbox.clone(),
            retention: None,
            notes: Notes::default(),
        };
        state
            .configure(probes, channels)
            .map_err(|e| format!("registering probes in the database failed: {e}"))?;
        let beat = heartbeat.clone();
        let handle = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || state.run(rx, &beat))
            .map_err(|e| format!("cannot start the database writer thread: {e}"))?;
        Ok((
            Writer {
                tx,
                heartbeat,
                outbox,
                thread: handle.thread().clone(),
            },
            WriterThread(handle),
        ))
    }

    /// Queues a result and what it caused. Never blocks.
    pub fn record(&self, rec: Recorded) {
        let quiet = rec.changes.is_empty();
        if self.tx.send(Command::Record(Box::new(rec))).is_err() {
            tracing::error!("database writer has stopped; a result could not be queued");
        }
        if !quiet {
            self.thread.unpark();
        }
    }

    /// Sends a command that must not wait for the linger.
    fn send(&self, cmd: Command) -> Result<(), String> {
        let sent = self.tx.send(cmd).map_err(stopped);
        self.thread.unpark();
        sent
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(stopped)?
    }

    /// Registers a changed probe and channel set (on reload).
    pub async fn configure(
        &self,
        probes: Vec<ProbeMeta>,
        channels: Vec<ChannelRoute>,
    ) -> Result<(), String> {
        self.ask(|r| Command::Configure(probes, channels, r)).await
    }

    /// The tracker state saved for a probe: where a restart resumes.
    pub async fn load_tracker(&self, probe: &str) -> Result<TrackerState, String> {
        self.ask(|r| Command::LoadTracker(probe.to_string(), r))
            .await
    }

    /// Deliveries due at `now_ms`.
    pub async fn due(&self, now_ms: i64) -> Result<Due, String> {
        self.ask(|r| Command::Due(now_ms, r)).await
    }

    /// Records a delivery attempt; resolves once it is committed.
    pub async fn attempted(&self, a: Attempt) -> Result<(), String> {
        self.ask(|r| Command::Attempted(a, r)).await
    }

    /// Keeps raw results for `keep`, deleting older ones in small batches
    /// while the writer is idle (rollups stay for ever). Without this call
    /// nothing is deleted.
    pub fn retain(&self, keep: Duration) {
        if self.send(Command::Retain(keep)).is_err() {
            tracing::error!("database writer has stopped; retention not set");
        }
    }

    /// Resolves once everything queued before it is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Unix ms when the writer last made progress.
    pub fn last_heartbeat_ms(&self) -> i64 {
        self.heartbeat.load(Ordering::Relaxed)
    }

    /// Notified after each commit that queued deliveries.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox.clone()
    }
}

struct State {
    conn: Connection,
    ids: HashMap<String, i64>,
    routing: Routing,
    outbox: Arc<Notify>,
    retention: Option<Retention>,
    notes: Notes,
}

impl State {
    fn run(&mut self, rx: mpsc::Receiver<Command>, beat: &AtomicI64) {
        let mut batch: Vec<Recorded> = Vec::new();
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut backoff = Duration::from_millis(100);
        let mut batch_since: Option<Instant> = None;
        loop {
            if batch.is_empty() {
                batch_since = None;
            }
            if batch.is_empty() && waiters.is_empty() {
                // Idle: wake up now and then so the heartbeat shows we are
                // alive, and do housekeeping one short step at a time, so a
                // result that arrives waits for one step at most.
                let due = self.retention.as_ref().is_some_and(|r| r.due(now_ms()));
                let wait = if due {
                    Duration::ZERO
                } else {
                    Duration::from_secs(1)
                };
                match rx.recv_timeout(wait) {
                    Ok(cmd) => self.accept(cmd, &mut batch, &mut waiters),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(r) = &mut self.retention {
                            r.step(&self.conn, now_ms());
                        }
                        beat.store(now_ms(), Ordering::Relaxed);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            let mut closed = false;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => self.accept(cmd, &mut batch, &mut waiters),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let since = *batch_since.get_or_insert_with(Instant::now);
            let urgent = closed
                || !waiters.is_empty()
                || batch.len() >= MAX_BATCH
                || batch.iter().any(|r| !r.changes.is_empty());
            let left = LINGER.saturating_sub(since.elapsed());
            if !urgent && !batch.is_empty() && !left.is_zero() {
                // Parked, not blocked on the queue: quiet results pile up
                // without waking this thread; anything urgent unparks it.
                std::thread::park_timeout(left);
                continue;
            }
            match self.write(&batch) {
                Ok(queued) => {
                    batch.clear();
                    batch_since = None;
                    backoff = Duration::from_millis(100);
                    beat.store(now_ms(), Ordering::Relaxed);
                    if queued > 0 {
                        self.outbox.notify_one();
                    }
                    for w in waiters.drain(..) {
                        let _ = w.send(());
                    }
                }
                Err(e) if closed => {
                    // Shutting down: a few last attempts below, then say
                    // what is lost, rather than retry until systemd kills us.
                    tracing::error!(error = %e, pending = batch.len(), "writing results failed while shutting down");
                    break;
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
                    Ok(_) => {
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

    /// Handles a command; results join the batch, everything else is
    /// answered at once (after writing the batch, so answers see it).
    fn accept(
        &mut self,
        cmd: Command,
        batch: &mut Vec<Recorded>,
        waiters: &mut Vec<oneshot::Sender<()>>,
    ) {
        let cmd = match cmd {
            Command::Record(r) => {
                batch.push(*r);
                return;
            }
            Command::Flush(w) => {
                waiters.push(w);
                return;
            }
            Command::Retain(keep) => {
                self.retention = Some(Retention::new(keep, now_ms()));
                return;
            }
            other => other,
        };
        if !batch.is_empty() {
            match self.write(batch) {
                Ok(queued) => {
                    batch.clear();
                    if queued > 0 {
                        self.outbox.notify_one();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "writing results failed; will retry"),
            }
        }
        match cmd {
            Command::Configure(probes, channels, reply) => {
                let _ = reply.send(self.configure(&probes, channels).map_err(|e| e.to_string()));
            }
            Command::LoadTracker(name, reply) => {
                // A result still waiting to be written (its write failed
                // above) knows the newest state; the database is behind it.
                let pending = batch.iter().rev().find(|r| r.result.probe == name);
                let state = match pending {
                    Some(r) => Ok(r.state.clone()),
                    None => self
                        .probe_id(&name)
                        .and_then(|id| record::load_tracker(&self.conn, id)),
                };
                let _ = reply.send(state.map_err(|e| e.to_string()));
            }
            Command::Due(now, reply) => {
                let _ = reply.send(outbox::due(&self.conn, now, 256).map_err(|e| e.to_string()));
            }
            Command::Attempted(a, reply) => {
                let _ =
                    reply.send(outbox::record_attempt(&self.conn, &a).map_err(|e| e.to_string()));
            }
            Command::Record(_) | Command::Flush(_) | Command::Retain(_) => {}
        }
    }

    fn configure(
        &mut self,
        probes: &[ProbeMeta],
        channels: Vec<ChannelRoute>,
    ) -> rusqlite::Result<()> {
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
        self.routing = Routing {
            probes: probes.iter().map(|p| (p.name.clone(), p.clone())).collect(),
            channels,
        };
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

    /// Writes the batch in one transaction; returns the outbox rows queued.
    fn write(&mut self, batch: &[Recorded]) -> rusqlite::Result<usize> {
        let written = self.write_once(batch);
        if written.is_err() {
            // Rolled back, with any notes it added: their ids are void.
            self.notes.forget();
        }
        written
    }

    fn write_once(&mut self, batch: &[Recorded]) -> rusqlite::Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let ids = batch
            .iter()
            .map(|r| self.probe_id(&r.result.probe))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let tx = self.conn.transaction()?;
        let mut queued = 0;
        let mut rollups = rollup::Batch::default();
        for (rec, id) in batch.iter().zip(ids) {
            queued += record::write(&tx, id, rec, &self.routing, &mut rollups, &mut self.notes)?;
        }
        rollups.flush(&tx)?;
        tx.commit()?;
        Ok(queued)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::fixture;
    use super::*;
    use crate::result::{ProbeResult, Status};

    fn result(at_ms: i64) -> Recorded {
        Recorded {
            result: ProbeResult {
                probe: "web".into(),
                at: chrono::Utc.timestamp_millis_opt(at_ms).unwrap(),
                status: Status::Up,
                latency_ms: Some(100),
                ttft_ms: None,
                http_status: Some(200),
                error: None,
                detail: None,
            },
            state: TrackerState::default(),
            changes: vec![],
        }
    }

    /// A writer with the one probe "web" registered.
    fn spawn_web(conn: Connection) -> (Writer, WriterThread) {
        let meta = ProbeMeta {
            name: "web".into(),
            kind: "http".into(),
            target: "x".into(),
        };
        Writer::spawn(conn, &[meta], vec![]).unwrap()
    }

    /// Makes every insert of a result fail, as a full disk would.
    fn refuse_results(conn: &Connection) {
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON result BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
        )
        .unwrap();
    }

    #[tokio::test]
    async fn quiet_results_share_a_commit_and_events_do_not_wait() {
        let (dir, conn) = fixture::db();
        let (writer, thread) = spawn_web(conn);
        let reader = super::super::open_reader(&dir.path().join("h.db")).unwrap();
        let count = || -> i64 {
            reader
                .query_row("SELECT count(*) FROM result", [], |r| r.get(0))
                .unwrap()
        };
        let now = now_ms();
        // Quiet results wait (well under a second here) for company...
        writer.record(result(now));
        writer.record(result(now + 1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count(), 0, "quiet results lingered");
        // ...and are all written within LINGER.
        let start = std::time::Instant::now();
        while count() < 2 {
            assert!(start.elapsed() < LINGER * 3, "quiet results never written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A result that raises an event is written at once, with what waits.
        writer.record(result(now + 2));
        let mut loud = result(now + 3);
        loud.result.status = Status::AuthError;
        loud.changes = vec![crate::outage::Change::ActionNeeded {
            status: Status::AuthError,
        }];
        writer.record(loud);
        let start = std::time::Instant::now();
        while count() < 4 {
            assert!(start.elapsed() < LINGER / 2, "an event waited");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(writer);
        thread.join().await;
    }

    #[test]
    fn a_database_that_refuses_writes_does_not_hang_shutdown() {
        let (_dir, conn) = fixture::db();
        refuse_results(&conn);
        let (writer, thread) = spawn_web(conn);
        writer.record(result(now_ms()));
        drop(writer);
        // It tries a few more times, says what is lost, and ends.
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = thread.0.join();
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(15)).is_ok(),
            "the writer kept retrying after its last handle was dropped"
        );
    }

    #[tokio::test]
    async fn a_tracker_asked_for_while_writes_fail_is_the_newest() {
        let (_dir, conn) = fixture::db();
        refuse_results(&conn);
        let (writer, thread) = spawn_web(conn);
        let mut rec = result(now_ms());
        rec.state.fail_streak = 2;
        rec.state.fail_started_ms = Some(now_ms());
        writer.record(rec);
        // The result cannot be written, but a probe restarted by a reload
        // resumes from it, not from the older state in the database.
        let state = writer.load_tracker("web").await.unwrap();
        assert_eq!(state.fail_streak, 2);
        drop(writer);
        thread.join().await;
    }

    #[tokio::test]
    async fn retention_runs_between_batches_while_results_keep_coming() {
        let (dir, mut conn) = fixture::db();
        let now = now_ms();
        let old: Vec<_> = (0..12_000)
            .map(|i| (now - 3 * 86_400_000 + i * 1000, Status::Up, Some(100)))
            .collect();
        fixture::write(&mut conn, "web", &old);
        let (writer, thread) = spawn_web(conn);
        writer.retain(Duration::from_secs(86_400));
        let reader = super::super::open_reader(&dir.path().join("h.db")).unwrap();
        let count = |sql: &str| -> i64 { reader.query_row(sql, [], |r| r.get(0)).unwrap() };
        let mut sent = 0;
        let start = std::time::Instant::now();
        while count("SELECT count(*) FROM result") != sent {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "old results still there"
            );
            writer.record(result(now + sent));
            sent += 1;
            writer.flush().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(writer);
        thread.join().await;
        // Every new result is there, and the rollups still count the old ones.
        assert_eq!(count("SELECT count(*) FROM result"), sent);
        assert_eq!(count("SELECT sum(results) FROM rollup"), 12_000 + sent);
    }
}
