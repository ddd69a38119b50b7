#!/usr/bin/env bash
# demo.sh: telemetryd end to end on this machine, no root or systemd needed.
#
#   make demo        (builds the release binaries, then runs: TELEMETRY_BIN=<bin dir> bash scripts/demo.sh)
#
# Starts telemetryd with its socket, store and log in demo-state/ (removed first, gitignored), waits until
# it answers, runs scripts/example-deploy.sh twice (a successful and a failed deployment), shows what the
# daemon stored with the `telemetry` commands, then stops the daemon with SIGTERM. Exits 0 only if every
# step worked; on a failure it kills the daemon and prints its log.
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

# Only the demo's own settings: no TELEMETRY_* variable of the caller's shell reaches the daemon or the
# clients, and --config below keeps /etc/telemetryd/telemetryd.conf out of it.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TELEMETRY_' || true)

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

section "a deployment that succeeds: scripts/example-deploy.sh"
TELEMETRY_ENVIRONMENT=staging bash scripts/example-deploy.sh | tee "$state/deploy-ok.out"
ok_id=$(sed -n 's/^.*: execution \([0-9a-f-]\{36\}\) .*$/\1/p' "$state/deploy-ok.out")
[[ -n $ok_id ]] || fail "example-deploy.sh printed no execution id"

section "a deployment that fails: scripts/example-deploy.sh --fail"
set +e
TELEMETRY_ENVIRONMENT=staging DEPLOY_SERVICE=billing-service bash scripts/example-deploy.sh --fail \
    | tee "$state/deploy-fail.out"
fail_status=${PIPESTATUS[0]}
set -e
((fail_status == 1)) || fail "example-deploy.sh --fail exited with $fail_status, expected 1"
fail_id=$(sed -n 's/^.*: execution \([0-9a-f-]\{36\}\) .*$/\1/p' "$state/deploy-fail.out")
[[ -n $fail_id ]] || fail "example-deploy.sh --fail printed no execution id"

# ---- what the daemon has ----------------------------------------------------------------------------

section "telemetry status"
telemetry status

section "telemetry executions"
executions=$(telemetry executions)
echo "$executions"
grep -q "^$ok_id .* success " <<<"$executions" || fail "execution $ok_id is not listed as success"
grep -q "^$fail_id .* failure " <<<"$executions" || fail "execution $fail_id is not listed as failure"

section "telemetry show $ok_id"
telemetry show "$ok_id"

section "telemetry show $ok_id --json"
document=$(telemetry show "$ok_id" --json)
echo "$document"
for expected in "\"execution_id\":\"$ok_id\"" '"status":"success"' '"exit_code":0' '"environment":"staging"' \
    '"services_deployed":5' '"execution_time":' '"memory_usage":' '"service":"auth-service"' \
    '"region":"us-east-1"' '"cluster":"production"' '"type":"success"' '"type":"warning"' '"type":"error"'; do
    [[ $document == *"$expected"* ]] || fail "the document of $ok_id lacks $expected"
done
[[ $(telemetry show "$fail_id" --json) == *'"exit_code":1'* ]] || fail "the document of $fail_id lacks exit_code 1"

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
