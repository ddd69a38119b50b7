// The delivery tests' endpoint, for the integration target: tests/receiver/receiver.py run as a child process
// on 127.0.0.1 with its own throwaway CA, server and client certificates in a temporary directory (adapted
// from Tests/TelemetryDeliveryTests/ReceiverSupport.swift, which this target cannot import), plus a plain TCP
// forwarder so that "nothing listens on the endpoint's port" can turn into "the endpoint is back" without
// changing the daemon's endpoint or its CA.
//
//     let receiver = try await ReceiverProcess()
//     try await receiver.control(["mode": "status", "status": 503, "count": 2])
//     let seen = try receiver.requests()             // every data request, decoded body included
//     receiver.stop()                                // also done on deinit; the directory goes too
//
// Control requests go through /usr/bin/curl (with the receiver's CA), so this fixture uses none of the code
// under test. Nothing blocks a Swift concurrency thread for long: readiness is polled with `Task.sleep`.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One request as the receiver recorded it (DIR/requests.jsonl).
struct ReceiverRecord: Sendable {
    var seq: Int
    /// The receiver's wall clock (Unix seconds) when the request had been read, before it was answered.
    var time: Double
    /// A number per TCP connection.
    var connection: Int
    var method: String
    var path: String
    /// Names lowercased.
    var headers: [String: String]
    var contentEncoding: String?
    var rawSize: Int
    /// The body after undoing its Content-Encoding (empty when it could not be decoded).
    var body: [UInt8]
    var decodeError: String?
    var clientCertSubject: String?
    /// What the receiver did: normal, status, hang, slow, reset, close, tunnel.
    var action: String?

    var idempotencyKey: String? { headers["idempotency-key"] }
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    init(_ object: [String: Any]) throws {
        guard let seq = object.int("seq"), let time = object.double("time") else {
            throw HarnessError("a requests.jsonl record without seq or time: \(object)")
        }
        self.seq = seq
        self.time = time
        connection = object.int("connection") ?? 0
        method = object.string("method") ?? ""
        path = object.string("path") ?? ""
        headers = (object["headers"] as? [String: String]) ?? [:]
        contentEncoding = object.string("content_encoding")
        rawSize = object.int("raw_size") ?? 0
        body = object.string("body_b64").flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? []
        decodeError = object.string("decode_error")
        clientCertSubject = object.string("client_cert_subject")
        action = object.string("action")
    }

    /// The body as a JSON array of execution documents (the `json` format).
    func documents() throws -> [[String: Any]] {
        guard let array = try JSONSerialization.jsonObject(with: Data(body)) as? [[String: Any]] else {
            throw HarnessError("request \(seq) to \(path): the body is not a JSON array of objects: \(bodyText.prefix(300))")
        }
        return array
    }

    /// The execution ids of the documents in the body, in body order.
    func executionIDs() throws -> [String] {
        try documents().map { $0.string("execution_id") ?? "?" }
    }
}

/// Kills a child process and waits (bounded) until it is gone; synchronous, for `deinit` and `defer`.
private func killAndReap(_ process: Process) {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    let deadline = monotonicSeconds() + 5
    while process.isRunning && monotonicSeconds() < deadline { usleep(2_000) }
}

/// The package root (this file is Tests/TelemetryIntegrationTests/ReceiverProcess.swift).
private let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// A short, unique directory under /tmp.
private func makeTemporaryDirectory(_ prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))")
    }
    return String(cString: made)
}

