//! `ADMIN_API_TOKEN`: the token the app's backend sends to `/admin/…` (the user-to-devices
//! lookup its inbound-call webhook needs). Unset, no admin route is served at all.

use secrecy::SecretString;

use super::env::Env;

/// At least this many characters: a token the backend shares with nobody else, too long to
/// guess in any number of requests (`openssl rand -hex 32` gives 64).
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

const HINT: &str = "make a token of your own, such as the output of openssl rand -hex 32";

pub(super) fn read(env: &mut Env<impl Fn(&str) -> Option<String>>) -> Option<SecretString> {
    env.optional_with("ADMIN_API_TOKEN", parse_admin_token)
}

/// No message repeats the value: it is a secret.
fn parse_admin_token(value: &str) -> Result<SecretString, String> {
    if value.chars().count() < MIN_ADMIN_TOKEN_LEN {
        return Err(format!(
            "is too short ({} characters; at least {MIN_ADMIN_TOKEN_LEN}): {HINT}",
            value.chars().count()
        ));
    }
    // A Supabase key or token is held by others (the anon key by every browser): as the admin
    // token it would open the admin route to them.
    let jwt_like = value.starts_with("eyJ") && value.split('.').count() == 3;
    if jwt_like || value.starts_with("sb_publishable_") || value.starts_with("sb_secret_") {
        return Err(format!(
            "looks like a Supabase key or token, which others hold: {HINT}"
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "has spaces or control characters, which an Authorization header cannot carry as they are: {HINT}"
        ));
    }
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_shared_or_unsendable_tokens_are_refused_without_being_repeated() {
        let good = "3f9a0c1e7b2d4f6a8c0e1b3d5f7a9c0e";
        assert!(parse_admin_token(good).is_ok());
        for bad in [
            "short-secret-1234",
            "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
            "sb_publishable_0123456789abcdef0123456789abcdef",
            "sb_secret_0123456789abcdef0123456789abcdef",
            "0123456789abcdef 0123456789abcdef",
        ] {
            let problem = parse_admin_token(bad).err().unwrap();
            assert!(!problem.contains(bad), "{problem}");
            assert!(problem.contains("openssl rand -hex 32"), "{problem}");
        }
    }
}
