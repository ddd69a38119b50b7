#!/usr/bin/env python3
"""A fast HTTPS receiver for bench/delivery.sh (loopback only, Python 3.11 stdlib + the test receiver's certs).

    receiver.py DIR [--bodies-dir DIR]

tests/receiver/receiver.py (http.server, a thread per connection, every body base64'd and JSON-logged) takes
~60 requests/s of 1 MiB bodies on this machine: slower than the forwarder, so it would be the figure. This one
is asyncio + ssl on one thread, logs nothing per request, and answers a POST with 200 as soon as its body has
been read; a decoding thread then gunzips it, checks it is a JSON array ([...]), counts its documents and
their distinct execution ids (one top-level "execution_id" per document; events carry none), and
de-duplicates on Idempotency-Key as docs/delivery.md asks. So the network path answers at once and the gunzip
work (zlib releases the GIL) runs beside it, in order. A benchmark reading "every document received" waits
until the decoding thread has counted them, not only until the bytes arrived.

It writes DIR/{ca,server}.pem and keys with tests/receiver/receiver.py's make_certificates (TELEMETRY_CA_FILE
is DIR/ca.pem), listens on two 127.0.0.1 ports and prints `READY port=<https> control=<http>`:

  https port   POST <any path>      a delivery: 200 {"accepted":true} once the body is read
                                    (Expect: 100-continue answered; Content-Length or chunked bodies)
  control port GET /stats           the counters (JSON, below)
  (plain HTTP) GET /wait?docs=N&timeout=S   answers once N documents were counted (or after S seconds), with
                                    the counters; "reached_at" is the CLOCK_MONOTONIC time of the count
               POST /reset?record=1 zero the counters and forget keys and ids (between two measurements);
                                    record=1 starts --bodies-dir recording, without it recording stops

Counters: requests, duplicate_requests (same Idempotency-Key again), documents (counted, first copy of each
key), distinct_ids, wire_bytes (compressed bodies as sent), json_bytes (after gunzip), decode_errors,
first_request_at, last_request_at, last_counted_at (CLOCK_MONOTONIC), connections, encodings, paths, arrivals
(CLOCK_MONOTONIC time a body was read and its size, per request).

--bodies-dir DIR: once a /reset?record=1 asked for it, the decoding thread writes each body as received (000001.body, ...) there, with its
Content-Encoding and path in DIR/index.jsonl, so that a replay client can send the very same requests again
(bench/delivery/replay.py). Writes stop when the directory holds --bodies-max-mb (256) MiB.
"""

import argparse
import asyncio
import json
import os
import queue
import sys
import threading
import time
import zlib

sys.dont_write_bytecode = True  # no __pycache__ left in tests/receiver/
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "receiver"))
import receiver as test_receiver  # noqa: E402  (certificates and the TLS context, shared with the tests)

ID_MARK = b'"execution_id":"'


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0
        self.duplicate_requests = 0
        self.documents = 0
        self.ids = set()
        self.keys = set()
        self.wire_bytes = 0
        self.json_bytes = 0
        self.decode_errors = []
        self.first_request_at = None
        self.last_request_at = None
        self.last_counted_at = None
        self.connections = 0
        self.encodings = {}
        self.paths = {}
        self.pending_decodes = 0
        self.arrivals = []  # (CLOCK_MONOTONIC, wire bytes) of the first 100,000 requests

    def snapshot(self):
        with self.lock:
            return {"requests": self.requests, "duplicate_requests": self.duplicate_requests,
                    "documents": self.documents, "distinct_ids": len(self.ids), "wire_bytes": self.wire_bytes,
                    "json_bytes": self.json_bytes, "decode_errors": self.decode_errors[:5],
                    "decode_error_count": len(self.decode_errors), "first_request_at": self.first_request_at,
                    "last_request_at": self.last_request_at, "last_counted_at": self.last_counted_at,
                    "connections": self.connections, "encodings": dict(self.encodings),
                    "paths": dict(self.paths), "pending_decodes": self.pending_decodes,
                    "arrivals": list(self.arrivals),
                    "now": time.monotonic()}


