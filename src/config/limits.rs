//! The limits that keep one client, or a flood of them, from exhausting the service or the
//! money its credentials can spend: rate limits, the in-flight cap and request size caps.

use std::fmt;
use std::time::Duration;

use super::env::Env;

pub const DEFAULT_RATE_LIMIT_PER_USER: &str = "20/min,burst=10";
/// In flight, not per second: a static-mode request finishes in well under a millisecond, so
/// even thousands of requests a second keep only a handful in flight. The cap bites when
/// something the requests wait on stalls (Supabase's session check, Telnyx in `per_user` mode),
/// and then it bounds memory (each request holds at most its headers, `MAX_REQUEST_HEADER_BYTES`)
/// and how many calls pile up on that upstream.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: u64 = 1024;
/// No endpoint reads a body; `POST /credentials` takes none. A little room for clients that
/// send `{}` or a small form anyway.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 16 * 1024;
/// Room for an 8 KiB access token plus cookies and the usual browser headers (Supabase's own
/// auth cookies, when the API shares the app's domain, come in ~3 KiB chunks).
pub const DEFAULT_MAX_REQUEST_HEADER_BYTES: u64 = 32 * 1024;

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Credential requests per verified user (`sub`); `None` when `off`.
    pub per_user: Option<RateLimit>,
    /// Credential requests per client address; `None` (the default) when `off`.
    pub per_client_address: Option<RateLimit>,
    /// Take the client address from `X-Forwarded-For` instead of the TCP peer.
    pub trust_proxy_headers: bool,
    /// Credential requests in flight at once; past it, `503` at once.
    pub max_concurrent_requests: usize,
    pub max_request_body_bytes: usize,
    /// Request header names and values together.
    pub max_request_header_bytes: usize,
}

/// `requests` per `period` on average, with up to `burst` at once (GCRA: one request's worth
/// comes back every `period / requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub period: Duration,
    pub burst: u32,
}

impl RateLimit {
    /// The time it takes to earn one more request.
    pub fn replenish_interval(&self) -> Duration {
        self.period / self.requests
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit},burst={}", self.requests, self.burst)
    }
}

const RATE_HINT: &str = "set it to a rate such as 20/min,burst=10 (per s, min or h; burst defaults to the rate), or off";

/// `off`, or `<requests>/<s|min|h>[,burst=<n>]`.
pub fn parse_rate_limit(value: &str) -> Result<Option<RateLimit>, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid = || format!("is {value:?}: {RATE_HINT}");
    let (rate, burst) = match value.split_once(',') {
        Some((rate, burst)) => (rate, Some(burst)),
        None => (value, None),
    };
    let (requests, unit) = rate.split_once('/').ok_or_else(invalid)?;
    let requests = parse_positive(requests).ok_or_else(invalid)?;
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(invalid()),
    };
    let burst = match burst {
        None => requests,
        Some(burst) => burst
            .trim()
            .strip_prefix("burst=")
            .and_then(parse_positive)
            .ok_or_else(invalid)?,
    };
    Ok(Some(RateLimit {
        requests,
        period,
        burst,
    }))
}

fn parse_positive(text: &str) -> Option<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|number| (1..=1_000_000).contains(number))
}

pub(super) fn read(env: &mut Env<impl Fn(&str) -> Option<String>>) -> LimitsConfig {
    let per_user = env
        .parsed_or(
            "RATE_LIMIT_PER_USER",
            DEFAULT_RATE_LIMIT_PER_USER,
            parse_rate_limit,
        )
        .flatten();
    let per_client_address = env
        .parsed_or("RATE_LIMIT_PER_IP", "off", parse_rate_limit)
        .flatten();
    let trust_proxy_headers = env.flag_or("TRUST_PROXY_HEADERS", false);
    let max_concurrent_requests = env.number_or(
        "MAX_CONCURRENT_REQUESTS",
        DEFAULT_MAX_CONCURRENT_REQUESTS,
        1..=1_000_000,
    );
    let max_request_body_bytes = env.number_or(
        "MAX_REQUEST_BODY_BYTES",
        DEFAULT_MAX_REQUEST_BODY_BYTES,
        0..=16 * 1024 * 1024,
    );
    let max_request_header_bytes = env.number_or(
        "MAX_REQUEST_HEADER_BYTES",
        DEFAULT_MAX_REQUEST_HEADER_BYTES,
        4 * 1024..=256 * 1024,
    );
    let size = |count: u64| usize::try_from(count).expect("the ranges above fit in usize");
    LimitsConfig {
        per_user,
        per_client_address,
        trust_proxy_headers,
        max_concurrent_requests: size(max_concurrent_requests),
        max_request_body_bytes: size(max_request_body_bytes),
        max_request_header_bytes: size(max_request_header_bytes),
    }
}

impl fmt::Display for LimitsConfig {
    /// The lines `check-config` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |limit: Option<RateLimit>| limit.map_or("off".to_owned(), |l| l.to_string());
        writeln!(f, "RATE_LIMIT_PER_USER    = {}", rate(self.per_user))?;
        writeln!(
            f,
            "RATE_LIMIT_PER_IP      = {}",
            rate(self.per_client_address)
        )?;
        writeln!(f, "TRUST_PROXY_HEADERS    = {}", self.trust_proxy_headers)?;
        writeln!(
            f,
            "MAX_CONCURRENT_REQUESTS = {}",
            self.max_concurrent_requests
        )?;
        writeln!(
            f,
            "MAX_REQUEST_BODY_BYTES = {}",
            self.max_request_body_bytes
        )?;
        write!(
            f,
            "MAX_REQUEST_HEADER_BYTES = {}",
            self.max_request_header_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_documented() {
        let limit = |requests, secs, burst| {
            Some(RateLimit {
                requests,
                period: Duration::from_secs(secs),
                burst,
            })
        };
        assert_eq!(parse_rate_limit("20/min,burst=10"), Ok(limit(20, 60, 10)));
        assert_eq!(parse_rate_limit("5/s"), Ok(limit(5, 1, 5)));
        assert_eq!(
            parse_rate_limit(" 100 / hour , burst=3 "),
            Ok(limit(100, 3600, 3))
        );
        assert_eq!(parse_rate_limit("OFF"), Ok(None));
        assert_eq!(
            limit(20, 60, 10).unwrap().replenish_interval(),
            Duration::from_secs(3)
        );
        assert_eq!(limit(20, 60, 10).unwrap().to_string(), "20/min,burst=10");
    }

    #[test]
    fn malformed_rates_say_how_to_write_one() {
        for value in [
            "20",
            "20 per minute",
            "0/min",
            "20/day",
            "-1/s",
            "20/min,burst=0",
            "20/min,10",
            "20/min,burst=ten",
        ] {
            let problem = parse_rate_limit(value).unwrap_err();
            assert!(problem.contains("20/min,burst=10"), "{value}: {problem}");
        }
    }
}
