#if canImport(Glibc)
import Glibc
#endif

/// The client's view of its environment: where the daemon is and how chatty to be.
public struct ClientEnvironment: Sendable {
    public var socketPath: String
    public var spoolDirectory: String
    public var quiet: Bool
    /// Opt-out: TELEMETRY_ENABLED=false (or 0, no, off) or DO_NOT_TRACK=1.
    public var disabled: Bool
    public var flushTimeoutSeconds: Double

    public static func current() -> ClientEnvironment {
        ClientEnvironment(
            socketPath: variable("TELEMETRY_SOCKET").flatMap { $0.isEmpty ? nil : $0 } ?? defaultSocketPath,
            spoolDirectory: variable("TELEMETRY_SPOOL_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? defaultSpoolDirectory,
            quiet: isTrue(variable("TELEMETRY_QUIET")),
            disabled: isFalse(variable("TELEMETRY_ENABLED")) || isTrue(variable("DO_NOT_TRACK")),
            flushTimeoutSeconds: variable("TELEMETRY_FLUSH_TIMEOUT").flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 2)
    }

    public static func variable(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    public static func isFalse(_ value: String?) -> Bool {
        guard let value = value?.lowercased() else { return false }
        return ["0", "false", "no", "off"].contains(value)
    }

    public static func isTrue(_ value: String?) -> Bool {
        guard let value = value?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(value)
    }
}

/// Writes a message to stderr in one call (so concurrent writers do not interleave within a line).
public func printError(_ message: String) {
    var line = Array(message.utf8)
    line.append(UInt8(ascii: "\n"))
    line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

/// Writes text to stdout in one call.
public func printOutput(_ text: String) {
    var line = Array(text.utf8)
    line.append(UInt8(ascii: "\n"))
    writeAll(1, line)
}

public func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
