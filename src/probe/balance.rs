//! The `balance` probe: `GET {base_url}/user/balance`, recording the balance
//! so that "no money left" reads as `billing_error`, not as an outage.

use tokio::time::Instant;

use super::{Outcome, api_get, classify};
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
    let req = client.get(format!("{base_url}/user/balance"));
    api_get(
        req,
        api_key,
        start,
        deadline,
        BODY_CAP,
        |answer, elapsed| classify::balance(answer, min_balance, elapsed, probe.slow_threshold),
    )
    .await
}
