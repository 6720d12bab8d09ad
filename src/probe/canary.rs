//! Connectivity canaries: tell "DeepSeek is down" apart from "this host lost
//! its network".
//!
//! Checked only after a probe failed without any HTTP answer. One check runs
//! at a time and its answer is reused for a few seconds, so a hundred probes
//! failing together cause one round of canary requests, not a burst.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long one canary answer is trusted.
const CACHE_FOR: Duration = Duration::from_secs(10);
/// A canary that has not answered in this long counts as failed.
const CANARY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Canaries {
    client: reqwest::Client,
    urls: Vec<String>,
    last: Mutex<Option<(Instant, bool)>>,
}

impl Canaries {
    pub fn new(client: reqwest::Client, urls: Vec<String>) -> Canaries {
        Canaries {
            client,
            urls,
            last: Mutex::new(None),
        }
    }

    /// True unless every canary failed. With no canaries configured the check
    /// is off and the network is assumed up.
    pub async fn network_up(&self) -> bool {
        if self.urls.is_empty() {
            return true;
        }
        // Holding the lock across the check makes concurrent callers wait for
        // this one answer instead of starting their own.
        let mut last = self.last.lock().await;
        if let Some((at, up)) = *last {
            if at.elapsed() < CACHE_FOR {
                return up;
            }
        }
        let up = self.check().await;
        if !up {
            tracing::warn!(canaries = ?self.urls, "every connectivity canary failed: this host looks offline");
        }
        *last = Some((Instant::now(), up));
        up
    }

    /// Any HTTP answer from any canary, whatever its status, proves the
    /// network works. Stops at the first one.
    async fn check(&self) -> bool {
        let mut pending: FuturesUnordered<_> = self
            .urls
            .iter()
            .map(|url| {
                let req = self.client.get(url).timeout(CANARY_TIMEOUT).send();
                async move { tokio::time::timeout(CANARY_TIMEOUT, req).await }
            })
            .collect();
        while let Some(answer) = pending.next().await {
            if matches!(answer, Ok(Ok(_))) {
                return true;
            }
        }
        false
    }
}
