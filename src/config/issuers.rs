//! `THIRD_PARTY_ISSUERS`: the identity providers besides Supabase Auth whose tokens the
//! Supabase project accepts (Supabase's third-party auth: Clerk, Auth0, Firebase Auth, Amazon
//! Cognito, WorkOS), and so this service too.
//!
//! A comma-separated list of entries, each one of:
//! - `<issuer>`: the keys are found by OIDC discovery, the `jwks_uri` of
//!   `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4, which is how
//!   Supabase finds them: supabase/cli `ResolveJWKS` in `pkg/config/config.go`);
//! - `<issuer>=<jwks url>`: the keys are at that URL, with no discovery (Firebase publishes its
//!   JWKS apart from its issuer);
//! - either, followed by `|aud=<audience>`: the token's `aud` must contain that value (without
//!   it `aud` is not checked: Clerk's session tokens and Cognito's access tokens carry none).
//!
//! `<issuer>` is the exact `iss` of the provider's tokens, trailing slash included where the
//! provider writes one (Auth0 does).

use std::fmt;

use reqwest::Url;

use super::env::Env;
use super::refuse_plain_http;

/// More would be a list of tenants rather than of the project's providers; each one is a key
/// set kept fresh in the background and a value of the `issuer` label in the metrics.
pub const MAX_THIRD_PARTY_ISSUERS: usize = 16;

const HINT: &str = "write each entry as <issuer>, <issuer>=<jwks url> or either with |aud=<audience>, separated by commas, e.g. https://clerk.example.com,https://example.us.auth0.com/|aud=<client id>";

/// One issuer of `THIRD_PARTY_ISSUERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdPartyIssuer {
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    /// Where its signing keys are.
    pub keys: KeyLocation,
    /// A value the token's `aud` must contain; `None` leaves `aud` unchecked.
    pub audience: Option<String>,
    /// Its users' credentials are named `<tag>:<sub>` (`credentials::issuer_tag`).
    pub tag: String,
}

/// Where an issuer's signing keys are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// The `jwks_uri` of this OIDC discovery document.
    Discovery(Url),
    /// This JWKS, named in the entry.
    Jwks(Url),
}

impl KeyLocation {
    /// The URL fetched first: the discovery document, or the JWKS itself.
    pub fn url(&self) -> &Url {
        match self {
            KeyLocation::Discovery(url) | KeyLocation::Jwks(url) => url,
        }
    }
}

/// `<issuer>/.well-known/openid-configuration`, any terminating `/` of the issuer removed first
/// (OpenID Connect Discovery 1.0 §4).
pub fn discovery_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!(
        "{}/.well-known/openid-configuration",
        issuer.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url
}

pub(super) fn read(
    env: &mut Env<impl Fn(&str) -> Option<String>>,
    supabase_issuer: Option<&str>,
    allow_insecure_http: bool,
) -> Vec<ThirdPartyIssuer> {
    let Some(value) = env.optional("THIRD_PARTY_ISSUERS") else {
        return Vec::new();
    };
    let (issuers, problems) = parse(&value, supabase_issuer, allow_insecure_http);
    for problem in problems {
        env.problem("THIRD_PARTY_ISSUERS", problem);
    }
    issuers
}

/// The issuers of the list, and a problem for each entry at fault (every one is reported).
fn parse(
    value: &str,
    supabase_issuer: Option<&str>,
    allow_insecure_http: bool,
) -> (Vec<ThirdPartyIssuer>, Vec<String>) {
    let mut issuers: Vec<ThirdPartyIssuer> = Vec::new();
    let mut problems = Vec::new();
    for entry in value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        let parsed = parse_entry(entry, allow_insecure_http).and_then(|issuer| {
            if Some(issuer.issuer.as_str()) == supabase_issuer {
                return Err(format!(
                    "has the entry {entry:?}, which is the Supabase project's own issuer (SUPABASE_JWT_ISSUER): its tokens are verified with the project's keys already, so remove the entry"
                ));
            }
            if let Some(earlier) = issuers.iter().find(|earlier| earlier.issuer == issuer.issuer) {
                return Err(format!(
                    "names the issuer {} twice: keep one entry for it",
                    earlier.issuer
                ));
            }
            if let Some(earlier) = issuers.iter().find(|earlier| earlier.tag == issuer.tag) {
                return Err(format!(
                    "has the issuers {} and {}, whose tags are both {}: these two cannot be told apart in credential names",
                    earlier.issuer, issuer.issuer, issuer.tag
                ));
            }
            Ok(issuer)
        });
        match parsed {
            Ok(issuer) => issuers.push(issuer),
            Err(problem) => problems.push(problem),
        }
    }
    if issuers.len() > MAX_THIRD_PARTY_ISSUERS {
        problems.push(format!(
            "lists {} issuers: at most {MAX_THIRD_PARTY_ISSUERS} are supported, one per identity provider of the Supabase project",
            issuers.len()
        ));
    }
    (issuers, problems)
}

