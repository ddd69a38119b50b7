import TelemetryCore
import TelemetryWire

/// What one connection read since its last hand-off: validated lines with their journal bytes and their
/// encoded event objects, built on the event loop so the single writer thread only aggregates and commits.
///
/// A batch is a handful of flat buffers whatever its number of lines: `entries` holds plain values only,
/// and the strings of event lines (nearly every line) are never materialized — they are copied from the
/// socket buffer straight into `journal` and `fragments`. Handing a batch to the writer thread therefore
/// moves a few allocations instead of retaining, and later freeing on another thread, a String per line
/// (which made the event loops and the writer contend on malloc's arena locks).
///
/// Consecutive events of one execution (the usual case: a connection carries one script's lines) form one
/// entry, a run, whose objects sit in `fragments` already separated by commas: the writer looks the
/// execution up and appends the run's objects once per run, not once per line.
struct IngestBatch: Sendable {
    /// One accepted line, or a run of consecutive event lines of one execution.
    struct Entry: Sendable {
        var executionID: ExecutionID
        /// When the script says it happened (`"ts"`); for a run, the earliest.
        var timestamp: Timestamp
        /// For a run, the latest.
        var receivedAt: Timestamp
        var sender: SenderIdentity
        /// `journal[journal]` is the journal records (`JournalRecord` format) of the entry's lines.
        var journal: Range<Int>
        var content: Content
    }

    enum Content: Sendable {
        /// `count` events (all errors, or none): `fragments.bytes[objects]` is their objects for the document,
        /// comma-separated, and `objectEnds[ends]` where each object ends.
        case events(objects: Range<Int>, ends: Range<Int>, isError: Bool)
        /// Any other data line: `records[index]`.
        case record(index: Int)
    }

    private(set) var entries: [Entry] = []
    /// The records of the lines that are not events (start, metric, tag, end), in order.
    private(set) var records: [WireRecord] = []
    /// Journal records of all lines, back to back.
    private(set) var journal: [UInt8] = []
    /// Event objects already encoded for the document; those of one run are separated by commas.
    private(set) var fragments = JSONWriter(capacity: 0)
    /// The end offset in `fragments.bytes` of every event object, in order.
    private(set) var objectEnds: [Int] = []
    /// Accepted lines in the batch.
    private(set) var lineCount = 0

    var isEmpty: Bool { lineCount == 0 }
    /// What the batch holds in memory, roughly.
    var byteCount: Int {
        journal.count + fragments.bytes.count + objectEnds.count * 8 + entries.count * MemoryLayout<Entry>.stride
            + records.count * 160
    }

    /// Makes room for about `lines` more lines of about `bytes` bytes in total (one socket read), so that the
    /// buffers grow at most once per read, and geometrically over the reads of one hand-off: growing them line by
    /// line, and copying them at each step, was a fifth of the event loops' time.
    mutating func reserve(lines count: Int, bytes: Int) {
        journal.reserveGrowing(additional: bytes + count * 32)
        fragments.reserve(additional: bytes)
        objectEnds.reserveGrowing(additional: count)
    }

    /// Appends a line that `WireParser.parseLine` accepted; `json` is the line it was parsed from.
    mutating func append(_ parsed: ParsedLine, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                         receivedAt: Timestamp, journalPrefix: [UInt8]? = nil) {
        switch parsed {
        case .event(let event):
            let isError = event.level == .error
            let extending = extendsLastRun(event.executionID, isError: isError, sender: sender)
            if extending { fragments.appendVerbatim(",") }
            let range = EventFragment.append(event, to: &fragments)
            appendEvent(event.executionID, event.timestamp, object: range, isError: isError, extending: extending,
                        json: json, sender: sender, receivedAt: receivedAt, journalPrefix: journalPrefix)
        case .record(let record):
            appendRecord(record, json: json, sender: sender, receivedAt: receivedAt, journalPrefix: journalPrefix)
        case .control:
            preconditionFailure("control requests are answered, not batched")
        }
    }

    /// Appends a start, metric, tag or end line.
    private mutating func appendRecord(_ record: WireRecord, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                                       receivedAt: Timestamp, journalPrefix: [UInt8]?) {
        let journalRange = appendJournal(json, sender: sender, receivedAt: receivedAt, journalPrefix: journalPrefix)
        entries.append(Entry(executionID: record.executionID, timestamp: record.timestamp, receivedAt: receivedAt,
                             sender: sender, journal: journalRange, content: .record(index: records.count)))
        records.append(record)
        lineCount += 1
    }

    /// Whether an event of `id` continues the last entry, a run of the same execution, sender and error-ness.
    private func extendsLastRun(_ id: ExecutionID, isError: Bool, sender: SenderIdentity) -> Bool {
        guard let last = entries.last, last.executionID == id, last.sender == sender,
              case .events(_, _, let lastIsError) = last.content else { return false }
        return lastIsError == isError
    }

    private mutating func appendEvent(_ id: ExecutionID, _ timestamp: Timestamp, object: Range<Int>, isError: Bool,
                                      extending: Bool, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                                      receivedAt: Timestamp, journalPrefix: [UInt8]?) {
        let journalRange = appendJournal(json, sender: sender, receivedAt: receivedAt, journalPrefix: journalPrefix)
        objectEnds.append(object.upperBound)
        lineCount += 1
        let last = entries.count - 1
        if extending, case .events(let objects, let ends, _) = entries[last].content {
            entries[last].timestamp = min(entries[last].timestamp, timestamp)
            entries[last].receivedAt = max(entries[last].receivedAt, receivedAt)
            entries[last].journal = entries[last].journal.lowerBound..<journalRange.upperBound
            entries[last].content = .events(objects: objects.lowerBound..<object.upperBound,
                                             ends: ends.lowerBound..<objectEnds.count, isError: isError)
        } else {
            entries.append(Entry(executionID: id, timestamp: timestamp, receivedAt: receivedAt, sender: sender,
                                 journal: journalRange,
                                 content: .events(objects: object, ends: (objectEnds.count - 1)..<objectEnds.count,
                                                  isError: isError)))
        }
    }

    private mutating func appendJournal(_ json: UnsafeRawBufferPointer, sender: SenderIdentity, receivedAt: Timestamp,
                                        journalPrefix: [UInt8]?) -> Range<Int> {
        let start = journal.count
        if let journalPrefix {
            JournalRecord.append(json: json, prefix: journalPrefix, to: &journal)
        } else {
            JournalRecord.append(json: json, sender: sender, receivedAt: receivedAt, to: &journal)
        }
        return start..<journal.count
    }
}
