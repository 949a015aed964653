//! Sending one Telnyx request patiently: retries on 429, 5xx and unreachable, with exponential
//! backoff and jitter, `Retry-After` honoured, and never past the request's time budget. A
//! request that is not safe to repeat is retried only when Telnyx cannot have acted on it.

use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, StatusCode, header};
use reqwest::{RequestBuilder, Response};

use super::TelnyxError;
use crate::config::TelnyxTiming;

/// The time left for all the Telnyx calls made on behalf of one request.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    pub fn new(total: Duration) -> Self {
        Self {
            deadline: Instant::now() + total,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Which failures a request may be sent again after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    /// Sending it twice does what sending it once does (a list, a delete, a PATCH to a fixed
    /// value, a token): every retryable failure is retried.
    Safe,
    /// A create: after a timeout or a 5xx the credential may exist all the same, and a blind
    /// second `POST` would make another. Retried only after a 429 or a failure to connect, when
    /// Telnyx has not acted on it; otherwise the caller finds out what happened first.
    OnlyIfUnprocessed,
}

/// Sends the request `build` makes, again when Telnyx is busy or failing (as `repeat` allows),
/// until it answers with anything else, the attempts run out, or the budget would be overrun.
pub(super) async fn send(
    endpoint: &'static str,
    timing: &TelnyxTiming,
    budget: &Budget,
    repeat: Repeat,
    build: impl Fn() -> RequestBuilder,
) -> Result<Response, TelnyxError> {
    let mut last = Failure {
        cause: "no time was left in the request's budget".to_owned(),
        retry_after: None,
    };
    for attempt in 1..=timing.max_attempts.max(1) {
        let remaining = budget.remaining();
        if remaining.is_zero() {
            break;
        }
        let started = Instant::now();
        let outcome = build()
            .timeout(timing.attempt_timeout.min(remaining))
            .send()
            .await;
        let label = match &outcome {
            Ok(response) => response.status().as_str().to_owned(),
            Err(error) if error.is_timeout() => "timeout".to_owned(),
            Err(_) => "unreachable".to_owned(),
        };
        crate::metrics::telnyx_request(endpoint, label, started.elapsed());
        let unprocessed = match &outcome {
            Ok(response) => response.status() == StatusCode::TOO_MANY_REQUESTS,
            Err(error) => error.is_connect(),
        };
        last = match outcome {
            Ok(response) if !is_retryable(response.status()) => return Ok(response),
            Ok(response) => Failure {
                cause: format!("Telnyx answered {}", response.status()),
                retry_after: retry_after(response.headers()),
            },
            Err(error) => Failure {
                cause: describe(&error),
                retry_after: None,
            },
        };
        if attempt == timing.max_attempts || (repeat == Repeat::OnlyIfUnprocessed && !unprocessed) {
            break;
        }
        let wait = last.retry_after.unwrap_or_else(|| backoff(timing, attempt));
        if wait >= budget.remaining() {
            break;
        }
        tracing::debug!(attempt, cause = %last.cause, wait_ms = wait.as_millis(), "retrying a Telnyx call");
        tokio::time::sleep(wait).await;
    }
    Err(TelnyxError::Unavailable {
        cause: last.cause,
        retry_after: last.retry_after,
    })
}

struct Failure {
    cause: String,
    retry_after: Option<Duration>,
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A transport failure in words, without the URL (whose query names the user).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!(
        "the request to Telnyx {what}{}",
        crate::error_chain::causes(error)
    )
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Exponential backoff with equal jitter: half the step fixed, half random, so concurrent
/// callers spread out without any of them retrying at once.
fn backoff(timing: &TelnyxTiming, attempt: u32) -> Duration {
    let step = timing
        .first_backoff
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(timing.max_backoff);
    let half = step / 2;
    let random = getrandom::u64().unwrap_or(0);
    let jitter_nanos = u64::try_from(half.as_nanos())
        .ok()
        .filter(|nanos| *nanos > 0)
        .map_or(0, |nanos| random % nanos);
    half + Duration::from_nanos(jitter_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let timing = TelnyxTiming::default();
        for attempt in 1..=8 {
            let wait = backoff(&timing, attempt);
            let step = (timing.first_backoff * 2u32.pow(attempt - 1)).min(timing.max_backoff);
            assert!(
                wait >= step / 2 && wait <= step,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let parsed = retry_after(&headers).unwrap();
        assert!(parsed > Duration::from_secs(110) && parsed <= Duration::from_secs(120));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
