//! `REDIS_URL` and `REDIS_COMMAND_TIMEOUT_MS`: the Redis that replicas share state through
//! (rate limits, session checks). Unset, every replica keeps its own state in memory.

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use super::env::Env;

/// Commands answer in well under a millisecond on a healthy Redis in the same region; 50 ms is
/// long enough for a cross-zone round trip or a short pause, and short enough that a Redis
/// that stopped answering costs a request little before the circuit breaker skips it.
pub const DEFAULT_REDIS_COMMAND_TIMEOUT_MS: u64 = 50;

const URL_HINT: &str = "set it to redis://[user:password@]host[:6379][/db], or rediss://… for TLS (managed Redis), or leave it empty to keep state in each replica's memory";

#[derive(Clone)]
pub struct RedisConfig {
    /// The whole URL as given, password included.
    pub url: SecretString,
    /// The URL without its password, for logs and `check-config`.
    pub redacted: String,
    /// Upper bound on one command, connection wait included.
    pub command_timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

pub(super) fn read(env: &mut Env<impl Fn(&str) -> Option<String>>) -> Option<RedisConfig> {
    let url = env.optional_with("REDIS_URL", parse_redis_url);
    let timeout_ms = env.number_or(
        "REDIS_COMMAND_TIMEOUT_MS",
        DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
        1..=1_000,
    );
    url.map(|(url, redacted)| RedisConfig {
        url,
        redacted,
        command_timeout: Duration::from_millis(timeout_ms),
    })
}

/// `redis://` or `rediss://`, a host, an optional database number; returns the URL and its
/// redacted form. No message repeats the value: it may carry a password.
fn parse_redis_url(value: &str) -> Result<(SecretString, String), String> {
    let url = Url::parse(value).map_err(|_| format!("is not a URL: {URL_HINT}"))?;
    let scheme = url.scheme();
    if !matches!(scheme, "redis" | "rediss") {
        return Err(format!("has the scheme {scheme}://: {URL_HINT}"));
    }
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| format!("names no host: {URL_HINT}"))?;
    if url.fragment().is_some() {
        // redis-rs reads `#insecure` as "skip certificate verification".
        return Err(format!(
            "ends in a #fragment (#insecure would skip the TLS certificate check, which this service never does): remove it ({URL_HINT})"
        ));
    }
    let database = url.path().trim_start_matches('/');
    if !database.is_empty() && database.parse::<u16>().is_err() {
        return Err(format!(
            "has a path that is not a database number: give /0 to /15 or nothing ({URL_HINT})"
        ));
    }
    // The client's own reading (query parameters such as ?protocol=resp3) must accept it too.
    redis::Client::open(value).map_err(|error| {
        let detail = error.to_string();
        let detail = match url.password() {
            Some(password) if detail.contains(password) => "unreadable".to_owned(),
            _ => detail,
        };
        format!("is not accepted by the Redis client ({detail}): {URL_HINT}")
    })?;
    let port = url.port().unwrap_or(6379);
    let credentials = match (url.username(), url.password()) {
        ("", None) => String::new(),
        ("", Some(_)) => ":***@".to_owned(),
        (user, None) => format!("{user}@"),
        (user, Some(_)) => format!("{user}:***@"),
    };
    let database = if database.is_empty() {
        String::new()
    } else {
        format!("/{database}")
    };
    Ok((
        SecretString::from(value.to_owned()),
        format!("{scheme}://{credentials}{host}:{port}{database}"),
    ))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn urls_read_as_documented_and_print_without_their_password() {
        let (_, redacted) = parse_redis_url("redis://127.0.0.1:6380").unwrap();
        assert_eq!(redacted, "redis://127.0.0.1:6380");
        let (url, redacted) =
            parse_redis_url("rediss://default:s3cr3t-pa55@cache.example.com/2").unwrap();
        assert_eq!(redacted, "rediss://default:***@cache.example.com:6379/2");
        assert_eq!(
            url.expose_secret(),
            "rediss://default:s3cr3t-pa55@cache.example.com/2"
        );
        let (_, redacted) = parse_redis_url("redis://:s3cr3t-pa55@10.0.0.5:6379/").unwrap();
        assert_eq!(redacted, "redis://:***@10.0.0.5:6379");
    }

    #[test]
    fn malformed_urls_say_what_to_set_and_never_repeat_the_password() {
        for value in [
            "cache.example.com:6379",
            "http://:s3cr3t-pa55@cache.example.com",
            "unix:///var/run/redis.sock",
            "rediss://:s3cr3t-pa55@cache.example.com/#insecure",
            "redis://:s3cr3t-pa55@cache.example.com/sessions",
            "redis://:s3cr3t-pa55@/0",
        ] {
            let problem = parse_redis_url(value).unwrap_err();
            assert!(problem.contains("redis://"), "{value}: {problem}");
            assert!(!problem.contains("s3cr3t-pa55"), "{value}: {problem}");
        }
    }
}
