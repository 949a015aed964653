//! The binary as an operator meets it: exit codes, `check-config`, `.env`, `demo`, signals, and
//! what reaches the logs.

mod common;

use std::time::Duration;

use common::process::*;
use common::*;
use serde_json::{Value, json};

fn serve_env(supabase: &FakeSupabase) -> Vec<(&'static str, String)> {
    let mut env = test_env(&supabase.url);
    env.push(("LOG_FORMAT", "json".into()));
    env
}

#[tokio::test]
async fn missing_configuration_exits_2_and_names_each_variable() {
    let (code, stdout, stderr) = run(&[], &[]).await;
    assert_eq!(code, 2, "{stderr}");
    for variable in [
        "SUPABASE_URL",
        "TELNYX_WEBRTC_USERNAME",
        "TELNYX_WEBRTC_PASSWORD",
    ] {
        assert!(
            stderr.contains(variable),
            "{variable} not named in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("https://<project-ref>.supabase.co"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("listening"),
        "nothing may listen on a bad configuration"
    );
}

#[tokio::test]
async fn malformed_values_exit_2_before_binding() {
    let supabase = FakeSupabase::start(&[]).await;
    for (variable, value) in [
        ("BIND_ADDR", "localhost"),
        ("SUPABASE_URL", "abcd.supabase.co"),
        ("JWT_LEEWAY_SECS", "soon"),
        ("CORS_ALLOWED_ORIGINS", "*"),
    ] {
        let mut env = serve_env(&supabase);
        env.retain(|(name, _)| *name != variable);
        env.push((variable, value.into()));
        let (code, stdout, stderr) = run(&["serve"], &env).await;
        assert_eq!(code, 2, "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
        assert!(!stdout.contains("listening"));
        assert!(!stderr.contains(JWT_SECRET) && !stderr.contains(SIP_PASSWORD));
    }
    let (code, _, stderr) = run(&["frobnicate"], &[]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("Usage"), "{stderr}");
}

#[tokio::test]
async fn version_and_help_exit_0_and_name_every_command() {
    let (code, stdout, stderr) = run(&["--version"], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("telnyx-webrtc-credentials {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [&["help"][..], &["--help"], &["-h"]] {
        let (code, stdout, stderr) = run(args, &[]).await;
        assert_eq!(code, 0, "{args:?}: {stderr}");
        for command in [
            "serve",
            "demo",
            "check-config",
            "prune",
            "help",
            "--version",
        ] {
            assert!(
                stdout.contains(command),
                "{args:?}: {command} missing in:\n{stdout}"
            );
        }
    }
}

#[tokio::test]
async fn check_config_prints_the_effective_configuration_redacted() {
    let supabase = FakeSupabase::start(&[]).await;
    let (code, stdout, stderr) = run(&["check-config"], &serve_env(&supabase)).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("SUPABASE_JWT_ISSUER    = {}", supabase.issuer())),
        "{stdout}"
    );
    assert!(
        stdout.contains("SUPABASE_JWT_SECRET    = set (redacted)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("TELNYX_WEBRTC_PASSWORD = set (redacted)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(JWT_SECRET) && !stdout.contains(SIP_PASSWORD),
        "{stdout}"
    );

    let (code, _, stderr) = run(&["check-config"], &[]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("SUPABASE_URL"));
}

#[tokio::test]
async fn a_dot_env_file_in_the_working_directory_is_read() {
    let dir = scratch_dir();
    std::fs::write(
        dir.join(".env"),
        format!(
            "# as copied from .env.example\nSUPABASE_URL=https://abcd.supabase.co\nTELNYX_WEBRTC_USERNAME={SIP_USERNAME}\nTELNYX_WEBRTC_PASSWORD={SIP_PASSWORD}\nTELNYX_SIP_REALM=sip.example.org\n"
        ),
    )
    .unwrap();
    let output = command(&["check-config"], &[], &dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("TELNYX_SIP_REALM       = sip.example.org"),
        "{stdout}"
    );
}

#[tokio::test]
async fn demo_needs_no_configuration_and_its_curl_command_works() {
    let mut demo = Process::start(&["demo"], &[("BIND_ADDR", "127.0.0.1:0".into())]);
    let (token, url) = demo
        .wait_for("curl command", |line| {
            let rest = line.strip_prefix("curl -H \"Authorization: Bearer ")?;
            let (token, url) = rest.split_once("\" ")?;
            Some((token.to_owned(), url.to_owned()))
        })
        .await;
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], json!(true));
    assert!(
        body["credential"]["password"]
            .as_str()
            .is_some_and(|p| !p.is_empty())
    );
    assert_eq!(body["credential"]["realm"], "sip.telnyx.com");
    let ready = reqwest::get(url.replace("/credentials", "/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "demo has no JWKS to wait for");

    // The link to the example page carries the service's address and the same token, and the
    // page's origin may call the API from the browser.
    let link = demo
        .wait_for("browser phone link", |line| {
            line.trim()
                .starts_with("http://127.0.0.1:5173/#")
                .then(|| line.trim().to_owned())
        })
        .await;
    let base = url.trim_end_matches("/credentials");
    assert_eq!(
        link,
        format!("http://127.0.0.1:5173/#api={base}&access_token={token}")
    );
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://127.0.0.1:5173")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
    demo.signal("-INT");
    assert_eq!(demo.exit_code().await, 0);
}

/// The quick start in order: `cp .env.example .env`, then `demo`, then the browser phone's link.
/// The template's CORS_ALLOWED_ORIGINS lists only http://localhost:5173; the link demo prints is
/// http://127.0.0.1:5173, and must work anyway.
#[tokio::test]
async fn demo_with_a_copied_env_example_allows_its_link_and_says_what_it_took() {
    let dir = scratch_dir();
    std::fs::write(dir.join(".env"), include_str!("../.env.example")).unwrap();
    let mut demo = Process::start_in(&["demo"], &[("BIND_ADDR", "127.0.0.1:0".into())], &dir);
    let taken = demo
        .wait_for("the line saying what demo took", |line| {
            line.starts_with("demo: took").then(|| line.to_owned())
        })
        .await;
    let (token, url) = demo
        .wait_for("curl command", |line| {
            let rest = line.strip_prefix("curl -H \"Authorization: Bearer ")?;
            let (token, url) = rest.split_once("\" ")?;
            Some((token.to_owned(), url.to_owned()))
        })
        .await;
    let dot_env = dir.join(".env").canonicalize().unwrap();
    assert!(
        taken.contains(&format!("from {}", dot_env.display())),
        "{taken}"
    );
    let from_dot_env = taken.split(" from ").next().unwrap();
    assert!(from_dot_env.contains("CORS_ALLOWED_ORIGINS"), "{taken}");
    assert!(!from_dot_env.contains("BIND_ADDR"), "{taken}");
    assert!(
        taken.contains("took BIND_ADDR from the environment"),
        "{taken}"
    );
    assert!(
        taken.contains("ignored TELNYX_WEBRTC_PASSWORD, TELNYX_WEBRTC_USERNAME (still .env.example's placeholders)"),
        "{taken}"
    );
    let output = demo.text();
    assert!(!output.contains("change-me") && !output.contains("your-sip-username"));

    for origin in ["http://127.0.0.1:5173", "http://localhost:5173"] {
        let preflight = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(
            preflight.headers().get("access-control-allow-origin"),
            Some(&origin.parse().unwrap()),
            "{origin}"
        );
    }
    let body: Value = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let username = body["credential"]["username"].as_str().unwrap();
    assert!(
        username.starts_with("demo"),
        "demo's own SIP identity: {body}"
    );
    demo.signal("-INT");
    assert_eq!(demo.exit_code().await, 0);
}

#[tokio::test]
async fn check_config_refuses_a_copied_env_example_naming_each_placeholder() {
    let dir = scratch_dir();
    std::fs::write(dir.join(".env"), include_str!("../.env.example")).unwrap();
    let output = command(&["check-config"], &[], &dir)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in [
        "SUPABASE_URL is still the placeholder \"your-project-ref\" from .env.example: set it to your project's URL",
        "TELNYX_WEBRTC_USERNAME is still the placeholder",
        "TELNYX_WEBRTC_PASSWORD is still the placeholder \"change-me\"",
    ] {
        assert!(stderr.contains(expected), "{expected} not in:\n{stderr}");
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    // The first JWKS fetch takes a while, so an ES256 request waits on it: in flight.
    supabase.set_delay(Duration::from_millis(1500));
    let mut env = serve_env(&supabase);
    env.push(("RUST_LOG", "info,tower_http=debug".into()));
    let mut service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let token = keys.es256.sign(&user_claims(&supabase.issuer()));
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("{address}/credentials"))
            .bearer_auth(token)
            .send()
            .await
    });
    service
        .wait_for("the request to start", |line| {
            line.contains("started processing request").then_some(())
        })
        .await;
    service.signal("-TERM");
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), 200);
    assert_eq!(service.exit_code().await, 0, "{}", service.text());
    let logs = service.text();
    let signalled = logs
        .find("SIGTERM received")
        .expect("the signal was logged");
    let finished = logs.find("finished processing request").unwrap();
    assert!(
        signalled < finished,
        "the request was still in flight at SIGTERM:\n{logs}"
    );
}

