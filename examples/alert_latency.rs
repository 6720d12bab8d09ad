//! Alert latency: how long after DeepSeek answers well again does the
//! recovery webhook arrive, and the recovery email?
//!
//! Runs the release daemon against three local peers on 127.0.0.1: a stand-in
//! for chat.deepseek.com that answers `503` while "busy" and `200` otherwise,
//! a webhook receiver, and an in-process SMTP server (mogimail). The probe
//! runs every second with `failure_threshold = 1` and `success_threshold = 1`,
//! so the first good answer after a busy spell is the one that meets the
//! success threshold. Each cycle: busy until the outage webhook arrives, then
//! good; the clock starts when the stand-in has written its first good answer
//! and stops when the recovery webhook (its whole body) and the recovery
//! email (end of DATA) have arrived. That span covers the probe reading and
//! classifying the answer, the writer committing result + outage + outbox
//! rows in one transaction, the dispatcher waking, and the delivery itself.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example alert_latency -- [--cycles 20] [--bin target/release/deepseek-watch]
//! ```
//!
//! Prints every cycle and the median, p90 and max for each channel against
//! the target (under 100 ms). Exit code 0 once figures are printed, 1 if the
//! daemon could not be measured, 2 on bad usage.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

const TARGET: Duration = Duration::from_millis(100);
/// How long one phase (an outage to open, a recovery to arrive) may take.
const PHASE_LIMIT: Duration = Duration::from_secs(15);

/// Measures how long after DeepSeek answers well again the recovery webhook
/// and the recovery email arrive.
#[derive(Parser)]
#[command(name = "alert_latency")]
struct Options {
    /// Number of outage-and-recovery cycles to time (at least 1)
    #[arg(long, value_name = "N", default_value_t = 20)]
    cycles: usize,
    /// The daemon binary to measure
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/release/deepseek-watch"
    )]
    bin: PathBuf,
}

/// Parses the command line; exits 2 on bad usage (0 for `--help`).
fn parse_args() -> Options {
    let o = Options::parse();
    if o.cycles == 0 {
        Options::command()
            .error(ErrorKind::ValueValidation, "--cycles must be at least 1")
            .exit();
    }
    o
}

fn main() -> ExitCode {
    let opts = parse_args();
    if !opts.bin.exists() {
        eprintln!(
            "alert_latency: no daemon binary at {}: run `cargo build --release` first, or pass --bin",
            opts.bin.display()
        );
        return ExitCode::from(2);
    }
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alert_latency: {e}");
            ExitCode::from(1)
        }
    }
}

/// The stand-in: `busy` decides the answer; `good_sent` is when the first
/// good answer after a busy spell was written.
struct StandIn {
    port: u16,
    busy: Arc<AtomicBool>,
    good_sent: Arc<Mutex<Option<Instant>>>,
}

fn stand_in() -> std::io::Result<StandIn> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let busy = Arc::new(AtomicBool::new(false));
    let good_sent = Arc::new(Mutex::new(None));
    let (b, g) = (busy.clone(), good_sent.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (b, g) = (b.clone(), g.clone());
            std::thread::spawn(move || serve_stand_in(conn, &b, &g));
        }
    });
    Ok(StandIn {
        port,
        busy,
        good_sent,
    })
}

