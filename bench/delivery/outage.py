#!/usr/bin/env python3
"""The daemon's CPU during an outage, for bench/delivery.sh.

    outage.py --telemetry BIN_DIR --socket SOCK --daemon-pid PID --spool-dir DIR --port PORT [--seconds 60] FILE

The endpoint must already be down (nothing listening on 127.0.0.1:PORT; checked: a connection is refused,
before and after). Sends FILE with `telemetry send` (a few whole executions), has the daemon commit them
(`sync` control request: durable, no delivery asked for), checks that `status` shows documents pending, and
then, without talking to the daemon at all, reads its utime+stime (/proc/PID/stat, and per thread from
/proc/PID/task) and its context switches at the start and at the end of --seconds. The window opens with the
documents pending and never delivered: it holds the first failing cycle (an attempt and its retries) and the
backoff that follows, as an outage does. One `status` afterwards gives the attempts and the next attempt time.

Prints one JSON object: seconds, cpu_seconds, cpu_percent (of one core), per-thread CPU, context switches per
second, the delivery counters before and after, and problems.
"""
import argparse
import errno
import json
import os
import socket
import subprocess
import time

TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu(path):
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def threads(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            switches = 0
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        switches += int(line.split()[1])
            out[tid] = (name, stat_cpu("/proc/%d/task/%s/stat" % (pid, tid)), switches)
        except OSError:
            pass
    return out


def daemon_request(path, request):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    sock.sendall(b'{"v":1,"kind":"control","request":"%s"}\n' % request.encode())
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return json.loads(data.split(b"\n", 1)[0])


def refused(port):
    sock = socket.socket()
    sock.settimeout(2)
    try:
        sock.connect(("127.0.0.1", port))
        return False
    except OSError as error:
        return error.errno == errno.ECONNREFUSED
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--telemetry", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--daemon-pid", type=int, required=True)
    parser.add_argument("--spool-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("file")
    args = parser.parse_args()
    problems = []
    pid = args.daemon_pid

    if not refused(args.port):
        problems.append("127.0.0.1:%d does not refuse connections: the outage is not one" % args.port)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TELEMETRY_SPOOL_DIR": args.spool_dir}
    with open(args.file, "rb") as stdin:
        sent = subprocess.run([os.path.join(args.telemetry, "telemetry"), "send", "--socket", args.socket],
                              stdin=stdin, capture_output=True, env=env)
    if sent.returncode != 0 or sent.stderr:
        problems.append("telemetry send: rc %d: %s" % (sent.returncode, sent.stderr.decode(errors="replace")[-300:]))
    synced = daemon_request(args.socket, "sync")
    if not synced.get("ok"):
        problems.append("sync failed: %s" % synced)
    with open(args.file, "rb") as f:
        executions = sum(1 for line in f if b'"kind":"end"' in line)
    before = None
    for _ in range(150):  # the forwarder publishes its backlog when a commit pokes it: wait for all of them
        before = daemon_request(args.socket, "status")
        if (before.get("delivery") or {}).get("pending_documents", 0) >= executions:
            break
        time.sleep(0.02)
    pending = (before.get("delivery") or {}).get("pending_documents", 0)
    if pending < executions:
        problems.append("%d documents pending at the start of the window, %d executions sent" % (pending, executions))

    threads0, cpu0, started = threads(pid), stat_cpu("/proc/%d/stat" % pid), time.monotonic()
    time.sleep(args.seconds)
    threads1, cpu1, ended = threads(pid), stat_cpu("/proc/%d/stat" % pid), time.monotonic()
    after = daemon_request(args.socket, "status")
    if not refused(args.port):
        problems.append("127.0.0.1:%d stopped refusing connections during the window" % args.port)

    elapsed = ended - started
    cpu = (cpu1 - cpu0) / TICKS
    per_thread = {}
    switches = 0
    for tid, (name, ticks, sw) in threads1.items():
        name0, ticks0, sw0 = threads0.get(tid, (name, 0, 0))
        entry = per_thread.setdefault(name, {"threads": 0, "cpu_seconds": 0.0, "switches": 0})
        entry["threads"] += 1
        entry["cpu_seconds"] += (ticks - ticks0) / TICKS
        entry["switches"] += sw - sw0
        switches += sw - sw0
    d0, d1 = before.get("delivery") or {}, after.get("delivery") or {}
    attempts0 = sum((d0.get("failed_attempts") or {}).values())
    attempts1 = sum((d1.get("failed_attempts") or {}).values())
    if d1.get("documents_delivered", 0) != d0.get("documents_delivered", 0):
        problems.append("documents were delivered during the outage window")
    print(json.dumps({
        "seconds": elapsed, "cpu_seconds": cpu, "cpu_percent": 100.0 * cpu / elapsed,
        "pending_documents": pending, "failed_attempts_in_window": attempts1 - attempts0,
        "retries_in_window": d1.get("retries", 0) - d0.get("retries", 0),
        "context_switches_per_s": switches / elapsed, "threads": per_thread,
        "delivery_before": d0, "delivery_after": d1, "problems": problems,
    }))


if __name__ == "__main__":
    main()
