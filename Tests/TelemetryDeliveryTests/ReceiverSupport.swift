// A test endpoint for the delivery tests: tests/receiver/receiver.py run as a child process on 127.0.0.1,
// with its own throwaway CA, server certificate and client certificate in a temporary directory.
//
//     let receiver = try TestReceiver()                       // HTTPS; TestReceiver(.http) for plain HTTP
//     let session = try CurlSession(settings: HTTPSettings(caFile: receiver.caFile, userAgent: "t"))
//     try receiver.control(["mode": "status", "status": 503, "count": 2, "retry_after": "1"])
//     _ = session.post(HTTPRequest(url: receiver.url("/v1/executions"), body: body, headers: []))
//     let seen = try receiver.requests()                      // every data request, decoded body included
//
// The process is killed and the directory removed when the TestReceiver goes away.

import Foundation
import Testing
@testable import TelemetryDelivery

#if canImport(Glibc)
import Glibc
#endif

struct ReceiverError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One request as the receiver recorded it (DIR/requests.jsonl).
struct ReceivedRequest: Decodable {
    var seq: Int
    /// A number per TCP connection: equal numbers mean a reused connection.
    var connection: Int
    var clientPort: Int
    var method: String
    var path: String
    var httpVersion: String
    /// Names lowercased, the last value wins.
    var headers: [String: String]
    var contentEncoding: String?
    /// The body as it came over the wire, and after undoing its Content-Encoding.
    var rawSize: Int
    var bodySize: Int?
    var bodyB64: String?
    var decodeError: String?
    var clientCertSubject: String?
    /// What the receiver did: normal, status, hang, slow, reset, close, tunnel.
    var action: String?

    var body: [UInt8] { bodyB64.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? [] }
}

final class TestReceiver: @unchecked Sendable {
    struct Options: OptionSet {
        let rawValue: Int
        /// Plain HTTP instead of HTTPS.
        static let http = Options(rawValue: 1 << 0)
        /// mTLS: the handshake fails without a client certificate signed by `clientCA`.
        static let requireClientCert = Options(rawValue: 1 << 1)
    }

    /// tests/receiver/receiver.py in this checkout.
    static let script: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/TelemetryDeliveryTests/ReceiverSupport.swift
        return url.appendingPathComponent("tests/receiver/receiver.py").path
    }()

    let directory: String
    let port: Int
    let options: Options
    private let process: Process
    private var controlSession: CurlSession?

    var scheme: String { options.contains(.http) ? "http" : "https" }
    /// "https://127.0.0.1:<port>" and a path.
    func url(_ path: String = "/v1/executions") -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }
    /// The CA that signed the server certificate (TELEMETRY_CA_FILE).
    var caFile: String { directory + "/ca.pem" }
    /// A client certificate and key the receiver accepts with `.requireClientCert`.
    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }
    var clientCA: String { directory + "/client-ca.pem" }
    /// The receiver's own log (stderr): request lines and failed TLS handshakes.
    var log: String { (try? String(contentsOfFile: directory + "/receiver.log", encoding: .utf8)) ?? "" }

    /// Starts a receiver and waits until it listens. `serverNames`: what the server certificate is valid for
    /// (IPs and DNS names); `tunnelTo`: "HOST:PORT" every CONNECT goes to (a proxy for proxy tests).
    init(_ options: Options = [], serverNames: [String] = ["127.0.0.1", "localhost"], tunnelTo: String? = nil,
         readyTimeout: Double = 30) throws {
        self.options = options
        var template = Array("/tmp/telemetry-receiver-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ReceiverError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)

        var arguments = [Self.script, directory, "--server-names", serverNames.joined(separator: ",")]
        if options.contains(.http) { arguments.append("--http") }
        if options.contains(.requireClientCert) { arguments.append("--require-client-cert") }
        if let tunnelTo { arguments += ["--tunnel-to", tunnelTo] }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        _ = FileManager.default.createFile(atPath: directory + "/receiver.log", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: directory + "/receiver.log")
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            _ = try? FileManager.default.removeItem(atPath: directory)
            throw ReceiverError("could not start python3 \(Self.script): \(error)")
        }
        self.process = process

        // Wait for "READY port=<n>" with a deadline, reading on another thread (a read blocks).
        let ready = DispatchSemaphore(value: 0)
        let found = LockedBox<Int?>(nil)
        let reader = stdout.fileHandleForReading
        Thread.detachNewThread {
            var seen = ""
            while true {
                let data = reader.availableData
                if data.isEmpty { break }  // EOF: the receiver exited
                seen += String(decoding: data, as: UTF8.self)
                if let line = seen.split(separator: "\n").first(where: { $0.hasPrefix("READY port=") }),
                   let port = Int(line.dropFirst("READY port=".count)) {
                    found.set(port)
                    break
                }
            }
            ready.signal()
            // Keep draining: the receiver prints nothing more on stdout, but a full pipe must never block it.
            while !reader.availableData.isEmpty {}
        }
        let waited = ready.wait(timeout: .now() + readyTimeout)
        guard waited == .success, let port = found.get() else {
            process.terminate()
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: directory + "/receiver.log", encoding: .utf8)) ?? ""
            _ = try? FileManager.default.removeItem(atPath: directory)
            throw ReceiverError("the receiver did not get ready (\(waited == .success ? "exited" : "timed out")): \(log)")
        }
        self.port = port
    }

    deinit {
        controlSession = nil
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        _ = try? FileManager.default.removeItem(atPath: directory)
    }

    /// Sets how the next data requests are answered (see receiver.py): `["mode": "status", "status": 503,
    /// "count": 2, "retry_after": "1"]`, `["mode": "hang", "seconds": 5]`, `["mode": "reset"]`, ...
    func control(_ command: [String: Any]) throws {
        let body = try JSONSerialization.data(withJSONObject: command)
        if controlSession == nil {
            let mutual = options.contains(.requireClientCert)
            controlSession = try CurlSession(settings: HTTPSettings(
                caFile: caFile, clientCertificate: mutual ? clientCertificate : nil, clientKey: mutual ? clientKey : nil,
                connectTimeoutSeconds: 10, requestTimeoutSeconds: 10, userAgent: "receiver-control"))
        }
        let result = controlSession!.post(HTTPRequest(url: url("/_control"), body: [UInt8](body),
                                                      headers: [("Content-Type", "application/json")]))
        switch result {
        case .success(let response) where response.status == 200:
            return
        case .success(let response):
            throw ReceiverError("control \(command) answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        case .failure(let failure):
            throw ReceiverError("control \(command) failed: \(failure)")
        }
    }

    /// Every data request so far (control requests are not recorded), oldest first.
    func requests() throws -> [ReceivedRequest] {
        guard let data = FileManager.default.contents(atPath: directory + "/requests.jsonl") else { return [] }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try data.split(separator: UInt8(ascii: "\n")).map { try decoder.decode(ReceivedRequest.self, from: Data($0)) }
    }

    /// Failed TLS handshakes the receiver saw (DIR/events.jsonl), as their error texts.
    func tlsErrors() -> [String] {
        guard let data = FileManager.default.contents(atPath: directory + "/events.jsonl") else { return [] }
        return data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?["error"] as? String
        }
    }
}

/// A value shared between threads under a lock.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed: refused until someone takes it).
func closedLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ReceiverError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw ReceiverError("bind: \(String(cString: strerror(errno)))") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A listening socket on 127.0.0.1 that never accepts: TCP connects (the kernel completes them), but no TLS
/// handshake ever answers. Closed on deinit.
final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ReceiverError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw ReceiverError("bind/listen: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// Monotonic seconds, for timing a request.
func receiverClock() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
