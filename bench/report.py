#!/usr/bin/env python3
"""Prints bench/run.sh's one table from the result files in a directory.

  report.py RESULTS_DIR

Reads oneshot.json (hyperfine --export-json format, or the fallback loop's), ingest-*.json (bench/ingest.py),
rss.json and env.json (bench/run.sh). Every row: figure, target, ratio (figure / target, or vs logger for
the one-shot rows) and PASS/MISS, or "info" for rows that explain a figure rather than meet a target.
Exits 0 whether targets are met or not: a MISS is a result, not a failure of the bench.
"""
import json
import os
import statistics
import sys

results = sys.argv[1]


def load(name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


rows = []  # (measurement, figure, target, ratio, result, notes)
footnotes = []


def footnote(text):
    footnotes.append(text)
    return "[%d]" % len(footnotes)


def row(measurement, figure, target="", ratio="", result="info", notes=""):
    rows.append((measurement, figure, target, ratio, result, notes))


def ms(seconds):
    return "%.2f ms" % (seconds * 1000)


def rate(value):
    return "{:,.0f} ev/s".format(value)


env = load("env.json") or {}

# 1. One-shot send vs logger. Every figure is net of the "baseline" command (execsh alone, see run.sh).
oneshot = load("oneshot.json")
if oneshot:
    by_name = {r["command"]: r for r in oneshot["results"]}
    tool = env.get("oneshot_tool", "hyperfine")
    base = by_name.get("baseline")
    base_median = statistics.median(base["times"]) if base else 0.0

    def stats(key):
        r = by_name.get(key)
        if r is None:
            return None
        times = r["times"]
        return (statistics.median(times) - base_median, statistics.fmean(times) - base_median,
                statistics.pstdev(times), len(times))

    logger_median = stats("logger")[0]
    for key, label, is_target in [
        ("telemetry", "one-shot `telemetry send` -> telemetryd", True),
        ("logger", "one-shot `logger -T -u` -> stream listener", False),
        ("telemetry_sink", "one-shot `telemetry send` -> same listener", False),
        ("version", "`telemetry --version` (startup alone)", False),
        ("compare_telemetry", "one-shot send -> telemetryd, BENCH_COMPARE_BIN", False),
        ("compare_version", "`telemetry --version`, BENCH_COMPARE_BIN", False),
    ]:
        if stats(key) is None:
            continue
        median, mean, sd, n = stats(key)
        notes = "median of %d runs; mean %s, sd %s" % (n, ms(mean), ms(sd))
        if key == "telemetry":
            notes += "; net of the spawn baseline, %s (%s)" % (ms(base_median), tool)
        ratio = "%.2f x logger" % (median / logger_median)
        if is_target:
            row(label, ms(median), "<= 0.6 x logger = %s" % ms(0.6 * logger_median), ratio,
                "PASS" if median <= 0.6 * logger_median else "MISS", notes)
        elif key == "logger":
            row(label, ms(median), "(baseline)", "1.00 x logger", "info", notes)
        else:
            if key.startswith("compare"):
                notes += "; " + env.get("compare_bin", "")
            row(label, ms(median), "", ratio, "info", notes)

# 2. Ingest.
TARGET_RATE = 1_000_000
for name, label, is_target in [
    ("ingest-telemetry-daemon.json", "ingest: 4x `telemetry send` -> telemetryd, durable", True),
    ("ingest-raw-daemon.json", "ingest: 4x raw writer -> telemetryd, durable", False),
    ("ingest-telemetry-sink.json", "ceiling: 4x `telemetry send` -> newline sink", False),
    ("ingest-raw-sink.json", "ceiling: 4x raw writer -> newline sink", False),
]:
    r = load(name)
    if r is None:
        row(label, "not run", "", "", "MISS" if is_target else "info", "BENCH_SKIP_INGEST=1" if is_target else "")
        continue
    lines = r["lines"]
    notes = "%d lines in %.2f s; client CPU %.2f us/line" % (r["stored"], r["seconds"], r["client_cpu"] / lines * 1e6)
    if r.get("receiver_cpu") is not None and r["target"] == "daemon":
        notes += "; daemon CPU %.2f us/line" % (r["receiver_cpu"] / lines * 1e6)
    if len(r.get("runs", [])) > 1:
        notes = "median of %d runs (%s ev/s); the median run: " % (
            len(r["runs"]), ", ".join("%.0fk" % (x / 1000) for x in r["runs"])) + notes
    if r["problems"]:
        notes += "; see " + " ".join(footnote(p) for p in r["problems"])
    ok = r["stored"] >= lines and not r["problems"]
    figure = rate(r["rate"])
    ratio = "%.2f" % (r["rate"] / TARGET_RATE)
    if is_target:
        row(label, figure, ">= " + rate(TARGET_RATE), ratio, "PASS" if ok and r["rate"] >= TARGET_RATE else "MISS", notes)
    else:
        row(label, figure, "", ratio + " of target", "info", notes)

# 3. RSS.
rss = load("rss.json") or {}
MiB = 1024.0
rss = {k: v for k, v in rss.items() if v is not None}
if "idle_rss_kb" in rss:
    v = rss["idle_rss_kb"] / MiB
    row("daemon RSS idle after start (VmRSS)", "%.1f MiB" % v, "<= 15 MiB", "%.2f" % (v / 15),
        "PASS" if v <= 15 else "MISS", "1 s after ready, before any client")
if "peak_hwm_kb" in rss:
    v = rss["peak_hwm_kb"] / MiB
    row("daemon RSS peak, ingest (VmHWM)", "%.1f MiB" % v, "<= 64 MiB", "%.2f" % (v / 64),
        "PASS" if v <= 64 else "MISS", "the highest of the `telemetry send` ingest runs")
if "after_rss_kb" in rss:
    v = rss["after_rss_kb"] / MiB
    row("daemon RSS after ingest (VmRSS)", "%.1f MiB" % v, "", "", "info",
        "%.0f s after the flush" % rss.get("after_delay_s", 0))
if "raw_hwm_kb" in rss:
    v = rss["raw_hwm_kb"] / MiB
    row("daemon RSS peak, raw-writer ingest (VmHWM)", "%.1f MiB" % v, "", "%.2f of 64 MiB" % (v / 64), "info", "")

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
