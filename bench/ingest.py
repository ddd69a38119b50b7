#!/usr/bin/env python3
"""One ingest measurement for bench/run.sh: N concurrent clients each stream one pre-generated file.

  ingest.py daemon --socket S --pid PID --telemetry BIN --clients telemetry|raw --rawsend RAWSEND FILE...
  ingest.py sink   --socket S --sink SINK --telemetry BIN --clients telemetry|raw --rawsend RAWSEND FILE...

daemon: the clock starts just before the clients are spawned and stops when the daemon says every line is
        durably stored: `status` (asked every 2 ms once the clients exited, every 50 ms before, on one control connection) reports lines_accepted equal
        to the number of lines sent, and a `flush` request after that has been answered. lines_accepted only
        grows after the store committed the lines, so this is "durably stored", not "read from the socket".
sink:   starts bench/sink (which only counts newlines) expecting all the lines; the clock stops when the sink
        reports that the last newline arrived.

`telemetry send` never blocks its producer: when more than 4 MiB wait for a daemon that is not reading, it
gives up on the socket for the rest of its life and writes the remaining lines to the spool directory
(--spool-dir, given to the clients as TELEMETRY_SPOOL_DIR; the daemon takes finished spool files in every
5 s; a spool file holds at most 64 MiB, lines beyond are dropped). So the daemon figure counts lines that
took that path too, with the time until the last of them was stored; lines never stored are reported as a
problem. If no line is stored for 12 s after every client exited, the run ends and the rate is
lines stored / time until the last one was stored.

Prints one JSON object: lines, seconds, rate, the clients' CPU time (user+sys, from wait4), the slowest
client's wall time, the receiver's CPU time (from /proc), its VmHWM/VmRSS, and problems, if any.
"""
import argparse
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def proc_mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def count_lines(path):
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


