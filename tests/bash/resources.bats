#!/usr/bin/env bats
# The resource metrics recorded at exit are plausible (docs/bash-library.md, "Measurements").

load helpers

metric() { document "$1" | json_get "d[\"metrics\"][\"$2\"]"; }

@test "a child that allocates 200 MB: memory_usage is at least 200" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init memory 1
echo "id=$_telemetry_id"
python3 -c "b=bytearray(200*1024*1024); b[::4096]=b'x'*len(b[::4096])"
EOF2
    run "$WORK/run.sh"
    [ "$status" -eq 0 ]
    id=$(execution_id_of <(echo "$output"))
    m=$(metric "$id" memory_usage)
    python3 -c "import sys; v=float(sys.argv[1]); assert 200 <= v < 2000, v" "$m"
}

@test "a busy loop: cpu_usage is high; an idle script: low" {
    script busy.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init cpu 1
echo "id=$_telemetry_id"
end=$((SECONDS + 1)); while ((SECONDS < end)); do :; done
EOF2
    script idle.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init cpu 1
echo "id=$_telemetry_id"
sleep 1
EOF2
    run "$WORK/busy.sh"
    busy=$(metric "$(execution_id_of <(echo "$output"))" cpu_usage)
    run "$WORK/idle.sh"
    idle=$(metric "$(execution_id_of <(echo "$output"))" cpu_usage)
    python3 -c "import sys; b,i=float(sys.argv[1]),float(sys.argv[2]); assert b >= 60 and i <= 20, (b,i)" "$busy" "$idle"
}

@test "a child that writes 20 MB to disk: disk_usage is at least 20" {
    mkdir -p "$TELEMETRY_REPO/.build/tbats-disk"
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init disk 1
echo "id=$_telemetry_id"
f=$DISK_DIR/$$.bin
dd if=/dev/zero of="$f" bs=1M count=20 conv=fsync status=none
rm -f "$f"
EOF2
    DISK_DIR=$TELEMETRY_REPO/.build/tbats-disk run "$WORK/run.sh"
    rmdir "$TELEMETRY_REPO/.build/tbats-disk" 2>/dev/null || true
    [ "$status" -eq 0 ]
    d=$(metric "$(execution_id_of <(echo "$output"))" disk_usage)
    python3 -c "import sys; v=float(sys.argv[1]); assert v >= 20, v" "$d"
}

@test "duration and execution_time match the wall time" {
    script run.sh <<'EOF2'
#!/usr/bin/env bash
source "$(dirname "$0")/telemetry/utils.sh"
telemetry_init duration 1
echo "id=$_telemetry_id"
sleep 0.5
EOF2
    run "$WORK/run.sh"
    id=$(execution_id_of <(echo "$output"))
    document "$id" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert 0.5 <= d["duration_seconds"] < 3 and 0.5 <= d["metrics"]["execution_time"] < 3, d'
}
