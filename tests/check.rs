//! `deepseek-watch check --json` against the DeepSeek stand-in: every status
//! in design.md comes from a real response over 127.0.0.1.

mod common;

use std::time::Duration;

use common::{DeepSeek, Reply, Setup, dead_port};
use serde_json::Value;

/// One scenario: a probe config snippet, what the stand-in answers, and what
/// the result must say.
struct Case {
    name: &'static str,
    probe: String,
    expect_status: &'static str,
    http: Option<u64>,
    error_has: Option<&'static str>,
}

fn api_probe(ds: &DeepSeek, name: &str, kind: &str, extra: &str) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\napi_key = {{ file = \"key\" }}\n{extra}\n",
        ds.url(&format!("/{name}"))
    )
}

fn web_probe(ds: &DeepSeek, name: &str, extra: &str) -> String {
    format!(
        "[[probe]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{}\"\nbusy_markers = [\"server is busy\", \"服务器繁忙\"]\n{extra}\n",
        ds.url(&format!("/{name}/"))
    )
}

#[test]
fn every_status_from_a_real_response() {
    let ds = DeepSeek::start_in_thread();
    let chat = |n: &str, reply: Reply, extra: &str| {
        ds.set(&format!("/{n}/chat/completions"), reply);
        api_probe(
            &ds,
            n,
            "chat",
            &format!("model = \"deepseek-flash\"\n{extra}"),
        )
    };
    let web = |n: &str, reply: Reply, extra: &str| {
        ds.set(&format!("/{n}/"), reply);
        web_probe(&ds, n, extra)
    };
    ds.set(
        "/models-ok/models",
        Reply::models(&["deepseek-flash", "deepseek-v4-pro"]),
    );
    ds.set(
        "/models-retired/models",
        Reply::models(&["deepseek-flash", "deepseek-v4-pro"]),
    );
    ds.set("/balance-ok/user/balance", Reply::balance(true, "12.50"));
    ds.set("/balance-low/user/balance", Reply::balance(true, "0.40"));
    ds.set("/balance-off/user/balance", Reply::balance(false, "0.00"));

    let cases = vec![
        Case {
            name: "chat-up",
            probe: chat("chat-up", Reply::ok_stream(), ""),
            expect_status: "up",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "chat-slow",
            probe: chat(
                "chat-slow",
                Reply::Stream {
                    tokens: vec!["ok".into()],
                    first_token_after: Duration::from_millis(1300),
                },
                "slow_threshold = \"1s\"",
            ),
            expect_status: "slow",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "chat-503",
            probe: chat(
                "chat-503",
                Reply::api_error(503, "Server overloaded, please try again later."),
                "",
            ),
            expect_status: "busy",
            http: Some(503),
            error_has: Some("Server overloaded"),
        },
        Case {
            name: "chat-stall",
            probe: chat(
                "chat-stall",
                Reply::KeepAlive {
                    every: Duration::from_millis(100),
                    for_: Duration::from_secs(4),
                },
                "stall_timeout = \"1s\"\ntimeout = \"8s\"",
            ),
            expect_status: "busy",
            http: Some(200),
            error_has: Some("stalled"),
        },
        Case {
            name: "chat-keepalive-only",
            probe: chat(
                "chat-keepalive-only",
                Reply::KeepAlive {
                    every: Duration::from_millis(50),
                    for_: Duration::from_millis(300),
                },
                "",
            ),
            expect_status: "busy",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "chat-blank",
            probe: chat("chat-blank", Reply::Blank200, ""),
            expect_status: "busy",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "chat-isr",
            probe: chat("chat-isr", Reply::InsufficientResource, ""),
            expect_status: "busy",
            http: Some(200),
            error_has: Some("insufficient_system_resource"),
        },
        Case {
            name: "chat-429",
            probe: chat("chat-429", Reply::api_error(429, "Rate Limit Reached"), ""),
            expect_status: "rate_limited",
            http: Some(429),
            error_has: Some("Rate Limit Reached"),
        },
        Case {
            name: "chat-500",
            probe: chat(
                "chat-500",
                Reply::api_error(500, "Internal Server Error"),
                "",
            ),
            expect_status: "down",
            http: Some(500),
            error_has: Some("Internal Server Error"),
        },
        Case {
            name: "chat-reset",
            probe: chat("chat-reset", Reply::Reset, ""),
            expect_status: "down",
            http: None,
            error_has: None,
        },
        Case {
            name: "chat-cut",
            probe: chat("chat-cut", Reply::CutStream, ""),
            expect_status: "down",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "chat-hang",
            probe: chat("chat-hang", Reply::Hang, "timeout = \"1s\""),
            expect_status: "timeout",
            http: None,
            error_has: None,
        },
        Case {
            name: "chat-401",
            probe: chat(
                "chat-401",
                Reply::api_error(
                    401,
                    "Authentication Fails, Your api key: ****abcd is invalid",
                ),
                "",
            ),
            expect_status: "auth_error",
            http: Some(401),
            error_has: Some("Authentication Fails"),
        },
        Case {
            name: "chat-402",
            probe: chat(
                "chat-402",
                Reply::api_error(402, "Insufficient Balance"),
                "",
            ),
            expect_status: "billing_error",
            http: Some(402),
            error_has: Some("Insufficient Balance"),
        },
        Case {
            name: "chat-422",
            probe: chat(
                "chat-422",
                Reply::api_error(422, "Failed to deserialize the JSON body"),
                "",
            ),
            expect_status: "invalid_request",
            http: Some(422),
            error_has: Some("deserialize"),
        },
        Case {
            name: "chat-400",
            probe: chat("chat-400", Reply::api_error(400, "Model Not Exist"), ""),
            expect_status: "invalid_request",
            http: Some(400),
            error_has: Some("Model Not Exist"),
        },
        Case {
            name: "chat-challenge",
            probe: chat("chat-challenge", Reply::cloudflare_challenge(), ""),
            expect_status: "blocked",
            http: Some(403),
            error_has: None,
        },
        Case {
            name: "web-up",
            probe: web("web-up", Reply::html(200, "<html>chat</html>"), ""),
            expect_status: "up",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "web-marker",
            probe: web(
                "web-marker",
                Reply::html(200, "<html><p>服务器繁忙，请稍后再试。</p></html>"),
                "",
            ),
            expect_status: "busy",
            http: Some(200),
            error_has: Some("服务器繁忙"),
        },
        Case {
            name: "web-challenge",
            probe: web("web-challenge", Reply::cloudflare_challenge(), ""),
            expect_status: "blocked",
            http: Some(403),
            error_has: None,
        },
        Case {
            name: "web-502",
            probe: web("web-502", Reply::html(502, "<html>Bad Gateway</html>"), ""),
            expect_status: "down",
            http: Some(502),
            error_has: None,
        },
        Case {
            name: "web-503",
            probe: web("web-503", Reply::html(503, "<html>busy</html>"), ""),
            expect_status: "busy",
            http: Some(503),
            error_has: None,
        },
        Case {
            name: "web-refused",
            probe: format!(
                "[[probe]]\nname = \"web-refused\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/\"\n",
                dead_port()
            ),
            expect_status: "down",
            http: None,
            error_has: None,
        },
        Case {
            name: "models-ok",
            probe: api_probe(&ds, "models-ok", "models", "model = \"deepseek-flash\""),
            expect_status: "up",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "models-retired",
            probe: api_probe(&ds, "models-retired", "models", "model = \"deepseek-chat\""),
            expect_status: "invalid_request",
            http: Some(200),
            error_has: Some("deepseek-v4-pro"),
        },
        Case {
            name: "balance-ok",
            probe: api_probe(&ds, "balance-ok", "balance", "min_balance = 1.0"),
            expect_status: "up",
            http: Some(200),
            error_has: None,
        },
        Case {
            name: "balance-low",
            probe: api_probe(&ds, "balance-low", "balance", "min_balance = 1.0"),
            expect_status: "billing_error",
            http: Some(200),
            error_has: Some("0.40"),
        },
        Case {
            name: "balance-off",
            probe: api_probe(&ds, "balance-off", "balance", ""),
            expect_status: "billing_error",
            http: Some(200),
            error_has: None,
        },
    ];

    // A live canary (the stand-in's own front page): failures stay failures.
    let config = format!(
        "[connectivity]\ncanaries = [\"{}\"]\n\n{}",
        ds.url("/"),
        cases
            .iter()
            .map(|c| c.probe.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let setup = Setup::new(&config);
    let out = setup
        .cmd()
        .args(["check", "--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "some probes fail, so exit 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> =
        serde_json::from_slice(&out.stdout).expect("check --json prints a JSON array");
    assert_eq!(results.len(), cases.len());

    let mut failures = Vec::new();
    for case in &cases {
        let r = results
            .iter()
            .find(|r| r["probe"] == case.name)
            .unwrap_or_else(|| panic!("no result for {}", case.name));
        for key in [
            "probe",
            "at",
            "status",
            "latency_ms",
            "ttft_ms",
            "http_status",
            "error",
            "detail",
        ] {
            assert!(
                r.get(key).is_some(),
                "{}: result lacks {key}: {r}",
                case.name
            );
        }
        if r["status"] != case.expect_status {
            failures.push(format!(
                "{}: expected {}, got {r}",
                case.name, case.expect_status
            ));
            continue;
        }
        if r["http_status"].as_u64() != case.http {
            failures.push(format!(
                "{}: expected http_status {:?}, got {r}",
                case.name, case.http
            ));
        }
        if let Some(want) = case.error_has {
            let err = r["error"].as_str().unwrap_or_default();
            if !err.contains(want) {
                failures.push(format!("{}: error should mention {want:?}: {r}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Chat measurements: ttft after latency, the slow one over its threshold.
    let by = |n: &str| results.iter().find(|r| r["probe"] == n).unwrap().clone();
    let up = by("chat-up");
    assert!(up["ttft_ms"].as_u64().unwrap() >= up["latency_ms"].as_u64().unwrap());
    assert!(
        up["detail"]
            .as_str()
            .unwrap()
            .starts_with("deepseek-flash 2 tokens"),
        "{up}"
    );
    assert!(by("chat-slow")["ttft_ms"].as_u64().unwrap() >= 1000);
    assert!(
        by("balance-ok")["detail"]
            .as_str()
            .unwrap()
            .contains("12.50 USD")
    );
    assert!(
        results
            .iter()
            .all(|r| r["at"].as_str().unwrap().ends_with('Z'))
    );

    // The key travels in the Authorization header, and the request is the one design.md describes.
    assert!(
        ds.auth_seen
            .lock()
            .unwrap()
            .iter()
            .all(|a| a == "Bearer sk-test-secret-key")
    );
    let body = ds
        .bodies_seen
        .lock()
        .unwrap()
        .iter()
        .find(|b| b.contains("\"stream\""))
        .cloned()
        .unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 8);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["thinking"]["type"], "disabled");
    assert_eq!(body["model"], "deepseek-flash");
    // The secret never reaches output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-test-secret-key"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sk-test-secret-key"));
}

#[test]
fn offline_when_every_canary_fails_too() {
    let dead = dead_port();
    let setup = Setup::new(&format!(
        "[connectivity]\ncanaries = [\"http://127.0.0.1:{dead}/trace\"]\n\n\
         [[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{dead}/\"\n"
    ));
    let out = setup
        .cmd()
        .args(["check", "--json"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results[0]["status"], "offline", "{}", results[0]);
    assert!(results[0]["error"].as_str().unwrap().contains("offline"));
}

#[test]
fn all_usable_exits_zero_and_prints_a_table() {
    let ds = DeepSeek::start_in_thread();
    let setup = Setup::new(&format!(
        "[connectivity]\ncanaries = []\n\n[[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"{}\"\n\n\
         [[probe]]\nname = \"api\"\nkind = \"chat\"\nmodel = \"deepseek-flash\"\nbase_url = \"{}\"\napi_key = {{ file = \"key\" }}\n",
        ds.url("/"),
        ds.url("")
    ));
    let out = setup
        .cmd()
        .arg("check")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("TIME (UTC)"), "{stdout}");
    assert!(
        stdout.contains(" web ") && stdout.contains(" api "),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "NO_COLOR is set: no escape codes");
    // Only the named probe runs.
    let out = setup
        .cmd()
        .args(["check", "web", "--json"])
        .output()
        .unwrap();
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), 1);
    let out = setup.cmd().args(["check", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no probe named \"nope\""));
}
