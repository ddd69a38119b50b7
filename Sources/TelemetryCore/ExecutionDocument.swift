import TelemetryWire

/// How an execution ended, as reported in the document's `status` field.
public enum ExecutionStatus: String, Sendable, Equatable {
    /// An `end` line arrived with exit code 0.
    case success
    /// An `end` line arrived with a non-zero exit code.
    case failure
    /// No `end` line arrived before TELEMETRY_EXECUTION_TIMEOUT: the script was killed, the host rebooted,
    /// or the script never called the exit path. Kept, never dropped, so failures to finish are visible.
    case incomplete
}

/// The JSON object of one event in a document's `events` or `errors` array:
/// `{"type":LEVEL,"operation":OP,"message":MSG,"timestamp":RFC3339[,"duration_seconds":D]}`.
///
/// Events are encoded once, when their line is read (on the connection's event loop), and kept as bytes:
/// the single writer thread then only concatenates them, and an open execution holds compact bytes
/// rather than strings.
public enum EventFragment {
    /// Writes the object of an event held as value types (recovery from the journal) as an independent value
    /// (no leading comma) into `json`. Keys are laid out as constants.
    public static func write(level: EventLevel, operation: String, message: String, durationSeconds: Double?,
                             timestamp: Timestamp, into json: inout JSONWriter) {
        json.startIndependentValue()
        appendOpening(level, to: &json)
        json.appendQuotedString(operation)
        json.appendVerbatim(#","message":"#)
        json.appendQuotedString(message)
        appendClosing(timestamp: timestamp, durationSeconds: durationSeconds, to: &json)
    }

    /// Encodes a parsed event line as a separate value appended to `json`, copying its strings straight
    /// from the line; returns the object's byte range. The ingest path: once per event line, on the event
    /// loops. The bytes are those `write` produces for the same event.
    public static func append(_ event: EventLine, to json: inout JSONWriter) -> Range<Int> {
        json.startIndependentValue()
        let start = json.bytes.count
        // Nearly every event: strings without escapes (copied verbatim) and a short message, written through
        // a pointer and appended in one copy (`formatVerbatim`).
        if !event.operation.hasEscapes && !event.message.hasEscapes {
            let maximum = verbatimOverheadBytes + event.operation.raw.count + event.message.raw.count
            if maximum <= 1_024, json.appendFormatted(maximum: maximum, { formatVerbatim(event, into: $0) }) {
                json.startIndependentValue()
                return start..<json.bytes.count
            }
        }
        appendOpening(event.level, to: &json)
        json.appendQuotedString(event.operation)
        json.appendVerbatim(#","message":"#)
        json.appendQuotedString(event.message)
        appendClosing(timestamp: event.timestamp, durationSeconds: event.durationSeconds, to: &json)
        return start..<json.bytes.count
    }

    /// The most bytes `formatVerbatim` adds to the operation and the message: the longest opening, the quotes,
    /// the other keys, the timestamp and the longest number.
    private static let verbatimOverheadBytes = 31 + 13 + 15 + 24 + 1 + 20 + JSONWriter.maximumNumberBytes + 1

    /// Writes what `append` appends for an event whose strings need no escaping (they are copied as they came),
    /// and returns the byte count; nil when its timestamp or duration needs the general writer.
    @inline(__always)
    private static func formatVerbatim(_ event: EventLine, into out: UnsafeMutablePointer<UInt8>) -> Int? {
        var cursor = out
        @inline(__always) func put(_ text: StaticString) {
            cursor.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
            cursor += text.utf8CodeUnitCount
        }
        @inline(__always) func put(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress else { return }
            UnsafeMutableRawPointer(cursor).copyMemory(from: base, byteCount: bytes.count)
            cursor += bytes.count
        }
        switch event.level {
        case .success: put(#"{"type":"success","operation":""#)
        case .error: put(#"{"type":"error","operation":""#)
        case .warning: put(#"{"type":"warning","operation":""#)
        case .info: put(#"{"type":"info","operation":""#)
        case .debug: put(#"{"type":"debug","operation":""#)
        }
        put(event.operation.raw)
        put(#"","message":""#)
        put(event.message.raw)
        put(#"","timestamp":""#)
        guard event.timestamp.formatRFC3339(into: cursor) else { return nil }
        cursor += 24
        put("\"")
        if let duration = event.durationSeconds {
            put(#","duration_seconds":"#)
            guard let count = JSONWriter.formatNumber(duration, into: cursor) else { return nil }
            cursor += count
        }
        put("}")
        return cursor - out
    }

    @inline(__always)
    private static func appendOpening(_ level: EventLevel, to json: inout JSONWriter) {
        switch level {
        case .success: json.appendVerbatim(#"{"type":"success","operation":"#)
        case .error: json.appendVerbatim(#"{"type":"error","operation":"#)
        case .warning: json.appendVerbatim(#"{"type":"warning","operation":"#)
        case .info: json.appendVerbatim(#"{"type":"info","operation":"#)
        case .debug: json.appendVerbatim(#"{"type":"debug","operation":"#)
        }
    }

    @inline(__always)
    private static func appendClosing(timestamp: Timestamp, durationSeconds: Double?, to json: inout JSONWriter) {
        json.appendVerbatim(#","timestamp":"#)
        json.timestamp(timestamp)
        if let durationSeconds {
            json.appendVerbatim(#","duration_seconds":"#)
            json.startIndependentValue()
            json.number(durationSeconds)
        }
        json.appendVerbatim("}")
        json.startIndependentValue()
    }
}

/// Everything known about one script execution: the in-memory aggregate while it is open,
/// and the source of its JSON document once it closes.
public struct Execution: Sendable, Equatable {
    public let id: ExecutionID
    /// Journal chunk that holds this execution's first journaled line; chunks below the lowest such
    /// sequence over all open executions can be pruned.
    public var firstJournalSequence: Int64?
    /// The uid of the first sender (SO_PEERCRED), never a uid written in the JSON.
    public var senderUID: UInt32
    public var senderPID: Int32
    public var scriptName: String = ""
    public var scriptVersion: String = ""
    public var environment: String = ""
    public var scriptPID: Int32?
    public var startedAt: Timestamp?
    public var firstSeenAt: Timestamp
    public var lastActivity: Timestamp
    public var endedAt: Timestamp?
    public var exitCode: Int32?
    public var durationSeconds: Double?
    public var metrics: [String: Double] = [:]
    public var tags: [String: String] = [:]
    /// The `events` array's members (levels other than error), comma-separated JSON objects in arrival order.
    public var eventsJSON: [UInt8] = []
    public var eventCount = 0
    /// The `errors` array's members (level error), likewise.
    public var errorsJSON: [UInt8] = []
    public var errorCount = 0
    /// Events beyond TELEMETRY_MAX_EVENTS_PER_EXECUTION: counted in the document, not kept.
    public var droppedEvents: Int = 0
    public var lineCount: Int = 0

    public init(id: ExecutionID, senderUID: UInt32, senderPID: Int32, firstSeenAt: Timestamp) {
        self.id = id
        self.senderUID = senderUID
        self.senderPID = senderPID
        self.firstSeenAt = firstSeenAt
        self.lastActivity = firstSeenAt
    }

    public var status: ExecutionStatus {
        guard let exitCode else { return .incomplete }
        return exitCode == 0 ? .success : .failure
    }

    /// When the execution began: the start line's timestamp, else the earliest line seen.
    public var effectiveStart: Timestamp { startedAt ?? firstSeenAt }
}

/// Fields the daemon knows that are not in the execution's own lines.
public struct DocumentContext: Sendable {
    public var host: String
    public var userID: String
    /// When the execution was closed by the daemon (end line or timeout).
    public var closedAt: Timestamp

    public init(host: String, userID: String, closedAt: Timestamp) {
        self.host = host
        self.userID = userID
        self.closedAt = closedAt
    }
}

/// The version of the document layout below; receivers can branch on it.
public let documentSchemaVersion = 1

extension Execution {
    /// The JSON document forwarded for this execution: the seed's Event Schema (`timestamp`, `script_name`,
    /// `script_version`, `execution_id`, `user_id`, `environment`, `metrics`, `events`, `errors`, `tags`)
    /// plus `status`, `exit_code`, `duration_seconds`, `host` and bookkeeping. Keys of `metrics` and `tags`
    /// are sorted so the same execution always encodes to the same bytes.
    public func encodeDocument(context: DocumentContext) -> [UInt8] {
        var json = JSONWriter(capacity: 640 + eventsJSON.count + errorsJSON.count)
        json.beginObject()
        json.key("schema_version"); json.integer(Int64(documentSchemaVersion))
        json.key("timestamp"); json.timestamp(effectiveStart)
        json.key("script_name"); json.string(scriptName)
        json.key("script_version"); json.string(scriptVersion)
        json.key("execution_id"); json.string(id.description)
        json.key("user_id"); json.string(context.userID)
        json.key("environment"); json.string(environment)
        json.key("host"); json.string(context.host)
        json.key("status"); json.string(status.rawValue)
        json.key("exit_code")
        if let exitCode { json.integer(Int64(exitCode)) } else { json.null() }
        json.key("duration_seconds")
        if let duration = resolvedDurationSeconds { json.number(duration) } else { json.null() }
        json.key("ended_at")
        if let endedAt { json.timestamp(endedAt) } else { json.null() }
        json.key("closed_at"); json.timestamp(context.closedAt)
        json.key("metrics")
        json.beginObject()
        for name in metrics.keys.sorted() {
            json.key(name)
            json.number(metrics[name] ?? 0)
        }
        json.endObject()
        json.key("events")
        json.beginArray()
        if !eventsJSON.isEmpty { json.raw(eventsJSON) }
        json.endArray()
        json.key("errors")
        json.beginArray()
        if !errorsJSON.isEmpty { json.raw(errorsJSON) }
        json.endArray()
        json.key("tags")
        json.beginObject()
        for key in tags.keys.sorted() {
            json.key(key)
            json.string(tags[key] ?? "")
        }
        json.endObject()
        json.key("dropped_events"); json.integer(Int64(droppedEvents))
        json.endObject()
        return json.bytes
    }

    /// The duration the script reported in its end line, else end minus start when both are known.
    public var resolvedDurationSeconds: Double? {
        if let durationSeconds { return durationSeconds }
        guard let endedAt, let startedAt else { return nil }
        return Double(endedAt.microseconds - startedAt.microseconds) / 1_000_000
    }
}
