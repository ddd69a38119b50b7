#!/usr/bin/env bats
# Opt-out: TELEMETRY_ENABLED=false|0|no|off (any case) or DO_NOT_TRACK=1 make every function a no-op
# that returns 0 and starts no process. A fake TELEMETRY_CLIENT records whether it ever ran.

load helpers
bats_require_minimum_version 1.5.0

setup() {
    unset TELEMETRY_ENABLED DO_NOT_TRACK
    WORK=$(mktemp -d "$SCRATCH/w.XXXXXX")
    mkdir -p "$WORK/telemetry"
    ln -s "$LIBRARY" "$WORK/telemetry/utils.sh"
    printf '#!/bin/sh\necho ran >>"%s/client-ran"\nexec cat >/dev/null\n' "$WORK" >"$WORK/fake-client"
    chmod +x "$WORK/fake-client"
    cat >"$WORK/run.sh" <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init optout 1
telemetry_start_timer op
telemetry_track_info op "message"
telemetry_track_success op
telemetry_track_error op "e"
telemetry_track_warning op "w"
telemetry_track_debug op "d"
telemetry_record_metric m 1
telemetry_record_metric bad notanumber
telemetry_add_tag k v
telemetry_flush
echo "getters: $(telemetry_get_duration) $(telemetry_get_memory_usage) $(telemetry_get_cpu_usage) $(telemetry_get_disk_usage) $(telemetry_get_network_usage)"
telemetry_status
telemetry_finish
echo "done"
EOF2
    chmod +x "$WORK/run.sh"
}

@test "the fake client runs when telemetry is on (the check below means something)" {
    TELEMETRY_CLIENT=$WORK/fake-client TELEMETRY_FLUSH_TIMEOUT=0.2 run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [ -s "$WORK/client-ran" ]
}

@test "TELEMETRY_ENABLED=false, 0, no, off, FALSE, Off and DO_NOT_TRACK=1: no-ops, no process started" {
    for setting in TELEMETRY_ENABLED=false TELEMETRY_ENABLED=0 TELEMETRY_ENABLED=no TELEMETRY_ENABLED=off \
        TELEMETRY_ENABLED=FALSE TELEMETRY_ENABLED=Off DO_NOT_TRACK=1; do
        rm -f "$WORK/client-ran"
        run --separate-stderr env "$setting" TELEMETRY_CLIENT="$WORK/fake-client" "$WORK/run.sh"
        [ "$status" -eq 0 ]
        [ -z "$stderr" ]
        [ "${lines[0]}" = "getters: 0 0 0 0 0" ]
        [[ ${lines[1]} == "telemetry: off (${setting})"* ]]
        [ "${lines[2]}" = done ]
        [ ! -e "$WORK/client-ran" ]
    done
}

@test "opted out: no EXIT trap is installed and the script's own trap is untouched" {
    cat >"$WORK/trap.sh" <<'EOF2'
#!/usr/bin/env bash
trap 'echo mine' EXIT
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init optout 1
trap -p EXIT
EOF2
    chmod +x "$WORK/trap.sh"
    TELEMETRY_ENABLED=off run "$WORK/trap.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "trap -- 'echo mine' EXIT"$'\n'"mine" ]
}
