#!/bin/bash
# example-deploy.sh: the specification's example deployment script, instrumented with the bash library.
#
# It "deploys" a service (simulated: it builds an artifact in a temporary directory, migrates three
# databases and rolls out five replicas; nothing leaves this machine) and reports the execution to
# telemetryd with the telemetry_* functions of share/telemetry/utils.sh. It finds the library next to
# itself, as the specification writes it: scripts/telemetry is a symlink to ../share/telemetry. An
# installed script sources $(PREFIX)/share/telemetry/utils.sh instead (/usr/local by default).
#
# Usage:  scripts/example-deploy.sh [--fail]
#   --fail   replica 4 cannot reach its database: an error, a rollback, exit status 1
# Environment:
#   DEPLOY_SERVICE, DEPLOY_REGION, DEPLOY_CLUSTER   the tags (default auth-service, us-east-1, production)
#   TELEMETRY_ENVIRONMENT   the execution's environment (this script defaults it to production)
#   TELEMETRY_ENABLED=false or DO_NOT_TRACK=1      opt out: nothing is sent and no process is started
#   TELEMETRY_CLIENT, TELEMETRY_SOCKET, TELEMETRY_SPOOL_DIR   the client and the daemon's socket
#                           (docs/bash-library.md; by default `telemetry` on PATH and /run/telemetryd)
#
# Telemetry never changes the outcome: without a `telemetry` client, or with the daemon down, the script
# prints the same and exits with the same status.
set -euo pipefail

SERVICE=${DEPLOY_SERVICE:-auth-service}
REGION=${DEPLOY_REGION:-us-east-1}
CLUSTER=${DEPLOY_CLUSTER:-production}
simulate_failure=0
case ${1-} in
    "") ;;
    --fail) simulate_failure=1 ;;
    *) echo "usage: $0 [--fail]" >&2; exit 2 ;;
esac

# Source telemetry utilities
# shellcheck source-path=SCRIPTDIR disable=SC1091  # the library is checked on its own (make test)
source "$(dirname "$0")/telemetry/utils.sh"

# Initialize telemetry: a new execution (its start line carries TELEMETRY_ENVIRONMENT)
: "${TELEMETRY_ENVIRONMENT:=production}"
telemetry_init "deploy-service" "v1.0.0"
telemetry_add_tag "service" "$SERVICE"
telemetry_add_tag "region" "$REGION"
telemetry_add_tag "cluster" "$CLUSTER"

# Our own clean-up runs after the library's exit path, which sends the end line with the exit status.
work_dir=$(mktemp -d)
# shellcheck disable=SC2016  # expanded when the trap runs
telemetry_trap_exit 'rm -rf "$work_dir"'

services_deployed=0
databases_migrated=0
users_created=0
timeout_errors=0

build_artifact() {
    telemetry_track_debug "build" "Packaging $SERVICE"
    head -c $((3 * 1024 * 1024)) /dev/zero >"$work_dir/$SERVICE.tar"
}

migrate_databases() {
    local database
    telemetry_track_debug "deployment" "Connecting to database"
    for database in users sessions tokens; do
        sleep 0.05
        databases_migrated=$((databases_migrated + 1))
        telemetry_track_debug "migration" "Migrated database $database"
    done
    users_created=100
}

roll_out() {
    local replica
    for replica in 1 2 3 4 5; do
        sleep 0.05
        if ((replica == 2)); then
            telemetry_track_warning "deployment" "High memory usage detected on $SERVICE-$replica (87%)"
        fi
        if ((replica == 3)); then
            timeout_errors=$((timeout_errors + 1))
            telemetry_track_warning "health-check" "$SERVICE-$replica did not become healthy within 30s; restarted it"
        fi
        if ((simulate_failure && replica == 4)); then
            echo "  $SERVICE-$replica: Database connection failed" >&2
            return 1
        fi
        services_deployed=$((services_deployed + 1))
        echo "  $SERVICE-$replica is up"
    done
}

deploy() {
    build_artifact
    migrate_databases
    roll_out
}

# Track script execution
telemetry_start_timer "deployment"
telemetry_track_info "deployment" "Starting service deployment"

# Your script logic here
echo "Deploying $SERVICE to $REGION/$CLUSTER..."

# Track success/failure
if deploy; then
    status=0
    telemetry_track_success "deployment" "Deployment completed successfully"
else
    status=$?
    telemetry_track_error "deployment" "Database connection failed: $SERVICE-4 did not start (exit code $status)"
    telemetry_track_warning "rollback" "Rolling back $SERVICE to the previous release"
    echo "Rolled back $SERVICE to the previous release"
fi

# Record performance metrics
telemetry_record_metric "execution_time" "$(telemetry_get_duration)"
telemetry_record_metric "memory_usage" "$(telemetry_get_memory_usage)"
telemetry_record_metric "cpu_usage" "$(telemetry_get_cpu_usage)"
telemetry_record_metric "disk_usage" "$(telemetry_get_disk_usage)"

# Business metrics
telemetry_record_metric "services_deployed" "$services_deployed"
telemetry_record_metric "databases_migrated" "$databases_migrated"
telemetry_record_metric "users_created" "$users_created"

# Error metrics
telemetry_record_metric "failed_deployments" "$((status == 0 ? 0 : 1))"
telemetry_record_metric "rollback_count" "$((status == 0 ? 0 : 1))"
telemetry_record_metric "timeout_errors" "$timeout_errors"

# Send telemetry data: everything so far is durable in telemetryd (or in the client's spool) when it returns
telemetry_flush

if ((status == 0)); then
    echo "Deployed $services_deployed replicas of $SERVICE"
else
    echo "Deployment of $SERVICE failed"
fi
exit "$status"
