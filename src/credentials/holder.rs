//! Whose credential a request is for: a verified user, and optionally one of their devices,
//! named the way their Telnyx credential is.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};

use crate::hex::push_hex;

/// What every credential this service creates for a Supabase Auth user is named before the
/// user id: `supabase:<sub>`.
const SUPABASE_PREFIX: &str = "supabase:";

/// Between the user and the device in a device's credential name: `<user key>:<device_id>`. A
/// Supabase `sub` is a UUID, and a [`DeviceId`] has no colon, so a Supabase device's name reads
/// back one way; a third-party `sub` with a colon in it could read as another user's device only
/// if its issuer handed out both `x` and `x:<device_id>`, which no issuer lets a user choose.
const DEVICE_SEPARATOR: char = ':';

/// Before the hash in a user's tag at Telnyx.
const TAG_PREFIX: &str = "twc-";

/// Hex digits of SHA-256 in a user's tag: 128 bits, no collision in any real number of users.
const TAG_HASH_HEX: usize = 32;

/// What the tag of a third-party issuer (`THIRD_PARTY_ISSUERS`) starts with; [`issuer_tag`]
/// adds ten hex digits.
const THIRD_PARTY_TAG_PREFIX: &str = "idp-";
/// Hex digits of SHA-256 in an issuer's tag: 40 bits, so two configured issuers never share one
/// by chance (and config validation refuses it if they did).
const TAG_HEX_DIGITS: usize = 10;

/// The holder of one telephony credential. In per_user mode its [`credential_name`] finds the
/// credential again at Telnyx, and keys every cache and shared-state entry that belongs to it;
/// its [`user_key`] and [`tag`] are the user's, whichever device asks.
///
/// [`credential_name`]: Holder::credential_name
/// [`user_key`]: Holder::user_key
/// [`tag`]: Holder::tag
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The user, namespaced by who vouches for them: `supabase:<sub>`, or `<issuer tag>:<sub>`.
    user: String,
    /// `None` for the user's default credential, the one frontends without a device id get.
    device: Option<DeviceId>,
}

impl Holder {
    /// A Supabase Auth user's default credential, by the verified token's `sub`.
    pub fn supabase_user(sub: &str) -> Self {
        Self {
            user: format!("{SUPABASE_PREFIX}{sub}"),
            device: None,
        }
    }

    /// A user of a third-party issuer, by its [`issuer_tag`] and the verified token's `sub`:
    /// two issuers may hand out the same `sub`, and each user gets a credential of their own.
    pub fn third_party(tag: &str, sub: &str) -> Self {
        Self {
            user: format!("{tag}:{sub}"),
            device: None,
        }
    }

    /// The same user's credential for `device` (`None`: their default one).
    pub fn with_device(self, device: Option<DeviceId>) -> Self {
        Self { device, ..self }
    }

    /// The user, across everything of theirs: `supabase:<sub>` or `<issuer tag>:<sub>`.
    pub fn user_key(&self) -> &str {
        &self.user
    }

    /// The device this credential is for; `None` for the user's default credential.
    pub fn device(&self) -> Option<&DeviceId> {
        self.device.as_ref()
    }

    /// The user's default credential: the holder without its device.
    pub fn user(&self) -> Holder {
        Holder {
            user: self.user.clone(),
            device: None,
        }
    }

    /// The name of the holder's credential at Telnyx: the user key (`supabase:<sub>`,
    /// `<issuer tag>:<sub>`), and `:<device_id>` after it for a device's.
    pub fn credential_name(&self) -> String {
        match &self.device {
            None => self.user.clone(),
            Some(device) => format!("{}{DEVICE_SEPARATOR}{}", self.user, device.0),
        }
    }

    /// The tag every credential of the user carries at Telnyx, so that one `filter[tag]` lists
    /// all of them (team-telnyx/openapi `spec3.yml`: `tag` on `TelephonyCredentialCreateRequest`,
    /// "a single tag can hold at maximum 1000 credentials"; `filter[tag]`, the `OptionalTag`
    /// parameter, on `findTelephonyCredentials`): `twc-` and the first 32 hex digits of the
    /// SHA-256 of [`user_key`](Holder::user_key). A hash, because the spec gives a tag no
    /// character set or length while a user key of another issuer may hold anything; an
    /// operator finds a user's tag with `printf %s 'supabase:<sub>' | sha256sum | cut -c1-32`.
    pub fn tag(&self) -> String {
        let hash = digest(&SHA256, self.user.as_bytes());
        let mut tag = String::with_capacity(TAG_PREFIX.len() + TAG_HASH_HEX);
        tag.push_str(TAG_PREFIX);
        push_hex(&mut tag, &hash.as_ref()[..TAG_HASH_HEX / 2]);
        tag
    }

    /// The holder of the credential named `name`, if it is one of this user's: their default
    /// credential or one of their devices'. A listing by the user's tag is checked with it, so
    /// that a looser match at Telnyx cannot hand one user another's credential.
    pub fn sibling_named(&self, name: &str) -> Option<Holder> {
        let rest = name.strip_prefix(self.user.as_str())?;
        let device = match rest.strip_prefix(DEVICE_SEPARATOR) {
            None if rest.is_empty() => None,
            None => return None,
            Some(device) => Some(DeviceId::parse(device).ok()?),
        };
        Some(Holder {
            user: self.user.clone(),
            device,
        })
    }
}

