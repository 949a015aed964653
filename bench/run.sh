#!/usr/bin/env bash
# The load benchmark (issue 3): builds the release binary, starts it against a local JWKS on
# loopback, drives it with wrk and prints, for each scenario, requests/s, p50/p99 latency,
# non-2xx answers, the ratio to the same run's /healthz, and the servers' peak resident memory.
#
# Scenarios run in rounds (every scenario once per round, each right after a /healthz run of its
# own), and the table shows each scenario's median over the rounds; the ratio is the median of
# its ratios to the /healthz run just before it, so a machine that gets busier or quieter during
# the run skews little.
#
# First it measures the yardstick of the ES256 lines with the criterion micro-benchmark: how many
# ES256 tokens one process verifies a second, on one thread and on every core; the table's end
# gives the ES256 lines as multiples of those rates.
#
# Then the slowloris line (issue 14): a normal load beside thousands of connections that never
# finish their request head, against the same load without them; then the soak.
#
# Usage: bench/run.sh                  (about 5 minutes after the build, the slowloris line and the soak)
#        bench/run.sh slowloris        (the build and the slowloris line alone: under a minute)
#   BENCH_ROUNDS=5       rounds
#   BENCH_DURATION=3     seconds of measured load per scenario and round,
#   BENCH_WARMUP=1       after this many seconds of unmeasured load
#   BENCH_CONNECTIONS=32
#   BENCH_THREADS=2      wrk threads
#   SLOWLORIS_CONNECTIONS=3000  slow connections of the slowloris line (0: no slowloris line)
#   SLOWLORIS_DURATION=10  seconds of measured load beside them (and without them)
#   SOAK_REQUESTS=1000000  requests of the soak that follows the table (0: no soak)
# Everything it writes goes to bench/out/; the table is also in bench/out/results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
ROUNDS=${BENCH_ROUNDS:-5}
DURATION=${BENCH_DURATION:-3}
WARMUP=${BENCH_WARMUP:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
BINARY=$ROOT/target/release/telnyx-webrtc-credentials
MODE=${1:-all}
case $MODE in all | slowloris) ;; *) echo "usage: bench/run.sh [slowloris]" >&2; exit 2 ;; esac

fail() { echo "error: $*" >&2; exit 1; }

if ! command -v wrk >/dev/null || { [ "$MODE" = all ] && ! command -v redis-server >/dev/null; }; then
  echo "--- installing wrk and redis-server (Debian packages)"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk redis-server >/dev/null
fi

