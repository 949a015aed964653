//! Reading one key of a JWKS: which algorithm it verifies, and whether it may be used at all.
//! The algorithm comes from the key (its type and curve, or its declared `alg` when that fits
//! the type), never from a token.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Turns one JWKS entry into a verification key, or says why not.
///
/// `Ok(None)` is a key we deliberately ignore: symmetric (`oct`) keys, which a public JWKS must
/// not hold and which would let a public value act as an HMAC secret, and encryption keys.
pub(super) fn usable_key(
    raw: serde_json::Value,
) -> Result<Option<(String, Algorithm, DecodingKey)>, String> {
    let jwk: Jwk =
        serde_json::from_value(raw).map_err(|error| format!("unreadable key: {error}"))?;
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return Ok(None);
    }
    if matches!(jwk.common.public_key_use, Some(ref key_use) if *key_use != PublicKeyUse::Signature)
    {
        return Ok(None);
    }
    let kid = jwk
        .common
        .key_id
        .clone()
        .ok_or("key without a kid (tokens name their key by kid)")?;
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(format!("kid {kid}: unsupported elliptic curve")),
        },
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return Err(format!("kid {kid}: unsupported key type")),
    };
    let algorithm = match jwk.common.key_algorithm {
        None => implied,
        Some(declared) => {
            let declared = algorithm_of(declared)
                .ok_or_else(|| format!("kid {kid}: unsupported alg {declared:?}"))?;
            let same_family = declared.family() == implied.family();
            let same_curve =
                implied.family() != jsonwebtoken::AlgorithmFamily::Ec || declared == implied;
            if !(same_family && same_curve) {
                return Err(format!(
                    "kid {kid}: alg {declared:?} does not fit the key type"
                ));
            }
            declared
        }
    };
    let decoding_key =
        DecodingKey::from_jwk(&jwk).map_err(|error| format!("kid {kid}: {error}"))?;
    Ok(Some((kid, algorithm, decoding_key)))
}

/// The signature algorithms a JWKS key may declare.
fn algorithm_of(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alg_of(key: serde_json::Value) -> Result<Option<Algorithm>, String> {
        usable_key(key).map(|found| found.map(|(_, algorithm, _)| algorithm))
    }

    // A P-256 public key (RFC 7515 appendix A.3).
    fn p256(extra: serde_json::Value) -> serde_json::Value {
        let mut key = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec-1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        for (name, value) in extra.as_object().unwrap() {
            key[name] = value.clone();
        }
        key
    }

    #[test]
    fn the_algorithm_comes_from_the_key() {
        assert_eq!(alg_of(p256(json!({}))).unwrap(), Some(Algorithm::ES256));
        assert_eq!(
            alg_of(p256(json!({"alg": "ES256", "use": "sig"}))).unwrap(),
            Some(Algorithm::ES256)
        );
        assert!(alg_of(p256(json!({"alg": "RS256"}))).is_err());
        assert!(alg_of(p256(json!({"alg": "ES384"}))).is_err());
        assert!(alg_of(p256(json!({"alg": "HS256"}))).is_err());
    }

    #[test]
    fn symmetric_and_encryption_keys_are_ignored() {
        let oct = json!({"kty": "oct", "kid": "legacy", "k": "c2VjcmV0", "alg": "HS256"});
        assert_eq!(alg_of(oct).unwrap(), None);
        assert_eq!(alg_of(p256(json!({"use": "enc"}))).unwrap(), None);
    }

    #[test]
    fn keys_without_kid_are_skipped_with_a_reason() {
        let mut key = p256(json!({}));
        key.as_object_mut().unwrap().remove("kid");
        assert!(alg_of(key).unwrap_err().contains("kid"));
    }
}
