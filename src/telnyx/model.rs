//! What Telnyx's telephony-credential endpoints send, as the team-telnyx/openapi `spec3.yml`
//! describes it (`TelephonyCredential`, `PaginationMeta`, `Errors`), read leniently where real
//! answers differ from it: `expired` as a string, timestamps with or without a `Z`, errors as an
//! array or as one object.

use std::time::SystemTime;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A telephony credential as Telnyx describes it, minus its SIP password: the field is left out,
/// so it cannot be logged or leaked from this process.
#[derive(Debug, Clone, Deserialize)]
pub struct TelephonyCredential {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub sip_username: String,
    /// `connection:<id>` for credentials on a credential connection.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// A boolean in the spec ("Defaults to false"), a string in its own example and in some
    /// answers.
    #[serde(default, deserialize_with = "bool_or_string")]
    pub expired: bool,
    /// `created_at`, which the spec gives as `2020-06-18T21:32:38` (no zone: UTC).
    #[serde(default, deserialize_with = "optional_time")]
    pub created_at: Option<SystemTime>,
    /// `updated_at`: moved by every `PATCH`, so by each extension of `expires_at` too.
    #[serde(default, deserialize_with = "optional_time")]
    pub updated_at: Option<SystemTime>,
    /// When the credential stops working; `None` for one created without `expires_at`, which
    /// never expires (and for a value that does not parse, which is then treated the same).
    #[serde(default, deserialize_with = "optional_time")]
    pub expires_at: Option<SystemTime>,
}

impl TelephonyCredential {
    /// Expired by Telnyx's flag or by its own `expires_at`: either way Telnyx refuses to mint
    /// tokens for it, and deleting it is all that is left to do.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expired || self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

/// A credential connection as Telnyx describes it (`RetrieveCredentialConnection`), minus its
/// SIP `user_name` and `password`, which are left unread as every SIP password is here.
#[derive(Debug, Clone, Deserialize)]
pub struct CredentialConnection {
    #[serde(default)]
    pub connection_name: Option<String>,
    /// "Defaults to true" in the reference; a connection turned off places no calls.
    #[serde(default = "active_by_default")]
    pub active: bool,
    #[serde(default)]
    pub record_type: Option<String>,
}

fn active_by_default() -> bool {
    true
}

/// A login token minted for a telephony credential, and when it stops working.
pub struct LoginToken {
    pub token: SecretString,
    /// The token's own `exp`. Telnyx stops honouring a token when its credential expires, so
    /// a caller caps this at the credential's `expires_at`.
    pub expires_at: SystemTime,
}

#[derive(Deserialize)]
pub(super) struct Data<T> {
    pub data: T,
}

/// One page of `GET /telephony_credentials` (`GetAllTelephonyCredentialResponse`).
#[derive(Deserialize)]
pub(super) struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub meta: Option<PaginationMeta>,
}

/// The spec's `PaginationMeta`; only `total_pages` is needed to know when to stop.
#[derive(Deserialize)]
pub(super) struct PaginationMeta {
    #[serde(default)]
    pub total_pages: Option<u64>,
}

/// The claim of a login token we read: its expiry.
#[derive(Deserialize)]
pub(super) struct Claims {
    pub exp: u64,
}

/// ISO 8601 in UTC to the second, as the spec writes `expires_at` (`2021-07-27T17:58:54Z`).
pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Telnyx's timestamps: `2020-06-18T21:32:38` in the spec's example, `…T22:25:27.521Z` in its
/// field descriptions; both are UTC.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim()).ok()
}

fn optional_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SystemTime>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    Ok(text.as_deref().and_then(parse_time))
}

fn bool_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Bool(bool),
        Text(String),
        Null(()),
    }
    Ok(match Flexible::deserialize(deserializer)? {
        Flexible::Bool(value) => value,
        Flexible::Text(text) => text.eq_ignore_ascii_case("true"),
        Flexible::Null(()) => false,
    })
}