echo "--- building the release binary and the benchmark fixture"
# The fixture is a bench target (benches/load_fixture.rs): cargo names its file, so ask cargo.
FIXTURE=$(cargo build --release --locked --bin telnyx-webrtc-credentials --bench load_fixture \
  --message-format=json-render-diagnostics |
  python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "load_fixture":
        print(message["executable"])')
[ -x "$FIXTURE" ] || fail "the benchmark fixture did not build"

rm -rf "$OUT" && mkdir -p "$OUT/fixture"

# The yardstick of the ES256 lines (issue 3: "the rate at which one process verifies ES256
# signatures on this machine"), measured with the criterion micro-benchmark before the load, on
# the same quiet machine: the full check of one token and aws-lc's bare signature check on one
# thread, and the bare check on every core.
if [ "$MODE" = all ]; then
echo "--- the ES256 verification rate (cargo bench --bench token_verification)"
rm -rf "$ROOT/target/criterion/verify_uncached/ES256" "$ROOT/target/criterion/es256_signature"
cargo bench --locked --bench token_verification -- 'verify_uncached/ES256|es256_signature' \
  >"$OUT/criterion.log" 2>&1 || fail "the micro-benchmark failed; see $OUT/criterion.log"
# verification_rate <criterion benchmark directory>: verifications a second, from the median.
verification_rate() {
  python3 -c 'import json, sys
print(round(1e9 / json.load(open(sys.argv[1]))["median"]["point_estimate"]))' \
    "$ROOT/target/criterion/$1/new/estimates.json"
}
VERIFY_FULL=$(verification_rate verify_uncached/ES256)
VERIFY_ONE_THREAD=$(verification_rate es256_signature/one_thread)
VERIFY_ALL_CORES=$(verification_rate "es256_signature/all_cores ($(nproc) threads)")
fi

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_for() { # wait_for <description> <command...>: up to 30 s
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "$what did not happen within 30 s; see $OUT"
}

"$FIXTURE" "$OUT/fixture" 1000 >"$OUT/fixture.log" 2>&1 &
PIDS+=($!)
wait_for "the fixture writing its tokens" test -f "$OUT/fixture/ready"

declare -A PORT SERVER_PID
# start_server <name> [NAME=value ...]: the service with the fixture's environment plus these
# overrides. It runs in bench/out, so a developer's .env is not read, and logs at the default
# level (RUST_LOG=info: a line per request, part of what is measured) to /dev/null.
start_server() {
  local name=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$OUT" && exec env $(cat fixture/server.env) BIND_ADDR="127.0.0.1:$port" "$@" "$BINARY" serve \
    >/dev/null 2>"$OUT/server-$name.stderr") &
  SERVER_PID[$name]=$!
  PORT[$name]=$port
  PIDS+=("$!")
  wait_for "the $name server becoming ready" curl -fsS "http://127.0.0.1:$port/readyz"
}

# The servers, then the scenarios: "label|server|path|token file|what the first answer contains".
# To add a scenario, add a line (and, for other settings, a server).
RESULTS=$OUT/results.tsv
: >"$RESULTS"
: >"$OUT/results.txt"
if [ "$MODE" = all ]; then
start_server cached
start_server uncached ACCESS_TOKEN_CACHE_ENTRIES=0
# shellcheck disable=SC2046 # one NAME=value word per line of per-user.env
start_server per_user $(cat "$OUT/fixture/per-user.env")
# Two per_user replicas sharing one Redis (REDIS_URL), on loopback, without persistence. The
# load's first wrk thread sends to one, the second to the other (BENCH_SECOND_PORT, read by
# bench/wrk.lua), so each replica serves every user from its memory once Redis has handed it
# the token: the cached path of a deployment with Redis, confirmations of the generation
# (every 500 ms per user and replica) included.
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$OUT/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$OUT/redis" \
  --logfile "$OUT/redis/redis.log" &
PIDS+=("$!")
wait_for "redis-server answering" python3 -c "import socket; s = socket.create_connection(('127.0.0.1', $REDIS_PORT)); s.sendall(b'PING\r\n'); assert s.recv(5) == b'+PONG'"
for replica in a b; do
  # shellcheck disable=SC2046
  start_server "per_user_redis_$replica" $(cat "$OUT/fixture/per-user.env") REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
done
SCENARIOS=(
  '/healthz (baseline)|cached|/healthz|es256-users.txt|"status":"ok"'
  'HS256, 1,000 distinct users|cached|/credentials|hs256-users.txt|"success":true'
  'ES256, 1,000 distinct users|cached|/credentials|es256-users.txt|"success":true'
  'ES256, one token repeated|cached|/credentials|es256-one.txt|"success":true'
  'HS256, 1,000 distinct users, cache off|uncached|/credentials|hs256-users.txt|"success":true'
  'ES256, 1,000 distinct users, cache off|uncached|/credentials|es256-users.txt|"success":true'
  'per_user, HS256, 1,000 distinct users|per_user|/credentials|hs256-users.txt|"login_token"'
  'per_user + Redis, 2 replicas, HS256|per_user_redis_a+per_user_redis_b|/credentials|hs256-users.txt|"login_token"'
)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "--- load: $ROUNDS rounds; per scenario ${WARMUP}s warm-up + ${DURATION}s measured, $CONNECTIONS connections, $THREADS wrk threads"
# measure <label> <server> <path> <token file> <what the first answer contains>: one wrk run,
# appended to RESULTS with the round. A server "a+b" is two: wrk's odd threads load the second.
measure() {
  local label=$1 server=$2 path=$3 tokens=$OUT/fixture/$4 expect=$5
  local first=${server%%+*} second= body log result
  [[ $server == *+* ]] && second=${PORT[${server#*+}]}
  local url="http://127.0.0.1:${PORT[$first]}$path"
  # A broken set-up must not look fast: a request has to succeed before the load starts (on
  # each server), and every non-2xx answer during it is counted.
  for port in ${PORT[$first]} $second; do
    body=$(curl -fsS -H "Authorization: Bearer $(head -n1 "$tokens")" "http://127.0.0.1:$port$path") ||
      fail "$label: port $port did not answer 2xx"
    [[ $body == *"$expect"* ]] || fail "$label: the answer lacks $expect: $body"
  done
  BENCH_SECOND_PORT=$second wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/wrk.lua "$url" -- "$tokens" >/dev/null
  log=$OUT/wrk-round$round-${label//[^A-Za-z0-9]/_}.txt
  BENCH_SECOND_PORT=$second wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/wrk.lua "$url" -- "$tokens" >>"$log"
  result=$(grep '^RESULT ' "$log" | tail -n1) || fail "$label: wrk printed no RESULT; see $log"
  printf '%s\t%s\t%s\n' "$round" "$label" "${result#RESULT }" >>"$RESULTS"
  echo "    round $round, $label: ${result#RESULT }"
}

# Each scenario is measured right after a /healthz run of its own, and its ratio is to that run:
# on a shared machine the speed drifts by 10 to 20% over tens of seconds, and a baseline taken
# once per round (up to half a minute earlier) let that drift into the ratios.
for round in $(seq "$ROUNDS"); do
  for scenario in "${SCENARIOS[@]:1}"; do
    IFS='|' read -r label server path tokens expect <<<"${SCENARIOS[0]}"
    measure "$label" "$server" "$path" "$tokens" "$expect"
    IFS='|' read -r label server path tokens expect <<<"$scenario"
    measure "$label" "$server" "$path" "$tokens" "$expect"
  done
done

peak_rss_mib() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/${SERVER_PID[$1]}/status"
}
RSS="$(peak_rss_mib cached) MiB with the token cache (default ACCESS_TOKEN_CACHE_ENTRIES, about 2,000 tokens held), $(peak_rss_mib uncached) MiB with it off, $(peak_rss_mib per_user) MiB in per_user mode, $(peak_rss_mib per_user_redis_a) and $(peak_rss_mib per_user_redis_b) MiB for the two per_user replicas with Redis"
REDIS_COMMANDS=$(for replica in a b; do
  curl -fsS "http://127.0.0.1:${PORT[per_user_redis_$replica]}/metrics" |
    awk -v name="$replica" '/^redis_commands_total\{outcome="ok"\}/ { ok = $2 } /^cache_lookups_total\{cache="shared_login_tokens",result="miss"\}/ { miss = $2 }
      END { printf "replica %s: %d Redis commands, %d tokens minted under its lease; ", name, ok, miss }'
done)

{
  echo
  echo "Machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -sr)"
  echo "Load: wrk on the same machine, $THREADS threads, $CONNECTIONS connections; $ROUNDS rounds of ${DURATION}s per scenario after ${WARMUP}s warm-up"
  echo "Load average before / after: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
  echo
  awk -F'\t' -v rounds="$ROUNDS" -v medians="$OUT/medians.tsv" '
    function median(list,   n, values, i, j, swap) {
      n = split(list, values, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (values[j] + 0 < values[i] + 0) { swap = values[i]; values[i] = values[j]; values[j] = swap }
      return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
    }
    {
      round = $1; label = $2
      if (!(label in seen)) { seen[label] = 1; order[++count] = label }
      n = split($3, fields, " ")
      for (i = 1; i <= n; i++) { split(fields[i], kv, "="); value[kv[1]] = kv[2] }
      rps = value["requests"] / (value["duration_us"] / 1e6)
      # In each pair the baseline comes first (see the loop above).
      if (label == order[1]) baseline = rps
      all_rps[label] = all_rps[label] " " rps
      ratios[label] = ratios[label] " " rps / baseline
      p50[label] = p50[label] " " value["p50_us"] / 1000
      p99[label] = p99[label] " " value["p99_us"] / 1000
      non2xx[label] += value["non2xx"]
      sockets[label] += value["connect"] + value["read"] + value["write"] + value["timeout"]
      per_round[label] = per_round[label] sprintf("%s%.0f", per_round[label] == "" ? "" : " / ", rps)
      runs[label]++
    }
    END {
      printf "| %-38s | %7s | %6s | %6s | %7s | %6s | %10s | %s |\n", "scenario", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket", "÷ /healthz", "req/s in each round"
      printf "|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------------------------", "--------:", "-------:", "-------:", "--------:", "-------:", "-----------:", "---"
      for (i = 1; i <= count; i++) {
        label = order[i]
        printf "| %-38s | %7.0f | %6.2f | %6.2f | %7d | %6d | %9.2fx | %s |\n", label, median(all_rps[label]), median(p50[label]), median(p99[label]), non2xx[label], sockets[label], median(ratios[label]), i == 1 ? runs[label] " runs, one before each scenario" : per_round[label]
        printf "%s\t%.0f\n", label, median(all_rps[label]) >medians
      }
      print ""
      print "req/s, p50 and p99 are medians over the runs; ÷ /healthz is the median of each run'"'"'s ratio to the /healthz run just before it."
      print "non-2xx counts answers with status 400 or more over all rounds (the service sends no 1xx or 3xx); socket counts connect, read, write and timeout errors."
    }' "$RESULTS"
  # The two per_user lines run one after the other in each round: their ratio round by round,
  # in req/s and in their ratios to /healthz (each line's own baseline run just before it).
  awk -F'\t' -v medians="$OUT/medians.tsv" '
    function median(list,   n, values, i, j, swap) {
      n = split(list, values, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (values[j] + 0 < values[i] + 0) { swap = values[i]; values[i] = values[j]; values[j] = swap }
      return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
    }
    {
      n = split($3, fields, " ")
      for (i = 1; i <= n; i++) { split(fields[i], kv, "="); value[kv[1]] = kv[2] }
      rps = value["requests"] / (value["duration_us"] / 1e6)
      if ($2 == "/healthz (baseline)") baseline = rps
      if ($2 == "per_user, HS256, 1,000 distinct users") { memory[$1] = rps; memory_ratio[$1] = rps / baseline }
      if ($2 == "per_user + Redis, 2 replicas, HS256") { redis[$1] = rps; redis_ratio[$1] = rps / baseline }
    }
    END {
      for (round = 1; round in redis && round in memory; round++) {
        direct = direct sprintf(" %.2f", redis[round] / memory[round])
        normalised = normalised sprintf(" %.2f", redis_ratio[round] / memory_ratio[round])
        rounds = rounds sprintf("%s%.2f", rounds == "" ? "" : " / ", redis[round] / memory[round])
      }
      if (direct != "") printf "per_user with Redis on two replicas ÷ per_user in memory: %.2fx in req/s (round by round: %s), %.2fx in their ratios to /healthz\n", median(direct), rounds, median(normalised)
    }' "$RESULTS"
  echo "  ${REDIS_COMMANDS%; } (over the whole run)"
  echo
  echo "ES256 verification in one process (cargo bench --bench token_verification, medians, before the load):"
  echo "  the full check of a token on one thread: $VERIFY_FULL/s; the signature check alone: $VERIFY_ONE_THREAD/s on one thread, $VERIFY_ALL_CORES/s on all $(nproc) cores"
  awk -F'\t' -v full="$VERIFY_FULL" -v one="$VERIFY_ONE_THREAD" -v all="$VERIFY_ALL_CORES" '/^ES256, 1,000 distinct users/ {
    printf "  %s: %d req/s = %.2fx the full check on one thread, %.2fx the signature check on one thread, %.2fx on all cores\n", $1, $2, $2 / full, $2 / one, $2 / all
  }' "$OUT/medians.tsv"
  echo
  echo "Peak resident memory (VmHWM): $RSS."
} | tee "$OUT/results.txt"
fi

# The slowloris line (issue 14): SLOWLORIS_CONNECTIONS connections that each send the start of a
# request head and then one more byte every 2 s, never finishing it (bench/slowloris.py; a
# connection the server closes is opened again at once, as an attacker would), against a server
# with the default connection settings. Beside them, the normal load of the table (wrk, HS256
# tokens of 1,000 users on kept-alive connections) and a newcomer: 200 requests to /healthz one
# after another, each on a new connection. Both are measured first without the attack, then with
# it, the same way.
SLOWLORIS_CONNECTIONS=${SLOWLORIS_CONNECTIONS:-3000}
SLOWLORIS_DURATION=${SLOWLORIS_DURATION:-10}
if [ "$SLOWLORIS_CONNECTIONS" -gt 0 ]; then
  start_server slowloris
  slow_port=${PORT[slowloris]}
  slow_url="http://127.0.0.1:$slow_port/credentials"
  slow_tokens=$OUT/fixture/hs256-users.txt
  slow_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/${SERVER_PID[slowloris]}/status"; }
  slow_metric() { curl -fsS "http://127.0.0.1:$slow_port/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
  # slow_load <name>: the normal load and the newcomer's requests at once.
  slow_load() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/wrk.lua "$slow_url" -- "$slow_tokens" >/dev/null
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SLOWLORIS_DURATION}s" --latency -s bench/wrk.lua "$slow_url" -- "$slow_tokens" \
      >"$OUT/slowloris-wrk-$1.txt" &
    local wrk_pid=$!
    python3 bench/slowloris.py probe "$slow_port" 200 >"$OUT/slowloris-probe-$1.txt"
    wait "$wrk_pid"
    grep -q '^RESULT ' "$OUT/slowloris-wrk-$1.txt" || fail "slowloris: wrk printed no RESULT; see $OUT/slowloris-wrk-$1.txt"
    grep -q '^PROBE ' "$OUT/slowloris-probe-$1.txt" || fail "slowloris: no PROBE line; see $OUT/slowloris-probe-$1.txt"
  }
  echo "--- slowloris: the load alone, then beside $SLOWLORIS_CONNECTIONS slow connections"
  curl -fsS -H "Authorization: Bearer $(head -n1 "$slow_tokens")" "$slow_url" >/dev/null ||
    fail "slowloris: $slow_url did not answer 2xx"
  slow_load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  rss_quiet=$(slow_rss)
  slow_load quiet
  timeouts_before=$(slow_metric 'http_connections_closed_total{reason="header_timeout"}')
  rm -f "$OUT/slowloris.ready" "$OUT/slowloris.stop"
  python3 bench/slowloris.py "$slow_port" "$SLOWLORIS_CONNECTIONS" 2 $((WARMUP + SLOWLORIS_DURATION + 60)) \
    "$OUT/slowloris.ready" "$OUT/slowloris.stop" >"$OUT/slowloris.txt" 2>&1 &
  attack=$!
  PIDS+=("$attack")
  wait_for "$SLOWLORIS_CONNECTIONS slow connections being open" test -f "$OUT/slowloris.ready"
  held=$(slow_metric http_connections_open)
  rss_attack=$(slow_rss)
  slow_load attack
  touch "$OUT/slowloris.stop"
  wait "$attack" || fail "slowloris: the attack failed; see $OUT/slowloris.txt"
  timeouts_after=$(slow_metric 'http_connections_closed_total{reason="header_timeout"}')
  attack_line=$(grep '^SLOWLORIS ' "$OUT/slowloris.txt") || fail "slowloris: no SLOWLORIS line; see $OUT/slowloris.txt"
  # The cap the server derived, as check-config reports it for the same environment.
  max_connections=$(cd "$OUT" && env $(cat fixture/server.env) "$BINARY" check-config |
    awk -F' += ' '/^connections at most/ { split($2, words, " "); print words[1] }')
  {
    echo
    echo "Slowloris: $SLOWLORIS_CONNECTIONS connections sending a request head a byte every 2 s and never finishing it, against the default HTTP_HEADER_TIMEOUT_SECS (10) and MAX_CONNECTIONS; ${SLOWLORIS_DURATION}s of load after ${WARMUP}s warm-up, beside the attack and without it"
    echo "Load: wrk on the same machine, $THREADS threads, $CONNECTIONS connections; load average before / after: $slow_load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
    printf '| %-30s | %7s | %6s | %6s | %7s | %6s | %s |\n' "load" "req/s" "p50 ms" "p99 ms" "non-2xx" "socket" "a newcomer on a new connection: p50 / p99 / max ms (failures of 200)"
    printf '|%s|%s|%s|%s|%s|%s|%s|\n' "--------------------------------" "--------:" "-------:" "-------:" "--------:" "-------:" "---"
    for run in quiet attack; do
      label=$([ "$run" = quiet ] && echo "without the attack" || echo "beside $SLOWLORIS_CONNECTIONS slow connections")
      awk -v label="$label" '
        FILENAME ~ /wrk/ && /^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); w[kv[1]] = kv[2] } }
        FILENAME ~ /probe/ && /^PROBE / { for (i = 2; i <= NF; i++) { split($i, kv, "="); p[kv[1]] = kv[2] } }
        END {
          printf "| %-30s | %7.0f | %6.2f | %6.2f | %7d | %6d | %s / %s / %s (%d) |\n", label,
            w["requests"] / (w["duration_us"] / 1e6), w["p50_us"] / 1000, w["p99_us"] / 1000, w["non2xx"],
            w["connect"] + w["read"] + w["write"] + w["timeout"], p["p50_ms"], p["p99_ms"], p["max_ms"], p["failures"]
        }' "$OUT/slowloris-wrk-$run.txt" "$OUT/slowloris-probe-$run.txt"
    done
    echo "The attack: ${attack_line#SLOWLORIS }; the server held $held connections once all were open (http_connections_open, MAX_CONNECTIONS ${max_connections:-?}), and closed $((${timeouts_after%.*} - ${timeouts_before%.*})) at the header timeout during the run."
    awk -v quiet="$rss_quiet" -v attack="$rss_attack" -v held="$held" 'BEGIN {
      printf "Resident memory: %.1f MiB before the attack, %.1f MiB with its connections open: %.1f KiB a slow connection.\n", quiet / 1024, attack / 1024, (attack - quiet) / (held > 0 ? held : 1)
    }'
  } | tee -a "$OUT/results.txt"