fn parse_entry(entry: &str, allow_insecure_http: bool) -> Result<ThirdPartyIssuer, String> {
    let mut parts = entry.split('|');
    let location = parts.next().unwrap_or_default().trim();
    let mut audience = None;
    for option in parts {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        match (name.trim(), value.trim()) {
            ("aud", "") => {
                return Err(format!(
                    "has the entry {entry:?}, whose aud is empty: write |aud=<audience>, or leave the option out to accept any aud"
                ));
            }
            ("aud", _) if audience.is_some() => {
                return Err(format!(
                    "has the entry {entry:?}, which names aud twice: a token must contain the one audience given"
                ));
            }
            ("aud", value) => audience = Some(value.to_owned()),
            (other, _) => {
                return Err(format!(
                    "has the entry {entry:?}, whose option {other:?} is unknown: the one option is |aud=<audience> ({HINT})"
                ));
            }
        }
    }
    // An issuer has no query (OpenID Connect Core 1.0 §2), so its first `=` starts the JWKS URL.
    let (issuer, jwks) = match location.split_once('=') {
        Some((issuer, jwks)) => (issuer.trim(), Some(jwks.trim())),
        None => (location, None),
    };
    let issuer_url = parse_issuer(entry, issuer, allow_insecure_http)?;
    let keys = match jwks {
        None => KeyLocation::Discovery(discovery_url(&issuer_url)),
        Some(jwks) => KeyLocation::Jwks(parse_jwks_url(entry, jwks, allow_insecure_http)?),
    };
    Ok(ThirdPartyIssuer {
        issuer: issuer.to_owned(),
        keys,
        audience,
        tag: crate::credentials::issuer_tag(issuer),
    })
}

/// An issuer as OpenID Connect Core 1.0 §2 defines it: scheme, host, optional port and path,
/// no query or fragment.
fn parse_issuer(entry: &str, issuer: &str, allow_insecure_http: bool) -> Result<Url, String> {
    let url = Url::parse(issuer)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| {
            format!(
                "has the entry {entry:?}, whose issuer {issuer:?} is not an https:// URL: {HINT}"
            )
        })?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "has the entry {entry:?}, whose issuer {issuer:?} has a query, fragment or user name, which an issuer never has: give the exact iss of the provider's tokens"
        ));
    }
    refuse_plain_http(
        &url,
        allow_insecure_http,
        "the signing keys would be fetched in clear, and whoever sits on the way could hand the service keys of their own",
    )
    .map_err(|problem| format!("has the entry {entry:?}, whose issuer {problem}"))?;
    Ok(url)
}

fn parse_jwks_url(entry: &str, jwks: &str, allow_insecure_http: bool) -> Result<Url, String> {
    let url = Url::parse(jwks)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| {
            format!(
                "has the entry {entry:?}, whose JWKS URL {jwks:?} is not an https:// URL: {HINT}"
            )
        })?;
    refuse_plain_http(
        &url,
        allow_insecure_http,
        "the signing keys would be fetched in clear, and whoever sits on the way could hand the service keys of their own",
    )
    .map_err(|problem| format!("has the entry {entry:?}, whose JWKS URL {problem}"))?;
    Ok(url)
}

