//! `demo` mode: a throwaway HS256 secret, a made-up SIP identity and a ready-to-paste token, so
//! the service can be tried with no Supabase project and no Telnyx account.

use std::net::SocketAddr;
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

/// What `demo` prints before it serves: how to call it. Printed to stdout, not logged: the
/// token is the point of the demo, and it dies with the process.
pub fn instructions(address: SocketAddr, token: &str) -> String {
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
         Stop with Ctrl-C.\n",
        page = EXAMPLE_PAGE_ORIGINS[0],
    )
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system provides randomness");
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}
