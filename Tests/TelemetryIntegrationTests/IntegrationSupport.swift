// Shared fixtures of the integration tests: the real `telemetryd` and `telemetry` binaries run as child
// processes, a raw Unix-socket client (arbitrary bytes, partial lines, slow writes), a JSON line builder,
// and helpers to read the daemon's answers.
//
// Rules every helper follows so that tests can run in parallel on a small machine:
// - every test has its own short temporary directory under /tmp (sockaddr_un paths must be < 108 bytes);
// - nothing waits blindly: readiness is polled (socket accepts + the daemon's "ready" log line) with a deadline;
// - waiting never blocks a Swift concurrency thread for long: polls use `Task.sleep`;
// - every descriptor the tests open is close-on-exec, so child processes never inherit a test's socket;
// - daemons are killed in `defer` (synchronously), whatever happened in the test.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Errors and small utilities

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Monotonic seconds.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Polls `condition` every `interval` until it holds or `timeout` passes; returns whether it held.
@discardableResult
func waitUntil(timeout: Double = 10, interval: Duration = .milliseconds(10),
               _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = monotonicSeconds() + timeout
    while true {
        if try await condition() { return true }
        if monotonicSeconds() > deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

/// A fresh lowercase execution id.
func newExecutionID() -> String { UUID().uuidString.lowercased() }

// MARK: - Binaries

enum Binaries {
    /// `TELEMETRY_TEST_BIN`, else `<package root>/.build/debug` (this file is Tests/TelemetryIntegrationTests/…).
    static let directory: String = {
        if let configured = ProcessInfo.processInfo.environment["TELEMETRY_TEST_BIN"], !configured.isEmpty {
            return configured
        }
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }()

    static var telemetryd: String { directory + "/telemetryd" }
    static var telemetry: String { directory + "/telemetry" }

    static func check() throws {
        for path in [telemetryd, telemetry] where access(path, X_OK) != 0 {
            throw HarnessError("\(path) is missing or not executable: run `swift build` first, or set TELEMETRY_TEST_BIN")
        }
    }
}

// MARK: - Temporary directories

/// A short, unique directory under /tmp, removed by `remove()`.
final class TempDir: Sendable {
    let path: String

    init(_ tag: String = "t") throws {
        var template = Array("/tmp/tdi-\(tag.prefix(6))-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else { throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))") }
        path = String(cString: created)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ contents: String, mode: mode_t = 0o644) throws -> String {
        let target = file(name)
        guard FileManager.default.createFile(atPath: target, contents: Data(contents.utf8)) else {
            throw HarnessError("cannot create \(target)")
        }
        chmod(target, mode)
        return target
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Where child processes' standard streams go (files, never pipes: a pipe can fill up or be held open by
/// another child). Each run removes its own files.
private let scratchDirectory: String = {
    var template = Array("/tmp/tdi-io-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    let path = created.map { String(cString: $0) } ?? "/tmp"
    atexit { removeScratchDirectory() }
    return path
}()

private func removeScratchDirectory() {
    try? FileManager.default.removeItem(atPath: scratchDirectory)
}

// MARK: - Child processes

/// A spool directory that cannot exist (its parent is a regular file): children that are not given one never
/// touch the host's /var/spool/telemetryd, where a daemon would take in whatever another test left.
let missingSpoolDirectory: String = {
    let parent = scratchDirectory + "/not-a-directory"
    _ = FileManager.default.createFile(atPath: parent, contents: Data())
    return parent + "/spool"
}()

/// The environment of every child: ours without TELEMETRY_* or systemd variables, with TELEMETRY_SPOOL_DIR
/// pointing nowhere and no metrics listener (daemons run side by side; the metrics tests set one), plus
/// `overrides`.
func childEnvironment(_ overrides: [String: String] = [:]) -> [String: String] {
    let dropped: Set<String> = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"]
    var environment = ProcessInfo.processInfo.environment.filter {
        !$0.key.hasPrefix("TELEMETRY_") && !dropped.contains($0.key)
    }
    environment["TELEMETRY_SPOOL_DIR"] = missingSpoolDirectory
    environment["TELEMETRY_METRICS_LISTEN"] = "off"
    environment.merge(overrides) { $1 }
    return environment
}

struct ProcessResult: Sendable, CustomStringConvertible {
    var status: Int32
    /// True when the process was ended by a signal (then `status` is the signal number).
    var signaled: Bool
    var stdout: String
    var stderr: String
    var elapsed: Double

    var description: String {
        "exit \(signaled ? "signal " : "")\(status) after \(String(format: "%.2f", elapsed))s\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}

/// Waits (without blocking a thread) until `process` has exited; false on timeout.
func waitForExit(_ process: Process, timeout: Double) async -> Bool {
    await waitUntil(timeout: timeout, interval: .milliseconds(5)) { !process.isRunning }
}

/// Runs a program to completion with `stdin` as its standard input; kills it (and throws) after `timeout`.
func runProcess(_ executable: String, _ arguments: [String], stdin: [UInt8]? = nil,
                environment: [String: String] = [:], timeout: Double = 30) async throws -> ProcessResult {
    let token = UUID().uuidString
    let inputPath = scratchDirectory + "/\(token).in"
    let outputPath = scratchDirectory + "/\(token).out"
    let errorPath = scratchDirectory + "/\(token).err"
    defer {
        for path in [inputPath, outputPath, errorPath] { unlink(path) }
    }
    _ = FileManager.default.createFile(atPath: inputPath, contents: Data(stdin ?? []))
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    guard let input = FileHandle(forReadingAtPath: inputPath),
          let output = FileHandle(forWritingAtPath: outputPath),
          let error = FileHandle(forWritingAtPath: errorPath)
    else { throw HarnessError("cannot open the scratch files in \(scratchDirectory)") }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = childEnvironment(environment)
    process.standardInput = input
    process.standardOutput = output
    process.standardError = error
    let started = monotonicSeconds()
    try process.run()
    try? input.close()
    try? output.close()
    try? error.close()
    if !(await waitForExit(process, timeout: timeout)) {
        kill(process.processIdentifier, SIGKILL)
        _ = await waitForExit(process, timeout: 5)
        throw HarnessError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)s; killed")
    }
    let elapsed = monotonicSeconds() - started
    let stdout = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    return ProcessResult(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
                         stdout: stdout, stderr: stderr, elapsed: elapsed)
}

/// Runs the `telemetry` client, pointed at `socket` through TELEMETRY_SOCKET (unless `environment` sets it).
func telemetry(_ arguments: [String], stdin: String? = nil, socket: String?,
               environment: [String: String] = [:], timeout: Double = 30) async throws -> ProcessResult {
    var environment = environment
    if let socket, environment["TELEMETRY_SOCKET"] == nil { environment["TELEMETRY_SOCKET"] = socket }
    return try await runProcess(Binaries.telemetry, arguments, stdin: stdin.map { Array($0.utf8) },
                                environment: environment, timeout: timeout)
}

/// Runs `telemetryd` to completion (for `--check-config` and start failures).
func telemetryd(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 15) async throws -> ProcessResult {
    try await runProcess(Binaries.telemetryd, arguments, environment: environment, timeout: timeout)
}

// MARK: - The daemon fixture

/// One `telemetryd` process with its own socket, state directory and (empty) configuration file in a test
/// directory. It can be started, stopped with SIGTERM, killed with SIGKILL and restarted on the same state.
final class DaemonProcess: @unchecked Sendable {
    let dir: TempDir
    let socketPath: String
    let stateDir: String
    let configPath: String
    /// TELEMETRY_SPOOL_DIR of the daemon and of every client run through `cli`.
    let spoolDir: String
    /// TELEMETRY_* variables (and others) for the daemon, on top of `childEnvironment()`.
    var environment: [String: String]

    private let lock = NSLock()
    private var process: Process?
    private var generation = 0
    private var stderrPath = ""

    init(dir: TempDir, environment: [String: String] = [:], socketName: String = "d.sock") throws {
        self.dir = dir
        self.socketPath = dir.file(socketName)
        self.stateDir = dir.file("state")
        self.configPath = try dir.write("telemetryd.conf", "# empty: the tests set everything by flag or environment\n")
        self.spoolDir = dir.file("spool")
        self.environment = ["TELEMETRY_SPOOL_DIR": spoolDir].merging(environment) { $1 }
    }

    /// The arguments of every start: the state directory is the same each time.
    var arguments: [String] {
        ["--socket", socketPath, "--state-dir", stateDir, "--config", configPath]
    }

    var pid: Int32 { lock.withLock { process?.processIdentifier ?? -1 } }
    var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }
    var starts: Int { lock.withLock { generation } }

    /// Standard error of the current (or last) run.
    var stderr: String {
        let path = lock.withLock { stderrPath }
        return path.isEmpty ? "" : ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    /// Standard error of every run so far, oldest first.
    var allStderr: String {
        let count = starts
        return (1...max(count, 1)).map { index in
            (try? String(contentsOfFile: dir.file("telemetryd.\(index).stderr"), encoding: .utf8)) ?? ""
        }.joined(separator: "\n--- restart ---\n")
    }

    /// Spawns the daemon without waiting for it.
    @discardableResult
    func launch() throws -> Process {
        try Binaries.check()
        let index = lock.withLock { () -> Int in generation += 1; return generation }
        let errorPath = dir.file("telemetryd.\(index).stderr")
        let outputPath = dir.file("telemetryd.\(index).stdout")
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        guard let error = FileHandle(forWritingAtPath: errorPath), let output = FileHandle(forWritingAtPath: outputPath) else {
            throw HarnessError("cannot open \(errorPath)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.telemetryd)
        process.arguments = arguments
        process.environment = childEnvironment(environment)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = error
        try process.run()
        try? error.close()
        try? output.close()
        lock.withLock {
            self.process = process
            self.stderrPath = errorPath
        }
        return process
    }

    /// Starts the daemon and waits until it logged "ready" and its socket accepts connections.
    func start(timeout: Double = 10) async throws {
        guard !isRunning else { throw HarnessError("telemetryd is already running (pid \(pid))") }
        try launch()
        try await waitReady(timeout: timeout)
    }

    func waitReady(timeout: Double = 10) async throws {
        let deadline = monotonicSeconds() + timeout
        while true {
            guard let process = lock.withLock({ self.process }) else { throw HarnessError("telemetryd was never launched") }
            if !process.isRunning {
                throw HarnessError("telemetryd exited (status \(process.terminationStatus)) before it was ready:\n\(stderr)")
            }
            if stderr.contains(" ready"), RawClient.canConnect(socketPath) { return }
            if monotonicSeconds() > deadline {
                throw HarnessError("telemetryd did not become ready within \(timeout)s:\n\(stderr)")
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Sends a signal to the daemon while it runs (never to a pid that may have been reused).
    func signal(_ number: Int32) {
        guard let process = lock.withLock({ self.process }), process.isRunning else { return }
        kill(process.processIdentifier, number)
    }

    /// Waits for the current process to exit; returns its status and whether a signal ended it, nil on timeout.
    func waitExit(timeout: Double) async -> (status: Int32, signaled: Bool)? {
        guard let process = lock.withLock({ self.process }) else { return nil }
        guard await waitForExit(process, timeout: timeout) else { return nil }
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }

    /// SIGTERM, then waits up to `timeout` seconds; returns the exit status and how long the exit took.
    /// Throws (after a SIGKILL) when the daemon does not exit in time.
    @discardableResult
    func terminate(timeout: Double = 5) async throws -> (status: Int32, signaled: Bool, seconds: Double) {
        let started = monotonicSeconds()
        signal(SIGTERM)
        guard let exit = await waitExit(timeout: timeout) else {
            signal(SIGKILL)
            _ = await waitExit(timeout: 5)
            throw HarnessError("telemetryd did not exit within \(timeout)s of SIGTERM:\n\(stderr)")
        }
        return (exit.status, exit.signaled, monotonicSeconds() - started)
    }

    /// `kill -9`, and waits until the process is gone.
    func kill9() async throws {
        signal(SIGKILL)
        guard let exit = await waitExit(timeout: 10) else { throw HarnessError("telemetryd survived SIGKILL") }
        guard exit.signaled, exit.status == SIGKILL else {
            throw HarnessError("telemetryd ended with status \(exit.status) (signaled: \(exit.signaled)) instead of SIGKILL")
        }
    }

    /// Starts again on the same socket and state directory (the previous process must be gone).
    func restart(timeout: Double = 10) async throws {
        try await start(timeout: timeout)
    }

    /// Synchronous cleanup for `defer`: SIGKILL when still running, then a bounded wait.
    func forceStop() {
        guard let process = lock.withLock({ self.process }) else { return }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let deadline = monotonicSeconds() + 5
        while process.isRunning && monotonicSeconds() < deadline { usleep(2_000) }
    }

    // Conveniences

    /// Runs `telemetry` against this daemon.
    /// Runs `telemetry` against this daemon, with its spool directory. The client's wait for the daemon is
    /// raised from 2 s to 10 s (TELEMETRY_FLUSH_TIMEOUT) so that a loaded test machine does not make a
    /// `send --wait` give up and spool.
    func cli(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) async throws -> ProcessResult {
        let defaults = ["TELEMETRY_SPOOL_DIR": spoolDir, "TELEMETRY_FLUSH_TIMEOUT": "10"]
        return try await telemetry(arguments, stdin: stdin, socket: socketPath,
                                   environment: defaults.merging(environment) { $1 })
    }

    /// A new raw connection to this daemon.
    func connect() throws -> RawClient { try RawClient(path: socketPath) }

    /// Sends `lines` on a fresh connection, then a flush on the same connection (so the daemon has read and
    /// committed every one of them), and returns the flush reply.
    @discardableResult
    func sendAndFlush(_ lines: [String]) async throws -> [String: Any] {
        let client = try connect()
        defer { client.close() }
        try client.sendLines(lines)
        return try await client.flush()
    }

    /// The daemon's status reply (over a raw connection).
    func status() async throws -> [String: Any] {
        let client = try connect()
        defer { client.close() }
        return try await client.request(Wire.control("status"))
    }

    /// The stored document, or nil when the daemon has none for `id`.
    func document(_ id: String) async throws -> [String: Any]? {
        let client = try connect()
        defer { client.close() }
        let reply = try await client.request(Wire.control("show", ("execution_id", id)))
        guard reply.bool("ok") == true else { return nil }
        return reply.object("document")
    }
}

/// Runs `body` with a started daemon in a fresh directory; the daemon is killed and the directory removed
/// afterwards, whatever happens.
func withDaemon<T>(environment: [String: String] = [:], tag: String = "d",
                   _ body: (DaemonProcess) async throws -> T) async throws -> T {
    let dir = try TempDir(tag)
    let daemon = try DaemonProcess(dir: dir, environment: environment)
    defer {
        daemon.forceStop()
        dir.remove()
    }
    try await daemon.start()
    return try await body(daemon)
}

/// `withDaemon` for the tests of the sd_notify protocol: the daemon gets a NOTIFY_SOCKET of the test's own.
/// With `start: false`, the body starts it (after writing a configuration file, say).
func withNotifyingDaemon<T>(environment: [String: String] = [:], tag: String = "n", start: Bool = true,
                            _ body: (DaemonProcess, NotifySocket) async throws -> T) async throws -> T {
    let dir = try TempDir(tag)
    let notify = try NotifySocket(path: dir.file("notify.sock"))
    let daemon = try DaemonProcess(dir: dir, environment: environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 })
    defer {
        daemon.forceStop()
        dir.remove()
    }
    if start { try await daemon.start() }
    return try await body(daemon, notify)
}

// MARK: - Raw socket client

/// A client that speaks bytes, not protocol: it can send anything (partial lines, invalid UTF-8, one byte at a
/// time) over a Unix stream socket and read reply lines.
final class RawClient: @unchecked Sendable {
    let fd: Int32
    private var pending: [UInt8] = []
    private var closed = false

    init(path: String, sendTimeout: Double = 10) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: Int(sendTimeout), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = try Self.withAddress(path) { address, length in connect(descriptor, address, length) }
        if result != 0 {
            let code = errno
            Glibc.close(descriptor)
            throw HarnessError("connect(\(path)): \(String(cString: strerror(code)))")
        }
        fd = descriptor
    }

    deinit { close() }

    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) throws -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw HarnessError("socket path too long (\(bytes.count) bytes): \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// True when something accepts connections on `path` right now.
    static func canConnect(_ path: String) -> Bool {
        guard let client = try? RawClient(path: path) else { return false }
        client.close()
        return true
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 {
                    if errno == EINTR { continue }
                    throw HarnessError("send(): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func sendLine(_ line: String) throws { try send(Array((line + "\n").utf8)) }

    func sendLines(_ lines: [String]) throws {
        guard !lines.isEmpty else { return }
        try send(Array((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Writes `bytes` in pieces of `chunkSize`, pausing between them so they tend to arrive as separate reads.
    func sendSlowly(_ bytes: [UInt8], chunkSize: Int = 1, pause: Duration = .microseconds(150)) async throws {
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunkSize, bytes.count)
            try send(Array(bytes[offset..<end]))
            offset = end
            try await Task.sleep(for: pause)
        }
    }

    /// Writes each chunk separately, with a pause between chunks.
    func sendChunks(_ chunks: [[UInt8]], pause: Duration = .milliseconds(3)) async throws {
        for chunk in chunks {
            try send(chunk)
            try await Task.sleep(for: pause)
        }
    }

    /// Ends our direction of the stream (the daemon sees end of input).
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads one reply line without its newline; nil at end of stream. Throws after `timeout` seconds.
    func readLine(timeout: Double = 10) async throws -> String? {
        let deadline = monotonicSeconds() + timeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return String(decoding: line, as: UTF8.self)
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                pending.append(contentsOf: buffer[..<count])
                continue
            }
            if count == 0 {
                if pending.isEmpty { return nil }
                defer { pending = [] }
                return String(decoding: pending, as: UTF8.self)
            }
            if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw HarnessError("recv(): \(String(cString: strerror(errno)))")
            }
            if monotonicSeconds() > deadline { throw HarnessError("no reply line within \(timeout)s") }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// True when the daemon closed the connection within `timeout` (pending bytes are discarded).
    func waitForEOF(timeout: Double = 5) async throws -> Bool {
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            do {
                if try await readLine(timeout: max(0.01, deadline - monotonicSeconds())) == nil { return true }
            } catch {
                return false
            }
        }
        return false
    }

    /// Sends one control line and returns the parsed reply.
    func request(_ line: String, timeout: Double = 10) async throws -> [String: Any] {
        try sendLine(line)
        guard let reply = try await readLine(timeout: timeout) else {
            throw HarnessError("the daemon closed the connection instead of answering \(line)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(reply.utf8)) as? [String: Any] else {
            throw HarnessError("reply is not a JSON object: \(reply)")
        }
        return object
    }

    /// A flush on this connection: the daemon answers once everything sent before it is committed.
    func flush(timeout: Double = 10) async throws -> [String: Any] {
        let reply = try await request(Wire.control("flush"), timeout: timeout)
        guard reply.bool("ok") == true else { throw HarnessError("flush refused: \(reply)") }
        return reply
    }
}

// MARK: - JSON helpers

/// JSON text inserted verbatim by `Wire.object` (for NaN and other deliberately broken values).
struct RawJSON: Sendable {
    var text: String
    init(_ text: String) { self.text = text }
}

enum Wire {
    /// 2024-11-29T08:46:40Z.
    static let baseTS = 1_732_870_000

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func encode(_ value: Any?) -> String {
        switch value {
        case nil: return "null"
        case let raw as RawJSON: return raw.text
        case let text as String: return quote(text)
        case let flag as Bool: return flag ? "true" : "false"
        case let integer as Int: return String(integer)
        case let integer as Int32: return String(integer)
        case let number as Double:
            return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : "\(number)"
        default: return quote("\(value!)")
        }
    }

    /// An object with members in the given order; nil values are left out.
    static func object(_ members: [(String, Any?)]) -> String {
        "{" + members.compactMap { key, value in
            value.map { quote(key) + ":" + encode($0) }
        }.joined(separator: ",") + "}"
    }

    static func start(_ id: String, script: String, version: String = "1.0.0", environment: String = "test",
                      pid: Int? = 4242, ts: Int = baseTS) -> String {
        object([("v", 1), ("kind", "start"), ("execution_id", id), ("ts", ts), ("script", script),
                ("version", version), ("environment", environment), ("pid", pid)])
    }

    static func event(_ id: String, _ level: String, _ operation: String, _ message: String = "",
                      duration: Double? = nil, ts: Int = baseTS + 1) -> String {
        object([("v", 1), ("kind", "event"), ("execution_id", id), ("ts", ts), ("level", level),
                ("operation", operation), ("message", message), ("duration_seconds", duration)])
    }

    static func metric(_ id: String, _ name: String, _ value: Any, ts: Int = baseTS + 2) -> String {
        object([("v", 1), ("kind", "metric"), ("execution_id", id), ("ts", ts), ("name", name), ("value", value)])
    }

    static func tag(_ id: String, _ key: String, _ value: String, ts: Int = baseTS + 3) -> String {
        object([("v", 1), ("kind", "tag"), ("execution_id", id), ("ts", ts), ("key", key), ("value", value)])
    }

    static func end(_ id: String, exitCode: Int, duration: Double? = nil, ts: Int = baseTS + 10) -> String {
        object([("v", 1), ("kind", "end"), ("execution_id", id), ("ts", ts), ("exit_code", exitCode),
                ("duration_seconds", duration)])
    }

    static func control(_ request: String, _ arguments: (String, Any?)...) -> String {
        object([("v", 1), ("kind", "control"), ("request", request)] + arguments)
    }

    /// A complete execution: start, two events, a metric `index`, a tag, end.
    static func execution(_ id: String, script: String = "concurrent.sh", index: Int = 0, exitCode: Int = 0) -> [String] {
        [start(id, script: script),
         event(id, "info", "step-1", "client \(index) step 1"),
         metric(id, "index", index),
         event(id, "success", "step-2", "client \(index) step 2", duration: 0.25, ts: baseTS + 4),
         tag(id, "client", "c\(index)"),
         end(id, exitCode: exitCode)]
    }

    /// `ts` (Unix seconds) as the daemon renders it: RFC 3339, UTC, milliseconds.
    static func rfc3339(_ ts: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(ts)))
    }
}

func parseJSONObject(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as? [String: Any] else {
        throw HarnessError("not a JSON object: \(text)")
    }
    return object
}

func parseJSONArray(_ text: String) throws -> [[String: Any]] {
    guard let array = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as? [[String: Any]] else {
        throw HarnessError("not a JSON array of objects: \(text)")
    }
    return array
}

/// Typed access to parsed JSON (Foundation bridges numbers as NSNumber and booleans as NSNumber too).
extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func array(_ key: String) -> [[String: Any]]? { self[key] as? [[String: Any]] }
    func isNull(_ key: String) -> Bool { self[key] is NSNull }
    func has(_ key: String) -> Bool { self[key] != nil }

    func int(_ key: String) -> Int? {
        guard let number = self[key] as? NSNumber, !isBoolean(number) else { return nil }
        let value = number.doubleValue
        return value == value.rounded() ? Int(value) : nil
    }

    func double(_ key: String) -> Double? {
        guard let number = self[key] as? NSNumber, !isBoolean(number) else { return nil }
        return number.doubleValue
    }

    func bool(_ key: String) -> Bool? {
        guard let number = self[key] as? NSNumber, isBoolean(number) else { return nil }
        return number.boolValue
    }
}

/// Foundation's JSONSerialization makes booleans NSNumbers of type "c" (char); numbers are "i", "q" or "d".
private func isBoolean(_ number: NSNumber) -> Bool {
    String(cString: number.objCType) == "c"
}

// MARK: - Files and sockets on disk

struct FileInfo {
    var type: mode_t
    var permissions: mode_t
    var inode: UInt64
    var isSocket: Bool { type == S_IFSOCK }
    var isRegular: Bool { type == S_IFREG }
}

/// lstat(2) of `path`, nil when it does not exist.
func fileInfo(_ path: String) -> FileInfo? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return FileInfo(type: info.st_mode & S_IFMT, permissions: info.st_mode & 0o7777, inode: UInt64(info.st_ino))
}

/// Binds a Unix stream socket at `path` and closes it without unlinking: what a crashed daemon leaves behind.
func makeStaleSocket(at path: String) throws {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    let result = try RawClient.withAddress(path) { address, length in bind(descriptor, address, length) }
    guard result == 0 else { throw HarnessError("bind(\(path)): \(String(cString: strerror(errno)))") }
}

// MARK: - sd_notify receiver

/// The service manager's side of sd_notify(3): a Unix datagram socket that collects the daemon's messages.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private(set) var messages: [String] = []

    init(path: String) throws {
        self.path = path
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
        let result = try RawClient.withAddress(path) { address, length in bind(descriptor, address, length) }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw HarnessError("bind(\(path)): \(String(cString: strerror(code)))")
        }
        fd = descriptor
    }

    deinit { close(fd) }

    /// Reads every datagram waiting, without blocking.
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { return }
            messages.append(String(decoding: buffer[..<count], as: UTF8.self))
        }
    }

    /// Waits until a datagram satisfies `predicate`; returns it, or nil after `timeout` seconds.
    func waitFor(timeout: Double = 10, _ predicate: (String) -> Bool) async -> String? {
        var found: String?
        await waitUntil(timeout: timeout, interval: .milliseconds(5)) {
            drain()
            found = messages.first(where: predicate)
            return found != nil
        }
        return found
    }
}