impl fmt::Display for ThirdPartyIssuer {
    /// One line of `check-config`'s output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (tag {}): ", self.issuer, self.tag)?;
        match &self.keys {
            KeyLocation::Discovery(url) => write!(f, "keys by discovery at {url}")?,
            KeyLocation::Jwks(url) => write!(f, "keys at {url}")?,
        }
        match &self.audience {
            Some(audience) => write!(f, ", aud must contain {audience}"),
            None => write!(f, ", aud not checked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(entry: &str) -> Result<ThirdPartyIssuer, String> {
        let (mut issuers, mut problems) =
            parse(entry, Some("https://abcd.supabase.co/auth/v1"), false);
        match problems.pop() {
            Some(problem) => Err(problem),
            None => Ok(issuers.remove(0)),
        }
    }

    #[test]
    fn the_three_forms_of_an_entry() {
        let clerk = one("https://clerk.example.com").unwrap();
        assert_eq!(clerk.issuer, "https://clerk.example.com");
        assert_eq!(
            clerk.keys,
            KeyLocation::Discovery(
                Url::parse("https://clerk.example.com/.well-known/openid-configuration").unwrap()
            )
        );
        assert_eq!(clerk.audience, None);
        assert_eq!(
            clerk.tag,
            crate::credentials::issuer_tag("https://clerk.example.com")
        );

        let auth0 = one("https://example.us.auth0.com/ | aud=8hJ3kPq").unwrap();
        assert_eq!(auth0.issuer, "https://example.us.auth0.com/", "slash kept");
        assert_eq!(
            auth0.keys.url().as_str(),
            "https://example.us.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(auth0.audience.as_deref(), Some("8hJ3kPq"));

        let firebase = one("https://securetoken.google.com/my-app=https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com|aud=my-app").unwrap();
        assert_eq!(firebase.issuer, "https://securetoken.google.com/my-app");
        assert_eq!(
            firebase.keys,
            KeyLocation::Jwks(
                Url::parse("https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com").unwrap()
            )
        );
        assert_eq!(firebase.audience.as_deref(), Some("my-app"));
        assert_eq!(
            firebase.to_string(),
            format!(
                "https://securetoken.google.com/my-app (tag {}): keys at https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com, aud must contain my-app",
                firebase.tag
            )
        );
    }

    #[test]
    fn discovery_follows_the_issuers_path() {
        let discovery = |issuer: &str| discovery_url(&Url::parse(issuer).unwrap()).to_string();
        assert_eq!(
            discovery("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery("https://api.workos.com/user_management/client_01H/"),
            "https://api.workos.com/user_management/client_01H/.well-known/openid-configuration"
        );
    }

    #[test]
    fn each_faulty_entry_is_named_with_what_to_write() {
        let cases = [
            ("clerk.example.com", "not an https:// URL"),
            ("https://x.example.com?tenant=1", "query"),
            ("https://x.example.com#a", "query, fragment"),
            ("http://clerk.example.com", "ALLOW_INSECURE_HTTP=true"),
            ("https://x.example.com=jwks.json", "JWKS URL \"jwks.json\""),
            (
                "https://x.example.com=http://keys.example.com/jwks",
                "plain HTTP",
            ),
            ("https://x.example.com|aud=", "aud is empty"),
            ("https://x.example.com|aud=a|aud=b", "aud twice"),
            ("https://x.example.com|audience=a", "|aud=<audience>"),
            (
                "https://abcd.supabase.co/auth/v1",
                "Supabase project's own issuer",
            ),
        ];
        for (entry, hint) in cases {
            let problem = one(entry).unwrap_err();
            assert!(problem.contains(hint), "{entry}: {problem}");
            assert!(
                problem.contains(&format!("{entry:?}")) || problem.contains("twice"),
                "{entry}: {problem}"
            );
        }
        let (_, problems) = parse("https://a.example.com, https://a.example.com", None, false);
        assert!(problems[0].contains("twice"), "{problems:?}");
    }

    #[test]
    fn plain_http_is_for_this_machine_or_a_trusted_network() {
        assert!(one("http://127.0.0.1:8999").is_ok());
        assert!(one("http://localhost:8999/=http://127.0.0.1:8998/jwks").is_ok());
        let (issuers, problems) = parse("http://idp.internal", None, true);
        assert!(problems.is_empty() && issuers.len() == 1, "{problems:?}");
    }

    #[test]
    fn the_list_is_bounded() {
        let many: Vec<String> = (0..=MAX_THIRD_PARTY_ISSUERS)
            .map(|n| format!("https://idp{n}.example.com"))
            .collect();
        let (_, problems) = parse(&many.join(","), None, false);
        assert!(problems[0].contains("at most 16"), "{problems:?}");
    }
}
