//! Outages and recovery alerts, end to end with real peers on 127.0.0.1: the
//! DeepSeek stand-in, a webhook receiver and an in-process SMTP server. The
//! promise under test: every subscriber hears each outage and recovery
//! exactly once, even when a channel was down or the daemon was killed.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{Daemon, DeepSeek, Receiver, Reply, Setup, dead_port, wait_for};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const OVERLOADED: &str = "Server overloaded, please try again later.";

/// A chat probe against the stand-in, fast thresholds, plus `extra` config.
fn config(ds: &DeepSeek, probes: &str, extra: &str) -> String {
    format!(
        "[connectivity]\ncanaries = []\n\n[defaults]\ninterval = \"1s\"\noutage_interval = \"1s\"\n\
         failure_threshold = 2\nsuccess_threshold = 2\n\n{}\n{extra}",
        probes.replace("BASE", &ds.url(""))
    )
}

const API: &str = "[[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"deepseek-flash\"\nbase_url = \"BASE\"\napi_key = { file = \"key\" }\n";

fn json(setup: &Setup, args: &[&str]) -> Value {
    let out = setup
        .cmd()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn smtp_on(port: u16) -> mpsc::Receiver<mogimail::Email> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = mogimail::SmtpServer::new("test.local");
        let _ = server.start(&format!("127.0.0.1:{port}"), tx);
    });
    rx
}

fn verify_signature(secret: &str, body: &str, header: &str) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header, want, "signature does not verify");
}

#[test]
fn busy_then_back_alerts_once_per_channel_even_when_smtp_was_down() {
    let ds = DeepSeek::start_in_thread();
    ds.set("/chat/completions", Reply::api_error(503, OVERLOADED));
    let hooks = Receiver::start_in_thread();
    let smtp_port = dead_port();
    let setup = Setup::new(&config(
        &ds,
        API,
        &format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\nfrom = \"deepseek-watch <alerts@test.local>\"\n\n\
             [[channel]]\nname = \"team\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = {{ file = \"hook-secret\" }}\nevents = [\"outage\", \"recovered\"]\n\n\
             [[channel]]\nname = \"me\"\nkind = \"email\"\nto = [\"me@test.local\", \"you@test.local\"]\nevents = [\"outage\", \"recovered\"]\n",
            hooks.url("/hook")
        ),
    ));
    std::fs::write(setup.path().join("hook-secret"), "s3cret\n").unwrap();
    let daemon = Daemon::start(&setup);

    wait_for(Duration::from_secs(20), "the outage webhook", || {
        !hooks.events("/hook", "outage").is_empty()
    });
    // DeepSeek comes back while the mail server is still down.
    ds.set("/chat/completions", Reply::ok_stream());
    wait_for(Duration::from_secs(20), "the recovered webhook", || {
        !hooks.events("/hook", "recovered").is_empty()
    });
    // The mail server returns: both emails arrive after it does.
    let mail = smtp_on(smtp_port);
    let mut emails = Vec::new();
    while let Ok(m) = mail.recv_timeout(Duration::from_secs(30)) {
        emails.push(m);
        if emails.len() == 2 {
            break;
        }
    }
    // Linger: no duplicates may follow.
    std::thread::sleep(Duration::from_secs(3));
    while let Ok(m) = mail.try_recv() {
        emails.push(m);
    }
    let (status, log) = daemon.stop(Duration::from_secs(20));
    assert!(status.success(), "{log}");

    // Webhook: exactly one of each, signed, with the design.md body.
    let outage = hooks.events("/hook", "outage");
    let recovered = hooks.events("/hook", "recovered");
    assert_eq!(
        (outage.len(), recovered.len()),
        (1, 1),
        "{:?}",
        hooks.hooks("/hook")
    );
    for h in hooks.hooks("/hook") {
        verify_signature("s3cret", &h.body, &h.headers["x-deepseek-watch-signature"]);
        let body: Value = serde_json::from_str(&h.body).unwrap();
        assert_eq!(
            h.headers["x-deepseek-watch-event"],
            body["event"].as_str().unwrap()
        );
        assert_eq!(
            h.headers["x-deepseek-watch-delivery"],
            body["delivery_id"].as_str().unwrap()
        );
    }
    let r = &recovered[0];
    for key in [
        "event",
        "probe",
        "kind",
        "target",
        "outage",
        "message",
        "delivery_id",
        "sent_at",
    ] {
        assert!(r.get(key).is_some(), "webhook body lacks {key}: {r}");
    }
    assert_eq!(r["probe"], "api");
    assert_eq!(r["kind"], "chat");
    assert_eq!(r["outage"]["cause"], "busy");
    let started =
        chrono::DateTime::parse_from_rfc3339(r["outage"]["started_at"].as_str().unwrap()).unwrap();
    let ended =
        chrono::DateTime::parse_from_rfc3339(r["outage"]["ended_at"].as_str().unwrap()).unwrap();
    // The times are shown to the second, the duration is measured to the
    // millisecond: they agree within one second.
    let secs = r["outage"]["duration_secs"].as_i64().unwrap();
    assert!(
        (secs - (ended - started).num_seconds()).abs() <= 1,
        "{secs} vs {started}..{ended}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("api recovered after "),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap().ends_with("(was busy)"),
        "{r}"
    );
    assert!(
        outage[0]["message"].as_str().unwrap().contains(OVERLOADED),
        "{}",
        outage[0]
    );
    assert_eq!(outage[0]["outage"]["id"], r["outage"]["id"]);

    // Email: one outage and one recovery, to both recipients, after SMTP came back.
    assert_eq!(
        emails.len(),
        2,
        "{:?}",
        emails.iter().map(|e| e.get_subject()).collect::<Vec<_>>()
    );
    let subjects: Vec<String> = emails
        .iter()
        .map(|e| e.get_subject().unwrap_or_default().to_string())
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.starts_with("[deepseek-watch] api is unavailable: busy")),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.starts_with("[deepseek-watch] api recovered after")),
        "{subjects:?}"
    );
    assert!(
        emails
            .iter()
            .all(|e| e.has_recipient("me@test.local") && e.has_recipient("you@test.local"))
    );

    // History: one closed outage; every delivery delivered, the emails after retries.
    let outages = json(&setup, &["outages"]);
    let outages = outages.as_array().unwrap();
    assert_eq!(outages.len(), 1);
    assert_eq!(outages[0]["cause"], "busy");
    assert!(outages[0]["ended_at"].is_string());
    let notes = json(&setup, &["notifications"]);
    let notes = notes.as_array().unwrap();
    assert_eq!(notes.len(), 4, "{notes:?}");
    assert!(notes.iter().all(|n| n["state"] == "delivered"), "{notes:?}");
    assert!(
        notes
            .iter()
            .filter(|n| n["channel"] == "me")
            .all(|n| n["attempts"].as_i64().unwrap() >= 2)
    );
    assert!(!log.contains("sk-test-secret-key") && !log.contains("s3cret"));
}

