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
    /// Where the last event's execution is in `open`: consecutive runs often share an execution, so
    /// `applyEvents` hashes an id once for them. Cleared by every insertion or removal.
    private var lastEvent: (id: ExecutionID, index: Dictionary<ExecutionID, Execution>.Index)?

    public init(limits: AggregationLimits) {
        self.limits = limits
    }

    public var openCount: Int { open.count }

    /// Applies one record. Returns the execution when this record closed it (an `end` line). An event is
    /// encoded here; the ingest path encodes events on the event loops and uses `applyEvents` instead.
    public mutating func apply(_ accepted: AcceptedRecord) -> Execution? {
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
        let closes = Self.fold(accepted, into: &open.values[index], limits: limits)
        guard closes else { return nil }
        lastEvent = nil
        return open.remove(at: index).value
    }

    /// Applies a run of `count` consecutive event lines of one execution (all errors, or none) whose objects
    /// for the document are already encoded (`EventFragment`), comma-separated, in `objects`. The ingest
    /// path's common case: one lookup and one copy per run, and an event never closes its execution.
    /// `prefixLength(k)` is the byte length of the run's first `k` objects; it is asked only when the run
    /// crosses `maxEventsPerExecution`.
    public mutating func applyEvents(_ id: ExecutionID, count: Int, earliest: Timestamp, latestReceivedAt: Timestamp,
                                     sender: SenderIdentity, isError: Bool, objects: UnsafeRawBufferPointer,
                                     prefixLength: (Int) -> Int) {
        let index: Dictionary<ExecutionID, Execution>.Index
        if let lastEvent, lastEvent.id == id {
            index = lastEvent.index
        } else {
            if let found = open.index(forKey: id) {
                index = found
            } else {
                open[id] = Execution(id: id, senderUID: sender.uid, senderPID: sender.pid, firstSeenAt: earliest)
                guard let inserted = open.index(forKey: id) else { return }
                index = inserted
            }
            lastEvent = (id, index)
        }
        Self.noteLines(count, earliest: earliest, latestReceivedAt: latestReceivedAt, in: &open.values[index])
        Self.foldEvents(count, isError: isError, objects: objects, prefixLength: prefixLength,
                        into: &open.values[index], limits: limits)
    }

    @inline(__always)
    private static func noteLines(_ count: Int, earliest: Timestamp, latestReceivedAt: Timestamp,
                                  in execution: inout Execution) {
        execution.lastActivity = max(execution.lastActivity, latestReceivedAt)
        execution.firstSeenAt = min(execution.firstSeenAt, earliest)
        execution.lineCount += count
    }

    @inline(__always)
    private static func foldEvents(_ count: Int, isError: Bool, objects: UnsafeRawBufferPointer,
                                   prefixLength: (Int) -> Int, into execution: inout Execution,
                                   limits: AggregationLimits) {
        let room = Swift.max(0, limits.maxEventsPerExecution - execution.eventCount - execution.errorCount)
        let kept = Swift.min(room, count)
        execution.droppedEvents += count - kept
        guard kept > 0 else { return }
        let bytes = kept == count ? objects : UnsafeRawBufferPointer(rebasing: objects[..<prefixLength(kept)])
        if isError {
            appendObject(bytes, to: &execution.errorsJSON)
            execution.errorCount += kept
        } else {
            appendObject(bytes, to: &execution.eventsJSON)
            execution.eventCount += kept
        }
    }

    /// Appends encoded objects to a comma-separated list. The list starts at 4 KiB (or the first objects'
    /// size) instead of going through every small size, then grows geometrically.
    @inline(__always)
    private static func appendObject(_ json: UnsafeRawBufferPointer, to list: inout [UInt8]) {
        if list.isEmpty {
            list.reserveCapacity(Swift.max(4_096, json.count))
        } else {
            list.append(UInt8(ascii: ","))
        }
        list.append(contentsOf: json)
    }

    /// Folds one record into its execution; returns true when the record ends the execution.
    private static func fold(_ accepted: AcceptedRecord, into execution: inout Execution,
                             limits: AggregationLimits) -> Bool {
        let record = accepted.record
        noteLines(1, earliest: record.timestamp, latestReceivedAt: accepted.receivedAt, in: &execution)
        switch record.body {
        case let .start(script, version, environment, pid):
            execution.scriptName = script
            execution.scriptVersion = version
            execution.environment = environment
            execution.scriptPID = pid
            execution.startedAt = record.timestamp
        case let .event(level, operation, message, duration):
            var json = JSONWriter(capacity: 128 + message.utf8.count)
            EventFragment.write(level: level, operation: operation, message: message,
                                durationSeconds: duration, timestamp: record.timestamp, into: &json)
            json.bytes.withUnsafeBytes { object in
                foldEvents(1, isError: level == .error, objects: object, prefixLength: { _ in object.count },
                           into: &execution, limits: limits)
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