/// Starts `arguments` with stdout and stderr in files of `directory`, and waits until stdout has a line starting
/// with `readyPrefix`; returns the process and the rest of that line.
private func startChild(_ arguments: [String], in directory: String, name: String, readyPrefix: String,
                        timeout: Double) async throws -> (Process, String) {
    let outputPath = directory + "/\(name).out"
    let errorPath = directory + "/\(name).log"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    guard let output = FileHandle(forWritingAtPath: outputPath), let error = FileHandle(forWritingAtPath: errorPath) else {
        throw HarnessError("cannot open \(outputPath)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    var environment = childEnvironment()
    environment["PYTHONUNBUFFERED"] = "1"
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = error
    try process.run()
    try? output.close()
    try? error.close()
    let deadline = monotonicSeconds() + timeout
    while true {
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(readyPrefix) }) {
            return (process, String(line.dropFirst(readyPrefix.count)))
        }
        let log = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        if !process.isRunning {
            throw HarnessError("python3 \(arguments.joined(separator: " ")) exited (\(process.terminationStatus)) before it was ready:\n\(log)")
        }
        if monotonicSeconds() > deadline {
            killAndReap(process)
            throw HarnessError("python3 \(arguments.joined(separator: " ")) was not ready within \(timeout)s:\n\(log)")
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
}

final class ReceiverProcess: @unchecked Sendable {
    struct Options: OptionSet, Sendable {
        let rawValue: Int
        /// Plain HTTP instead of HTTPS.
        static let http = Options(rawValue: 1 << 0)
        /// mTLS: the handshake fails without a client certificate signed by `clientCA`.
        static let requireClientCert = Options(rawValue: 1 << 1)
    }

    static var script: String { packageRoot + "/tests/receiver/receiver.py" }

    let directory: String
    let port: Int
    let options: Options
    private let process: Process

    var scheme: String { options.contains(.http) ? "http" : "https" }
    /// "https://127.0.0.1:<port>" and a path.
    func url(_ path: String = "/v1/executions") -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }
    /// The CA that signed the server certificate (TELEMETRY_CA_FILE).
    var caFile: String { directory + "/ca.pem" }
    /// A client certificate and key the receiver accepts with `.requireClientCert`.
    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }
    /// The receiver's own log (stderr).
    var log: String { (try? String(contentsOfFile: directory + "/receiver.log", encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }

    init(_ options: Options = [], port: Int = 0, readyTimeout: Double = 30) async throws {
        self.options = options
        directory = try makeTemporaryDirectory("tdi-rcv")
        var arguments = [Self.script, directory, "--port", String(port)]
        if options.contains(.http) { arguments.append("--http") }
        if options.contains(.requireClientCert) { arguments.append("--require-client-cert") }
        do {
            let (process, rest) = try await startChild(arguments, in: directory, name: "receiver",
                                                       readyPrefix: "READY port=", timeout: readyTimeout)
            guard let port = Int(rest.trimmingCharacters(in: .whitespaces)) else {
                killAndReap(process)
                throw HarnessError("the receiver printed READY port=\(rest)")
            }
            self.process = process
            self.port = port
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    deinit {
        killAndReap(process)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Kills the receiver (its directory stays until deinit, so its records can still be read).
    func stop() { killAndReap(process) }

    /// Sets how the next data requests are answered (see receiver.py): `["mode": "status", "status": 503,
    /// "count": 2, "retry_after": "1"]`, `["mode": "hang", "seconds": 5]`, `["mode": "slow", ...]`, `["mode": "normal"]`.
    func control(_ command: [String: Any]) async throws {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: command), as: UTF8.self)
        var arguments = ["-sS", "--noproxy", "*", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
                         "-H", "Content-Type: application/json", "--data-binary", body]
        if !options.contains(.http) { arguments += ["--cacert", caFile] }
        if options.contains(.requireClientCert) { arguments += ["--cert", clientCertificate, "--key", clientKey] }
        arguments.append(url("/_control"))
        let result = try await runProcess("/usr/bin/curl", arguments, timeout: 15)
        guard result.status == 0, result.stdout.hasSuffix("\n200") else {
            throw HarnessError("receiver control \(body) failed: \(result)")
        }
    }

    /// Every data request so far (control requests are not recorded), oldest first. A line still being
    /// written (no newline yet) is left for the next call.
    func requests() throws -> [ReceiverRecord] {
        guard let data = FileManager.default.contents(atPath: directory + "/requests.jsonl") else { return [] }
        var records: [ReceiverRecord] = []
        var start = data.startIndex
        while let newline = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = data[start..<newline]
            start = data.index(after: newline)
            guard !line.isEmpty else { continue }
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw HarnessError("requests.jsonl has a line that is not an object: \(String(decoding: line, as: UTF8.self))")
            }
            records.append(try ReceiverRecord(object))
        }
        return records
    }

    /// Data requests whose body decoded (not resets before the body).
    func dataRequests(path: String? = nil) throws -> [ReceiverRecord] {
        try requests().filter { $0.method == "POST" && (path == nil || $0.path == path) }
    }

    /// Waits until `condition` holds of the recorded requests; returns them (throws after `timeout`).
    @discardableResult
    func waitForRequests(timeout: Double = 10, _ what: String = "the expected requests",
                         _ condition: ([ReceiverRecord]) -> Bool) async throws -> [ReceiverRecord] {
        var last: [ReceiverRecord] = []
        let held = try await waitUntil(timeout: timeout, interval: .milliseconds(20)) {
            last = try requests()
            return condition(last)
        }
        guard held else {
            throw HarnessError("the receiver did not get \(what) within \(timeout)s; it got \(last.count) request(s): "
                + last.map { "#\($0.seq) \($0.path) \($0.action ?? "") key=\($0.idempotencyKey ?? "-") \($0.bodyText.prefix(120))" }
                    .joined(separator: "\n") + "\nreceiver log:\n\(log.suffix(2_000))")
        }
        return last
    }

    /// Every execution id received so far, with how many times each arrived.
    func receivedExecutionIDs() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for request in try dataRequests() where request.decodeError == nil && !request.body.isEmpty {
            for id in (try? request.executionIDs()) ?? [] { counts[id, default: 0] += 1 }
        }
        return counts
    }

    /// Failed TLS handshakes the receiver saw (DIR/events.jsonl), as their error texts.
    func tlsErrors() -> [String] {
        guard let data = FileManager.default.contents(atPath: directory + "/events.jsonl") else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["error"] as? String
        }
    }
}

