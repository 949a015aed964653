//! Who may have phone credentials once their token has verified: signed-in users only.
//!
//! The project's `anon` and `service_role` API keys are JWTs signed with the same secret as user
//! tokens, so a valid signature alone proves nothing about a user; the `role` claim does.

use super::SupabaseClaims;

/// Why a verified user is refused (403). The `code` is part of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("the token belongs to an anonymous sign-in and ALLOW_ANONYMOUS_USERS is off")]
    AnonymousUser,
    #[error("the token's role is {0:?}, not \"authenticated\"")]
    RoleNotAllowed(String),
}

impl PolicyRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            PolicyRefusal::AnonymousUser => "anonymous_user",
            PolicyRefusal::RoleNotAllowed(_) => "role_not_allowed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub allow_anonymous_users: bool,
}

impl AccessPolicy {
    pub fn check(&self, claims: &SupabaseClaims) -> Result<(), PolicyRefusal> {
        let role = claims.role.as_deref().unwrap_or("");
        if role != "authenticated" {
            return Err(PolicyRefusal::RoleNotAllowed(role.to_owned()));
        }
        if claims.is_anonymous == Some(true) && !self.allow_anonymous_users {
            return Err(PolicyRefusal::AnonymousUser);
        }
        Ok(())
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
        let policy = AccessPolicy {
            allow_anonymous_users: false,
        };
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
        };
        assert_eq!(
            policy.check(&claims(Some("authenticated"), Some(true))),
            Ok(())
        );
        assert!(policy.check(&claims(Some("anon"), None)).is_err());
    }
}
