//! Who may have phone credentials once their token has verified: signed-in users only, and
//! among them those the configured rules admit (`REQUIRE_AAL2`, `ALLOWED_EMAIL_DOMAINS`,
//! `REQUIRE_CLAIMS`).
//!
//! The project's `anon` and `service_role` API keys are JWTs signed with the same secret as user
//! tokens, so a valid signature alone proves nothing about a user; the `role` claim does.

use serde_json::Value;

use super::SupabaseClaims;
use crate::config::{AccessRules, AuthConfig, ClaimRequirement};

/// Why a verified user is refused (403). The `code` is part of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("the token belongs to an anonymous sign-in and ALLOW_ANONYMOUS_USERS is off")]
    AnonymousUser,
    #[error("the token's role is {0:?}, not \"authenticated\"")]
    RoleNotAllowed(String),
    #[error("the session is not multi-factor (aal is not aal2) and REQUIRE_AAL2 is on")]
    Aal2Required,
    #[error("the email's domain is not in ALLOWED_EMAIL_DOMAINS")]
    EmailDomainNotAllowed,
    #[error("the token does not satisfy {0} of REQUIRE_CLAIMS")]
    ClaimRequirementNotMet(String),
}

impl PolicyRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            PolicyRefusal::AnonymousUser => "anonymous_user",
            PolicyRefusal::RoleNotAllowed(_) => "role_not_allowed",
            PolicyRefusal::Aal2Required => "aal2_required",
            PolicyRefusal::EmailDomainNotAllowed => "email_domain_not_allowed",
            PolicyRefusal::ClaimRequirementNotMet(_) => "claim_requirement_not_met",
        }
    }

    /// The setting (or built-in rule) that refused, for the log.
    pub fn rule(&self) -> &'static str {
        match self {
            PolicyRefusal::AnonymousUser => "ALLOW_ANONYMOUS_USERS",
            PolicyRefusal::RoleNotAllowed(_) => "role=authenticated (built in)",
            PolicyRefusal::Aal2Required => "REQUIRE_AAL2",
            PolicyRefusal::EmailDomainNotAllowed => "ALLOWED_EMAIL_DOMAINS",
            PolicyRefusal::ClaimRequirementNotMet(_) => "REQUIRE_CLAIMS",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    pub allow_anonymous_users: bool,
    pub rules: AccessRules,
}

impl AccessPolicy {
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            allow_anonymous_users: config.allow_anonymous_users,
            rules: config.rules.clone(),
        }
    }

    pub fn check(&self, claims: &SupabaseClaims) -> Result<(), PolicyRefusal> {
        let role = claims.role.as_deref().unwrap_or("");
        if role != "authenticated" {
            return Err(PolicyRefusal::RoleNotAllowed(role.to_owned()));
        }
        if claims.is_anonymous() && !self.allow_anonymous_users {
            return Err(PolicyRefusal::AnonymousUser);
        }
        if self.rules.require_aal2 && claims.aal.as_deref() != Some("aal2") {
            return Err(PolicyRefusal::Aal2Required);
        }
        if !self.rules.allowed_email_domains.is_empty() && !self.email_domain_allowed(claims) {
            return Err(PolicyRefusal::EmailDomainNotAllowed);
        }
        match self
            .rules
            .require_claims
            .iter()
            .find(|requirement| !holds(requirement, claims))
        {
            Some(unmet) => Err(PolicyRefusal::ClaimRequirementNotMet(unmet.to_string())),
            None => Ok(()),
        }
    }

    /// Case-insensitive and exact: `example.com` admits neither `mail.example.com` nor
    /// `evilexample.com`.
    fn email_domain_allowed(&self, claims: &SupabaseClaims) -> bool {
        let Some((_, domain)) = claims
            .email
            .as_deref()
            .and_then(|email| email.rsplit_once('@'))
        else {
            return false;
        };
        let domain = domain.to_ascii_lowercase();
        self.rules.allowed_email_domains.contains(&domain)
    }
}

/// Whether the claim at the requirement's path equals its value. Config validation guarantees
/// the path starts at `app_metadata` (with keys below it) or names one typed claim.
fn holds(requirement: &ClaimRequirement, claims: &SupabaseClaims) -> bool {
    let Some((claim, keys)) = requirement.path.split_first() else {
        return false;
    };
    if claim == "app_metadata" {
        let Some((first, rest)) = keys.split_first() else {
            return false;
        };
        let found = claims
            .app_metadata
            .as_ref()
            .and_then(|metadata| metadata.get(first))
            .and_then(|value| rest.iter().try_fold(value, |value, key| value.get(key)));
        return found == Some(&requirement.expected);
    }
    keys.is_empty() && typed_claim(claims, claim).as_ref() == Some(&requirement.expected)
}

