import TelemetryCore
import TelemetryWire

/// What one connection read since its last hand-off: validated records with their journal bytes,
/// built on the event loop so the single writer thread only aggregates and commits.
struct IngestBatch: Sendable {
    var records: [AcceptedRecord] = []
    /// Journal records (`JournalRecord` format) of `records`, back to back.
    var journal: [UInt8] = []
    /// `journal[ranges[i]]` is the journal record of `records[i]`.
    var ranges: [Range<Int>] = []
    /// Event objects already encoded for the document (`EventFragment`), back to back.
    var fragments = JSONWriter(capacity: 0)
    /// `fragments.bytes[fragmentRanges[i]]` is the event object of `records[i]`; empty for other kinds.
    var fragmentRanges: [Range<Int>] = []

    var isEmpty: Bool { records.isEmpty }
    /// What the batch holds in memory, roughly: the journal and event bytes plus each record's strings.
    var byteCount: Int { journal.count + fragments.bytes.count + records.count * 160 }

    /// Makes room for about `lines` more lines of about `bytes` bytes in total, so the buffers grow once per read.
    mutating func reserve(lines: Int, bytes: Int) {
        journal.reserveCapacity(journal.count + bytes + lines * 32)
        records.reserveCapacity(records.count + lines)
        ranges.reserveCapacity(ranges.count + lines)
        fragmentRanges.reserveCapacity(fragmentRanges.count + lines)
    }

    mutating func append(_ record: WireRecord, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                         receivedAt: Timestamp, journalPrefix: [UInt8]? = nil) {
        let start = journal.count
        if let journalPrefix {
            JournalRecord.append(json: json, prefix: journalPrefix, to: &journal)
        } else {
            JournalRecord.append(json: json, sender: sender, receivedAt: receivedAt, to: &journal)
        }
        ranges.append(start..<journal.count)
        fragmentRanges.append(EventFragment.append(record, to: &fragments) ?? 0..<0)
        records.append(AcceptedRecord(record: record, sender: sender, receivedAt: receivedAt))
    }
}
