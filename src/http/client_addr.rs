//! Which address a request came from: the TCP peer, or, with `TRUST_PROXY_HEADERS=true`, the
//! address the proxy in front of us put last in `X-Forwarded-For`.
//!
//! Only the last entry is used: a client can write anything into the header it sends, and a
//! proxy appends the address it saw to whatever came in, so the entries to its left are the
//! client's own claims. Decided once per request, at the edge, and carried as a request extension.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, Request};

/// The client's address; `None` only where no connection exists (in-process tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// What [`record`] found for this request.
    pub fn of(extensions: &Extensions) -> Self {
        extensions.get::<Self>().copied().unwrap_or_default()
    }
}

/// For log fields: the address, or `unknown`.
impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// The request step of a `MapRequestLayer`: records the [`ClientAddr`] in the request's
/// extensions. `trust_proxy_headers` is `TRUST_PROXY_HEADERS`.
pub fn record<B>(trust_proxy_headers: bool) -> impl Fn(Request<B>) -> Request<B> + Clone {
    move |mut request| {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let forwarded = trust_proxy_headers
            .then(|| last_forwarded_for(request.headers()))
            .flatten();
        request
            .extensions_mut()
            .insert(ClientAddr(forwarded.or(peer)));
        request
    }
}

/// The last address in `X-Forwarded-For`, across repeated header lines.
fn last_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|entry| !entry.is_empty())?;
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_last_forwarded_address_is_the_one_the_proxy_saw() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(
            last_forwarded_for(&headers(&["6.6.6.6, 203.0.113.7"])),
            ip("203.0.113.7")
        );
        assert_eq!(
            last_forwarded_for(&headers(&["6.6.6.6", "2001:db8::1"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            last_forwarded_for(&headers(&["203.0.113.7:4711, "])),
            ip("203.0.113.7")
        );
        assert_eq!(last_forwarded_for(&headers(&["6.6.6.6, not-an-ip"])), None);
        assert_eq!(last_forwarded_for(&headers(&[])), None);
    }
}
