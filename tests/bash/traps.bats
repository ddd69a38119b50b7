#!/usr/bin/env bats
# The script's own EXIT trap keeps working, set before telemetry_init, after it with
# telemetry_trap_exit, or after it with plain `trap` plus telemetry_finish; $? and `exit N` in it
# behave as without telemetry, and the execution's end is recorded with the real exit status.

load helpers

exit_code_of() { document "$1" | json_get 'd["exit_code"]'; }

@test "a trap set before telemetry_init runs after the library's, sees \$?, and may change the status" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
set -euo pipefail
trap 'rc=$?; echo "my trap saw $rc"; exit 9' EXIT
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init traps 1
echo "id=$_telemetry_id"
false
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 9 ]
    [ "${lines[1]}" = "my trap saw 1" ]
    id=$(execution_id_of <(echo "$output"))
    [ "$(exit_code_of "$id")" = 1 ]
}

@test "telemetry_trap_exit after telemetry_init: both run, the script's sees the exit status" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init traps 1
echo "id=$_telemetry_id"
tmp=$(mktemp)
telemetry_trap_exit 'echo "cleanup saw $?"; rm -f "$tmp"'
exit 4
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 4 ]
    [ "${lines[1]}" = "cleanup saw 4" ]
    id=$(execution_id_of <(echo "$output"))
    [ "$(exit_code_of "$id")" = 4 ]
}

@test "a plain trap after telemetry_init replaces the library's; telemetry_finish in it records the end" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init traps 1
echo "id=$_telemetry_id"
trap 'rc=$?; telemetry_finish "$rc"; echo "mine saw $rc"' EXIT
exit 5
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 5 ]
    [ "${lines[1]}" = "mine saw 5" ]
    id=$(execution_id_of <(echo "$output"))
    [ "$(exit_code_of "$id")" = 5 ]
}

@test "the end is recorded on exit, on errexit, and on a normal end of script" {
    for how in "exit 0" "exit 42" "set -e; false" "true"; do
        script run.sh <<EOF2
#!/usr/bin/env bash
source "\$(dirname "\$0")/telemetry/utils.sh"
telemetry_init traps 1
echo "id=\$_telemetry_id"
$how
EOF2
        run "$WORK/run.sh"
        id=$(execution_id_of <(echo "$output"))
        [ "$(exit_code_of "$id")" = "$status" ]
    done
}

@test "telemetry_reset gives the EXIT trap back to the script" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
trap 'echo original' EXIT
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init traps 1
telemetry_reset
trap -p EXIT
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    [ "$output" = "trap -- 'echo original' EXIT"$'\n'"original" ]
}
