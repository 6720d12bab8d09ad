//! The `http` probe: GET a page (the web chat) and judge what came back.

use tokio::time::Instant;

use super::{Outcome, classify, fetch};
use crate::config::ProbeConfig;

/// Busy markers are searched in this much of the body (design.md).
pub const BODY_CAP: usize = 256 * 1024;

pub async fn run(
    client: &reqwest::Client,
    probe: &ProbeConfig,
    url: &str,
    busy_markers: &[String],
    expect: (u16, u16),
    start: Instant,
    deadline: Instant,
) -> Outcome {
    let req = client.get(url).header(
        reqwest::header::ACCEPT,
        "text/html,application/xhtml+xml,*/*;q=0.8",
    );
    match fetch(req, start, deadline, BODY_CAP).await {
        Err(f) => Outcome::failed(&f),
        Ok(got) => Outcome {
            verdict: classify::http_page(
                &got.answer(),
                expect,
                busy_markers,
                got.elapsed,
                probe.slow_threshold,
            ),
            latency: Some(got.latency),
            ttft: None,
            http_status: Some(got.status),
        },
    }
}
