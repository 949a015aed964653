//! How `check-config` prints the effective configuration: every value, secrets only as
//! "set (redacted)".

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::{Config, CredentialSourceConfig, LogFormat};

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
        writeln!(f, "ALLOW_INSECURE_HTTP    = {}", self.allow_insecure_http)?;
        writeln!(f, "SUPABASE_JWT_ISSUER    = {}", auth.issuer)?;
        writeln!(f, "SUPABASE_JWT_AUDIENCE  = {}", auth.audience)?;
        writeln!(
            f,
            "SUPABASE_JWT_SECRET    = {}",
            set(auth.jwt_secret.as_ref())
        )?;
        if auth.third_party_issuers.is_empty() {
            writeln!(f, "THIRD_PARTY_ISSUERS    = none")?;
        } else {
            writeln!(
                f,
                "THIRD_PARTY_ISSUERS    = {} issuer(s)",
                auth.third_party_issuers.len()
            )?;
            for issuer in &auth.third_party_issuers {
                writeln!(f, "  {issuer}")?;
            }
        }
        writeln!(f, "JWT_LEEWAY_SECS        = {}", auth.leeway.as_secs())?;
        writeln!(f, "ALLOW_ANONYMOUS_USERS  = {}", auth.allow_anonymous_users)?;
        writeln!(
            f,
            "ACCESS_TOKEN_CACHE_ENTRIES = {}",
            auth.access_token_cache_entries
        )?;
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
                writeln!(
                    f,
                    "TELNYX_CREDENTIAL_PROPAGATION_SECS = {}",
                    per_user.propagation.as_secs()
                )?;
                writeln!(
                    f,
                    "TELNYX_CREDENTIAL_IDLE_DAYS = {}",
                    per_user.idle.as_secs() / 86_400
                )?;
                writeln!(f, "MAX_DEVICES_PER_USER   = {}", per_user.max_devices)?;
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
        match &self.redis {
            Some(redis) => {
                writeln!(f, "REDIS_URL              = {}", redis.redacted)?;
                writeln!(
                    f,
                    "REDIS_COMMAND_TIMEOUT_MS = {}",
                    redis.command_timeout.as_millis()
                )?;
            }
            None => writeln!(
                f,
                "REDIS_URL              = not set (each replica keeps its own state)"
            )?,
        }
        writeln!(f, "{}", self.connections)?;
        writeln!(
            f,
            "ADMIN_API_TOKEN        = {}",
            match &self.admin_api_token {
                Some(_) => "set (redacted): /admin/users/{sub}/devices is served",
                None => "not set (no admin route)",
            }
        )?;
        writeln!(f, "RUST_LOG               = {}", self.log.filter)?;
        let format = match self.log.format {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        };
        write!(f, "LOG_FORMAT             = {format}")
    }
}