/// A plain TCP forwarder 127.0.0.1:`listenPort` → 127.0.0.1:`targetPort` (a python3 child): TLS passes through
/// untouched, so the daemon sees the receiver's certificate on the forwarder's port. Before `start()` (and after
/// `stop()`), nothing listens on `listenPort`.
final class TCPForwarder: @unchecked Sendable {
    static let source = """
        import socket, sys, threading

        listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", listen_port))
        server.listen(64)
        print("READY port=%d" % server.getsockname()[1], flush=True)

        def pipe(source, target):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    target.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        def handle(client):
            try:
                upstream = socket.create_connection(("127.0.0.1", target_port))
            except OSError:
                client.close()
                return
            back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
            back.start()
            pipe(client, upstream)
            back.join()
            client.close()
            upstream.close()

        while True:
            connection, _ = server.accept()
            threading.Thread(target=handle, args=(connection,), daemon=True).start()
        """

    let listenPort: Int
    let targetPort: Int
    private let directory: String
    private let lock = NSLock()
    private var process: Process?

    init(listenPort: Int, targetPort: Int) throws {
        self.listenPort = listenPort
        self.targetPort = targetPort
        directory = try makeTemporaryDirectory("tdi-fwd")
        guard FileManager.default.createFile(atPath: directory + "/forward.py", contents: Data(Self.source.utf8)) else {
            throw HarnessError("cannot write \(directory)/forward.py")
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func start(timeout: Double = 15) async throws {
        let (process, _) = try await startChild([directory + "/forward.py", String(listenPort), String(targetPort)],
                                                in: directory, name: "forward", readyPrefix: "READY port=",
                                                timeout: timeout)
        lock.withLock { self.process = process }
    }

    func stop() {
        guard let process = lock.withLock({ self.process }) else { return }
        killAndReap(process)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed: refused until someone takes it).
func unusedLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw HarnessError("bind: \(String(cString: strerror(errno)))") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Splits a JSON array's text into the exact bytes of its top-level elements (no re-serialization), so that a
/// received body can be compared byte for byte with `telemetry show ID --json`.
func splitJSONArray(_ bytes: [UInt8]) throws -> [[UInt8]] {
    func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
    var start = 0
    var end = bytes.count
    while start < end, isSpace(bytes[start]) { start += 1 }
    while end > start, isSpace(bytes[end - 1]) { end -= 1 }
    guard end - start >= 2, bytes[start] == UInt8(ascii: "["), bytes[end - 1] == UInt8(ascii: "]") else {
        throw HarnessError("not a JSON array: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
    }
    var elements: [[UInt8]] = []
    var depth = 0
    var inString = false
    var escaped = false
    var elementStart = start + 1
    for index in (start + 1)..<(end - 1) {
        let byte = bytes[index]
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
        case UInt8(ascii: ",") where depth == 0:
            elements.append(Array(bytes[elementStart..<index]))
            elementStart = index + 1
        default: break
        }
    }
    let last = Array(bytes[elementStart..<(end - 1)])
    if !last.allSatisfy(isSpace) { elements.append(last) }
    return elements.map { element in
        var slice = element[...]
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let final = slice.last, isSpace(final) { slice = slice.dropLast() }
        return Array(slice)
    }
}
