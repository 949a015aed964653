//! The command line: which command runs, with which flags (clap's derive API), and the exit
//! codes every command shares. Each command's body is a file of its own.

mod check_config;
mod progress;
mod prune;
mod serve;

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
                  see README.md and .env.example for every variable."
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
    CheckConfig,
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
        if let Err(error) = dotenvy::dotenv()
            && !error.not_found()
        {
            eprintln!("error: .env could not be read: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve::serve(),
            Command::Demo => serve::demo(),
            Command::CheckConfig => check_config::check_config(),
            Command::Prune { apply } => prune::prune(apply),
        }
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