#[test]
fn killed_mid_outage_and_restarted_after_recovery_announces_once() {
    let ds = DeepSeek::start_in_thread();
    ds.set("/chat/completions", Reply::api_error(503, OVERLOADED));
    let hooks = Receiver::start_in_thread();
    let setup = Setup::new(&config(
        &ds,
        API,
        &format!(
            "[[channel]]\nname = \"team\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"outage\", \"recovered\"]\n",
            hooks.url("/hook")
        ),
    ));
    let daemon = Daemon::start(&setup);
    wait_for(Duration::from_secs(20), "the outage webhook", || {
        !hooks.events("/hook", "outage").is_empty()
    });
    // Some more failing results while in outage, then no chance to clean up.
    std::thread::sleep(Duration::from_millis(1500));
    daemon.kill();

    ds.set("/chat/completions", Reply::ok_stream());
    let daemon = Daemon::start(&setup);
    wait_for(Duration::from_secs(20), "the recovered webhook", || {
        !hooks.events("/hook", "recovered").is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = daemon.stop(Duration::from_secs(20));
    assert!(status.success());

    assert_eq!(
        hooks.events("/hook", "outage").len(),
        1,
        "the outage was announced again after the restart"
    );
    assert_eq!(hooks.events("/hook", "recovered").len(), 1);
    let outages = json(&setup, &["outages"]);
    assert_eq!(outages.as_array().unwrap().len(), 1, "{outages}");
    assert!(outages[0]["ended_at"].is_string());
    assert!(outages[0]["failed_results"].as_i64().unwrap() >= 3);
}

#[test]
fn webhook_500_is_retried_and_404_gives_up_with_the_reason() {
    let ds = DeepSeek::start_in_thread();
    ds.set("/chat/completions", Reply::api_error(503, OVERLOADED));
    let hooks = Receiver::start_in_thread();
    hooks.script("/flaky", &[500, 500, 200]);
    hooks.script("/gone", &[404]);
    let setup = Setup::new(&config(
        &ds,
        API,
        &format!(
            "[[channel]]\nname = \"flaky\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"outage\"]\n\n\
             [[channel]]\nname = \"gone\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"outage\"]\n",
            hooks.url("/flaky"),
            hooks.url("/gone")
        ),
    ));
    let daemon = Daemon::start(&setup);
    wait_for(
        Duration::from_secs(30),
        "the third attempt on /flaky",
        || hooks.hooks("/flaky").len() >= 3,
    );
    std::thread::sleep(Duration::from_secs(2));
    let (status, _) = daemon.stop(Duration::from_secs(20));
    assert!(status.success());

    assert_eq!(
        hooks.hooks("/flaky").len(),
        3,
        "delivered on the third try, then no more"
    );
    assert_eq!(hooks.hooks("/gone").len(), 1, "a 404 is not retried");
    let ids: Vec<String> = hooks
        .hooks("/flaky")
        .iter()
        .map(|h| h.headers["x-deepseek-watch-delivery"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "retries keep the delivery_id"
    );
    let notes = json(&setup, &["notifications"]);
    let by = |ch: &str| {
        notes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["channel"] == ch)
            .unwrap()
            .clone()
    };
    let flaky = by("flaky");
    assert_eq!(
        (flaky["state"].as_str(), flaky["attempts"].as_i64()),
        (Some("delivered"), Some(3)),
        "{flaky}"
    );
    let gone = by("gone");
    assert_eq!(gone["state"], "failed", "{gone}");
    assert!(
        gone["last_error"].as_str().unwrap().contains("404"),
        "{gone}"
    );
    let failed = json(&setup, &["notifications", "--state", "failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
}

#[test]
fn action_needed_once_for_401_and_402_and_no_outage() {
    let ds = DeepSeek::start_in_thread();
    ds.set(
        "/k/chat/completions",
        Reply::api_error(
            401,
            "Authentication Fails, Your api key: ****abcd is invalid",
        ),
    );
    ds.set(
        "/b/chat/completions",
        Reply::api_error(402, "Insufficient Balance"),
    );
    let hooks = Receiver::start_in_thread();
    let probes = format!(
        "{}\n{}",
        API.replace("name = \"api\"", "name = \"key\"")
            .replace("BASE", &ds.url("/k")),
        API.replace("name = \"api\"", "name = \"money\"")
            .replace("BASE", &ds.url("/b")),
    );
    let setup = Setup::new(&config(
        &ds,
        &probes,
        &format!(
            "[[channel]]\nname = \"me\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"action_needed\", \"outage\"]\n",
            hooks.url("/hook")
        ),
    ));
    let daemon = Daemon::start(&setup);
    // Several results each, well past the failure threshold.
    wait_for(Duration::from_secs(20), "five results per probe", || {
        setup.db.exists() && {
            let r = json(&setup, &["results", "--limit", "0"]);
            ["key", "money"].iter().all(|p| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["probe"] == *p)
                    .count()
                    >= 5
            })
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = daemon.stop(Duration::from_secs(20));
    assert!(status.success());

    let actions = hooks.events("/hook", "action_needed");
    assert_eq!(actions.len(), 2, "{actions:?}");
    let key = actions.iter().find(|a| a["probe"] == "key").unwrap();
    assert!(
        key["message"].as_str().unwrap().contains("auth_error"),
        "{key}"
    );
    let money = actions.iter().find(|a| a["probe"] == "money").unwrap();
    assert!(
        money["message"].as_str().unwrap().contains("billing_error"),
        "{money}"
    );
    assert!(hooks.events("/hook", "outage").is_empty());
    assert!(json(&setup, &["outages"]).as_array().unwrap().is_empty());
    let status = setup.cmd().args(["status", "--json"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        status["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "action_needed")
    );
}
