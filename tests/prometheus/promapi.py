#!/usr/bin/env python3
"""Small HTTP helpers for tests/prometheus/prometheus.bats (python3 only, no third-party packages).

  promapi.py get URL [METHOD]           prints "STATUS CONTENT-TYPE" then the body (exit 0 on any HTTP status)
  promapi.py query PROM EXPR            prints each result as "labels value", one per line
  promapi.py alerts PROM NAME           prints the states of alert NAME as "state labels", one per line
  promapi.py dashboards DIR EXPOSITION [PROM]
      checks the Grafana dashboards: valid dashboard JSON, every metric name used in a query exists in the
      exposition file, and (with PROM) every query is accepted by Prometheus. Exit 1 with the problems.
"""
import glob
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request


def http(url, method="GET"):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def api(prom, path, **params):
    status, _, body = http(f"{prom}{path}?{urllib.parse.urlencode(params)}")
    reply = json.loads(body)
    if reply.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {reply.get('errorType')}: {reply.get('error')}")
    return reply["data"]


def labels_text(metric):
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


# The names of the seed's four dashboards, each in its own file.
EXPECTED_TITLES = {"Script Performance", "Error Analysis", "Resource Usage", "Compliance"}
METRIC = re.compile(r"\b((?:script|telemetryd|process)_[a-z_]+)\b")
VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}


def exposition_names(path):
    names = set()
    with open(path) as f:
        for line in f:
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def queries(dashboard):
    """(where, expr) for every panel target and every query variable."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f'panel "{panel["title"]}"', target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield f'variable "{variable["name"]}"', variable["query"]["query"]


def check_dashboards(directory, exposition, prom=None):
    problems = []
    available = exposition_names(exposition)
    titles, uids, used = set(), set(), set()
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.basename(path)
        with open(path) as f:
            board = json.load(f)
        for key in ("uid", "title", "panels", "templating", "schemaVersion", "time"):
            if key not in board:
                problems.append(f"{name}: no {key}")
        titles.add(board["title"])
        if board["uid"] in uids:
            problems.append(f"{name}: uid {board['uid']} used twice")
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        if len(ids) != len(set(ids)):
            problems.append(f"{name}: panel ids are not unique")
        for panel in board["panels"]:
            grid = panel["gridPos"]
            if grid["x"] + grid["w"] > 24:
                problems.append(f'{name}: panel "{panel["title"]}" is wider than the grid')
            if panel["type"] != "row" and not panel.get("targets"):
                problems.append(f'{name}: panel "{panel["title"]}" has no query')
        for where, expr in queries(board):
            names = set(METRIC.findall(expr))
            if not names:
                problems.append(f"{name}: {where} queries no telemetryd metric: {expr}")
            for metric in names:
                used.add(metric)
                if metric not in available:
                    problems.append(f"{name}: {where} uses {metric}, which the daemon does not export")
            if prom:
                concrete = expr
                for variable, value in VARIABLES.items():
                    concrete = concrete.replace(variable, value)
                concrete = re.sub(r"\$\w+", ".*", concrete)
                if concrete.startswith("label_values("):
                    continue
                try:
                    api(prom, "/api/v1/query", query=concrete)
                except RuntimeError as error:
                    problems.append(f"{name}: {where}: Prometheus refused the query: {error}")
    if titles != EXPECTED_TITLES:
        problems.append(f"dashboard titles {sorted(titles)} are not the seed's {sorted(EXPECTED_TITLES)}")
    for problem in problems:
        print(problem)
    print(f"checked {len(uids)} dashboards, {len(used)} metric names", file=sys.stderr)
    return 1 if problems else 0


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "get":
        status, content_type, body = http(args[0], args[1] if len(args) > 1 else "GET")
        print(status, content_type)
        print(body, end="")
    elif command == "query":
        for result in api(args[0], "/api/v1/query", query=args[1])["result"]:
            print(labels_text(result["metric"]), result["value"][1])
    elif command == "alerts":
        for alert in api(args[0], "/api/v1/alerts")["alerts"]:
            if alert["labels"].get("alertname") == args[1]:
                print(alert["state"], labels_text(alert["labels"]))
    elif command == "dashboards":
        sys.exit(check_dashboards(*args))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
