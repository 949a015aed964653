//! `check-config --online` as an operator meets it: one line per check against Supabase and
//! Telnyx (played on 127.0.0.1), what to fix on each failure, exit 1 when one fails, and no
//! secret in the output.

mod common;

use common::process::*;
use common::telnyx::{CONNECTION_PASSWORD, FakeTelnyx, TELNYX_API_KEY};
use common::*;

/// A per_user deployment with the session check on, pointed at the stand-ins.
fn env(supabase: &FakeSupabase, telnyx: &FakeTelnyx) -> Vec<(&'static str, String)> {
    let mut env = test_env(&supabase.url);
    env.extend(telnyx.env());
    env.extend([
        ("SUPABASE_VERIFY_SESSION", "true".into()),
        ("SUPABASE_ANON_KEY", ANON_KEY.into()),
    ]);
    env
}

fn with(
    mut env: Vec<(&'static str, String)>,
    overrides: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    env.retain(|(name, _)| !overrides.iter().any(|(other, _)| other == name));
    env.extend_from_slice(overrides);
    env
}

/// The report's line for `check`.
fn line<'a>(stdout: &'a str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.contains(&format!(" {check}: ")))
        .unwrap_or_else(|| panic!("no {check} line in:\n{stdout}"))
}

fn assert_no_secret(output: &str) {
    for secret in [
        JWT_SECRET,
        ANON_KEY,
        TELNYX_API_KEY,
        CONNECTION_PASSWORD,
        SIP_PASSWORD,
    ] {
        assert!(
            !output.contains(secret),
            "a secret reached the output:\n{output}"
        );
    }
}

#[tokio::test]
async fn every_check_passes_against_working_providers() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256, &keys.rs256]).await;
    let telnyx = FakeTelnyx::start().await;
    telnyx.insert("supabase:user-1", "2026-11-24T12:00:00");
    let (code, stdout, stderr) = run(&["check-config", "--online"], &env(&supabase, &telnyx)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let keys_line = line(&stdout, "Supabase signing keys");
    assert!(keys_line.starts_with("  ok "), "{keys_line}");
    assert!(
        keys_line.contains("2 keys usable: ES256 (kid es256-key-1), RS256 (kid rs256-key-1)"),
        "{keys_line}"
    );
    assert!(line(&stdout, "Supabase anon key").starts_with("  ok "));
    let connection = line(&stdout, "Telnyx API key and connection");
    assert!(
        connection
            .contains("credential connection 1684641123236054244 (\"WebRTC users\") is active"),
        "{connection}"
    );
    let credentials = line(&stdout, "Telnyx telephony credentials");
    assert!(credentials.contains("holds 1 credential"), "{credentials}");
    assert!(stdout.contains("4 checks passed."), "{stdout}");
    // Read-only: nothing was created, minted or deleted.
    assert_eq!(telnyx.requests("connection"), 1);
    assert_eq!(telnyx.requests("list"), 1);
    assert_eq!(telnyx.total_requests(), 2);
    assert_eq!(telnyx.credentials().len(), 1);
    assert_no_secret(&format!("{stdout}{stderr}"));

    // Without --online, nothing is asked.
    let fetches = supabase.fetches();
    let (code, stdout, _) = run(&["check-config"], &env(&supabase, &telnyx)).await;
    assert_eq!(code, 0);
    assert!(!stdout.contains("Online checks"));
    assert_eq!(supabase.fetches(), fetches);
    assert_eq!(telnyx.total_requests(), 2);
}

#[tokio::test]
async fn each_failure_says_what_to_fix_and_exits_1() {
    let supabase = FakeSupabase::start(&[]).await;
    let telnyx = FakeTelnyx::start().await;
    let wrong = with(
        env(&supabase, &telnyx),
        &[
            ("SUPABASE_JWT_SECRET", String::new()),
            ("SUPABASE_ANON_KEY", "an-anon-key-of-another-project".into()),
            ("TELNYX_API_KEY", "KEY0192TEST_revoked_key_000000".into()),
        ],
    );
    let (code, stdout, stderr) = run(&["check-config", "--online"], &wrong).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let keys_line = line(&stdout, "Supabase signing keys");
    assert!(keys_line.starts_with("  FAIL "), "{keys_line}");
    assert!(keys_line.contains("set SUPABASE_JWT_SECRET"), "{keys_line}");
    let anon = line(&stdout, "Supabase anon key");
    assert!(anon.starts_with("  FAIL "), "{anon}");
    assert!(anon.contains("Invalid API key"), "{anon}");
    assert!(
        anon.contains("set it to the project's anon (publishable) key"),
        "{anon}"
    );
    let connection = line(&stdout, "Telnyx API key and connection");
    assert!(
        connection.contains("Telnyx refused TELNYX_API_KEY (401"),
        "{connection}"
    );
    assert!(
        connection.contains("API Keys → Create API Key"),
        "{connection}"
    );
    assert!(
        !stdout.contains("Telnyx telephony credentials"),
        "no second Telnyx call with a refused key:\n{stdout}"
    );
    assert!(stdout.contains("3 of 3 checks failed."), "{stdout}");
    assert_no_secret(&format!("{stdout}{stderr}"));
    assert!(!stdout.contains("KEY0192TEST_revoked_key_000000"));

    // A key that works, and a connection its account does not have.
    let unknown = with(
        env(&supabase, &telnyx),
        &[("TELNYX_WEBRTC_CONNECTION_ID", "999".into())],
    );
    let (code, stdout, _) = run(&["check-config", "--online"], &unknown).await;
    assert_eq!(code, 1, "{stdout}");
    let connection = line(&stdout, "Telnyx API key and connection");
    assert!(
        connection
            .contains("no credential connection with the ID 999: set TELNYX_WEBRTC_CONNECTION_ID"),
        "{connection}"
    );
    // An empty JWKS is fine while the legacy secret verifies tokens.
    let keys_line = line(&stdout, "Supabase signing keys");
    assert!(keys_line.starts_with("  ok "), "{keys_line}");
    assert!(
        keys_line.contains("SUPABASE_JWT_SECRET (HS256) alone"),
        "{keys_line}"
    );
}

