//! `prune [--apply]`: find the per_user credentials that pile up at Telnyx, and delete them.
//!
//! Lists every credential on `TELNYX_WEBRTC_CONNECTION_ID` (every page), keeps to those this
//! service named (`supabase:<user id>`, and `<issuer tag>:<sub>` for users of a third-party
//! issuer), and reports those to delete: expired ones (Telnyx allows nothing else for them)
//! and, with `SUPABASE_SERVICE_ROLE_KEY`, those whose Supabase user no longer exists. Only
//! Supabase can be asked whether a user exists, so a third-party user's credential goes only
//! once expired: `TELNYX_CREDENTIAL_IDLE_DAYS` after its last token. A dry run unless
//! `--apply`. Exit codes: 0 done, 1 something could not be done (a deletion, a listing, a user
//! check), 2 a configuration error.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::progress::Progress;
use super::{EXIT_CONFIG, config_failure};
use crate::config::PruneConfig;
use crate::credentials::{CredentialError, is_third_party_name, owner_of};
use crate::supabase_admin::{AdminError, SupabaseAdmin, UserStatus};
use crate::telnyx::{TelephonyCredential, TelnyxClient, TelnyxError};

/// All the calls of one listing (every page, retries included) stay within this.
const LISTING_BUDGET: Duration = Duration::from_secs(600);
/// Users asked about at once: quick for thousands, gentle on the project's Auth server.
const CONCURRENT_CHECKS: usize = 8;

const EXIT_FAILED: u8 = 1;

pub(super) fn prune(apply: bool) -> ExitCode {
    let config = match PruneConfig::from_process_env() {
        Ok(config) => config,
        Err(errors) => return config_failure(&errors),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    runtime.block_on(run(&config, apply))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Expired,
    UserGone,
}

impl Reason {
    fn describe(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::UserGone => "its Supabase user no longer exists",
        }
    }
}

/// A credential to delete, and why.
struct Doomed {
    credential: TelephonyCredential,
    reason: Reason,
}

impl Doomed {
    /// `<action>\t<name>\t<sip_username>\t<why>`: for people, and for `cut -f`.
    fn line(&self, action: &str) -> String {
        format!(
            "{action}\t{}\t{}\t{}",
            self.credential.name.as_deref().unwrap_or_default(),
            self.credential.sip_username,
            self.reason.describe()
        )
    }
}

