#!/usr/bin/env python3
"""A throwaway HTTPS endpoint for telemetryd's delivery tests (loopback only, Python 3.11 stdlib).

    receiver.py DIR [--port 0] [--http] [--require-client-cert] [--server-names 127.0.0.1,localhost]
                    [--tunnel-to HOST:PORT] [--bench]

On start it writes a fresh CA, a server certificate for --server-names and a client CA with one client
certificate into DIR:

    ca.pem                       the CA that signed server.pem (give it to the client as TELEMETRY_CA_FILE)
    server.pem, server.key       the server's certificate and key
    client-ca.pem                the CA the server trusts for client certificates (--require-client-cert)
    client.pem, client.key       a client certificate and key signed by client-ca.pem

Certificates come from the `cryptography` package when it imports, else from the `openssl` command
(RECEIVER_CERTS=openssl forces that). It then listens on 127.0.0.1 and prints `READY port=<n>` on stdout.

Every request but the control ones is appended to DIR/requests.jsonl as one JSON object, before it is
answered: seq, time, connection (a number per TCP connection, so reuse shows), client_port, method, path,
http_version, headers (names lowercased, last value wins), content_encoding, raw_size, body_size,
body_b64 (the body after undoing Content-Encoding gzip or zstd), body (the same as UTF-8 text when it is),
decode_error, client_cert_subject, action (what the receiver did with it). TLS handshakes that fail are
appended to DIR/events.jsonl.

zstd bodies are decoded with the `zstandard` package when it imports, else with libzstd through ctypes
(libzstd1 is installed wherever libzstd-dev is), else with the `zstd` command.

Misbehaviour on demand: `POST /_control` with a JSON body sets what the next data requests get:

    {"mode": "status", "status": 503, "count": 2, "retry_after": "1"}   that status N times (default 1),
                                                                        optional "body" or "body_size"
    {"mode": "status", "status": 400, "body": "bad schema"}
    {"mode": "status", "status": 200, "body_size": 200000}             a large 200 answer
    {"mode": "hang", "seconds": 5}       read the request, answer nothing for N seconds, then close
    {"mode": "slow", "seconds": 1}       answer 200 after N seconds
    {"mode": "reset", "count": 1}        read the request, then reset the connection (TCP RST, no answer)
    {"mode": "close", "count": 1}        read the request, then close the connection cleanly, no answer
    {"mode": "reset_before_body"}        read the request's headers only, then reset: the client is still
                                         sending its body (a large one) when the reset arrives
    {"mode": "normal"}                   back to 200 for everything

"count" is how many data requests the mode applies to (default 1; -1: until the next control request).
Without a control request every data request is answered 200 with a small JSON body.

A CONNECT request is tunnelled (a forward proxy, for proxy tests; use --http for the proxy itself): to
--tunnel-to when given, else to the host it names, which must be loopback. It is recorded like the others.

--bench starts the receiver in this process, posts to it over one keep-alive TLS connection, and prints
requests/s and MiB/s for a few body sizes: the receiver's own ceiling, to tell a slow client from a slow
receiver.
"""

import argparse
import base64
import ctypes
import ctypes.util
import datetime
import gzip
import http.client
import http.server
import ipaddress
import itertools
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time


# ---------------------------------------------------------------------------------------------- certificates

def _names(server_names):
    result = []
    for name in server_names:
        try:
            result.append(("ip", ipaddress.ip_address(name)))
        except ValueError:
            result.append(("dns", name))
    return result


