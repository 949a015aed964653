//! The service's typed configuration, read once from the environment and validated before the
//! listener binds.
//!
//! Every problem names the variable and says what to set, and all problems are reported at once,
//! so an operator fixes a `.env` in one pass instead of one restart per mistake.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use env::{Env, Placeholders};

pub use access::{
    AccessRules, ClaimRequirement, RULE_CLAIMS, SessionCheckConfig, parse_claim_requirements,
};
pub use connections::ConnectionConfig;
pub use credentials::DEFAULT_TELNYX_API_BASE_URL;
pub use issuers::{KeyLocation, MAX_THIRD_PARTY_ISSUERS, ThirdPartyIssuer, discovery_url};
pub use limits::{LimitsConfig, RateLimit};
pub use prune::{PruneConfig, SupabaseAdminConfig};
pub use shared::{DEFAULT_REDIS_COMMAND_TIMEOUT_MS, RedisConfig};
pub use template::{ENV_EXAMPLE, placeholder_in};

mod access;
mod admin;
mod connections;
mod credentials;
mod display;
mod env;
mod issuers;
mod limits;
mod prune;
mod shared;
mod template;

/// Supabase's own check: a legacy JWT secret is at least 32 characters. A shorter secret is a
/// typo (or a key pasted into the wrong variable), and HS256 with it would be brute-forceable.
const MIN_JWT_SECRET_LEN: usize = 32;

pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
/// About 1.5 KiB each with Supabase's claims (measured with massif): some 7 MiB when full.
pub const DEFAULT_ACCESS_TOKEN_CACHE_ENTRIES: usize = 5_000;
pub const DEFAULT_SIP_REALM: &str = "sip.telnyx.com";
pub const DEFAULT_STUN_URLS: [&str; 2] = ["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"];
/// UDP and TCP on 3478, and TLS on 443 for networks that let only HTTPS out, written as
/// `@telnyx/webrtc` writes it (`DEFAULT_PROD_ICE_SERVERS` in packages/js `util/constants`).
pub const DEFAULT_TURN_URLS: [&str; 3] = [
    "turn:turn.telnyx.com:3478?transport=udp",
    "turn:turn.telnyx.com:3478?transport=tcp",
    "turns:turn.telnyx.com:443",
];

/// Everything the service needs to run, with secrets wrapped so `Debug` never prints them.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind_addr: SocketAddr,
    /// Where `GET /metrics` is served alone; `None` serves it on `bind_addr` beside the API.
    pub metrics_bind_addr: Option<SocketAddr>,
    pub auth: AuthConfig,
    pub credentials: CredentialConfig,
    /// Exact origins (`scheme://host[:port]`) allowed to call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// Upper bound on the handling of one request; past it the client gets a 503.
    pub request_timeout: Duration,
    pub log: LogConfig,
    /// Rate limits, the in-flight cap and request size caps.
    pub limits: LimitsConfig,
    /// `REDIS_URL`: the store replicas share; `None` keeps every replica's state in its memory.
    pub redis: Option<RedisConfig>,
    /// Header and idle timeouts, the connection cap and the shutdown grace period.
    pub connections: ConnectionConfig,
    /// `ALLOW_INSECURE_HTTP`: plain `http://` accepted for Supabase and Telnyx on other hosts
    /// than this machine.
    pub allow_insecure_http: bool,
    /// `ADMIN_API_TOKEN`: the app backend's token for `/admin/…`; `None` serves no admin route.
    pub admin_api_token: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `${SUPABASE_URL}/auth/v1/.well-known/jwks.json`; `None` only in demo mode, which signs
    /// its own HS256 tokens and has no Supabase project behind it.
    pub jwks_url: Option<Url>,
    /// The exact `iss` an access token must carry.
    pub issuer: String,
    /// A value the token's `aud` must contain.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The legacy HS256 shared secret, used as its UTF-8 bytes.
    pub jwt_secret: Option<SecretString>,
    pub allow_anonymous_users: bool,
    /// `REQUIRE_CLAIMS`, `ALLOWED_EMAIL_DOMAINS` and `REQUIRE_AAL2`.
    pub rules: AccessRules,
    /// `SUPABASE_VERIFY_SESSION`: `None` when off.
    pub session_check: Option<SessionCheckConfig>,
    pub jwks: JwksTiming,
    /// How many verified tokens to remember (`auth::cache`); 0 verifies every request in full.
    pub access_token_cache_entries: usize,
    /// `THIRD_PARTY_ISSUERS`: the other identity providers the Supabase project trusts.
    pub third_party_issuers: Vec<ThirdPartyIssuer>,
    /// `ALLOW_INSECURE_HTTP`, for the `jwks_uri` a discovery document names.
    pub allow_insecure_http: bool,
}

