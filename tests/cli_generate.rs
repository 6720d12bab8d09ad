//! `completions` and `man` run at package build time, where there is no
//! config file and no database: they must work from the argument definitions
//! alone, even when the config they would otherwise load is missing.

use assert_cmd::Command;
use predicates::prelude::*;

const SUBCOMMANDS: [&str; 11] = [
    "run",
    "check",
    "status",
    "outages",
    "results",
    "stats",
    "notifications",
    "notify",
    "config",
    "completions",
    "man",
];

/// The binary with a config path that does not exist, in an empty directory
/// (so no `./deepseek-watch.db` can be found or made by accident).
fn cmd(dir: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("deepseek-watch").unwrap();
    c.current_dir(dir.path())
        .env("DEEPSEEK_WATCH_CONFIG", dir.path().join("missing.toml"))
        .env_remove("DEEPSEEK_API_KEY")
        .env_remove("STATE_DIRECTORY");
    c
}

#[test]
fn bash_completions_name_every_subcommand_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(&dir)
        .args(["completions", "bash"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let script = String::from_utf8(out).unwrap();
    assert!(script.contains("complete -F _deepseek__watch"), "{script}");
    for sub in SUBCOMMANDS {
        assert!(script.contains(sub), "no {sub:?} in the bash script");
    }
    assert!(script.contains("--format"));
    // Nothing was created where it ran.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn every_shell_is_offered_and_an_unknown_one_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("zsh", "#compdef deepseek-watch"),
        ("fish", "complete -c deepseek-watch"),
        ("elvish", "edit:completion:arg-completer[deepseek-watch]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        cmd(&dir)
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker));
    }
    cmd(&dir)
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bash"));
}

#[test]
fn the_man_page_is_roff_and_documents_the_commands_with_an_explicit_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(&dir)
        .arg("--config")
        .arg(dir.path().join("also-missing.toml"))
        .arg("man")
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let page = String::from_utf8(out).unwrap();
    assert!(page.starts_with(".TH deepseek-watch 1 "), "{page}");
    for sub in [
        "run",
        "check",
        "status",
        "outages",
        "notify test",
        "config check",
    ] {
        assert!(
            page.contains(&format!(".SS \"deepseek-watch {sub}\"")),
            "no section for {sub}"
        );
    }
    assert!(page.contains("/etc/deepseek\\-watch/config.toml"));
    assert!(page.contains("CREDENTIALS_DIRECTORY"));
}

#[test]
fn a_missing_explicit_config_still_fails_the_commands_that_need_it() {
    // The early exit for `man` and `completions` must not weaken this.
    let dir = tempfile::tempdir().unwrap();
    cmd(&dir)
        .args(["config", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}