#[tokio::test]
async fn logs_at_trace_level_hold_no_secret_and_one_line_per_request() {
    let keys = keys();
    let supabase = FakeSupabase::start(&[&keys.es256]).await;
    let mut env = serve_env(&supabase);
    env.push(("RUST_LOG", "trace".into()));
    let mut service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let client = reqwest::Client::new();
    let claims = user_claims(&supabase.issuer());
    let mut expired = claims.clone();
    expired["exp"] = json!(now_secs() - 3600);
    let tokens = [
        sign_hs256(&claims),
        keys.es256.sign(&claims),
        keys.es256.sign(&expired),
        keys.attacker.sign(&claims),
        sign_hs256_with(b"a-wrong-secret-that-is-long-enough-000", &claims),
    ];
    for (n, token) in tokens.iter().enumerate() {
        let response = client
            .get(format!("{address}/credentials?access_token={token}"))
            .bearer_auth(token)
            .header("x-request-id", format!("req-{n}"))
            .send()
            .await
            .unwrap();
        assert!(response.status() == 200 || response.status() == 401);
    }
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();

    for secret in [JWT_SECRET, SIP_PASSWORD] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a bearer token reached the logs");
    }

    // One JSON line per request, with method, path, status, latency, request id and user id.
    // The latency is a number with its unit in the name, so a pipeline needs no parsing rule.
    let finished: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["message"] == "finished processing request")
        .collect();
    assert_eq!(finished.len(), tokens.len(), "{logs}");
    let first = &finished[0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["status"], 200);
    let latency_ms = first["latency_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("{first}"));
    assert!(latency_ms > 0.0 && latency_ms < 10_000.0, "{first}");
    assert!(first.get("latency").is_none(), "{first}");
    // The request's fields sit at the top level, where a log pipeline indexes them.
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/credentials");
    assert_eq!(first["request_id"], "req-0");
    assert_eq!(first["user_id"], claims["sub"]);
    // Every line is one flat JSON object, dependencies' lines included, with no `log.*`
    // bookkeeping from crates that log through the `log` crate.
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for line in &lines {
        for field in ["timestamp", "level", "message", "target"] {
            assert!(line[field].is_string(), "no {field} in {line}");
        }
        let object = line.as_object().unwrap();
        assert!(
            !object.contains_key("span") && !object.contains_key("fields"),
            "{line}"
        );
        assert!(!object.keys().any(|key| key.starts_with("log.")), "{line}");
    }
    assert!(
        lines.iter().any(|line| line["target"]
            .as_str()
            .is_some_and(|target| target.starts_with("reqwest"))),
        "the JWKS fetch logs through the log crate; its lines keep their own target:\n{logs}"
    );
    // Auth failures say why at debug, for the operator only.
    assert!(logs.contains("refused: invalid token"), "{logs}");
    assert!(logs.contains("the token has expired"), "{logs}");
}

