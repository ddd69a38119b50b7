import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// The default socket path of the daemon, overridden by TELEMETRY_SOCKET for both daemon and client.
public let defaultSocketPath = "/run/telemetryd/telemetryd.sock"

/// Why the client could not talk to the daemon, phrased for the person at the terminal.
public struct ConnectionError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case notRunning, permissionDenied, timedOut, other }
    public var kind: Kind
    public var description: String
}

/// A blocking stream connection to the daemon's Unix socket, with timeouts so a stopped or wedged daemon
/// can never hang the caller.
public final class DaemonConnection {
    public let path: String
    public let descriptor: Int32

    /// Connects, with `timeoutSeconds` bounding every later send and receive.
    public init(path: String, timeoutSeconds: Double) throws(ConnectionError) {
        self.path = path
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw ConnectionError(kind: .other, description: "cannot create a socket: \(errnoText())")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // Copied from the string's own UTF-8 storage, not through an `Array(path.utf8)`: one fewer
        // array type for the runtime to look up when a one-shot `telemetry send` starts.
        var pathText = path
        let fits = pathText.withUTF8 { utf8 in
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                guard utf8.count < raw.count else { return false }
                raw.copyMemory(from: UnsafeRawBufferPointer(utf8))
                raw[utf8.count] = 0
                return true
            }
        }
        guard fits else {
            close(descriptor)
            throw ConnectionError(kind: .other, description: "socket path \(path) is longer than \(MemoryLayout.size(ofValue: address.sun_path) - 1) bytes; set TELEMETRY_SOCKET to a shorter path")
        }
        var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            let code = errno
            close(descriptor)
            throw Self.connectError(path: path, code: code)
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    static func connectError(path: String, code: Int32) -> ConnectionError {
        switch code {
        case ENOENT, ECONNREFUSED:
            return ConnectionError(kind: .notRunning, description: "telemetryd is not running (no listener on \(path)); start it with `systemctl start telemetryd`, or point TELEMETRY_SOCKET at the daemon's socket")
        case EACCES, EPERM:
            return ConnectionError(kind: .permissionDenied, description: "permission denied on \(path); add this user to the `telemetry` group (`usermod -aG telemetry $USER`, then log in again)")
        case EAGAIN, ETIMEDOUT:
            return ConnectionError(kind: .timedOut, description: "telemetryd at \(path) did not accept the connection in time (backlog full or daemon stopped)")
        default:
            return ConnectionError(kind: .other, description: "cannot connect to \(path): \(errnoText(code))")
        }
    }

    /// Writes all bytes or throws; a daemon that stops reading makes this fail after the timeout.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(ConnectionError) {
        var offset = 0
        while offset < bytes.count {
            let written = send(descriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw ConnectionError(kind: .timedOut, description: "telemetryd at \(path) stopped reading (send timed out); is it stopped or overloaded?")
                }
                throw ConnectionError(kind: .other, description: "lost the connection to telemetryd at \(path): \(errnoText())")
            }
            offset += written
        }
    }

    public func write(_ bytes: [UInt8]) throws(ConnectionError) {
        let failure = bytes.withUnsafeBytes { raw -> ConnectionError? in
            do throws(ConnectionError) {
                try write(raw)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// Ends our direction of the stream: the daemon answers outstanding requests, then closes.
    public func finishSending() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    private var pending: [UInt8] = []

    /// Reads one reply line (without the newline), or nil at end of stream.
    public func readLine() throws(ConnectionError) -> [UInt8]? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                return line
            }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return pending.isEmpty ? nil : { defer { pending = [] }; return pending }() }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw ConnectionError(kind: .timedOut, description: "telemetryd at \(path) did not answer in time")
                }
                throw ConnectionError(kind: .other, description: "lost the connection to telemetryd at \(path): \(errnoText())")
            }
            pending.append(contentsOf: buffer[..<count])
        }
    }

    /// Sends one control request and returns the daemon's parsed reply.
    public func request(_ command: ControlRequest.Command, limit: Int? = nil, script: String? = nil,
                        executionID: String? = nil, batchID: String? = nil) throws(ConnectionError) -> JSONValue {
        var json = JSONWriter()
        json.beginObject()
        json.key("v"); json.integer(Int64(wireProtocolVersion))
        json.key("kind"); json.string("control")
        json.key("request"); json.string(command.rawValue)
        if let limit { json.key("limit"); json.integer(Int64(limit)) }
        if let script { json.key("script"); json.string(script) }
        if let executionID { json.key("execution_id"); json.string(executionID) }
        if let batchID { json.key("batch_id"); json.string(batchID) }
        json.endObject()
        var line = json.bytes
        line.append(UInt8(ascii: "\n"))
        try write(line)
        guard let reply = try readLine() else {
            throw ConnectionError(kind: .other, description: "telemetryd closed the connection without answering")
        }
        do {
            return try JSONValue.parse(reply)
        } catch {
            throw ConnectionError(kind: .other, description: "telemetryd sent an unreadable reply (\(error))")
        }
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