fn serve_stand_in(mut conn: TcpStream, busy: &AtomicBool, good_sent: &Mutex<Option<Instant>>) {
    while read_request(&mut conn).is_some() {
        let is_busy = busy.load(Ordering::SeqCst);
        let (status, body) = if is_busy {
            (
                "503 Service Unavailable",
                "Server busy, please try again later.",
            )
        } else {
            (
                "200 OK",
                "<!doctype html><title>DeepSeek</title><p>Chat</p>",
            )
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
        if !is_busy {
            let mut g = good_sent.lock().unwrap_or_else(|p| p.into_inner());
            g.get_or_insert_with(Instant::now);
        }
    }
}

/// Reads one request (head and a content-length body); `None` at EOF.
fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    conn.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// A webhook receiver: sends (event, arrival) for every request.
fn webhook_receiver(tx: mpsc::Sender<(String, Instant)>) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                while let Some((head, _body)) = read_request(&mut conn) {
                    let at = Instant::now();
                    let event = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("x-deepseek-watch-event")
                                .then(|| v.trim().to_string())
                        })
                        .unwrap_or_default();
                    let _ = tx.send((event, at));
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                }
            });
        }
    });
    Ok(port)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn run(opts: &Options) -> Result<(), String> {
    let ds = stand_in().map_err(|e| format!("cannot start the stand-in: {e}"))?;
    let (hook_tx, hooks) = mpsc::channel();
    let hook_port =
        webhook_receiver(hook_tx).map_err(|e| format!("cannot start the webhook receiver: {e}"))?;
    let smtp_port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let (mail_tx, mails) = mpsc::channel::<mogimail::Email>();
    std::thread::spawn(move || {
        let server = mogimail::SmtpServer::new("latency.local");
        let _ = server.start(&format!("127.0.0.1:{smtp_port}"), mail_tx);
    });

    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"{db}\"\n\n[connectivity]\ncanaries = []\n\n\
             [defaults]\ninterval = \"1s\"\noutage_interval = \"1s\"\nfailure_threshold = 1\nsuccess_threshold = 1\n\n\
             [[probe]]\nname = \"web\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{web}/\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\nfrom = \"deepseek-watch <alerts@latency.local>\"\n\n\
             [[channel]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nevents = [\"outage\", \"recovered\"]\n\n\
             [[channel]]\nname = \"mail\"\nkind = \"email\"\nto = [\"me@latency.local\"]\nevents = [\"recovered\"]\n",
            db = dir.path().join("history.db").display(),
            web = ds.port,
        ),
    )
    .map_err(|e| format!("cannot write the config: {e}"))?;
    let child = Command::new(&opts.bin)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", opts.bin.display()))?;
    let _daemon = Daemon(child);

    let mut webhook_ms = Vec::new();
    let mut email_ms = Vec::new();
    println!("cycle  webhook  email   (ms from the first good answer)");
    for cycle in 1..=opts.cycles {
        ds.busy.store(true, Ordering::SeqCst);
        wait_hook(&hooks, "outage")?;
        *ds.good_sent.lock().unwrap_or_else(|p| p.into_inner()) = None;
        ds.busy.store(false, Ordering::SeqCst);
        let hook_at = wait_hook(&hooks, "recovered")?;
        let mail_at = match mails.recv_timeout(PHASE_LIMIT) {
            Ok(_) => Instant::now(),
            Err(_) => return Err("no recovery email within 15 s".into()),
        };
        let good = ds
            .good_sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ok_or("a recovery arrived before any good answer was sent")?;
        let w = hook_at.saturating_duration_since(good).as_secs_f64() * 1e3;
        let m = mail_at.saturating_duration_since(good).as_secs_f64() * 1e3;
        println!("{cycle:>5}  {w:>7.1}  {m:>6.1}");
        webhook_ms.push(w);
        email_ms.push(m);
    }
    println!();
    report("webhook", &mut webhook_ms);
    report("email", &mut email_ms);
    Ok(())
}

fn wait_hook(hooks: &mpsc::Receiver<(String, Instant)>, event: &str) -> Result<Instant, String> {
    let end = Instant::now() + PHASE_LIMIT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match hooks.recv_timeout(left) {
            Ok((e, at)) if e == event => return Ok(at),
            Ok(_) => continue,
            Err(_) => return Err(format!("no {event} webhook within 15 s")),
        }
    }
}

fn report(what: &str, ms: &mut [f64]) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    let max = ms[ms.len() - 1];
    let verdict = if max < TARGET.as_secs_f64() * 1e3 {
        "PASS"
    } else {
        "MISS"
    };
    println!(
        "{what:<8} median {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} recoveries; target < {} ms: {verdict}",
        at(0.5),
        at(0.9),
        max,
        ms.len(),
        TARGET.as_millis()
    );
}
