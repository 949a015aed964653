//! The claims of a Supabase access token, typed strictly: a claim of the wrong JSON type fails
//! deserialization and so rejects the token, instead of being read as absent.

use serde::Deserialize;

/// The payload Supabase Auth puts in a user's access token.
///
/// Fields the service does not act on are left out; unknown fields are ignored so a new claim
/// from Supabase does not lock users out.
#[derive(Debug, Clone, Deserialize)]
pub struct SupabaseClaims {
    /// The user's id (a UUID in Supabase).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    #[serde(default)]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub iat: Option<u64>,
    pub iss: String,
    pub aud: Audience,
    /// `authenticated` for signed-in users; `anon` and `service_role` for the project's API keys.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// Authenticator assurance level: `aal1`, or `aal2` after multi-factor authentication.
    #[serde(default)]
    pub aal: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub is_anonymous: Option<bool>,
    #[serde(default)]
    pub app_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub user_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `aud` is a single string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(audience) => audience == wanted,
            Audience::Many(audiences) => audiences.iter().any(|audience| audience == wanted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({
            "sub": "2f6b3c1e-0000-4000-8000-000000000001",
            "exp": 1_900_000_000u64,
            "iss": "https://abcd.supabase.co/auth/v1",
            "aud": "authenticated",
        })
    }

    fn parse(patch: serde_json::Value) -> Result<SupabaseClaims, serde_json::Error> {
        let mut claims = base();
        for (key, value) in patch.as_object().unwrap() {
            claims[key] = value.clone();
        }
        serde_json::from_value(claims)
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        assert!(parse(json!({})).unwrap().aud.contains("authenticated"));
        let many = parse(json!({"aud": ["other", "authenticated"]})).unwrap();
        assert!(many.aud.contains("authenticated"));
        assert!(!many.aud.contains("anon"));
    }

    #[test]
    fn claims_of_the_wrong_type_are_errors_not_absences() {
        for patch in [
            json!({"exp": "1900000000"}),
            json!({"exp": 1.9e9}),
            json!({"nbf": "0"}),
            json!({"sub": 42}),
            json!({"aud": 7}),
            json!({"is_anonymous": "false"}),
            json!({"role": ["authenticated"]}),
        ] {
            assert!(parse(patch.clone()).is_err(), "{patch} was accepted");
        }
    }
}
