//! `check-config`: validate the configuration and print it, secrets redacted; with `--online`,
//! also ask Supabase, each third-party issuer and Telnyx, read-only, whether the values work.

use std::process::ExitCode;
use std::time::Duration;

use crate::auth::jwks::{self, KeyReport, KeySource};
use crate::auth::session;
use crate::config::{Config, CredentialSourceConfig, KeyLocation, PerUserConfig, ThirdPartyIssuer};
use crate::server::open_files::ConnectionBudget;
use crate::telnyx::{TelnyxClient, TelnyxError};

/// Exit code when the configuration is valid but an online check failed.
pub const EXIT_CHECK_FAILED: u8 = 1;

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn check_config(online: bool) -> ExitCode {
    let config = match Config::from_process_env() {
        Ok(config) => config,
        Err(errors) => return super::config_failure(&errors),
    };
    // What `serve` would do with the open-files limit: raise it, and fit the connection cap.
    let budget = match ConnectionBudget::at_start_up(&config) {
        Ok(budget) => budget,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    println!("The configuration is valid:\n{config}\n{budget}");
    if !online {
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let checks = runtime.block_on(online_checks(&config));
    println!("\nOnline checks:");
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|check| check.outcome.is_err()).count();
    if failed == 0 {
        println!("{} passed.", plural(checks.len(), "check"));
        ExitCode::SUCCESS
    } else {
        println!("{failed} of {} checks failed.", checks.len());
        ExitCode::from(EXIT_CHECK_FAILED)
    }
}

/// One line of the report: what was checked, and what was found or what to fix.
struct Check {
    name: String,
    outcome: Result<String, String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(found) => write!(f, "  ok    {}: {found}", self.name),
            Err(fix) => write!(f, "  FAIL  {}: {fix}", self.name),
        }
    }
}

/// Every check that applies to `config`, in the order a request meets them.
async fn online_checks(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(url) = &config.auth.jwks_url {
        checks.push(Check {
            name: "Supabase signing keys".into(),
            outcome: signing_keys(url, config.auth.jwt_secret.is_some()).await,
        });
    }
    for issuer in &config.auth.third_party_issuers {
        checks.push(Check {
            name: format!("Signing keys of {} ({})", issuer.issuer, issuer.tag),
            outcome: third_party_keys(issuer, config.allow_insecure_http).await,
        });
    }
    if let Some(session_check) = &config.auth.session_check {
        checks.push(Check {
            name: "Supabase anon key".into(),
            outcome: session::check_anon_key(session_check).await.map(|()| {
                "accepted (SUPABASE_VERIFY_SESSION can ask Supabase about sessions)".into()
            }),
        });
    }
    if let CredentialSourceConfig::PerUser(per_user) = &config.credentials.source {
        checks.extend(telnyx(per_user).await);
    }
    checks
}

async fn signing_keys(url: &reqwest::Url, has_jwt_secret: bool) -> Result<String, String> {
    let inspection = jwks::inspect(&KeySource::Jwks(url.clone()), FETCH_TIMEOUT)
        .await
        .map_err(|error| {
            format!("{error}: check SUPABASE_URL, and that this machine reaches it over HTTPS")
        })?;
    let (usable, skipped) = describe(inspection.keys);
    match (usable.is_empty(), has_jwt_secret) {
        (false, _) => Ok(format!(
            "{url} holds {} usable: {}{skipped}",
            plural(usable.len(), "key"),
            usable.join(", ")
        )),
        (true, true) => Ok(format!(
            "{url} holds no asymmetric signing key{skipped}: tokens are verified with SUPABASE_JWT_SECRET (HS256) alone"
        )),
        (true, false) => Err(format!(
            "{url} holds no usable signing key{skipped}, and SUPABASE_JWT_SECRET is not set, so no token can be verified: set SUPABASE_JWT_SECRET to the project's legacy JWT secret, or give the project an asymmetric signing key (Supabase dashboard → Project Settings → JWT Keys)"
        )),
    }
}

