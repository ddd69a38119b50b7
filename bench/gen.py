#!/usr/bin/env python3
"""Generates the bench's input files: protocol v1 lines of about 280 bytes.

usage: gen.py OUT_DIR CLIENTS LINES_PER_CLIENT LINES_PER_EXECUTION

Writes OUT_DIR/client-K.jsonl (K = 0..CLIENTS-1): executions of LINES_PER_EXECUTION lines each
(one "start", LINES_PER_EXECUTION-2 "event" lines, one "end"), every execution id distinct across
all files (the daemon would reject lines of an execution it already closed), and OUT_DIR/one.jsonl:
one event line for the one-shot benchmark. Prints the mean line length.
"""
import os
import sys

out_dir, clients, per_client, per_exec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert per_exec >= 2 and per_client % per_exec == 0, "LINES_PER_CLIENT must be a multiple of LINES_PER_EXECUTION"

# A run-unique prefix so ids never collide with a previous run's documents in a reused store.
run = os.getpid() & 0xFFFFFFFF
TS0 = 1732870000

OPS = ["deploy_service", "verify_checksum", "restart_unit", "sync_artifacts", "migrate_schema"]
LEVELS = ["info", "success", "debug", "warning", "info"]


def exec_id(client, n):
    return "%08x-%04x-4%03x-8%03x-%012x" % (run, client, (n >> 12) & 0xFFF, n & 0xFFF, (client << 32) | n)


def event(eid, ts_us, i):
    op = OPS[i % len(OPS)]
    # Padded message so an event line is ~280 bytes.
    msg = "step %05d of rollout: service api-gateway-%02d healthy on node worker-%03d, checks passed in region eu-west" % (
        i, i % 17, i % 113)
    return ('{"v":1,"kind":"event","execution_id":"%s","ts":%d.%06d,"level":"%s","operation":"%s",'
            '"message":"%s","duration_seconds":%d.%03d}\n') % (
        eid, ts_us // 1000000, ts_us % 1000000, LEVELS[i % len(LEVELS)], op, msg, i % 7, i % 1000)


total_len = 0
total_lines = 0
for c in range(clients):
    parts = []
    for e in range(per_client // per_exec):
        eid = exec_id(c, e)
        ts = (TS0 + e) * 1000000
        parts.append('{"v":1,"kind":"start","execution_id":"%s","ts":%d,"script":"deploy-api-gateway.sh",'
                     '"version":"2.4.1","environment":"production","pid":%d}\n' % (eid, ts // 1000000, 1000 + e))
        for i in range(per_exec - 2):
            parts.append(event(eid, ts + (i + 1) * 1000, i))
        parts.append('{"v":1,"kind":"end","execution_id":"%s","ts":%d,"exit_code":0,"duration_seconds":12.5}\n'
                     % (eid, ts // 1000000 + 12))
    data = "".join(parts)
    total_len += len(data)
    total_lines += len(parts)
    with open(os.path.join(out_dir, "client-%d.jsonl" % c), "w") as f:
        f.write(data)

with open(os.path.join(out_dir, "one.jsonl"), "w") as f:
    f.write(event(exec_id(0xFFFF, 1), TS0 * 1000000, 7))

print("%.0f" % (total_len / max(1, total_lines)))
