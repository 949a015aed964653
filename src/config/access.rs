//! Who may have a phone beyond holding a valid token: conditions on the token's claims
//! (`REQUIRE_CLAIMS`, `ALLOWED_EMAIL_DOMAINS`, `REQUIRE_AAL2`) and the optional remote session
//! check (`SUPABASE_VERIFY_SESSION`).

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use serde_json::Value;

use super::env::Env;

/// The claims a `REQUIRE_CLAIMS` path may start with: `app_metadata` (which only the project's
/// server can write) and the typed claims Supabase itself sets.
pub const RULE_CLAIMS: [&str; 9] = [
    "app_metadata",
    "role",
    "aal",
    "email",
    "phone",
    "is_anonymous",
    "session_id",
    "sub",
    "iss",
];

/// Conditions a verified user must meet; the default admits every signed-in user.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    /// All must hold.
    pub require_claims: Vec<ClaimRequirement>,
    /// Lowercase domains; empty means any email, or none, is fine.
    pub allowed_email_domains: Vec<String>,
    pub require_aal2: bool,
}

/// One `REQUIRE_CLAIMS` condition: the claim at `path` equals `expected` (JSON equality).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequirement {
    /// The claim name, then keys inside it: `["app_metadata", "phone_enabled"]`.
    pub path: Vec<String>,
    pub expected: Value,
}

impl fmt::Display for ClaimRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path.join("."), self.expected)
    }
}

/// Asking Supabase's `GET /auth/v1/user` whether the token's session still exists.
#[derive(Debug, Clone)]
pub struct SessionCheckConfig {
    /// `${SUPABASE_URL}/auth/v1/user`.
    pub user_url: Url,
    /// Sent as `apikey`, as Supabase's API gateway requires.
    pub anon_key: SecretString,
    /// How long a positive answer is trusted; zero asks every time.
    pub cache_ttl: Duration,
}

const CLAIMS_HINT: &str = "write each condition as a claim path, =, and a JSON value, separated by commas, e.g. app_metadata.phone_enabled=true,app_metadata.plan=\"pro\"";

/// `path=json,path=json,…`. Values are read as JSON, so a comma inside a string or an array
/// does not split the list.
pub fn parse_claim_requirements(value: &str) -> Result<Vec<ClaimRequirement>, String> {
    let mut requirements = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (path, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("has {rest:?}, which has no =: {CLAIMS_HINT}"))?;
        let path = parse_claim_path(path.trim())?;
        let mut values = serde_json::Deserializer::from_str(after).into_iter::<Value>();
        let Some(Ok(expected)) = values.next() else {
            return Err(format!(
                "has {}={:?}, whose value is not JSON: quote strings, e.g. app_metadata.plan=\"pro\" ({CLAIMS_HINT})",
                path.join("."),
                after.trim()
            ));
        };
        rest = after[values.byte_offset()..].trim_start();
        rest = match rest.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if rest.is_empty() => rest,
            None => {
                return Err(format!(
                    "has {rest:?} after the value of {}: {CLAIMS_HINT}",
                    path.join(".")
                ));
            }
        };
        requirements.push(ClaimRequirement { path, expected });
    }
    Ok(requirements)
}

fn parse_claim_path(path: &str) -> Result<Vec<String>, String> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments
        .iter()
        .any(|segment| segment.is_empty() || segment.contains(char::is_whitespace))
    {
        return Err(format!(
            "has the claim path {path:?}: use dot-separated names without spaces ({CLAIMS_HINT})"
        ));
    }
    match segments[0].as_str() {
        "user_metadata" => Err(format!(
            "tests {path}, but every user can change their own user_metadata (supabase.auth.updateUser): keep the flag in app_metadata, which only your server (service_role) can set"
        )),
        "app_metadata" if segments.len() == 1 => Err(format!(
            "tests app_metadata as a whole: name a key inside it, e.g. app_metadata.phone_enabled ({CLAIMS_HINT})"
        )),
        "app_metadata" => Ok(segments),
        claim if RULE_CLAIMS.contains(&claim) && segments.len() == 1 => Ok(segments),
        _ => Err(format!(
            "tests {path}: conditions can test app_metadata.<key> or one of the claims {}",
            RULE_CLAIMS[1..].join(", ")
        )),
    }
}

/// An email domain as the user would type it: `example.com` or `@example.com`.
fn parse_email_domain(value: &str) -> Result<String, String> {
    let domain = value
        .strip_prefix('@')
        .unwrap_or(value)
        .to_ascii_lowercase();
    let valid = !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if valid {
        Ok(domain)
    } else {
        Err(format!(
            "contains {value:?}, which is not a domain: list domains such as example.com,example.org"
        ))
    }
}