#[tokio::test]
async fn unreachable_or_failing_providers_are_named_with_their_address() {
    let supabase = FakeSupabase::start(&[]).await;
    supabase.set_failing(true);
    let telnyx = FakeTelnyx::start().await;
    let refusing = ClosedPort::new();
    let closed = refusing.url.as_str();
    let env = with(
        env(&supabase, &telnyx),
        &[("TELNYX_API_BASE_URL", format!("{closed}/v2"))],
    );
    let (code, stdout, _) = run(&["check-config", "--online"], &env).await;
    assert_eq!(code, 1, "{stdout}");
    let keys_line = line(&stdout, "Supabase signing keys");
    assert!(keys_line.contains("answered HTTP 500"), "{keys_line}");
    assert!(keys_line.contains("check SUPABASE_URL"), "{keys_line}");
    let connection = line(&stdout, "Telnyx API key and connection");
    assert!(
        connection.contains("check TELNYX_API_BASE_URL"),
        "{connection}"
    );
}

#[tokio::test]
async fn static_mode_without_the_session_check_checks_the_keys_alone() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let (code, stdout, stderr) = run(&["check-config", "--online"], &test_env(&supabase.url)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 check passed."), "{stdout}");
    assert!(!stdout.contains("Telnyx"), "{stdout}");
}

#[tokio::test]
async fn each_third_party_issuer_is_discovered_and_its_keys_listed() {
    use common::issuer::{FakeIssuer, Shape, issuer_keys};
    use telnyx_webrtc_credentials::credentials::issuer_tag;

    let idp = issuer_keys();
    let supabase = FakeSupabase::start(&[&keys().es256]).await;
    let clerk = FakeIssuer::start(Shape::Clerk, &[&idp.clerk]).await;
    let firebase = FakeIssuer::start(Shape::Firebase, &[&idp.firebase]).await;
    let down = FakeIssuer::start(Shape::Auth0, &[&idp.auth0]).await;
    down.set_discovery_failing(true);
    let mut env = test_env(&supabase.url);
    env.push((
        "THIRD_PARTY_ISSUERS",
        format!("{},{},{}", clerk.entry(), firebase.entry(), down.entry()),
    ));
    let (code, stdout, stderr) = run(&["check-config", "--online"], &env).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let check = |issuer: &FakeIssuer| {
        line(
            &stdout,
            &format!(
                "Signing keys of {} ({})",
                issuer.issuer,
                issuer_tag(&issuer.issuer)
            ),
        )
        .to_owned()
    };
    let clerk_line = check(&clerk);
    assert!(clerk_line.starts_with("  ok "), "{clerk_line}");
    assert!(
        clerk_line.contains(&format!(
            "discovery at {}/.well-known/openid-configuration names the jwks_uri {}, which holds 1 key usable: ES256 (kid {})",
            clerk.url,
            clerk.jwks_uri(),
            idp.clerk.kid
        )),
        "{clerk_line}"
    );
    let firebase_line = check(&firebase);
    assert!(
        firebase_line.contains(&format!(
            "{} holds 1 key usable: RS256 (kid {})",
            firebase.jwks_uri(),
            idp.firebase.kid
        )),
        "{firebase_line}"
    );
    assert_eq!(firebase.jwks_fetches(), 1);
    let down_line = check(&down);
    assert!(down_line.starts_with("  FAIL "), "{down_line}");
    assert!(down_line.contains("answered HTTP 500"), "{down_line}");
    assert!(
        down_line.contains("check its entry in THIRD_PARTY_ISSUERS"),
        "{down_line}"
    );
    assert!(stdout.contains("1 of 4 checks failed."), "{stdout}");
    // The configuration part lists each issuer with its tag and where its keys are.
    assert!(
        stdout.contains(&format!(
            "  {} (tag {}): keys at {}, aud must contain",
            firebase.issuer,
            issuer_tag(&firebase.issuer),
            firebase.jwks_uri()
        )),
        "{stdout}"
    );
}
