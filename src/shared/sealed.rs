//! Values that are secrets, sealed before they reach Redis: AES-256-GCM (aws-lc-rs) with a
//! random 96-bit nonce per value, under a key that HKDF-SHA256 derives from a secret every
//! replica already holds, each value bound to the name of its key and to a context.
//!
//! A value that does not open (another key after a rotation, a value moved to another key, a
//! context that moved on, bytes changed in Redis) is indistinguishable from no value at all, and
//! every caller treats it so. Why the key is derived, and from what, is in docs/security.md.

use aws_lc_rs::aead::{AES_256_GCM, Aad, MAX_TAG_LEN, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use secrecy::zeroize::Zeroizing;

/// HKDF's salt: fixed, naming this service, so that the same secret used by another program
/// with HKDF yields other keys.
const SALT: &[u8] = b"telnyx-webrtc-credentials";

pub struct Sealer {
    key: RandomizedNonceKey,
}

impl Sealer {
    /// The key for `purpose` (HKDF's `info`: one secret never gives two uses the same key),
    /// derived from `secret`, a high-entropy secret such as an API key.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let okm_len = &AES_256_GCM;
        let info = [purpose.as_bytes()];
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
        let okm = prk
            .expand(&info, okm_len)
            .expect("32 bytes are within HKDF-SHA256's output limit");
        let mut key = Zeroizing::new([0u8; 32]);
        okm.fill(key.as_mut())
            .expect("the buffer is the length asked for");
        Self {
            key: RandomizedNonceKey::new(&AES_256_GCM, key.as_ref())
                .expect("32 bytes make an AES-256 key"),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag`. The key's `name` and the `context` are authenticated, not
    /// stored: the value opens only where it was stored, in the same context.
    pub fn seal(&self, name: &str, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut in_out = Zeroizing::new(plaintext.to_vec());
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(associated_data(name, context)), &mut *in_out)
            .expect("AES-GCM seals anything shorter than 64 GiB");
        let nonce: &[u8; NONCE_LEN] = nonce.as_ref();
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce);
        sealed.extend_from_slice(&in_out);
        sealed
    }

    /// The plaintext, or `None` when the value does not open here (see the module's doc).
    pub fn open(&self, name: &str, context: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + MAX_TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let opened = self
            .key
            .open_in_place(
                nonce,
                Aad::from(associated_data(name, context)),
                &mut in_out,
            )
            .ok()?
            .len();
        in_out.truncate(opened);
        Some(in_out)
    }
}

/// The name and the context, the first length-prefixed so that no two pairs read alike.
fn associated_data(name: &str, context: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(8 + name.len() + context.len());
    data.extend_from_slice(&(name.len() as u64).to_be_bytes());
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(context);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_its_name_and_its_context() {
        let sealer = Sealer::derive(b"KEY0123-the-api-key", "twc:v1 test");
        let sealed = sealer.seal("twc:v1:token:ab", b"gen-1", b"the login token");
        assert!(
            !sealed
                .windows(b"login token".len())
                .any(|window| window == b"login token")
        );
        let opened = sealer.open("twc:v1:token:ab", b"gen-1", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"the login token");

        assert!(sealer.open("twc:v1:token:cd", b"gen-1", &sealed).is_none());
        assert!(sealer.open("twc:v1:token:ab", b"gen-2", &sealed).is_none());
        let rotated = Sealer::derive(b"KEY0456-a-new-api-key", "twc:v1 test");
        assert!(rotated.open("twc:v1:token:ab", b"gen-1", &sealed).is_none());
        let other_use = Sealer::derive(b"KEY0123-the-api-key", "twc:v1 other");
        assert!(
            other_use
                .open("twc:v1:token:ab", b"gen-1", &sealed)
                .is_none()
        );

        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(sealer.open("twc:v1:token:ab", b"gen-1", &changed).is_none());
        assert!(
            sealer
                .open("twc:v1:token:ab", b"gen-1", &sealed[..20])
                .is_none()
        );
        assert_ne!(
            sealer.seal("twc:v1:token:ab", b"gen-1", b"the login token"),
            sealed,
            "a fresh nonce each time"
        );
    }
}
