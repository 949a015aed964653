//! The claims of an access token, typed strictly: a claim of the wrong JSON type fails
//! deserialization and so rejects the token, instead of being read as absent. Supabase Auth's
//! tokens carry all of them; a third-party issuer's carry the registered ones, `role` (which
//! Supabase's third-party auth requires), and whichever others the provider sets.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// The payload Supabase Auth puts in a user's access token, and the part of a third-party
/// issuer's payload the service reads.
///
/// Fields the service does not act on are left out; unknown fields are ignored so a new claim
/// from Supabase (or a provider's own, such as Clerk's `sid` or Firebase's `user_id`) does not
/// lock users out.
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
    /// Required, and checked, for Supabase Auth's tokens and for a third-party issuer whose
    /// entry names an audience: validation enforces it before these fields are read. Clerk's
    /// session tokens and Cognito's access tokens have none.
    #[serde(default)]
    pub aud: Option<Audience>,
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
    /// Set by the project's server only; `REQUIRE_CLAIMS` reads it.
    #[serde(default)]
    pub app_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Editable by the user, so nothing may depend on it (`REQUIRE_CLAIMS` refuses it).
    #[serde(default)]
    pub user_metadata: Option<JsonObject>,
    /// Firebase Auth's own claim: how the user signed in (firebase.google.com/docs/auth/admin/
    /// verify-id-tokens). Read for `sign_in_provider: "anonymous"`, Firebase's anonymous users.
    #[serde(default)]
    pub firebase: Option<FirebaseClaim>,
}

impl SupabaseClaims {
    /// An anonymous sign-in: Supabase's `is_anonymous`, or Firebase's anonymous provider.
    pub fn is_anonymous(&self) -> bool {
        self.is_anonymous == Some(true)
            || self
                .firebase
                .as_ref()
                .and_then(|firebase| firebase.sign_in_provider.as_deref())
                == Some("anonymous")
    }
}

/// The part of Firebase's `firebase` claim that is read.
#[derive(Debug, Clone, Deserialize)]
pub struct FirebaseClaim {
    #[serde(default)]
    pub sign_in_provider: Option<String>,
}

/// A claim that must be a JSON object, whose contents the service does not read and so does
/// not keep: a map of them costs allocations on every verification and memory in every entry
/// of the verified-token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonObject;

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonObject)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
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
    fn metadata_claims_are_objects_of_anything_or_null() {
        let claims = parse(json!({
            "app_metadata": {"provider": "email", "providers": ["email"], "x": {"y": [1, null]}},
            "user_metadata": {},
        }))
        .unwrap();
        assert_eq!(claims.app_metadata.unwrap()["x"], json!({"y": [1, null]}));
        assert_eq!(claims.user_metadata, Some(JsonObject));
        let absent = parse(json!({"user_metadata": null})).unwrap();
        assert_eq!((absent.app_metadata, absent.user_metadata), (None, None));
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        let aud = |claims: SupabaseClaims| claims.aud.unwrap();
        assert!(aud(parse(json!({})).unwrap()).contains("authenticated"));
        let many = aud(parse(json!({"aud": ["other", "authenticated"]})).unwrap());
        assert!(many.contains("authenticated"));
        assert!(!many.contains("anon"));
        let mut without = base();
        without.as_object_mut().unwrap().remove("aud");
        let without: SupabaseClaims = serde_json::from_value(without).unwrap();
        assert_eq!(without.aud, None, "a third-party token may have none");
    }

    #[test]
    fn anonymous_is_supabases_flag_or_firebases_provider() {
        assert!(!parse(json!({})).unwrap().is_anonymous());
        assert!(parse(json!({"is_anonymous": true})).unwrap().is_anonymous());
        let firebase = |provider: &str| {
            parse(json!({"firebase": {"identities": {}, "sign_in_provider": provider}}))
                .unwrap()
                .is_anonymous()
        };
        assert!(firebase("anonymous"));
        assert!(!firebase("password"));
        assert!(parse(json!({"firebase": "anonymous"})).is_err());
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
            json!({"app_metadata": "admin"}),
            json!({"user_metadata": ["x"]}),
            json!({"app_metadata": 1}),
        ] {
            assert!(parse(patch.clone()).is_err(), "{patch} was accepted");
        }
    }
}
