//! A real `redis-server` (Debian's package; `.ci/run` installs it) on 127.0.0.1, on a free
//! port, without persistence, in a directory of its own; killed when dropped. Optionally also
//! on a TLS port with a password, as managed Redis is offered, with a certificate from a test
//! CA made by the `openssl` command.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    tls: Option<Tls>,
}

/// The TLS side: its port, the password every connection needs, and the CA to trust.
pub struct Tls {
    pub port: u16,
    pub password: String,
    /// PEM; give it to the service as `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
}

/// One key as the service left it.
#[derive(Debug)]
pub struct StoredKey {
    pub key: String,
    /// The value as text (bytes that are not UTF-8 shown as U+FFFD), for messages and
    /// comparisons; sealed values are binary. A hash's fields and values as `field=value`
    /// lines, sorted.
    pub value: String,
    pub bytes: Vec<u8>,
    /// Milliseconds left; -1 means the key never expires.
    pub ttl_ms: i64,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self::new();
        server.restart().await;
        server
    }

    /// Also listening with TLS (certificate for 127.0.0.1 and localhost) on a port of its own,
    /// where `password` is required. The plain port stays open, for the test to look inside.
    pub async fn start_with_tls(password: &str) -> Self {
        let mut server = Self::new();
        let dir = &server.dir;
        let extensions = dir.join("server.ext");
        std::fs::write(&extensions, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap_or_else(|error| {
                    panic!(
                        "cannot run openssl ({error}): install it with `apt-get install -y openssl`"
                    )
                });
            assert!(output.status.success(), "openssl {args:?}: {output:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=twc test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);
        server.tls = Some(Tls {
            port: free_port(),
            password: password.to_owned(),
            ca_file: dir.join("ca.pem"),
        });
        server.restart().await;
        server
    }

    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "twc-redis-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            port: free_port(),
            dir,
            child: None,
            tls: None,
        }
    }

    pub fn tls(&self) -> &Tls {
        self.tls.as_ref().expect("started with TLS")
    }

    /// The plain port's URL (with the password, when there is one).
    pub fn url(&self) -> String {
        match &self.tls {
            Some(tls) => format!("redis://:{}@127.0.0.1:{}", tls.password, self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Starts it (again) on the same port, empty, and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        if let Some(tls) = &self.tls {
            command
                .args([
                    "--tls-port",
                    &tls.port.to_string(),
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(self.dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(self.dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file)
                .args(["--requirepass", &tls.password]);
        }
        let spawned = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = spawned.unwrap_or_else(|error| {
            panic!(
                "cannot run redis-server ({error}): install it with `apt-get install -y redis-server` (.ci/run does)"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping().await {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {}: {}",
                self.port,
                std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills it, as a crash or a lost node would; what it held is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers, as with a Redis that is
    /// overloaded or paused.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success());
    }

    async fn answers_ping(&self) -> bool {
        let Ok(Ok(mut stream)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(("127.0.0.1", self.port)),
        )
        .await
        else {
            return false;
        };
        // Without a password PING answers +PONG; with one, -NOAUTH: either way it is up.
        let mut answer = [0u8; 1];
        stream.write_all(b"PING\r\n").await.is_ok()
            && tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut answer))
                .await
                .is_ok_and(|read| read.is_ok())
            && (&answer == b"+" || &answer == b"-")
    }

    /// A client of its own, for tests that look at what the service stored.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every key (walked with `SCAN`), its value (a string, or a hash: the service stores
    /// nothing else) and its TTL.
    pub async fn contents(&self) -> Vec<StoredKey> {
        let mut connection = self.connection().await;
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(100)
                .query_async(&mut connection)
                .await
                .unwrap();
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        let mut stored = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            if kind == "none" {
                continue; // expired since the scan
            }
            let ttl_ms: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let bytes: Vec<u8> = match kind.as_str() {
                "string" => redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .unwrap(),
                "hash" => {
                    let fields: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
                        .arg(&key)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    let lines: Vec<String> = fields
                        .iter()
                        .map(|(field, value)| format!("{field}={value}"))
                        .collect();
                    lines.join("\n").into_bytes()
                }
                other => panic!("{key} is a {other}"),
            };
            stored.push(StoredKey {
                key,
                value: String::from_utf8_lossy(&bytes).into_owned(),
                bytes,
                ttl_ms,
            });
        }
        stored
    }
}

impl StoredKey {
    /// Whether `needle` is in the key or anywhere in the value's bytes.
    pub fn holds(&self, needle: &str) -> bool {
        self.key.contains(needle)
            || self
                .bytes
                .windows(needle.len().max(1))
                .any(|window| window == needle.as_bytes())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused server would not see SIGTERM; SIGKILL ends it either way.
            self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
