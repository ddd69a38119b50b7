#!/usr/bin/env python3
"""The receiver's own ceiling, for bench/delivery.sh: the recorded delivery requests, sent straight to it.

    replay.py --port HTTPS_PORT --control CONTROL_PORT --ca CA_PEM --bodies DIR --docs N

Resets the receiver's counters, then POSTs every body bench/delivery/receiver.py recorded in DIR (index.jsonl:
the very bytes telemetryd sent, in order, with their Content-Encoding and path) over one keep-alive TLS
connection (http.client, like the forwarder: one request at a time), each with a fresh Idempotency-Key, and
waits until the receiver has decoded and counted N documents. Prints one JSON object: requests, wire_bytes,
seconds (first POST until the receiver counted the last document; both sides read CLOCK_MONOTONIC),
post_seconds (until the last answer arrived), documents, and the receiver's counters.
"""
import argparse
import http.client
import json
import os
import ssl
import time
import uuid


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    with open(os.path.join(args.bodies, "index.jsonl")) as f:
        index = [json.loads(line) for line in f]
    requests = []
    for entry in index:
        with open(os.path.join(args.bodies, entry["file"]), "rb") as f:
            requests.append((entry["path"], entry["encoding"], f.read()))

    control = http.client.HTTPConnection("127.0.0.1", args.control, timeout=args.timeout + 10)
    control.request("POST", "/reset", body=b"")
    control.getresponse().read()

    context = ssl.create_default_context(cafile=args.ca)
    connection = http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=30)
    connection.connect()  # the forwarder's connection is up before the bench starts too (kept alive)
    keys = [str(uuid.uuid4()) for _ in requests]
    started = time.monotonic()
    for (path, encoding, body), key in zip(requests, keys):
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "replay/1"}
        if encoding:
            headers["Content-Encoding"] = encoding
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit("replay: HTTP %d from the receiver" % response.status)
    posted = time.monotonic()
    control.request("GET", "/wait?docs=%d&timeout=%g" % (args.docs, args.timeout))
    counters = json.loads(control.getresponse().read())
    connection.close()
    end = counters["reached_at"] or time.monotonic()
    print(json.dumps({"requests": len(requests), "wire_bytes": sum(len(b) for _, _, b in requests),
                      "seconds": end - started, "post_seconds": posted - started,
                      "documents": counters["documents"], "reached": counters["reached"], "receiver": counters}))


if __name__ == "__main__":
    main()
