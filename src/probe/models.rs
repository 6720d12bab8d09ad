//! The `models` probe: `GET {base_url}/models`. Checks the key and that the
//! configured model is still offered, without spending tokens.

use tokio::time::Instant;

use super::{Outcome, api_get, classify};
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
    let req = client.get(format!("{base_url}/models"));
    api_get(
        req,
        api_key,
        start,
        deadline,
        BODY_CAP,
        |answer, elapsed| classify::models(answer, model, elapsed, probe.slow_threshold),
    )
    .await
}
