//! Log setup: human-readable lines on stderr. Under systemd (`JOURNAL_STREAM`
//! set) the journal adds its own timestamps, so ours are left out, and each
//! line starts with its syslog priority (`<3>` … `<7>`), which journald reads
//! as the entry's level: `journalctl -p warning` then shows what matters.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// `default_level` applies unless `RUST_LOG` says otherwise: the daemon logs
/// each result at info; one-shot commands only warn.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,lettre=warn"
        ))
    });
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(!journal && !no_color && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if journal {
        builder.event_format(Journal).try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    drop(result);
}

/// The syslog priority journald understands for a tracing level.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `<6>message key=value ...`: no timestamp, the level as a priority prefix.
struct Journal;

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = String::new();
        let mut buf = Writer::new(&mut text);
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(buf, "{}{{{}}}: ", span.name(), fields)?;
                    }
                }
            }
        }
        ctx.format_fields(buf.by_ref(), event)?;
        // journald reads every line as its own entry: a multi-line message
        // (a TOML error with its snippet) keeps its priority on each line.
        let priority = priority(event.metadata().level());
        for line in text.lines() {
            writeln!(writer, "<{priority}>{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
    }
}
