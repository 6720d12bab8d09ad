//! `config check`: the config has already been loaded and validated (secrets
//! resolved) by the time this runs; print what will be probed, how often,
//! and who hears about it. Secrets show only where they come from.

use crate::config::{ChannelKind, Config, ProbeKind};
use crate::notify::message::span;

/// A webhook URL's path is often its credential (Slack, Discord, ntfy
/// topics): show where it goes, not the token.
fn without_path(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map_or_else(String::new, |p| format!(":{p}"));
            let rest = if u.path() == "/" && u.query().is_none() {
                "/"
            } else {
                "/…"
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "(unparsable URL)".to_string(),
    }
}

pub fn run(cfg: &Config) {
    print!("{}", summary(cfg));
}

pub fn summary(cfg: &Config) -> String {
    let mut out = String::new();
    let source = cfg.source.as_ref().map_or_else(
        || "built-in default (no config file)".to_string(),
        |p| p.display().to_string(),
    );
    out.push_str(&format!("config:    {source}\n"));
    out.push_str(&format!(
        "database:  {} (raw results kept {})\n",
        cfg.storage.path.display(),
        span(cfg.storage.retention)
    ));
    if cfg.canaries.is_empty() {
        out.push_str("canaries:  none (offline detection is off)\n");
    } else {
        out.push_str(&format!("canaries:  {}\n", cfg.canaries.join(", ")));
    }
    out.push_str(&format!("\nprobes ({}):\n", cfg.probes.len()));
    for p in &cfg.probes {
        let key = match &p.kind {
            ProbeKind::Http { .. } => String::new(),
            ProbeKind::Chat { api_key, .. }
            | ProbeKind::Models { api_key, .. }
            | ProbeKind::Balance { api_key, .. } => match api_key {
                Some(k) => format!(", key from {}", k.origin),
                None => ", no key".to_string(),
            },
        };
        out.push_str(&format!(
            "  {:<12} {:<8} {}  ->  {}\n               timeout {}, stall {}, slow above {}, outage after {} failures, \
             recovered after {} successes, every {} while down{}\n",
            p.name,
            p.kind_name(),
            p.schedule.describe(),
            p.target(),
            span(p.timeout),
            span(p.stall_timeout),
            span(p.slow_threshold),
            p.failure_threshold,
            p.success_threshold,
            span(p.outage_interval),
            key,
        ));
    }
    if let Some(smtp) = &cfg.smtp {
        out.push_str(&format!(
            "\nsmtp:      {}:{} ({:?}), from {}{}\n",
            smtp.host,
            smtp.port,
            smtp.security,
            smtp.from,
            smtp.password
                .as_ref()
                .map_or(String::new(), |p| format!(", password from {}", p.origin)),
        ));
    }
    if cfg.channels.is_empty() {
        out.push_str("\nchannels:  none (events go to the log only)\n");
    } else {
        out.push_str(&format!("\nchannels ({}):\n", cfg.channels.len()));
        for c in &cfg.channels {
            let target = match &c.kind {
                ChannelKind::Email { to } => format!("email to {}", to.join(", ")),
                ChannelKind::Webhook {
                    url,
                    format,
                    secret,
                } => format!(
                    "webhook {} ({}{})",
                    without_path(url),
                    format!("{format:?}").to_lowercase(),
                    if secret.is_some() { ", signed" } else { "" }
                ),
            };
            let events: Vec<&str> = c.events.iter().map(|e| e.as_str()).collect();
            let probes = c
                .probes
                .as_ref()
                .map_or("every probe".to_string(), |p| p.join(", "));
            out.push_str(&format!(
                "  {:<12} {target}\n               events: {}; probes: {probes}\n",
                c.name,
                events.join(", ")
            ));
        }
    }
    out.push_str("\nconfig OK\n");
    out
}
