//! Test peers on 127.0.0.1: a stand-in for DeepSeek (web page and API) that
//! can stream slowly, stall on keep-alives, cut a stream or reset the
//! connection, written on raw TCP so each behaviour is exact; and helpers to
//! run the real binary against it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the stand-in answers on one path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal streamed completion of these tokens, then usage and [DONE].
    Stream {
        tokens: Vec<String>,
        first_token_after: Duration,
    },
    /// 200, then only `: keep-alive` comments, every `every`, for `for_`; then close.
    KeepAlive { every: Duration, for_: Duration },
    /// 200 whose body is only blank lines, then closed.
    Blank200,
    /// A streamed chunk whose finish_reason is insufficient_system_resource.
    InsufficientResource,
    /// Two tokens, then the connection closes before finish_reason or [DONE].
    CutStream,
    /// Accept, read the request, then reset the connection (RST).
    Reset,
    /// A plain response.
    Status {
        status: u16,
        content_type: String,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Accept and never answer.
    Hang,
}

impl Reply {
    pub fn ok_stream() -> Reply {
        Reply::Stream {
            tokens: vec!["o".into(), "k".into()],
            first_token_after: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            content_type: "application/json".into(),
            body: body.into(),
            headers: vec![],
        }
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            content_type: "text/html; charset=utf-8".into(),
            body: body.into(),
            headers: vec![],
        }
    }

    /// DeepSeek's error body for `status`.
    pub fn api_error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            &format!(
                r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}}}"#
            ),
        )
    }

    pub fn cloudflare_challenge() -> Reply {
        Reply::Status {
            status: 403,
            content_type: "text/html; charset=UTF-8".into(),
            body: "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>cf-chl</body></html>".into(),
            headers: vec![("cf-mitigated".into(), "challenge".into())],
        }
    }

    pub fn models(ids: &[&str]) -> Reply {
        let data: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"id":"{id}","object":"model","owned_by":"deepseek"}}"#))
            .collect();
        Reply::json(
            200,
            &format!(r#"{{"object":"list","data":[{}]}}"#, data.join(",")),
        )
    }

    pub fn balance(available: bool, total: &str) -> Reply {
        Reply::json(
            200,
            &format!(
                r#"{{"is_available":{available},"balance_infos":[{{"currency":"USD","total_balance":"{total}","granted_balance":"0.00","topped_up_balance":"{total}"}}]}}"#
            ),
        )
    }
}

/// The stand-in server. Replies can be changed while it runs.
#[derive(Clone)]
pub struct DeepSeek {
    pub addr: SocketAddr,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// Authorization headers seen, to check the key goes there.
    pub auth_seen: Arc<Mutex<Vec<String>>>,
    pub bodies_seen: Arc<Mutex<Vec<String>>>,
}

impl DeepSeek {
    /// Starts on 127.0.0.1, port chosen by the OS, on the current runtime.
    pub async fn start() -> DeepSeek {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = DeepSeek {
            addr: listener.local_addr().unwrap(),
            replies: Arc::default(),
            hits: Arc::default(),
            auth_seen: Arc::default(),
            bodies_seen: Arc::default(),
        };
        server.set(
            "/",
            Reply::html(200, "<html><title>DeepSeek</title><body>chat</body></html>"),
        );
        server.set("/chat/completions", Reply::ok_stream());
        server.set(
            "/models",
            Reply::models(&["deepseek-flash", "deepseek-v4-pro"]),
        );
        server.set("/user/balance", Reply::balance(true, "12.50"));
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.serve(sock).await;
                });
            }
        });
        server
    }

    /// Starts the stand-in on its own thread and runtime, for tests that run
    /// the binary synchronously.
    pub fn start_in_thread() -> DeepSeek {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tx.send(DeepSeek::start().await).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.to_string(), reply);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    async fn serve(&self, mut sock: TcpStream) -> std::io::Result<()> {
        let (path, headers, body) = read_request(&mut sock).await?;
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        if let Some(a) = headers.get("authorization") {
            self.auth_seen.lock().unwrap().push(a.clone());
        }
        if !body.is_empty() {
            self.bodies_seen.lock().unwrap().push(body);
        }
        let reply = self.replies.lock().unwrap().get(&path).cloned();
        let Some(reply) = reply else {
            return write_plain(
                &mut sock,
                404,
                "application/json",
                r#"{"error":{"message":"Not Found"}}"#,
                &[],
            )
            .await;
        };
        match reply {
            Reply::Status {
                status,
                content_type,
                body,
                headers,
            } => write_plain(&mut sock, status, &content_type, &body, &headers).await,
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            Reply::Reset => {
                sock.set_zero_linger()?;
                drop(sock);
                Ok(())
            }
            Reply::Blank200 => {
                stream_head(&mut sock).await?;
                for _ in 0..3 {
                    chunk(&mut sock, "\n").await?;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                sock.write_all(b"0\r\n\r\n").await
            }
            Reply::KeepAlive { every, for_ } => {
                stream_head(&mut sock).await?;
                let start = tokio::time::Instant::now();
                while start.elapsed() < for_ {
                    chunk(&mut sock, ": keep-alive\n\n").await?;
                    tokio::time::sleep(every).await;
                }
                sock.write_all(b"0\r\n\r\n").await
            }
            Reply::InsufficientResource => {
                stream_head(&mut sock).await?;
                chunk(
                    &mut sock,
                    &delta_event(None, Some("insufficient_system_resource")),
                )
                .await?;
                chunk(&mut sock, "data: [DONE]\n\n").await?;
                sock.write_all(b"0\r\n\r\n").await
            }
            Reply::CutStream => {
                stream_head(&mut sock).await?;
                chunk(&mut sock, &delta_event(Some("o"), None)).await?;
                chunk(&mut sock, &delta_event(Some("k"), None)).await?;
                sock.flush().await?;
                // Close without the terminating chunk: the stream is cut.
                sock.set_zero_linger()?;
                drop(sock);
                Ok(())
            }
            Reply::Stream {
                tokens,
                first_token_after,
            } => {
                stream_head(&mut sock).await?;
                // DeepSeek sends a role-only delta first, and keep-alives while it thinks.
                chunk(&mut sock, &role_event()).await?;
                let start = tokio::time::Instant::now();
                while start.elapsed() < first_token_after {
                    chunk(&mut sock, ": keep-alive\n\n").await?;
                    tokio::time::sleep(Duration::from_millis(200).min(first_token_after)).await;
                }
                for t in &tokens {
                    chunk(&mut sock, &delta_event(Some(t), None)).await?;
                }
                chunk(&mut sock, &delta_event(Some(""), Some("length"))).await?;
                chunk(
                    &mut sock,
                    &format!(
                        "data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"deepseek-flash\",\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":{},\"total_tokens\":{}}}}}\n\n",
                        tokens.len(),
                        tokens.len() + 9
                    ),
                )
                .await?;
                chunk(&mut sock, "data: [DONE]\n\n").await?;
                sock.write_all(b"0\r\n\r\n").await
            }
        }
    }
}

