//! The configuration as an operator meets it: defaults, every mistake named with its fix, and
//! the docs that must list every variable.

use super::*;

const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

fn minimal() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SUPABASE_URL", "https://abcd.supabase.co"),
        ("SUPABASE_JWT_SECRET", SECRET),
        ("TELNYX_WEBRTC_USERNAME", "gencred123"),
        ("TELNYX_WEBRTC_PASSWORD", "sip-password-1"),
    ]
}

fn load(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigErrors> {
    let mut pairs = minimal();
    pairs.retain(|(key, _)| !extra.iter().any(|(other, _)| other == key));
    pairs.extend_from_slice(extra);
    Config::from_lookup(lookup_from(pairs))
}

#[test]
fn defaults_follow_the_documented_values() {
    let config = load(&[]).unwrap();
    assert_eq!(config.bind_addr.to_string(), DEFAULT_BIND_ADDR);
    assert_eq!(config.auth.issuer, "https://abcd.supabase.co/auth/v1");
    assert_eq!(
        config.auth.jwks_url.unwrap().as_str(),
        "https://abcd.supabase.co/auth/v1/.well-known/jwks.json"
    );
    assert_eq!(config.auth.audience, "authenticated");
    assert_eq!(config.auth.leeway, Duration::from_secs(30));
    assert!(!config.auth.allow_anonymous_users);
    assert_eq!(
        config.auth.access_token_cache_entries,
        DEFAULT_ACCESS_TOKEN_CACHE_ENTRIES
    );
    assert_eq!(config.credentials.realm, "sip.telnyx.com");
    assert_eq!(config.credentials.stun_urls, DEFAULT_STUN_URLS);
    assert_eq!(config.credentials.turn_urls, DEFAULT_TURN_URLS);
    let CredentialSourceConfig::Static { ttl, .. } = config.credentials.source else {
        panic!("static is the default mode");
    };
    assert_eq!(ttl, Duration::from_secs(86_400));
    assert!(config.credentials.turn_credentials.is_none());
    assert!(config.cors_allowed_origins.is_empty());
    assert_eq!(config.log.format, LogFormat::Pretty);
}

#[test]
fn a_trailing_slash_on_the_project_url_is_forgiven() {
    let config = load(&[("SUPABASE_URL", "https://abcd.supabase.co/")]).unwrap();
    assert_eq!(config.auth.issuer, "https://abcd.supabase.co/auth/v1");
}

#[test]
fn the_issuer_can_be_overridden_for_custom_domains() {
    let config = load(&[("SUPABASE_JWT_ISSUER", "https://auth.example.com/auth/v1")]).unwrap();
    assert_eq!(config.auth.issuer, "https://auth.example.com/auth/v1");
}

#[test]
fn missing_required_variables_are_all_named_at_once() {
    let errors = Config::from_lookup(lookup_from([])).unwrap_err();
    for variable in [
        "SUPABASE_URL",
        "TELNYX_WEBRTC_USERNAME",
        "TELNYX_WEBRTC_PASSWORD",
    ] {
        assert!(
            errors.mentions(variable),
            "{variable} missing from {errors}"
        );
    }
    assert!(
        errors
            .to_string()
            .contains("https://<project-ref>.supabase.co")
    );
}

#[test]
fn malformed_values_name_the_variable_and_the_fix() {
    let cases: &[(&'static str, &'static str, &str)] = &[
        (
            "SUPABASE_URL",
            "abcd.supabase.co",
            "https://<project-ref>.supabase.co",
        ),
        (
            "SUPABASE_URL",
            "https://abcd.supabase.co/auth/v1",
            "without a path",
        ),
        ("SUPABASE_JWT_SECRET", "short", "too short"),
        ("BIND_ADDR", "localhost", "0.0.0.0:8080"),
        ("METRICS_BIND_ADDR", "9090", "0.0.0.0:8080"),
        ("JWT_LEEWAY_SECS", "thirty", "whole number"),
        ("ACCESS_TOKEN_CACHE_ENTRIES", "lots", "whole number"),
        ("ACCESS_TOKEN_CACHE_ENTRIES", "2000000", "0 to 1000000"),
        ("CREDENTIAL_TTL_SECS", "-1", "whole number"),
        ("ALLOW_ANONYMOUS_USERS", "maybe", "true or false"),
        ("CREDENTIAL_MODE", "shared", "static or per_user"),
        ("CORS_ALLOWED_ORIGINS", "*", "any website"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com/",
            "https://app.example.com",
        ),
        ("TELNYX_STUN_URLS", "turn:turn.telnyx.com", "stun:"),
        ("TELNYX_TURN_URLS", "stun:x", "turn:"),
        ("LOG_FORMAT", "xml", "pretty or json"),
        ("RUST_LOG", "info,[=", "valid log filter"),
        ("RATE_LIMIT_PER_USER", "20 per minute", "20/min,burst=10"),
        ("RATE_LIMIT_PER_IP", "on", "or off"),
        ("TRUST_PROXY_HEADERS", "sometimes", "true or false"),
        ("MAX_CONCURRENT_REQUESTS", "0", "whole number from 1"),
        ("MAX_REQUEST_BODY_BYTES", "1MB", "whole number from 0"),
        ("MAX_REQUEST_HEADER_BYTES", "100", "from 4096"),
        ("REQUIRE_CLAIMS", "app_metadata.plan=pro", "quote strings"),
        ("REQUIRE_CLAIMS", "user_metadata.ok=true", "app_metadata"),
        ("ALLOWED_EMAIL_DOMAINS", "ada@example.com", "not a domain"),
        ("REQUIRE_AAL2", "yes please", "true or false"),
        ("SUPABASE_VERIFY_SESSION", "on", "true or false"),
        ("SESSION_CHECK_CACHE_SECS", "forever", "whole number from 0"),
        (
            "THIRD_PARTY_ISSUERS",
            "clerk.example.com",
            "not an https:// URL",
        ),
        (
            "THIRD_PARTY_ISSUERS",
            "https://abcd.supabase.co/auth/v1",
            "Supabase project's own issuer",
        ),
        (
            "THIRD_PARTY_ISSUERS",
            "https://clerk.example.com|aud",
            "aud is empty",
        ),
    ];
    for (variable, value, hint) in cases {
        let errors = load(&[(variable, value)]).unwrap_err();
        let message = errors.to_string();
        assert!(errors.mentions(variable), "{variable}={value}: {message}");
        assert!(message.contains(hint), "{variable}={value}: {message}");
    }
}

#[test]
fn turn_credentials_come_in_pairs() {
    let errors = load(&[("TELNYX_TURN_USERNAME", "turnuser")]).unwrap_err();
    assert!(errors.mentions("TELNYX_TURN_PASSWORD"), "{errors}");
    assert!(
        errors.to_string().contains("set both, or neither"),
        "{errors}"
    );
    let config = load(&[
        ("TELNYX_TURN_USERNAME", "turnuser"),
        ("TELNYX_TURN_PASSWORD", "turn-secret-1"),
    ])
    .unwrap();
    assert!(!config.to_string().contains("turn-secret-1"));
    assert!(config.credentials.turn_credentials.is_some());
}

#[test]
fn lists_are_split_on_commas() {
    let config = load(&[
        (
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:5173",
        ),
        ("TELNYX_STUN_URLS", "stun:a.example:3478"),
        (
            "TELNYX_TURN_URLS",
            "turns:b.example:443?transport=tcp,turn:c.example:3478",
        ),
    ])
    .unwrap();
    assert_eq!(
        config.cors_allowed_origins,
        ["https://app.example.com", "http://localhost:5173"]
    );
    assert_eq!(config.credentials.stun_urls, ["stun:a.example:3478"]);
    assert_eq!(
        config.credentials.turn_urls,
        ["turns:b.example:443?transport=tcp", "turn:c.example:3478"]
    );
}

#[test]
fn secrets_are_redacted_in_debug_and_display() {
    let config = load(&[]).unwrap();
    for printed in [format!("{config:?}"), config.to_string()] {
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(!printed.contains("sip-password-1"), "{printed}");
    }
    assert!(
        config
            .to_string()
            .contains("SUPABASE_JWT_SECRET    = set (redacted)")
    );
}

fn per_user(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigErrors> {
    let mut pairs = vec![
        ("CREDENTIAL_MODE", "per_user"),
        ("TELNYX_API_KEY", "KEY0123456789ABCDEF"),
        ("TELNYX_WEBRTC_CONNECTION_ID", "1234567890"),
    ];
    pairs.retain(|(key, _)| !extra.iter().any(|(other, _)| other == key));
    pairs.extend_from_slice(extra);
    load(&pairs)
}

#[test]
fn per_user_mode_reads_telnyx_api_access_and_needs_no_sip_identity() {
    let config = per_user(&[
        ("TELNYX_WEBRTC_USERNAME", ""),
        ("TELNYX_WEBRTC_PASSWORD", ""),
    ])
    .unwrap();
    let CredentialSourceConfig::PerUser(per_user) = &config.credentials.source else {
        panic!("per_user mode was asked for");
    };
    assert_eq!(per_user.connection_id, "1234567890");
    assert_eq!(per_user.api.base_url.as_str(), "https://api.telnyx.com/v2");
    assert_eq!(per_user.api.request_budget, Duration::from_secs(15));
    assert_eq!(per_user.refresh_margin, Duration::from_secs(600));
    assert_eq!(per_user.propagation, Duration::from_secs(5));
    assert_eq!(per_user.idle, Duration::from_secs(30 * 86_400));
    assert_eq!(per_user.max_devices, 5);
    assert!(config.admin_api_token.is_none());
    for printed in [format!("{config:?}"), config.to_string()] {
        assert!(!printed.contains("KEY0123456789ABCDEF"), "{printed}");
    }
    assert!(
        config
            .to_string()
            .contains("CREDENTIAL_MODE        = per_user")
    );
}

#[test]
fn the_admin_token_is_read_kept_secret_and_the_device_cap_set() {
    let token = "4b1d9c0e7a2f4e6b8d0c1a3e5f7b9d1c";
    let config = per_user(&[("ADMIN_API_TOKEN", token), ("MAX_DEVICES_PER_USER", "100")]).unwrap();
    let CredentialSourceConfig::PerUser(per_user) = &config.credentials.source else {
        panic!("per_user mode was asked for");
    };
    assert_eq!(per_user.max_devices, 100);
    assert!(config.admin_api_token.is_some());
    for printed in [format!("{config:?}"), config.to_string()] {
        assert!(!printed.contains(token), "{printed}");
    }
    assert!(
        config
            .to_string()
            .contains("ADMIN_API_TOKEN        = set (redacted)")
    );
}

#[test]
fn per_user_mode_names_what_is_missing() {
    let errors = load(&[("CREDENTIAL_MODE", "per_user")]).unwrap_err();
    assert!(errors.mentions("TELNYX_API_KEY"), "{errors}");
    assert!(errors.mentions("TELNYX_WEBRTC_CONNECTION_ID"), "{errors}");
    assert!(!errors.mentions("TELNYX_WEBRTC_USERNAME"), "{errors}");
    assert!(errors.to_string().contains("API Keys"), "{errors}");
}

#[test]
fn per_user_values_are_checked() {
    let cases: &[(&'static str, &'static str, &str)] = &[
        ("TELNYX_WEBRTC_CONNECTION_ID", "12 34/5", "ID alone"),
        ("TELNYX_API_BASE_URL", "api.telnyx.com", "not a URL"),
        ("TELNYX_REQUEST_BUDGET_SECS", "0", "whole number"),
        ("TELNYX_REQUEST_BUDGET_SECS", "60", "REQUEST_TIMEOUT_SECS"),
        ("TOKEN_REFRESH_MARGIN_SECS", "ten", "whole number"),
        ("TELNYX_CREDENTIAL_PROPAGATION_SECS", "31", "from 0 to 30"),
        (
            "TELNYX_CREDENTIAL_PROPAGATION_SECS",
            "15",
            "not below TELNYX_REQUEST_BUDGET_SECS (15)",
        ),
        ("TELNYX_CREDENTIAL_IDLE_DAYS", "0", "from 1 to 3650"),
        ("TELNYX_CREDENTIAL_IDLE_DAYS", "3651", "from 1 to 3650"),
        ("MAX_DEVICES_PER_USER", "0", "from 1 to 100"),
        ("MAX_DEVICES_PER_USER", "101", "from 1 to 100"),
        (
            "ADMIN_API_TOKEN",
            "KEY0123456789ABCDEF-too-short",
            "at least 32",
        ),
    ];
    for (variable, value, hint) in cases {
        let errors = per_user(&[(variable, value)]).unwrap_err();
        let message = errors.to_string();
        assert!(errors.mentions(variable), "{variable}={value}: {message}");
        assert!(message.contains(hint), "{variable}={value}: {message}");
        assert!(!message.contains("KEY0123456789ABCDEF"), "{message}");
    }
}

#[test]
fn every_variable_read_is_documented_in_the_configuration_docs_and_env_example() {
    let asked = std::cell::RefCell::new(Vec::new());
    for mode in ["static", "per_user"] {
        let _ = Config::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            (name == "CREDENTIAL_MODE").then(|| mode.to_owned())
        });
    }
    // `prune` reads a few of its own (SUPABASE_URL only with the secret key).
    let _ = PruneConfig::from_lookup(|name| {
        asked.borrow_mut().push(name.to_owned());
        (name == "SUPABASE_SERVICE_ROLE_KEY").then(|| "sb_secret_x".to_owned())
    });
    let asked = asked.into_inner();
    assert!(asked.len() >= 25, "{asked:?}");
    assert!(asked.iter().any(|name| name == "SUPABASE_SERVICE_ROLE_KEY"));
    let env_example = include_str!("../../.env.example");
    let configuration = include_str!("../../docs/configuration.md");
    for name in &asked {
        assert!(
            env_example.contains(&format!("\n{name}=")),
            "{name} missing from .env.example"
        );
        assert!(
            configuration.contains(&format!("| `{name}` |")),
            "{name} missing from the table in docs/configuration.md"
        );
    }
    // The other way round: the tables (the README keeps the most common variables) and
    // .env.example name no variable the service does not read.
    let tables = [
        ("docs/configuration.md", configuration),
        ("README.md", include_str!("../../README.md")),
    ];
    for (file, text) in tables {
        for row in text.lines().filter(|line| line.starts_with("| `")) {
            let name = row[3..].split('`').next().unwrap();
            let is_variable = name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            assert!(
                !is_variable || asked.iter().any(|read| read == name),
                "{file} documents {name}, which the service does not read"
            );
        }
    }
    for line in env_example.lines().filter(|line| !line.starts_with('#')) {
        if let Some((name, _)) = line.split_once('=') {
            assert!(
                asked.iter().any(|read| read == name),
                ".env.example sets {name}, which the service does not read"
            );
        }
    }
}