def _write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def make_certificates_cryptography(directory, server_names):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def ca(cn):
        k = key()
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True, crl_sign=True,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
                .sign(k, hashes.SHA256()))
        return k, cert

    def leaf(cn, issuer_key, issuer_cert, usage, sans):
        k = key()
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_cert.subject)
                   .public_key(k.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
        if sans:
            entries = [x509.IPAddress(v) if kind == "ip" else x509.DNSName(v) for kind, v in sans]
            builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
        return k, builder.sign(issuer_key, hashes.SHA256())

    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    ca_key, ca_cert = ca("telemetryd test CA")
    server_key, server_cert = leaf(server_names[0], ca_key, ca_cert, ExtendedKeyUsageOID.SERVER_AUTH,
                                   _names(server_names))
    client_ca_key, client_ca_cert = ca("telemetryd test client CA")
    client_key, client_cert = leaf("telemetryd test client", client_ca_key, client_ca_cert,
                                   ExtendedKeyUsageOID.CLIENT_AUTH, [])
    _write(os.path.join(directory, "ca.pem"), pem(ca_cert))
    _write(os.path.join(directory, "server.pem"), pem(server_cert))
    _write(os.path.join(directory, "server.key"), pem_key(server_key), 0o600)
    _write(os.path.join(directory, "client-ca.pem"), pem(client_ca_cert))
    _write(os.path.join(directory, "client.pem"), pem(client_cert))
    _write(os.path.join(directory, "client.key"), pem_key(client_key), 0o600)


def make_certificates_openssl(directory, server_names):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=directory,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"]

    def leaf(stem, cn, issuer, extensions):
        run("req", *ec, "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={cn}")
        with open(os.path.join(directory, f"{stem}.ext"), "w") as f:
            f.write("\n".join(extensions) + "\n")
        run("x509", "-req", "-in", f"{stem}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{stem}.ext", "-out", f"{stem}.pem")
        for suffix in ("csr", "ext"):
            os.unlink(os.path.join(directory, f"{stem}.{suffix}"))

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=telemetryd test CA", *ca_ext)
    run("req", "-x509", *ec, "-keyout", "client-ca.key", "-out", "client-ca.pem", "-days", "2",
        "-subj", "/CN=telemetryd test client CA", *ca_ext)
    sans = ",".join(("IP:" if kind == "ip" else "DNS:") + str(v) for kind, v in _names(server_names))
    leaf("server", server_names[0], "ca",
         ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=serverAuth", f"subjectAltName={sans}"])
    leaf("client", "telemetryd test client", "client-ca",
         ["basicConstraints=critical,CA:FALSE", "extendedKeyUsage=clientAuth"])


def make_certificates(directory, server_names):
    if os.environ.get("RECEIVER_CERTS") != "openssl":
        try:
            import cryptography  # noqa: F401
        except ImportError:
            pass
        else:
            return make_certificates_cryptography(directory, server_names)
    make_certificates_openssl(directory, server_names)


# ----------------------------------------------------------------------------------------------------- zstd

class _ZstdInBuffer(ctypes.Structure):
    _fields_ = [("src", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


class _ZstdOutBuffer(ctypes.Structure):
    _fields_ = [("dst", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


_libzstd = None


def _load_libzstd():
    global _libzstd
    if _libzstd is None:
        path = ctypes.util.find_library("zstd") or "libzstd.so.1"
        lib = ctypes.CDLL(path)
        lib.ZSTD_createDCtx.restype = ctypes.c_void_p
        lib.ZSTD_freeDCtx.argtypes = [ctypes.c_void_p]
        lib.ZSTD_decompressStream.restype = ctypes.c_size_t
        lib.ZSTD_decompressStream.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ZstdOutBuffer),
                                              ctypes.POINTER(_ZstdInBuffer)]
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
        _libzstd = lib
    return _libzstd


def _zstd_decompress_ctypes(data):
    lib = _load_libzstd()
    dctx = lib.ZSTD_createDCtx()
    try:
        source = ctypes.create_string_buffer(data, len(data))
        inb = _ZstdInBuffer(ctypes.cast(source, ctypes.c_void_p), len(data), 0)
        chunk = ctypes.create_string_buffer(1 << 17)
        out, last = bytearray(), 0
        while inb.pos < inb.size:
            outb = _ZstdOutBuffer(ctypes.cast(chunk, ctypes.c_void_p), len(chunk), 0)
            last = lib.ZSTD_decompressStream(dctx, ctypes.byref(outb), ctypes.byref(inb))
            if lib.ZSTD_isError(last):
                raise ValueError("zstd: " + lib.ZSTD_getErrorName(last).decode())
            out += chunk.raw[:outb.pos]
        if last != 0:
            raise ValueError("zstd: truncated frame")
        return bytes(out)
    finally:
        lib.ZSTD_freeDCtx(dctx)


def zstd_decompress(data):
    try:
        import zstandard
    except ImportError:
        pass
    else:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    try:
        return _zstd_decompress_ctypes(data)
    except OSError:  # no libzstd to load
        done = subprocess.run(["zstd", "-d", "-c", "-q"], input=data, capture_output=True)
        if done.returncode != 0:
            raise ValueError("zstd: " + done.stderr.decode(errors="replace").strip())
        return done.stdout


def decode_body(encoding, raw):
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("identity", "none", ""):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(raw)
    if encoding == "zstd":
        return zstd_decompress(raw)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


# --------------------------------------------------------------------------------------------------- server

class State:
    """The misbehaviour set by /_control and the request log, shared by the handler threads."""

    def __init__(self, directory):
        self.lock = threading.Lock()
        self.directory = directory
        self.mode = {"mode": "normal"}
        self.remaining = 0
        self.seq = itertools.count(1)
        self.connections = itertools.count(1)

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode
            self.remaining = int(mode.get("count", 1))

    def take(self):
        """The action for the next data request (and uses one of its count)."""
        with self.lock:
            if self.mode.get("mode", "normal") == "normal" or self.remaining == 0:
                return {"mode": "normal"}
            if self.remaining > 0:
                self.remaining -= 1
            return dict(self.mode)

    def append(self, name, record):
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.lock:
            with open(os.path.join(self.directory, name), "a") as f:
                f.write(line)
                f.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, state, ssl_context, tunnel_to):
        self.state = state
        self.ssl_context = ssl_context
        self.tunnel_to = tunnel_to
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        kind, error = sys.exc_info()[:2]
        print(f"receiver: connection from {client_address[1]}: {kind.__name__}: {error}", file=sys.stderr,
              flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # persistent connections
    server_version = "telemetry-test-receiver/1"
    timeout = 60  # an idle keep-alive connection is closed after this

    def setup(self):
        self.connection_id = next(self.server.state.connections)
        self.client_cert_subject = None
        # Answers go out as headers then body: without this, Nagle's algorithm holds the body back until the
        # client's delayed ACK (40 ms per request).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.server.ssl_context is not None:
            self.request.settimeout(self.timeout)
            tls = self.server.ssl_context.wrap_socket(self.request, server_side=True,
                                                      do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as error:
                self.server.state.append("events.jsonl", {
                    "event": "tls_error", "connection": self.connection_id, "error": str(error),
                    "time": time.time()})
                self.close_gently(tls)
                raise
            self.request = tls
            cert = self.request.getpeercert()
            if cert:
                self.client_cert_subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
        super().setup()

    @staticmethod
    def close_gently(sock):
        """After a failed handshake: let the client read the TLS alert OpenSSL sent, then see a clean end.

        Closing at once with the client's first request unread in the socket would send a TCP reset, which
        can reach the client before the alert (TLS 1.3 clients send the request before the server has
        checked their certificate): the client would then report a reset instead of the alert, by chance.
        """
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(2)
            while sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            sock.close()

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    quiet = False

    def log_message(self, format, *args):
        if self.quiet:
            return
        print(f"receiver: [{self.connection_id}] " + format % args, file=sys.stderr, flush=True)

    # -- body

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length else b""

    # -- answers

    def answer(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Receiver", "telemetry-test")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def drop(self, reset):
        """Close the connection without an answer: a TCP reset (SO_LINGER 0) or a clean close."""
        self.close_connection = True
        try:
            if reset:
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.request.close()

    # -- methods

    def do_POST(self):
        if self.path.split("?")[0] == "/_control":
            return self.control(self.read_body())
        action = self.server.state.take()
        if action.get("mode") == "reset_before_body":
            self.server.state.append("requests.jsonl", {
                "seq": next(self.server.state.seq), "time": time.time(), "connection": self.connection_id,
                "client_port": self.client_address[1], "method": self.command, "path": self.path,
                "http_version": self.request_version, "headers": {k.lower(): v for k, v in self.headers.items()},
                "content_encoding": self.headers.get("Content-Encoding"), "raw_size": 0,
                "client_cert_subject": self.client_cert_subject, "action": "reset_before_body"})
            return self.drop(reset=True)
        raw = self.read_body()
        record = {
            "seq": next(self.server.state.seq), "time": time.time(), "connection": self.connection_id,
            "client_port": self.client_address[1], "method": self.command, "path": self.path,
            "http_version": self.request_version,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "content_encoding": self.headers.get("Content-Encoding"), "raw_size": len(raw),
            "client_cert_subject": self.client_cert_subject, "action": action.get("mode"),
        }
        decoded, decode_error = None, None
        try:
            decoded = decode_body(self.headers.get("Content-Encoding"), raw)
        except Exception as error:  # noqa: BLE001 - any decoding failure is the client's
            decode_error = str(error)
        record["decode_error"] = decode_error
        if decoded is not None:
            record["body_size"] = len(decoded)
            record["body_b64"] = base64.b64encode(decoded).decode()
            try:
                record["body"] = decoded.decode("utf-8")
            except UnicodeDecodeError:
                record["body"] = None
        self.server.state.append("requests.jsonl", record)

        mode = action.get("mode")
        if mode in ("reset", "close"):
            return self.drop(reset=(mode == "reset"))
        if mode == "hang":
            time.sleep(float(action.get("seconds", 5)))
            return self.drop(reset=False)
        if mode == "slow":
            time.sleep(float(action.get("seconds", 1)))
        if decode_error is not None:
            return self.answer(400, json.dumps({"error": decode_error}).encode())
        status = int(action.get("status", 200)) if mode == "status" else 200
        if "body_size" in action:
            body = (b"x" * int(action["body_size"]))
        elif "body" in action:
            body = str(action["body"]).encode()
        elif status >= 400:
            body = json.dumps({"error": f"status {status} on request (receiver control)"}).encode()
        else:
            body = json.dumps({"accepted": True, "seq": record["seq"], "bytes": len(decoded)}).encode()
        extra = [("Retry-After", str(action["retry_after"]))] if "retry_after" in action else []
        self.answer(status, body, "application/json" if body[:1] in (b"{", b"[") else "text/plain", extra)

    do_PUT = do_POST

    def do_GET(self):
        self.answer(200, json.dumps({"receiver": "telemetry-test"}).encode())

    def control(self, raw):
        try:
            mode = json.loads(raw or b"{}")
            if not isinstance(mode, dict) or mode.get("mode", "normal") not in (
                    "normal", "status", "hang", "slow", "reset", "reset_before_body", "close"):
                raise ValueError("mode must be one of normal, status, hang, slow, reset, reset_before_body, close")
        except ValueError as error:
            return self.answer(400, json.dumps({"error": str(error)}).encode())
        self.server.state.set_mode(mode)
        self.answer(200, json.dumps({"ok": True, "mode": mode}).encode())

    def do_CONNECT(self):
        host, _, port = self.path.rpartition(":")
        target = self.server.tunnel_to or (host.strip("[]"), int(port))
        self.server.state.append("requests.jsonl", {
            "seq": next(self.server.state.seq), "time": time.time(), "connection": self.connection_id,
            "client_port": self.client_address[1], "method": "CONNECT", "path": self.path,
            "http_version": self.request_version, "headers": {k.lower(): v for k, v in self.headers.items()},
            "content_encoding": None, "raw_size": 0, "body_size": 0, "body_b64": "", "body": "",
            "decode_error": None, "client_cert_subject": None, "action": "tunnel"})
        if self.server.tunnel_to is None and target[0] not in ("127.0.0.1", "localhost", "::1"):
            return self.answer(403, b'{"error":"this test proxy tunnels to loopback only"}')
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError as error:
            return self.answer(502, json.dumps({"error": str(error)}).encode())
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        client = self.connection
        try:
            client.settimeout(None)
            upstream.settimeout(None)
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 120)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


def tls_context(directory, require_client_cert):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(directory, "server.pem"), os.path.join(directory, "server.key"))
    context.set_alpn_protocols(["http/1.1"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(os.path.join(directory, "client-ca.pem"))
    return context


# ---------------------------------------------------------------------------------------------------- bench

def bench(server, directory, seconds_each=2.0):
    port = server.server_address[1]
    context = ssl.create_default_context(cafile=os.path.join(directory, "ca.pem"))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    line = json.dumps({"execution_id": "00000000-0000-4000-8000-000000000000", "script": "deploy.sh",
                       "status": "success", "duration_ms": 1234, "events": [{"name": "step", "n": 1}] * 4})
    for size in (1024, 64 * 1024, 1024 * 1024):
        plain = ("[" + ",".join([line] * (size // (len(line) + 1) + 1)) + "]").encode()[:size]
        body = gzip.compress(plain, 6)
        count, start = 0, time.monotonic()
        while time.monotonic() - start < seconds_each:
            connection.request("POST", "/v1/bench", body=body,
                               headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
            response = connection.getresponse()
            response.read()
            count += 1
        elapsed = time.monotonic() - start
        print(f"bench: body={size} B (gzip {len(body)} B) requests/s={count / elapsed:.0f} "
              f"MiB/s(decoded)={count * size / elapsed / (1 << 20):.1f}", flush=True)
    connection.close()


# ----------------------------------------------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--http", action="store_true", help="plain HTTP (no TLS)")
    parser.add_argument("--require-client-cert", action="store_true", help="mTLS: refuse clients without one")
    parser.add_argument("--server-names", default="127.0.0.1,localhost",
                        help="comma-separated IPs and DNS names for the server certificate")
    parser.add_argument("--tunnel-to", help="HOST:PORT every CONNECT goes to")
    parser.add_argument("--bench", action="store_true", help="measure this receiver's throughput and exit")
    args = parser.parse_args()

    directory = os.path.abspath(args.directory)
    os.makedirs(directory, exist_ok=True)
    make_certificates(directory, [n.strip() for n in args.server_names.split(",") if n.strip()])
    context = None if args.http else tls_context(directory, args.require_client_cert)
    tunnel_to = None
    if args.tunnel_to:
        host, _, port = args.tunnel_to.rpartition(":")
        tunnel_to = (host, int(port))
    server = Server(("127.0.0.1", args.port), State(directory), context, tunnel_to)

    if args.bench:
        if context is None:
            sys.exit("--bench measures the TLS receiver: leave out --http")
        Handler.quiet = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        bench(server, directory)
        server.shutdown()
        return

    print(f"READY port={server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