class Receiver:
    def __init__(self, bodies_dir, bodies_max_bytes):
        self.counters = Counters()
        self.bodies_dir = bodies_dir
        self.bodies_left = bodies_max_bytes
        self.body_seq = 0
        self.recording = False
        self.work = queue.Queue()
        self.waiters = []  # (documents, asyncio.Future)
        self.loop = None
        threading.Thread(target=self.decode_loop, daemon=True).start()

    # -- decoding thread

    def decode_loop(self):
        while True:
            generation, encoding, key, raw, path = self.work.get()
            if self.recording and self.bodies_dir and generation == self.generation and len(raw) <= self.bodies_left:
                self.bodies_left -= len(raw)
                self.body_seq += 1
                name = "%06d.body" % self.body_seq
                with open(os.path.join(self.bodies_dir, name), "wb") as f:
                    f.write(raw)
                with open(os.path.join(self.bodies_dir, "index.jsonl"), "a") as f:
                    f.write(json.dumps({"file": name, "encoding": encoding, "path": path}) + "\n")
            error, documents, ids, decoded_size = None, 0, [], 0
            try:
                enc = (encoding or "identity").strip().lower()
                if enc in ("gzip", "x-gzip"):
                    body = zlib.decompress(raw, 31)
                elif enc in ("identity", ""):
                    body = raw
                else:
                    raise ValueError("unsupported Content-Encoding %r" % encoding)
                decoded_size = len(body)
                stripped = body.strip()
                if not (stripped.startswith(b"[") and stripped.endswith(b"]")):
                    raise ValueError("the body is not a JSON array")
                position = body.find(ID_MARK)
                while position >= 0:
                    start = position + len(ID_MARK)
                    end = body.find(b'"', start)
                    ids.append(body[start:end])
                    documents += 1
                    position = body.find(ID_MARK, end)
            except Exception as problem:  # noqa: BLE001 - a bad body is a finding, not a crash
                error = "%s: %s" % (type(problem).__name__, problem)
            with self.counters.lock:
                if generation != self.generation:
                    continue  # reset meanwhile
                self.counters.pending_decodes -= 1
                self.counters.json_bytes += decoded_size
                if error:
                    self.counters.decode_errors.append(error)
                elif key is not None and key in self.counters.keys:
                    self.counters.duplicate_requests += 1
                else:
                    if key is not None:
                        self.counters.keys.add(key)
                    self.counters.documents += documents
                    self.counters.ids.update(ids)
                self.counters.last_counted_at = time.monotonic()
                count = self.counters.documents
            self.loop.call_soon_threadsafe(self.wake, count)

    generation = 0

    def wake(self, count):
        still = []
        for target, future in self.waiters:
            if count >= target and not future.done():
                future.set_result(True)
            elif not future.done():
                still.append((target, future))
        self.waiters = still

    # -- HTTP

    async def handle(self, reader, writer, control):
        with self.counters.lock:
            if not control:
                self.counters.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    parts = []
                    while True:
                        size = int((await reader.readline()).split(b";")[0].strip(), 16)
                        if size == 0:
                            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        parts.append(await reader.readexactly(size))
                        await reader.readline()
                    body = b"".join(parts)
                else:
                    length = int(headers.get("content-length", "0") or "0")
                    body = await reader.readexactly(length) if length else b""
                if control:
                    status, answer = await self.control(method, target, body)
                else:
                    status, answer = self.delivery(target, headers, body), b'{"accepted":true}'
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % (status, b"OK" if status == 200 else b"Error", len(answer)) + answer)
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as problem:
            print("bench receiver: connection ended: %s" % problem, file=sys.stderr, flush=True)
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    def delivery(self, target, headers, body):
        now = time.monotonic()
        encoding = headers.get("content-encoding")
        with self.counters.lock:
            counters = self.counters
            counters.requests += 1
            counters.wire_bytes += len(body)
            counters.first_request_at = counters.first_request_at or now
            counters.last_request_at = now
            if len(counters.arrivals) < 100_000:
                counters.arrivals.append((now, len(body)))
            counters.encodings[encoding or "identity"] = counters.encodings.get(encoding or "identity", 0) + 1
            path = target.split("?")[0]
            counters.paths[path] = counters.paths.get(path, 0) + 1
            counters.pending_decodes += 1
            generation = self.generation
        self.work.put((generation, encoding, headers.get("idempotency-key"), body, target))
        return 200

    async def control(self, method, target, body):
        path, _, query = target.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path == "/stats":
            return 200, json.dumps(self.counters.snapshot()).encode()
        if path == "/reset" and method == "POST":
            with self.counters.lock:
                self.generation += 1
                self.counters.reset()
            self.recording = params.get("record") == "1"
            return 200, b'{"ok":true}'
        if path == "/wait":
            target_docs = int(params.get("docs", "0"))
            timeout = float(params.get("timeout", "60"))
            future = self.loop.create_future()
            self.waiters.append((target_docs, future))
            self.wake(self.counters.snapshot()["documents"])
            try:
                await asyncio.wait_for(future, timeout)
                reached = True
            except asyncio.TimeoutError:
                reached = False
            snapshot = self.counters.snapshot()
            snapshot["reached"] = reached
            snapshot["reached_at"] = snapshot["last_counted_at"] if reached else None
            return 200, json.dumps(snapshot).encode()
        return 404, b'{"error":"unknown control path"}'

    async def serve(self, directory):
        self.loop = asyncio.get_running_loop()
        context = test_receiver.tls_context(directory, False)
        https = await asyncio.start_server(lambda r, w: self.handle(r, w, False), "127.0.0.1", 0, ssl=context,
                                           limit=1 << 20, backlog=128)
        control = await asyncio.start_server(lambda r, w: self.handle(r, w, True), "127.0.0.1", 0)
        print("READY port=%d control=%d" % (https.sockets[0].getsockname()[1], control.sockets[0].getsockname()[1]),
              flush=True)
        await asyncio.gather(https.serve_forever(), control.serve_forever())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--bodies-dir")
    parser.add_argument("--bodies-max-mb", type=int, default=256)
    args = parser.parse_args()
    directory = os.path.abspath(args.directory)
    os.makedirs(directory, exist_ok=True)
    if args.bodies_dir:
        os.makedirs(args.bodies_dir, exist_ok=True)
    test_receiver.make_certificates(directory, ["127.0.0.1", "localhost"])
    try:
        asyncio.run(Receiver(args.bodies_dir, args.bodies_max_mb << 20).serve(directory))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
