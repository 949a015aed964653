//! Whose credential a request is for: a verified user, named the way their Telnyx credential is.

/// What every credential this service creates for a Supabase Auth user is named before the
/// user id: `supabase:<sub>`.
const SUPABASE_PREFIX: &str = "supabase:";

/// The holder of one telephony credential. In per_user mode its [`credential_name`] finds the
/// credential again at Telnyx, and keys every cache and shared-state entry that belongs to it.
///
/// [`credential_name`]: Holder::credential_name
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The user, namespaced by who vouches for them: `supabase:<sub>`.
    user: String,
}

impl Holder {
    /// A Supabase Auth user, by the verified token's `sub`.
    pub fn supabase_user(sub: &str) -> Self {
        Self {
            user: format!("{SUPABASE_PREFIX}{sub}"),
        }
    }

    /// The user, across everything of theirs: `supabase:<sub>`.
    pub fn user_key(&self) -> &str {
        &self.user
    }

    /// The name of the holder's credential at Telnyx.
    pub fn credential_name(&self) -> String {
        self.user.clone()
    }
}

/// The Supabase user a credential was created for, if this service named it (`prune` touches
/// no other).
pub fn owner_of(credential_name: &str) -> Option<&str> {
    credential_name
        .strip_prefix(SUPABASE_PREFIX)
        .filter(|user_id| !user_id.is_empty())
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
        assert_eq!(owner_of("supabase:"), None);
        assert_eq!(owner_of("someone-else"), None);
    }
}
