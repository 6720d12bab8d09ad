//! Runs each probe on its schedule: one lightweight task per probe, no
//! threads, no polling: each task sleeps until its next deadline.
//!
//! First runs are spread over the interval (at most a minute), so a hundred
//! probes never fire in the same millisecond. A probe never overlaps itself:
//! the next run is planned after the current one ends, and ticks missed while
//! it ran are skipped, not replayed in a burst.
//!
//! Each task also carries its probe's outage tracker state (loaded from the
//! database when it starts, so a restart resumes), applies the pure
//! [`outage::step`] to every result, and while in outage probes every
//! `outage_interval` so a recovery is seen within seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ProbeConfig;
use crate::notify::message;
use crate::outage::{self, Thresholds, TrackerState};
use crate::probe::Prober;
use crate::result::{ProbeResult, Status};
use crate::schedule::Schedule;
use crate::store::record::Recorded;
use crate::store::writer::Writer;

/// First runs are spread over at most this much time.
const MAX_SPREAD: Duration = Duration::from_secs(60);
/// At shutdown, an in-flight probe gets this long to finish before it is cut
/// (a cut run records nothing: half an answer is not a result).
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

struct Task {
    config: Arc<ProbeConfig>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// An open outage as the service status line shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenBrief {
    pub cause: Status,
    pub started_ms: i64,
}

/// Which probes are in outage right now, kept by the probe tasks.
pub type Board = Arc<Mutex<BTreeMap<String, OpenBrief>>>;

/// The set of running probe tasks.
pub struct Scheduler {
    prober: Arc<Prober>,
    writer: Writer,
    cancel: CancellationToken,
    tasks: HashMap<String, Task>,
    board: Board,
}

impl Scheduler {
    /// `cancel` stops every task; a child token per task lets a reload stop one.
    pub fn new(prober: Arc<Prober>, writer: Writer, cancel: CancellationToken) -> Scheduler {
        Scheduler {
            prober,
            writer,
            cancel,
            tasks: HashMap::new(),
            board: Board::default(),
        }
    }

    /// Swaps the prober (new canaries) and restarts every task with it. The
    /// tasks reload their outage state from the writer, which answers only
    /// after writing what they queued: nothing is lost or re-announced.
    pub async fn replace_prober(&mut self, prober: Arc<Prober>, probes: &[ProbeConfig]) {
        self.prober = prober;
        self.stop(self.tasks.keys().cloned().collect()).await;
        self.apply(probes).await;
    }

    /// Cancels the named tasks together, then waits for all of them, so a
    /// reload waits one drain grace at most, not one per probe.
    async fn stop(&mut self, names: Vec<String>) {
        let stopping: Vec<Task> = names.iter().filter_map(|n| self.tasks.remove(n)).collect();
        for t in &stopping {
            t.cancel.cancel();
        }
        for t in stopping {
            let _ = t.handle.await;
        }
        if let Ok(mut board) = self.board.lock() {
            for n in &names {
                board.remove(n);
            }
        }
    }

    /// True while every probe task is running: a task that died (a panic)
    /// must stop the watchdog pings so systemd restarts us.
    pub fn healthy(&self) -> bool {
        self.tasks.values().all(|t| !t.handle.is_finished())
    }

    /// One line for `systemctl status`: "4 probes, 1 in outage (api-flash, busy 12m)".
    pub fn status_line(&self, now_ms: i64) -> String {
        let n = self.tasks.len();
        let probes = if n == 1 {
            "1 probe".to_string()
        } else {
            format!("{n} probes")
        };
        let board = match self.board.lock() {
            Ok(b) => b.clone(),
            Err(_) => return probes,
        };
        if board.is_empty() {
            return format!("{probes}, all operational");
        }
        let list: Vec<String> = board
            .iter()
            .map(|(name, o)| {
                format!(
                    "{name}, {} {}",
                    o.cause,
                    message::duration((now_ms - o.started_ms) / 1000)
                )
            })
            .collect();
        format!("{probes}, {} in outage ({})", board.len(), list.join("; "))
    }

