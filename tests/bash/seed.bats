#!/usr/bin/env bats
# The seed's example script, copied verbatim into fixtures/deploy-example.sh, runs unchanged: it
# sources fixtures/telemetry/utils.sh (a symlink to share/telemetry) next to itself.

load helpers
bats_require_minimum_version 1.5.0

newest_execution_of() {
    "$BIN/telemetry" executions --script "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["execution_id"])'
}

@test "the seed's example script runs verbatim and its execution is stored" {
    run "$FIXTURES/deploy-example.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "Deploying service..." ]
    id=$(newest_execution_of deploy-service)
    document "$id" >"$WORK/doc.json"
    python3 - "$WORK/doc.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["script_name"] == "deploy-service" and d["script_version"] == "v1.0.0", d
assert d["status"] == "success" and d["exit_code"] == 0, d
m = d["metrics"]
assert 0 < m["execution_time"] < 5, m
assert m["memory_usage"] > 1, m
for name in ("cpu_usage", "disk_usage", "network_usage"):
    assert name in m, m
ok = [e for e in d["events"] if e["type"] == "success" and e["operation"] == "deployment"]
assert len(ok) == 1 and ok[0]["duration_seconds"] >= 0, d["events"]
PY
}

@test "the seed's example script with telemetry disabled prints the same and starts no client" {
    run "$FIXTURES/deploy-example.sh"
    enabled_output=$output
    TELEMETRY_ENABLED=false run "$FIXTURES/deploy-example.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "$enabled_output" ]
}

@test "the seed's example script without a daemon still exits 0 and prints the same" {
    TELEMETRY_SOCKET=$WORK/none.sock TELEMETRY_FLUSH_TIMEOUT=0.5 run --separate-stderr "$FIXTURES/deploy-example.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "Deploying service..." ]
    [ -z "$stderr" ]
}