fn env_example() -> Vec<(String, String)> {
    dotenvy::from_read_iter(ENV_EXAMPLE.as_bytes())
        .map(Result::unwrap)
        .collect()
}

/// The variables named in `errors`, sorted.
fn named(errors: &ConfigErrors) -> Vec<&'static str> {
    let mut variables: Vec<&'static str> = errors.0.iter().map(|error| error.variable).collect();
    variables.sort_unstable();
    variables.dedup();
    variables
}

/// `.env.example` as copied is refused, in either mode, for exactly the variables that mode
/// reads and the template leaves to the operator, each with what to set; with those filled in it
/// is a valid configuration. A placeholder added to the template is refused without more code,
/// and this test asks for a sentence saying what to put there.
#[test]
fn the_env_example_is_a_template_whose_placeholders_are_refused() {
    let template = env_example();
    let placeholders: Vec<&str> = template
        .iter()
        .filter(|(_, value)| placeholder_in(value).is_some())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(placeholders.len() >= 5, "{placeholders:?}");
    let own_value = |name: &str| match name {
        "SUPABASE_URL" => "https://abcd.supabase.co",
        "TELNYX_WEBRTC_CONNECTION_ID" => "1684641123236054244",
        _ => "an-operator-value-0123456789",
    };
    for mode in ["static", "per_user"] {
        let read = std::cell::RefCell::new(Vec::new());
        let errors = Config::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            match name {
                "CREDENTIAL_MODE" => Some(mode.to_owned()),
                _ => template
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, v)| v.clone()),
            }
        })
        .unwrap_err();
        let mut expected: Vec<&str> = placeholders
            .iter()
            .copied()
            .filter(|name| read.borrow().iter().any(|read| read == name))
            .collect();
        expected.sort_unstable();
        assert_eq!(named(&errors), expected, "{mode}: {errors}");
        for error in &errors.0 {
            assert!(error.problem.contains("placeholder"), "{error}");
            assert!(
                !error.problem.contains("replace it with your own value"),
                "{error}: say in template::what_to_set what to put there"
            );
        }

        let filled = Config::from_lookup(|name| match name {
            "CREDENTIAL_MODE" => Some(mode.to_owned()),
            _ if placeholders.contains(&name) => Some(own_value(name).to_owned()),
            _ => template
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, v)| v.clone()),
        });
        let config = filled.unwrap_or_else(|errors| panic!("{mode}: {errors}"));
        assert_eq!(config.credentials.stun_urls, DEFAULT_STUN_URLS);
    }
}

