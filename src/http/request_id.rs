//! Which `x-request-id` a request carries: the client's, when it is a plausible id (at most
//! [`MAX_LEN`] characters of `[A-Za-z0-9._:-]`), or else a fresh one.
//!
//! The id is echoed in the response and written into every log line of the request, so a client
//! that could choose any value could make each of those lines kilobytes long, or put quotes,
//! spaces and lookalike fields into them. UUIDs, ULIDs, W3C trace ids and the ids nginx
//! (`$request_id`), Envoy and Heroku set all fit.

use axum::http::{HeaderValue, Request, Response};
use uuid::Uuid;

use super::REQUEST_ID;
use super::around::Around;

/// Long enough for any id scheme in use, short enough to keep a log line a line.
pub const MAX_LEN: usize = 128;

pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'))
}

/// Middleware: replaces an unacceptable `x-request-id` (or several) with a fresh UUID, before
/// `SetRequestIdLayer`, which keeps the id it finds and makes one where there is none.
#[derive(Clone, Copy)]
pub struct CheckRequestId;

impl Around for CheckRequestId {
    type Noted = ();

    fn request<B>(&self, request: &mut Request<B>) {
        let ids = request.headers().get_all(&REQUEST_ID);
        let mut values = ids.iter();
        let (Some(first), None) = (values.next(), values.next()) else {
            if request.headers().contains_key(&REQUEST_ID) {
                replace(request, "several x-request-id headers");
            }
            return;
        };
        if !is_acceptable(first.as_bytes()) {
            let why = if first.len() > MAX_LEN {
                "longer than 128 characters"
            } else {
                "not only letters, digits and . _ : -"
            };
            replace(request, why);
        }
    }

    fn response<B>((): (), _: &mut Response<B>) {}
}

/// The refused value is not logged, only its length: it is what must stay out of the logs.
fn replace<B>(request: &mut Request<B>, why: &'static str) {
    let refused_len: usize = request
        .headers()
        .get_all(&REQUEST_ID)
        .iter()
        .map(HeaderValue::len)
        .sum();
    let fresh = Uuid::new_v4().to_string();
    tracing::debug!(
        request_id = %fresh,
        refused_len,
        why,
        "the client's x-request-id was replaced with a fresh one"
    );
    let value = HeaderValue::from_str(&fresh).expect("a UUID is a valid header value");
    request.headers_mut().insert(REQUEST_ID, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_usual_schemes_are_kept() {
        for id in [
            "0b9a7c52-1d3e-4f60-8a2b-3c4d5e6f7a8b",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "req-0",
            "host.example:8080_a.b",
        ] {
            assert!(is_acceptable(id.as_bytes()), "{id}");
        }
        assert!(is_acceptable("a".repeat(MAX_LEN).as_bytes()));
    }

    #[test]
    fn long_empty_or_odd_ids_are_not() {
        for id in [
            "",
            "a b",
            "id\"injected",
            "{\"level\":\"ERROR\"}",
            "Root=1-67891233-abcdef012345678912345678",
            "caf\u{e9}",
            "a/b",
        ] {
            assert!(!is_acceptable(id.as_bytes()), "{id}");
        }
        assert!(!is_acceptable("a".repeat(MAX_LEN + 1).as_bytes()));
    }
}
