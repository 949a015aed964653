//! Whose credential a request is for: a verified user, named the way their Telnyx credential is.

use aws_lc_rs::digest::{SHA256, digest};

/// What every credential this service creates for a Supabase Auth user is named before the
/// user id: `supabase:<sub>`.
const SUPABASE_PREFIX: &str = "supabase:";

/// What the tag of a third-party issuer (`THIRD_PARTY_ISSUERS`) starts with; [`issuer_tag`]
/// adds ten hex digits.
const THIRD_PARTY_TAG_PREFIX: &str = "idp-";
/// Hex digits of SHA-256 in a tag: 40 bits, so two configured issuers never share one by chance
/// (and config validation refuses it if they did).
const TAG_HEX_DIGITS: usize = 10;

/// The holder of one telephony credential. In per_user mode its [`credential_name`] finds the
/// credential again at Telnyx, and keys every cache and shared-state entry that belongs to it.
///
/// [`credential_name`]: Holder::credential_name
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The user, namespaced by who vouches for them: `supabase:<sub>`, or `<issuer tag>:<sub>`.
    user: String,
}

impl Holder {
    /// A Supabase Auth user, by the verified token's `sub`.
    pub fn supabase_user(sub: &str) -> Self {
        Self {
            user: format!("{SUPABASE_PREFIX}{sub}"),
        }
    }

    /// A user of a third-party issuer, by its [`issuer_tag`] and the verified token's `sub`:
    /// two issuers may hand out the same `sub`, and each user gets a credential of their own.
    pub fn third_party(tag: &str, sub: &str) -> Self {
        Self {
            user: format!("{tag}:{sub}"),
        }
    }

    /// The user, across everything of theirs: `supabase:<sub>` or `<issuer tag>:<sub>`.
    pub fn user_key(&self) -> &str {
        &self.user
    }

    /// The name of the holder's credential at Telnyx.
    pub fn credential_name(&self) -> String {
        self.user.clone()
    }
}

/// The short, stable name of a third-party issuer in credential names, metrics and logs:
/// `idp-` and the first ten hex digits of the SHA-256 of the issuer exactly as its tokens'
/// `iss` carries it.
///
/// Derived, not chosen: a tag a person picks could by mistake be given to a second issuer,
/// whose users would then reach the first one's credentials wherever a `sub` repeats. An issuer
/// whose URL changes (a new custom domain) is a new namespace of user ids, and gets a new tag.
/// Telnyx sets no length or character limit on a credential's `name` (team-telnyx/openapi
/// `spec3.yml`, `TelephonyCredentialCreateRequest`), and the tag keeps names short.
pub fn issuer_tag(issuer: &str) -> String {
    let hash = digest(&SHA256, issuer.as_bytes());
    let hex: String = hash
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{THIRD_PARTY_TAG_PREFIX}{}", &hex[..TAG_HEX_DIGITS])
}

/// The Supabase user a credential was created for, if this service named it for one (`prune`
/// asks Supabase about no other).
pub fn owner_of(credential_name: &str) -> Option<&str> {
    credential_name
        .strip_prefix(SUPABASE_PREFIX)
        .filter(|user_id| !user_id.is_empty())
}

/// Whether this service named the credential for a user of a third-party issuer
/// (`<issuer tag>:<sub>`), whether or not that issuer is still configured.
pub fn is_third_party_name(credential_name: &str) -> bool {
    let Some((tag, sub)) = credential_name.split_once(':') else {
        return false;
    };
    let Some(hex) = tag.strip_prefix(THIRD_PARTY_TAG_PREFIX) else {
        return false;
    };
    hex.len() == TAG_HEX_DIGITS
        && hex
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        && !sub.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supabase_user_keeps_the_name_their_credential_always_had() {
        let holder = Holder::supabase_user("6f1c0b5e-0000-4000-8000-000000000001");
        assert_eq!(
            holder.credential_name(),
            "supabase:6f1c0b5e-0000-4000-8000-000000000001"
        );
        assert_eq!(
            owner_of(&holder.credential_name()),
            Some("6f1c0b5e-0000-4000-8000-000000000001")
        );
        assert!(!is_third_party_name(&holder.credential_name()));
        assert_eq!(owner_of("supabase:"), None);
        assert_eq!(owner_of("someone-else"), None);
    }

    #[test]
    fn the_same_sub_from_two_issuers_is_two_holders() {
        let clerk = issuer_tag("https://clerk.example.com");
        let auth0 = issuer_tag("https://example.us.auth0.com/");
        assert_ne!(clerk, auth0);
        assert_eq!(clerk, issuer_tag("https://clerk.example.com"), "stable");
        assert_ne!(
            clerk,
            issuer_tag("https://clerk.example.com/"),
            "the exact iss"
        );
        assert!(clerk.starts_with("idp-") && clerk.len() == 14, "{clerk}");
        let a = Holder::third_party(&clerk, "user_2abc");
        let b = Holder::third_party(&auth0, "user_2abc");
        assert_ne!(a, b);
        assert_ne!(a.user_key(), Holder::supabase_user("user_2abc").user_key());
        assert_eq!(a.credential_name(), format!("{clerk}:user_2abc"));
        assert!(is_third_party_name(&a.credential_name()));
        assert_eq!(owner_of(&a.credential_name()), None, "not a Supabase user");
    }

    #[test]
    fn only_names_shaped_like_ours_are_third_party() {
        let auth0_sub = format!("{}:auth0|64f1c2", issuer_tag("https://x.auth0.com/"));
        assert!(is_third_party_name(&auth0_sub));
        for name in [
            "idp-0123456789:",
            "idp-012345678:u",
            "idp-0123456789a:u",
            "idp-ABCDEF0123:u",
            "idp-0123456789",
            "my-credential",
            "supabase:u",
        ] {
            assert!(!is_third_party_name(name), "{name}");
        }
    }
}
