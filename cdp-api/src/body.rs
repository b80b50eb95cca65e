//! Reading a request body under a size cap and a deadline, and what happens to the rest of a
//! body the collector refuses.
//!
//! Most server-side clients (Python's `http.client`, most SDKs, anything that does not send
//! `Expect: 100-continue`) write the whole body before they read the answer. If the server
//! answers early and closes while the body is still arriving, the kernel resets the
//! connection over the unread bytes and the client sees a network error instead of the
//! refusal, then retries the same body forever. So a refused request's remaining body is read
//! and thrown away, as mature servers do, before the answer goes out: at most
//! [`DISCARD_MAX_BYTES`] and never past the request's deadline, so a client can neither hold a
//! connection open indefinitely nor make the server buffer anything. Beyond either bound the
//! answer carries `Connection: close`.
//!
//! The deadline also bounds a body that never finishes (a slow-loris client): the whole body
//! must arrive within `--body-timeout-secs` of the handler starting, or the request gets 408.

use crate::reply::{AppError, Problem, Refusal};
use axum::body::{Body, BodyDataStream};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use cdp_core::intake;
use futures_util::StreamExt;
use tokio::time::Instant;

pub use intake::DISCARD_MAX_BYTES;

/// A request body being read, with the deadline it must arrive by.
pub struct RequestBody {
    stream: BodyDataStream,
    deadline: Instant,
    timeout_secs: u64,
    ended: bool,
    discard: bool,
}

impl RequestBody {
    /// Starts reading `body`, which must arrive whole within `timeout` from now. A body that
    /// the client only sends after a `100 Continue`, or that declares more than
    /// [`DISCARD_MAX_BYTES`], is never discarded: the first is not on its way yet, and the
    /// second is cheaper to cut off than to read.
    pub fn new(body: Body, headers: &HeaderMap, timeout: std::time::Duration) -> RequestBody {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let discard =
            intake::discards_refused_body(text(header::EXPECT), text(header::CONTENT_LENGTH));
        RequestBody {
            stream: body.into_data_stream(),
            deadline: Instant::now() + timeout,
            timeout_secs: timeout.as_secs().max(1),
            ended: false,
            discard,
        }
    }

    /// Reads the whole body, refusing it as soon as it passes `cap` bytes (413) or the
    /// deadline (408). A body that cannot be read (the client went away) is a 400.
    pub async fn read_capped(&mut self, cap: usize) -> Result<Vec<u8>, AppError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await? {
            intake::check_size(None, Some(out.len() + chunk.len()), cap)?;
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn next(&mut self) -> Result<Option<axum::body::Bytes>, Refusal> {
        if self.ended {
            return Ok(None);
        }
        match tokio::time::timeout_at(self.deadline, self.stream.next()).await {
            Err(_) => Err(Refusal::BodyTimeout(self.timeout_secs)),
            Ok(None) => {
                self.ended = true;
                Ok(None)
            }
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
            Ok(Some(Err(e))) => {
                // Nothing more will come; there is nothing to discard either.
                self.ended = true;
                Err(Refusal::MalformedBody(vec![Problem::new(
                    "body",
                    format!("could not be read ({e})"),
                )]))
            }
        }
    }

    /// Reads and drops what is left of the body, within [`DISCARD_MAX_BYTES`] and the
    /// deadline. Returns whether the body was read to its end (the connection can be reused).
    async fn discard_rest(&mut self) -> bool {
        if !self.discard {
            return self.ended;
        }
        let mut dropped: u64 = 0;
        while dropped <= DISCARD_MAX_BYTES {
            match self.next().await {
                Ok(Some(chunk)) => dropped += chunk.len() as u64,
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// The answer to a refused request: sent once the rest of the body is discarded, and with
    /// `Connection: close` when it could not be.
    pub async fn refuse(mut self, refusal: AppError) -> Response {
        let finished = self.discard_rest().await;
        let mut response = axum::response::IntoResponse::into_response(refusal);
        if !finished {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
