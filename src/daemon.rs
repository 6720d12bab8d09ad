//! The daemon: opens the database, starts the writer, the scheduler and the
//! dispatcher, and shuts them down in order when the cancellation token fires.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, Config, ConfigSource, ProbeConfig};
use crate::notify::dispatch::{self, Channels, Dispatcher};
use crate::probe::{Prober, build_client};
use crate::scheduler::Scheduler;
use crate::service;
use crate::store::record::ChannelRoute;
use crate::store::{self, writer::ProbeMeta, writer::Writer};

/// At shutdown, pending deliveries get this long before they are left for
/// the next start.
pub const DELIVERY_DRAIN: Duration = Duration::from_secs(5);

/// The database's view of a configured probe.
pub fn probe_meta(p: &ProbeConfig) -> ProbeMeta {
    ProbeMeta {
        name: p.name.clone(),
        kind: p.kind_name().to_string(),
        target: p.target(),
    }
}

/// Who hears what, as the writer routes events.
pub fn routes(cfg: &Config) -> Vec<ChannelRoute> {
    cfg.channels
        .iter()
        .map(|c| ChannelRoute {
            name: c.name.clone(),
            events: c.events.clone(),
            probes: c.probes.clone(),
        })
        .collect()
}

/// Runs until `cancel` fires, then drains: in-flight probes get a bounded
/// grace, every queued result is written, pending deliveries get a bounded
/// chance, and only then does this return. With a `source`, SIGHUP re-reads
/// the config from it; a config that does not validate is logged and the
/// running one kept.
pub async fn run(
    config: Config,
    source: Option<ConfigSource>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    // Listened for from the start: SIGHUP's default action would kill us in
    // the middle of a schema migration. One that arrives early is a reload
    // once running.
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let path = config.storage.path.clone();
    let mut open = tokio::task::spawn_blocking(move || store::open_writer(&path));
    // While a migration runs, keep asking systemd for more start-up time.
    let mut extend = tokio::time::interval(Duration::from_secs(10));
    let conn = loop {
        tokio::select! {
            opened = &mut open => break opened.context("database open task failed")??,
            _ = extend.tick() => service::extend_timeout(Duration::from_secs(30)),
        }
    };
    let metas: Vec<ProbeMeta> = config.probes.iter().map(probe_meta).collect();
    let (writer, writer_thread) =
        Writer::spawn(conn, &metas, routes(&config)).map_err(anyhow::Error::msg)?;
    writer.retain(config.storage.retention);
    let client = build_client().context("cannot set up the HTTP client")?;
    let prober =
        Arc::new(Prober::new(config.canaries.clone()).context("cannot set up the HTTP client")?);
    let senders = dispatch::senders(&config, &client).map_err(anyhow::Error::msg)?;
    let (channels_tx, channels_rx) = watch::channel(Arc::new(Channels {
        senders,
        give_up_after: config.give_up_after,
    }));

    let stop_delivery = CancellationToken::new();
    let dispatcher = tokio::spawn(
        Dispatcher::new(writer.clone(), channels_rx).run(stop_delivery.clone(), DELIVERY_DRAIN),
    );
    let mut scheduler = Scheduler::new(prober, writer.clone(), cancel.clone());
    scheduler.apply(&config.probes).await;
    tracing::info!(
        probes = scheduler.len(),
        channels = config.channels.len(),
        database = %config.storage.path.display(),
        config = %describe_source(&config),
        "watching"
    );
    let mut shown = scheduler.status_line(now_ms());
    service::ready(&shown);

    // Ping at half the watchdog period; without a watchdog, refresh STATUS.
    let period = service::watchdog_period().map_or(STATUS_EVERY, |p| (p / 2).min(STATUS_EVERY));
    let stale_after = service::watchdog_period().unwrap_or(Duration::from_secs(30));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running = Running {
        config,
        client,
        channels: channels_tx,
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = hangup.recv() => {
                service::reloading();
                running.reload(source.as_ref(), &mut scheduler, &writer).await;
                shown = scheduler.status_line(now_ms());
                service::ready(&shown);
            }
            _ = tick.tick() => {
                let writer_age = Duration::from_millis(u64::try_from(now_ms() - writer.last_heartbeat_ms()).unwrap_or(0));
                if scheduler.healthy() && writer_age < stale_after {
                    service::watchdog();
                } else {
                    tracing::error!(
                        probes_healthy = scheduler.healthy(),
                        writer_silent_for = ?writer_age,
                        "not pinging the watchdog: a probe task or the database writer is stuck"
                    );
                }
                let line = scheduler.status_line(now_ms());
                if line != shown {
                    service::status(&line);
                    shown = line;
                }
            }
        }
    }
    service::stopping();
    tracing::info!(
        "shutting down: finishing in-flight probes, writing results, sending what is due"
    );
    scheduler.join().await;
    writer.flush().await;
    stop_delivery.cancel();
    let _ = dispatcher.await;
    drop(writer);
    writer_thread.join().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often STATUS is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn describe_source(cfg: &Config) -> String {
    cfg.source.as_ref().map_or_else(
        || "built-in default".to_string(),
        |p| p.display().to_string(),
    )
}

/// What a reload may replace.
struct Running {
    config: Config,
    client: reqwest::Client,
    channels: watch::Sender<Arc<Channels>>,
}

impl Running {
    /// Re-reads the config and applies it: probes added, removed or changed,
    /// channels and canaries replaced. Anything invalid keeps the old config
    /// running, whole.
    async fn reload(
        &mut self,
        source: Option<&ConfigSource>,
        scheduler: &mut Scheduler,
        writer: &Writer,
    ) {
        let Some(source) = source else {
            tracing::warn!("SIGHUP: no config source to reload from; keeping the running config");
            return;
        };
        let new = match config::load(source) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload refused, keeping the running config: {e}");
                return;
            }
        };
        let senders = match dispatch::senders(&new, &self.client) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("reload refused, keeping the running config: {e}");
                return;
            }
        };
        let prober = if new.canaries != self.config.canaries {
            match Prober::new(new.canaries.clone()) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::error!(error = %e, "reload refused, keeping the running config: cannot build the HTTP client");
                    return;
                }
            }
        } else {
            None
        };
        if new.storage != self.config.storage {
            tracing::warn!("storage settings changed; they take effect at the next restart");
        }
        let metas: Vec<ProbeMeta> = new.probes.iter().map(probe_meta).collect();
        if let Err(e) = writer.configure(metas, routes(&new)).await {
            tracing::error!(error = %e, "reload refused, keeping the running config: cannot register the probes");
            return;
        }
        // At once: the writer now routes events to the new channels, and
        // restarting probes below may take a drain grace; a delivery started
        // meanwhile with the old senders would fail as "no longer configured".
        self.channels.send_replace(Arc::new(Channels {
            senders,
            give_up_after: new.give_up_after,
        }));
        match prober {
            Some(p) => scheduler.replace_prober(p, &new.probes).await,
            None => scheduler.apply(&new.probes).await,
        }
        tracing::info!(
            probes = new.probes.len(),
            channels = new.channels.len(),
            config = %describe_source(&new),
            "config reloaded"
        );
        let storage = self.config.storage.clone();
        self.config = new;
        // The database in use stays the one opened at start.
        self.config.storage = storage;
    }
}

/// Cancels `cancel` on SIGINT or SIGTERM.
pub fn cancel_on_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        cancel.cancel();
    });
    Ok(())
}
