//! `telnyx-webrtc-credentials prune` as an operator runs it, against the local Telnyx and
//! Supabase stand-ins: what it reports, what `--apply` deletes (and never touches), its exit
//! codes, its progress line on a terminal, and that no key reaches its output.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::process::{BINARY, run, scratch_dir};
use common::telnyx::{Behaviour, CONNECTION_ID, FakeTelnyx, StoredCredential, TELNYX_API_KEY};
use common::*;

const OLD: &str = "2025-06-01T00:00:00";

fn iso(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Credentials of every kind prune must tell apart, by role.
struct Fixture {
    telnyx: FakeTelnyx,
    supabase: FakeSupabase,
    live: StoredCredential,
    flagged: StoredCredential,
    lapsed: StoredCredential,
    orphan: StoredCredential,
    not_ours: Vec<StoredCredential>,
}

async fn fixture() -> Fixture {
    let telnyx = FakeTelnyx::start().await;
    // Pages of two: the listing has to read all of them.
    telnyx.set_page_cap(2);
    let supabase = FakeSupabase::start(&[]).await;
    let name = |user: &str| format!("supabase:{}", uuid_for(user));
    let live = telnyx.insert_with(
        &name("ada"),
        CONNECTION_ID,
        OLD,
        Some(&iso(now_secs() + 86_400)),
    );
    let flagged = telnyx.insert(&name("grace"), OLD);
    telnyx.expire(&flagged.id);
    let lapsed = telnyx.insert_with(
        &name("linus"),
        CONNECTION_ID,
        OLD,
        Some(&iso(now_secs() - 60)),
    );
    let orphan = telnyx.insert(&name("margaret"), OLD);
    supabase.delete_user(&uuid_for("margaret"));
    let desk_phone = telnyx.insert("desk-phone", OLD);
    telnyx.expire(&desk_phone.id);
    let elsewhere = telnyx.insert_with(
        &name("barbara"),
        "999000111",
        OLD,
        Some(&iso(now_secs() - 60)),
    );
    let not_a_uuid = telnyx.insert("supabase:user-42", OLD);
    let unnamed = telnyx.insert("supabase:", OLD);
    telnyx.expire(&unnamed.id);
    Fixture {
        telnyx,
        supabase,
        live,
        flagged,
        lapsed,
        orphan,
        not_ours: vec![desk_phone, elsewhere, not_a_uuid, unnamed],
    }
}

fn prune_env(fixture: &Fixture, with_key: bool) -> Vec<(&'static str, String)> {
    let mut env = fixture.telnyx.env();
    if with_key {
        env.push(("SUPABASE_URL", fixture.supabase.url.clone()));
        env.push(("SUPABASE_SERVICE_ROLE_KEY", SERVICE_ROLE_KEY.into()));
    }
    env
}

fn ids(credentials: &[StoredCredential]) -> Vec<String> {
    let mut ids: Vec<String> = credentials.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

fn assert_no_key(output: &str) {
    assert!(
        !output.contains(TELNYX_API_KEY),
        "the Telnyx key leaked:\n{output}"
    );
    assert!(
        !output.contains(SERVICE_ROLE_KEY),
        "the secret key leaked:\n{output}"
    );
}

#[tokio::test]
async fn a_dry_run_reports_expired_and_orphaned_credentials_and_deletes_nothing() {
    let fixture = fixture().await;
    let before = fixture.telnyx.credentials();

    let (code, stdout, stderr) = run(&["prune"], &prune_env(&fixture, true)).await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let mut reported: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("would delete\t"))
        .collect();
    reported.sort();
    let mut expected = vec![
        format!(
            "would delete\t{}\t{}\texpired",
            fixture.flagged.name, fixture.flagged.sip_username
        ),
        format!(
            "would delete\t{}\t{}\texpired",
            fixture.lapsed.name, fixture.lapsed.sip_username
        ),
        format!(
            "would delete\t{}\t{}\tits Supabase user no longer exists",
            fixture.orphan.name, fixture.orphan.sip_username
        ),
    ];
    expected.sort();
    assert_eq!(reported, expected, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Connection {CONNECTION_ID}: 7 credentials, 5 named by this service; 3 to delete (2 expired, 1 whose Supabase user no longer exists)."
        )),
        "{stdout}"
    );
    assert!(stdout.contains("Dry run: nothing was deleted"), "{stdout}");
    assert!(stderr.contains("left alone: supabase:user-42"), "{stderr}");
    assert_eq!(fixture.telnyx.requests("delete"), 0);
    assert_eq!(ids(&fixture.telnyx.credentials()), ids(&before));
    assert!(!stdout.contains('\u{1b}'), "no progress line into a pipe");
    assert_no_key(&format!("{stdout}{stderr}"));
}

