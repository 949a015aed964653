//! The command line: which command runs, with which flags (clap's derive API), and the exit
//! codes every command shares. Each command's body is a file of its own.

mod check_config;
mod progress;
mod prune;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ConfigErrors;

/// Exit code for a configuration the service cannot run with (clap uses it for a bad command
/// line, too).
pub const EXIT_CONFIG: u8 = 2;

/// Hands Supabase-authenticated browser users their Telnyx WebRTC credentials.
#[derive(Debug, Parser)]
#[command(
    name = "telnyx-webrtc-credentials",
    version,
    about,
    after_help = "Configured by environment variables and a .env file in the working directory: \
                  see docs/configuration.md and .env.example for every variable."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Run with a throwaway secret and SIP identity; prints a ready-to-paste curl command.
    Demo,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig {
        /// Also ask Supabase and Telnyx, read-only, whether the values work: the signing keys,
        /// the anon key (with SUPABASE_VERIFY_SESSION), the API key and the connection (in
        /// per_user mode). Exits 1 if a check fails.
        #[arg(long)]
        online: bool,
    },
    /// List the per_user credentials to delete at Telnyx: expired ones, and (with
    /// SUPABASE_SERVICE_ROLE_KEY) those whose Supabase user is gone. A dry run unless --apply.
    #[command(
        after_help = "Exit codes: 0 done, 1 something could not be done (a deletion, the listing, a user check), 2 a configuration error. Only credentials this service named (supabase:<user id>) are ever touched."
    )]
    Prune {
        /// Delete them (without it, only report what would be deleted).
        #[arg(long)]
        apply: bool,
    },
}

impl Cli {
    /// Runs the command: `serve` when none is given.
    pub fn run(self) -> ExitCode {
        let dot_env = match DotEnv::load() {
            Ok(dot_env) => dot_env,
            Err(error) => {
                eprintln!("error: .env could not be read: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve::serve(),
            Command::Demo => serve::demo(&dot_env),
            Command::CheckConfig { online } => check_config::check_config(online),
            Command::Prune { apply } => prune::prune(apply),
        }
    }
}

/// The `.env` file (in the working directory or one above it) merged into the environment, and
/// which variables it set: those the environment did not already have, as dotenvy never
/// overrides a variable that is set.
#[derive(Debug, Default)]
pub struct DotEnv {
    pub path: Option<PathBuf>,
    pub set: Vec<String>,
}

impl DotEnv {
    fn load() -> Result<Self, dotenvy::Error> {
        let mut set = Vec::new();
        match dotenvy::dotenv_iter() {
            Ok(pairs) => {
                for pair in pairs {
                    let (name, _) = pair?;
                    if std::env::var_os(&name).is_none() {
                        set.push(name);
                    }
                }
            }
            Err(error) if error.not_found() => return Ok(Self::default()),
            Err(error) => return Err(error),
        }
        let path = dotenvy::dotenv()?;
        Ok(Self {
            path: Some(path),
            set,
        })
    }
}

/// Prints every configuration problem, each with its fix, and gives the configuration exit code.
fn config_failure(errors: &ConfigErrors) -> ExitCode {
    eprintln!("error: the configuration is not usable:");
    for error in &errors.0 {
        eprintln!("  - {error}");
    }
    eprintln!("See .env.example for every variable.");
    ExitCode::from(EXIT_CONFIG)
}