/// An error body as one line for the log. The spec's `Errors` is `{"errors": [{"code",
/// "title", "detail"}]}`; Telnyx also answers `{"errors": {...}}`, one object, either shaped like
/// an array item or mapping fields to messages (`{"errors": {"name": ["is taken"]}}`). Anything
/// else is shortened.
pub(super) fn error_detail(body: &str) -> String {
    const MAX: usize = 300;
    let described =
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|value| match value.get("errors")? {
                Value::Array(errors) => {
                    let lines: Vec<String> = errors.iter().filter_map(describe).collect();
                    (!lines.is_empty()).then(|| lines.join("; "))
                }
                other => describe(other),
            });
    let detail = described.unwrap_or_else(|| body.to_owned());
    detail.chars().take(MAX).collect()
}

fn describe(error: &Value) -> Option<String> {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map_or_else(|| item.to_string(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    match error {
        Value::Object(fields)
            if ["code", "title", "detail"]
                .iter()
                .any(|k| fields.contains_key(*k)) =>
        {
            let parts: Vec<String> = ["code", "title", "detail"]
                .iter()
                .filter_map(|key| fields.get(*key))
                .filter(|value| !value.is_null())
                .map(text)
                .collect();
            Some(parts.join(" "))
        }
        Value::Object(fields) if !fields.is_empty() => Some(
            fields
                .iter()
                .map(|(field, messages)| format!("{field}: {}", text(messages)))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_credential_reads_expired_as_a_boolean_or_a_string_and_drops_the_password() {
        for (expired, expected) in [
            (serde_json::json!(false), false),
            (serde_json::json!(true), true),
            (serde_json::json!("true"), true),
            (serde_json::json!("false"), false),
            (serde_json::Value::Null, false),
        ] {
            let credential: TelephonyCredential = serde_json::from_value(serde_json::json!({
                "id": "c215ade3-0d39-418e-94be-c5f780760199",
                "record_type": "credential",
                "name": "supabase:user-1",
                "expired": expired,
                "resource_id": "connection:804252963366242252",
                "sip_password": "a92dbcfb60184a8cb330b0acb2f7617b",
                "sip_username": "gencrednCvHU5IYpSBPPsXI2iQsDX",
                "created_at": "2020-06-18T21:32:38",
                "expires_at": "2042-06-18T21:32:38",
            }))
            .unwrap();
            assert_eq!(credential.expired, expected);
            assert!(!format!("{credential:?}").contains("a92dbcfb"));
        }
    }

    #[test]
    fn timestamps_parse_in_both_of_the_specs_shapes_and_expiry_counts_either_way() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(parse_time("2020-06-18T21:32:38"), Some(at(1_592_515_958)));
        assert_eq!(parse_time("2020-06-18T21:32:38Z"), Some(at(1_592_515_958)));
        assert_eq!(
            parse_time("2020-06-18T21:32:38.521Z"),
            Some(at(1_592_515_958) + Duration::from_millis(521))
        );
        assert_eq!(parse_time("soon"), None);
        assert_eq!(format_time(at(1_592_515_958)), "2020-06-18T21:32:38Z");

        let credential = |expired: bool, expires_at: Option<&str>| {
            serde_json::from_value::<TelephonyCredential>(serde_json::json!({
                "id": "c1", "sip_username": "gencred1", "expired": expired, "expires_at": expires_at,
            }))
            .unwrap()
        };
        let now = at(1_700_000_000);
        assert!(!credential(false, None).is_expired(now));
        assert!(!credential(false, Some("2042-06-18T21:32:38")).is_expired(now));
        assert!(credential(false, Some("2020-06-18T21:32:38")).is_expired(now));
        assert!(credential(true, Some("2042-06-18T21:32:38")).is_expired(now));
        assert_eq!(credential(false, Some("later")).expires_at, None);
    }

    #[test]
    fn error_bodies_of_either_shape_become_one_line() {
        let list = r#"{"errors":[{"code":"10015","title":"Invalid value","detail":"connection_id is not a credential connection"}]}"#;
        assert_eq!(
            error_detail(list),
            "10015 Invalid value connection_id is not a credential connection"
        );
        let one = r#"{"errors":{"code":"10015","title":"Bad Request","detail":"expired"}}"#;
        assert_eq!(error_detail(one), "10015 Bad Request expired");
        let fields = r#"{"errors":{"connection_id":["is invalid","is required"]}}"#;
        assert_eq!(
            error_detail(fields),
            "connection_id: is invalid, is required"
        );
        assert_eq!(
            error_detail("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(error_detail(&"x".repeat(1000)).len(), 300);
    }
}
