#!/usr/bin/env bash
# telemetryd-order.sh: regenerate Sources/telemetryd/telemetryd.order, the function order telemetryd is linked
# with (Package.swift: lld --symbol-ordering-file; why: docs/architecture.md, "Idle memory").
#
#   bash scripts/telemetryd-order.sh            (builds the release daemon and client first)
#   TELEMETRY_BIN=<release bin dir> bash scripts/telemetryd-order.sh
#
# Runs telemetryd under valgrind's callgrind (`apt-get install valgrind`) with a fresh state directory, the
# way bench/run.sh starts it, and lists the functions of the telemetryd binary that run, in three groups:
#   1. start-up, a `telemetry status` and a second of idling (what is resident at idle);
#   2. a /metrics, /healthz and /readyz scrape, and a few executions sent, flushed and stored;
#   3. shutdown.
# lld places these functions first in .text, in that order, so that the pages the kernel maps at idle
# (it maps 64 KiB around every fault in a cached file) hold code that runs, not its neighbours. Names that
# no longer exist are ignored by the linker: a stale file only costs memory, never correctness. Regenerate
# it after large changes and compare `make bench`'s idle RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/Sources/telemetryd/telemetryd.order

command -v valgrind >/dev/null || { echo "telemetryd-order: valgrind is required (apt-get install valgrind)" >&2; exit 1; }
bin=${TELEMETRY_BIN:-}
if [[ -z $bin ]]; then
    swift build -c release --static-swift-stdlib --product telemetryd
    swift build -c release --static-swift-stdlib --product telemetry
    bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
fi

work=$(mktemp -d /tmp/telemetryd-order.XXXXXX)
pid=""
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Valgrind 3.19 (Debian 12) cannot read DWARF 5: profile a copy without debug information (same code).
objcopy --strip-debug "$bin/telemetryd" "$work/telemetryd"
: > "$work/empty.conf"
env -i PATH="$PATH" HOME="${HOME:-/root}" TELEMETRY_SPOOL_DIR="$work/spool" TELEMETRY_METRICS_LISTEN=127.0.0.1:0 \
    valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$work/callgrind.out" \
    "$work/telemetryd" --config "$work/empty.conf" --socket "$work/s.sock" --state-dir "$work/state" \
    >"$work/log" 2>&1 &
pid=$!
for ((i = 0; i < 600; i++)); do
    "$bin/telemetry" status --socket "$work/s.sock" --timeout 1 >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
    sleep 0.1
done
sleep 1
callgrind_control --dump=idle "$pid" >/dev/null 2>&1

metrics=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' "$work/log" | head -n 1)
for path in metrics healthz readyz; do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=30).read()' \
        "${metrics%/metrics}/$path" >/dev/null || true
done
python3 bench/gen.py "$work" 1 300 100 >/dev/null
TELEMETRY_SPOOL_DIR="$work/spool" "$bin/telemetry" send --socket "$work/s.sock" < "$work/client-0.jsonl"
"$bin/telemetry" flush --quiet --socket "$work/s.sock" --timeout 60
sleep 1
callgrind_control --dump=work "$pid" >/dev/null 2>&1
kill "$pid"
wait "$pid" || true
pid=""

# Callgrind's output names each function once as "fn=(N) name" and refers to it as "fn=(N)" after that; a
# name can carry a "'N" recursion suffix. Keep those of the telemetryd object, in group order, once each.
python3 - "$work" "$out" <<'PY'
import glob, os, re, sys
work, out = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(work, 'callgrind.out.*')), key=lambda p: int(p.rsplit('.', 1)[1]))
files.append(os.path.join(work, 'callgrind.out'))  # what ran after the last dump: shutdown
seen, order = set(), []
for path in files:
    objects, functions, current = {}, {}, None
    for line in open(path, errors='replace'):
        key, _, value = line.rstrip('\n').partition('=')
        if key not in ('ob', 'cob', 'fn', 'cfn'):
            continue
        m = re.match(r'\((\d+)\)(?: (.*))?$', value)
        table = objects if key in ('ob', 'cob') else functions
        if m and m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        name = table.get(m.group(1)) if m else value
        if key == 'ob':
            current = name
        elif key == 'fn' and current and current.endswith('/telemetryd'):
            name = re.sub(r"'\d+$", '', name)
            if name not in seen:
                seen.add(name)
                order.append(name)
with open(out, 'w') as f:
    f.write('\n'.join(order) + '\n')
print(f'telemetryd-order: {len(order)} functions -> {os.path.relpath(out)}')
PY
