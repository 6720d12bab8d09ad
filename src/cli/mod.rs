//! The command line: argument definitions (clap derive) and dispatch. Each
//! command lives in its own file; this one only routes.

mod check;
mod config_check;
mod generate;
mod history;
mod notify_test;
pub mod output;
mod stats;
pub mod when;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, ConfigError, ConfigSource, Secrets};
pub use output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "deepseek-watch",
    version,
    about = "Watches DeepSeek (web chat and API) and tells you the moment it is usable again",
    long_about = None
)]
pub struct Cli {
    /// Config file [default: /etc/deepseek-watch/config.toml, else a built-in default]
    #[arg(
        long,
        global = true,
        env = "DEEPSEEK_WATCH_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (what systemd starts)
    Run,
    /// Probe once now and print; exit 0 if all are usable, 1 if any is not
    Check {
        /// Probes to run (default: all)
        #[arg(value_name = "PROBE")]
        probes: Vec<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Each probe's state, last result and uptime, from the database
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Outage history, open and closed
    Outages(OutagesArgs),
    /// Recorded probe results
    Results(ResultsArgs),
    /// Uptime, status counts, latency percentiles and outages per probe;
    /// with --by-hour, the busy hours of the day
    Stats(StatsArgs),
    /// Every event and its delivery to each channel: attempts, last error
    Notifications(NotificationsArgs),
    /// Notification commands
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Configuration commands
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `deepseek-watch man | man -l -`
    Man,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Only this probe
    #[arg(long, value_name = "P")]
    pub probe: Option<String>,
    /// From WHEN: a duration back from now (7d, 36h) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Up to WHEN: a duration back from now or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only results with this status (up, slow, busy, rate_limited, down, timeout, auth_error, billing_error, invalid_request, blocked, offline)
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// The newest N results; 0 for all
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this probe
    #[arg(long, value_name = "P")]
    pub probe: Option<String>,
    /// From WHEN: a duration back from now (7d, 36h) or an RFC 3339 time [default: all history]
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Also show the unavailable share for each hour of the day
    #[arg(long)]
    pub by_hour: bool,
    /// Time zone of --by-hour's hours: an IANA name such as Asia/Shanghai
    #[arg(long, value_name = "ZONE", default_value = "UTC", requires = "by_hour")]
    pub tz: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct OutagesArgs {
    /// Only this probe
    #[arg(long, value_name = "P")]
    pub probe: Option<String>,
    /// Outages still going on at or after WHEN (7d, 36h, or RFC 3339)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Outages that started before WHEN
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only outages still open
    #[arg(long)]
    pub open: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Events created at or after WHEN (7d, 36h, or RFC 3339)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only deliveries in this state
    #[arg(long, value_enum)]
    pub state: Option<DeliveryState>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a `test` event through the real channels now
    Test {
        /// Only this channel (default: every channel)
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config, resolve its secrets and print a summary
    Check,
}

/// Bad usage or config: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What a command asks `main` to exit with.
pub const EXIT_OK: u8 = 0;
pub const EXIT_UNAVAILABLE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Loads the config named on the command line or in the environment, else
/// the system file, else the built-in default.
pub fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    let source = match &cli.config {
        Some(p) => ConfigSource::Explicit(p.clone()),
        None => ConfigSource::System,
    };
    // The history commands read the database only: they must work from a
    // shell that cannot see the service's credentials or environment.
    let secrets = match cli.command {
        Command::Status { .. }
        | Command::Results(_)
        | Command::Outages(_)
        | Command::Stats(_)
        | Command::Notifications(_) => Secrets::Skip,
        _ => Secrets::Read,
    };
    config::load_with(&source, secrets)
}

/// Runs the parsed command; returns the exit code.
pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    // Generated from the argument definitions alone: they work without a
    // config file or a database, as packaging needs.
    match cli.command {
        Command::Completions { shell } => {
            generate::write_stdout(&generate::completions(shell))?;
            return Ok(EXIT_OK);
        }
        Command::Man => {
            generate::write_stdout(&generate::man_page()?)?;
            return Ok(EXIT_OK);
        }
        _ => {}
    }
    let cfg = load_config(&cli)?;
    match cli.command {
        Command::Run => {
            if cfg.source.is_none() {
                tracing::warn!(
                    "no config file (looked for --config, $DEEPSEEK_WATCH_CONFIG, {}); using the built-in default",
                    config::SYSTEM_CONFIG
                );
            }
            let cancel = tokio_util::sync::CancellationToken::new();
            crate::daemon::cancel_on_signals(cancel.clone())?;
            let source = match &cli.config {
                Some(p) => ConfigSource::Explicit(p.clone()),
                None => ConfigSource::System,
            };
            crate::daemon::run(cfg, Some(source), cancel).await?;
            Ok(EXIT_OK)
        }
        Command::Check { probes, json } => check::run(&cfg, &probes, json).await,
        Command::Status { json } => history::status(&cfg, json),
        Command::Results(args) => history::results(&cfg, &args),
        Command::Outages(args) => history::outages(&cfg, &args),
        Command::Stats(args) => stats::run(&cfg, &args),
        Command::Notifications(args) => history::notifications(&cfg, &args),
        Command::Notify(NotifyCommand::Test { channel }) => {
            notify_test::run(&cfg, channel.as_deref()).await
        }
        Command::Config(ConfigCommand::Check) => {
            config_check::run(&cfg);
            Ok(EXIT_OK)
        }
        // Answered above, before the config is loaded.
        Command::Completions { .. } | Command::Man => Ok(EXIT_OK),
    }
}

/// Maps an error to its exit code: config and usage problems are 2.
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_UNAVAILABLE
    }
}