/// How often the signing keys are fetched, Supabase's and each third-party issuer's alike. Not
/// read from the environment: the defaults follow Supabase's own cache headers; tests shorten
/// them.
#[derive(Debug, Clone, Copy)]
pub struct JwksTiming {
    /// Background refresh period after a successful fetch (Supabase serves `max-age=600`).
    pub refresh_interval: Duration,
    /// Background retry period while no fetch has succeeded, or after a failed one.
    pub retry_interval: Duration,
    /// Least time between two fetches caused by tokens with an unknown `kid`.
    pub min_refetch_interval: Duration,
    /// Timeout of one fetch, connect included.
    pub fetch_timeout: Duration,
}

impl Default for JwksTiming {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(600),
            retry_interval: Duration::from_secs(30),
            min_refetch_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CredentialConfig {
    pub source: CredentialSourceConfig,
    pub realm: String,
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    /// TURN credentials of their own (from Telnyx support or the operator's own TURN service).
    /// Only with them does the answer carry `ice_servers`; without them `turn_servers` carries
    /// the shared SIP identity in static mode and nothing in per_user mode.
    pub turn_credentials: Option<TurnCredentials>,
}

#[derive(Debug, Clone)]
pub struct TurnCredentials {
    pub username: String,
    pub password: SecretString,
}

/// Where SIP identities come from; `CREDENTIAL_MODE` picks the variant.
#[derive(Debug, Clone)]
pub enum CredentialSourceConfig {
    /// One SIP username and password shared by every user.
    Static {
        username: String,
        password: SecretString,
        /// How long a client may treat an issued credential as fresh (`expires_at`).
        ttl: Duration,
    },
    /// One Telnyx telephony credential per Supabase user, and short-lived login tokens for it.
    PerUser(Box<PerUserConfig>),
}

#[derive(Debug, Clone)]
pub struct PerUserConfig {
    pub api: TelnyxApiConfig,
    /// The credential connection every user's telephony credential is created on.
    pub connection_id: String,
    /// A cached login token is replaced once it has less than this left to live.
    pub refresh_margin: Duration,
    /// Most users whose login tokens are kept in memory.
    pub cache_capacity: usize,
    /// No login token is handed out for a credential younger than this.
    pub propagation: Duration,
    /// A credential expires this long after its last token unless moved forward.
    pub idle: Duration,
    /// `MAX_DEVICES_PER_USER`: devices (credentials with a `device_id`) one user may hold; the
    /// default credential is not one of them.
    pub max_devices: usize,
}

#[derive(Debug, Clone)]
pub struct TelnyxApiConfig {
    pub api_key: SecretString,
    /// `https://api.telnyx.com/v2`; tests point it at a local stand-in.
    pub base_url: Url,
    /// Upper bound on all Telnyx calls made for one request, retries included.
    pub request_budget: Duration,
    pub timing: TelnyxTiming,
}

/// How patiently Telnyx is called. Not read from the environment (`TELNYX_REQUEST_BUDGET_SECS`
/// bounds the whole); tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct TelnyxTiming {
    pub connect_timeout: Duration,
    /// Timeout of one HTTP attempt, never past the request's budget.
    pub attempt_timeout: Duration,
    /// Attempts per call, the first included, when Telnyx answers 429 or 5xx or cannot be reached.
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles per attempt, with full jitter.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// An `EnvFilter` directive, from `RUST_LOG`.
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// One variable that is missing or malformed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.variable, self.problem)
    }
}

/// Every problem found in one pass over the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl ConfigErrors {
    pub fn mentions(&self, variable: &str) -> bool {
        self.0.iter().any(|error| error.variable == variable)
    }
}

/// The SIP identity and HS256 secret that `demo` makes up for itself.
pub struct DemoSecrets {
    pub jwt_secret: SecretString,
    pub sip_username: String,
    pub sip_password: SecretString,
}

/// The issuer of the tokens `demo` mints for itself.
pub const DEMO_ISSUER: &str = "telnyx-webrtc-credentials-demo";

/// Where `npm run serve` in examples/browser-phone serves the example page. `demo` links to it
/// and, unless `CORS_ALLOWED_ORIGINS` says otherwise, lets it (under either name) call the API.
pub const EXAMPLE_PAGE_ORIGINS: [&str; 2] = ["http://127.0.0.1:5173", "http://localhost:5173"];