#[tokio::test]
async fn apply_deletes_those_and_never_a_credential_it_did_not_name() {
    let fixture = fixture().await;

    let (code, stdout, stderr) = run(&["prune", "--apply"], &prune_env(&fixture, true)).await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("deleted\t"))
            .count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("Deleted 3 of 3."), "{stdout}");
    let mut kept = vec![fixture.live.clone()];
    kept.extend(fixture.not_ours.iter().cloned());
    assert_eq!(ids(&fixture.telnyx.credentials()), ids(&kept));
    assert_no_key(&format!("{stdout}{stderr}"));

    // Nothing left to do: a second run finds nothing.
    let (code, stdout, _) = run(&["prune", "--apply"], &prune_env(&fixture, true)).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("0 to delete"), "{stdout}");
}

#[tokio::test]
async fn without_the_secret_key_only_expired_credentials_go() {
    let fixture = fixture().await;

    let (code, stdout, stderr) = run(&["prune", "--apply"], &prune_env(&fixture, false)).await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2 to delete (2 expired, 0 whose Supabase user no longer exists) (users not checked: SUPABASE_SERVICE_ROLE_KEY is not set)"),
        "{stdout}"
    );
    assert_eq!(fixture.supabase.admin_calls(), 0);
    let left = ids(&fixture.telnyx.credentials());
    assert!(left.contains(&fixture.orphan.id));
    assert!(!left.contains(&fixture.flagged.id) && !left.contains(&fixture.lapsed.id));
}

#[tokio::test]
async fn a_failed_deletion_exits_1_and_says_which() {
    let fixture = fixture().await;
    fixture.telnyx.set_behaviour(Behaviour::FailOn {
        endpoint: "delete",
        status: 500,
        retry_after: None,
        times: usize::MAX,
    });

    let (code, stdout, stderr) = run(&["prune", "--apply"], &prune_env(&fixture, false)).await;

    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("FAILED\t"))
            .count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains("Deleted 0 of 2; 2 could not be deleted"),
        "{stdout}"
    );
    assert_no_key(&format!("{stdout}{stderr}"));
}

#[tokio::test]
async fn a_user_supabase_cannot_answer_for_is_left_alone_and_the_run_exits_1() {
    let fixture = fixture().await;
    fixture.supabase.set_admin_failing(true);

    let (code, stdout, stderr) = run(&["prune", "--apply"], &prune_env(&fixture, true)).await;

    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("users could not be checked"), "{stdout}");
    let left = ids(&fixture.telnyx.credentials());
    assert!(left.contains(&fixture.orphan.id) && left.contains(&fixture.live.id));
    assert!(!left.contains(&fixture.flagged.id), "expired ones still go");
}

#[tokio::test]
async fn configuration_errors_exit_2_and_never_print_a_key() {
    let (code, _, stderr) = run(&["prune"], &[]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("TELNYX_API_KEY") && stderr.contains("TELNYX_WEBRTC_CONNECTION_ID"),
        "{stderr}"
    );

    let fixture = fixture().await;
    let mut wrong_telnyx_key = prune_env(&fixture, true);
    wrong_telnyx_key.retain(|(name, _)| *name != "TELNYX_API_KEY");
    wrong_telnyx_key.push(("TELNYX_API_KEY", "KEYrevoked-0000".into()));
    let (code, stdout, stderr) = run(&["prune"], &wrong_telnyx_key).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("TELNYX_API_KEY"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("KEYrevoked-0000"));

    let mut wrong_secret = prune_env(&fixture, true);
    wrong_secret.retain(|(name, _)| *name != "SUPABASE_SERVICE_ROLE_KEY");
    wrong_secret.push((
        "SUPABASE_SERVICE_ROLE_KEY",
        "sb_secret_not_this_one_77".into(),
    ));
    let (code, stdout, stderr) = run(&["prune", "--apply"], &wrong_secret).await;
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused SUPABASE_SERVICE_ROLE_KEY"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains("sb_secret_not_this_one_77"));
    assert_eq!(
        fixture.telnyx.requests("delete"),
        0,
        "nothing deleted on a bad key"
    );

    let mut anon_as_secret = prune_env(&fixture, true);
    anon_as_secret.retain(|(name, _)| *name != "SUPABASE_SERVICE_ROLE_KEY");
    anon_as_secret.push(("SUPABASE_SERVICE_ROLE_KEY", "sb_publishable_abc123".into()));
    let (code, _, stderr) = run(&["prune"], &anon_as_secret).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("publishable"), "{stderr}");
    assert!(!stderr.contains("sb_publishable_abc123"));
}

