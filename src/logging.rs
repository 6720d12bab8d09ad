//! Log setup: human-readable lines on stderr. Under systemd (`JOURNAL_STREAM`
//! set) the journal adds its own timestamps, so ours are left out.

use tracing_subscriber::EnvFilter;

/// `default_level` applies unless `RUST_LOG` says otherwise: the daemon logs
/// each result at info; one-shot commands only warn.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn"
        ))
    });
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(!no_color && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    drop(result);
}
