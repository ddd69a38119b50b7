#!/usr/bin/env bats
# Every public function of share/telemetry/utils.sh, checked against what telemetryd stored.

load helpers
bats_require_minimum_version 1.5.0

@test "a full execution: start, events with durations, metrics, tags, end with exit code" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init "api-test" "2.4.1"
echo "id=$_telemetry_id"
telemetry_start_timer deployment
telemetry_track_info deployment "Starting service deployment"
telemetry_track_debug deployment "Connecting to database"
sleep 0.05
telemetry_track_warning deployment "High memory usage detected"
telemetry_track_error health "Database connection failed"
telemetry_track_success deployment
telemetry_track_success other "done"
telemetry_record_metric services_deployed 5
telemetry_record_metric ratio -0.25e-1
telemetry_record_metric "memory_usage" "$(telemetry_get_memory_usage)"
telemetry_add_tag service auth-service
telemetry_add_tag region us-east-1
telemetry_flush
exit 7
EOF2
    TELEMETRY_ENVIRONMENT=staging run "$WORK/run.sh"
    [ "$status" -eq 7 ]
    id=$(execution_id_of <(echo "$output"))
    [ -n "$id" ]
    document "$id" >"$WORK/doc.json"
    [ "$(json_get 'd["script_name"]' <"$WORK/doc.json")" = api-test ]
    [ "$(json_get 'd["script_version"]' <"$WORK/doc.json")" = 2.4.1 ]
    [ "$(json_get 'd["environment"]' <"$WORK/doc.json")" = staging ]
    [ "$(json_get 'd["exit_code"]' <"$WORK/doc.json")" = 7 ]
    [ "$(json_get 'd["status"]' <"$WORK/doc.json")" = failure ]
    [ "$(json_get 'd["metrics"]["services_deployed"]' <"$WORK/doc.json")" = 5 ]
    [ "$(json_get 'd["metrics"]["ratio"]' <"$WORK/doc.json")" = -0.025 ]
    [ "$(json_get 'd["tags"] == {"service": "auth-service", "region": "us-east-1"}' <"$WORK/doc.json")" = true ]
    # Every level, in order; durations on events of an operation with a timer.
    python3 - "$WORK/doc.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
events = sorted(d["events"] + d["errors"], key=lambda e: e["timestamp"])
types = [e["type"] for e in d["events"]] + [e["type"] for e in d["errors"]]
for level in ("info", "debug", "warning", "error", "success"):
    assert level in types, (level, types)
warn = [e for e in d["events"] + d["errors"] if e["type"] == "warning"][0]
assert warn["duration_seconds"] >= 0.05, warn
assert "duration_seconds" not in [e for e in d["events"] + d["errors"] if e["operation"] == "health"][0]
# The resource metrics recorded at exit, next to the script's own memory_usage.
for name in ("execution_time", "memory_usage", "cpu_usage", "disk_usage", "network_usage"):
    assert name in d["metrics"], (name, d["metrics"])
assert d["duration_seconds"] >= 0.05
PY
}

@test "getters print plausible numbers, telemetry_get_duration OP measures from telemetry_start_timer" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init getters 1
telemetry_start_timer op
sleep 0.2
echo "duration=$(telemetry_get_duration)"
echo "op=$(telemetry_get_duration op)"
echo "unknown=$(telemetry_get_duration nosuchtimer)"
echo "memory=$(telemetry_get_memory_usage)"
echo "cpu=$(telemetry_get_cpu_usage)"
echo "disk=$(telemetry_get_disk_usage)"
echo "network=$(telemetry_get_network_usage)"
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [[ $output =~ duration=0\.(1[5-9]|[2-9])[0-9]*$'\n' ]] || [[ $output =~ duration=[1-9] ]]
    [[ $output =~ op=0\.(1[5-9]|[2-9]) ]]
    [[ $output == *$'unknown=0\n'* ]]
    [[ $output =~ memory=[1-9][0-9]*\.[0-9]$'\n' ]]
    [[ $output =~ cpu=[0-9]+\.[0-9]$'\n' ]]
    [[ $output =~ disk=[0-9]+\.[0-9]$'\n' ]]
    [[ $output =~ network=[0-9]+\.[0-9]{3}$ ]]
}

