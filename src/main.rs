//! The command line: `serve` (the default), `demo` and `check-config`.

use std::process::ExitCode;
use std::time::SystemTime;

use secrecy::SecretString;
use telnyx_webrtc_credentials::config::{Config, ConfigErrors, process_env};
use telnyx_webrtc_credentials::server::open_files::ConnectionBudget;
use telnyx_webrtc_credentials::server::{Server, shutdown_signal};
use telnyx_webrtc_credentials::{demo, telemetry};

/// Exit code for a configuration the service cannot run with.
const EXIT_CONFIG: u8 = 2;

const USAGE: &str = "\
Usage: telnyx-webrtc-credentials [COMMAND]

Commands:
  serve         Run the service (the default). Configured by environment variables and .env.
  demo          Run with a throwaway secret and SIP identity; prints a ready-to-paste curl command.
  check-config  Validate the configuration and print it with secrets redacted.
  help          Print this text.

See README.md and .env.example for every variable.";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("error: .env could not be read: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    match command.as_deref() {
        None | Some("serve") => run(Config::from_process_env(), None),
        Some("demo") => {
            let secrets = demo::generate_secrets();
            let secret = secrets.jwt_secret.clone();
            run(Config::demo(process_env, secrets), Some(secret))
        }
        Some("check-config") => match Config::from_process_env() {
            Ok(config) => match ConnectionBudget::at_start_up(&config) {
                Ok(budget) => {
                    println!("The configuration is valid:\n{config}\n{budget}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(EXIT_CONFIG)
                }
            },
            Err(errors) => config_failure(&errors),
        },
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn config_failure(errors: &ConfigErrors) -> ExitCode {
    eprintln!("error: the configuration is not usable:");
    for error in &errors.0 {
        eprintln!("  - {error}");
    }
    eprintln!("See .env.example for every variable.");
    ExitCode::from(EXIT_CONFIG)
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
            println!("{}", demo::instructions(server.local_addr(), &token));
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
