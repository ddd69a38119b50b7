#!/usr/bin/env python3
"""End-to-end delivery, for bench/delivery.sh: N `telemetry send` clients -> telemetryd -> HTTPS receiver.

    e2e.py --telemetry BIN_DIR --socket SOCK --daemon-pid PID --receiver-pid PID --control PORT
           --spool-dir DIR --docs N FILE...

The clock starts just before the clients (one per FILE, `telemetry send --timeout 60 < FILE`, like
bench/ingest.py) are spawned, and stops when bench/delivery/receiver.py has decoded and counted N documents
(it answers a long-poll on its control port with the CLOCK_MONOTONIC time of that count, so nothing polls the
daemon during the run). Afterwards one `status` request to the daemon gives what it says it accepted and
delivered, and /proc its CPU time and VmHWM.

Prints one JSON object: lines, documents, seconds, rate (lines / seconds), phase times (clients done, the
daemon's last ingest commit, the receiver's first and last request, the last document counted), CPU seconds
of the daemon, the clients, the receiver and everything else on the machine (other processes and kernel threads,
which write back the daemon's store), the daemon's VmHWM/VmRSS and /proc/PID/io, its delivery counters, the
receiver's counters and problems (a list; empty when every check held).
"""
import argparse
import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def system_busy():
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def proc_mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def proc_io(pid):
    with open("/proc/%d/io" % pid) as f:
        return {k: int(v) for k, v in (line.split(":") for line in f)}


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