@test "invalid metrics: a warning on stderr, nothing sent; numbers are normalized" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init metrics 1
echo "id=$_telemetry_id"
telemetry_record_metric bad_value "12 apples"
telemetry_record_metric inf 1e999
telemetry_record_metric nan NaN
telemetry_record_metric empty ""
telemetry_record_metric "bad name" 1
telemetry_record_metric 9starts_with_digit 1
telemetry_record_metric plus +5
telemetry_record_metric zeros 007.50
telemetry_record_metric dot .5
telemetry_record_metric trailing 5.
telemetry_record_metric spaces " 42 "
telemetry_record_metric exp 1E3
telemetry_record_metric tiny 1e-400
telemetry_record_metric "name.with:all-chars_9" 1
EOF2
    run --separate-stderr "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'telemetry: warning: telemetry_record_metric' <<<"$stderr")" -eq 6 ]
    [[ $stderr == *'bad_value: "12 apples" is not a finite number'* ]]
    [[ $stderr == *'invalid metric name "bad name"'* ]]
    id=$(execution_id_of <(echo "$output"))
    metrics=$(document "$id" | json_get 'd["metrics"]')
    python3 - "$metrics" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
expect = {"plus": 5, "zeros": 7.5, "dot": 0.5, "trailing": 5, "spaces": 42, "exp": 1000, "tiny": 0,
          "name.with:all-chars_9": 1}
for k, v in expect.items():
    assert m.get(k) == v, (k, m.get(k))
for k in ("bad_value", "inf", "nan", "empty", "bad name", "9starts_with_digit"):
    assert k not in m, k
PY
}

@test "every telemetry_* function returns 0, before telemetry_init too, under set -euo pipefail" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
all() {
    telemetry_start_timer a
    telemetry_track_success a
    telemetry_track_error a m
    telemetry_track_warning a m
    telemetry_track_info a m
    telemetry_track_debug a m
    telemetry_track_info
    telemetry_record_metric x 1
    telemetry_record_metric x y 2>/dev/null
    telemetry_add_tag k v
    telemetry_add_tag "" v 2>/dev/null
    telemetry_flush
    telemetry_get_duration >/dev/null
    telemetry_get_duration a >/dev/null
    telemetry_get_memory_usage >/dev/null
    telemetry_get_cpu_usage >/dev/null
    telemetry_get_disk_usage >/dev/null
    telemetry_get_network_usage >/dev/null
    telemetry_status >/dev/null
    telemetry_test_connection >/dev/null
    telemetry_logs >/dev/null
}
all
telemetry_init all 1
all
telemetry_finish
all
telemetry_reset
all
echo ok
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [ "$output" = ok ]
}

@test "debug commands: telemetry_status, telemetry_test_connection, telemetry_logs, telemetry_reset" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_status
telemetry_init debugcmds 1
telemetry_track_info x y
telemetry_status
telemetry_test_connection
telemetry_record_metric broken nope 2>/dev/null
echo "--- logs"
telemetry_logs
first=$_telemetry_id
telemetry_reset
echo "--- after reset"
telemetry_status
telemetry_logs
telemetry_init debugcmds 2
[[ $_telemetry_id != "$first" ]] && echo "new execution"
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [[ $output == "telemetry: not initialized"* ]]
    [[ $output == *"telemetry: execution "*" (on)"* ]]
    [[ $output == *"channel:      open"* ]]
    [[ $output == *"telemetryd "*"is running"* ]]
    [[ $output == *"telemetry: connection ok"* ]]
    [[ $output == *"started (client"* ]]
    [[ $output == *"warning: telemetry_record_metric: broken"* ]]
    [[ $output == *$'--- after reset\ntelemetry: not initialized'* ]]
    [[ $output == *"new execution"* ]]
}

