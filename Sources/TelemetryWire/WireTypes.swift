/// The client→daemon line protocol, version 1 (docs/protocol.md is the public description).
///
/// These types are the contract between `telemetry send`, the bash library and `telemetryd`.
/// The module deliberately avoids Foundation so that the client binary starts in about a millisecond.

/// The protocol version this build speaks. A line with another `"v"` is rejected, never guessed at.
public let wireProtocolVersion = 1

/// Default maximum length of one line in bytes, newline excluded (TELEMETRY_MAX_LINE_BYTES).
public let defaultMaxLineBytes = 65_536

/// Severity of a script event, as the seed's `telemetry_track_*` functions name them.
public enum EventLevel: String, Sendable, CaseIterable, Hashable {
    case success, error, warning, info, debug
}

/// A script execution's identity: a UUID chosen by the script (`telemetry_init`), held as 16 bytes.
public struct ExecutionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static func < (lhs: ExecutionID, rhs: ExecutionID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// Canonical lowercase 8-4-4-4-12 form.
    public var description: String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for index in 0..<32 {
            if index == 8 || index == 12 || index == 16 || index == 20 { out.append(UInt8(ascii: "-")) }
            let word = index < 16 ? high : low
            let shift = UInt64(60 - 4 * (index % 16))
            out.append(hex[Int((word >> shift) & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the 36-character hyphenated form, either case. Returns nil for anything else.
    public init?(_ text: some StringProtocol) {
        var bytes = Array(text.utf8)
        guard let id = bytes.withUnsafeMutableBufferPointer({ ExecutionID(utf8: UnsafeRawBufferPointer($0)) }) else {
            return nil
        }
        self = id
    }

    /// Parses the 36-character hyphenated form from raw UTF-8 bytes.
    public init?(utf8 bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 36, let (high, low) = UUIDText.parse(bytes) else { return nil }
        self.init(high: high, low: low)
    }
}

/// A point in time as microseconds since the Unix epoch (UTC).
public struct Timestamp: Hashable, Sendable, Comparable {
    public var microseconds: Int64
    public init(microseconds: Int64) { self.microseconds = microseconds }
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }
    public var seconds: Double { Double(microseconds) / 1_000_000 }
}

/// One validated data line: something that happened in one script execution.
public struct WireRecord: Sendable, Equatable {
    public var executionID: ExecutionID
    /// When the script says it happened (`"ts"`).
    public var timestamp: Timestamp
    public var body: Body

    public init(executionID: ExecutionID, timestamp: Timestamp, body: Body) {
        self.executionID = executionID
        self.timestamp = timestamp
        self.body = body
    }

    public enum Body: Sendable, Equatable {
        /// `"kind":"start"`: `telemetry_init NAME VERSION`.
        case start(script: String, version: String, environment: String, pid: Int32?)
        /// `"kind":"event"`: `telemetry_track_<level> OPERATION MESSAGE`.
        case event(level: EventLevel, operation: String, message: String, durationSeconds: Double?)
        /// `"kind":"metric"`: `telemetry_record_metric NAME VALUE`; the value is always finite.
        case metric(name: String, value: Double)
        /// `"kind":"tag"`: `telemetry_add_tag KEY VALUE`.
        case tag(key: String, value: String)
        /// `"kind":"end"`: the execution finished with this exit status.
        case end(exitCode: Int32, durationSeconds: Double?)
    }
}

/// A request to the daemon that gets a one-line JSON reply: `{"v":1,"kind":"control","request":"flush",...}`.
public struct ControlRequest: Sendable, Equatable {
    public enum Command: String, Sendable, CaseIterable {
        /// Make everything received so far durable and, with an endpoint, deliver what is stored now.
        case flush
        /// Make everything received so far durable, without waiting for delivery (a script's exit path).
        case sync
        /// Daemon health and counters.
        case status
        /// List stored execution documents (`limit`, `script` arguments).
        case executions
        /// One stored execution document (`execution_id` argument).
        case show
        /// Send a probe to TELEMETRY_ENDPOINT with the real TLS and auth settings and report what happened.
        case testConnection = "test_connection"
        /// List the batches the endpoint refused for good.
        case deadletters
        /// Put dead-lettered documents back in the delivery queue (`batch_id` argument, or all).
        case deadletterReplay = "deadletter_replay"
        /// Delete dead-lettered documents (`batch_id` argument, or all).
        case deadletterPurge = "deadletter_purge"
    }
    public var command: Command
    /// Optional arguments, already type-checked by the parser.
    public var limit: Int?
    public var script: String?
    public var executionID: ExecutionID?
    public var batchID: String?

    public init(command: Command, limit: Int? = nil, script: String? = nil, executionID: ExecutionID? = nil,
                batchID: String? = nil) {
        self.command = command
        self.limit = limit
        self.script = script
        self.executionID = executionID
        self.batchID = batchID
    }
}

/// What one line of the protocol turned out to be.
public enum WireMessage: Sendable, Equatable {
    case record(WireRecord)
    case control(ControlRequest)
}

/// Why a line was refused. The raw values are stable: they label the daemon's reject counters
/// (`telemetryd_events_rejected_total{reason=...}`) and appear in `telemetry status`.
public enum RejectReason: String, Sendable, CaseIterable, Hashable {
    case tooLong = "too_long"
    case invalidUTF8 = "invalid_utf8"
    case notJSON = "not_json"
    case notObject = "not_object"
    case unsupportedVersion = "unsupported_version"
    case unknownKind = "unknown_kind"
    case missingField = "missing_field"
    case wrongType = "wrong_type"
    case unknownField = "unknown_field"
    case invalidValue = "invalid_value"
    case nonFiniteNumber = "non_finite_number"
    case badExecutionID = "bad_execution_id"
    case badTimestamp = "bad_timestamp"
    /// Set by the daemon, not the parser: a line for an execution whose document is already closed.
    case executionClosed = "execution_closed"
    /// Set by the daemon, not the parser: TELEMETRY_ENABLED=false on the host.
    case disabled = "disabled"
    /// Set by the daemon, not the parser: a spool file whose owner may not write to the daemon's socket.
    case notPermitted = "not_permitted"
    /// Set by the daemon, not the parser: the store reached TELEMETRY_SPOOL_MAX_MB with undelivered documents.
    case storeFull = "store_full"
}

/// A refused line: the reason for counters, and a sentence for a human naming the field at fault.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: RejectReason
    /// For example `field "level" must be one of success, error, warning, info, debug (got "fatal")`.
    public var detail: String
    /// The line was a control request (its `kind` was "control"): its sender waits for a reply, so the
    /// daemon answers the refusal instead of only counting it.
    public var isControlRequest = false

    public init(_ reason: RejectReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}
