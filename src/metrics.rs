//! Prometheus metrics: every metric the service records, described in one place, the
//! process-wide recorder, and the text `GET /metrics` answers with.
//!
//! Labels take values from small fixed sets (route templates, status codes, reason codes, the
//! configured issuers), never from user input, so the number of series stays bounded.

use std::collections::{HashMap, HashSet};
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
pub const REQUESTS_REFUSED: &str = "requests_refused_total";
/// The name `requests_refused_total` had until it counted more than tokens; still emitted, with
/// the same series, for one release so dashboards can move.
pub const TOKEN_REJECTIONS_DEPRECATED: &str = "token_rejections_total";
pub const JWKS_FETCHES: &str = "jwks_fetches_total";
pub const JWKS_KEY_SET_AGE: &str = "jwks_key_set_age_seconds";
pub const JWKS_KEYS: &str = "jwks_keys";
pub const CREDENTIALS_ISSUED: &str = "credentials_issued_total";
pub const CREDENTIALS_REVOKED: &str = "credentials_revoked_total";
pub const DEVICES_EVICTED: &str = "devices_evicted_total";
pub const TELNYX_REQUESTS: &str = "telnyx_requests_total";
pub const TELNYX_REQUEST_DURATION: &str = "telnyx_request_duration_seconds";
pub const CACHE_LOOKUPS: &str = "cache_lookups_total";
pub const REDIS_COMMANDS: &str = "redis_commands_total";
pub const HTTP_CONNECTIONS_OPEN: &str = "http_connections_open";
pub const HTTP_CONNECTIONS_CLOSED: &str = "http_connections_closed_total";

/// Seconds; from a cached answer (tens of microseconds) to a slow Telnyx (seconds).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// How often recorded histogram samples are folded into their buckets. Until then the recorder
/// keeps every sample (about 8 bytes a request), and installed with `install_recorder` it has no
/// upkeep task of its own: without [`upkeep_forever`], memory grows with each request between
/// two scrapes, and for ever where nothing scrapes (37 MiB after a minute of `bench/run.sh`).
/// Every second keeps that under a megabyte at tens of thousands of requests a second.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the recorder's memory bounded for as long as the service runs.
pub async fn upkeep_forever(handle: PrometheusHandle) {
    loop {
        tokio::time::sleep(UPKEEP_INTERVAL).await;
        handle.run_upkeep();
    }
}

/// Installs the recorder once per process and returns its handle; later calls (tests start
/// many servers in one process) share it.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .expect("the latency buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route template and method"
    );
    describe_counter!(
        REQUESTS_REFUSED,
        "Requests turned away on purpose, by reason: token and policy refusals, rate limits, size limits, load shedding, session checks"
    );
    describe_counter!(
        TOKEN_REJECTIONS_DEPRECATED,
        "Deprecated, removed in the next release: the same as requests_refused_total"
    );
    describe_counter!(
        JWKS_FETCHES,
        "Fetches of the signing keys, by issuer (supabase, or a THIRD_PARTY_ISSUERS tag) and outcome"
    );
    describe_gauge!(
        JWKS_KEY_SET_AGE,
        Unit::Seconds,
        "Age of the signing keys in use, by issuer (absent until its first successful fetch)"
    );
    describe_gauge!(JWKS_KEYS, "Usable signing keys in the JWKS, by issuer");
    describe_counter!(
        CREDENTIALS_ISSUED,
        "Credentials handed out, by mode and issuer"
    );
    describe_counter!(
        CREDENTIALS_REVOKED,
        "DELETE /credentials that deleted Telnyx credentials (one device's, or all of a user's), by issuer"
    );
    describe_counter!(
        DEVICES_EVICTED,
        "Devices signed out (their Telnyx credential deleted) to make room for a user's new device past MAX_DEVICES_PER_USER"
    );
    describe_counter!(
        TELNYX_REQUESTS,
        "Telnyx API requests (each attempt), by endpoint and outcome"
    );
    describe_histogram!(
        TELNYX_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of one Telnyx API attempt, by endpoint"
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Cache lookups, by cache and result (hit or miss)"
    );
    describe_counter!(
        REDIS_COMMANDS,
        "Commands sent to the shared Redis (REDIS_URL), by outcome: ok, error, timeout, or skipped while the circuit breaker is open"
    );
    describe_gauge!(
        HTTP_CONNECTIONS_OPEN,
        "Client connections open, whether or not they carry a request"
    );
    describe_counter!(
        HTTP_CONNECTIONS_CLOSED,
        "Client connections closed, by reason: ended, header_timeout, idle_timeout, error, shutdown"
    );
}

/// The exposition text, with histograms brought up to date first.
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

