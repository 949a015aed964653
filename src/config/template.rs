//! `.env.example` as a template: its placeholders (`your-project-ref`, `change-me`, …) stand for
//! the operator's own values, and a value still holding one is refused, so a copied template
//! cannot pass for a configuration.
//!
//! The placeholders are read from the template itself, compiled in, so the words refused are
//! always the words it holds: a placeholder is a word of a value that starts with `your-` or is
//! `change-me`. The deploy examples use the same words (a test checks that).

use std::sync::LazyLock;

/// The template, as shipped in the repository.
pub const ENV_EXAMPLE: &str = include_str!("../../.env.example");

static PLACEHOLDERS: LazyLock<Vec<&'static str>> = LazyLock::new(|| placeholders_in(ENV_EXAMPLE));

/// Every placeholder word in the values of a `.env`-style `template`, each once, in order.
pub fn placeholders_in(template: &'static str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for line in template.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((_, value)) = line.split_once('=') else {
            continue;
        };
        for word in value.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if is_placeholder_word(word) && !found.contains(&word) {
                found.push(word);
            }
        }
    }
    found
}

/// The shape of a placeholder word, as the template writes them.
fn is_placeholder_word(word: &str) -> bool {
    let word = word.to_ascii_lowercase();
    (word.len() > "your-".len() && word.starts_with("your-")) || word == "change-me"
}

/// The template's placeholder that `value` still holds, if any (ignoring case, anywhere in it:
/// `KEYchange-me` and `https://your-project-ref.supabase.co/` are refused too).
pub fn placeholder_in(value: &str) -> Option<&'static str> {
    let value = value.to_ascii_lowercase();
    PLACEHOLDERS
        .iter()
        .copied()
        .find(|placeholder| value.contains(&placeholder.to_ascii_lowercase()))
}

/// What to put in place of a placeholder, for the variables the template (or a deploy example)
/// gives one.
pub fn what_to_set(variable: &str) -> &'static str {
    match variable {
        "SUPABASE_URL" => {
            "set it to your project's URL, https://<project-ref>.supabase.co (Supabase dashboard → Project Settings → API)"
        }
        "SUPABASE_JWT_SECRET" => {
            "set it to the project's legacy JWT secret (Supabase dashboard → Project Settings → JWT Keys), or leave it empty to accept only the asymmetric signing keys"
        }
        "SUPABASE_ANON_KEY" => {
            "set it to the project's anon (publishable) key (Supabase dashboard → Project Settings → API Keys)"
        }
        "TELNYX_WEBRTC_USERNAME" => {
            "set it to the SIP username of your credential connection (Mission Control portal → Call Connections → your SIP credential connection → Authentication), or set CREDENTIAL_MODE=per_user"
        }
        "TELNYX_WEBRTC_PASSWORD" => {
            "set it to the SIP password of your credential connection (the same page as its username)"
        }
        "TELNYX_API_KEY" => {
            "set it to a Telnyx API key (Mission Control portal → API Keys → Create API Key)"
        }
        "TELNYX_WEBRTC_CONNECTION_ID" => {
            "set it to the ID of your SIP credential connection (Mission Control portal → Call Connections)"
        }
        "REDIS_URL" => {
            "set it to your Redis's URL, redis://… or rediss://… with its password, or leave it empty to keep each replica's state in its own memory"
        }
        "TELNYX_TURN_USERNAME" | "TELNYX_TURN_PASSWORD" => {
            "set it to your own TURN credentials, or leave both TELNYX_TURN_USERNAME and TELNYX_TURN_PASSWORD empty"
        }
        _ => "replace it with your own value (.env.example says what it is)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_words_of_values_never_of_comments() {
        let template = "# your-comment is not a value\nA=https://your-ref.example.com\nB=change-me\nC=KEYchange-me\nD=plain\nE=your-\n";
        assert_eq!(placeholders_in(template), ["your-ref", "change-me"]);
    }

    #[test]
    fn the_template_holds_the_placeholders_people_copy() {
        for expected in ["your-project-ref", "change-me"] {
            assert!(PLACEHOLDERS.contains(&expected), "{PLACEHOLDERS:?}");
        }
        assert_eq!(
            placeholder_in("https://Your-Project-Ref.supabase.co/"),
            Some("your-project-ref")
        );
        assert_eq!(placeholder_in("KEYchange-me"), Some("change-me"));
        assert_eq!(placeholder_in("https://abcd.supabase.co"), None);
    }
}
