#!/usr/bin/env bats
# The fault matrix: fixtures/faulty.sh (strict mode; functions, subshells, pipelines, a background
# job, its own EXIT trap, exit status 3), plain and under `set -x`, must give exactly the same exit
# status, stdout and stderr (byte for byte) as the same script with TELEMETRY_ENABLED=false, whatever
# goes wrong with telemetry. Flush waits are kept short with TELEMETRY_FLUSH_TIMEOUT.

load helpers
bats_require_minimum_version 1.5.0

setup() {
    unset TELEMETRY_ENABLED DO_NOT_TRACK TELEMETRY_DEBUG
    export TELEMETRY_FLUSH_TIMEOUT=0.3
    WORK=$(mktemp -d "$SCRATCH/w.XXXXXX")
    chmod 755 "$SCRATCH" "$WORK"
    cp "$FIXTURES/faulty.sh" "$WORK/faulty.sh"
    mkdir -p "$WORK/telemetry"
    cp "$LIBRARY" "$WORK/telemetry/utils.sh"
    chmod -R a+rX "$WORK"
    export TEST_TAG=$RANDOM$RANDOM
}

# compare [RUNNER...]: runs faulty.sh with telemetry disabled, then with the fault (FAULT_HOOK and
# the environment of the caller), under RUNNER, and compares.
compare() {
    local xtrace
    for xtrace in 0 1; do
        ( unset FAULT_HOOK; TELEMETRY_ENABLED=false SCRIPT_XTRACE=$xtrace "$@" "$WORK/faulty.sh" \
            >"$WORK/off.out" 2>"$WORK/off.err" ) && off=0 || off=$?
        SCRIPT_XTRACE=$xtrace "$@" "$WORK/faulty.sh" >"$WORK/on.out" 2>"$WORK/on.err" && on=0 || on=$?
        [ "$off" -eq 3 ]
        [ "$on" -eq "$off" ] || { echo "exit status $on, expected $off (xtrace $xtrace)"; tail -5 "$WORK/on.err"; return 1; }
        cmp "$WORK/off.out" "$WORK/on.out" || { diff "$WORK/off.out" "$WORK/on.out"; return 1; }
        cmp "$WORK/off.err" "$WORK/on.err" || { diff "$WORK/off.err" "$WORK/on.err"; return 1; }
        grep -q "^cleanup: exit status 3$" "$WORK/on.out"
    done
}

# A daemon of the test's own (to stop or kill), remembered for teardown_file.
own_daemon() {
    start_daemon "$SCRATCH/$1"
    echo "$DAEMON_PID" >>"$SCRATCH/extra.pids"
    export TELEMETRY_SOCKET=$SCRATCH/$1/s.sock
}

@test "no fault: telemetry on and healthy" {
    compare
}

@test "fault: the daemon is not running" {
    export TELEMETRY_SOCKET=$WORK/nothing-here.sock
    compare
}

@test "fault: permission denied on the socket (the script runs as nobody)" {
    command -v setpriv >/dev/null || skip "setpriv is not installed"
    chmod 755 "$SCRATCH/d"
    compare setpriv --reuid=65534 --regid=65534 --clear-groups
}

@test "fault: the client binary is missing" {
    export TELEMETRY_CLIENT=$WORK/no-such-client
    compare
}

@test "fault: the client is killed mid-script" {
    export FAULT_HOOK='for p in $(client_pids "$TEST_TAG"); do kill -KILL "$p" || true; done; sleep 0.1'
    export -f client_pids
    compare
}

@test "fault: the daemon is SIGSTOPped" {
    own_daemon stopped
    kill -STOP "$DAEMON_PID"
    compare
    kill -CONT "$DAEMON_PID"
}

@test "fault: the daemon is killed mid-script" {
    own_daemon killed
    export DAEMON_TO_KILL=$DAEMON_PID
    # the first run kills it; the second (set -x) finds it gone
    export FAULT_HOOK='kill -KILL "$DAEMON_TO_KILL" 2>/dev/null || true; sleep 0.1'
    compare
}

@test "fault: the daemon's state directory is on a full disk" {
    mkdir -p "$SCRATCH/full"
    mount -t tmpfs -o size=6m tmpfs "$SCRATCH/full" 2>/dev/null || skip "cannot mount a small tmpfs here"
    start_daemon "$SCRATCH/full"
    echo "$DAEMON_PID" >>"$SCRATCH/extra.pids"
    export TELEMETRY_SOCKET=$SCRATCH/full/s.sock
    head -c 20M /dev/zero >"$SCRATCH/full/filler" 2>/dev/null || true
    compare
    stop_daemon "$DAEMON_PID"
    rm -f "$SCRATCH/full/filler"
}

@test "fault report: with TELEMETRY_DEBUG the drops are reported once at exit, on stderr" {
    export TELEMETRY_CLIENT=$WORK/no-such-client TELEMETRY_DEBUG=1
    run --separate-stderr "$WORK/faulty.sh"
    [ "$status" -eq 3 ]
    [ "$(grep -c '^telemetry: execution .*NOT confirmed durable' <<<"$stderr")" -eq 1 ]
    [[ $stderr == *"lines not written (last problem: no telemetry client"* ]]
}