/// An issuer's discovery document (which must name the issuer and a `jwks_uri`) or the JWKS its
/// entry names, then the keys there: at least one must be usable, as nothing else verifies its
/// tokens.
async fn third_party_keys(
    issuer: &ThirdPartyIssuer,
    allow_insecure_http: bool,
) -> Result<String, String> {
    let source = match &issuer.keys {
        KeyLocation::Jwks(url) => KeySource::Jwks(url.clone()),
        KeyLocation::Discovery(document) => KeySource::Discovery {
            document: document.clone(),
            issuer: issuer.issuer.clone(),
            allow_insecure_http,
        },
    };
    let inspection = jwks::inspect(&source, FETCH_TIMEOUT).await.map_err(|error| {
        format!("{error}: check its entry in THIRD_PARTY_ISSUERS, and that this machine reaches it over HTTPS")
    })?;
    let found = match &issuer.keys {
        KeyLocation::Discovery(document) => format!(
            "discovery at {document} names the jwks_uri {}, which",
            inspection.jwks_url
        ),
        KeyLocation::Jwks(url) => url.to_string(),
    };
    let (usable, skipped) = describe(inspection.keys);
    if usable.is_empty() {
        return Err(format!(
            "{found} holds no usable signing key{skipped}, so no token of this issuer can be verified: check that its entry in THIRD_PARTY_ISSUERS names the issuer's own keys"
        ));
    }
    Ok(format!(
        "{found} holds {} usable: {}{skipped}",
        plural(usable.len(), "key"),
        usable.join(", ")
    ))
}

/// The usable keys of a JWKS as `<alg> (kid <kid>)`, and why any others were skipped.
fn describe(keys: Vec<KeyReport>) -> (Vec<String>, String) {
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for key in keys {
        match key {
            KeyReport::Usable { kid, algorithm } => {
                usable.push(format!("{algorithm:?} (kid {kid})"))
            }
            KeyReport::Ignored => {}
            KeyReport::Skipped(reason) => skipped.push(reason),
        }
    }
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped {}", skipped.join("; "))
    };
    (usable, skipped)
}

/// The API key and the connection, then the telephony credentials on it: both read-only.
async fn telnyx(per_user: &PerUserConfig) -> Vec<Check> {
    let client = match TelnyxClient::new(&per_user.api) {
        Ok(client) => client,
        Err(problem) => {
            return vec![Check {
                name: "Telnyx API key and connection".into(),
                outcome: Err(problem),
            }];
        }
    };
    let id = &per_user.connection_id;
    let connection = client
        .credential_connection(id, &client.budget())
        .await
        .map_err(|error| match error {
            TelnyxError::Unauthorized { status, detail } => format!(
                "Telnyx refused TELNYX_API_KEY ({status}: {detail}): create a key in the Mission Control portal (API Keys → Create API Key) and set it"
            ),
            TelnyxError::NotFound => format!(
                "the API key works, but its account has no credential connection with the ID {id}: set TELNYX_WEBRTC_CONNECTION_ID to the ID of a SIP credential connection (Mission Control portal → Call Connections; an FQDN or IP connection will not do)"
            ),
            other => format!("{other}: check TELNYX_API_BASE_URL, and that this machine reaches it"),
        })
        .and_then(|connection| {
            let name = connection
                .connection_name
                .map(|name| format!(" ({name:?})"))
                .unwrap_or_default();
            if connection.active {
                Ok(format!("the API key works, and credential connection {id}{name} is active"))
            } else {
                Err(format!(
                    "credential connection {id}{name} is turned off, so its users can place no calls: turn it on in the Mission Control portal (Call Connections)"
                ))
            }
        });
    let reached = connection.is_ok();
    let mut checks = vec![Check {
        name: "Telnyx API key and connection".into(),
        outcome: connection,
    }];
    if reached {
        checks.push(Check {
            name: "Telnyx telephony credentials".into(),
            outcome: client
                .count_credentials(id, &client.budget())
                .await
                .map(|count| {
                    format!(
                        "the key may list them; the connection holds {} (one per user who has had a phone)",
                        plural(count as usize, "credential")
                    )
                })
                .map_err(|error| {
                    format!("{error}: the API key must be allowed to manage telephony credentials")
                }),
        });
    }
    checks
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