/// Counts and times one answered request. `method` is one of a few fixed labels.
///
/// Registering a series builds its label set and looks it up in the recorder's registry (about
/// 3% of the CPU time of a cached `GET /credentials`), so each route, method and status is
/// registered once and its handles kept: a few dozen at most, as routes are templates.
pub fn http_request(route: &str, method: &'static str, status: u16, elapsed: Duration) {
    type Series = HashMap<(&'static str, u16), (Counter, Histogram)>;
    static SERIES: OnceLock<RwLock<HashMap<Box<str>, Series>>> = OnceLock::new();
    let series = SERIES.get_or_init(Default::default);
    let record = |(requests, duration): &(Counter, Histogram)| {
        requests.increment(1);
        duration.record(elapsed);
    };
    if let Some(handles) = series
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(route)
        .and_then(|by_route| by_route.get(&(method, status)))
    {
        return record(handles);
    }
    // A handle registered before the recorder is installed counts nothing, for ever.
    recorder();
    let handles = (
        counter!(HTTP_REQUESTS, "route" => route.to_owned(), "method" => method, "status" => status.to_string()),
        histogram!(HTTP_REQUEST_DURATION, "route" => route.to_owned(), "method" => method),
    );
    record(&handles);
    series
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(route.into())
        .or_default()
        .insert((method, status), handles);
}

/// A request turned away on purpose; `reason` is a token rejection's or the error's code.
pub fn request_refused(reason: &'static str) {
    counter!(REQUESTS_REFUSED, "reason" => reason).increment(1);
    counter!(TOKEN_REJECTIONS_DEPRECATED, "reason" => reason).increment(1);
}

/// One fetch of `issuer`'s signing keys (`supabase`, or a third-party issuer's tag).
pub fn jwks_fetched(issuer: &'static str, succeeded: bool) {
    let outcome = if succeeded { "success" } else { "failure" };
    counter!(JWKS_FETCHES, "issuer" => issuer, "outcome" => outcome).increment(1);
}

pub fn jwks_state(issuer: &'static str, age: Duration, keys: usize) {
    gauge!(JWKS_KEY_SET_AGE, "issuer" => issuer).set(age.as_secs_f64());
    #[allow(clippy::cast_precision_loss)] // a key count is far below 2^52
    gauge!(JWKS_KEYS, "issuer" => issuer).set(keys as f64);
}

pub fn credential_issued(mode: &'static str, issuer: &'static str) {
    count_fixed(
        (CREDENTIALS_ISSUED, mode, issuer),
        || counter!(CREDENTIALS_ISSUED, "mode" => mode, "issuer" => issuer),
    );
}

pub fn credential_revoked(issuer: &'static str) {
    count_fixed(
        (CREDENTIALS_REVOKED, issuer, ""),
        || counter!(CREDENTIALS_REVOKED, "issuer" => issuer),
    );
}

/// A label value made from the configuration (a third-party issuer's tag), kept for the life
/// of the process as the recorder's labels are. Each distinct value is kept once, so what it
/// holds is bounded by the configurations this process has read, like the series themselves.
pub fn label(value: &str) -> &'static str {
    static LABELS: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let labels = LABELS.get_or_init(Default::default);
    if let Some(known) = labels
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(value)
    {
        return known;
    }
    let mut labels = labels.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = labels.get(value) {
        return known;
    }
    let kept: &'static str = Box::leak(value.to_owned().into_boxed_str());
    labels.insert(kept);
    kept
}

/// A device signed out to make room for a new one past `MAX_DEVICES_PER_USER`.
pub fn device_evicted() {
    counter!(DEVICES_EVICTED).increment(1);
}

/// One attempt at a Telnyx endpoint; `outcome` is a status code, `timeout` or `unreachable`.
pub fn telnyx_request(endpoint: &'static str, outcome: String, elapsed: Duration) {
    counter!(TELNYX_REQUESTS, "endpoint" => endpoint, "outcome" => outcome).increment(1);
    histogram!(TELNYX_REQUEST_DURATION, "endpoint" => endpoint).record(elapsed);
}

pub fn cache_lookup(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    count_fixed(
        (CACHE_LOOKUPS, cache, result),
        || counter!(CACHE_LOOKUPS, "cache" => cache, "result" => result),
    );
}

/// One command to the shared Redis; `outcome` is `ok`, `error`, `timeout` or `skipped`.
pub fn redis_command(outcome: &'static str) {
    count_fixed(
        (REDIS_COMMANDS, outcome, ""),
        || counter!(REDIS_COMMANDS, "outcome" => outcome),
    );
}

fn open_connections() -> &'static Gauge {
    static OPEN: OnceLock<Gauge> = OnceLock::new();
    OPEN.get_or_init(|| {
        // A handle registered before the recorder is installed records nothing, for ever.
        recorder();
        gauge!(HTTP_CONNECTIONS_OPEN)
    })
}

/// Makes the connection series exist from the start, at zero, so a dashboard or an alert on
/// `rate(http_connections_closed_total{reason="header_timeout"}[5m])` has a series before the
/// first slow client.
pub fn register_connection_series() {
    open_connections().increment(0.0);
    for closed in crate::server::connection::Closed::ALL {
        counter!(HTTP_CONNECTIONS_CLOSED, "reason" => closed.label()).increment(0);
    }
}

pub fn connection_opened() {
    open_connections().increment(1.0);
}

/// `reason` is a [`Closed`](crate::server::connection::Closed) label.
pub fn connection_closed(reason: &'static str) {
    open_connections().decrement(1.0);
    count_fixed(
        (HTTP_CONNECTIONS_CLOSED, reason, ""),
        || counter!(HTTP_CONNECTIONS_CLOSED, "reason" => reason),
    );
}

/// Adds one to a counter whose label values are fixed strings, identified by its name and up to
/// two label values; `register` makes it the first time. Like [`http_request`], it keeps the
/// handle instead of registering on every call.
fn count_fixed(
    key: (&'static str, &'static str, &'static str),
    register: impl FnOnce() -> Counter,
) {
    type Counters = HashMap<(&'static str, &'static str, &'static str), Counter>;
    static COUNTERS: OnceLock<RwLock<Counters>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(Default::default);
    if let Some(counter) = counters
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return counter.increment(1);
    }
    // A handle registered before the recorder is installed (a token verified before any
    // `AppState` exists, as in tests) would count nothing, for ever.
    recorder();
    counters
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_insert_with(register)
        .increment(1);
}
