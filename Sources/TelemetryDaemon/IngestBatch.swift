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

    var isEmpty: Bool { records.isEmpty }
    var byteCount: Int { journal.count + records.count * 64 }

    mutating func append(_ record: WireRecord, json: UnsafeRawBufferPointer, sender: SenderIdentity,
                         receivedAt: Timestamp) {
        let start = journal.count
        JournalRecord.append(json: json, sender: sender, receivedAt: receivedAt, to: &journal)
        ranges.append(start..<journal.count)
        records.append(AcceptedRecord(record: record, sender: sender, receivedAt: receivedAt))
    }
}