/// The Kubernetes examples are copied the same way, so their placeholders must be the
/// template's: each value there that looks like one is refused.
#[test]
fn the_deploy_examples_use_the_templates_placeholders() {
    let examples = [
        include_str!("../../deploy/kubernetes/static/secret.yaml.example"),
        include_str!("../../deploy/kubernetes/static/configmap.yaml"),
        include_str!("../../deploy/kubernetes/per-user/secret.yaml.example"),
        include_str!("../../deploy/kubernetes/per-user/configmap.yaml"),
    ];
    let mut checked = 0;
    for example in examples {
        for line in example
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
        {
            let Some((name, value)) = line.trim().split_once(": ") else {
                continue;
            };
            let lower = value.to_ascii_lowercase();
            let looks_like_one = lower.contains("your-") || lower.contains("change-me");
            if looks_like_one {
                checked += 1;
                assert!(
                    placeholder_in(value).is_some(),
                    "{name}: {value} is not one of .env.example's placeholders"
                );
                assert!(
                    !template::what_to_set(name).starts_with("replace"),
                    "{name}"
                );
            }
        }
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn a_placeholder_is_refused_anywhere_in_a_value_and_never_echoed_whole() {
    let errors = load(&[("TELNYX_WEBRTC_PASSWORD", "Change-Me-s3cr3t-suffix")]).unwrap_err();
    assert_eq!(named(&errors), ["TELNYX_WEBRTC_PASSWORD"]);
    let message = errors.to_string();
    assert!(message.contains("\"change-me\""), "{message}");
    assert!(message.contains("SIP password"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");

    let errors = load(&[("SUPABASE_URL", "https://your-project-ref.supabase.co/")]).unwrap_err();
    assert_eq!(named(&errors), ["SUPABASE_URL"], "reported once: {errors}");
    assert!(errors.to_string().contains("Project Settings"));
}

#[test]
fn plain_http_is_refused_unless_local_or_allowed() {
    for url in ["http://abcd.supabase.co", "http://10.0.0.7:8000"] {
        let errors = load(&[("SUPABASE_URL", url)]).unwrap_err();
        assert_eq!(named(&errors), ["SUPABASE_URL"], "{errors}");
        let message = errors.to_string();
        assert!(message.contains("https://"), "{message}");
        assert!(message.contains("ALLOW_INSECURE_HTTP=true"), "{message}");
        assert!(message.contains("signing keys"), "{message}");
    }
    for url in [
        "http://127.0.0.1:54321",
        "http://localhost:54321",
        "http://[::1]:54321",
        "https://abcd.supabase.co",
    ] {
        let config = load(&[("SUPABASE_URL", url)]).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(config.auth.jwks_url.is_some());
    }
    let config = load(&[
        ("SUPABASE_URL", "http://supabase-kong.supabase.svc:8000"),
        ("ALLOW_INSECURE_HTTP", "true"),
    ])
    .unwrap();
    assert!(config.allow_insecure_http);
    assert!(config.to_string().contains("ALLOW_INSECURE_HTTP    = true"));

    let telnyx = |base: &'static str, allow: &'static str| {
        per_user(&[
            ("TELNYX_API_BASE_URL", base),
            ("ALLOW_INSECURE_HTTP", allow),
        ])
    };
    let errors = telnyx("http://api.telnyx.com/v2", "false").unwrap_err();
    assert_eq!(named(&errors), ["TELNYX_API_BASE_URL"]);
    assert!(
        errors
            .to_string()
            .contains("API key would be sent in clear")
    );
    assert!(telnyx("http://telnyx-proxy.internal/v2", "true").is_ok());
    assert!(telnyx("http://127.0.0.1:9/v2", "false").is_ok());
}

#[test]
fn demo_needs_no_variables() {
    let secrets = || DemoSecrets {
        jwt_secret: SecretString::from(SECRET),
        sip_username: "demo".into(),
        sip_password: SecretString::from("pw"),
    };
    let config = Config::demo(lookup_from([]), secrets()).unwrap();
    assert!(config.auth.jwks_url.is_none());
    assert_eq!(config.auth.issuer, DEMO_ISSUER);
    assert_eq!(config.cors_allowed_origins, EXAMPLE_PAGE_ORIGINS);

    // The page demo links to stays allowed whatever a .env lists, and a copied .env.example's
    // placeholders count as unset: demo makes up its SIP identity instead.
    let template = env_example();
    let config = Config::demo(
        |name| match name {
            "CORS_ALLOWED_ORIGINS" => Some("http://localhost:5173,http://127.0.0.1:9999".into()),
            _ => template
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, v)| v.clone()),
        },
        secrets(),
    )
    .unwrap();
    assert_eq!(
        config.cors_allowed_origins,
        [
            "http://localhost:5173",
            "http://127.0.0.1:9999",
            "http://127.0.0.1:5173"
        ]
    );
    let CredentialSourceConfig::Static { username, .. } = &config.credentials.source else {
        panic!("demo is static");
    };
    assert_eq!(username, "demo");
}

#[test]
fn limits_and_access_rules_default_to_the_documented_values() {
    let config = load(&[]).unwrap();
    let limits = &config.limits;
    assert_eq!(
        limits.per_user.map(|limit| limit.to_string()).as_deref(),
        Some("20/min,burst=10")
    );
    assert_eq!(limits.per_client_address, None);
    assert!(!limits.trust_proxy_headers);
    assert_eq!(limits.max_concurrent_requests, 1024);
    assert_eq!(limits.max_request_body_bytes, 16 * 1024);
    assert_eq!(limits.max_request_header_bytes, 32 * 1024);
    let rules = &config.auth.rules;
    assert!(rules.require_claims.is_empty() && rules.allowed_email_domains.is_empty());
    assert!(!rules.require_aal2);
    assert!(config.auth.session_check.is_none());

    let config = load(&[
        ("RATE_LIMIT_PER_USER", "off"),
        ("RATE_LIMIT_PER_IP", "100/s,burst=200"),
        ("REQUIRE_CLAIMS", "app_metadata.phone_enabled=true"),
        ("ALLOWED_EMAIL_DOMAINS", "Example.com, @example.org"),
        ("REQUIRE_AAL2", "true"),
    ])
    .unwrap();
    assert_eq!(config.limits.per_user, None);
    assert_eq!(
        config.limits.per_client_address.unwrap().to_string(),
        "100/s,burst=200"
    );
    assert_eq!(
        config.auth.rules.require_claims[0].to_string(),
        "app_metadata.phone_enabled=true"
    );
    assert_eq!(
        config.auth.rules.allowed_email_domains,
        ["example.com", "example.org"]
    );
    assert!(config.auth.rules.require_aal2);
}

#[test]
fn the_session_check_needs_the_anon_key_and_keeps_it_secret() {
    let errors = load(&[("SUPABASE_VERIFY_SESSION", "true")]).unwrap_err();
    assert!(errors.mentions("SUPABASE_ANON_KEY"), "{errors}");
    assert!(errors.to_string().contains("anon (publishable) key"));

    let anon_key = "test-anon-key-0f6e2a";
    let config = load(&[
        ("SUPABASE_VERIFY_SESSION", "true"),
        ("SUPABASE_ANON_KEY", anon_key),
        ("SESSION_CHECK_CACHE_SECS", "0"),
    ])
    .unwrap();
    let check = config.auth.session_check.as_ref().unwrap();
    assert_eq!(
        check.user_url.as_str(),
        "https://abcd.supabase.co/auth/v1/user"
    );
    assert_eq!(check.cache_ttl, Duration::ZERO);
    for printed in [format!("{config:?}"), config.to_string()] {
        assert!(!printed.contains(anon_key), "{printed}");
    }
    assert!(
        config
            .to_string()
            .contains("SUPABASE_ANON_KEY      = set (redacted)")
    );
}

#[test]
fn connection_timeouts_and_the_cap_default_to_the_documented_values() {
    let connections = load(&[]).unwrap().connections;
    assert_eq!(connections.header_timeout, Duration::from_secs(10));
    assert_eq!(connections.idle_timeout, Duration::from_secs(60));
    assert_eq!(connections.max_connections, None);
    assert_eq!(connections.shutdown_grace, Duration::from_secs(20));

    let config = load(&[
        ("HTTP_HEADER_TIMEOUT_SECS", "3"),
        ("HTTP_IDLE_TIMEOUT_SECS", "120"),
        ("MAX_CONNECTIONS", "5000"),
        ("SHUTDOWN_GRACE_SECS", "5"),
    ])
    .unwrap();
    assert_eq!(config.connections.header_timeout, Duration::from_secs(3));
    assert_eq!(config.connections.idle_timeout, Duration::from_secs(120));
    assert_eq!(config.connections.max_connections, Some(5000));
    assert_eq!(config.connections.shutdown_grace, Duration::from_secs(5));
    let printed = config.to_string();
    assert!(
        printed.contains("HTTP_HEADER_TIMEOUT_SECS = 3"),
        "{printed}"
    );
    assert!(
        printed.contains("MAX_CONNECTIONS        = 5000"),
        "{printed}"
    );
}

#[test]
fn connection_settings_out_of_range_say_what_to_set() {
    for (variable, value, hint) in [
        ("HTTP_HEADER_TIMEOUT_SECS", "0", "from 1 to 120"),
        ("HTTP_HEADER_TIMEOUT_SECS", "121", "from 1 to 120"),
        ("HTTP_IDLE_TIMEOUT_SECS", "0", "from 1 to 3600"),
        ("MAX_CONNECTIONS", "0", "open-files limit"),
        ("MAX_CONNECTIONS", "lots", "from 1 to 1000000"),
        ("SHUTDOWN_GRACE_SECS", "0", "from 1 to 300"),
    ] {
        let errors = load(&[(variable, value)]).unwrap_err();
        assert!(errors.mentions(variable), "{variable}={value}: {errors}");
        assert!(
            errors.to_string().contains(hint),
            "{variable}={value}: {errors}"
        );
    }
}

#[test]
fn third_party_issuers_are_read_with_their_tags_and_printed() {
    let config = load(&[]).unwrap();
    assert!(config.auth.third_party_issuers.is_empty());
    assert!(config.to_string().contains("THIRD_PARTY_ISSUERS    = none"));

    let config = load(&[(
        "THIRD_PARTY_ISSUERS",
        "https://clerk.example.com, https://securetoken.google.com/my-app=https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com|aud=my-app",
    )])
    .unwrap();
    let issuers = &config.auth.third_party_issuers;
    assert_eq!(issuers.len(), 2);
    assert_eq!(issuers[0].issuer, "https://clerk.example.com");
    assert_eq!(
        issuers[0].tag,
        crate::credentials::issuer_tag("https://clerk.example.com")
    );
    assert_eq!(issuers[1].audience.as_deref(), Some("my-app"));
    let printed = config.to_string();
    assert!(
        printed.contains("THIRD_PARTY_ISSUERS    = 2 issuer(s)"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "  https://clerk.example.com (tag {}): keys by discovery at https://clerk.example.com/.well-known/openid-configuration, aud not checked",
            issuers[0].tag
        )),
        "{printed}"
    );

    // A custom SUPABASE_JWT_ISSUER is the project's own too; every faulty entry is named.
    let errors = load(&[
        ("SUPABASE_JWT_ISSUER", "https://auth.example.com/auth/v1"),
        (
            "THIRD_PARTY_ISSUERS",
            "https://auth.example.com/auth/v1,http://idp.example.com",
        ),
    ])
    .unwrap_err();
    assert_eq!(named(&errors), ["THIRD_PARTY_ISSUERS"]);
    assert_eq!(errors.0.len(), 2, "{errors}");
    let config = load(&[
        ("THIRD_PARTY_ISSUERS", "http://idp.example.com"),
        ("ALLOW_INSECURE_HTTP", "true"),
    ])
    .unwrap();
    assert!(config.auth.allow_insecure_http);
}
