//! The binary exposed to clients that misbehave on purpose: slow request heads (slowloris)
//! under a low open-files limit, idle keep-alive connections, SIGTERM with a slow client
//! attached, and whatever a client puts in `x-request-id`.
//!
//! Timeouts are shortened through their variables; every wait is bounded, and the only timed
//! assertions are generous bounds on what a user would notice ("answered within a second").

mod common;

use std::time::{Duration, Instant};

use common::process::*;
use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

fn serve_env(
    supabase: &FakeSupabase,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = test_env(&supabase.url);
    env.push(("LOG_FORMAT", "json".into()));
    env.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    env
}

/// `http://127.0.0.1:port` to `127.0.0.1:port`.
fn host_port(address: &str) -> &str {
    address.trim_start_matches("http://")
}

/// The value of one series in the Prometheus text, such as
/// `http_connections_closed_total{reason="header_timeout"}`.
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

async fn scrape(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A client sending a request head a byte at a time, as slowloris does, and never finishing
/// it. Completes when the server closes the connection.
async fn slow_client(address: String) {
    let mut stream = TcpStream::connect(host_port(&address)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => {
                // EOF, a reset, or an answer: the server gave up on the connection.
                let _ = read;
                return;
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if stream.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends one complete request on `stream` and reads the whole answer (it ends with the JSON
/// body's closing brace).
async fn request_healthz(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"}") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server answers")
            .unwrap();
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&buf[..read]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

/// Whether `stream` is still open: nothing to read, not even an end of file.
async fn still_open(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf))
        .await
        .is_err()
}

/// Waits until the server closes `stream`, for at most `bound`.
async fn wait_closed(stream: &mut TcpStream, bound: Duration) {
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(bound, stream.read(&mut buf))
        .await
        .expect("the server closed the connection");
    assert!(read.as_ref().map_or(true, |read| *read == 0), "{read:?}");
}

#[tokio::test]
async fn slow_clients_under_a_low_file_limit_neither_lock_others_out_nor_stay() {
    const SLOW_CLIENTS: usize = 300;
    let supabase = FakeSupabase::start(&[]).await;
    let env = serve_env(&supabase, &[("HTTP_HEADER_TIMEOUT_SECS", "5")]);
    // The hard limit stays as it is.
    let service = Process::start_with_ulimit("-Sn 256", &["serve"], &env);
    let address = service.address().await;

    // Start-up raised the soft limit to the hard one, and said so.
    let limits = service
        .wait_for("open-files line", |line| {
            let event: Value = serde_json::from_str(line).ok()?;
            (event["message"] == "open-files limit in effect").then_some(event)
        })
        .await;
    assert_eq!(limits["raised_from"], 256, "{limits}");
    assert_eq!(limits["open_files"], limits["hard_limit"], "{limits}");
    assert!(
        limits["max_connections"].as_u64().unwrap() > SLOW_CLIENTS as u64,
        "{limits}"
    );

    let mut slow = JoinSet::new();
    for _ in 0..SLOW_CLIENTS {
        slow.spawn(slow_client(address.clone()));
    }
    // All of them are held by the server, more than the soft limit it started with.
    let deadline = Instant::now() + Duration::from_secs(20);
    while series(&scrape(&address).await, "http_connections_open") < SLOW_CLIENTS as f64 {
        assert!(
            Instant::now() < deadline,
            "the slow connections were not all accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A new client is answered at once, on /healthz and on /credentials.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let healthz = client.get(format!("{address}/healthz")).send().await;
    assert_eq!(healthz.expect("answered within a second").status(), 200);
    let token = sign_hs256(&user_claims(&supabase.issuer()));
    let credentials = client
        .get(format!("{address}/credentials"))
        .bearer_auth(&token)
        .send()
        .await;
    assert_eq!(credentials.expect("answered within a second").status(), 200);
    assert!(
        slow.try_join_next().is_none(),
        "the slow connections were still open while the others were answered"
    );

    // Then the header timeout closes every one of them.
    let closed_all = tokio::time::timeout(Duration::from_secs(20), async {
        while slow.join_next().await.is_some() {}
    })
    .await;
    assert!(
        closed_all.is_ok(),
        "{} slow connections left open",
        slow.len()
    );
    let metrics = scrape(&address).await;
    assert!(
        series(
            &metrics,
            "http_connections_closed_total{reason=\"header_timeout\"}"
        ) >= SLOW_CLIENTS as f64,
        "{metrics}"
    );
    // What is left open is the few kept-alive connections of the clients above.
    assert!(
        series(&metrics, "http_connections_open") < 10.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_waits_for_a_free_slot() {
    let supabase = FakeSupabase::start(&[]).await;
    let metrics_port = free_port_url();
    let env = serve_env(
        &supabase,
        &[
            ("MAX_CONNECTIONS", "2"),
            ("HTTP_HEADER_TIMEOUT_SECS", "3"),
            ("METRICS_BIND_ADDR", host_port(&metrics_port)),
        ],
    );
    let service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let mut slow = JoinSet::new();
    for _ in 0..2 {
        slow.spawn(slow_client(address.clone()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while series(&scrape(&metrics_port).await, "http_connections_open") < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the slow connections were not accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The third connection is not accepted while both slots are held: it waits in the listen
    // backlog, and is answered once the header timeout frees a slot.
    let waiting = tokio::spawn(async move { reqwest::get(format!("{address}/healthz")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "answered past MAX_CONNECTIONS");
    let answer = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("answered once a slot was free")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        service
            .text()
            .contains("connection cap reached: new connections wait in the listen backlog"),
        "{}",
        service.text()
    );
}

#[tokio::test]
async fn check_config_prints_the_file_limit_and_refuses_a_cap_that_does_not_fit() {
    let supabase = FakeSupabase::start(&[]).await;
    // Soft and hard limit both 512: nothing to raise.
    let (code, stdout, stderr) =
        run_with_ulimit("-n 512", &["check-config"], &serve_env(&supabase, &[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("open files (RLIMIT_NOFILE) = 512 (hard limit 512)"),
        "{stdout}"
    );
    assert!(stdout.contains("connections at most     = 448"), "{stdout}");
    let (code, stdout, stderr) =
        run_with_ulimit("-Sn 256", &["check-config"], &serve_env(&supabase, &[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(raised from 256; hard limit"), "{stdout}");

    for command in ["check-config", "serve"] {
        let env = serve_env(&supabase, &[("MAX_CONNECTIONS", "1000")]);
        let (code, stdout, stderr) = run_with_ulimit("-n 512", &[command], &env).await;
        assert_eq!(code, 2, "{command}: {stdout}{stderr}");
        assert!(
            stderr.contains("MAX_CONNECTIONS is 1000, more than the open-files limit leaves"),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("448"), "{command}: {stderr}");
        assert!(!stdout.contains("listening"));
    }
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_and_a_stalled_next_request_sooner() {
    let supabase = FakeSupabase::start(&[]).await;
    let env = serve_env(
        &supabase,
        &[
            ("HTTP_HEADER_TIMEOUT_SECS", "1"),
            ("HTTP_IDLE_TIMEOUT_SECS", "6"),
        ],
    );
    let service = Process::start(&["serve"], &env);
    let address = service.address().await;

    let mut idle = TcpStream::connect(host_port(&address)).await.unwrap();
    request_healthz(&mut idle).await;
    let mut stalled = TcpStream::connect(host_port(&address)).await.unwrap();
    request_healthz(&mut stalled).await;
    stalled.write_all(b"GET /hea").await.unwrap();
    let started = Instant::now();

    // The next request's head began and stalled: the header timeout closes it, long before
    // the idle timeout would.
    wait_closed(&mut stalled, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(6));
    // Waiting between requests is not a slow head: past twice the header timeout, the idle
    // connection is still open, and it closes once idle for HTTP_IDLE_TIMEOUT_SECS.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    assert!(still_open(&mut idle).await, "closed by the header timeout");
    wait_closed(&mut idle, Duration::from_secs(15)).await;

    let metrics = scrape(&address).await;
    assert!(
        series(
            &metrics,
            "http_connections_closed_total{reason=\"idle_timeout\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        series(
            &metrics,
            "http_connections_closed_total{reason=\"header_timeout\"}"
        ) >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_head_far_over_the_size_limit_is_cut_off_before_it_is_complete() {
    let supabase = FakeSupabase::start(&[]).await;
    let env = serve_env(
        &supabase,
        &[
            ("MAX_REQUEST_HEADER_BYTES", "4096"),
            ("HTTP_HEADER_TIMEOUT_SECS", "60"),
        ],
    );
    let service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let mut stream = TcpStream::connect(host_port(&address)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // 4 KiB allowed, plus 8 KiB for the request line and line breaks: the 13th KiB of a head
    // that never ends is where hyper stops buffering it, long before the header timeout.
    let line = format!("x-padding: {}\r\n", "p".repeat(1000));
    for _ in 0..13 {
        if stream.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed long before the header timeout")
        .ok();
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn sigterm_with_a_slow_client_attached_exits_0_within_the_grace_period() {
    let supabase = FakeSupabase::start(&[]).await;
    // The header timeout alone would keep the slow client for a minute.
    let env = serve_env(
        &supabase,
        &[
            ("HTTP_HEADER_TIMEOUT_SECS", "60"),
            ("SHUTDOWN_GRACE_SECS", "2"),
        ],
    );
    let mut service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let mut idle = TcpStream::connect(host_port(&address)).await.unwrap();
    request_healthz(&mut idle).await;
    let slow = tokio::spawn(slow_client(address.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    // The slow client and the idle one (the scrape is a third).
    while series(&scrape(&address).await, "http_connections_open") < 3.0 {
        assert!(
            Instant::now() < deadline,
            "the connections were not accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    service.signal("-TERM");
    // The idle keep-alive connection is closed at once, while the process still waits on the
    // slow one.
    wait_closed(&mut idle, Duration::from_secs(2)).await;
    assert!(
        !slow.is_finished(),
        "the slow client was cut before the grace period"
    );
    assert_eq!(service.exit_code().await, 0, "{}", service.text());
    let took = signalled.elapsed();
    assert!(took >= Duration::from_secs(2), "exited after {took:?}");
    assert!(took < Duration::from_secs(10), "exited after {took:?}");
    tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("the slow client was disconnected")
        .unwrap();
    let logs = service.text();
    assert!(
        logs.contains("SHUTDOWN_GRACE_SECS has passed: closing the connections still open"),
        "{logs}"
    );
}

#[tokio::test]
async fn only_short_ids_of_safe_characters_are_kept_as_the_request_id() {
    let supabase = FakeSupabase::start(&[]).await;
    let env = serve_env(
        &supabase,
        &[("RUST_LOG", "info,telnyx_webrtc_credentials=debug")],
    );
    let mut service = Process::start(&["serve"], &env);
    let address = service.address().await;
    let client = reqwest::Client::new();
    let longest = format!("{}._:-AZ09", "a".repeat(120));
    assert_eq!(longest.len(), 128);
    let flood = "slowloris-".repeat(800);
    let cases: [(&str, bool); 7] = [
        ("req-0", true),
        ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", true),
        (&longest, true),
        (&format!("{longest}z"), false),
        (&flood, false),
        ("a b", false),
        ("id\",\"level\":\"ERROR", false),
    ];
    let mut replaced = Vec::new();
    for (sent, kept) in cases {
        let response = client
            .get(format!("{address}/healthz"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        if kept {
            assert_eq!(echoed, sent);
        } else {
            assert_ne!(echoed, sent);
            assert!(uuid_like(&echoed), "{echoed}");
            replaced.push((echoed, sent.len()));
        }
    }
    service.signal("-TERM");
    assert_eq!(service.exit_code().await, 0);
    let logs = service.text();
    assert!(
        !logs.contains("slowloris-slowloris-"),
        "the long id reached the logs"
    );
    assert!(!logs.contains("a b") && !logs.contains("id\\\""), "{logs}");
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    for (fresh, refused_len) in &replaced {
        let said = events
            .iter()
            .find(|event| {
                event["message"] == "the client's x-request-id was replaced with a fresh one"
                    && event["request_id"] == fresh.as_str()
            })
            .unwrap_or_else(|| panic!("no debug line for {fresh}:\n{logs}"));
        assert_eq!(said["level"], "DEBUG");
        assert_eq!(said["refused_len"], *refused_len as u64);
        // And the request's own line carries the fresh id.
        assert!(events.iter().any(|event| {
            event["message"] == "finished processing request"
                && event["request_id"] == fresh.as_str()
        }));
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
