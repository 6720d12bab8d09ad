//! Config loading: the example parses, and every kind of mistake is reported
//! with its file, its key and what to write instead.

use super::*;

const WEB: &str =
    "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"https://chat.deepseek.com/\"\n";

fn ok(text: &str) -> Config {
    match parse(text, Some(Path::new("/etc/dsw.toml"))) {
        Ok(c) => c,
        Err(e) => panic!("expected the config to load, got: {e}"),
    }
}

/// Asserts the config fails and the error names `key` and contains `hint`.
fn fails(text: &str, key: &str, hint: &str) -> ConfigError {
    let e = parse(text, Some(Path::new("/etc/dsw.toml"))).expect_err("config should be rejected");
    assert_eq!(e.file, "/etc/dsw.toml");
    assert!(
        e.key.contains(key),
        "key {:?} should contain {key:?} ({e})",
        e.key
    );
    let shown = e.to_string();
    assert!(shown.contains(hint), "{shown:?} should contain {hint:?}");
    e
}

#[test]
fn example_config_parses() {
    // SAFETY-free: the example reads DEEPSEEK_API_KEY through { env }, so give
    // it a file-based twin instead of touching the process environment.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "sk-test\n").unwrap();
    let text = include_str!("../../config.example.toml")
        .replace("{ env = \"DEEPSEEK_API_KEY\" }", "{ file = \"key\" }");
    let cfg = parse(&text, Some(&dir.path().join("config.toml"))).unwrap();
    assert_eq!(cfg.probes.len(), 4);
    assert_eq!(cfg.probes[0].kind_name(), "http");
    assert_eq!(cfg.probes[1].kind_name(), "chat");
    assert_eq!(
        cfg.probes[3].schedule,
        Schedule::Every(Duration::from_secs(3600))
    );
    assert!(cfg.probes.iter().all(|p| p.failure_threshold == 3));
}

