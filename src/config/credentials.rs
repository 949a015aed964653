//! Reading the credential settings: which `CREDENTIAL_MODE`, the SIP identity or Telnyx API
//! access it needs, and the ICE servers handed to the browser.

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use super::env::Env;
use super::{
    CredentialConfig, CredentialSourceConfig, DEFAULT_SIP_REALM, DEFAULT_STUN_URLS,
    DEFAULT_TURN_URLS, PerUserConfig, TelnyxApiConfig, TelnyxTiming, TurnCredentials,
};

pub const DEFAULT_TELNYX_API_BASE_URL: &str = "https://api.telnyx.com/v2";

/// What `demo` makes up instead of reading `TELNYX_WEBRTC_USERNAME` and `_PASSWORD`.
pub(super) type StaticFallback = Option<(String, SecretString)>;

/// Reads `CREDENTIAL_MODE` and everything that mode needs. `demo` passes a made-up SIP identity
/// and is always static.
pub(super) fn credential_config(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    demo_identity: StaticFallback,
    allow_insecure_http: bool,
) -> Option<CredentialConfig> {
    let mode = match demo_identity {
        Some(_) => None,
        None => env.optional("CREDENTIAL_MODE"),
    };
    let source = match mode.as_deref() {
        None | Some("static") => static_source(env, demo_identity),
        Some("per_user") => per_user_source(env, allow_insecure_http),
        Some(other) => {
            env.problem(
                "CREDENTIAL_MODE",
                format!("is {other:?}: set it to static or per_user"),
            );
            None
        }
    };
    let realm = env.string_or("TELNYX_SIP_REALM", DEFAULT_SIP_REALM);
    let stun_urls = env.ice_urls("TELNYX_STUN_URLS", &DEFAULT_STUN_URLS, &["stun:", "stuns:"]);
    let turn_urls = env.ice_urls("TELNYX_TURN_URLS", &DEFAULT_TURN_URLS, &["turn:", "turns:"]);
    let turn_credentials = turn_credentials(env);
    Some(CredentialConfig {
        source: source?,
        realm,
        stun_urls,
        turn_urls,
        turn_credentials,
    })
}

/// The static SIP identity; `fallback` (demo mode) stands in for unset variables.
fn static_source(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    fallback: StaticFallback,
) -> Option<CredentialSourceConfig> {
    let (fallback_username, fallback_password) = fallback.unzip();
    let username = env.optional("TELNYX_WEBRTC_USERNAME").or(fallback_username);
    let password = env
        .optional("TELNYX_WEBRTC_PASSWORD")
        .map(SecretString::from)
        .or(fallback_password);
    if username.is_none() {
        env.problem(
            "TELNYX_WEBRTC_USERNAME",
            "is not set: set it to the SIP username of your Telnyx credential connection (Mission Control portal → Call Connections → your credential connection), or set CREDENTIAL_MODE=per_user".into(),
        );
    }
    if password.is_none() {
        env.problem(
            "TELNYX_WEBRTC_PASSWORD",
            "is not set: set it to the SIP password of that credential connection".into(),
        );
    }
    let ttl = env.seconds_or("CREDENTIAL_TTL_SECS", 86_400, 60..=2_592_000);
    Some(CredentialSourceConfig::Static {
        username: username?,
        password: password?,
        ttl,
    })
}

/// The Telnyx API and the credential connection, as `serve` in per_user mode and `prune` read
/// them; `None` for each part that is missing or malformed (and recorded as a problem).
pub(super) fn telnyx_access(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    allow_insecure_http: bool,
) -> (Option<TelnyxApiConfig>, Option<String>, Duration) {
    let api_key = env.required_with(
        "TELNYX_API_KEY",
        "is not set: CREDENTIAL_MODE=per_user creates credentials through the Telnyx API; create one in the Mission Control portal (API Keys → Create API Key) and set it here",
        |key| Ok(SecretString::from(key)),
    );
    let connection_id = env.required_with(
        "TELNYX_WEBRTC_CONNECTION_ID",
        "is not set: CREDENTIAL_MODE=per_user creates each user's credential on a credential connection; set it to that connection's ID (Mission Control portal → Call Connections → your SIP credential connection)",
        parse_connection_id,
    );
    let base_url = env.parsed_or(
        "TELNYX_API_BASE_URL",
        DEFAULT_TELNYX_API_BASE_URL,
        |value| parse_api_base_url(value, allow_insecure_http),
    );
    let request_budget = env.seconds_or("TELNYX_REQUEST_BUDGET_SECS", 15, 1..=120);
    let api = api_key
        .zip(base_url)
        .map(|(api_key, base_url)| TelnyxApiConfig {
            api_key,
            base_url,
            request_budget,
            timing: TelnyxTiming::default(),
        });
    (api, connection_id, request_budget)
}

