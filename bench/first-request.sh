#!/usr/bin/env bash
# What a brand-new user's first GET /credentials costs in per_user mode: the propagation wait
# (TELNYX_CREDENTIAL_PROPAGATION_SECS) plus the Telnyx round trips, against the local Telnyx
# stand-in of benches/load_fixture.rs on loopback. For each of FIRST_USERS users it times the
# first request and the one right after it (served from the token cache), and counts the Telnyx
# calls the first one made, by endpoint, from the service's own /metrics
# (telnyx_requests_total). It runs the service twice: with the default wait, and with none, to
# show the round trips alone. Loopback round trips are well under a millisecond; add your own
# round trip to api.telnyx.com per call to get the figure for production.
#
# Usage: bench/first-request.sh
#   FIRST_USERS=5          brand-new users per run
#   BENCH_PROFILE=release  cargo profile to build (dev builds faster; the wait dominates anyway)
# Everything it writes goes to bench/out-first-request/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out-first-request
USERS=${FIRST_USERS:-5}
PROFILE=${BENCH_PROFILE:-release}

fail() { echo "error: $*" >&2; exit 1; }

echo "--- building the service and the fixture ($PROFILE)"
# cargo names the files; ask it for both.
mapfile -t ARTIFACTS < <(cargo build --profile "$PROFILE" --locked --bin telnyx-webrtc-credentials \
  --bench load_fixture --message-format=json-render-diagnostics |
  python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and message["target"]["name"] in ("load_fixture", "telnyx-webrtc-credentials"):
        print(message["target"]["name"], message["executable"])')
for artifact in "${ARTIFACTS[@]}"; do
  case $artifact in
    "load_fixture "*) FIXTURE=${artifact#* } ;;
    "telnyx-webrtc-credentials "*) BINARY=${artifact#* } ;;
  esac
done
[ -x "${FIXTURE:-}" ] && [ -x "${BINARY:-}" ] || fail "the build did not produce both executables"

rm -rf "$OUT" && mkdir -p "$OUT/fixture"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_for() { # wait_for <description> <command...>: up to 30 s
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what did not happen within 30 s; see $OUT"
}

# One fixture per run, so that every user is new to its Telnyx stand-in.
# run <label> <propagation secs> <first user>
run() {
  local label=$1 propagation=$2 first=$3 port
  mkdir -p "$OUT/$label"
  "$FIXTURE" "$OUT/$label" $((first + USERS)) >"$OUT/$label.fixture.log" 2>&1 &
  PIDS+=($!)
  wait_for "the fixture" test -f "$OUT/$label/ready"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  # shellcheck disable=SC2046 # one NAME=value word per line
  (cd "$OUT" && exec env $(cat "$label/server.env") $(cat "$label/per-user.env") \
    TELNYX_CREDENTIAL_PROPAGATION_SECS="$propagation" BIND_ADDR="127.0.0.1:$port" "$BINARY" serve \
    >"$OUT/$label.server.log" 2>&1) &
  PIDS+=($!)
  wait_for "the server" curl -fsS "http://127.0.0.1:$port/readyz"
  local url="http://127.0.0.1:$port"
  echo "--- $label: TELNYX_CREDENTIAL_PROPAGATION_SECS=$propagation, $USERS brand-new users"
  for user in $(seq "$first" $((first + USERS - 1))); do
    local token before after first_s second_s calls
    token=$(sed -n "$((user + 1))p" "$OUT/$label/hs256-users.txt")
    before=$(curl -fsS "$url/metrics" | grep '^telnyx_requests_total' || true)
    first_s=$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "$url/credentials")
    after=$(curl -fsS "$url/metrics" | grep '^telnyx_requests_total' || true)
    second_s=$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "$url/credentials")
    calls=$(python3 - "$before" "$after" <<'EOF'
import re, sys
def totals(text):
    counts = {}
    for line in text.splitlines():
        match = re.match(r'telnyx_requests_total\{endpoint="([^"]+)",outcome="[^"]+"\} (\d+)', line)
        if match:
            counts[match[1]] = counts.get(match[1], 0) + int(match[2])
    return counts
before, after = totals(sys.argv[1]), totals(sys.argv[2])
diff = {name: after[name] - before.get(name, 0) for name in after if after[name] - before.get(name, 0)}
print(f"{sum(diff.values())} ({', '.join(f'{name} {count}' for name, count in sorted(diff.items()))})")
EOF
)
    printf '    user %d: first request %.3f s, Telnyx calls %s; the next request %.4f s\n' \
      "$user" "$first_s" "$calls" "$second_s" | tee -a "$OUT/results.txt"
  done
}

run default_wait 5 0
run no_wait 0 0
