//! `notify test`: send a `test` event through the real channels now, from
//! this process, and say what each channel answered. Nothing is queued: this
//! is a live check of the channel settings, not a daemon event.

use chrono::Utc;

use super::{EXIT_OK, EXIT_UNAVAILABLE, UsageError};
use crate::config::Config;
use crate::event::EventKind;
use crate::notify::dispatch;
use crate::notify::{Notification, message};
use crate::probe::build_client;

pub async fn run(cfg: &Config, only: Option<&str>) -> anyhow::Result<u8> {
    if cfg.channels.is_empty() {
        return Err(UsageError(
            "no [[channel]] is configured; add one to the config (see config.example.toml)".into(),
        )
        .into());
    }
    if let Some(name) = only {
        if !cfg.channels.iter().any(|c| c.name == name) {
            let known: Vec<&str> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
            return Err(UsageError(format!(
                "no channel named {name:?}; configured channels: {}",
                known.join(", ")
            ))
            .into());
        }
    }
    let client = build_client()?;
    let senders = dispatch::senders(cfg, &client).map_err(UsageError)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".to_string());
    let (msg, details) = message::test(&host);
    let now = Utc::now();
    let mut failed = 0;
    for ch in cfg
        .channels
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.name))
    {
        let Some(sender) = senders.get(&ch.name) else {
            continue;
        };
        let n = Notification {
            delivery_id: format!("test-{:x}-{}", now.timestamp_millis(), ch.name),
            event: EventKind::Test,
            probe: None,
            kind: None,
            target: None,
            outage: None,
            message: msg.clone(),
            details: details.clone(),
            created_at: now,
        };
        match sender.send(&n).await {
            Ok(()) => println!("{}: sent", ch.name),
            Err(e) => {
                failed += 1;
                println!(
                    "{}: FAILED ({}): {}",
                    ch.name,
                    if e.permanent {
                        "permanent"
                    } else {
                        "temporary"
                    },
                    e.message
                );
            }
        }
    }
    Ok(if failed == 0 {
        EXIT_OK
    } else {
        EXIT_UNAVAILABLE
    })
}
