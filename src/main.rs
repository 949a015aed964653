//! The binary: parse the command line and run the command (see [`telnyx_webrtc_credentials::cli`]).

use std::process::ExitCode;

use clap::Parser;
use telnyx_webrtc_credentials::cli::Cli;

fn main() -> ExitCode {
    Cli::parse().run()
}
