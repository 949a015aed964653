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
use secrecy::{ExposeSecret, SecretString};

use env::Env;

pub use access::{
    AccessRules, ClaimRequirement, RULE_CLAIMS, SessionCheckConfig, parse_claim_requirements,
};
pub use credentials::DEFAULT_TELNYX_API_BASE_URL;
pub use limits::{LimitsConfig, RateLimit};

mod access;
mod credentials;
mod env;
mod limits;

/// Supabase's own check: a legacy JWT secret is at least 32 characters. A shorter secret is a
/// typo (or a key pasted into the wrong variable), and HS256 with it would be brute-forceable.
const MIN_JWT_SECRET_LEN: usize = 32;

pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_SIP_REALM: &str = "sip.telnyx.com";
pub const DEFAULT_STUN_URLS: [&str; 2] = ["stun:stun.telnyx.com:3478", "stun:stun.telnyx.com:3479"];
pub const DEFAULT_TURN_URLS: [&str; 2] = [
    "turn:turn.telnyx.com:3478?transport=udp",
    "turn:turn.telnyx.com:3478?transport=tcp",
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
}

/// How often the signing keys are fetched. Not read from the environment: the defaults follow
/// Supabase's own cache headers; tests shorten them.
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
    /// TURN credentials of their own. Without them, static mode gives TURN the shared SIP
    /// identity and per_user mode gives TURN none (a SIP password never reaches the browser).
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
    PerUser(PerUserConfig),
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

impl Config {
    /// Reads the process environment (after `.env`, which the binary loads first).
    pub fn from_process_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(process_env)
    }

    /// Reads the configuration through `lookup`, so tests pass a map instead of mutating the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(lookup);
        let supabase_url = env.required_with(
            "SUPABASE_URL",
            "is not set: set it to https://<project-ref>.supabase.co (Supabase dashboard → Project Settings → API)",
            parse_supabase_url,
        );
        let issuer = env
            .optional("SUPABASE_JWT_ISSUER")
            .or_else(|| supabase_url.as_ref().map(|url| format!("{url}/auth/v1")));
        let jwks_url = supabase_url
            .as_ref()
            .and_then(|url| Url::parse(&format!("{url}/auth/v1/.well-known/jwks.json")).ok());
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
        };
        let credentials = credentials::credential_config(&mut env, None);
        let config = common(&mut env, auth, credentials);
        env.finish()
            .map(|()| config.expect("a config without problems is complete"))
    }

    /// The configuration of `demo`: no Supabase project, a made-up HS256 secret and SIP identity,
    /// and the rest (bind address, CORS, ICE servers, logging) read as usual.
    pub fn demo(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: DemoSecrets,
    ) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(lookup);
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
        };
        let credentials = credentials::credential_config(
            &mut env,
            Some((secrets.sip_username, secrets.sip_password)),
        );
        let config = common(&mut env, auth, credentials);
        env.finish()
            .map(|()| config.expect("a config without problems is complete"))
    }
}

/// The variables every mode reads the same way.
fn common(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    auth: AuthConfig,
    credentials: Option<CredentialConfig>,
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
    })
}

fn parse_socket_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| format!("is {value:?}: set it to an IP address and port such as 0.0.0.0:8080"))
}

