# shellcheck shell=bash
# Shared by tests/bash/*.bats. Each test file gets a private telemetryd (setup_file), reached through
# TELEMETRY_SOCKET; the binaries come from TELEMETRY_BIN (a directory; default .build/debug of the
# repository). Scratch space lives under one short mktemp directory in /tmp (a Unix socket path has at
# most 107 bytes), removed in teardown_file.

TELEMETRY_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TELEMETRY_REPO
LIBRARY=$TELEMETRY_REPO/share/telemetry/utils.sh
FIXTURES=$TELEMETRY_REPO/tests/bash/fixtures

# Resolve the binaries once per file.
telemetry_test_bin() {
    local bin=${TELEMETRY_BIN:-$TELEMETRY_REPO/.build/debug}
    [[ $bin == /* ]] || bin=$TELEMETRY_REPO/$bin
    echo "$bin"
}

# start_daemon DIR: a telemetryd with its socket, state and log in DIR; waits (bounded) until
# `telemetry status` answers. Sets DAEMON_PID.
start_daemon() {
    local dir=$1 i
    mkdir -p "$dir/state"
    # No metrics listener unless a test asks for one: test daemons run side by side.
    TELEMETRY_METRICS_LISTEN=${TELEMETRY_METRICS_LISTEN:-off} \
        "$BIN/telemetryd" --socket "$dir/s.sock" --state-dir "$dir/state" >"$dir/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for ((i = 0; i < 200; i++)); do
        if TELEMETRY_SOCKET=$dir/s.sock "$BIN/telemetry" status >/dev/null 2>&1; then return 0; fi
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "telemetryd in $dir did not answer within 10 s; its log:" >&2
    cat "$dir/daemon.log" >&2
    return 1
}

# stop_daemon PID: SIGTERM (SIGCONT first, in case a test stopped it), then SIGKILL after 5 s.
stop_daemon() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}

setup_file() {
    BIN=$(telemetry_test_bin)
    export BIN
    if [[ ! -x $BIN/telemetryd || ! -x $BIN/telemetry ]]; then
        echo "no telemetryd/telemetry in $BIN: run 'swift build' or set TELEMETRY_BIN" >&2
        return 1
    fi
    SCRATCH=$(mktemp -d /tmp/tbats.XXXXXX)
    export SCRATCH
    start_daemon "$SCRATCH/d"
    echo "$DAEMON_PID" >"$SCRATCH/daemon.pid"
    export TELEMETRY_SOCKET=$SCRATCH/d/s.sock
    export TELEMETRY_SPOOL_DIR=$SCRATCH/spool
    mkdir -p "$TELEMETRY_SPOOL_DIR"
    export TELEMETRY_CLIENT=$BIN/telemetry
    export PATH="$BIN:$PATH"
}

teardown_file() {
    [[ -n ${SCRATCH-} && -d $SCRATCH ]] || return 0
    if [[ -f $SCRATCH/daemon.pid ]]; then stop_daemon "$(cat "$SCRATCH/daemon.pid")"; fi
    if [[ -f $SCRATCH/extra.pids ]]; then
        local pid
        while read -r pid; do stop_daemon "$pid"; done <"$SCRATCH/extra.pids"
    fi
    if mountpoint -q "$SCRATCH/full" 2>/dev/null; then umount "$SCRATCH/full" || true; fi
    rm -rf "$SCRATCH"
}

setup() {
    unset TELEMETRY_ENABLED DO_NOT_TRACK TELEMETRY_DEBUG TELEMETRY_ENVIRONMENT TELEMETRY_FLUSH_TIMEOUT
    WORK=$(mktemp -d "$SCRATCH/w.XXXXXX")
    # A script directory laid out like the seed's: script.sh next to telemetry/utils.sh.
    mkdir -p "$WORK/telemetry"
    ln -s "$LIBRARY" "$WORK/telemetry/utils.sh"
}

# script NAME <<'EOF' ... EOF: writes $WORK/NAME (executable) from stdin.
script() {
    cat >"$WORK/$1"
    chmod +x "$WORK/$1"
}

# execution_id_of FILE: the first execution id printed as "id=<uuid>" in FILE.
execution_id_of() {
    sed -n 's/^.*id=\([0-9a-f-]\{36\}\).*$/\1/p' "$1" | head -n 1
}

# document ID: the stored document of execution ID, as JSON on stdout (waits up to 5 s for it).
document() {
    local id=$1 i
    for ((i = 0; i < 100; i++)); do
        if "$BIN/telemetry" show "$id" --json 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "no stored document for $id" >&2
    return 1
}

# jq-like access with python3: json_get 'expression on d' < document
json_get() {
    python3 -c 'import json,sys; d=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if isinstance(v,str) else json.dumps(v))' "$1"
}

# The pids of processes running `$TELEMETRY_CLIENT send` whose environment holds TEST_TAG=$1.
client_pids() {
    local tag=$1 p
    for p in /proc/[0-9]*; do
        [[ -r $p/cmdline ]] || continue
        [[ $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) == "$TELEMETRY_CLIENT send"* ]] || continue
        if tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "TEST_TAG=$tag"; then echo "${p#/proc/}"; fi
    done
}
