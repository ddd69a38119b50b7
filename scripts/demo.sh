#!/usr/bin/env bash
# demo.sh: telemetryd end to end on this machine, no root or systemd needed.
#
#   make demo        (builds the release binaries, then runs: TELEMETRY_BIN=<bin dir> bash scripts/demo.sh)
#
# Starts telemetryd with its socket, store and log in demo-state/ (removed first, gitignored), waits until
# it answers, and puts the `telemetry` client of TELEMETRY_BIN first on PATH, where the bash library finds
# it. Runs scripts/example-deploy.sh, the specification's example script instrumented with
# share/telemetry/utils.sh, twice: a deployment that succeeds and one that fails (--fail). Shows what the
# daemon stored with `telemetry status`, `executions` and `show`, checks both documents (exit code, status,
# metrics, tags, events), then stops the daemon with SIGTERM. Exits 0 only if every step worked; on a
# failure it kills the daemon and prints its log.
#
# Everything stays in the local store: the demo sets no TELEMETRY_ENDPOINT, and checks that the daemon
# forwards nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# ---- setup ------------------------------------------------------------------------------------------

bin=${TELEMETRY_BIN:-}
if [[ -z $bin ]]; then
    for candidate in .build/release .build/debug; do
        if [[ -x $candidate/telemetryd && -x $candidate/telemetry ]]; then bin=$repo/$candidate; break; fi
    done
fi
if [[ -z $bin || ! -x $bin/telemetryd || ! -x $bin/telemetry ]]; then
    echo "demo: no telemetryd and telemetry binaries in '${bin:-.build/release or .build/debug}'; run 'make demo'" >&2
    exit 1
fi
bin=$(cd "$bin" && pwd)

# Only the demo's own settings: no TELEMETRY_* variable of the caller's shell (TELEMETRY_ENDPOINT,
# TELEMETRY_ENABLED, TELEMETRY_CLIENT, ...) and no DO_NOT_TRACK reaches the daemon, the example script or
# the clients, and --config below keeps /etc/telemetryd/telemetryd.conf out of it.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TELEMETRY_' || true)
unset DO_NOT_TRACK

