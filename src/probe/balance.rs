//! The `balance` probe: `GET {base_url}/user/balance`, recording the balance
//! so that "no money left" reads as `billing_error`, not as an outage.

use tokio::time::Instant;

use super::{Outcome, classify, fetch, with_auth};
use crate::config::{ProbeConfig, Secret};

pub const BODY_CAP: usize = 64 * 1024;

pub async fn run(
    client: &reqwest::Client,
    probe: &ProbeConfig,
    base_url: &str,
    min_balance: Option<f64>,
    api_key: Option<&Secret>,
    start: Instant,
    deadline: Instant,
) -> Outcome {
    let req = with_auth(client.get(format!("{base_url}/user/balance")), api_key);
    match fetch(req, start, deadline, BODY_CAP).await {
        Err(f) => Outcome::failed(&f),
        Ok(got) => {
            let answer = got.answer();
            let verdict = if (200..300).contains(&got.status) {
                classify::balance(&answer, min_balance, got.elapsed, probe.slow_threshold)
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
