#!/usr/bin/env bash
# bench/run.sh — telemetryd's benchmarks, side by side, in one table (figure, target, ratio, PASS/MISS).
#
#   make bench                                   (builds, then runs this with TELEMETRY_BIN set)
#   TELEMETRY_BIN=<release bin dir> bash bench/run.sh
#
# What it measures (every target comes from the product's requirements):
#   1. One-shot `telemetry send` of one ~280-byte event line read from a file, against util-linux
#      `logger -T -u SOCKET` sending the same line to a stream socket. Target: telemetry <= 0.6 x logger.
#      Also `telemetry --version`, to separate process startup from the work of sending.
#   2. Daemon ingest: 4 concurrent `telemetry send` processes, each streaming a pre-generated file of
#      250,000 lines (~280 bytes; executions of a start line, 98 events and an end line; every execution
#      id distinct) until the daemon reports every line durably stored. Target >= 1,000,000 events/s, for the
#      median of BENCH_INGEST_RUNS runs (3; each after the first on a fresh daemon and state dir).
#      Beside it: the same files written by raw socket writers (bench/rawsend.c: no validation, so the
#      client's cost drops out) to the daemon, and both kinds of client to bench/sink.c, a process that only
#      reads the socket and counts newlines (the ceiling of this machine's socket path).
#   3. Daemon RSS (/proc/PID/status): VmRSS idle after start (target <= 15 MiB) and VmHWM over the ingest
#      run (target <= 64 MiB).
#
# Fairness of the one-shot comparison:
#   - Both clients do the same job: start, read one line from stdin (redirected from the same file),
#     connect to a Unix stream socket, write, exit. Neither waits for an answer (telemetry send without
#     --wait returns once the line is in the socket buffer; logger never waits).
#   - logger needs a listener: it gets bench/sink in serve mode, which accepts and discards. telemetry send
#     gets the real telemetryd (the PASS/MISS row), since that is what a script talks to; its accept and
#     parse cost runs on the other core while the client exits, and is not the client's wall time unless
#     the machine is saturated. An extra row sends telemetry to the very same listener as logger, so the
#     client-only comparison is apples to apples.
#   - logger does slightly more work per message (it adds an RFC 3164 header: time, host name, user);
#     telemetry send does its own extra work (it validates the line against protocol v1 before sending).
#     That is the job each tool does, so it is part of the figure.
#   - Timed with hyperfine -N (warmup, >= 200 runs, medians), in 6 rounds with the command order reversed
#     every other round and the times pooled, so that a slow or fast spell of the machine is shared by all
#     commands (BENCH_ONESHOT_ROUNDS). Debian 12's hyperfine 1.15 has no --input and gives -N commands
#     /dev/null as stdin, so every command runs as `execsh FILE PROGRAM ARG...`
#     (bench/execsh.c: opens FILE as stdin, then execs PROGRAM), and a "baseline" command, execsh alone,
#     is timed the same way; its median is subtracted from every other median. (Hyperfine's own shell
#     mode subtracts a shell-startup figure measured once up front, which on this busy 2-core machine
#     varied by more than the ~1 ms measured.) Without hyperfine (and no apt-get), an interleaved loop of
#     the same commands timed in one process is used instead.
#
# Knobs (environment): BENCH_RUNS (300), BENCH_WARMUP (20), BENCH_CLIENTS (4),
# BENCH_LINES_PER_CLIENT (250000), BENCH_LINES_PER_EXECUTION (100), CC (cc),
# BENCH_SKIP_INGEST=1 (one-shot and idle RSS only), BENCH_INGEST_RUNS (3), BENCH_ONESHOT_ROUNDS (6),
# BENCH_ONESHOT_TOOL=interleaved
# (time the one-shot commands with the fallback loop below even when hyperfine is there).
# BENCH_COMPARE_BIN=<dir with another telemetry build> adds info rows for that client in the one-shot
# comparison, e.g. a fully static one:
#   swift build -c release --static-swift-stdlib -Xswiftc -static-executable --scratch-path .build-static --product telemetry
#   BENCH_COMPARE_BIN=$(swift build -c release --static-swift-stdlib -Xswiftc -static-executable \
#       --scratch-path .build-static --show-bin-path) make bench
#
# Everything lives under bench-state/ (gitignored), recreated each run; every process started here is
# ended on exit. The daemon runs with an empty configuration file and no TELEMETRY_* variables, i.e. the
# product's defaults (TELEMETRY_STORE_SYNC=full, TELEMETRY_COMMIT_INTERVAL_MS=10), except
# TELEMETRY_SPOOL_DIR: each daemon and its clients get a spool directory under bench-state/, never the
# system's /var/spool/telemetryd (which another daemon on this machine would take in).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BIN=${TELEMETRY_BIN:-}
if [ -z "$BIN" ]; then
  BIN=$(cd "$ROOT" && swift build -c release --static-swift-stdlib --show-bin-path)