#[tokio::test]
async fn audit_lines_carry_their_fields_and_no_secret() {
    let supabase = FakeSupabase::start(&[]).await;
    let mut env = serve_env(&supabase);
    env.extend([
        ("RUST_LOG", "trace".into()),
        ("REQUIRE_AAL2", "true".into()),
        ("RATE_LIMIT_PER_USER", "1/h,burst=1".into()),
        ("TRUST_PROXY_HEADERS", "true".into()),
        ("SUPABASE_VERIFY_SESSION", "true".into()),
        ("SUPABASE_ANON_KEY", ANON_KEY.into()),
    ]);
    let mut service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let client = reqwest::Client::new();
    let mut claims = user_claims(&supabase.issuer());
    claims["aal"] = json!("aal2");
    let mut single_factor = claims.clone();
    single_factor["aal"] = json!("aal1");
    single_factor["sub"] = json!("0b9a7c52-1d3e-4f60-8a2b-3c4d5e6f7a8b");
    let tokens = [
        sign_hs256(&claims),
        sign_hs256(&claims),
        sign_hs256(&single_factor),
    ];
    let mut statuses = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let response = client
            .get(format!("{address}/credentials"))
            .bearer_auth(token)
            .header("x-request-id", format!("req-{n}"))
            .header("x-forwarded-for", "6.6.6.6, 203.0.113.9")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 429, 403]);
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();

    for secret in [JWT_SECRET, SIP_PASSWORD, ANON_KEY] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a bearer token reached the logs");
    }
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect();
    let audit = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|event| event["audit"] == kind)
            .collect()
    };

    let issued = audit("credential_issued");
    assert_eq!(issued.len(), 1, "{logs}");
    let issued = issued[0];
    assert_eq!(issued["level"], "INFO");
    assert_eq!(issued["user_id"], claims["sub"]);
    assert_eq!(issued["email"], "ada@example.com");
    assert_eq!(issued["mode"], "static");
    assert_eq!(issued["sip_username"], SIP_USERNAME);
    assert_eq!(issued["request_id"], "req-0");
    assert_eq!(issued["client_addr"], "203.0.113.9");
    let expires_at = issued["expires_at"].as_u64().unwrap();
    assert!(expires_at > now_secs() * 1000, "{issued}");

    let refused = audit("request_refused");
    let codes: Vec<(&str, u64, &str)> = refused
        .iter()
        .map(|event| {
            assert_eq!(event["level"], "WARN");
            assert_eq!(event["client_addr"], "203.0.113.9");
            (
                event["code"].as_str().unwrap(),
                event["status"].as_u64().unwrap(),
                event["request_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("rate_limited", 429, "req-1"),
            ("aal2_required", 403, "req-2")
        ]
    );
    assert_eq!(refused[1]["user_id"], single_factor["sub"]);

    // The access policy says which rule refused, at info.
    let rule = events
        .iter()
        .find(|event| event["message"] == "refused by the access policy")
        .expect("the refusal was logged");
    assert_eq!(rule["level"], "INFO");
    assert_eq!(rule["rule"], "REQUIRE_AAL2");
    assert_eq!(rule["code"], "aal2_required");
}