fn role_event() -> String {
    "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"deepseek-flash\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n".to_string()
}

fn delta_event(content: Option<&str>, finish: Option<&str>) -> String {
    let content = content.map_or("null".to_string(), |c| format!("\"{c}\""));
    let finish = finish.map_or("null".to_string(), |f| format!("\"{f}\""));
    format!(
        "data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"deepseek-flash\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{content},\"reasoning_content\":null}},\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
    )
}

async fn read_request(
    sock: &mut TcpStream,
) -> std::io::Result<(String, HashMap<String, String>, String)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    Ok((path, headers, body))
}

async fn write_plain(
    sock: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.flush().await
}

async fn stream_head(sock: &mut TcpStream) -> std::io::Result<()> {
    sock.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )
    .await
}

async fn chunk(sock: &mut TcpStream, data: &str) -> std::io::Result<()> {
    sock.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .await?;
    sock.flush().await
}

/// A port on 127.0.0.1 where nothing listens: connections are refused.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A temporary directory with a config file in it.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
}

impl Setup {
    /// Writes `body` after a `[storage]` section pointing into the temp dir.
    pub fn new(body: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.db");
        let config = dir.path().join("config.toml");
        std::fs::write(dir.path().join("key"), "sk-test-secret-key\n").unwrap();
        std::fs::write(
            &config,
            format!("[storage]\npath = \"{}\"\n\n{body}", db.display()),
        )
        .unwrap();
        Setup { dir, config, db }
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("deepseek-watch").unwrap();
        c.arg("--config")
            .arg(&self.config)
            .env_remove("DEEPSEEK_WATCH_CONFIG")
            .env("NO_COLOR", "1");
        c
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A request the webhook receiver got.
#[derive(Clone, Debug)]
pub struct Hook {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// A local webhook receiver: records every request and answers each path
/// with the next status from its script (the last one repeats).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Hook>>>,
    script: Arc<Mutex<HashMap<String, Vec<u16>>>>,
}

impl Receiver {
    pub fn start_in_thread() -> Receiver {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let r = Receiver {
                    addr: listener.local_addr().unwrap(),
                    got: Arc::default(),
                    script: Arc::default(),
                };
                tx.send(r.clone()).unwrap();
                loop {
                    let Ok((mut sock, _)) = listener.accept().await else {
                        return;
                    };
                    let r = r.clone();
                    tokio::spawn(async move {
                        let Ok((path, headers, body)) = read_request(&mut sock).await else {
                            return;
                        };
                        let status = {
                            let mut script = r.script.lock().unwrap();
                            match script.get_mut(&path) {
                                Some(s) if s.len() > 1 => s.remove(0),
                                Some(s) => s[0],
                                None => 200,
                            }
                        };
                        r.got.lock().unwrap().push(Hook {
                            path,
                            headers,
                            body,
                        });
                        let _ = write_plain(&mut sock, status, "text/plain", "ok", &[]).await;
                    });
                }
            });
        });
        rx.recv().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `path` with these statuses in turn, the last one for ever.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.script
            .lock()
            .unwrap()
            .insert(path.to_string(), statuses.to_vec());
    }

    pub fn hooks(&self, path: &str) -> Vec<Hook> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// JSON bodies received on `path` whose `event` is `event`.
    pub fn events(&self, path: &str, event: &str) -> Vec<serde_json::Value> {
        self.hooks(path)
            .iter()
            .filter_map(|h| serde_json::from_str::<serde_json::Value>(&h.body).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon as a child process, killed when dropped.
pub struct Daemon(pub std::process::Child);

impl Daemon {
    pub fn start(setup: &Setup) -> Daemon {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_deepseek-watch"))
            .arg("--config")
            .arg(&setup.config)
            .arg("run")
            .env_remove("DEEPSEEK_WATCH_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Daemon(child)
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then wait up to `limit` for a clean exit; returns stderr.
    pub fn stop(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                break st;
            }
            assert!(
                start.elapsed() < limit,
                "daemon did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (status, err)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
