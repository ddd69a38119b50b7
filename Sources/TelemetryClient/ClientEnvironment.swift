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
        // A `switch`, not `[...].contains`: an array literal of strings costs a runtime type lookup at start-up.
        switch value?.lowercased() {
        case "0", "false", "no", "off": return true
        default: return false
        }
    }

    public static func isTrue(_ value: String?) -> Bool {
        switch value?.lowercased() {
        case "1", "true", "yes", "on": return true
        default: return false
        }
    }
}

/// Writes a message to stderr in one call (so concurrent writers do not interleave within a line).
public func printError(_ message: String) {
    var line = message
    line.append("\n")
    line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

/// Writes text to stdout in one call. The text goes out from the string's own UTF-8 storage, not through
/// a `[UInt8]`: `telemetry --version` then needs no array at all.
public func printOutput(_ text: String) {
    var line = text
    line.append("\n")
    line.withUTF8 { writeAll(1, UnsafeRawBufferPointer($0)) }
}

public func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { writeAll(descriptor, $0) }
}

/// Writes all of `bytes`, retrying short writes and EINTR; gives up silently on any other error (the
/// reader went away, and there is nobody left to tell).
public func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) {
    guard let start = bytes.baseAddress else { return }
    var offset = 0
    while offset < bytes.count {
        let written = Glibc.write(descriptor, start + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += written
    }
}