    /// Makes the running tasks match `probes`: starts new ones, restarts
    /// changed ones, stops removed ones. Unchanged probes keep their rhythm.
    pub async fn apply(&mut self, probes: &[ProbeConfig]) {
        let wanted: HashMap<&str, &ProbeConfig> =
            probes.iter().map(|p| (p.name.as_str(), p)).collect();
        let stale: Vec<String> = self
            .tasks
            .iter()
            .filter(|(name, t)| wanted.get(name.as_str()).is_none_or(|p| **p != *t.config))
            .map(|(name, _)| name.clone())
            .collect();
        self.stop(stale).await;
        let count = probes.len();
        for (index, probe) in probes.iter().enumerate() {
            if self.tasks.contains_key(&probe.name) {
                continue;
            }
            let config = Arc::new(probe.clone());
            let cancel = self.cancel.child_token();
            let offset = first_offset(index, count, &probe.schedule);
            let handle = tokio::spawn(probe_loop(
                config.clone(),
                offset,
                self.prober.clone(),
                self.writer.clone(),
                cancel.clone(),
                self.board.clone(),
            ));
            self.tasks.insert(
                probe.name.clone(),
                Task {
                    config,
                    cancel,
                    handle,
                },
            );
        }
    }

    /// Waits for every task to end (after the shared token was cancelled).
    pub async fn join(self) {
        for (_, task) in self.tasks {
            task.cancel.cancel();
            let _ = task.handle.await;
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// When probe `index` of `count` first runs: evenly spread over its interval,
/// capped at a minute so a slow probe still reports soon after start. Cron
/// probes run when their expression says.
pub fn first_offset(index: usize, count: usize, schedule: &Schedule) -> Duration {
    match schedule {
        Schedule::Every(every) if count > 1 => {
            let spread = (*every).min(MAX_SPREAD);
            spread.mul_f64(index as f64 / count as f64)
        }
        _ => Duration::ZERO,
    }
}

/// The next time a run is due, strictly after `now` when the probe ran late.
fn next_interval_tick(prev: Instant, every: Duration, now: Instant) -> Instant {
    let mut next = prev + every;
    if next <= now {
        // Missed ticks are skipped, keeping the original phase.
        let behind = now.duration_since(next).as_nanos();
        let steps = behind / every.as_nanos().max(1) + 1;
        next += every.mul_f64(steps as f64);
    }
    next
}

fn next_cron_tick(schedule: &Schedule) -> Option<Instant> {
    let now = Utc::now();
    let at = schedule.next_cron_after(now)?;
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(Instant::now() + wait)
}

async fn probe_loop(
    probe: Arc<ProbeConfig>,
    offset: Duration,
    prober: Arc<Prober>,
    writer: Writer,
    cancel: CancellationToken,
    board: Board,
) {
    let thresholds = Thresholds {
        failure: probe.failure_threshold,
        success: probe.success_threshold,
        reminder_every: probe.reminder_every,
    };
    let mut tracker = match writer.load_tracker(&probe.name).await {
        Ok(state) => state,
        Err(e) => {
            tracing::error!(probe = %probe.name, error = %e, "cannot load the outage state; starting afresh");
            TrackerState::default()
        }
    };
    if tracker.in_outage() {
        tracing::info!(probe = %probe.name, "resuming an open outage");
    }
    publish(&board, &probe.name, &tracker);
    // The regular rhythm, kept apart from the faster outage rhythm so that
    // recovery returns to the original phase.
    let mut regular = match &probe.schedule {
        Schedule::Every(_) => Instant::now() + offset,
        cron => match next_cron_tick(cron) {
            Some(t) => t,
            None => {
                tracing::error!(probe = %probe.name, "cron schedule has no future run; probe stopped");
                // Idle, not ended: a finished task reads as a crashed one
                // and stops the watchdog pings (Scheduler::healthy).
                cancel.cancelled().await;
                return;
            }
        },
    };
    let mut next = regular;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let run = prober.run(&probe);
        tokio::pin!(run);
        let result = tokio::select! {
            r = &mut run => Some(r),
            _ = cancel.cancelled() => tokio::time::timeout(DRAIN_GRACE, &mut run).await.ok(),
        };
        match result {
            Some(r) => {
                log_result(&r);
                let (state, changes) =
                    outage::step(&tracker, r.status, r.at.timestamp_millis(), &thresholds);
                tracker = state.clone();
                publish(&board, &probe.name, &tracker);
                writer.record(Recorded {
                    result: r,
                    state,
                    changes,
                });
            }
            None => {
                tracing::info!(probe = %probe.name, "in-flight probe cut at shutdown; nothing recorded")
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        let now = Instant::now();
        if regular <= now {
            regular = match &probe.schedule {
                Schedule::Every(every) => next_interval_tick(regular, *every, now),
                cron => match next_cron_tick(cron) {
                    Some(t) => t,
                    None => {
                        tracing::warn!(probe = %probe.name, "cron schedule has no further run; probe stopped");
                        cancel.cancelled().await;
                        return;
                    }
                },
            };
        }
        next = if tracker.in_outage() {
            regular.min(now + probe.outage_interval)
        } else {
            regular
        };
    }
}

/// Keeps the board in step with this probe's tracker.
fn publish(board: &Board, name: &str, tracker: &TrackerState) {
    if let Ok(mut b) = board.lock() {
        match &tracker.open {
            Some(o) => {
                b.insert(
                    name.to_string(),
                    OpenBrief {
                        cause: o.causes.main(),
                        started_ms: o.started_ms,
                    },
                );
            }
            None => {
                b.remove(name);
            }
        }
    }
}

fn log_result(r: &ProbeResult) {
    tracing::info!(
        probe = %r.probe,
        status = %r.status,
        latency_ms = r.latency_ms,
        ttft_ms = r.ttft_ms,
        http_status = r.http_status,
        error = r.error.as_deref(),
        detail = r.detail.as_deref(),
        "result"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_runs_are_spread_evenly() {
        let every = Schedule::Every(Duration::from_secs(10));
        let offsets: Vec<_> = (0..200).map(|i| first_offset(i, 200, &every)).collect();
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[100], Duration::from_secs(5));
        assert!(
            offsets
                .windows(2)
                .all(|w| w[1] - w[0] == Duration::from_millis(50))
        );
        // A long interval still starts everything within the first minute.
        let hourly = Schedule::Every(Duration::from_secs(3600));
        assert!(first_offset(9, 10, &hourly) < Duration::from_secs(60));
        assert_eq!(first_offset(0, 1, &hourly), Duration::ZERO);
    }

    #[test]
    fn late_runs_skip_missed_ticks() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(next_interval_tick(t0, s * 10, t0 + s), t0 + s * 10);
        // The run took 25 s of a 10 s interval: next tick at 30 s, not 10 s and 20 s.
        assert_eq!(next_interval_tick(t0, s * 10, t0 + s * 25), t0 + s * 30);
        assert_eq!(next_interval_tick(t0, s * 10, t0 + s * 20), t0 + s * 30);
    }

    /// A cron schedule with a year (`… 2030`) runs out. Its task must not
    /// end: a finished task reads as a crashed one, the watchdog pings stop
    /// and systemd kills the daemon, and with it every other probe.
    #[tokio::test]
    async fn a_cron_probe_that_ran_out_keeps_the_daemon_healthy() {
        let cfg = crate::config::parse(
            "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n\
             schedule = \"0 0 * * *\"\n",
            None,
        )
        .unwrap();
        let mut probe = cfg.probes[0].clone();
        // Built directly: the config refuses a schedule that never fires
        // again, but one that fired until now gets here.
        probe.schedule = Schedule::Cron {
            expr: "0 0 0 1 1 * 2020".into(),
            parsed: Box::new("0 0 0 1 1 * 2020".parse().unwrap()),
        };
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_writer(&dir.path().join("h.db")).unwrap();
        let meta = crate::daemon::probe_meta(&probe);
        let (writer, thread) = Writer::spawn(conn, &[meta], vec![]).unwrap();
        let cancel = CancellationToken::new();
        let mut scheduler = Scheduler::new(
            Arc::new(Prober::new(vec![]).unwrap()),
            writer.clone(),
            cancel.clone(),
        );
        scheduler.apply(&[probe]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            scheduler.healthy(),
            "a probe with no run left ended its task"
        );
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), scheduler.join())
            .await
            .expect("the task ends when cancelled");
        drop(writer);
        thread.join().await;
    }
}
