//! The service binary as a child process: a clean environment in an empty directory, with its
//! output collected line by line.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BINARY: &str = env!("CARGO_BIN_EXE_telnyx-webrtc-credentials");

/// An empty working directory, so a developer's own `.env` never leaks into a test.
pub fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "twc-cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn command(args: &[&str], env: &[(&str, String)], dir: &PathBuf) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args);
    with_only(command, env, dir)
}

/// The binary started by a shell that first runs `ulimit <limits>` (such as `-Sn 256`, which
/// lowers the soft open-files limit and leaves the hard one).
pub fn command_with_ulimit(
    limits: &str,
    args: &[&str],
    env: &[(&str, String)],
    dir: &PathBuf,
) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!("ulimit {limits} && exec \"$0\" \"$@\""))
        .arg(BINARY)
        .args(args);
    with_only(command, env, dir)
}

/// `command` with exactly `env` as its environment, run in `dir`, killed with its handle.
fn with_only(mut command: Command, env: &[(&str, String)], dir: &PathBuf) -> Command {
    command.env_clear().current_dir(dir).kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs a command that exits by itself.
pub async fn run(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    run_command(command(args, env, &scratch_dir())).await
}

/// [`run`] under `ulimit <limits>`.
pub async fn run_with_ulimit(
    limits: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> (i32, String, String) {
    run_command(command_with_ulimit(limits, args, env, &scratch_dir())).await
}

async fn run_command(mut command: Command) -> (i32, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("the command exits")
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running service process whose stdout and stderr lines are collected.
pub struct Process {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn start(args: &[&str], env: &[(&str, String)]) -> Self {
        Self::start_in(args, env, &scratch_dir())
    }

    /// Starts the binary in `dir` (where it looks for `.env`).
    pub fn start_in(args: &[&str], env: &[(&str, String)], dir: &PathBuf) -> Self {
        Self::spawn(command(args, env, dir))
    }

    /// [`Process::start`] under `ulimit <limits>` (see [`command_with_ulimit`]).
    pub fn start_with_ulimit(limits: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::spawn(command_with_ulimit(limits, args, env, &scratch_dir()))
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line);
                }
            });
        }
        Self { child, output }
    }

    pub fn text(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Waits for a line that `pick` recognises and returns what it picked.
    pub async fn wait_for<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find_map(|line| pick(line))
            {
                return found;
            }
            assert!(Instant::now() < deadline, "no {what} in:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address from the JSON "listening" log line.
    pub async fn address(&self) -> String {
        self.wait_for("listening line", |line| {
            let event: Value = serde_json::from_str(line).ok()?;
            (event["message"] == "listening")
                .then(|| format!("http://{}", event["address"].as_str().unwrap()))
        })
        .await
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the process exits")
            .unwrap();
        // Let the readers drain the pipes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        status.code().unwrap_or(-1)
    }
}
