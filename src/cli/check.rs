//! `check`: probe once now, print, and say through the exit code whether
//! everything is usable. Nothing is written to the history.

use std::sync::Arc;

use anyhow::Context;
use futures_util::future::join_all;

use super::output::{self, Format};
use super::{EXIT_OK, EXIT_UNAVAILABLE, UsageError};
use crate::config::{Config, ProbeConfig};
use crate::probe::Prober;

pub async fn run(cfg: &Config, names: &[String], json: bool) -> anyhow::Result<u8> {
    let selected: Vec<&ProbeConfig> = if names.is_empty() {
        cfg.probes.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                cfg.probes.iter().find(|p| &p.name == n).ok_or_else(|| {
                    UsageError(format!(
                        "no probe named {n:?}; configured probes: {}",
                        cfg.probes
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let prober =
        Arc::new(Prober::new(cfg.canaries.clone()).context("cannot set up the HTTP client")?);
    let results = join_all(selected.iter().map(|p| prober.run(p))).await;
    let format = if json { Format::Json } else { Format::Table };
    print!("{}", output::results(&results, format));
    Ok(if results.iter().all(|r| r.status.is_usable()) {
        EXIT_OK
    } else {
        EXIT_UNAVAILABLE
    })
}
