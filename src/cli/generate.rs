//! `completions` and `man`: shell completion scripts and the manual page,
//! generated from the clap definitions so they can never drift from what the
//! parser accepts.
//!
//! Neither reads the config nor the database: packaging runs them at build
//! time on a machine that has neither (see `packaging/build-deb`).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;

use super::Cli;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The manual page, deepseek-watch(1), in roff.
///
/// clap_mangen renders the top level (synopsis, global options, version); it
/// would refer each subcommand to a page of its own, which a single-page
/// package would not ship, so every command is written out here instead, with
/// its synopsis and options, followed by the sections a daemon's page needs
/// (exit status, environment, files).
pub fn man_page() -> io::Result<Vec<u8>> {
    let top = Cli::command();
    let name = top.get_name().to_string();
    let version = top.get_version().unwrap_or_default().to_string();
    let man = Man::new(top);
    // The title by hand: roff drops an empty argument, so clap_mangen's empty
    // date would shift the source into its place. No date keeps the page
    // reproducible.
    let mut out =
        format!(".TH {name} 1 \"\" \"{name} {version}\" \"User Commands\"\n").into_bytes();
    out.extend_from_slice(PREAMBLE.as_bytes());
    section(&mut out, |w| man.render_name_section(w), Heading::Keep)?;
    section(&mut out, |w| man.render_synopsis_section(w), Heading::Keep)?;
    section(
        &mut out,
        |w| man.render_description_section(w),
        Heading::Keep,
    )?;
    out.extend_from_slice(DESCRIPTION.as_bytes());
    section(&mut out, |w| man.render_options_section(w), Heading::Keep)?;

    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in Cli::command().get_subcommands() {
        render_command(&mut out, &name, sub)?;
    }

    out.extend_from_slice(TRAILER.as_bytes());
    section(&mut out, |w| man.render_version_section(w), Heading::Keep)?;
    Ok(out)
}

/// Defines `\*(Aq`, the apostrophe clap_mangen writes; it repeats this before
/// every section it renders on its own, so [`section`] drops those copies and
/// the page carries it once.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

#[derive(Clone, Copy, PartialEq)]
enum Heading {
    Keep,
    /// Drop the `.SH …` line, so the section can sit inside a `.SS`.
    Drop,
}

/// Appends one section rendered by clap_mangen, less its repeated preamble
/// and, with [`Heading::Drop`], its heading.
fn section(
    out: &mut Vec<u8>,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    heading: Heading,
) -> io::Result<()> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut dropped_heading = heading == Heading::Keep;
    for line in text.lines() {
        if PREAMBLE.lines().any(|p| p == line) {
            continue;
        }
        if !dropped_heading && line.starts_with(".SH ") {
            dropped_heading = true;
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    Ok(())
}

/// Writes one command (and, for a group such as `notify`, each of its
/// commands) as a `.SS` subsection: synopsis, description, options.
fn render_command(out: &mut Vec<u8>, parent: &str, cmd: &clap::Command) -> io::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let full = format!("{parent} {}", cmd.get_name());
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands() {
            render_command(out, &full, sub)?;
        }
        return Ok(());
    }
    // `-h` is the same on every command and `--config` is documented once,
    // under OPTIONS: the unbuilt subcommand has neither yet, and the help flag
    // is switched off before clap_mangen builds it.
    let sub = cmd.clone().bin_name(&full).disable_help_flag(true);
    let man = Man::new(sub.clone());

    out.extend_from_slice(format!(".SS \"{full}\"\n").as_bytes());
    section(out, |w| man.render_synopsis_section(w), Heading::Drop)?;
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        // A paragraph break, then the text with roff's special leading
        // characters (. and ') neutralised.
        out.extend_from_slice(b".PP\n");
        for line in about.to_string().lines() {
            if line.starts_with('.') || line.starts_with('\'') {
                out.extend_from_slice(b"\\&");
            }
            out.extend_from_slice(line.replace('\\', "\\e").as_bytes());
            out.push(b'\n');
        }
    }
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        out.extend_from_slice(b".RS\n");
        section(out, |w| man.render_options_section(w), Heading::Drop)?;
        out.extend_from_slice(b".RE\n");
    }
    Ok(())
}

/// Follows clap's one-line description.
const DESCRIPTION: &str = r#".PP
deepseek\-watch probes the DeepSeek web chat and API on a schedule, records every result in an SQLite database, turns runs of failures into outages, and sends an email or a webhook when an outage ends. The query commands read the same database while the daemon runs.
.PP
Without a configuration file, \fBrun\fR and \fBcheck\fR use a built\-in default: the web chat at https://chat.deepseek.com/, plus the API when \fBDEEPSEEK_API_KEY\fR is set. See the example configuration for every key.
"#;

