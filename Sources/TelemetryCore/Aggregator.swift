import TelemetryWire

/// Who sent a line, as the kernel reports it (SO_PEERCRED) — never what the JSON claims.
public struct SenderIdentity: Hashable, Sendable {
    public var uid: UInt32
    public var pid: Int32
    public init(uid: UInt32, pid: Int32) {
        self.uid = uid
        self.pid = pid
    }
}

/// A validated record together with what the daemon adds to it on receipt.
public struct AcceptedRecord: Sendable {
    public var record: WireRecord
    public var sender: SenderIdentity
    public var receivedAt: Timestamp
    public init(record: WireRecord, sender: SenderIdentity, receivedAt: Timestamp) {
        self.record = record
        self.sender = sender
        self.receivedAt = receivedAt
    }
}

/// Limits that keep the aggregation's memory bounded.
public struct AggregationLimits: Sendable {
    /// Events kept per execution; more are counted in `dropped_events`.
    public var maxEventsPerExecution: Int
    /// An execution with no line for this long is closed as `incomplete`.
    public var idleTimeoutMicroseconds: Int64

    public init(maxEventsPerExecution: Int = 10_000, idleTimeoutSeconds: Int = 3_600) {
        self.maxEventsPerExecution = maxEventsPerExecution
        self.idleTimeoutMicroseconds = Int64(idleTimeoutSeconds) * 1_000_000
    }
}

/// Folds the lines of many interleaved script executions into one `Execution` each.
///
/// Pure logic: no clock, no I/O. The ingest writer feeds it records in receive order, tells it which
/// journal chunk they land in, and asks it for the executions that closed.
public struct Aggregator: Sendable {
    public private(set) var open: [ExecutionID: Execution] = [:]
    public let limits: AggregationLimits
    /// Where the last event's execution is in `open`: consecutive lines nearly always share an execution,
    /// so `applyEvent` hashes an id once per run of lines. Cleared by every insertion or removal.
    private var lastEvent: (id: ExecutionID, index: Dictionary<ExecutionID, Execution>.Index)?

    public init(limits: AggregationLimits) {
        self.limits = limits
    }

    public var openCount: Int { open.count }

    /// Applies one record. Returns the execution when this record closed it (an `end` line).
    /// `eventJSON` is the event's object already encoded by `EventFragment` (the ingest path encodes it on
    /// the event loop); without it an event is encoded here.
    public mutating func apply(_ accepted: AcceptedRecord, eventJSON: UnsafeRawBufferPointer? = nil) -> Execution? {
        let id = accepted.record.executionID
        var index = open.index(forKey: id)
        if index == nil {
            lastEvent = nil
            open[id] = Execution(id: id, senderUID: accepted.sender.uid, senderPID: accepted.sender.pid,
                                 firstSeenAt: accepted.record.timestamp)
            index = open.index(forKey: id)
        }
        guard let index else { return nil }
        // Mutate in place: one hash lookup per line, no copy of the execution's arrays.
        let closes = Self.fold(accepted, eventJSON: eventJSON, into: &open.values[index], limits: limits)
        guard closes else { return nil }
        lastEvent = nil
        return open.remove(at: index).value
    }

    /// Applies one event line whose object for the document is already encoded (`EventFragment`). The
    /// ingest path's common case: it needs no `WireRecord`, and an event never closes its execution.
    public mutating func applyEvent(_ id: ExecutionID, timestamp: Timestamp, receivedAt: Timestamp,
                                    sender: SenderIdentity, isError: Bool, eventJSON: UnsafeRawBufferPointer) {
        let index: Dictionary<ExecutionID, Execution>.Index
        if let lastEvent, lastEvent.id == id {
            index = lastEvent.index
        } else {
            if let found = open.index(forKey: id) {
                index = found
            } else {
                open[id] = Execution(id: id, senderUID: sender.uid, senderPID: sender.pid, firstSeenAt: timestamp)
                guard let inserted = open.index(forKey: id) else { return }
                index = inserted
            }
            lastEvent = (id, index)
        }
        Self.noteLine(timestamp: timestamp, receivedAt: receivedAt, in: &open.values[index])
        Self.foldEvent(isError: isError, eventJSON: eventJSON, into: &open.values[index], limits: limits)
    }