/// `https://<ref>.supabase.co`, without a trailing slash, path, query or fragment.
fn parse_supabase_url(value: &str) -> Result<String, String> {
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
    Ok(value.trim_end_matches('/').to_owned())
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

impl fmt::Display for Config {
    /// The effective configuration as `check-config` prints it: secrets say only whether they
    /// are set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |secret: Option<&SecretString>| match secret {
            Some(secret) if !secret.expose_secret().is_empty() => "set (redacted)",
            _ => "not set",
        };
        let auth = &self.auth;
        let credentials = &self.credentials;
        writeln!(f, "BIND_ADDR              = {}", self.bind_addr)?;
        match self.metrics_bind_addr {
            Some(address) => writeln!(f, "METRICS_BIND_ADDR      = {address}")?,
            None => writeln!(
                f,
                "METRICS_BIND_ADDR      = not set (/metrics on BIND_ADDR)"
            )?,
        }
        match &auth.jwks_url {
            Some(url) => writeln!(f, "JWKS URL               = {url}")?,
            None => writeln!(f, "JWKS URL               = none (demo mode)")?,
        }
        writeln!(f, "SUPABASE_JWT_ISSUER    = {}", auth.issuer)?;
        writeln!(f, "SUPABASE_JWT_AUDIENCE  = {}", auth.audience)?;
        writeln!(
            f,
            "SUPABASE_JWT_SECRET    = {}",
            set(auth.jwt_secret.as_ref())
        )?;
        writeln!(f, "JWT_LEEWAY_SECS        = {}", auth.leeway.as_secs())?;
        writeln!(f, "ALLOW_ANONYMOUS_USERS  = {}", auth.allow_anonymous_users)?;
        writeln!(f, "{}", auth.rules)?;
        writeln!(
            f,
            "SUPABASE_VERIFY_SESSION = {}",
            auth.session_check.is_some()
        )?;
        if let Some(check) = &auth.session_check {
            writeln!(f, "SUPABASE_ANON_KEY      = {}", set(Some(&check.anon_key)))?;
            writeln!(
                f,
                "SESSION_CHECK_CACHE_SECS = {}",
                check.cache_ttl.as_secs()
            )?;
        }
        match &credentials.source {
            CredentialSourceConfig::Static {
                username,
                password,
                ttl,
            } => {
                writeln!(f, "CREDENTIAL_MODE        = static")?;
                writeln!(f, "TELNYX_WEBRTC_USERNAME = {username}")?;
                writeln!(f, "TELNYX_WEBRTC_PASSWORD = {}", set(Some(password)))?;
                writeln!(f, "CREDENTIAL_TTL_SECS    = {}", ttl.as_secs())?;
            }
            CredentialSourceConfig::PerUser(per_user) => {
                writeln!(f, "CREDENTIAL_MODE        = per_user")?;
                writeln!(
                    f,
                    "TELNYX_API_KEY         = {}",
                    set(Some(&per_user.api.api_key))
                )?;
                writeln!(f, "TELNYX_API_BASE_URL    = {}", per_user.api.base_url)?;
                writeln!(
                    f,
                    "TELNYX_WEBRTC_CONNECTION_ID = {}",
                    per_user.connection_id
                )?;
                writeln!(
                    f,
                    "TOKEN_REFRESH_MARGIN_SECS = {}",
                    per_user.refresh_margin.as_secs()
                )?;
                writeln!(
                    f,
                    "TELNYX_REQUEST_BUDGET_SECS = {}",
                    per_user.api.request_budget.as_secs()
                )?;
                writeln!(f, "TOKEN_CACHE_MAX_USERS  = {}", per_user.cache_capacity)?;
            }
        }
        writeln!(f, "TELNYX_SIP_REALM       = {}", credentials.realm)?;
        writeln!(
            f,
            "TELNYX_STUN_URLS       = {}",
            credentials.stun_urls.join(",")
        )?;
        writeln!(
            f,
            "TELNYX_TURN_URLS       = {}",
            credentials.turn_urls.join(",")
        )?;
        match &credentials.turn_credentials {
            Some(turn) => {
                writeln!(f, "TELNYX_TURN_USERNAME   = {}", turn.username)?;
                writeln!(f, "TELNYX_TURN_PASSWORD   = {}", set(Some(&turn.password)))?;
            }
            None => writeln!(f, "TELNYX_TURN_USERNAME   = not set")?,
        }
        let origins = if self.cors_allowed_origins.is_empty() {
            "none (no cross-origin access)".to_owned()
        } else {
            self.cors_allowed_origins.join(",")
        };
        writeln!(f, "CORS_ALLOWED_ORIGINS   = {origins}")?;
        writeln!(
            f,
            "REQUEST_TIMEOUT_SECS   = {}",
            self.request_timeout.as_secs()
        )?;
        writeln!(f, "{}", self.limits)?;
        writeln!(f, "RUST_LOG               = {}", self.log.filter)?;
        let format = match self.log.format {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        };
        write!(f, "LOG_FORMAT             = {format}")
    }
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
mod tests {
    use super::*;

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SUPABASE_URL", "https://abcd.supabase.co"),
            ("SUPABASE_JWT_SECRET", SECRET),
            ("TELNYX_WEBRTC_USERNAME", "gencred123"),
            ("TELNYX_WEBRTC_PASSWORD", "sip-password-1"),
        ]
    }

    fn load(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigErrors> {
        let mut pairs = minimal();
        pairs.retain(|(key, _)| !extra.iter().any(|(other, _)| other == key));
        pairs.extend_from_slice(extra);
        Config::from_lookup(lookup_from(pairs))
    }

    #[test]
    fn defaults_follow_the_documented_values() {
        let config = load(&[]).unwrap();
        assert_eq!(config.bind_addr.to_string(), DEFAULT_BIND_ADDR);
        assert_eq!(config.auth.issuer, "https://abcd.supabase.co/auth/v1");
        assert_eq!(
            config.auth.jwks_url.unwrap().as_str(),
            "https://abcd.supabase.co/auth/v1/.well-known/jwks.json"
        );
        assert_eq!(config.auth.audience, "authenticated");
        assert_eq!(config.auth.leeway, Duration::from_secs(30));
        assert!(!config.auth.allow_anonymous_users);
        assert_eq!(config.credentials.realm, "sip.telnyx.com");
        assert_eq!(config.credentials.stun_urls, DEFAULT_STUN_URLS);
        assert_eq!(config.credentials.turn_urls, DEFAULT_TURN_URLS);
        let CredentialSourceConfig::Static { ttl, .. } = config.credentials.source else {
            panic!("static is the default mode");
        };
        assert_eq!(ttl, Duration::from_secs(86_400));
        assert!(config.credentials.turn_credentials.is_none());
        assert!(config.cors_allowed_origins.is_empty());
        assert_eq!(config.log.format, LogFormat::Pretty);
    }

    #[test]
    fn a_trailing_slash_on_the_project_url_is_forgiven() {
        let config = load(&[("SUPABASE_URL", "https://abcd.supabase.co/")]).unwrap();
        assert_eq!(config.auth.issuer, "https://abcd.supabase.co/auth/v1");
    }

    #[test]
    fn the_issuer_can_be_overridden_for_custom_domains() {
        let config = load(&[("SUPABASE_JWT_ISSUER", "https://auth.example.com/auth/v1")]).unwrap();
        assert_eq!(config.auth.issuer, "https://auth.example.com/auth/v1");
    }

    #[test]
    fn missing_required_variables_are_all_named_at_once() {
        let errors = Config::from_lookup(lookup_from([])).unwrap_err();
        for variable in [
            "SUPABASE_URL",
            "TELNYX_WEBRTC_USERNAME",
            "TELNYX_WEBRTC_PASSWORD",
        ] {
            assert!(
                errors.mentions(variable),
                "{variable} missing from {errors}"
            );
        }
        assert!(
            errors
                .to_string()
                .contains("https://<project-ref>.supabase.co")
        );
    }

    #[test]
    fn malformed_values_name_the_variable_and_the_fix() {
        let cases: &[(&'static str, &'static str, &str)] = &[
            (
                "SUPABASE_URL",
                "abcd.supabase.co",
                "https://<project-ref>.supabase.co",
            ),
            (
                "SUPABASE_URL",
                "https://abcd.supabase.co/auth/v1",
                "without a path",
            ),
            ("SUPABASE_JWT_SECRET", "short", "too short"),
            ("BIND_ADDR", "localhost", "0.0.0.0:8080"),
            ("METRICS_BIND_ADDR", "9090", "0.0.0.0:8080"),
            ("JWT_LEEWAY_SECS", "thirty", "whole number"),
            ("CREDENTIAL_TTL_SECS", "-1", "whole number"),
            ("ALLOW_ANONYMOUS_USERS", "maybe", "true or false"),
            ("CREDENTIAL_MODE", "shared", "static or per_user"),
            ("CORS_ALLOWED_ORIGINS", "*", "any website"),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com/",
                "https://app.example.com",
            ),
            ("TELNYX_STUN_URLS", "turn:turn.telnyx.com", "stun:"),
            ("TELNYX_TURN_URLS", "stun:x", "turn:"),
            ("LOG_FORMAT", "xml", "pretty or json"),
            ("RUST_LOG", "info,[=", "valid log filter"),
            ("RATE_LIMIT_PER_USER", "20 per minute", "20/min,burst=10"),
            ("RATE_LIMIT_PER_IP", "on", "or off"),
            ("TRUST_PROXY_HEADERS", "sometimes", "true or false"),
            ("MAX_CONCURRENT_REQUESTS", "0", "whole number from 1"),
            ("MAX_REQUEST_BODY_BYTES", "1MB", "whole number from 0"),
            ("MAX_REQUEST_HEADER_BYTES", "100", "from 4096"),
            ("REQUIRE_CLAIMS", "app_metadata.plan=pro", "quote strings"),
            ("REQUIRE_CLAIMS", "user_metadata.ok=true", "app_metadata"),
            ("ALLOWED_EMAIL_DOMAINS", "ada@example.com", "not a domain"),
            ("REQUIRE_AAL2", "yes please", "true or false"),
            ("SUPABASE_VERIFY_SESSION", "on", "true or false"),
            ("SESSION_CHECK_CACHE_SECS", "forever", "whole number from 0"),
        ];
        for (variable, value, hint) in cases {
            let errors = load(&[(variable, value)]).unwrap_err();
            let message = errors.to_string();
            assert!(errors.mentions(variable), "{variable}={value}: {message}");
            assert!(message.contains(hint), "{variable}={value}: {message}");
        }
    }

    #[test]
    fn turn_credentials_come_in_pairs() {
        let errors = load(&[("TELNYX_TURN_USERNAME", "turnuser")]).unwrap_err();
        assert!(errors.mentions("TELNYX_TURN_PASSWORD"), "{errors}");
        assert!(
            errors.to_string().contains("set both, or neither"),
            "{errors}"
        );
        let config = load(&[
            ("TELNYX_TURN_USERNAME", "turnuser"),
            ("TELNYX_TURN_PASSWORD", "turn-secret-1"),
        ])
        .unwrap();
        assert!(!config.to_string().contains("turn-secret-1"));
        assert!(config.credentials.turn_credentials.is_some());
    }

    #[test]
    fn lists_are_split_on_commas() {
        let config = load(&[
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com, http://localhost:5173",
            ),
            ("TELNYX_STUN_URLS", "stun:a.example:3478"),
            (
                "TELNYX_TURN_URLS",
                "turns:b.example:443?transport=tcp,turn:c.example:3478",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        assert_eq!(config.credentials.stun_urls, ["stun:a.example:3478"]);
        assert_eq!(
            config.credentials.turn_urls,
            ["turns:b.example:443?transport=tcp", "turn:c.example:3478"]
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let config = load(&[]).unwrap();
        for printed in [format!("{config:?}"), config.to_string()] {
            assert!(!printed.contains(SECRET), "{printed}");
            assert!(!printed.contains("sip-password-1"), "{printed}");
        }
        assert!(
            config
                .to_string()
                .contains("SUPABASE_JWT_SECRET    = set (redacted)")
        );
    }

    fn per_user(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigErrors> {
        let mut pairs = vec![
            ("CREDENTIAL_MODE", "per_user"),
            ("TELNYX_API_KEY", "KEY0123456789ABCDEF"),
            ("TELNYX_WEBRTC_CONNECTION_ID", "1234567890"),
        ];
        pairs.retain(|(key, _)| !extra.iter().any(|(other, _)| other == key));
        pairs.extend_from_slice(extra);
        load(&pairs)
    }

    #[test]
    fn per_user_mode_reads_telnyx_api_access_and_needs_no_sip_identity() {
        let config = per_user(&[
            ("TELNYX_WEBRTC_USERNAME", ""),
            ("TELNYX_WEBRTC_PASSWORD", ""),
        ])
        .unwrap();
        let CredentialSourceConfig::PerUser(per_user) = &config.credentials.source else {
            panic!("per_user mode was asked for");
        };
        assert_eq!(per_user.connection_id, "1234567890");
        assert_eq!(per_user.api.base_url.as_str(), "https://api.telnyx.com/v2");
        assert_eq!(per_user.api.request_budget, Duration::from_secs(15));
        assert_eq!(per_user.refresh_margin, Duration::from_secs(600));
        for printed in [format!("{config:?}"), config.to_string()] {
            assert!(!printed.contains("KEY0123456789ABCDEF"), "{printed}");
        }
        assert!(
            config
                .to_string()
                .contains("CREDENTIAL_MODE        = per_user")
        );
    }

    #[test]
    fn per_user_mode_names_what_is_missing() {
        let errors = load(&[("CREDENTIAL_MODE", "per_user")]).unwrap_err();
        assert!(errors.mentions("TELNYX_API_KEY"), "{errors}");
        assert!(errors.mentions("TELNYX_WEBRTC_CONNECTION_ID"), "{errors}");
        assert!(!errors.mentions("TELNYX_WEBRTC_USERNAME"), "{errors}");
        assert!(errors.to_string().contains("API Keys"), "{errors}");
    }

    #[test]
    fn per_user_values_are_checked() {
        let cases: &[(&'static str, &'static str, &str)] = &[
            ("TELNYX_WEBRTC_CONNECTION_ID", "12 34/5", "ID alone"),
            ("TELNYX_API_BASE_URL", "api.telnyx.com", "not a URL"),
            ("TELNYX_REQUEST_BUDGET_SECS", "0", "whole number"),
            ("TELNYX_REQUEST_BUDGET_SECS", "60", "REQUEST_TIMEOUT_SECS"),
            ("TOKEN_REFRESH_MARGIN_SECS", "ten", "whole number"),
        ];
        for (variable, value, hint) in cases {
            let errors = per_user(&[(variable, value)]).unwrap_err();
            let message = errors.to_string();
            assert!(errors.mentions(variable), "{variable}={value}: {message}");
            assert!(message.contains(hint), "{variable}={value}: {message}");
            assert!(!message.contains("KEY0123456789ABCDEF"), "{message}");
        }
    }

    #[test]
    fn every_variable_read_is_documented_in_the_readme_and_env_example() {
        let asked = std::cell::RefCell::new(Vec::new());
        for mode in ["static", "per_user"] {
            let _ = Config::from_lookup(|name| {
                asked.borrow_mut().push(name.to_owned());
                (name == "CREDENTIAL_MODE").then(|| mode.to_owned())
            });
        }
        let asked = asked.into_inner();
        assert!(asked.len() >= 25, "{asked:?}");
        let env_example = include_str!("../../.env.example");
        let readme = include_str!("../../README.md");
        for name in asked {
            assert!(
                env_example.contains(&format!("\n{name}=")),
                "{name} missing from .env.example"
            );
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "{name} missing from the README's table"
            );
        }
    }

    #[test]
    fn the_env_example_is_a_valid_configuration() {
        let pairs: HashMap<String, String> =
            dotenvy::from_read_iter(include_str!("../../.env.example").as_bytes())
                .map(Result::unwrap)
                .collect();
        let config = Config::from_lookup(|name| pairs.get(name).cloned()).unwrap();
        assert_eq!(config.credentials.stun_urls, DEFAULT_STUN_URLS);
    }

    #[test]
    fn demo_needs_no_variables() {
        let secrets = DemoSecrets {
            jwt_secret: SecretString::from(SECRET),
            sip_username: "demo".into(),
            sip_password: SecretString::from("pw"),
        };
        let config = Config::demo(lookup_from([]), secrets).unwrap();
        assert!(config.auth.jwks_url.is_none());
        assert_eq!(config.auth.issuer, DEMO_ISSUER);
    }

    #[test]
    fn limits_and_access_rules_default_to_the_documented_values() {
        let config = load(&[]).unwrap();
        let limits = &config.limits;
        assert_eq!(
            limits.per_user.map(|limit| limit.to_string()).as_deref(),
            Some("20/min,burst=10")
        );
        assert_eq!(limits.per_client_address, None);
        assert!(!limits.trust_proxy_headers);
        assert_eq!(limits.max_concurrent_requests, 1024);
        assert_eq!(limits.max_request_body_bytes, 16 * 1024);
        assert_eq!(limits.max_request_header_bytes, 32 * 1024);
        let rules = &config.auth.rules;
        assert!(rules.require_claims.is_empty() && rules.allowed_email_domains.is_empty());
        assert!(!rules.require_aal2);
        assert!(config.auth.session_check.is_none());

        let config = load(&[
            ("RATE_LIMIT_PER_USER", "off"),
            ("RATE_LIMIT_PER_IP", "100/s,burst=200"),
            ("REQUIRE_CLAIMS", "app_metadata.phone_enabled=true"),
            ("ALLOWED_EMAIL_DOMAINS", "Example.com, @example.org"),
            ("REQUIRE_AAL2", "true"),
        ])
        .unwrap();
        assert_eq!(config.limits.per_user, None);
        assert_eq!(
            config.limits.per_client_address.unwrap().to_string(),
            "100/s,burst=200"
        );
        assert_eq!(
            config.auth.rules.require_claims[0].to_string(),
            "app_metadata.phone_enabled=true"
        );
        assert_eq!(
            config.auth.rules.allowed_email_domains,
            ["example.com", "example.org"]
        );
        assert!(config.auth.rules.require_aal2);
    }

    #[test]
    fn the_session_check_needs_the_anon_key_and_keeps_it_secret() {
        let errors = load(&[("SUPABASE_VERIFY_SESSION", "true")]).unwrap_err();
        assert!(errors.mentions("SUPABASE_ANON_KEY"), "{errors}");
        assert!(errors.to_string().contains("anon (publishable) key"));

        let anon_key = "test-anon-key-0f6e2a";
        let config = load(&[
            ("SUPABASE_VERIFY_SESSION", "true"),
            ("SUPABASE_ANON_KEY", anon_key),
            ("SESSION_CHECK_CACHE_SECS", "0"),
        ])
        .unwrap();
        let check = config.auth.session_check.as_ref().unwrap();
        assert_eq!(
            check.user_url.as_str(),
            "https://abcd.supabase.co/auth/v1/user"
        );
        assert_eq!(check.cache_ttl, Duration::ZERO);
        for printed in [format!("{config:?}"), config.to_string()] {
            assert!(!printed.contains(anon_key), "{printed}");
        }
        assert!(
            config
                .to_string()
                .contains("SUPABASE_ANON_KEY      = set (redacted)")
        );
    }
}
