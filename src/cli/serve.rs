//! `serve` and `demo`: run the service until SIGINT or SIGTERM; `demo` first makes up its
//! secrets and prints how to call it.

use std::cell::RefCell;
use std::process::ExitCode;
use std::time::SystemTime;

use secrecy::SecretString;

use super::{DotEnv, EXIT_CONFIG, config_failure};
use crate::config::{Config, ConfigErrors, placeholder_in, process_env};
use crate::demo::Sources;
use crate::server::{Server, shutdown_signal};
use crate::{demo, telemetry};

pub(super) fn serve() -> ExitCode {
    run(Config::from_process_env(), None)
}

/// `demo` reads the environment and `.env` too (a `.env` copied from `.env.example` is the
/// usual case), so it says which variables it took from where, and which it ignored.
pub(super) fn demo(dot_env: &DotEnv) -> ExitCode {
    let secrets = demo::generate_secrets();
    let secret = secrets.jwt_secret.clone();
    let read = RefCell::new(Vec::new());
    let config = Config::demo(
        |name| {
            let value = process_env(name);
            if let Some(value) = value.as_deref().filter(|value| !value.trim().is_empty()) {
                read.borrow_mut()
                    .push((name.to_owned(), placeholder_in(value).is_some()));
            }
            value
        },
        secrets,
    );
    let sources = Sources::sort(dot_env.path.clone(), &dot_env.set, read.into_inner());
    println!("{sources}");
    run(config, Some(secret))
}

/// Serves `config`; with `demo_secret`, first prints how to call the demo.
fn run(config: Result<Config, ConfigErrors>, demo_secret: Option<SecretString>) -> ExitCode {
    let config = match config {
        Ok(config) => config,
        Err(errors) => return config_failure(&errors),
    };
    // Dropped when `run` returns, which writes out the last lines.
    let _logs = telemetry::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    runtime.block_on(async move {
        let server = match Server::bind(&config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        if let Some(secret) = demo_secret {
            let token = demo::mint_token(&secret, SystemTime::now());
            println!(
                "{}",
                demo::instructions(server.local_addr(), &token, &config.cors_allowed_origins)
            );
        }
        match server.serve_until(shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "the server failed");
                ExitCode::FAILURE
            }
        }
    })
}