/// An opaque id a browser makes once and keeps (`device_id`): 1-64 characters of
/// `[A-Za-z0-9_-]`, so it fits in a credential name, a log field and a URL as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

/// The longest `device_id` accepted; a `crypto.randomUUID()` is 36.
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// A `device_id` outside the contract; the value is not kept, it may be anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a device_id is 1 to {MAX_DEVICE_ID_LEN} characters of A-Z, a-z, 0-9, _ and -")]
pub struct InvalidDeviceId;

impl DeviceId {
    pub fn parse(value: &str) -> Result<Self, InvalidDeviceId> {
        let valid = (1..=MAX_DEVICE_ID_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidDeviceId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    let mut tag = String::from(THIRD_PARTY_TAG_PREFIX);
    push_hex(&mut tag, &hash.as_ref()[..TAG_HEX_DIGITS.div_ceil(2)]);
    tag.truncate(THIRD_PARTY_TAG_PREFIX.len() + TAG_HEX_DIGITS);
    tag
}

/// The Supabase user a credential was created for, if this service named it for one (`prune`
/// asks Supabase about no other): `supabase:<sub>` or `supabase:<sub>:<device_id>` give `<sub>`.
pub fn owner_of(credential_name: &str) -> Option<&str> {
    let rest = credential_name.strip_prefix(SUPABASE_PREFIX)?;
    let (user_id, device) = match rest.split_once(DEVICE_SEPARATOR) {
        Some((user_id, device)) => (user_id, Some(device)),
        None => (rest, None),
    };
    let device_is_ours = device.is_none_or(|device| DeviceId::parse(device).is_ok());
    (!user_id.is_empty() && device_is_ours).then_some(user_id)
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

    const SUB: &str = "6f1c0b5e-0000-4000-8000-000000000001";

    #[test]
    fn a_supabase_user_keeps_the_name_their_credential_always_had() {
        let holder = Holder::supabase_user(SUB);
        assert_eq!(holder.credential_name(), format!("supabase:{SUB}"));
        assert_eq!(owner_of(&holder.credential_name()), Some(SUB));
        assert!(!is_third_party_name(&holder.credential_name()));
        assert_eq!(owner_of("supabase:"), None);
        assert_eq!(owner_of("someone-else"), None);
    }

    #[test]
    fn a_device_is_named_after_its_user_and_read_back_to_them() {
        let user = Holder::supabase_user(SUB);
        let phone = user
            .clone()
            .with_device(Some(DeviceId::parse("phone-1").unwrap()));
        assert_eq!(phone.credential_name(), format!("supabase:{SUB}:phone-1"));
        assert_eq!(phone.user_key(), user.user_key());
        assert_eq!(phone.tag(), user.tag(), "one tag per user");
        assert_eq!(phone.user(), user);
        assert_eq!(owner_of(&phone.credential_name()), Some(SUB));
        assert_eq!(owner_of(&format!("supabase:{SUB}:no good")), None);

        assert_eq!(
            user.sibling_named(&phone.credential_name()),
            Some(phone.clone())
        );
        assert_eq!(
            user.sibling_named(&user.credential_name()),
            Some(user.clone())
        );
        let other = Holder::supabase_user("6f1c0b5e-0000-4000-8000-000000000002");
        assert_eq!(user.sibling_named(&other.credential_name()), None);
        assert_eq!(user.sibling_named(&format!("supabase:{SUB}x")), None);
        assert_eq!(user.sibling_named(&format!("supabase:{SUB}:")), None);
        assert_ne!(other.tag(), user.tag());
    }

    #[test]
    fn the_tag_is_the_hash_an_operator_can_work_out_in_a_shell() {
        // printf %s 'supabase:6f1c0b5e-0000-4000-8000-000000000001' | sha256sum | cut -c1-32
        let tag = Holder::supabase_user(SUB).tag();
        assert_eq!(tag.len(), "twc-".len() + 32);
        assert!(tag.starts_with("twc-"), "{tag}");
        assert!(!tag.contains(SUB));
        let expected = digest(&SHA256, format!("supabase:{SUB}").as_bytes());
        let hex: String = expected.as_ref()[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(tag, format!("twc-{hex}"));
    }

    #[test]
    fn device_ids_are_short_opaque_and_url_safe() {
        for good in [
            "a",
            "A-z_09",
            &"x".repeat(64),
            "4c8e6a1e-0b7c-4a55-9d7e-3f1f2a9c0d11",
        ] {
            assert_eq!(DeviceId::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a:b",
            "é",
            "a/b",
            "a.b",
            "a%20b",
            "a\n",
        ] {
            assert_eq!(DeviceId::parse(bad), Err(InvalidDeviceId), "{bad:?}");
        }
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

    #[test]
    fn a_third_party_users_devices_are_theirs_and_named_like_theirs() {
        let tag = issuer_tag("https://clerk.example.com");
        let user = Holder::third_party(&tag, "user_2abc");
        let phone = user
            .clone()
            .with_device(Some(DeviceId::parse("phone").unwrap()));
        assert_eq!(phone.credential_name(), format!("{tag}:user_2abc:phone"));
        assert!(is_third_party_name(&phone.credential_name()));
        assert_eq!(owner_of(&phone.credential_name()), None);
        assert_eq!(user.sibling_named(&phone.credential_name()), Some(phone));
        assert_ne!(user.tag(), Holder::supabase_user("user_2abc").tag());
    }
}
