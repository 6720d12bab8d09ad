//! Running as a systemd service: sd_notify messages in order, SIGHUP reload
//! (and refusal of a broken config), and SIGTERM in the middle of an outage
//! losing nothing.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, DeepSeek, Receiver, Reply, Setup, wait_for};
use serde_json::Value;

fn web(name: &str, ds: &DeepSeek) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{}\"\n",
        ds.url("/")
    )
}

/// Counts a probe's stored results. Reads through its own config file, so
/// that a broken daemon config (the refused-reload case) does not hide them.
fn results(setup: &Setup, probe: &str) -> usize {
    if !setup.db.exists() {
        return 0;
    }
    let reader = setup.path().join("reader.toml");
    if !reader.exists() {
        std::fs::write(&reader, format!(
            "[storage]\npath = \"{}\"\n\n[[probe]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n",
            setup.db.display()
        )).unwrap();
    }
    let out = assert_cmd::Command::cargo_bin("deepseek-watch")
        .unwrap()
        .env_remove("DEEPSEEK_WATCH_CONFIG")
        .arg("--config")
        .arg(&reader)
        .args([
            "results", "--format", "json", "--limit", "0", "--probe", probe,
        ])
        .output()
        .unwrap();
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .map(|v| v.len())
        .unwrap_or(0)
}

/// Reads every datagram that arrives within `for_`.
fn drain(sock: &UnixDatagram, into: &mut Vec<String>, for_: Duration) {
    let end = Instant::now() + for_;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            into.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
}

fn first(msgs: &[String], what: &str) -> usize {
    msgs.iter()
        .position(|m| m.lines().any(|l| l == what))
        .unwrap_or_else(|| panic!("no {what} in {msgs:?}"))
}

