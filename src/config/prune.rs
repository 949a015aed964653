//! What `prune` reads: the Telnyx API and connection the service uses in per_user mode and,
//! optionally, the Supabase project's secret key to ask which users still exist.

use std::fmt;

use reqwest::Url;
use secrecy::SecretString;
use serde_json::Value;

use super::env::{Env, Placeholders};
use super::{ConfigErrors, TelnyxApiConfig, credentials, parse_supabase_url};

/// `prune`'s configuration, validated like the service's: every problem at once.
#[derive(Debug, Clone)]
pub struct PruneConfig {
    pub telnyx: TelnyxApiConfig,
    pub connection_id: String,
    /// `None` without `SUPABASE_SERVICE_ROLE_KEY`: then only expired credentials are pruned.
    pub supabase_admin: Option<SupabaseAdminConfig>,
}

/// Supabase Auth's admin API, for `GET /auth/v1/admin/users/{id}`.
#[derive(Clone)]
pub struct SupabaseAdminConfig {
    /// `${SUPABASE_URL}/auth/v1/admin/users/`; a user id is appended.
    pub users_url: Url,
    /// `SUPABASE_SERVICE_ROLE_KEY`, sent as `apikey` and as the bearer token.
    pub service_role_key: SecretString,
}

impl fmt::Debug for SupabaseAdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupabaseAdminConfig")
            .field("users_url", &self.users_url.as_str())
            .field("service_role_key", &"[redacted]")
            .finish()
    }
}

impl PruneConfig {
    pub fn from_process_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(super::process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(lookup, Placeholders::Refuse);
        let allow_insecure_http = env.flag_or("ALLOW_INSECURE_HTTP", false);
        let (telnyx, connection_id, _) = credentials::telnyx_access(&mut env, allow_insecure_http);
        let supabase_admin = supabase_admin(&mut env, allow_insecure_http);
        let config = telnyx
            .zip(connection_id)
            .map(|(telnyx, connection_id)| Self {
                telnyx,
                connection_id,
                supabase_admin: supabase_admin.flatten(),
            });
        env.finish()
            .map(|()| config.expect("a config without problems is complete"))
    }
}

/// `Some(None)` when no key is set; `None` when something is wrong (and recorded).
fn supabase_admin(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    allow_insecure_http: bool,
) -> Option<Option<SupabaseAdminConfig>> {
    let Some(key) = env.optional("SUPABASE_SERVICE_ROLE_KEY") else {
        return Some(None);
    };
    let key = match check_service_role_key(&key) {
        Ok(()) => Some(SecretString::from(key)),
        Err(problem) => {
            env.problem("SUPABASE_SERVICE_ROLE_KEY", problem);
            None
        }
    };
    let supabase_url = env.required_with(
        "SUPABASE_URL",
        "is not set, and SUPABASE_SERVICE_ROLE_KEY needs it: set it to https://<project-ref>.supabase.co",
        |value| parse_supabase_url(value, allow_insecure_http),
    );
    let users_url =
        supabase_url.and_then(|url| Url::parse(&format!("{url}/auth/v1/admin/users/")).ok())?;
    Some(Some(SupabaseAdminConfig {
        users_url,
        service_role_key: key?,
    }))
}

/// The project's secret key: `sb_secret_…`, or the legacy `service_role` JWT. The anon or
/// publishable key would only be refused by the admin API, so it is refused here, by name.
fn check_service_role_key(key: &str) -> Result<(), String> {
    let hint = "set it to the project's secret key (sb_secret_…, Supabase dashboard → Project Settings → API Keys) or its legacy service_role key, or unset it to prune only expired credentials";
    if key.starts_with("sb_secret_") {
        return Ok(());
    }
    if key.starts_with("sb_publishable_") {
        return Err(format!("is a publishable key: {hint}"));
    }
    // Only the role is read, unverified: the admin API checks the signature.
    let role = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(key)
        .ok()
        .and_then(|claims| {
            claims
                .get("role")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    match role.as_deref() {
        Some("service_role") => Ok(()),
        Some(role) => Err(format!(
            "is a key whose role is {role:?}, not service_role: {hint}"
        )),
        None => Err(format!("is neither an sb_secret_ key nor a JWT: {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_from;

    fn jwt(role: &str) -> String {
        use base64::Engine as _;
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        format!(
            "{}.{}.c2ln",
            encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            encode(&format!(r#"{{"iss":"supabase","role":"{role}"}}"#))
        )
    }

    fn telnyx() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TELNYX_API_KEY", "KEY0123456789ABCDEF"),
            ("TELNYX_WEBRTC_CONNECTION_ID", "1234567890"),
        ]
    }

    #[test]
    fn prune_needs_telnyx_access_and_takes_the_service_role_key_optionally() {
        let config = PruneConfig::from_lookup(lookup_from(telnyx())).unwrap();
        assert_eq!(config.connection_id, "1234567890");
        assert!(config.supabase_admin.is_none());

        let service_role = jwt("service_role");
        for key in ["sb_secret_abc123", service_role.as_str()] {
            let mut pairs = telnyx();
            pairs.extend([
                ("SUPABASE_SERVICE_ROLE_KEY", key),
                ("SUPABASE_URL", "https://abcd.supabase.co"),
            ]);
            let config = PruneConfig::from_lookup(lookup_from(pairs)).unwrap();
            let admin = config.supabase_admin.unwrap();
            assert_eq!(
                admin.users_url.as_str(),
                "https://abcd.supabase.co/auth/v1/admin/users/"
            );
            assert!(!format!("{admin:?}").contains(key));
        }

        let errors = PruneConfig::from_lookup(lookup_from([])).unwrap_err();
        assert!(
            errors.mentions("TELNYX_API_KEY") && errors.mentions("TELNYX_WEBRTC_CONNECTION_ID")
        );
    }

    #[test]
    fn a_key_that_is_not_the_secret_key_is_named_for_what_it_is() {
        let anon = jwt("anon");
        for (key, hint) in [
            ("sb_publishable_abc", "publishable"),
            (anon.as_str(), "\"anon\""),
            ("hunter2", "neither"),
        ] {
            let mut pairs = telnyx();
            pairs.extend([
                ("SUPABASE_SERVICE_ROLE_KEY", key),
                ("SUPABASE_URL", "https://abcd.supabase.co"),
            ]);
            let errors = PruneConfig::from_lookup(lookup_from(pairs)).unwrap_err();
            let message = errors.to_string();
            assert!(errors.mentions("SUPABASE_SERVICE_ROLE_KEY"), "{message}");
            assert!(message.contains(hint), "{message}");
            assert!(
                !message.contains(key),
                "the key is never printed: {message}"
            );
        }
        let mut pairs = telnyx();
        pairs.push(("SUPABASE_SERVICE_ROLE_KEY", "sb_secret_abc"));
        let errors = PruneConfig::from_lookup(lookup_from(pairs)).unwrap_err();
        assert!(errors.mentions("SUPABASE_URL"), "{errors}");
    }
}
