//! The daemon: opens the database, starts the writer, the scheduler and the
//! dispatcher, and shuts them down in order when the cancellation token fires.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ProbeConfig};
use crate::notify::dispatch::{self, Dispatcher};
use crate::probe::{Prober, build_client};
use crate::scheduler::Scheduler;
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
/// chance, and only then does this return.
pub async fn run(config: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    let path = config.storage.path.clone();
    let conn = tokio::task::spawn_blocking(move || store::open_writer(&path))
        .await
        .context("database open task failed")??;
    let metas: Vec<ProbeMeta> = config.probes.iter().map(probe_meta).collect();
    let (writer, writer_thread) =
        Writer::spawn(conn, &metas, routes(&config)).map_err(anyhow::Error::msg)?;
    let client = build_client().context("cannot set up the HTTP client")?;
    let prober =
        Arc::new(Prober::new(config.canaries.clone()).context("cannot set up the HTTP client")?);
    let senders = dispatch::senders(&config, &client).map_err(anyhow::Error::msg)?;

    let stop_delivery = CancellationToken::new();
    let dispatcher = tokio::spawn(
        Dispatcher::new(writer.clone(), senders, config.give_up_after)
            .run(stop_delivery.clone(), DELIVERY_DRAIN),
    );
    let mut scheduler = Scheduler::new(prober, writer.clone(), cancel.clone());
    scheduler.apply(&config.probes).await;
    tracing::info!(
        probes = scheduler.len(),
        channels = config.channels.len(),
        database = %config.storage.path.display(),
        config = %config.source.as_ref().map_or_else(|| "built-in default".to_string(), |p| p.display().to_string()),
        "watching"
    );

    cancel.cancelled().await;
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

/// Cancels `cancel` on SIGINT or SIGTERM.
pub fn cancel_on_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
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
