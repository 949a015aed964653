//! Metrics recorded before the Prometheus recorder exists still count once it does. In a binary
//! of its own: no other test may install the recorder first.

use telnyx_webrtc_credentials::metrics;

#[test]
fn a_counter_first_used_before_the_recorder_is_installed_still_counts() {
    // As a token verified before any `AppState` exists does: the counter's handle is kept from
    // its first use, so a handle taken before the recorder would count nothing, for ever.
    metrics::cache_lookup("access_tokens", true);
    let handle = metrics::recorder();
    metrics::cache_lookup("access_tokens", true);
    let text = metrics::render(&handle);
    assert!(
        text.lines()
            .any(|line| line == r#"cache_lookups_total{cache="access_tokens",result="hit"} 2"#),
        "{text}"
    );
}