/// Telnyx API access for one telephony credential per user.
fn per_user_source(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    allow_insecure_http: bool,
) -> Option<CredentialSourceConfig> {
    let (api, connection_id, request_budget) = telnyx_access(env, allow_insecure_http);
    let refresh_margin = env.seconds_or("TOKEN_REFRESH_MARGIN_SECS", 600, 0..=43_200);
    let cache_capacity = env.number_or("TOKEN_CACHE_MAX_USERS", 10_000, 1..=10_000_000);
    // Telnyx's JWT guide: wait about 5 s after creating a credential before logging in with it.
    let propagation = env.seconds_or("TELNYX_CREDENTIAL_PROPAGATION_SECS", 5, 0..=30);
    if propagation >= request_budget {
        env.problem(
            "TELNYX_CREDENTIAL_PROPAGATION_SECS",
            format!(
                "is {}, not below TELNYX_REQUEST_BUDGET_SECS ({}): a brand-new user's first request waits this long within that budget, so lower it or raise TELNYX_REQUEST_BUDGET_SECS",
                propagation.as_secs(),
                request_budget.as_secs()
            ),
        );
    }
    let idle_days = env.number_or("TELNYX_CREDENTIAL_IDLE_DAYS", 30, 1..=3650);
    let max_devices = env.number_or("MAX_DEVICES_PER_USER", 5, 1..=100);
    Some(CredentialSourceConfig::PerUser(Box::new(PerUserConfig {
        api: api?,
        connection_id: connection_id?,
        refresh_margin,
        cache_capacity: usize::try_from(cache_capacity).unwrap_or(usize::MAX),
        propagation,
        idle: Duration::from_secs(idle_days * 86_400),
        max_devices: usize::try_from(max_devices).expect("at most 100"),
    })))
}

/// TURN credentials of their own, both or neither.
fn turn_credentials(env: &mut Env<impl Fn(&str) -> Option<String>>) -> Option<TurnCredentials> {
    let username = env.optional("TELNYX_TURN_USERNAME");
    let password = env.optional("TELNYX_TURN_PASSWORD").map(SecretString::from);
    match (username, password) {
        (Some(username), Some(password)) => Some(TurnCredentials { username, password }),
        (None, None) => None,
        (Some(_), None) => {
            env.problem(
                "TELNYX_TURN_PASSWORD",
                "is not set but TELNYX_TURN_USERNAME is: set both, or neither".into(),
            );
            None
        }
        (None, Some(_)) => {
            env.problem(
                "TELNYX_TURN_USERNAME",
                "is not set but TELNYX_TURN_PASSWORD is: set both, or neither".into(),
            );
            None
        }
    }
}

/// Telnyx connection ids are opaque strings of digits; anything with a separator in it is a
/// paste of the wrong field and would end up inside a URL.
pub(super) fn parse_connection_id(value: &str) -> Result<String, String> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "is {value:?}: set it to the connection's ID alone, such as 1234567890"
        ))
    }
}

pub(super) fn parse_api_base_url(value: &str, allow_insecure_http: bool) -> Result<Url, String> {
    let hint = format!("set it to {DEFAULT_TELNYX_API_BASE_URL}, or leave it unset");
    let url = Url::parse(value.trim_end_matches('/'))
        .map_err(|_| format!("is {value:?}, not a URL: {hint}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("is {value:?}: {hint}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("is {value:?}, with a query or fragment: {hint}"));
    }
    super::refuse_plain_http(
        &url,
        allow_insecure_http,
        "the API key would be sent in clear, for whoever sits on the way to copy",
    )?;
    Ok(url)
}

impl Default for TelnyxTiming {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 3,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}
