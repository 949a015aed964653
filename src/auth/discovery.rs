//! OpenID Connect discovery (OpenID Connect Discovery 1.0): where a third-party issuer publishes
//! its signing keys, read from `<issuer>/.well-known/openid-configuration`.

use reqwest::Url;
use serde::Deserialize;

use super::jwks::{JwksError, download};

/// What an OpenID Connect discovery document says that matters here.
#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

/// Reads `document` and returns the `jwks_uri` it names, once sure the document is `issuer`'s.
pub async fn discover(
    client: &reqwest::Client,
    document: &Url,
    issuer: &str,
    allow_insecure_http: bool,
) -> Result<Url, JwksError> {
    let found: DiscoveryDocument =
        download(client, document)
            .await?
            .map_err(|source| JwksError::NotADiscoveryDocument {
                url: document.clone(),
                source,
            })?;
    if found.issuer != issuer {
        return Err(JwksError::IssuerMismatch {
            url: document.clone(),
            found: found.issuer,
            configured: issuer.to_owned(),
        });
    }
    let unusable = |problem| JwksError::UnusableJwksUri {
        url: document.clone(),
        jwks_uri: found.jwks_uri.clone(),
        problem,
    };
    let jwks_uri = Url::parse(&found.jwks_uri)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .ok_or_else(|| unusable("which is not an https:// URL"))?;
    if jwks_uri.scheme() == "http" && !allow_insecure_http && !crate::config::is_loopback(&jwks_uri)
    {
        return Err(unusable(
            "plain HTTP to another machine, so the keys could be swapped on the way: only with ALLOW_INSECURE_HTTP=true, for a network you trust",
        ));
    }
    Ok(jwks_uri)
}