    @inline(__always)
    private static func noteLine(timestamp: Timestamp, receivedAt: Timestamp, in execution: inout Execution) {
        execution.lastActivity = max(execution.lastActivity, receivedAt)
        execution.firstSeenAt = min(execution.firstSeenAt, timestamp)
        execution.lineCount += 1
    }

    @inline(__always)
    private static func foldEvent(isError: Bool, eventJSON: UnsafeRawBufferPointer, into execution: inout Execution,
                                  limits: AggregationLimits) {
        if execution.eventCount + execution.errorCount >= limits.maxEventsPerExecution {
            execution.droppedEvents += 1
            return
        }
        if isError {
            appendObject(eventJSON, to: &execution.errorsJSON)
            execution.errorCount += 1
        } else {
            appendObject(eventJSON, to: &execution.eventsJSON)
            execution.eventCount += 1
        }
    }

    /// Appends one encoded object to a comma-separated list. The list grows geometrically from a first
    /// reservation that fits a typical script's events, instead of through every small size.
    @inline(__always)
    private static func appendObject(_ json: UnsafeRawBufferPointer, to list: inout [UInt8]) {
        if list.isEmpty {
            list.reserveCapacity(Swift.max(4_096, json.count * 16))
        } else {
            list.append(UInt8(ascii: ","))
        }
        list.append(contentsOf: json)
    }

    /// Folds one record into its execution; returns true when the record ends the execution.
    private static func fold(_ accepted: AcceptedRecord, eventJSON: UnsafeRawBufferPointer?,
                             into execution: inout Execution, limits: AggregationLimits) -> Bool {
        let record = accepted.record
        noteLine(timestamp: record.timestamp, receivedAt: accepted.receivedAt, in: &execution)
        switch record.body {
        case let .start(script, version, environment, pid):
            execution.scriptName = script
            execution.scriptVersion = version
            execution.environment = environment
            execution.scriptPID = pid
            execution.startedAt = record.timestamp
        case let .event(level, operation, message, duration):
            if let eventJSON {
                foldEvent(isError: level == .error, eventJSON: eventJSON, into: &execution, limits: limits)
            } else {
                var json = JSONWriter(capacity: 128 + message.utf8.count)
                EventFragment.write(level: level, operation: operation, message: message,
                                    durationSeconds: duration, timestamp: record.timestamp, into: &json)
                json.bytes.withUnsafeBytes {
                    foldEvent(isError: level == .error, eventJSON: $0, into: &execution, limits: limits)
                }
            }
        case let .metric(name, value):
            execution.metrics[name] = value
        case let .tag(key, value):
            execution.tags[key] = value
        case let .end(exitCode, duration):
            execution.exitCode = exitCode
            execution.endedAt = record.timestamp
            if let duration { execution.durationSeconds = duration }
            return true
        }
        return false
    }

    /// Records that the still-open executions among `ids` have lines in journal chunk `sequence`.
    public mutating func noteJournaled(_ ids: some Sequence<ExecutionID>, inChunk sequence: Int64) {
        for id in ids where open[id] != nil && open[id]?.firstJournalSequence == nil {
            open[id]?.firstJournalSequence = sequence
        }
    }

    public func isOpen(_ id: ExecutionID) -> Bool { open[id] != nil }

    /// Closes, as `incomplete`, every execution idle for longer than the limit at `now` (receive-clock time).
    public mutating func closeIdle(now: Timestamp) -> [Execution] {
        let deadline = now.microseconds - limits.idleTimeoutMicroseconds
        let idle = open.values.filter { $0.lastActivity.microseconds <= deadline }
        if !idle.isEmpty { lastEvent = nil }
        for execution in idle { open[execution.id] = nil }
        return idle.sorted { $0.lastActivity < $1.lastActivity }
    }

    /// The oldest journal chunk an open execution still needs; everything below it can be pruned.
    public var lowestNeededJournalSequence: Int64? {
        open.values.lazy.compactMap(\.firstJournalSequence).min()
    }
}