#[test]
fn notify_protocol_reload_and_refused_reload() {
    let ds = DeepSeek::start_in_thread();
    let head = "[connectivity]\ncanaries = []\n\n[defaults]\ninterval = \"1s\"\n\n";
    let setup = Setup::new(&format!("{head}{}", web("one", &ds)));
    let sock_path = setup.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_deepseek-watch"))
        .arg("--config")
        .arg(&setup.config)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000")
        .env("JOURNAL_STREAM", "8:1234")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    let mut msgs = Vec::new();
    drain(&sock, &mut msgs, Duration::from_millis(2500));
    let ready = first(&msgs, "READY=1");
    let watchdog = first(&msgs, "WATCHDOG=1");
    assert!(ready < watchdog, "READY before WATCHDOG: {msgs:?}");
    assert!(
        msgs[ready].contains("STATUS=1 probe, all operational"),
        "{msgs:?}"
    );

    // Reload with a second probe: it starts being probed.
    std::fs::write(
        &setup.config,
        format!(
            "[storage]\npath = \"{}\"\n\n{head}{}{}",
            setup.db.display(),
            web("one", &ds),
            web("two", &ds)
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    drain(&sock, &mut msgs, Duration::from_millis(500));
    wait_for(
        Duration::from_secs(15),
        "results from the new probe",
        || results(&setup, "two") >= 2,
    );
    drain(&sock, &mut msgs, Duration::from_millis(200));
    let reloading = first(&msgs, "RELOADING=1");
    assert!(
        msgs[reloading..]
            .iter()
            .any(|m| m.contains("READY=1") && m.contains("STATUS=2 probes")),
        "{msgs:?}"
    );

    // A broken config is refused; both probes keep running.
    std::fs::write(
        &setup.config,
        "[[probe]]\nname = \"one\"\nkind = \"http\"\nintervl = \"1s\"\n",
    )
    .unwrap();
    daemon.signal("HUP");
    let (one, two) = (results(&setup, "one"), results(&setup, "two"));
    wait_for(Duration::from_secs(15), "both probes still running", || {
        results(&setup, "one") >= one + 2 && results(&setup, "two") >= two + 2
    });
    drain(&sock, &mut msgs, Duration::from_millis(1200));

    let (status, log) = daemon.stop(Duration::from_secs(20));
    drain(&sock, &mut msgs, Duration::from_millis(300));
    assert!(status.success(), "{log}");
    let stopping = first(&msgs, "STOPPING=1");
    assert!(
        ready < watchdog && watchdog < reloading && reloading < stopping,
        "order: {msgs:?}"
    );
    assert_eq!(
        msgs.iter().filter(|m| m.contains("RELOADING=1")).count(),
        2,
        "{msgs:?}"
    );
    assert!(
        log.contains("reload refused") && log.contains("intervl"),
        "{log}"
    );
    // Journald mode: priority prefixes, no timestamps.
    assert!(log.lines().all(|l| l.starts_with('<')), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("<3>") && l.contains("reload refused")),
        "{log}"
    );
}

#[test]
fn sigterm_during_an_outage_keeps_results_and_outbox() {
    let ds = DeepSeek::start_in_thread();
    ds.set(
        "/chat/completions",
        Reply::api_error(503, "Server overloaded, please try again later."),
    );
    let hooks = Receiver::start_in_thread();
    hooks.script("/hook", &[500]);
    let setup = Setup::new(&format!(
        "[connectivity]\ncanaries = []\n\n[defaults]\ninterval = \"1s\"\noutage_interval = \"1s\"\nfailure_threshold = 2\n\n\
         [[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"deepseek-flash\"\nbase_url = \"{}\"\napi_key = {{ file = \"key\" }}\n\n\
         [[channel]]\nname = \"team\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"outage\", \"recovered\"]\n",
        ds.url(""),
        hooks.url("/hook")
    ));
    let daemon = Daemon::start(&setup);
    wait_for(Duration::from_secs(20), "a failed outage delivery", || {
        !hooks.hooks("/hook").is_empty()
    });
    let stopped_at = Instant::now();
    let (status, log) = daemon.stop(Duration::from_secs(20));
    assert!(status.success(), "{log}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(12),
        "shutdown took {:?}",
        stopped_at.elapsed()
    );
    let before = results(&setup, "api");
    assert!(before >= 2);
    let pending = setup
        .cmd()
        .args(["notifications", "--state", "pending", "--format", "json"])
        .output()
        .unwrap();
    let pending: Vec<Value> = serde_json::from_slice(&pending.stdout).unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the outage delivery waits in the outbox: {pending:?}"
    );

    // Second start: the receiver works now; the pending delivery goes out,
    // the outage carries on, and nothing is announced twice.
    hooks.script("/hook", &[200]);
    let daemon = Daemon::start(&setup);
    wait_for(Duration::from_secs(20), "the outbox to drain", || {
        let out = setup
            .cmd()
            .args(["notifications", "--state", "delivered", "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice::<Vec<Value>>(&out.stdout)
            .map(|v| v.len() == 1)
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = daemon.stop(Duration::from_secs(20));
    assert!(status.success());
    assert!(
        results(&setup, "api") > before,
        "results carry on after the restart"
    );
    assert_eq!(
        hooks.events("/hook", "outage").len(),
        hooks.hooks("/hook").len(),
        "only outage events were sent"
    );
    let ids: std::collections::HashSet<String> = hooks
        .hooks("/hook")
        .iter()
        .map(|h| h.headers["x-deepseek-watch-delivery"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "one outage announced, retried under one delivery_id"
    );
    let outages = setup
        .cmd()
        .args(["outages", "--open", "--format", "json"])
        .output()
        .unwrap();
    let outages: Vec<Value> = serde_json::from_slice(&outages.stdout).unwrap();
    assert_eq!(outages.len(), 1, "still the one open outage");
}

/// A reload that adds a channel and restarts a probe whose run is in flight
/// (up to DRAIN_GRACE): an event raised meanwhile by another probe is routed
/// to the new channel and must reach it, not fail as "no longer configured".
#[test]
fn an_event_during_a_reload_reaches_the_channel_it_added() {
    let ds = DeepSeek::start_in_thread();
    ds.set("/slow", Reply::Hang);
    ds.set("/fast", Reply::html(200, "<html>chat</html>"));
    let hooks = Receiver::start_in_thread();
    let probes = |slow_timeout: &str| {
        format!(
            "[connectivity]\ncanaries = []\n\n[defaults]\ninterval = \"1s\"\n\n\
             [[probe]]\nname = \"slow\"\nkind = \"http\"\nurl = \"{}\"\ntimeout = \"{slow_timeout}\"\n\n\
             [[probe]]\nname = \"fast\"\nkind = \"http\"\nurl = \"{}\"\nfailure_threshold = 1\n",
            ds.url("/slow"),
            ds.url("/fast")
        )
    };
    let setup = Setup::new(&probes("30s"));
    let daemon = Daemon::start(&setup);
    wait_for(Duration::from_secs(15), "fast results", || {
        results(&setup, "fast") >= 2
    });
    // `slow` hangs, so restarting it waits out the drain grace.
    std::fs::write(
        &setup.config,
        format!(
            "[storage]\npath = \"{}\"\n\n{}\n[[channel]]\nname = \"late\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"outage\"]\n",
            setup.db.display(),
            probes("29s"),
            hooks.url("/late")
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    ds.set("/fast", Reply::html(503, "busy"));
    let start = Instant::now();
    while hooks.events("/late", "outage").is_empty() {
        if start.elapsed() > Duration::from_secs(20) {
            let out = setup
                .cmd()
                .args(["notifications", "--format", "json"])
                .output()
                .unwrap();
            panic!(
                "the outage never reached the channel the reload added: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, log) = daemon.stop(Duration::from_secs(20));
    assert!(status.success(), "{log}");
}
