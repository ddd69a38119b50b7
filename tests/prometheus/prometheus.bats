#!/usr/bin/env bats
# A real Prometheus (Debian's /usr/bin/prometheus) scrapes a real telemetryd while instrumented bash scripts
# succeed and fail. Checked through Prometheus's HTTP API: the series and their values, the seed's two alerts
# going pending then firing, and the Grafana dashboards' queries. Intervals are shortened for the test: scrape
# and evaluation every second, and a copy of config/prometheus/alerting.yml with `for:` 4s and 20s windows.
# shellcheck disable=SC2030,SC2031  # bats runs each test in a subshell

load ../bash/helpers

PROMAPI=$TELEMETRY_REPO/tests/prometheus/promapi.py

# A free TCP port on 127.0.0.1 (the kernel's choice; Prometheus cannot pick its own).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# poll SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds; fails after SECONDS.
poll() {
    local seconds=$1 i
    shift
    for ((i = 0; i < seconds * 5; i++)); do
        if "$@"; then return 0; fi
        sleep 0.2
    done
    "$@"
}

setup_file() {
    BIN=$(telemetry_test_bin)
    export BIN
    command -v prometheus >/dev/null || { echo "prometheus is not installed (make deps)" >&2; return 1; }
    SCRATCH=$(mktemp -d /tmp/tprom.XXXXXX)
    export SCRATCH
    export TELEMETRY_SPOOL_DIR=$SCRATCH/spool TELEMETRY_CLIENT=$BIN/telemetry PATH="$BIN:$PATH"
    mkdir -p "$TELEMETRY_SPOOL_DIR"

    TELEMETRY_METRICS_LISTEN=127.0.0.1:0 start_daemon "$SCRATCH/d"
    echo "$DAEMON_PID" >"$SCRATCH/daemon.pid"
    export TELEMETRY_SOCKET=$SCRATCH/d/s.sock
    METRICS=$(sed -n 's|.*metrics=\(http://[^ ]*\)/metrics.*|\1|p' "$SCRATCH/d/daemon.log")
    [[ -n $METRICS ]] || { echo "no metrics address in the daemon's log:" >&2; cat "$SCRATCH/d/daemon.log" >&2; return 1; }
    export METRICS

    # The rules under test, with short delays: every `for:` 4s, every range 20s.
    sed -E 's/for: [0-9]+[smh]/for: 4s/; s/\[[0-9]+[smh]\]/[20s]/g' \
        "$TELEMETRY_REPO/config/prometheus/alerting.yml" >"$SCRATCH/alerting.yml"
    cat >"$SCRATCH/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['$SCRATCH/alerting.yml']
scrape_configs:
  - job_name: script-telemetry
    static_configs:
      - targets: ['${METRICS#http://}']
EOF
    local port
    port=$(free_port)
    export PROM=http://127.0.0.1:$port
    prometheus --config.file="$SCRATCH/prometheus.yml" --storage.tsdb.path="$SCRATCH/tsdb" \
        --web.listen-address="127.0.0.1:$port" --log.level=warn >"$SCRATCH/prometheus.log" 2>&1 &
    echo $! >"$SCRATCH/prometheus.pid"
    if ! poll 30 python3 "$PROMAPI" get "$PROM/-/ready" >/dev/null 2>&1 ||
        ! [[ $(python3 "$PROMAPI" get "$PROM/-/ready" | head -n 1) == 200* ]]; then
        echo "Prometheus did not become ready; its log:" >&2
        cat "$SCRATCH/prometheus.log" >&2
        return 1
    fi

    # Instrumented runs: three successes and two failures of prom-deploy, one success of prom-ok.
    cat >"$SCRATCH/deploy.sh" <<EOF
#!/bin/bash
source "$LIBRARY"
telemetry_init "\$1" "v1.0.0"
telemetry_track_info deployment "Starting service deployment"
telemetry_record_metric services_deployed 5
if [[ \$2 != 0 ]]; then telemetry_track_error deployment "failed with \$2"; fi
exit "\$2"
EOF
    chmod +x "$SCRATCH/deploy.sh"
    local code
    for code in 0 0 3 0 3; do TELEMETRY_ENVIRONMENT=ci "$SCRATCH/deploy.sh" prom-deploy "$code" || true; done
    TELEMETRY_ENVIRONMENT=ci "$SCRATCH/deploy.sh" prom-ok 0
}

teardown_file() {
    [[ -n ${SCRATCH-} && -d $SCRATCH ]] || return 0
    local pid
    if [[ -f $SCRATCH/prometheus.pid ]]; then
        pid=$(cat "$SCRATCH/prometheus.pid")
        if kill -TERM "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; fi
    fi
    if [[ -f $SCRATCH/daemon.pid ]]; then stop_daemon "$(cat "$SCRATCH/daemon.pid")"; fi
    rm -rf "$SCRATCH"
}

setup() { :; }

# value EXPR: the single value of EXPR in Prometheus now (empty when there is none).
value() {
    python3 "$PROMAPI" query "$PROM" "$1" | awk '{print $NF}'
}

# has_value EXPR VALUE: whether EXPR is VALUE in Prometheus now.
has_value() {
    [[ $(value "$1") == "$2" ]]
}

# expect_value EXPR VALUE: waits (bounded) until Prometheus has scraped EXPR == VALUE.
expect_value() {
    if ! poll 20 has_value "$1" "$2"; then
        echo "$1 is '$(value "$1")', expected '$2'" >&2
        return 1
    fi
}

