import TelemetryCore
import TelemetryWire

/// What one connection read since its last hand-off: validated lines with their journal bytes and their
/// encoded event objects, built on the event loop so the single writer thread only aggregates and commits.
///
/// A batch is a handful of flat buffers whatever its number of lines: `lines` holds plain values only,
/// and the strings of event lines (nearly every line) are never materialized — they are copied from the
/// socket buffer straight into `journal` and `fragments`. Handing a batch to the writer thread therefore
/// moves a few allocations instead of retaining, and later freeing on another thread, a String per line
/// (which made the event loops and the writer contend on malloc's arena locks).
struct IngestBatch: Sendable {
    /// One accepted line.
    struct Line: Sendable {
        var executionID: ExecutionID
        /// When the script says it happened (`"ts"`).
        var timestamp: Timestamp
        var receivedAt: Timestamp
        var sender: SenderIdentity
        /// `journal[journal]` is the line's journal record (`JournalRecord` format).
        var journal: Range<Int>
        var content: Content
    }

    enum Content: Sendable {
        /// An event; `fragments.bytes[range]` is its object for the document (`EventFragment`).
        case event(range: Range<Int>, isError: Bool)
        /// Any other data line: `records[index]`.
        case record(index: Int)
    }

    private(set) var lines: [Line] = []
    /// The records of the lines that are not events (start, metric, tag, end), in order.
    private(set) var records: [WireRecord] = []
    /// Journal records of `lines`, back to back.
    private(set) var journal: [UInt8] = []
    /// Event objects already encoded for the document, back to back.
    private(set) var fragments = JSONWriter(capacity: 0)

    var isEmpty: Bool { lines.isEmpty }
    var lineCount: Int { lines.count }
    /// What the batch holds in memory, roughly.
    var byteCount: Int {
        journal.count + fragments.bytes.count + lines.count * MemoryLayout<Line>.stride + records.count * 160
    }

    /// Makes room for about `lines` more lines of about `bytes` bytes in total, so the buffers grow once per read.
    mutating func reserve(lines count: Int, bytes: Int) {
        journal.reserveCapacity(journal.count + bytes + count * 32)
        lines.reserveCapacity(lines.count + count)
    }

    /// Appends a line that `WireParser.parseLine` accepted; `json` is the line it was parsed from.
    mutating func append(_ parsed: ParsedLine, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                         receivedAt: Timestamp, journalPrefix: [UInt8]? = nil) {
        switch parsed {
        case .event(let event):
            let range = EventFragment.append(event, to: &fragments)
            appendLine(event.executionID, event.timestamp, .event(range: range, isError: event.level == .error),
                       json: json, sender: sender, receivedAt: receivedAt, journalPrefix: journalPrefix)
        case .record(let record):
            append(record, json: json, sender: sender, receivedAt: receivedAt, journalPrefix: journalPrefix)
        case .control:
            preconditionFailure("control requests are answered, not batched")
        }
    }

    /// Appends a validated record (any kind) parsed from `json`.
    mutating func append(_ record: WireRecord, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                         receivedAt: Timestamp, journalPrefix: [UInt8]? = nil) {
        let content: Content
        if case .event(let level, _, _, _) = record.body, let range = EventFragment.append(record, to: &fragments) {
            content = .event(range: range, isError: level == .error)
        } else {
            content = .record(index: records.count)
            records.append(record)
        }
        appendLine(record.executionID, record.timestamp, content, json: json, sender: sender,
                   receivedAt: receivedAt, journalPrefix: journalPrefix)
    }

    private mutating func appendLine(_ id: ExecutionID, _ timestamp: Timestamp, _ content: Content,
                                     json: UnsafeRawBufferPointer, sender: SenderIdentity, receivedAt: Timestamp,
                                     journalPrefix: [UInt8]?) {
        let start = journal.count
        if let journalPrefix {
            JournalRecord.append(json: json, prefix: journalPrefix, to: &journal)
        } else {
            JournalRecord.append(json: json, sender: sender, receivedAt: receivedAt, to: &journal)
        }
        lines.append(Line(executionID: id, timestamp: timestamp, receivedAt: receivedAt, sender: sender,
                          journal: start..<journal.count, content: content))
    }
}