async fn run(config: &PruneConfig, apply: bool) -> ExitCode {
    let mut progress = Progress::on_stdout();
    let telnyx = match TelnyxClient::new(&config.telnyx) {
        Ok(telnyx) => telnyx,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let listed = match telnyx
        .list_credentials(
            None,
            &config.connection_id,
            &telnyx.budget_of(LISTING_BUDGET),
        )
        .await
    {
        Ok(listed) => listed,
        Err(error @ (TelnyxError::Unauthorized { .. } | TelnyxError::Rejected { .. })) => {
            eprintln!("error: {}", CredentialError::from(error));
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(error) => {
            eprintln!("error: the credentials could not be listed: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let total = listed.len();
    let ours: Vec<TelephonyCredential> = listed
        .into_iter()
        .filter(|credential| {
            credential
                .name
                .as_deref()
                .is_some_and(|name| owner_of(name).is_some() || is_third_party_name(name))
        })
        .collect();
    let named = ours.len();
    let now = SystemTime::now();
    let (expired, live): (Vec<_>, Vec<_>) = ours
        .into_iter()
        .partition(|credential| credential.is_expired(now));
    // Those of third-party users wait for their expiry: only Supabase can be asked about users.
    let (live, third_party): (Vec<_>, Vec<_>) = live
        .into_iter()
        .partition(|credential| credential.name.as_deref().and_then(owner_of).is_some());
    let mut expired = expired;
    expired.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    let mut doomed: Vec<Doomed> = expired
        .into_iter()
        .map(|credential| Doomed {
            credential,
            reason: Reason::Expired,
        })
        .collect();
    let mut unchecked = 0;
    let users_note = match &config.supabase_admin {
        None => " (users not checked: SUPABASE_SERVICE_ROLE_KEY is not set)".to_owned(),
        Some(admin_config) => {
            let admin = match SupabaseAdmin::new(admin_config) {
                Ok(admin) => Arc::new(admin),
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match check_users(admin, live, &mut progress).await {
                Ok(checked) => {
                    unchecked = checked.unchecked;
                    doomed.extend(checked.gone.into_iter().map(|credential| Doomed {
                        credential,
                        reason: Reason::UserGone,
                    }));
                    String::new()
                }
                Err(error) => {
                    progress.clear();
                    eprintln!("error: {error}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
    };
    let expired_count = doomed
        .iter()
        .filter(|doomed| doomed.reason == Reason::Expired)
        .count();
    let third_party_note = if third_party.is_empty() {
        String::new()
    } else {
        format!(
            "; {} of third-party users kept until they expire",
            third_party.len()
        )
    };
    let summary = format!(
        "Connection {}: {total} credentials, {named} named by this service; {} to delete ({expired_count} expired, {} whose Supabase user no longer exists){users_note}{third_party_note}.",
        config.connection_id,
        doomed.len(),
        doomed.len() - expired_count,
    );
    let unchecked_note = (unchecked > 0).then(|| {
        format!(
            "{unchecked} users could not be checked (see above): their credentials were left alone."
        )
    });

    if !apply {
        for doomed in &doomed {
            println!("{}", doomed.line("would delete"));
        }
        println!("{summary}");
        if let Some(note) = &unchecked_note {
            println!("{note}");
        }
        if !doomed.is_empty() {
            println!(
                "Dry run: nothing was deleted. Run `telnyx-webrtc-credentials prune --apply` to delete them."
            );
        }
        return exit_code(unchecked > 0);
    }

    let mut failed = 0;
    let to_delete = doomed.len();
    for (done, doomed) in doomed.iter().enumerate() {
        progress.show("deleting", done, to_delete);
        let result = telnyx
            .delete_credential(&doomed.credential.id, &telnyx.budget())
            .await;
        progress.clear();
        match result {
            Ok(()) => println!("{}", doomed.line("deleted")),
            Err(error) => {
                failed += 1;
                println!("{}: {error}", doomed.line("FAILED"));
            }
        }
    }
    println!("{summary}");
    println!(
        "Deleted {} of {to_delete}{}.",
        to_delete - failed,
        if failed > 0 {
            format!("; {failed} could not be deleted (see above): run prune again")
        } else {
            String::new()
        }
    );
    if let Some(note) = &unchecked_note {
        println!("{note}");
    }
    exit_code(failed > 0 || unchecked > 0)
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

struct Checked {
    gone: Vec<TelephonyCredential>,
    unchecked: usize,
}

/// Asks Supabase about each credential's user, a few at a time. A refused key stops the run (a
/// configuration error); a user Supabase cannot say anything about is left alone.
async fn check_users(
    admin: Arc<SupabaseAdmin>,
    live: Vec<TelephonyCredential>,
    progress: &mut Progress,
) -> Result<Checked, AdminError> {
    let total = live.len();
    let permits = Arc::new(Semaphore::new(CONCURRENT_CHECKS));
    let mut checks = JoinSet::new();
    for credential in live {
        let admin = admin.clone();
        let permits = permits.clone();
        checks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let user_id = credential
                .name
                .as_deref()
                .and_then(owner_of)
                .unwrap_or_default()
                .to_owned();
            let status = admin.user_status(&user_id).await;
            (credential, status)
        });
    }
    let mut checked = Checked {
        gone: Vec::new(),
        unchecked: 0,
    };
    let mut done = 0;
    while let Some(joined) = checks.join_next().await {
        let (credential, status) = joined.expect("a user check does not panic");
        done += 1;
        progress.show("checking users", done, total);
        let name = credential.name.clone().unwrap_or_default();
        match status {
            Ok(UserStatus::Exists) => {}
            Ok(UserStatus::Gone) => checked.gone.push(credential),
            Ok(UserStatus::Unknown(why)) => {
                progress.clear();
                eprintln!("left alone: {name}: {why}");
            }
            Err(error @ AdminError::Refused { .. }) => {
                checks.abort_all();
                return Err(error);
            }
            Err(error @ AdminError::Unavailable(_)) => {
                progress.clear();
                eprintln!("warning: {name} left alone: {error}");
                checked.unchecked += 1;
            }
        }
    }
    progress.clear();
    // Oldest first, so a run's report reads in a stable order.
    checked
        .gone
        .sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(checked)
}
