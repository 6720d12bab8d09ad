//! The daemon end to end: `run` probes the stand-in and writes history while
//! `results` and `status` read it; SIGTERM stops it cleanly.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{DeepSeek, Reply, Setup};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_deepseek-watch");

fn spawn_daemon(setup: &Setup) -> Child {
    Command::new(BIN)
        .arg("--config")
        .arg(&setup.config)
        .arg("run")
        .env_remove("DEEPSEEK_WATCH_CONFIG")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for the child to exit, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn results_json(setup: &Setup, extra: &[&str]) -> Vec<Value> {
    let out = setup
        .cmd()
        .args(["results", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "results failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn run_records_results_that_the_cli_reads_while_it_runs() {
    let ds = DeepSeek::start_in_thread();
    ds.set(
        "/busy/chat/completions",
        Reply::api_error(503, "Server overloaded, please try again later."),
    );
    let setup = Setup::new(&format!(
        "[connectivity]\ncanaries = [\"{web}\"]\n\n[defaults]\ninterval = \"1s\"\n\n\
         [[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"{web}\"\n\n\
         [[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"deepseek-flash\"\nbase_url = \"{busy}\"\napi_key = {{ file = \"key\" }}\n",
        web = ds.url("/"),
        busy = ds.url("/busy"),
    ));
    let mut daemon = spawn_daemon(&setup);

    // Both probes show up in the history while the daemon runs.
    let start = Instant::now();
    let rows = loop {
        if setup.db.exists() {
            let rows = results_json(&setup, &["--limit", "0"]);
            let web = rows.iter().filter(|r| r["probe"] == "web").count();
            let api = rows.iter().filter(|r| r["probe"] == "api").count();
            if web >= 2 && api >= 2 {
                break rows;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no results after 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        rows.iter()
            .filter(|r| r["probe"] == "web")
            .all(|r| r["status"] == "up")
    );
    assert!(
        rows.iter()
            .filter(|r| r["probe"] == "api")
            .all(|r| r["status"] == "busy" && r["http_status"] == 503)
    );

    // Filters.
    let busy = results_json(&setup, &["--status", "busy"]);
    assert!(!busy.is_empty() && busy.iter().all(|r| r["status"] == "busy"));
    let web_only = results_json(&setup, &["--probe", "web", "--since", "1h"]);
    assert!(!web_only.is_empty() && web_only.iter().all(|r| r["probe"] == "web"));
    assert_eq!(results_json(&setup, &["--limit", "1"]).len(), 1);
    assert!(results_json(&setup, &["--until", "1h"]).is_empty());

    // CSV and table forms.
    let csv = setup
        .cmd()
        .args(["results", "--format", "csv", "--probe", "api"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.starts_with("probe,at,status,latency_ms,ttft_ms,http_status,error,detail\n"),
        "{csv}"
    );
    assert!(csv.lines().nth(1).unwrap().starts_with("api,"), "{csv}");
    let table = setup.cmd().arg("results").output().unwrap();
    assert!(
        String::from_utf8(table.stdout)
            .unwrap()
            .contains("Server overloaded")
    );

    // Status: shape from design.md.
    let out = setup.cmd().args(["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probes = status["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    for p in probes {
        for key in [
            "name",
            "kind",
            "target",
            "state",
            "last_result",
            "outage",
            "uptime_24h",
        ] {
            assert!(p.get(key).is_some(), "status lacks {key}: {p}");
        }
    }
    let web = probes.iter().find(|p| p["name"] == "web").unwrap();
    assert_eq!(web["state"], "operational");
    assert_eq!(web["uptime_24h"], 1.0);
    assert_eq!(web["last_result"]["status"], "up");
    let api = probes.iter().find(|p| p["name"] == "api").unwrap();
    assert_eq!(api["kind"], "chat");
    assert_eq!(api["uptime_24h"], 0.0);

    // SIGTERM: a clean exit, and everything recorded so far is on disk.
    sigterm(&daemon);
    let status =
        wait_exit(&mut daemon, Duration::from_secs(15)).expect("daemon did not stop within 15 s");
    assert!(status.success(), "exit status {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        !stderr.contains("sk-test-secret-key"),
        "the API key leaked into the log"
    );
    let after = results_json(&setup, &["--limit", "0"]);
    assert!(after.len() >= rows.len());
    let db = std::fs::read(&setup.db).unwrap();
    assert!(
        !db.windows(18).any(|w| w == b"sk-test-secret-key"),
        "the API key leaked into the database"
    );
}

#[test]
fn config_errors_exit_2_naming_file_and_key() {
    let setup = Setup::new(
        "[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nintervl = \"5s\"\n",
    );
    let out = setup.cmd().args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&setup.config.display().to_string()), "{err}");
    assert!(err.contains("intervl"), "{err}");
    // The daemon refuses to start on it too.
    let out = setup
        .cmd()
        .arg("run")
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A named config file that does not exist is an error, not the default.
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/x.toml", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.toml"));

    // Bad flags are usage errors.
    let ok =
        Setup::new("[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n");
    let out = ok
        .cmd()
        .args(["results", "--since", "last tuesday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    let out = ok
        .cmd()
        .args(["results", "--status", "sad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = ok.cmd().args(["results", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // No database yet: say how to get one.
    let out = ok.cmd().arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deepseek-watch run"));
}

#[test]
fn config_check_summarises_without_showing_secrets() {
    let setup = Setup::new(
        "[[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"deepseek-flash\"\napi_key = { file = \"key\" }\nschedule = \"*/5 * * * 1-5\"\n\n\
         [[probe]]\nname = \"cred\"\nkind = \"balance\"\napi_key = { credential = \"deepseek-key\" }\n\n\
         [[channel]]\nname = \"slack\"\nkind = \"webhook\"\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/T000/B000/XXXXsecrettoken\"\n",
    );
    std::fs::create_dir(setup.path().join("creds")).unwrap();
    std::fs::write(
        setup.path().join("creds/deepseek-key"),
        "sk-from-credential",
    )
    .unwrap();
    let out = setup
        .cmd()
        .args(["config", "check"])
        .env("CREDENTIALS_DIRECTORY", setup.path().join("creds"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cron \"*/5 * * * 1-5\""), "{stdout}");
    assert!(
        stdout.contains("key from credential deepseek-key"),
        "{stdout}"
    );
    assert!(stdout.contains("config OK"));
    assert!(!stdout.contains("sk-test-secret-key") && !stdout.contains("sk-from-credential"));
    // A Slack or Discord webhook URL carries its token in the path.
    assert!(
        stdout.contains("webhook https://hooks.slack.com/…"),
        "{stdout}"
    );
    assert!(!stdout.contains("XXXXsecrettoken"), "{stdout}");

    // Without $CREDENTIALS_DIRECTORY the credential cannot resolve: exit 2, with the fix.
    let out = setup
        .cmd()
        .args(["config", "check"])
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("probe \"cred\".api_key") && err.contains("LoadCredential"),
        "{err}"
    );
}

#[test]
fn history_commands_need_no_secrets() {
    // The service reads its key through systemd credentials; a shell querying
    // the same history has none, and must not need them.
    let ds = DeepSeek::start_in_thread();
    let body = format!(
        "[connectivity]\ncanaries = []\n\n[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"{}\"\n\n\
         [[probe]]\nname = \"api\"\nkind = \"models\"\nbase_url = \"{}\"\napi_key = {{ credential = \"deepseek-api-key\" }}\n",
        ds.url("/"),
        ds.url("")
    );
    let setup = Setup::new(&body);
    let out = setup
        .cmd()
        .env_remove("CREDENTIALS_DIRECTORY")
        .args(["check", "web"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "probing needs the key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CREDENTIALS_DIRECTORY"));
    for args in [
        &["status"][..],
        &["results"],
        &["outages"],
        &["stats"],
        &["notifications"],
    ] {
        let out = setup
            .cmd()
            .env_remove("CREDENTIALS_DIRECTORY")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // No database yet (exit 1, "deepseek-watch run"), but no secret error.
        assert!(!err.contains("CREDENTIALS_DIRECTORY"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(2), "{args:?}: {err}");
    }
}