fi
for program in telemetry telemetryd; do
  if [ ! -x "$BIN/$program" ]; then
    echo "bench: $BIN/$program is missing; run \`make build\` (or set TELEMETRY_BIN to the release bin dir)" >&2
    exit 1
  fi
done

# Nothing from the caller's TELEMETRY_* settings may leak into the measurement (TELEMETRY_BIN is ours).
for variable in $(compgen -e | grep '^TELEMETRY_' || true); do
  [ "$variable" = TELEMETRY_BIN ] || unset "$variable"
done

RUNS=${BENCH_RUNS:-300}
WARMUP=${BENCH_WARMUP:-20}
CLIENTS=${BENCH_CLIENTS:-4}
LINES_PER_CLIENT=${BENCH_LINES_PER_CLIENT:-250000}
LINES_PER_EXECUTION=${BENCH_LINES_PER_EXECUTION:-100}
INGEST_RUNS=${BENCH_INGEST_RUNS:-3}
if ! [[ "$INGEST_RUNS" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench: BENCH_INGEST_RUNS must be a whole number of at least 1 (got \"$INGEST_RUNS\")" >&2
  exit 2
fi
CC=${CC:-cc}

STATE="$ROOT/bench-state"
rm -rf "$STATE"
mkdir -p "$STATE/data" "$STATE/tools" "$STATE/results"
# Unix socket paths are limited to 107 bytes: keep them short even in a deep checkout.
if [ ${#STATE} -le 80 ]; then
  SOCKETS="$STATE/sockets"
  mkdir -p "$SOCKETS"
else
  SOCKETS=$(mktemp -d /tmp/telemetry-bench.XXXXXX)
fi
RESULTS="$STATE/results"

STARTED_PIDS=()
cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  case "$SOCKETS" in /tmp/telemetry-bench.*) rm -rf "$SOCKETS" ;; esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'bench: %s\n' "$*" >&2; }

# ---- tools ------------------------------------------------------------------------------------------
install_debian() {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing $*"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 || true
  fi
}
command -v "$CC" >/dev/null || { install_debian gcc libc6-dev; CC=cc; }
command -v logger >/dev/null || install_debian bsdutils
command -v hyperfine >/dev/null || install_debian hyperfine
command -v logger >/dev/null || { say "util-linux logger is required"; exit 1; }

for tool in sink rawsend; do
  "$CC" -O2 -Wall -o "$STATE/tools/$tool" "$BENCH/$tool.c"
done
# Static when libc.a is there: the smaller its own start-up, the smaller the baseline subtracted.
"$CC" -O2 -Wall -static -o "$STATE/tools/execsh" "$BENCH/execsh.c" 2>/dev/null ||
  "$CC" -O2 -Wall -o "$STATE/tools/execsh" "$BENCH/execsh.c"
SINK="$STATE/tools/sink"
RAWSEND="$STATE/tools/rawsend"
EXECSH="$STATE/tools/execsh"

busy_builds() { pgrep -fc 'swift-build|swift-frontend' 2>/dev/null || true; }
BUSY_BEFORE=$(busy_builds)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- input (not timed) ------------------------------------------------------------------------------
[ "${BENCH_SKIP_INGEST:-0}" = 1 ] && LINES_PER_CLIENT=$LINES_PER_EXECUTION
say "generating $CLIENTS x $LINES_PER_CLIENT lines"
MEAN_LINE=$(python3 "$BENCH/gen.py" "$STATE/data" "$CLIENTS" "$LINES_PER_CLIENT" "$LINES_PER_EXECUTION")
FILES=()
for ((k = 0; k < CLIENTS; k++)); do FILES+=("$STATE/data/client-$k.jsonl"); done
ONE="$STATE/data/one.jsonl"

# ---- daemon helpers ---------------------------------------------------------------------------------
: > "$STATE/telemetryd.conf"   # empty: the product's defaults, and no /etc/telemetryd/telemetryd.conf
DAEMON_PID=""
start_daemon() {   # start_daemon NAME -> DAEMON_PID, DAEMON_SOCKET
  local name=$1
  DAEMON_SOCKET="$SOCKETS/$name.sock"
  DAEMON_SPOOL="$STATE/spool-$name"
  # The metrics listener is on, as by default, on a free port (benchmarks must not collide with a daemon).
  env -i PATH="$PATH" HOME="${HOME:-/root}" TELEMETRY_SPOOL_DIR="$DAEMON_SPOOL" TELEMETRY_METRICS_LISTEN=127.0.0.1:0 \
    "$BIN/telemetryd" --config "$STATE/telemetryd.conf" --socket "$DAEMON_SOCKET" \
    --state-dir "$STATE/$name" >"$STATE/$name.log" 2>&1 &
  DAEMON_PID=$!
  STARTED_PIDS+=("$DAEMON_PID")
  local i
  for ((i = 0; i < 200; i++)); do
    if "$BIN/telemetry" status --socket "$DAEMON_SOCKET" --timeout 1 >/dev/null 2>&1; then
      mkdir -p "$DAEMON_SPOOL"   # normally made by the daemon; the clients need it either way
      return 0
    fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then break; fi
    sleep 0.05
  done
  say "telemetryd did not start; its log:"
  cat "$STATE/$name.log" >&2
  exit 1
}
stop_daemon() {
  kill "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
}
mem_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

# ---- 3a. idle RSS -----------------------------------------------------------------------------------
say "starting telemetryd (fresh state dir)"
start_daemon daemon
sleep 1
IDLE_RSS=$(mem_kb "$DAEMON_PID" VmRSS)

# ---- 1. one-shot send vs logger -----------------------------------------------------------------------
say "one-shot: telemetry send vs logger"
LOGGER_SOCKET="$SOCKETS/logger.sock"
"$SINK" "$LOGGER_SOCKET" 0 600 >"$STATE/logger-sink.out" &
STARTED_PIDS+=("$!")
for ((i = 0; i < 100; i++)); do [ -S "$LOGGER_SOCKET" ] && break; sleep 0.02; done

# Each command runs as `execsh STDIN_FILE PROGRAM ARG...` (see bench/execsh.c); "baseline" is execsh alone,
# and report.py subtracts its median from every other median.
q() { printf '%q' "$1"; }
NAMES=(baseline telemetry logger telemetry_sink version)
COMMANDS=(
  "$(q "$EXECSH") /dev/null"
  "$(q "$EXECSH") $(q "$ONE") $(q "$BIN/telemetry") send --socket $(q "$DAEMON_SOCKET")"
  "$(q "$EXECSH") $(q "$ONE") $(q "$(command -v logger)") -T -u $(q "$LOGGER_SOCKET")"
  "$(q "$EXECSH") $(q "$ONE") $(q "$BIN/telemetry") send --socket $(q "$LOGGER_SOCKET")"
  "$(q "$EXECSH") /dev/null $(q "$BIN/telemetry") --version"
)
COMPARE=${BENCH_COMPARE_BIN:-}
if [ -n "$COMPARE" ] && [ ! -x "$COMPARE/telemetry" ]; then
  say "BENCH_COMPARE_BIN=$COMPARE has no telemetry binary; ignoring it"
  COMPARE=""
fi
if [ -n "$COMPARE" ]; then
  NAMES+=(compare_telemetry compare_version)
  COMMANDS+=("$(q "$EXECSH") $(q "$ONE") $(q "$COMPARE/telemetry") send --socket $(q "$DAEMON_SOCKET")"
             "$(q "$EXECSH") /dev/null $(q "$COMPARE/telemetry") --version")
fi
# The clients spool next to the daemon that takes their spool in, never in /var/spool/telemetryd.
export TELEMETRY_SPOOL_DIR="$DAEMON_SPOOL"
# Each must work before it is timed (a client that fails fast would look fast).
for cmd in "${COMMANDS[@]}"; do
  if ! err=$(eval "$cmd" 2>&1 >/dev/null) || [ -n "$err" ]; then
    say "one-shot command failed: $cmd: $err"
    exit 1
  fi
done
"$BIN/telemetry" flush --quiet --socket "$DAEMON_SOCKET" --timeout 10
ACCEPTED_BEFORE=$("$BIN/telemetry" status --json --socket "$DAEMON_SOCKET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lines_accepted"])')
ROUNDS=${BENCH_ONESHOT_ROUNDS:-6}
ROUND_RUNS=$(((RUNS + ROUNDS - 1) / ROUNDS))
ROUND_WARMUP=$(((WARMUP + ROUNDS - 1) / ROUNDS))
if [ "${BENCH_ONESHOT_TOOL:-hyperfine}" = hyperfine ] && command -v hyperfine >/dev/null; then
  # In rounds, the command order reversed every other round, the times of all rounds pooled: this VM has
  # slow and fast spells of tens of seconds, and timing all of one command's runs before the next let a
  # spell land on one command only (the ratio to logger swung from 0.50 to 0.81 between two runs).
  ONESHOT_TOOL="hyperfine -N, $ROUNDS rounds of $ROUND_RUNS runs"
  : >"$STATE/hyperfine.out"
  for ((round = 0; round < ROUNDS; round++)); do
    HYPERFINE_ARGS=()
    for i in "${!NAMES[@]}"; do
      k=$i
      ((round % 2 == 1)) && k=$((${#NAMES[@]} - 1 - i))
      HYPERFINE_ARGS+=(-n "${NAMES[$k]}" "${COMMANDS[$k]}")
    done
    hyperfine -N --warmup "$ROUND_WARMUP" --runs "$ROUND_RUNS" --style none \
      --export-json "$RESULTS/oneshot-round-$round.json" "${HYPERFINE_ARGS[@]}" >>"$STATE/hyperfine.out" 2>&1
  done
  python3 - "$RESULTS/oneshot.json" "$RESULTS"/oneshot-round-*.json <<'PY'
import json, sys
pooled = {}
for path in sys.argv[2:]:
    for result in json.load(open(path))["results"]:
        pooled.setdefault(result["command"], []).extend(result["times"])
json.dump({"results": [{"command": name, "times": times} for name, times in pooled.items()]}, open(sys.argv[1], "w"))
PY
  RUNS=$((ROUNDS * ROUND_RUNS))
  WARMUP=$((ROUNDS * ROUND_WARMUP))
else
  ONESHOT_TOOL="interleaved loop in one process (no hyperfine)"
  python3 - "$RESULTS/oneshot.json" "$WARMUP" "$RUNS" "${#NAMES[@]}" "${NAMES[@]}" "${COMMANDS[@]}" <<'PY'
import json, os, shlex, sys, time
out, warmup, runs, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names, commands = sys.argv[5:5 + count], [shlex.split(c) for c in sys.argv[5 + count:]]
devnull = os.open(os.devnull, os.O_WRONLY)
times = {n: [] for n in names}
for i in range(warmup + runs):          # interleaved, so background load hits every command alike
    for name, argv in zip(names, commands):
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        os.waitpid(pid, 0)
        if i >= warmup:
            times[name].append(time.perf_counter() - start)
json.dump({"results": [{"command": n, "times": times[n]} for n in names]}, open(out, "w"))
PY
fi
"$BIN/telemetry" flush --quiet --socket "$DAEMON_SOCKET" --timeout 10
ACCEPTED_AFTER=$("$BIN/telemetry" status --json --socket "$DAEMON_SOCKET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lines_accepted"])')
ONESHOT_DELIVERED=$((ACCEPTED_AFTER - ACCEPTED_BEFORE))
ONESHOT_EXPECTED=$((WARMUP + RUNS))
[ -n "$COMPARE" ] && ONESHOT_EXPECTED=$((2 * (WARMUP + RUNS)))
unset TELEMETRY_SPOOL_DIR

# ---- 2. ingest, and 3b. peak RSS ----------------------------------------------------------------------
PEAK_HWM=null AFTER_RSS=null RAW_HWM=null
if [ "${BENCH_SKIP_INGEST:-0}" != 1 ]; then
# The target row is the median of several runs (each after the first on a fresh daemon and state dir): one
# run of about a second lands in whatever spell the VM is in, and single runs of one build differed by 30 %.
for ((run = 1; run <= INGEST_RUNS; run++)); do
  say "ingest: $CLIENTS x telemetry send -> telemetryd (run $run of $INGEST_RUNS)"
  ((run > 1)) && start_daemon "daemon-$run"
  python3 "$BENCH/ingest.py" daemon --socket "$DAEMON_SOCKET" --pid "$DAEMON_PID" --telemetry "$BIN" \
    --spool-dir "$DAEMON_SPOOL" --clients telemetry --rawsend "$RAWSEND" "${FILES[@]}" \
    >"$RESULTS/ingest-telemetry-daemon-$run.json"
  if ((run == 1)); then
    sleep 2
    AFTER_RSS=$(mem_kb "$DAEMON_PID" VmRSS)
  fi
  HWM=$(mem_kb "$DAEMON_PID" VmHWM)
  if [ "$PEAK_HWM" = null ] || ((HWM > PEAK_HWM)); then PEAK_HWM=$HWM; fi
  stop_daemon
  ((run > 1)) && rm -rf "$STATE/daemon-$run"   # a few hundred MB each
done
python3 - "$RESULTS/ingest-telemetry-daemon.json" "$RESULTS"/ingest-telemetry-daemon-*.json <<'PY'
import json, sys
runs = [json.load(open(path)) for path in sys.argv[2:]]
ordered = sorted(runs, key=lambda r: r["rate"])
median = dict(ordered[(len(ordered) - 1) // 2])  # the lower middle for an even count
median["runs"] = [r["rate"] for r in runs]
median["problems"] = [p for r in runs for p in r["problems"]]
json.dump(median, open(sys.argv[1], "w"))
PY

say "ingest: $CLIENTS x raw writer -> telemetryd"
start_daemon daemon-raw
python3 "$BENCH/ingest.py" daemon --socket "$DAEMON_SOCKET" --pid "$DAEMON_PID" --telemetry "$BIN" \
  --spool-dir "$DAEMON_SPOOL" --clients raw --rawsend "$RAWSEND" "${FILES[@]}" >"$RESULTS/ingest-raw-daemon.json"
RAW_HWM=$(mem_kb "$DAEMON_PID" VmHWM)
stop_daemon

say "ceiling: newline-counting sink"
mkdir -p "$STATE/spool-sink"   # lines that clients spool here are counted, never taken in
python3 "$BENCH/ingest.py" sink --socket "$SOCKETS/sink.sock" --sink "$SINK" --telemetry "$BIN" \
  --spool-dir "$STATE/spool-sink" --clients telemetry --rawsend "$RAWSEND" "${FILES[@]}" >"$RESULTS/ingest-telemetry-sink.json"
python3 "$BENCH/ingest.py" sink --socket "$SOCKETS/sink.sock" --sink "$SINK" --telemetry "$BIN" \
  --spool-dir "$STATE/spool-sink" --clients raw --rawsend "$RAWSEND" "${FILES[@]}" >"$RESULTS/ingest-raw-sink.json"
fi

BUSY_AFTER=$(busy_builds)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

cat >"$RESULTS/rss.json" <<EOF
{"idle_rss_kb": $IDLE_RSS, "peak_hwm_kb": $PEAK_HWM, "after_rss_kb": $AFTER_RSS, "after_delay_s": 2, "raw_hwm_kb": $RAW_HWM}
EOF
cat >"$RESULTS/env.json" <<EOF
{"oneshot_tool": "$ONESHOT_TOOL", "compare_bin": "$COMPARE"}
EOF

# ---- report -------------------------------------------------------------------------------------------
echo
REVISION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
echo "telemetryd benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), revision $REVISION, $(nproc) cores, binaries: $BIN (telemetryd built $(date -u -r "$BIN/telemetryd" +%H:%MZ))"
echo "input: $CLIENTS x $LINES_PER_CLIENT lines, mean $MEAN_LINE bytes, $LINES_PER_EXECUTION lines per execution; one-shot line $(wc -c <"$ONE") bytes"
python3 "$BENCH/report.py" "$RESULTS"
echo "one-shot lines the daemon accepted during the timing: $ONESHOT_DELIVERED (expected $ONESHOT_EXPECTED: warmup + runs per telemetry command)"
if [ "$BUSY_BEFORE" -gt 0 ] || [ "$BUSY_AFTER" -gt 0 ]; then
  echo "WARNING: Swift builds were running during the bench ($BUSY_BEFORE before, $BUSY_AFTER after; load $LOAD_BEFORE -> $LOAD_AFTER): figures may be disturbed; re-run when the machine is quiet."
else
  echo "load average: $LOAD_BEFORE -> $LOAD_AFTER; no Swift builds seen before or after."
fi
echo "details: $RESULTS/*.json, $STATE/hyperfine.out"
