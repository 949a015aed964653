//! Signing keys and access tokens shaped like Supabase's: the project's ES256, RS256 and
//! EdDSA keys, the legacy HS256 secret, and an attacker's key the JWKS never lists.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::JWT_SECRET;

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private signing key and the public JWK Supabase would publish for it.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub public_jwk: Value,
    /// The public key as PEM (SubjectPublicKeyInfo), for algorithm-confusion attacks.
    pub public_pem: String,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let spki = pair.public_key().as_der().unwrap();
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_ref()),
            spki.as_ref(),
        )
    }

    pub fn rs256(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref());
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_der(pkcs1),
            spki.as_ref(),
        )
    }

    pub fn eddsa(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let spki = pair.public_key().as_der().unwrap();
        Self::new(
            kid,
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(der.as_ref()),
            spki.as_ref(),
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey, spki: &[u8]) -> Self {
        let mut public_jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        public_jwk["kid"] = json!(kid);
        public_jwk["use"] = json!("sig");
        public_jwk["key_ops"] = json!(["verify"]);
        let body = STANDARD.encode(spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            public_jwk,
            public_pem,
        }
    }

    /// Signs `claims` the way Supabase does: `alg`, `kid` and `typ` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(header, claims)
    }

    pub fn sign_with_header(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// PKCS#8 wraps an RSA key's PKCS#1 `RSAPrivateKey` in a fixed 26-byte prefix for 2048-bit keys.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> &[u8] {
    const RSA_ALGORITHM_ID: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    assert_eq!(&pkcs8[4..7], &[0x02, 0x01, 0x00], "PKCS#8 version");
    assert_eq!(&pkcs8[7..22], &RSA_ALGORITHM_ID, "rsaEncryption");
    assert_eq!(&pkcs8[22..24], &[0x04, 0x82], "OCTET STRING");
    &pkcs8[26..]
}

/// The project's keys (made once per test binary: RSA key generation is slow), plus an
/// attacker's key the JWKS never lists.
pub struct Keys {
    pub es256: TestKey,
    pub rs256: TestKey,
    pub eddsa: TestKey,
    pub attacker: TestKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        es256: TestKey::es256("es256-key-1"),
        rs256: TestKey::rs256("rs256-key-1"),
        eddsa: TestKey::eddsa("ed25519-key-1"),
        attacker: TestKey::es256("es256-key-1"),
    })
}

/// A UUID that stands for `name` (`ada` → always the same id): Supabase ids users and sessions
/// by UUID, and its `/auth/v1/user` refuses a token whose `sub` is not one.
pub fn uuid_for(name: &str) -> String {
    // FNV-1a: stable across runs, which is all that is needed here.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        hash >> 32,
        (hash >> 16) & 0xffff,
        hash & 0xffff_ffff_ffff
    )
}

/// Signs with the legacy shared secret, with the `kid` Supabase gives it.
pub fn sign_hs256(claims: &Value) -> String {
    sign_hs256_with(JWT_SECRET.as_bytes(), claims)
}

pub fn sign_hs256_with(secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("legacy-hs256".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A token assembled by hand from raw JSON and signature bytes, for shapes no library makes.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(claims.to_string()),
        b64(signature)
    )
}

/// The claims of a signed-in user's access token, as Supabase Auth issues them.
pub fn user_claims(issuer: &str) -> Value {
    let now = now_secs();
    json!({
        "iss": issuer,
        "sub": "8d2f54a0-6c3b-4a8e-9f1d-2b7c0e5a9d41",
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": "ada@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"email_verified": true},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": "4f1c2b7e-3a9d-4e6f-8b0c-1d2e3f4a5b6c",
        "is_anonymous": false,
    })
}
