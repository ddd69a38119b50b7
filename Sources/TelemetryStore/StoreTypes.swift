/// `PRAGMA synchronous` for the store (the journal mode is always WAL).
/// - `full`: every commit is fsynced before `commit` returns: a committed batch survives power loss.
/// - `normal`: the WAL is fsynced only at checkpoints: a commit survives a crash of the daemon, but the last
///   commits before a power loss or kernel crash may be lost (the database stays consistent).
public enum StoreSyncMode: String, Sendable {
    case full, normal
}

/// One closed execution: the aggregated JSON document and the columns it is listed by.
public struct StoredDocument: Sendable, Equatable {
    /// Canonical lowercase UUID. Lookups are exact: the store does not re-canonicalize.
    public var executionID: String
    public var scriptName: String
    /// "success" | "failure" | "incomplete"
    public var status: String
    /// Microseconds since the Unix epoch.
    public var startedAt: Int64
    /// Microseconds since the Unix epoch.
    public var completedAt: Int64
    /// The document's JSON, exactly what will be forwarded.
    public var body: [UInt8]

    public init(executionID: String, scriptName: String, status: String, startedAt: Int64, completedAt: Int64,
                body: [UInt8]) {
        self.executionID = executionID
        self.scriptName = scriptName
        self.status = status
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.body = body
    }
}

/// A stored document without its body, for listings.
public struct DocumentSummary: Sendable, Equatable {
    /// Insertion order: strictly increasing and never reused, even after retention deleted rows (there may be gaps).
    public var sequence: Int64
    public var executionID: String
    public var scriptName: String
    public var status: String
    public var startedAt: Int64
    public var completedAt: Int64
    public var bodyBytes: Int

    public init(sequence: Int64, executionID: String, scriptName: String, status: String, startedAt: Int64,
                completedAt: Int64, bodyBytes: Int) {
        self.sequence = sequence
        self.executionID = executionID
        self.scriptName = scriptName
        self.status = status
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.bodyBytes = bodyBytes
    }
}

/// Everything one `TelemetryStore.commit` writes, in one transaction.
public struct StoreBatch: Sendable {
    /// Accepted input lines to append durably, as one journal chunk with a caller-chosen sequence number.
    /// A chunk whose sequence is already stored replaces the stored one, so a batch whose commit failed (even one
    /// whose outcome is unknown, e.g. an fsync error after the write) can be retried with a grown chunk.
    public var journalChunk: (sequence: Int64, bytes: [UInt8])?
    /// Executions that closed; inserted in this same transaction. Re-inserting an execution id that exists is
    /// ignored (idempotent): the first stored document wins.
    public var documents: [StoredDocument]
    /// Journal chunks with sequence < this are no longer needed (every execution they hold is closed): delete them.
    /// Applied after the chunk is appended.
    public var pruneJournalBelow: Int64?

    public init(journalChunk: (sequence: Int64, bytes: [UInt8])? = nil, documents: [StoredDocument] = [],
                pruneJournalBelow: Int64? = nil) {
        self.journalChunk = journalChunk
        self.documents = documents
        self.pruneJournalBelow = pruneJournalBelow
    }
}

public struct StoreStatistics: Sendable, Equatable {
    public var documentCount: Int
    public var journalChunkCount: Int
    /// Sum of the journal chunks' sizes.
    public var journalBytes: Int
    /// Main database file + `-wal` file sizes on disk.
    public var fileBytes: Int

    public init(documentCount: Int, journalChunkCount: Int, journalBytes: Int, fileBytes: Int) {
        self.documentCount = documentCount
        self.journalChunkCount = journalChunkCount
        self.journalBytes = journalBytes
        self.fileBytes = fileBytes
    }
}
