#!/usr/bin/env python3
"""Prints bench/delivery.sh's one table from its result files.

  report.py RESULTS_DIR

Reads e2e.json (bench/delivery/e2e.py), replay.json (bench/delivery/replay.py), outage.json
(bench/delivery/outage.py) and env.json (bench/delivery.sh). Every row: figure, target, ratio (figure /
target) and PASS/MISS, or "info" for rows that explain a figure. A part that did not run or failed its checks
is a MISS with the reason in a footnote, never a figure. Exits 0 either way: a MISS is a result.
"""
import json
import os
import sys

results = sys.argv[1]


def load(name):
    path = os.path.join(results, name)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:
        return None


rows = []
footnotes = []


def footnote(text):
    footnotes.append(text)
    return "[%d]" % len(footnotes)


def row(measurement, figure, target="", ratio="", result="info", notes=""):
    rows.append((measurement, figure, target, ratio, result, notes))


def rate(value):
    return "{:,.0f} ev/s".format(value)


def mib(kb):
    return kb / 1024.0


def gap_text(gaps):
    parts = []
    for key, label in (("while_clients_sent", "while clients sent"), ("after_clients_done", "after")):
        g = gaps.get(key)
        if g:
            parts.append("%s %.0f ms median (%d gaps, max %.0f ms)" % (label, g["median_ms"], g["count"], g["max_ms"]))
    return "request to request: " + ", ".join(parts) if parts else ""


env = load("env.json") or {}
e2e = load("e2e.json")
replay = load("replay.json")
outage = load("outage.json")

TARGET_RATE = 300_000
if e2e is None:
    row("end to end: 4x send -> telemetryd -> HTTPS", "not measured", ">= " + rate(TARGET_RATE), "", "MISS",
        footnote("e2e.py produced no result; see %s" % env.get("state", "bench-state/delivery")))
else:
    phases = e2e["phases"]
    cpu = e2e["cpu"]
    notes = ("%s lines, %s/%s docs in %.2f s; clients done %.2f s, last ingest commit %s, requests %s..%s s"
             % ("{:,}".format(e2e["lines"]), "{:,}".format(e2e["documents"] or 0), "{:,}".format(e2e["expected_documents"]),
                e2e["seconds"], phases["clients_done"],
                "%.2f s" % phases["last_ingest_commit"] if phases["last_ingest_commit"] is not None else "?",
                "%.2f" % phases["first_request"] if phases["first_request"] is not None else "?",
                "%.2f" % phases["last_request"] if phases["last_request"] is not None else "?"))
    if e2e["problems"]:
        notes += "; see " + " ".join(footnote(p) for p in e2e["problems"])
    if e2e["reached"] and e2e["rate"]:
        ok = not e2e["problems"] and e2e["rate"] >= TARGET_RATE
        row("end to end: 4x send -> telemetryd -> HTTPS", rate(e2e["rate"]), ">= " + rate(TARGET_RATE),
            "%.2f" % (e2e["rate"] / TARGET_RATE), "PASS" if ok else "MISS", notes)
    else:
        row("end to end: 4x send -> telemetryd -> HTTPS", "not all delivered", ">= " + rate(TARGET_RATE), "",
            "MISS", notes)
    first, last = phases["first_request"], phases["last_request"]
    docs = e2e["receiver"].get("documents") or 0
    if first is not None and last is not None and last > first and docs:
        row("  delivery span (first..last request)", rate(docs * (e2e["lines"] / e2e["expected_documents"]) / (last - first)),
            "", "", "info", "%d requests in %.2f s, one connection, one at a time; %s"
            % (e2e["receiver"]["requests"], last - first, gap_text(e2e.get("gaps") or {})))
    row("  CPU during the run", "daemon %.2f s" % cpu["daemon"], "", "", "info",
        "clients %.2f s, receiver %.2f s, driver %.2f s, other processes + kernel threads %.2f s; %.2f s x %d cores"
        % (cpu["clients"], cpu["receiver"], cpu["driver"], cpu["others"], cpu["elapsed"], env.get("cores", 2)))
    io = e2e.get("daemon_io")
    if io:
        raw = e2e["receiver"].get("json_bytes") or 0
        row("  daemon I/O during the run (/proc/PID/io)", "read %.1f GiB" % (io["rchar"] / 2**30), "", "", "info",
            "wrote %.2f GiB (%.2f GiB reached the disk); reads count the clients' %.0f MiB of input and the store's "
            "pages, writes the store and %.1f MiB of bodies; the documents are %.0f MiB of JSON"
            % (io["wchar"] / 2**30, io["write_bytes"] / 2**30, env.get("input_bytes", 0) / 2**20,
               (e2e["receiver"].get("wire_bytes") or 0) / 2**20, raw / 2**20))