#[test]
fn defaults_are_inherited_and_overridden() {
    let cfg = ok(&format!(
        "[defaults]\ninterval = \"10s\"\ntimeout = \"5s\"\nfailure_threshold = 4\n{WEB}\n\
         [[probe]]\nname = \"b\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\ninterval = \"2s\"\nsuccess_threshold = 1\n"
    ));
    let (a, b) = (&cfg.probes[0], &cfg.probes[1]);
    assert_eq!(a.schedule, Schedule::Every(Duration::from_secs(10)));
    assert_eq!(b.schedule, Schedule::Every(Duration::from_secs(2)));
    assert_eq!(
        (a.timeout, b.timeout),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
    assert_eq!((a.failure_threshold, b.failure_threshold), (4, 4));
    assert_eq!((a.success_threshold, b.success_threshold), (2, 1));
    assert_eq!(a.stall_timeout, Duration::from_secs(20));
    assert_eq!(cfg.canaries.len(), 2);
    assert_eq!(cfg.give_up_after, Duration::from_secs(86_400));
}

#[test]
fn a_probe_interval_beats_a_default_schedule() {
    let cfg = ok(&format!(
        "[defaults]\nschedule = \"*/5 * * * *\"\n{WEB}interval = \"7s\"\n"
    ));
    assert_eq!(
        cfg.probes[0].schedule,
        Schedule::Every(Duration::from_secs(7))
    );
    let cfg = ok(&format!("[defaults]\nschedule = \"*/5 * * * *\"\n{WEB}"));
    assert!(matches!(cfg.probes[0].schedule, Schedule::Cron { .. }));
}

#[test]
fn unknown_key_is_named() {
    let e = fails(
        &format!("{WEB}intervl = \"5s\"\n"),
        "intervl",
        "unknown field",
    );
    assert!(e.message.contains("line"), "{e}");
    fails("[storage]\npth = \"x\"\n", "pth", "config.example.toml");
}

#[test]
fn bad_duration_is_named() {
    fails(
        &format!("{WEB}interval = \"5 parsecs\"\n"),
        "probe \"web\".interval",
        "\"30s\"",
    );
    fails(
        &format!("[defaults]\ntimeout = \"soon\"\n{WEB}"),
        "defaults.timeout",
        "not a duration",
    );
    fails(
        &format!("{WEB}interval = \"500ms\"\n"),
        "interval",
        "at least 1s",
    );
}

#[test]
fn bad_cron_is_named() {
    fails(
        &format!("{WEB}schedule = \"* * *\"\n"),
        "probe \"web\".schedule",
        "5 (minute hour",
    );
    fails(
        &format!("{WEB}schedule = \"0 9 * * 9\"\n"),
        "schedule",
        "not a weekday",
    );
    fails(
        &format!("{WEB}schedule = \"* * * * *\"\ninterval = \"5s\"\n"),
        "probe \"web\"",
        "keep one",
    );
}

#[test]
fn duplicate_names_are_rejected() {
    fails(&format!("{WEB}{WEB}"), "probe \"web\".name", "same name");
    let smtp = "[smtp]\nhost = \"h\"\nfrom = \"a@b\"\n";
    let ch = "[[channel]]\nname = \"me\"\nkind = \"email\"\nto = [\"a@b\"]\n";
    fails(
        &format!("{WEB}{smtp}{ch}{ch}"),
        "channel \"me\".name",
        "same name",
    );
}

#[test]
fn missing_url_and_kind_mistakes() {
    fails(
        "[[probe]]\nname = \"web\"\nkind = \"http\"\n",
        "probe \"web\".url",
        "url = ",
    );
    fails(
        "[[probe]]\nname = \"web\"\nkind = \"ping\"\n",
        "kind",
        "\"http\"",
    );
    fails("[[probe]]\nname = \"web\"\n", "kind", "missing");
    fails("[[probe]]\nkind = \"http\"\n", "probe #1.name", "missing");
    fails(
        "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"ftp://x/\"\n",
        "url",
        "http://",
    );
    fails(
        &format!("{WEB}model = \"x\"\n"),
        "probe \"web\".model",
        "does not apply",
    );
    fails("", "probe", "no [[probe]]");
}

#[test]
fn api_probes_need_model_and_key() {
    fails(
        "[[probe]]\nname = \"a\"\nkind = \"chat\"\napi_key = { file = \"/dev/null\" }\n",
        "probe \"a\".api_key",
        "empty",
    );
    fails(
        "[[probe]]\nname = \"a\"\nkind = \"chat\"\nmodel = \"m\"\n",
        "probe \"a\".api_key",
        "DEEPSEEK_API_KEY",
    );
    // A local OpenAI-compatible server may need no key, but chat needs a model.
    fails(
        "[[probe]]\nname = \"a\"\nkind = \"chat\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        "probe \"a\".model",
        "deepseek-flash",
    );
    let cfg =
        ok("[[probe]]\nname = \"a\"\nkind = \"models\"\nbase_url = \"http://127.0.0.1:9/v1/\"\n");
    assert_eq!(cfg.probes[0].target(), "http://127.0.0.1:9/v1");
}

#[test]
fn unresolvable_secret_is_named() {
    fails(
        "[[probe]]\nname = \"a\"\nkind = \"balance\"\napi_key = { env = \"DSW_SURELY_UNSET_VAR\" }\n",
        "probe \"a\".api_key",
        "DSW_SURELY_UNSET_VAR is not set",
    );
    fails(
        "[[probe]]\nname = \"a\"\nkind = \"balance\"\napi_key = \"sk-inline\"\n",
        "api_key",
        "cannot be written in the config file",
    );
}

#[test]
fn channel_naming_unknown_probe() {
    let e = fails(
        &format!(
            "{WEB}[[channel]]\nname = \"t\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nprobes = [\"api\"]\n"
        ),
        "channel \"t\".probes",
        "\"api\", which is not configured",
    );
    assert!(e.message.contains("known probes: web"), "{e}");
}

#[test]
fn channel_mistakes() {
    fails(
        &format!("{WEB}[[channel]]\nname = \"m\"\nkind = \"email\"\nto = [\"a@b\"]\n"),
        "kind",
        "[smtp]",
    );
    fails(
        &format!(
            "{WEB}[[channel]]\nname = \"t\"\nkind = \"webhook\"\nurl = \"http://x/\"\nevents = [\"down\"]\n"
        ),
        "events",
        "unknown event",
    );
    fails(
        &format!(
            "{WEB}[[channel]]\nname = \"t\"\nkind = \"webhook\"\nurl = \"http://x/\"\nformat = \"teams\"\n"
        ),
        "format",
        "\"slack\"",
    );
    let cfg = ok(&format!(
        "{WEB}[[channel]]\nname = \"t\"\nkind = \"webhook\"\nurl = \"http://x/\"\n"
    ));
    assert_eq!(cfg.channels[0].events, vec![EventKind::Recovered]);
    assert_eq!(cfg.channels[0].probes, None);
}

#[test]
fn thresholds_and_expect_status() {
    fails(
        &format!("{WEB}failure_threshold = 0\n"),
        "failure_threshold",
        "1 to 1000",
    );
    fails(
        &format!("{WEB}expect_status = \"399-200\"\n"),
        "expect_status",
        "range",
    );
    let cfg = ok(&format!("{WEB}expect_status = 204\n"));
    assert!(matches!(
        cfg.probes[0].kind,
        ProbeKind::Http {
            expect_status: (204, 204),
            ..
        }
    ));
}

#[test]
fn builtin_default_watches_the_web_chat() {
    // DEEPSEEK_API_KEY is not set in the test environment we control; the web
    // probe is always there.
    let cfg = builtin_default().unwrap();
    assert!(cfg.source.is_none());
    assert_eq!(cfg.probes[0].name, "web");
    assert_eq!(cfg.probes[0].target(), DEFAULT_WEB_URL);
}

#[test]
fn missing_explicit_file_is_an_error() {
    let e = load(&ConfigSource::Explicit("/nonexistent/dsw.toml".into())).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dsw.toml"), "{e}");
    assert!(e.message.contains("--config"), "{e}");
}

#[test]
fn the_default_database_lives_in_the_systemd_state_directory() {
    use std::ffi::OsStr;
    assert_eq!(
        db_path_in(Some(OsStr::new("/var/lib/deepseek-watch"))),
        Path::new("/var/lib/deepseek-watch/history.db")
    );
    // Several StateDirectory= entries: the first is ours.
    assert_eq!(
        db_path_in(Some(OsStr::new("/var/lib/a:/var/lib/b"))),
        Path::new("/var/lib/a/history.db")
    );
    assert_eq!(db_path_in(None), Path::new("./deepseek-watch.db"));
    assert_eq!(
        db_path_in(Some(OsStr::new(""))),
        Path::new("./deepseek-watch.db")
    );
}

#[test]
fn the_example_config_keeps_history_where_the_systemd_unit_can_write() {
    // The package installs config.example.toml as the system config; the unit
    // (ProtectSystem=strict) can write only its StateDirectory=.
    let unit = include_str!("../../systemd/deepseek-watch.service");
    assert!(unit.contains("\nStateDirectory=deepseek-watch\n"));
    assert!(unit.contains("\nProtectSystem=strict\n"));
    let text = include_str!("../../config.example.toml");
    assert!(
        text.contains("\npath = \"/var/lib/deepseek-watch/history.db\"\n"),
        "config.example.toml [storage] path must be in /var/lib/deepseek-watch/"
    );
    assert!(unit.contains(&format!("--config {SYSTEM_CONFIG} run\n")));
}
