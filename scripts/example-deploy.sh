#!/usr/bin/env bash
# example-deploy.sh: the example deployment script from the telemetry specification, made runnable.
#
# It "deploys" a few services (simulated: nothing leaves this machine) and reports the execution to
# telemetryd: a start line, events (debug, info, warning, error, success), the specification's metrics,
# the tags service/region/cluster and an end line with the exit code. Every line is a protocol v1 JSON
# object (docs/protocol.md) built here with printf; at exit, all of them go through one
# `telemetry send --wait`.
#
# This is a stand-in for the bash library (share/telemetry/utils.sh with telemetry_init,
# telemetry_track_*, telemetry_record_metric, ...), which does not exist yet.
#
# Usage:  scripts/example-deploy.sh [--fail]
#   --fail   the rollout fails: error events, a rollback, exit status 1
# Environment:
#   DEPLOY_SERVICE, DEPLOY_REGION, DEPLOY_CLUSTER   tags (default auth-service, us-east-1, production)
#   TELEMETRY_ENVIRONMENT   environment label of the execution (default production)
#   TELEMETRY_ENABLED=false send nothing (opt-out)
#   TELEMETRY_SOCKET        daemon socket, read by `telemetry send`
#
# Telemetry never changes the outcome of the deployment: without a `telemetry` command, or with the
# daemon down, the script runs the same and exits with the same status.
set -euo pipefail

readonly SCRIPT_NAME=deploy-service
readonly SCRIPT_VERSION=v1.0.0
SERVICE=${DEPLOY_SERVICE:-auth-service}
REGION=${DEPLOY_REGION:-us-east-1}
CLUSTER=${DEPLOY_CLUSTER:-production}
SIMULATE_FAILURE=0
case "${1:-}" in
    "") ;;
    --fail) SIMULATE_FAILURE=1 ;;
    *) echo "usage: $0 [--fail]" >&2; exit 2 ;;
esac

# ---- telemetry: a few helpers that build protocol v1 lines ------------------------------------------

EXECUTION_ID=$(cat /proc/sys/kernel/random/uuid)
TELEMETRY_LINES=()
telemetry_on=1
case "${TELEMETRY_ENABLED:-true}" in
    [Ff][Aa][Ll][Ss][Ee] | 0 | [Nn][Oo] | [Oo][Ff][Ff]) telemetry_on=0 ;;
esac
if ((telemetry_on)) && ! command -v telemetry >/dev/null 2>&1; then
    echo "$SCRIPT_NAME: warning: no 'telemetry' command in PATH; running without telemetry" >&2
    telemetry_on=0
fi

# Microseconds since the epoch, without a fork (bash 5).
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }
# A microsecond count as Unix seconds with a fraction, the protocol's numeric "ts".
seconds() { printf '%d.%06d' "$(($1 / 1000000))" "$(($1 % 1000000))"; }
START_US=$(now_us)

# A JSON string: escapes quotes, backslashes and control characters.
json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=${s//[$'\001'-$'\037']/}
    printf '"%s"' "$s"
}

# emit KIND 'FIELDS': one line with the common fields v, kind, execution_id and ts.
emit() {
    ((telemetry_on)) || return 0
    TELEMETRY_LINES+=("$(printf '{"v":1,"kind":"%s","execution_id":"%s","ts":%s,%s}' \
        "$1" "$EXECUTION_ID" "$(seconds "$(now_us)")" "$2")")
}
track() { # track LEVEL OPERATION MESSAGE [DURATION_SECONDS]
    local fields
    fields="\"level\":\"$1\",\"operation\":$(json_string "$2"),\"message\":$(json_string "$3")"
    if [[ -n ${4:-} ]]; then fields+=",\"duration_seconds\":$4"; fi
    emit event "$fields"
    printf '  %-7s %s: %s\n' "$1" "$2" "$3"
}
metric() { emit metric "\"name\":$(json_string "$1"),\"value\":$2"; }
tag() { emit tag "\"key\":$(json_string "$1"),\"value\":$(json_string "$2")"; }

# At exit, whatever the outcome: the metrics known only at the end, the end line, then one send.
finish() {
    local code=$? end_us elapsed kb cpu_ticks
    set +e
    end_us=$(now_us)
    elapsed=$(seconds $((end_us - START_US)))
    metric execution_time "$elapsed"
    kb=$(awk '/^VmHWM:/ { print $2 }' /proc/$$/status)
    metric memory_usage "$(printf '%d.%d' $((kb / 1024)) $((kb % 1024 * 10 / 1024)))"
    # CPU time of this shell and its children (fields 14-17 of /proc/PID/stat) over the wall time.
    cpu_ticks=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
    metric cpu_usage "$((cpu_ticks * 100000000 / $(getconf CLK_TCK) / (end_us - START_US + 1)))"
    metric disk_usage "$(($(du -sk "$WORK_DIR" | cut -f1) / 1024))"
    rm -rf "$WORK_DIR"
    emit end "\"exit_code\":$code,\"duration_seconds\":$elapsed"
    if ((telemetry_on)); then
        # --wait: returns once the daemon holds every line durably. Never fails the script.
        printf '%s\n' "${TELEMETRY_LINES[@]}" | telemetry send --wait || true
    fi
    echo "$SCRIPT_NAME: exit status $code after ${elapsed}s"
    exit "$code"
}

# ---- the deployment -------------------------------------------------------------------------------

WORK_DIR=$(mktemp -d)
trap finish EXIT

echo "$SCRIPT_NAME $SCRIPT_VERSION: execution $EXECUTION_ID (telemetry $( ((telemetry_on)) && echo on || echo off))"
emit start "\"script\":$(json_string "$SCRIPT_NAME"),\"version\":$(json_string "$SCRIPT_VERSION"),\"environment\":$(json_string "${TELEMETRY_ENVIRONMENT:-production}"),\"pid\":$$"
tag service "$SERVICE"
tag region "$REGION"
tag cluster "$CLUSTER"

track info deployment "Starting deployment of $SERVICE to $REGION/$CLUSTER"
track debug deployment "Connecting to database"
deploy_start=$(now_us)

# Build the release artifact (a stand-in: a few MiB of data in a temporary directory).
head -c $((3 * 1024 * 1024)) /dev/zero >"$WORK_DIR/$SERVICE.tar"

# Migrate the databases.
for database in users sessions tokens; do
    sleep 0.05
    track debug migration "Migrated database $database"
done
metric databases_migrated 3
metric users_created 100

# Roll out the service's replicas.
services_deployed=0
timeouts=0
for replica in 1 2 3 4 5; do
    sleep 0.05
    if ((replica == 2)); then
        track warning deployment "High memory usage detected on $SERVICE-$replica (87%)"
    fi
    if ((replica == 3)); then
        timeouts=$((timeouts + 1))
        track error health-check "$SERVICE-$replica did not become healthy within 30s; restarting it"
    fi
    if ((SIMULATE_FAILURE && replica == 4)); then
        track error deployment "$SERVICE-$replica failed: Database connection failed"
        track warning rollback "Rolling back $SERVICE to the previous release"
        metric services_deployed "$services_deployed"
        metric failed_deployments 1
        metric rollback_count 1
        metric timeout_errors "$timeouts"
        exit 1
    fi
    services_deployed=$((services_deployed + 1))
done
metric services_deployed "$services_deployed"
metric failed_deployments 0
metric rollback_count 0
metric timeout_errors "$timeouts"
track success deployment "Deployment completed successfully" "$(seconds $(($(now_us) - deploy_start)))"
