//! The `models` probe: `GET {base_url}/models`. Checks the key and that the
//! configured model is still offered, without spending tokens.

use tokio::time::Instant;

use super::{Outcome, classify, fetch, with_auth};
use crate::config::{ProbeConfig, Secret};

/// A model list is a few KiB; anything past this is not one.
pub const BODY_CAP: usize = 1024 * 1024;

pub async fn run(
    client: &reqwest::Client,
    probe: &ProbeConfig,
    base_url: &str,
    model: Option<&str>,
    api_key: Option<&Secret>,
    start: Instant,
    deadline: Instant,
) -> Outcome {
    let req = with_auth(client.get(format!("{base_url}/models")), api_key);
    match fetch(req, start, deadline, BODY_CAP).await {
        Err(f) => Outcome::failed(&f),
        Ok(got) => {
            let answer = got.answer();
            let verdict = if (200..300).contains(&got.status) {
                classify::models(&answer, model, got.elapsed, probe.slow_threshold)
            } else {
                classify::api_error(&answer)
            };
            Outcome {
                verdict,
                latency: Some(got.latency),
                ttft: None,
                http_status: Some(got.status),
            }
        }
    }
}