def count_lines(path):
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def rfc3339_epoch(text):
    if not text:
        return None
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def gaps(arrivals, started, clients):
    """The time between one request's arrival and the next, while clients were still sending, and after."""
    done = max(c["done"] for c in clients.values()) if clients else 0
    during, after = [], []
    for (t0, _), (t1, _) in zip(arrivals, arrivals[1:]):
        (during if t1 - started <= done else after).append(t1 - t0)

    def summary(values):
        if not values:
            return None
        values = sorted(values)
        return {"count": len(values), "mean_ms": 1000 * sum(values) / len(values),
                "median_ms": 1000 * values[len(values) // 2], "max_ms": 1000 * values[-1]}
    return {"while_clients_sent": summary(during), "after_clients_done": summary(after)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--telemetry", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--daemon-pid", type=int, required=True)
    parser.add_argument("--receiver-pid", type=int, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--spool-dir", required=True)
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    lines = sum(count_lines(f) for f in args.files)
    problems = []
    before = daemon_request(args.socket, "status")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "TELEMETRY_SPOOL_DIR": args.spool_dir}

    outcome = {}

    def wait_for_receiver():
        try:
            control = http.client.HTTPConnection("127.0.0.1", args.control, timeout=args.timeout + 30)
            control.request("GET", "/wait?docs=%d&timeout=%g" % (args.docs, args.timeout))
            outcome["receiver"] = json.loads(control.getresponse().read())
        except Exception as error:  # noqa: BLE001
            outcome["error"] = str(error)

    procs = []

    def stop_clients(*_):
        for proc, _ in procs:
            if proc.returncode is None:
                try:
                    proc.kill()
                except OSError:
                    pass
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop_clients)

    cpu_daemon0, cpu_receiver0, busy0 = proc_cpu(args.daemon_pid), proc_cpu(args.receiver_pid), system_busy()
    self0 = os.times()
    io0 = proc_io(args.daemon_pid)
    waiter = threading.Thread(target=wait_for_receiver, daemon=True)
    wall0, started = time.time(), time.monotonic()
    waiter.start()
    try:
        for path in args.files:
            stdin = open(path, "rb")
            cmd = [os.path.join(args.telemetry, "telemetry"), "send", "--socket", args.socket, "--timeout", "60"]
            procs.append((subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           env=env), stdin))
        clients = {}
        for _ in procs:
            pid, status, usage = os.wait4(-1, 0)
            clients[pid] = {"done": time.monotonic() - started, "cpu": usage.ru_utime + usage.ru_stime,
                            "rc": os.waitstatus_to_exitcode(status)}
        for proc, stdin in procs:
            proc.returncode = clients[proc.pid]["rc"]
            stdin.close()
            err = proc.stderr.read().decode(errors="replace").strip()
            if err or proc.returncode != 0:
                problems.append("client %d exited %d: %s" % (proc.pid, proc.returncode, err[-300:]))
        waiter.join(args.timeout + 40)
    finally:
        for proc, _ in procs:
            if proc.returncode is None:
                proc.kill()
    finished = time.monotonic()
    cpu_daemon1, cpu_receiver1, busy1 = proc_cpu(args.daemon_pid), proc_cpu(args.receiver_pid), system_busy()
    self1 = os.times()
    io1 = proc_io(args.daemon_pid)
    mem = proc_mem(args.daemon_pid)
    # The receiver counts a batch once it has answered it; the daemon records the delivery right after.
    for _ in range(250):
        after = daemon_request(args.socket, "status")
        delivered = ((after.get("delivery") or {}).get("documents_delivered", 0)
                     - (before.get("delivery") or {}).get("documents_delivered", 0))
        if delivered >= args.docs or not (outcome.get("receiver") or {}).get("reached"):
            break
        time.sleep(0.02)
    recorded = time.monotonic() - started

    receiver = outcome.get("receiver") or {}
    if "error" in outcome:
        problems.append("waiting for the receiver failed: " + outcome["error"])
    reached = bool(receiver.get("reached"))
    end = receiver.get("reached_at") if reached else finished
    seconds = end - started
    if not reached:
        problems.append("the receiver counted %s of %d documents within %.0f s"
                        % (receiver.get("documents"), args.docs, args.timeout))

    delivery0, delivery1 = before.get("delivery") or {}, after.get("delivery") or {}
    accepted = after["lines_accepted"] - before["lines_accepted"]
    delivered = delivery1.get("documents_delivered", 0) - delivery0.get("documents_delivered", 0)
    rejected = {k: v - before["lines_rejected"].get(k, 0) for k, v in after["lines_rejected"].items()
                if v - before["lines_rejected"].get(k, 0)}
    if accepted != lines:
        problems.append("the daemon accepted %d of %d lines" % (accepted, lines))
    if rejected:
        problems.append("the daemon rejected lines: %s" % rejected)
    if delivered < args.docs:
        problems.append("the daemon reports %d documents delivered, expected %d" % (delivered, args.docs))
    if receiver.get("distinct_ids", args.docs) != receiver.get("documents"):
        problems.append("the receiver counted %s documents but %s distinct execution ids"
                        % (receiver.get("documents"), receiver.get("distinct_ids")))
    if receiver.get("decode_error_count"):
        problems.append("the receiver could not decode %d bodies: %s"
                        % (receiver["decode_error_count"], receiver.get("decode_errors")))
    spooled = sorted(os.listdir(args.spool_dir)) if os.path.isdir(args.spool_dir) else []
    if spooled:
        problems.append("clients spooled %d files instead of sending (took the slow path)" % len(spooled))

    last_commit = rfc3339_epoch((after.get("store") or {}).get("last_commit"))

    def rel(t):
        return None if t is None else t - started

    cpu_daemon, cpu_receiver = cpu_daemon1 - cpu_daemon0, cpu_receiver1 - cpu_receiver0
    cpu_clients = sum(c["cpu"] for c in clients.values())
    cpu_self = (self1.user + self1.system) - (self0.user + self0.system)
    busy = busy1 - busy0
    print(json.dumps({
        "lines": lines, "documents": receiver.get("documents"), "expected_documents": args.docs,
        "reached": reached, "seconds": seconds, "rate": lines / seconds if reached else None,
        "phases": {"clients_done": max(c["done"] for c in clients.values()),
                   "last_ingest_commit": None if last_commit is None else last_commit - wall0,
                   "first_request": rel(receiver.get("first_request_at")),
                   "last_request": rel(receiver.get("last_request_at")),
                   "last_counted": rel(receiver.get("last_counted_at")),
                   "daemon_recorded_all_by": recorded},
        "gaps": gaps(receiver.get("arrivals") or [], started, clients),
        "cpu": {"daemon": cpu_daemon, "clients": cpu_clients, "receiver": cpu_receiver, "driver": cpu_self,
                "machine_busy": busy, "elapsed": finished - started,
                "others": max(0.0, busy - cpu_daemon - cpu_clients - cpu_receiver - cpu_self)},
        "daemon": {"vmhwm_kb": mem.get("VmHWM"), "vmrss_kb": mem.get("VmRSS"), "lines_accepted": accepted,
                   "documents_delivered": delivered,
                   "batches_delivered": delivery1.get("batches_delivered", 0) - delivery0.get("batches_delivered", 0),
                   "retries": delivery1.get("retries", 0) - delivery0.get("retries", 0),
                   "failed_attempts": delivery1.get("failed_attempts"), "state": delivery1.get("state"),
                   "pending_documents": delivery1.get("pending_documents"),
                   "last_latency_s": delivery1.get("last_latency_seconds")},
        "daemon_io": {k: io1[k] - io0[k] for k in ("rchar", "wchar", "read_bytes", "write_bytes", "syscr", "syscw")},
        "receiver": receiver, "clients": list(clients.values()), "problems": problems,
    }))


if __name__ == "__main__":
    main()
