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

/// One event of an execution, in the order the daemon received it.
public struct ExecutionEvent: Sendable, Equatable {
    public var level: EventLevel
    public var operation: String
    public var message: String
    public var durationSeconds: Double?
    public var timestamp: Timestamp
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
    public var events: [ExecutionEvent] = []
    public var errors: [ExecutionEvent] = []
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
        var json = JSONWriter(capacity: 512 + events.count * 160 + errors.count * 160)
        json.beginObject()
        json.key("schema_version"); json.integer(Int64(documentSchemaVersion))
        json.key("timestamp"); json.string(effectiveStart.rfc3339)
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
        if let endedAt { json.string(endedAt.rfc3339) } else { json.null() }
        json.key("closed_at"); json.string(context.closedAt.rfc3339)
        json.key("metrics")
        json.beginObject()
        for name in metrics.keys.sorted() {
            json.key(name)
            json.number(metrics[name] ?? 0)
        }
        json.endObject()
        json.key("events")
        json.beginArray()
        for event in events { Self.encode(event, into: &json) }
        json.endArray()
        json.key("errors")
        json.beginArray()
        for event in errors { Self.encode(event, into: &json) }
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

    private static func encode(_ event: ExecutionEvent, into json: inout JSONWriter) {
        json.beginObject()
        json.key("type"); json.string(event.level.rawValue)
        json.key("operation"); json.string(event.operation)
        json.key("message"); json.string(event.message)
        json.key("timestamp"); json.string(event.timestamp.rfc3339)
        if let duration = event.durationSeconds {
            json.key("duration_seconds"); json.number(duration)
        }
        json.endObject()
    }
}