@test "telemetry_test_connection and telemetry_status say what is wrong when the daemon is down" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init down 1
telemetry_test_connection
telemetry_status
EOF2
    TELEMETRY_SOCKET=$WORK/none.sock TELEMETRY_FLUSH_TIMEOUT=0.5 run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [[ $output == *"connection"* ]]
    [[ $output == *"not running"* || $output == *"unreachable"* ]]
}

@test "events from functions, subshells, pipelines and background subshells all arrive" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init places 1
echo "id=$_telemetry_id"
f() { telemetry_track_info function "from a function"; }
f
( telemetry_track_info subshell "from a subshell" )
echo x | { read -r _; telemetry_track_info pipeline "from a pipeline"; }
v=$(telemetry_track_info cmdsubst "from a command substitution"; echo done)
{ telemetry_track_info background "from a background subshell"; } &
wait
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    id=$(execution_id_of <(echo "$output"))
    ops=$(document "$id" | json_get 'sorted(e["operation"] for e in d["events"])')
    [ "$ops" = '["background", "cmdsubst", "function", "pipeline", "subshell"]' ]
}

@test "wait without arguments does not wait for the channel, and a coproc of the script's own works" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init waits 1
sleep 0.1 &
wait
coproc MINE { cat; }
echo hello >&"${MINE[1]}"
read -r line <&"${MINE[0]}"
echo "coproc said $line"
EOF2
    run timeout 10 "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "coproc said hello" ]
}

@test "programs the script starts do not inherit the channel (close-on-exec); the client exits with the script" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init fds 1
ours=$(readlink "/proc/$$/fd/$_telemetry_wfd")
echo "ours=$ours"
ls -l /proc/self/fd/ | grep -c -F "$ours" || true
sleep 30 >/dev/null 2>&1 </dev/null &
echo "sleeper=$!"
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [[ ${lines[0]} == ours=pipe:* ]]
    [ "${lines[1]}" = 0 ]
    pipe=${lines[0]#ours=}
    sleeper=${lines[2]#sleeper=}
    # The script is gone and its long-lived child does not hold the channel, so the client exits.
    for ((i = 0; i < 100; i++)); do
        [ -z "$(readers_of "$pipe")" ] && break
        sleep 0.05
    done
    kill "$sleeper"
    [ -z "$(readers_of "$pipe")" ]
}

# The processes with pipe $1 (pipe:[inode]) open on any descriptor.
readers_of() {
    local p f
    for p in /proc/[0-9]*; do
        for f in "$p"/fd/*; do
            if [[ $(readlink "$f" 2>/dev/null) == "$1" ]]; then echo "${p#/proc/}"; break; fi
        done
    done
    return 0
}

@test "sourcing twice keeps the state; names outside telemetry_/_telemetry_ are not touched" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
before_vars=$(compgen -v | sort)
before_funcs=$(compgen -A function | sort)
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init names 1
telemetry_start_timer t
telemetry_track_info t "x"
telemetry_record_metric m 1
v=$(telemetry_get_memory_usage)
telemetry_flush
id=$_telemetry_id
source "$(dirname "$0")/telemetry/utils.sh"
[[ $_telemetry_id == "$id" ]] && echo "state kept"
comm -13 <(echo "$before_vars") <(compgen -v | sort) | grep -v -e '^_telemetry_' -e '^telemetry_' \
    -e '^before_vars$' -e '^before_funcs$' -e '^v$' -e '^id$' -e '^BASH_REMATCH$' -e '^_$' || true
comm -13 <(echo "$before_funcs") <(compgen -A function | sort) | grep -v -e '^_telemetry_' -e '^telemetry_' || true
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "state kept" ]
}

@test "the library passes shellcheck and bash -n" {
    command -v shellcheck >/dev/null || skip "shellcheck is not installed"
    run shellcheck "$LIBRARY"
    [ "$status" -eq 0 ]
    run bash -n "$LIBRARY"
    [ "$status" -eq 0 ]
}