fi

# The soak (issue 6): SOAK_REQUESTS (default 1,000,000) requests of mixed valid and invalid
# tokens (bench/soak.lua, fixture/mixed.txt) at a server with the default limits, so the valid
# users soon hit RATE_LIMIT_PER_USER. Expected answers: 200, 401, 403 and 429; anything else is
# an error. Resident memory is read after a warm-up and after the last request.
SOAK_REQUESTS=${SOAK_REQUESTS:-1000000}
if [ "$MODE" = all ] && [ "$SOAK_REQUESTS" -gt 0 ]; then
  start_server soak RATE_LIMIT_PER_USER=
  soak_url="http://127.0.0.1:${PORT[soak]}/credentials"
  rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/${SERVER_PID[soak]}/status"; }
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s bench/soak.lua "$soak_url" -- "$OUT/fixture/mixed.txt" >/dev/null
  rss_start=$(rss_mib)
  echo "--- soak: $SOAK_REQUESTS mixed requests at $soak_url (resident memory after warm-up: $rss_start MiB)"
  declare -A SOAK=([requests]=0 [s200]=0 [s401]=0 [s403]=0 [s429]=0 [s5xx]=0 [other]=0 [socket]=0)
  chunk=0
  while [ "${SOAK[requests]}" -lt "$SOAK_REQUESTS" ]; do
    chunk=$((chunk + 1))
    line=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s bench/soak.lua "$soak_url" -- "$OUT/fixture/mixed.txt" | grep '^SOAK ') ||
      fail "soak: wrk printed no SOAK line"
    for pair in ${line#SOAK }; do SOAK[${pair%%=*}]=$((SOAK[${pair%%=*}] + ${pair#*=})); done
    echo "    chunk $chunk: ${line#SOAK } (total ${SOAK[requests]}, resident $(rss_mib) MiB)"
  done
  rss_end=$(rss_mib)
  {
    echo
    echo "Soak: ${SOAK[requests]} requests, mixed tokens (6 in 10 valid, of 1,000 users; expired, forged, anonymous, not a JWT), default RATE_LIMIT_PER_USER"
    echo "  200: ${SOAK[s200]}  401: ${SOAK[s401]}  403: ${SOAK[s403]}  429: ${SOAK[s429]}  5xx: ${SOAK[s5xx]}  other: ${SOAK[other]}  socket errors: ${SOAK[socket]}"
    echo "  resident memory: $rss_start MiB after warm-up, $rss_end MiB at the end, peak (VmHWM) $(peak_rss_mib soak) MiB"
  } | tee -a "$OUT/results.txt"
  [ "${SOAK[s5xx]}" -eq 0 ] && [ "${SOAK[other]}" -eq 0 ] && [ "${SOAK[socket]}" -eq 0 ] ||
    fail "the soak saw answers other than 200, 401, 403 and 429, or socket errors"
fi
