//! `demo` mode: a throwaway HS256 secret, a made-up SIP identity and a ready-to-paste token, so
//! the service can be tried with no Supabase project and no Telnyx account.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::config::{DEMO_ISSUER, DemoSecrets, EXAMPLE_PAGE_ORIGINS};

/// How long the printed token stays valid.
pub const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Fresh random secrets for one demo run. `TELNYX_WEBRTC_USERNAME`/`_PASSWORD`, when set, still
/// win (see `Config::demo`), so a real SIP identity can be tried too.
pub fn generate_secrets() -> DemoSecrets {
    DemoSecrets {
        jwt_secret: SecretString::from(random_hex(32)),
        sip_username: format!("demo{}", random_hex(4)),
        sip_password: SecretString::from(random_hex(12)),
    }
}

/// A token shaped like a Supabase access token for a signed-in user, signed with the demo secret.
pub fn mint_token(secret: &SecretString, now: SystemTime) -> String {
    let issued_at = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = json!({
        "iss": DEMO_ISSUER,
        "sub": uuid::Uuid::new_v4().to_string(),
        "aud": "authenticated",
        "exp": issued_at + DEMO_TOKEN_LIFETIME.as_secs(),
        "iat": issued_at,
        "email": "demo@example.com",
        "phone": "",
        "role": "authenticated",
        "aal": "aal1",
        "session_id": uuid::Uuid::new_v4().to_string(),
        "is_anonymous": false,
        "app_metadata": { "provider": "email", "providers": ["email"] },
        "user_metadata": {},
    });
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .expect("HS256 signing cannot fail")
}

/// What `demo` prints before it serves: how to call it, and from which browser origins.
/// Printed to stdout, not logged: the token is the point of the demo, and it dies with the
/// process.
pub fn instructions(address: SocketAddr, token: &str, origins: &[String]) -> String {
    let host = match address.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let base = format!("http://{host}:{}", address.port());
    format!(
        "\ntelnyx-webrtc-credentials demo: a throwaway HS256 secret and SIP identity, no Supabase needed.\n\
         This token is valid for one hour; restart demo for a new one.\n\n\
         curl -H \"Authorization: Bearer {token}\" {base}/credentials\n\n\
         The browser phone (in examples/browser-phone, run `npm ci && npm run serve` first):\n\n\
         {page}/#api={base}&access_token={token}\n\n\
         Browsers may call it from {origins}.\n\
         Stop with Ctrl-C.\n",
        page = EXAMPLE_PAGE_ORIGINS[0],
        origins = origins.join(", "),
    )
}

/// Where the settings demo read came from, by name only (values may be secrets): printed at
/// start-up, since a `.env` left from an earlier set-up changes what demo does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sources {
    pub dot_env: Option<PathBuf>,
    /// Taken from `.env`.
    pub from_dot_env: Vec<String>,
    /// Taken from the process environment.
    pub from_environment: Vec<String>,
    /// Ignored: they still hold `.env.example`'s placeholders.
    pub placeholders: Vec<String>,
}

impl Sources {
    /// Sorts the variables demo `read` (each with whether it held a placeholder) by where they
    /// came from: `.env` set the names in `set_by_dot_env`.
    pub fn sort(
        dot_env: Option<PathBuf>,
        set_by_dot_env: &[String],
        read: Vec<(String, bool)>,
    ) -> Self {
        let mut sources = Self {
            dot_env,
            ..Self::default()
        };
        for (name, placeholder) in read {
            let list = if placeholder {
                &mut sources.placeholders
            } else if set_by_dot_env.contains(&name) {
                &mut sources.from_dot_env
            } else {
                &mut sources.from_environment
            };
            if !list.contains(&name) {
                list.push(name);
            }
        }
        for list in [
            &mut sources.from_dot_env,
            &mut sources.from_environment,
            &mut sources.placeholders,
        ] {
            list.sort_unstable();
        }
        sources
    }
}

impl fmt::Display for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |list: &[String]| list.join(", ");
        match &self.dot_env {
            None => write!(f, "demo: no .env file")?,
            Some(path) if self.from_dot_env.is_empty() => {
                write!(f, "demo: took nothing from {}", path.display())?
            }
            Some(path) => write!(
                f,
                "demo: took {} from {}",
                names(&self.from_dot_env),
                path.display()
            )?,
        }
        if !self.from_environment.is_empty() {
            write!(
                f,
                "; took {} from the environment",
                names(&self.from_environment)
            )?;
        }
        if !self.placeholders.is_empty() {
            write!(
                f,
                "; ignored {} (still .env.example's placeholders)",
                names(&self.placeholders)
            )?;
        }
        write!(f, ".")
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system provides randomness");
    crate::hex::hex(&buffer)
}