impl Config {
    /// Reads the process environment (after `.env`, which the binary loads first).
    pub fn from_process_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(process_env)
    }

    /// Reads the configuration through `lookup`, so tests pass a map instead of mutating the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(lookup, Placeholders::Refuse);
        let allow_insecure_http = env.flag_or("ALLOW_INSECURE_HTTP", false);
        let supabase_url = env.required_with(
            "SUPABASE_URL",
            "is not set: set it to https://<project-ref>.supabase.co (Supabase dashboard → Project Settings → API)",
            |value| parse_supabase_url(value, allow_insecure_http),
        );
        let issuer = env
            .optional("SUPABASE_JWT_ISSUER")
            .or_else(|| supabase_url.as_ref().map(|url| format!("{url}/auth/v1")));
        let jwks_url = supabase_url
            .as_ref()
            .and_then(|url| Url::parse(&format!("{url}/auth/v1/.well-known/jwks.json")).ok());
        let third_party_issuers = issuers::read(&mut env, issuer.as_deref(), allow_insecure_http);
        let jwt_secret = env.optional("SUPABASE_JWT_SECRET").and_then(|secret| {
            if secret.len() < MIN_JWT_SECRET_LEN {
                env.problem(
                    "SUPABASE_JWT_SECRET",
                    format!(
                        "is too short ({} characters; Supabase's are at least {MIN_JWT_SECRET_LEN}): copy the JWT secret from Supabase → Project Settings → JWT Keys, or unset it to accept only asymmetric keys",
                        secret.len()
                    ),
                );
                None
            } else {
                Some(SecretString::from(secret))
            }
        });
        let auth = AuthConfig {
            jwks_url,
            issuer: issuer.unwrap_or_default(),
            audience: env.string_or("SUPABASE_JWT_AUDIENCE", "authenticated"),
            leeway: env.seconds_or("JWT_LEEWAY_SECS", 30, 0..=300),
            jwt_secret,
            allow_anonymous_users: env.flag_or("ALLOW_ANONYMOUS_USERS", false),
            rules: access::read_rules(&mut env),
            session_check: access::read_session_check(&mut env, supabase_url.as_deref()),
            jwks: JwksTiming::default(),
            access_token_cache_entries: access_token_cache_entries(&mut env),
            third_party_issuers,
            allow_insecure_http,
        };
        let credentials = credentials::credential_config(&mut env, None, allow_insecure_http);
        let config = common(&mut env, auth, credentials, allow_insecure_http);
        env.finish()
            .map(|()| config.expect("a config without problems is complete"))
    }

    /// The configuration of `demo`: no Supabase project, a made-up HS256 secret and SIP identity,
    /// and the rest (bind address, CORS, ICE servers, logging) read as usual, except that values
    /// still holding `.env.example`'s placeholders count as unset: demo runs with a freshly
    /// copied `.env`. The example page's origins are always allowed, beside any configured
    /// ones: demo prints a link to that page.
    pub fn demo(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: DemoSecrets,
    ) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(lookup, Placeholders::Ignore);
        let auth = AuthConfig {
            jwks_url: None,
            issuer: DEMO_ISSUER.to_owned(),
            audience: "authenticated".to_owned(),
            leeway: Duration::from_secs(30),
            jwt_secret: Some(secrets.jwt_secret),
            allow_anonymous_users: false,
            rules: AccessRules::default(),
            session_check: None,
            jwks: JwksTiming::default(),
            access_token_cache_entries: access_token_cache_entries(&mut env),
            third_party_issuers: Vec::new(),
            allow_insecure_http: false,
        };
        let credentials = credentials::credential_config(
            &mut env,
            Some((secrets.sip_username, secrets.sip_password)),
            false,
        );
        let mut config = common(&mut env, auth, credentials, false);
        if let Some(config) = &mut config {
            for origin in EXAMPLE_PAGE_ORIGINS {
                if !config.cors_allowed_origins.iter().any(|o| o == origin) {
                    config.cors_allowed_origins.push(origin.to_owned());
                }
            }
        }
        env.finish()
            .map(|()| config.expect("a config without problems is complete"))
    }
}

fn access_token_cache_entries(env: &mut Env<impl Fn(&str) -> Option<String>>) -> usize {
    let default = DEFAULT_ACCESS_TOKEN_CACHE_ENTRIES as u64;
    let entries = env.number_or("ACCESS_TOKEN_CACHE_ENTRIES", default, 0..=1_000_000);
    usize::try_from(entries).expect("at most a million")
}