pub(super) fn read_rules(env: &mut Env<impl Fn(&str) -> Option<String>>) -> AccessRules {
    let require_claims = env
        .parsed_or("REQUIRE_CLAIMS", "", parse_claim_requirements)
        .unwrap_or_default();
    let allowed_email_domains = env.list("ALLOWED_EMAIL_DOMAINS", parse_email_domain);
    let require_aal2 = env.flag_or("REQUIRE_AAL2", false);
    AccessRules {
        require_claims,
        allowed_email_domains,
        require_aal2,
    }
}

/// Every variable is read whether or not the check is on, so a typo in one is still reported.
pub(super) fn read_session_check(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    supabase_url: Option<&str>,
) -> Option<SessionCheckConfig> {
    let enabled = env.flag_or("SUPABASE_VERIFY_SESSION", false);
    let anon_key = env.optional("SUPABASE_ANON_KEY").map(SecretString::from);
    let cache_ttl = env.seconds_or("SESSION_CHECK_CACHE_SECS", 60, 0..=3600);
    if !enabled {
        return None;
    }
    if anon_key.is_none() {
        env.problem(
            "SUPABASE_ANON_KEY",
            "is not set, and SUPABASE_VERIFY_SESSION=true needs it: set it to the project's anon (publishable) key (Supabase dashboard → Project Settings → API Keys)".into(),
        );
    }
    let user_url = Url::parse(&format!("{}/auth/v1/user", supabase_url?)).ok()?;
    Some(SessionCheckConfig {
        user_url,
        anon_key: anon_key?,
        cache_ttl,
    })
}

impl fmt::Display for AccessRules {
    /// The lines `check-config` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let claims: Vec<String> = self.require_claims.iter().map(|c| c.to_string()).collect();
        let or_none = |items: &[String]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(",")
            }
        };
        writeln!(f, "REQUIRE_CLAIMS         = {}", or_none(&claims))?;
        writeln!(
            f,
            "ALLOWED_EMAIL_DOMAINS  = {}",
            or_none(&self.allowed_email_domains)
        )?;
        write!(f, "REQUIRE_AAL2           = {}", self.require_aal2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn requirement(path: &str, expected: Value) -> ClaimRequirement {
        ClaimRequirement {
            path: path.split('.').map(str::to_owned).collect(),
            expected,
        }
    }

    #[test]
    fn claim_requirements_are_paths_and_json_values() {
        assert_eq!(
            parse_claim_requirements(
                r#"app_metadata.phone_enabled=true, app_metadata.plan="pro,max" ,app_metadata.teams=["a","b"],aal="aal2""#
            ),
            Ok(vec![
                requirement("app_metadata.phone_enabled", json!(true)),
                requirement("app_metadata.plan", json!("pro,max")),
                requirement("app_metadata.teams", json!(["a", "b"])),
                requirement("aal", json!("aal2")),
            ])
        );
        assert_eq!(parse_claim_requirements(""), Ok(vec![]));
        assert_eq!(
            parse_claim_requirements("app_metadata.level=3,").unwrap(),
            [requirement("app_metadata.level", json!(3))]
        );
        assert_eq!(
            requirement("app_metadata.plan", json!("pro")).to_string(),
            r#"app_metadata.plan="pro""#
        );
    }

    #[test]
    fn malformed_claim_requirements_say_what_to_write() {
        let cases = [
            ("app_metadata.phone_enabled", "has no ="),
            ("app_metadata.plan=pro", "quote strings"),
            ("app_metadata.phone_enabled=true false", "after the value"),
            ("app_metadata..x=1", "dot-separated"),
            (
                "user_metadata.phone_enabled=true",
                "app_metadata, which only",
            ),
            ("app_metadata=1", "name a key inside it"),
            ("custom_claim=1", "app_metadata.<key>"),
            ("role.x=1", "app_metadata.<key>"),
        ];
        for (value, hint) in cases {
            let problem = parse_claim_requirements(value).unwrap_err();
            assert!(problem.contains(hint), "{value}: {problem}");
        }
    }

    #[test]
    fn email_domains_are_normalised() {
        assert_eq!(parse_email_domain("@Example.COM"), Ok("example.com".into()));
        for bad in ["", "a@b.com", "exa mple.com", ".com", "example.com."] {
            assert!(parse_email_domain(bad).is_err(), "{bad}");
        }
    }
}