if replay is None:
    row("ceiling: same requests straight to the receiver", "not measured", "", "", "info",
        footnote("replay.py produced no result"))
else:
    events = replay["documents"] * (e2e["lines"] / e2e["expected_documents"]) if e2e else 0
    notes = ("%d recorded gzip POSTs replayed, one keep-alive TLS connection (python http.client); %.2f s until "
             "counted (%.2f s posting)" % (replay["requests"], replay["seconds"], replay["post_seconds"]))
    if not replay.get("reached"):
        notes += "; " + footnote("the receiver counted %s documents of the replay" % replay["documents"])
    figure = rate(events / replay["seconds"]) if replay["seconds"] > 0 else "?"
    ratio = ("%.1fx the e2e rate" % ((events / replay["seconds"]) / e2e["rate"])) if e2e and e2e.get("rate") else ""
    row("ceiling: same requests straight to the receiver", figure, "", ratio, "info", notes)

if e2e is not None:
    r = e2e["receiver"]
    row("requests to the receiver", "{:,}".format(r.get("requests", 0)), "", "", "info",
        "%s documents (%s distinct ids), %d duplicate keys, batches the daemon counted: %s, retries %s; encodings %s"
        % ("{:,}".format(r.get("documents", 0)), "{:,}".format(r.get("distinct_ids", 0)), r.get("duplicate_requests", 0),
           e2e["daemon"]["batches_delivered"], e2e["daemon"]["retries"], r.get("encodings")))
    wire, raw = r.get("wire_bytes", 0), r.get("json_bytes", 0)
    if raw:
        share = wire / raw
        ok = share <= 0.10 and not r.get("decode_error_count")
        row("bytes on the wire (gzip bodies) / raw JSON", "%.2f%%" % (100 * share), "<= 10%", "%.2f" % (share / 0.10),
            "PASS" if ok else "MISS", "%.1f MiB of bodies for %.1f MiB of documents (mean %.0f B raw per document)"
            % (wire / 1048576, raw / 1048576, raw / max(1, r.get("documents", 1))))
    else:
        row("bytes on the wire (gzip bodies) / raw JSON", "not measured", "<= 10%", "", "MISS", "")
    hwm = e2e["daemon"]["vmhwm_kb"]
    if hwm:
        v = mib(hwm)
        row("daemon RSS peak during the run (VmHWM)", "%.1f MiB" % v, "<= 64 MiB", "%.2f" % (v / 64),
            "PASS" if v <= 64 else "MISS", "VmRSS at the end %.1f MiB; fresh daemon, ingest + delivery"
            % mib(e2e["daemon"]["vmrss_kb"] or 0))
else:
    row("bytes on the wire (gzip bodies) / raw JSON", "not measured", "<= 10%", "", "MISS", "")
    row("daemon RSS peak during the run (VmHWM)", "not measured", "<= 64 MiB", "", "MISS", "")

if outage is None:
    row("daemon CPU during an outage", "not measured", "<= 1% of a core", "", "MISS",
        footnote("outage.py produced no result"))
else:
    pct = outage["cpu_percent"]
    top = sorted(outage["threads"].items(), key=lambda kv: -kv[1]["cpu_seconds"])[:3]
    notes = ("%.2f s CPU in %.1f s, %d docs pending, %d failed attempts (%d retries), %.1f context switches/s; "
             "busiest threads: %s" % (outage["cpu_seconds"], outage["seconds"], outage["pending_documents"],
                                      outage["failed_attempts_in_window"], outage["retries_in_window"],
                                      outage["context_switches_per_s"],
                                      ", ".join("%s %.2f s" % (n, t["cpu_seconds"]) for n, t in top)))
    if outage["problems"]:
        notes += "; see " + " ".join(footnote(p) for p in outage["problems"])
    ok = pct <= 1.0 and not outage["problems"]
    row("daemon CPU during a %.0f s outage" % outage["seconds"], "%.2f%% of a core" % pct, "<= 1% of a core", "%.2f" % (pct / 1.0),
        "PASS" if ok else "MISS", notes)

header = ("measurement", "figure", "target", "ratio", "result", "notes")
widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
line = "+-" + "-+-".join("-" * w for w in widths[:-1]) + "-+-" + "-" * widths[-1]
print(line)
print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
print(line)
for r in rows:
    print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
print(line)
for number, text in enumerate(footnotes, 1):
    print("[%d] %s" % (number, text))