/// The variables every mode reads the same way.
fn common(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    auth: AuthConfig,
    credentials: Option<CredentialConfig>,
    allow_insecure_http: bool,
) -> Option<Config> {
    let bind_addr = env.parsed_or("BIND_ADDR", DEFAULT_BIND_ADDR, parse_socket_addr);
    let metrics_bind_addr = env.optional_with("METRICS_BIND_ADDR", parse_socket_addr);
    let cors_allowed_origins = env.list("CORS_ALLOWED_ORIGINS", parse_origin);
    let request_timeout = env.seconds_or("REQUEST_TIMEOUT_SECS", 30, 1..=600);
    if let Some(CredentialConfig {
        source: CredentialSourceConfig::PerUser(per_user),
        ..
    }) = &credentials
        && per_user.api.request_budget >= request_timeout
    {
        env.problem(
            "TELNYX_REQUEST_BUDGET_SECS",
            format!(
                "is {}, not below REQUEST_TIMEOUT_SECS ({}): lower it, or raise REQUEST_TIMEOUT_SECS, so that a slow Telnyx gets the client a telnyx_unavailable answer rather than a timeout",
                per_user.api.request_budget.as_secs(),
                request_timeout.as_secs()
            ),
        );
    }
    let format = match env.optional("LOG_FORMAT").as_deref() {
        None | Some("pretty") => LogFormat::Pretty,
        Some("json") => LogFormat::Json,
        Some(other) => {
            env.problem(
                "LOG_FORMAT",
                format!("is {other:?}: set it to pretty or json"),
            );
            LogFormat::Pretty
        }
    };
    let limits = limits::read(env);
    let redis = shared::read(env);
    let connections = connections::read(env);
    let admin_api_token = admin::read(env);
    let filter = env.string_or("RUST_LOG", "info");
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&filter) {
        env.problem(
            "RUST_LOG",
            format!("is not a valid log filter ({error}): set it to a level such as info, or info,telnyx_webrtc_credentials=debug"),
        );
    }
    // Every variable is read before giving up, so all problems are reported together.
    Some(Config {
        bind_addr: bind_addr?,
        metrics_bind_addr,
        auth,
        credentials: credentials?,
        cors_allowed_origins,
        request_timeout,
        log: LogConfig { filter, format },
        limits,
        redis,
        connections,
        allow_insecure_http,
        admin_api_token,
    })
}

fn parse_socket_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| format!("is {value:?}: set it to an IP address and port such as 0.0.0.0:8080"))
}

/// `https://<ref>.supabase.co`, without a trailing slash, path, query or fragment.
pub(super) fn parse_supabase_url(value: &str, allow_insecure_http: bool) -> Result<String, String> {
    let hint = "set it to https://<project-ref>.supabase.co";
    let url = Url::parse(value).map_err(|_| format!("is {value:?}, not a URL: {hint}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("is {value:?}: {hint}"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "is {value:?}: give the project URL alone, without a path such as /auth/v1 ({hint})"
        ));
    }
    refuse_plain_http(
        &url,
        allow_insecure_http,
        "the signing keys would be fetched in clear, and whoever sits on the way could hand the service keys of their own",
    )?;
    Ok(value.trim_end_matches('/').to_owned())
}

/// Plain `http://` only to this machine (a local stand-in, a sidecar), unless the operator has
/// said the network is trusted with `ALLOW_INSECURE_HTTP=true`.
pub(crate) fn refuse_plain_http(
    url: &Url,
    allow_insecure_http: bool,
    risk: &str,
) -> Result<(), String> {
    if url.scheme() != "http" || allow_insecure_http || is_loopback(url) {
        return Ok(());
    }
    Err(format!(
        "is {url}, plain HTTP to another machine: {risk}. Use https://, or, if the network to {host} is trusted (a self-hosted service inside the cluster), set ALLOW_INSECURE_HTTP=true",
        url = url.as_str().trim_end_matches('/'),
        host = url.host_str().unwrap_or_default(),
    ))
}

/// `localhost` (which RFC 6761 reserves for this machine) or a loopback address.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let address = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A browser origin: scheme, host and optional port, nothing else, compared byte for byte.
fn parse_origin(value: &str) -> Result<String, String> {
    let hint = "list exact origins such as https://app.example.com,http://localhost:5173";
    if value == "*" {
        return Err(format!(
            "contains *, which would let any website use it: {hint}"
        ));
    }
    let url =
        Url::parse(value).map_err(|_| format!("contains {value:?}, not an origin: {hint}"))?;
    let origin = url.origin().ascii_serialization();
    if origin != value {
        return Err(format!(
            "contains {value:?}, which is not an exact origin (did you mean {origin:?}?): {hint}"
        ));
    }
    Ok(origin)
}

/// Looks a variable up in the process environment (which `.env` has been merged into).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Builds a lookup function over fixed pairs; handy for tests and examples.
pub fn lookup_from<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[cfg(test)]
mod tests;
