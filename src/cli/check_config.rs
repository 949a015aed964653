//! `check-config`: validate the configuration and print it, secrets redacted.

use std::process::ExitCode;

use crate::config::Config;

pub(super) fn check_config() -> ExitCode {
    match Config::from_process_env() {
        Ok(config) => {
            println!("The configuration is valid:\n{config}");
            ExitCode::SUCCESS
        }
        Err(errors) => super::config_failure(&errors),
    }
}