@test "the daemon serves /metrics in text format 0.0.4, /healthz and /readyz, and nothing else" {
    run python3 "$PROMAPI" get "$METRICS/metrics"
    [[ ${lines[0]} == "200 text/plain; version=0.0.4; charset=utf-8" ]]
    [[ $output == *'script_executions_total{script="prom-deploy",environment="ci",status="success"} 3'* ]]
    run python3 "$PROMAPI" get "$METRICS/healthz"
    [[ ${lines[0]} == 200* && ${lines[1]} == ok ]]
    run python3 "$PROMAPI" get "$METRICS/readyz"
    [[ ${lines[0]} == 200* && ${lines[1]} == ready ]]
    run python3 "$PROMAPI" get "$METRICS/metrics" HEAD
    [[ ${lines[0]} == 200* && ${#lines[@]} -eq 1 ]]
    run python3 "$PROMAPI" get "$METRICS/other"
    [[ ${lines[0]} == 404* ]]
    run python3 "$PROMAPI" get "$METRICS/metrics" POST
    [[ ${lines[0]} == 405* ]]
}

@test "promtool check metrics accepts the live exposition" {
    python3 "$PROMAPI" get "$METRICS/metrics" | tail -n +2 >"$SCRATCH/exposition.prom"
    run promtool check metrics <"$SCRATCH/exposition.prom"
    echo "$output"
    [[ $status -eq 0 && -z $output ]]
}

@test "Prometheus scrapes the daemon: script series carry the runs' values" {
    expect_value 'up{job="script-telemetry"}' 1
    expect_value 'telemetryd_build_info' 1
    expect_value 'script_executions_total{script="prom-deploy",environment="ci",status="success"}' 3
    expect_value 'script_executions_total{script="prom-deploy",environment="ci",status="failure"}' 2
    expect_value 'script_failures_total{script="prom-deploy",environment="ci"}' 2
    expect_value 'script_failures_total{script="prom-ok",environment="ci"}' 0
    expect_value 'script_execution_duration_seconds_count{script="prom-deploy",environment="ci"}' 5
    expect_value 'script_metric{script="prom-deploy",environment="ci",name="services_deployed"}' 5
    expect_value 'count(script_memory_usage_bytes{script="prom-deploy"} > 0)' 1
    expect_value 'count(script_execution_time_seconds{script="prom-deploy"} < 60)' 1
    expect_value 'telemetryd_documents_stored_total' 6
    expect_value 'telemetryd_open_executions' 0
}

@test "ScriptFailureRate goes pending, then firing, for the failing script only" {
    local code i states
    # 8 failures within a few seconds: far over 0.1/s in the 20 s window.
    for i in 1 2 3 4 5 6 7 8; do TELEMETRY_ENVIRONMENT=ci "$SCRATCH/deploy.sh" prom-deploy 1 || true; done
    : >"$SCRATCH/states"
    for ((i = 0; i < 150; i++)); do
        python3 "$PROMAPI" alerts "$PROM" ScriptFailureRate >>"$SCRATCH/states"
        if grep -q '^firing .*script="prom-deploy"' "$SCRATCH/states"; then break; fi
        sleep 0.2
    done
    states=$(cat "$SCRATCH/states")
    echo "$states"
    grep -q '^pending .*script="prom-deploy"' <<<"$states"
    grep -q '^firing .*script="prom-deploy"' <<<"$states"
    # pending came before firing
    [[ $(grep -n 'script="prom-deploy"' <<<"$states" | head -n 1) == *pending* ]]
    [[ $(grep -c 'script="prom-ok"' <<<"$states") -eq 0 ]]
}

@test "ScriptExecutionTime fires for a run that reported 400 s" {
    local id
    id=$(python3 -c 'import uuid; print(uuid.uuid4())')
    printf '%s\n' \
        "{\"v\":1,\"kind\":\"start\",\"execution_id\":\"$id\",\"ts\":$(date +%s),\"script\":\"prom-slow\",\"version\":\"1\",\"environment\":\"ci\"}" \
        "{\"v\":1,\"kind\":\"end\",\"execution_id\":\"$id\",\"ts\":$(date +%s),\"exit_code\":0,\"duration_seconds\":400}" |
        "$BIN/telemetry" send --wait
    expect_value 'script_execution_time_seconds{script="prom-slow"}' 400
    poll 30 bash -c "python3 '$PROMAPI' alerts '$PROM' ScriptExecutionTime | grep -q '^firing .*script=\"prom-slow\"'"
    run python3 "$PROMAPI" alerts "$PROM" ScriptExecutionTime
    [[ $status -eq 0 && $output != *'script="prom-deploy"'* ]]
}

@test "every metric in the Grafana dashboards is in the live exposition, and Prometheus accepts every query" {
    python3 "$PROMAPI" get "$METRICS/metrics" | tail -n +2 >"$SCRATCH/exposition.prom"
    run python3 "$PROMAPI" dashboards "$TELEMETRY_REPO/config/grafana" "$SCRATCH/exposition.prom" "$PROM"
    echo "$output"
    [[ $status -eq 0 ]]
}

@test "the dashboard check fails for a dashboard that uses a metric the daemon does not export" {
    mkdir -p "$SCRATCH/grafana"
    cp "$TELEMETRY_REPO"/config/grafana/*.json "$SCRATCH/grafana/"
    sed -i 's/script_execution_time_seconds{/script_execution_tiem_seconds{/' "$SCRATCH/grafana/script-performance.json"
    python3 "$PROMAPI" get "$METRICS/metrics" | tail -n +2 >"$SCRATCH/exposition.prom"
    run python3 "$PROMAPI" dashboards "$SCRATCH/grafana" "$SCRATCH/exposition.prom"
    echo "$output"
    [[ $status -eq 1 && $output == *"script_execution_tiem_seconds, which the daemon does not export"* ]]
}