#[tokio::test]
async fn a_long_run_on_a_terminal_shows_its_progress() {
    let telnyx = FakeTelnyx::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    for n in 0..30 {
        telnyx.insert(&format!("supabase:{}", uuid_for(&format!("user-{n}"))), OLD);
    }
    let fixture_env = {
        let mut env = telnyx.env();
        env.push(("SUPABASE_URL", supabase.url.clone()));
        env.push(("SUPABASE_SERVICE_ROLE_KEY", SERVICE_ROLE_KEY.into()));
        env
    };

    // `script` runs the command on a pseudo-terminal, as a person at a shell would.
    let mut command = tokio::process::Command::new("script");
    command
        .args(["-qec", &format!("{BINARY} prune"), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .current_dir(scratch_dir())
        .kill_on_drop(true);
    for (name, value) in &fixture_env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("prune finishes")
        .unwrap();
    let on_terminal = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "{on_terminal}");
    assert!(
        on_terminal.contains("checking users 30/30"),
        "{on_terminal:?}"
    );
    assert!(
        on_terminal.contains("\u{1b}[2K"),
        "the line is redrawn in place"
    );
    assert!(on_terminal.contains("0 to delete"), "{on_terminal}");

    let (code, piped, _) = run(&["prune"], &fixture_env).await;
    assert_eq!(code, 0);
    assert!(!piped.contains("checking users"), "{piped}");
}

#[tokio::test]
async fn third_party_users_credentials_go_once_expired_and_supabase_is_never_asked_about_them() {
    use telnyx_webrtc_credentials::credentials::issuer_tag;

    let telnyx = FakeTelnyx::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let clerk = issuer_tag("https://clerk.example.com");
    let auth0 = issuer_tag("https://example.us.auth0.com/");
    let live = telnyx.insert_with(
        &format!("{clerk}:user_2kX9b7TfQmV3pLr8"),
        CONNECTION_ID,
        OLD,
        Some(&iso(now_secs() + 86_400)),
    );
    let lapsed = telnyx.insert_with(
        &format!("{auth0}:auth0|64f1c2a9e5b7d3"),
        CONNECTION_ID,
        OLD,
        Some(&iso(now_secs() - 60)),
    );
    // Shaped almost like ours, and not: never touched.
    let lookalike = telnyx.insert("idp-not-a-tag:someone", OLD);
    telnyx.expire(&lookalike.id);
    let supabase_user = telnyx.insert(&format!("supabase:{}", uuid_for("ada")), OLD);
    let mut env = telnyx.env();
    env.push(("SUPABASE_URL", supabase.url.clone()));
    env.push(("SUPABASE_SERVICE_ROLE_KEY", SERVICE_ROLE_KEY.into()));

    let (code, stdout, stderr) = run(&["prune", "--apply"], &env).await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "deleted\t{}\t{}\texpired",
            lapsed.name, lapsed.sip_username
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Connection {CONNECTION_ID}: 4 credentials, 3 named by this service; 1 to delete (1 expired, 0 whose Supabase user no longer exists); 1 of third-party users kept until they expire."
        )),
        "{stdout}"
    );
    assert_eq!(
        supabase.admin_calls(),
        1,
        "only the Supabase user is asked about"
    );
    let mut left = ids(&telnyx.credentials());
    left.sort();
    assert_eq!(left, ids(&[live, lookalike, supabase_user]));
}

#[tokio::test]
async fn a_gone_users_devices_go_with_their_default_credential_and_a_live_users_stay() {
    let telnyx = FakeTelnyx::start().await;
    let supabase = FakeSupabase::start(&[]).await;
    let gone = uuid_for("margaret");
    let here = uuid_for("ada");
    supabase.delete_user(&gone);
    let gone_default = telnyx.insert(&format!("supabase:{gone}"), OLD);
    let gone_phone = telnyx.insert(&format!("supabase:{gone}:phone-1"), OLD);
    let here_phone = telnyx.insert(&format!("supabase:{here}:laptop"), OLD);
    // Not a device name this service makes: never touched, never asked about.
    let odd = telnyx.insert(&format!("supabase:{gone}:not a device"), OLD);
    let mut env = telnyx.env();
    env.push(("SUPABASE_URL", supabase.url.clone()));
    env.push(("SUPABASE_SERVICE_ROLE_KEY", SERVICE_ROLE_KEY.into()));

    let (code, stdout, stderr) = run(&["prune", "--apply"], &env).await;

    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for deleted in [&gone_default, &gone_phone] {
        assert!(
            stdout.contains(&format!(
                "deleted\t{}\t{}\tits Supabase user no longer exists",
                deleted.name, deleted.sip_username
            )),
            "{stdout}"
        );
    }
    assert_eq!(
        ids(&telnyx.credentials()),
        ids(&[here_phone, odd]),
        "{stdout}"
    );
}