/// The typed claims a requirement may name besides `app_metadata` (see `RULE_CLAIMS`).
fn typed_claim(claims: &SupabaseClaims, name: &str) -> Option<Value> {
    let text = |value: &Option<String>| value.as_deref().map(Value::from);
    match name {
        "role" => text(&claims.role),
        "aal" => text(&claims.aal),
        "email" => text(&claims.email),
        "phone" => text(&claims.phone),
        "session_id" => text(&claims.session_id),
        "is_anonymous" => claims.is_anonymous.map(Value::from),
        "sub" => Some(Value::from(claims.sub.as_str())),
        "iss" => Some(Value::from(claims.iss.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(role: Option<&str>, is_anonymous: Option<bool>) -> SupabaseClaims {
        let mut value = json!({
            "sub": "u1", "exp": 1, "iss": "i", "aud": "authenticated",
        });
        if let Some(role) = role {
            value["role"] = json!(role);
        }
        if let Some(is_anonymous) = is_anonymous {
            value["is_anonymous"] = json!(is_anonymous);
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn only_signed_in_users_pass() {
        let policy = AccessPolicy::default();
        assert_eq!(policy.check(&claims(Some("authenticated"), None)), Ok(()));
        assert_eq!(
            policy.check(&claims(Some("authenticated"), Some(false))),
            Ok(())
        );
        assert_eq!(
            policy.check(&claims(Some("authenticated"), Some(true))),
            Err(PolicyRefusal::AnonymousUser)
        );
        for role in ["anon", "service_role", "supabase_admin", ""] {
            assert!(matches!(
                policy.check(&claims(Some(role), None)),
                Err(PolicyRefusal::RoleNotAllowed(_))
            ));
        }
        assert!(policy.check(&claims(None, None)).is_err());
    }

    #[test]
    fn anonymous_users_pass_when_allowed() {
        let policy = AccessPolicy {
            allow_anonymous_users: true,
            ..AccessPolicy::default()
        };
        assert_eq!(
            policy.check(&claims(Some("authenticated"), Some(true))),
            Ok(())
        );
        assert!(policy.check(&claims(Some("anon"), None)).is_err());
    }

    /// A signed-in user's claims with `patch` applied.
    fn user(patch: serde_json::Value) -> SupabaseClaims {
        let mut value = json!({
            "sub": "u1", "exp": 1, "iss": "https://abcd.supabase.co/auth/v1",
            "aud": "authenticated", "role": "authenticated", "aal": "aal1",
            "email": "ada@example.com",
        });
        for (key, field) in patch.as_object().unwrap() {
            value[key] = field.clone();
        }
        serde_json::from_value(value).unwrap()
    }

    fn policy_with(configure: impl FnOnce(&mut AccessRules)) -> AccessPolicy {
        let mut policy = AccessPolicy::default();
        configure(&mut policy.rules);
        policy
    }

    #[test]
    fn require_aal2_admits_multi_factor_sessions_only() {
        let policy = policy_with(|rules| rules.require_aal2 = true);
        assert_eq!(policy.check(&user(json!({"aal": "aal2"}))), Ok(()));
        for aal in [json!("aal1"), json!(null), json!("AAL2")] {
            let refusal = policy.check(&user(json!({ "aal": aal }))).unwrap_err();
            assert_eq!(refusal, PolicyRefusal::Aal2Required);
            assert_eq!(
                (refusal.code(), refusal.rule()),
                ("aal2_required", "REQUIRE_AAL2")
            );
        }
        assert_eq!(AccessPolicy::default().check(&user(json!({}))), Ok(()));
    }

    #[test]
    fn allowed_email_domains_match_the_whole_domain_case_insensitively() {
        let policy = policy_with(|rules| {
            rules.allowed_email_domains = vec!["example.com".into(), "example.org".into()];
        });
        for email in ["ada@example.com", "Grace@EXAMPLE.org", "a@b@example.com"] {
            assert_eq!(
                policy.check(&user(json!({ "email": email }))),
                Ok(()),
                "{email}"
            );
        }
        for email in [
            json!("ada@mail.example.com"),
            json!("ada@evilexample.com"),
            json!("ada@example.com.evil.net"),
            json!("example.com"),
            json!(""),
            json!(null),
        ] {
            assert_eq!(
                policy.check(&user(json!({ "email": email }))),
                Err(PolicyRefusal::EmailDomainNotAllowed),
                "{email}"
            );
        }
    }

    #[test]
    fn require_claims_needs_every_condition_with_json_equality() {
        let requirements = crate::config::parse_claim_requirements(
            r#"app_metadata.phone_enabled=true,app_metadata.billing.plan="pro",aal="aal2""#,
        )
        .unwrap();
        let policy = policy_with(|rules| rules.require_claims = requirements);
        let enabled = json!({"phone_enabled": true, "billing": {"plan": "pro"}});
        assert_eq!(
            policy.check(&user(json!({"app_metadata": enabled, "aal": "aal2"}))),
            Ok(())
        );
        let refusals = [
            (
                json!({"app_metadata": enabled, "aal": "aal1"}),
                "aal=\"aal2\"",
            ),
            (
                json!({"app_metadata": {"phone_enabled": "true", "billing": {"plan": "pro"}}, "aal": "aal2"}),
                "app_metadata.phone_enabled=true",
            ),
            (
                json!({"app_metadata": {"phone_enabled": true, "billing": {"plan": "free"}}, "aal": "aal2"}),
                "app_metadata.billing.plan=\"pro\"",
            ),
            (
                json!({"app_metadata": {"phone_enabled": true}, "aal": "aal2"}),
                "app_metadata.billing.plan=\"pro\"",
            ),
            (json!({"aal": "aal2"}), "app_metadata.phone_enabled=true"),
            (
                json!({"app_metadata": {"phone_enabled": true, "billing": "pro"}, "aal": "aal2"}),
                "app_metadata.billing.plan=\"pro\"",
            ),
        ];
        for (patch, unmet) in refusals {
            let refusal = policy.check(&user(patch.clone())).unwrap_err();
            assert_eq!(
                refusal,
                PolicyRefusal::ClaimRequirementNotMet(unmet.into()),
                "{patch}"
            );
            assert_eq!(refusal.code(), "claim_requirement_not_met");
            assert_eq!(refusal.rule(), "REQUIRE_CLAIMS");
        }
    }

    #[test]
    fn every_claim_a_rule_may_name_is_readable() {
        let claims = user(json!({"phone": "+15550100", "session_id": "s1", "is_anonymous": false}));
        for name in &crate::config::RULE_CLAIMS[1..] {
            assert!(typed_claim(&claims, name).is_some(), "{name}");
        }
    }
}