class Control:
    """One connection to the daemon carrying control requests, one JSON reply line each."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.pending = b""

    def ask(self, request):
        self.sock.sendall(b'{"v":1,"kind":"control","request":"%s"}\n' % request.encode())
        while b"\n" not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("telemetryd closed the control connection")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)


def client_environment(args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRY_")}
    if args.spool_dir:
        env["TELEMETRY_SPOOL_DIR"] = args.spool_dir
    return env


def spawn_clients(args, files):
    procs = []
    env = client_environment(args)
    for path in files:
        if args.clients == "telemetry":
            # --timeout: with the default 2 s a client gives up (and drops lines) when the daemon applies
            # backpressure for longer; the bench measures throughput, not that policy.
            cmd = [os.path.join(args.telemetry, "telemetry"), "send", "--socket", args.socket, "--timeout", "60"]
        else:
            cmd = [args.rawsend, args.socket, path]
        stdin = open(path, "rb")
        procs.append((subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env),
                      stdin))
    return procs


def wait_for_an_exit(procs, results, timeout):
    """Sleeps until a client not yet reaped exits, or `timeout` seconds (pidfds, so no busy polling)."""
    pidfds = []
    try:
        for proc, _ in procs:
            if proc.pid not in results:
                try:
                    pidfds.append(os.pidfd_open(proc.pid))
                except OSError:  # already gone: nothing to wait for
                    return
        select.select(pidfds, [], [], timeout)
    finally:
        for fd in pidfds:
            os.close(fd)


def reap(procs, started, results, block):
    """wait4 the finished clients: their CPU time and exit status."""
    for proc, stdin in procs:
        if proc.pid in results:
            continue
        pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            continue
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdin.close()
        results[proc.pid] = {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
                             "rc": proc.returncode, "stderr": proc.stderr.read().decode(errors="replace")[-400:]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=["daemon", "sink"])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--sink")
    parser.add_argument("--telemetry", required=True, help="directory of the telemetry binary")
    parser.add_argument("--clients", choices=["telemetry", "raw"], required=True)
    parser.add_argument("--rawsend")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--poll", type=float, default=0.002,
                        help="seconds between status requests once every client exited")
    parser.add_argument("--poll-running", type=float, default=0.05,
                        help="seconds between status requests while clients still send (the harness must not "
                             "compete with the daemon for this machine's two cores)")
    parser.add_argument("--spool-dir", help="TELEMETRY_SPOOL_DIR for the clients (the daemon's, for the daemon target)")
    parser.add_argument("--idle", type=float, default=12, help="give up after this long without progress, once the clients exited")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    if args.clients == "raw" and not args.rawsend:
        parser.error("--clients raw needs --rawsend")
    if args.target == "sink" and not args.sink:
        parser.error("the sink target needs --sink")
    if args.target == "daemon" and not args.pid:
        parser.error("the daemon target needs --pid")

    expected = sum(count_lines(f) for f in args.files)
    problems = []
    clients = {}
    out = {"target": args.target, "clients": args.clients, "connections": len(args.files), "lines": expected}

    if args.target == "daemon":
        control = Control(args.socket)
        base = control.ask("status")
        accepted0 = base["lines_accepted"]
        rejected0 = sum(base["lines_rejected"].values())
        cpu0 = proc_cpu(args.pid)
        started = time.perf_counter()
        procs = spawn_clients(args, args.files)
        accepted = rejected = 0
        last_progress, last_accepted = started, 0
        complete = False
        while True:
            reap(procs, started, clients, block=False)
            status = control.ask("status")
            accepted = status["lines_accepted"] - accepted0
            rejected = sum(status["lines_rejected"].values()) - rejected0
            now = time.perf_counter()
            if accepted != last_accepted:
                last_progress, last_accepted = now, accepted
            if accepted >= expected:
                complete = True
                break
            if now - started > args.timeout or (len(clients) == len(procs) and now - last_progress > args.idle):
                problems.append("%d of %d lines never stored (gave up %.0f s after the last progress)"
                                % (expected - accepted, expected, now - last_progress))
                break
            # Lines cannot all be stored before the last client has written its last line: while clients run,
            # look rarely, but wake at once when one exits; after they all exited, look often, so the end is
            # timed within a couple of milliseconds.
            if len(clients) == len(procs):
                time.sleep(args.poll)
            else:
                wait_for_an_exit(procs, clients, args.poll_running)
        flush = control.ask("flush")
        elapsed = time.perf_counter() - started if complete else last_progress - started
        if not flush.get("ok"):
            problems.append("flush failed: %s" % flush.get("error"))
        if rejected:
            problems.append("%d lines rejected (%s)" % (rejected, ", ".join(
                "%s %d" % (k, v) for k, v in status["lines_rejected"].items()
                if v - base["lines_rejected"].get(k, 0) > 0)))
        out.update(stored=accepted, receiver_cpu=proc_cpu(args.pid) - cpu0,
                   documents_stored=status["documents_stored"], open_executions=status["open_executions"],
                   events_dropped=status["events_dropped"], commits=None)
        out.update(proc_mem(args.pid))
        reap(procs, started, clients, block=True)
    else:
        sink = subprocess.Popen([args.sink, args.socket, str(expected), str(int(args.timeout))],
                                stdout=subprocess.PIPE, text=True)
        if sink.stdout.readline().strip() != "ready":
            print(json.dumps({"error": "sink did not start"}))
            return 1
        cpu0 = proc_cpu(sink.pid)
        started = time.perf_counter()
        procs = spawn_clients(args, args.files)
        # The sink reports once it has every line; clients that spooled lines never deliver them, so once
        # every client exited, give the sink a moment and then ask it for what it got.
        os.set_blocking(sink.stdout.fileno(), False)
        report, clients_done_at = "", None
        while True:
            chunk = sink.stdout.readline()
            if chunk:
                report = chunk.strip()
                break
            reap(procs, started, clients, block=False)
            now = time.perf_counter()
            if len(clients) == len(procs) and clients_done_at is None:
                clients_done_at = now
            if (clients_done_at is not None and now - clients_done_at > 3) or now - started > args.timeout:
                sink.send_signal(signal.SIGTERM)
                os.set_blocking(sink.stdout.fileno(), True)
                report = sink.stdout.readline().strip()
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        try:
            out["receiver_cpu"] = proc_cpu(sink.pid) - cpu0
        except OSError:
            out["receiver_cpu"] = None
        sink.wait()
        match = re.search(r"lines=(\d+) bytes=\d+ seconds=([\d.]+)", report)
        out["stored"] = int(match.group(1)) if match else 0
        if report.startswith("partial"):
            problems.append("%d of %d lines never reached the sink" % (expected - out["stored"], expected))
            elapsed = float(match.group(2))  # first connection to the last byte the sink saw
        elif not match:
            problems.append("sink: %r (exit %s)" % (report, sink.returncode))
        reap(procs, started, clients, block=True)

    spooled = spilled = 0
    for result in clients.values():
        text = result["stderr"]
        found = re.search(r"(\d+) line\(s\) spooled", text)
        if found:
            spooled += int(found.group(1))
        if "spooling" in text:
            spilled += 1
        other = [l for l in text.strip().splitlines() if "spool" not in l]
        if result["rc"] != 0 or other:
            problems.append("client exit %d: %s" % (result["rc"], " / ".join(other)[-300:]))
    if spilled:
        problems.append("%d of %d clients gave up on the socket and spooled %d lines"
                        % (spilled, len(clients), spooled))
    out["spooled"] = spooled
    out.update(seconds=elapsed, rate=out["stored"] / elapsed if elapsed > 0 else 0,
               client_cpu=sum(r["cpu"] for r in clients.values()),
               client_wall_max=max((r["wall"] for r in clients.values()), default=0), problems=problems)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