/// Sections after the commands.
const TRAILER: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success; for \fBcheck\fR, every probe is usable.
.TP
\fB1\fR
For \fBcheck\fR, some probe is unavailable; otherwise a runtime failure (a database or network error).
.TP
\fB2\fR
Bad usage or an invalid configuration. The message names the file, the key and what to write instead.
.SH ENVIRONMENT
.TP
\fBDEEPSEEK_WATCH_CONFIG\fR
The configuration file, when \fB\-\-config\fR is not given.
.TP
\fBDEEPSEEK_API_KEY\fR
With no configuration file, also probe the API with this key. In a configuration file, a secret written \fB{ env = "VAR" }\fR reads any variable.
.TP
\fBSTATE_DIRECTORY\fR
Set by systemd for \fBStateDirectory=\fR: without \fB[storage] path\fR, the database is \fI$STATE_DIRECTORY/history.db\fR (else \fI./deepseek\-watch.db\fR).
.TP
\fBCREDENTIALS_DIRECTORY\fR
Set by systemd for \fBLoadCredential=\fR: a secret written \fB{ credential = "NAME" }\fR reads \fI$CREDENTIALS_DIRECTORY/NAME\fR.
.TP
\fBJOURNAL_STREAM\fR
Set by systemd: log lines then carry no timestamp of their own (the journal adds one).
.TP
\fBRUST_LOG\fR
Log filter, e.g. \fBdebug\fR or \fBdeepseek_watch=debug\fR.
.TP
\fBNO_COLOR\fR
When set and not empty, logs carry no colour.
.SH FILES
.TP
\fI/etc/deepseek\-watch/config.toml\fR
The configuration, when neither \fB\-\-config\fR nor \fBDEEPSEEK_WATCH_CONFIG\fR names another.
.TP
\fI/var/lib/deepseek\-watch/history.db\fR
The history kept by the systemd service (\fBStateDirectory=deepseek\-watch\fR).
.TP
\fI/usr/lib/systemd/system/deepseek\-watch.service\fR
The hardened systemd unit: \fBsystemctl reload deepseek\-watch\fR re\-reads the configuration and keeps the old one if the new one is invalid.
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.exec\fR(5), \fBsystemd\-creds\fR(1)
"#;

/// Writes generated output to stdout. A reader that stops early
/// (`deepseek-watch man | head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let script = String::from_utf8(completions(shell)).unwrap();
            for word in ["run", "outages", "notifications", "completions"] {
                assert!(script.contains(word), "{shell}: no {word:?} in the script");
            }
        }
    }

    #[test]
    fn the_man_page_documents_each_command_and_its_options() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.starts_with(".TH deepseek-watch 1 "), "{}", &page[..40]);
        assert_eq!(
            page.matches(".ds Aq").count(),
            2,
            "one preamble (two lines)"
        );
        assert!(
            !page.contains("SYNOPSIS\n.SS"),
            "subsections have no .SH of their own"
        );
        assert_eq!(page.matches(".SH SYNOPSIS").count(), 1);
        assert_eq!(page.matches(".SH OPTIONS").count(), 1);
        for heading in [
            ".SS \"deepseek-watch run\"",
            ".SS \"deepseek-watch notify test\"",
            ".SS \"deepseek-watch config check\"",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
        ] {
            assert!(page.contains(heading), "no {heading}");
        }
        // A subcommand's own option, its possible values, and no repeated -h.
        assert!(page.contains("\\-\\-format"));
        assert!(page.contains("csv"));
        assert_eq!(page.matches("Print help").count(), 1);
        // Every subsection body is inside .RS/.RE pairs that balance.
        assert_eq!(page.matches("\n.RS").count(), page.matches("\n.RE").count());
    }

    #[test]
    fn a_section_loses_its_preamble_and_only_the_heading_asked_for() {
        let rendered = format!("{PREAMBLE}.SH OPTIONS\n.TP\nx\n.SH OTHER\n");
        let render = |w: &mut dyn Write| w.write_all(rendered.as_bytes());
        let mut out = Vec::new();
        section(&mut out, render, Heading::Drop).unwrap();
        assert_eq!(out, b".TP\nx\n.SH OTHER\n");
        out.clear();
        section(&mut out, render, Heading::Keep).unwrap();
        assert_eq!(out, b".SH OPTIONS\n.TP\nx\n.SH OTHER\n");
    }
}
