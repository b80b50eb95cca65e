//! The HTTP client side of `/collect`, shared by `cdp demo` and `cdp replay`: posts
//! a batch of raw events and reads the per-event answer, waiting and retrying on 503.

use cdp_api::reply::CollectReply;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Attempts per batch when the collector answers 503.
const ATTEMPTS: u32 = 5;

/// Why a post failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not usable.
    #[error("collector url `{0}` must start with http:// or https://")]
    BadUrl(String),
    /// The request did not complete.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The endpoint.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The collector answered with an error that retrying will not fix.
    #[error("collector answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
}

/// A client for one collector.
#[derive(Clone)]
pub struct Collector {
    http: reqwest::Client,
    url: String,
}

impl Collector {
    /// A client for the collector at `base` (such as `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Collector, ClientError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl(base.to_owned()));
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| ClientError::Http {
                url: base.to_owned(),
                source,
            })?;
        Ok(Collector {
            http,
            url: format!("{}/collect", base.trim_end_matches('/')),
        })
    }

    /// Posts a batch, retrying on 503 after the advertised `Retry-After`. A 400 whose body is
    /// a per-event answer (every event rejected) is returned as an answer, not an error.
    pub async fn post(&self, events: &[Value]) -> Result<CollectReply, ClientError> {
        let body = serde_json::to_vec(events).unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .http
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|source| self.http_error(source))?;
            let status = resp.status();
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            let text = resp
                .text()
                .await
                .map_err(|source| self.http_error(source))?;
            if status == StatusCode::SERVICE_UNAVAILABLE && attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(wait.min(30))).await;
                continue;
            }
            if status == StatusCode::OK || status == StatusCode::BAD_REQUEST {
                if let Ok(reply) = serde_json::from_str::<CollectReply>(&text) {
                    return Ok(reply);
                }
            }
            return Err(ClientError::Status {
                status: status.as_u16(),
                body: text.chars().take(2000).collect(),
            });
        }
    }

    fn http_error(&self, source: reqwest::Error) -> ClientError {
        ClientError::Http {
            url: self.url.clone(),
            source,
        }
    }
}