state=$repo/demo-state
rm -rf "$state"
mkdir -p "$state"
socket=$state/telemetryd.sock
if ((${#socket} > 107)); then  # sockaddr_un holds 107 bytes: a repository in a deep directory
    socket=$(mktemp -d /tmp/telemetryd-demo.XXXXXX)/telemetryd.sock
    echo "demo: the repository path is too long for a Unix socket path; using $socket"
fi
log=$state/telemetryd.log
# The demo daemon's configuration file (the socket and state directory are flags, which win). The spool,
# where clients leave lines while the daemon is unreachable, stays in demo-state/ too: the clients get the
# same directory through their environment.
cat >"$state/telemetryd.conf" <<EOF
TELEMETRY_RETENTION_DAYS=7
TELEMETRY_LOG_LEVEL=info
TELEMETRY_SPOOL_DIR='$state/spool'
EOF
export TELEMETRY_SPOOL_DIR=$state/spool

# The example script's bash library looks for `telemetry` on PATH: these binaries come first.
export PATH="$bin:$PATH"
export TELEMETRY_SOCKET=$socket

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

daemon_pid=
on_exit() {
    local status=$?
    if ((status != 0)); then
        echo "demo: FAILED (exit status $status)" >&2
        if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
            kill -KILL "$daemon_pid" 2>/dev/null || true
            wait "$daemon_pid" 2>/dev/null || true
        fi
        if [[ -f $log ]]; then
            echo "---- telemetryd log ($log) ----" >&2
            cat "$log" >&2
        fi
    fi
    return "$status"
}
trap on_exit EXIT

# ---- start the daemon -------------------------------------------------------------------------------

section "start telemetryd (socket $socket, store $state/state)"
# Metrics on a free loopback port (the log's ready line shows it), so the demo never collides with a
# telemetryd already running on this host.
TELEMETRY_METRICS_LISTEN=127.0.0.1:0 \
    "$bin/telemetryd" --config "$state/telemetryd.conf" --socket "$socket" --state-dir "$state/state" >"$log" 2>&1 &
daemon_pid=$!
ready=0
for ((attempt = 0; attempt < 100; attempt++)); do  # up to ~10 s
    if telemetry status >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$daemon_pid" 2>/dev/null || fail "telemetryd exited during startup"
    sleep 0.1
done
((ready)) || fail "telemetryd did not answer on $socket within 10 s"
echo "telemetryd is up (pid $daemon_pid, log $log)"

# ---- scripts send telemetry -------------------------------------------------------------------------

# The newest stored execution of deploy-service (`telemetry executions` lists newest first).
newest_execution() {
    telemetry executions --script deploy-service --limit 1 --json |
        python3 -c 'import json, sys; rows = json.load(sys.stdin); print(rows[0]["execution_id"] if rows else "")'
}
# new_execution PREVIOUS_ID: the newest execution once it differs from PREVIOUS_ID. The script's exit path
# waits until its end line is durable, but at most TELEMETRY_FLUSH_TIMEOUT (2 s): on a loaded machine
# the document may come a moment later, so wait for it (up to ~10 s).
new_execution() {
    local id attempt
    for ((attempt = 0; attempt < 100; attempt++)); do
        id=$(newest_execution)
        if [[ -n $id && $id != "$1" ]]; then echo "$id"; return 0; fi
        sleep 0.1
    done
    return 1
}

section "a deployment that succeeds: scripts/example-deploy.sh"
set +e
TELEMETRY_ENVIRONMENT=staging bash scripts/example-deploy.sh
ok_status=$?
set -e
((ok_status == 0)) || fail "example-deploy.sh exited with $ok_status, expected 0"
ok_id=$(new_execution "") || fail "no execution of deploy-service is stored after the successful run"
echo "(exit status $ok_status; stored as execution $ok_id)"

section "a deployment that fails: scripts/example-deploy.sh --fail"
set +e
TELEMETRY_ENVIRONMENT=staging DEPLOY_SERVICE=billing-service bash scripts/example-deploy.sh --fail
fail_status=$?
set -e
((fail_status == 1)) || fail "example-deploy.sh --fail exited with $fail_status, expected 1"
fail_id=$(new_execution "$ok_id") || fail "no new execution of deploy-service is stored after the failed run"
echo "(exit status $fail_status; stored as execution $fail_id)"

# ---- what the daemon has ----------------------------------------------------------------------------

section "telemetry status"
telemetry status
telemetry status --json >"$state/status.json"

section "telemetry executions"
telemetry executions

section "telemetry show $ok_id"
telemetry show "$ok_id"

section "telemetry show $fail_id"
telemetry show "$fail_id"

section "telemetry show $ok_id --json"
telemetry show "$ok_id" --json | tee "$state/ok.json"
telemetry show "$fail_id" --json >"$state/fail.json"

section "check the documents"
python3 - "$state/status.json" "$state/ok.json" "$ok_id" "$state/fail.json" "$fail_id" <<'PY'
import json, sys

status = json.load(open(sys.argv[1]))
problems = []

def check(condition, what):
    print(("  ok    " if condition else "  WRONG ") + what)
    if not condition:
        problems.append(what)

check(status.get("endpoint") is None and status.get("delivery") is None,
      "the daemon forwards nothing (no TELEMETRY_ENDPOINT, no delivery)")

def check_document(path, execution_id, exit_code, outcome, service, business):
    d = json.load(open(path))
    name = "success" if exit_code == 0 else "failure"
    check(d.get("execution_id") == execution_id, f"{name}: execution_id {execution_id}")
    check(d.get("script_name") == "deploy-service" and d.get("script_version") == "v1.0.0",
          f"{name}: script deploy-service v1.0.0")
    check(d.get("exit_code") == exit_code and d.get("status") == outcome,
          f"{name}: exit_code {exit_code}, status {outcome}")
    check(d.get("environment") == "staging", f"{name}: environment staging")
    check(d.get("user_id", "").startswith("u_"), f"{name}: user_id anonymized")
    metrics = d.get("metrics", {})
    for metric in ("execution_time", "memory_usage", "cpu_usage", "disk_usage"):
        value = metrics.get(metric)
        check(isinstance(value, (int, float)) and value >= 0, f"{name}: metric {metric} = {value}")
    check(metrics.get("memory_usage", 0) > 0, f"{name}: memory_usage is above 0")
    for metric, expected in business.items():
        check(metrics.get(metric) == expected, f"{name}: metric {metric} = {expected} (got {metrics.get(metric)})")
    tags = {"service": service, "region": "us-east-1", "cluster": "production"}
    check(d.get("tags") == tags, f"{name}: tags {tags}")
    return d

ok = check_document(sys.argv[2], sys.argv[3], 0, "success", "auth-service",
                    {"services_deployed": 5, "databases_migrated": 3, "users_created": 100,
                     "failed_deployments": 0, "rollback_count": 0, "timeout_errors": 1})
types = {e["type"] for e in ok.get("events", [])}
check({"debug", "info", "warning", "success"} <= types, f"success: events debug, info, warning, success (got {sorted(types)})")
check(ok.get("errors") == [], "success: no errors")
done = [e for e in ok.get("events", []) if e["type"] == "success" and e["operation"] == "deployment"]
check(len(done) == 1 and done[0].get("duration_seconds", -1) >= 0,
      "success: one success event of operation deployment, with duration_seconds (telemetry_start_timer)")

failed = check_document(sys.argv[4], sys.argv[5], 1, "failure", "billing-service",
                        {"services_deployed": 3, "databases_migrated": 3, "users_created": 100,
                         "failed_deployments": 1, "rollback_count": 1, "timeout_errors": 1})
errors = failed.get("errors", [])
check(len(errors) == 1 and errors[0]["type"] == "error" and "Database connection failed" in errors[0]["message"],
      "failure: one error, Database connection failed")
check(not any(e["type"] == "success" for e in failed.get("events", [])), "failure: no success event")
check(any(e["operation"] == "rollback" for e in failed.get("events", [])), "failure: the rollback warning")

if problems:
    sys.exit(f"{len(problems)} check(s) failed")
PY

# ---- stop -------------------------------------------------------------------------------------------

section "stop telemetryd (SIGTERM); its log:"
kill -TERM "$daemon_pid"
for ((attempt = 0; attempt < 100; attempt++)); do  # up to ~10 s
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$daemon_pid" 2>/dev/null && fail "telemetryd did not exit within 10 s of SIGTERM"
daemon_status=0
wait "$daemon_pid" || daemon_status=$?
daemon_pid=
((daemon_status == 0)) || fail "telemetryd exited with status $daemon_status"
cat "$log"

section "demo OK"
echo "The store stays in demo-state/state/ until the next 'make demo'. Query it with:"
echo "  sqlite3 -readonly demo-state/state/telemetry.db 'SELECT execution_id, status FROM documents'"
