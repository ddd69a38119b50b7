import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The daemon's durable store: the journal of accepted input lines and the documents of closed executions, in
/// `<directory>/telemetry.db` (SQLite, WAL mode).
///
/// One connection, used by one thread at a time (not `Sendable`): the daemon's writer thread owns the writable store;
/// other readers (the CLI, control requests) open their own `readOnly` store, which works while the writer is active.
public final class TelemetryStore {
    /// The database file name inside the state directory.
    public static let fileName = "telemetry.db"
    /// The schema version this code reads and writes.
    public static let schemaVersion = StoreSchema.version

    /// `<directory>/telemetry.db`
    public let path: String
    public let isReadOnly: Bool
    /// The connection. Package-visible for tests and diagnostics; use it only from the thread that uses the store.
    package let database: SQLiteDatabase
    /// Whether committed documents are queued for delivery (the daemon forwards to an endpoint). Documents
    /// stored while it is off stay local only.
    public var enqueuesForDelivery = false

    private var statements: [String: SQLiteStatement] = [:]

    /// Opens or creates `<directory>/telemetry.db` (creating the directory 0750 if missing), enables WAL, sets
    /// synchronous, creates or migrates the schema (`PRAGMA user_version`; a newer version is refused).
    ///
    /// With `readOnly`, nothing is created, migrated or written: the database must exist with the current schema.
    /// `cacheSizeKiB` overrides the page cache of a writing connection (the forwarder's reads and writes little).
    ///
    /// `autocheckpointBytes` is the WAL size at which a commit through this connection also checkpoints the WAL
    /// into the database file. The ingest writer leaves checkpoints to a `checkpoint()` caller on another thread
    /// and keeps a larger value here only as a bound in case that caller falls behind.
    ///
    /// `buffersWALWrites` gathers the connection's WAL writes into 256 KiB writes (`SQLiteDatabase`): for the
    /// connection that commits a lot.
    public init(directory: String, synchronous: StoreSyncMode = .full, readOnly: Bool = false,
                cacheSizeKiB: Int? = nil, autocheckpointBytes: Int? = nil,
                buffersWALWrites: Bool = false) throws(SQLiteError) {
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        let path = directory == "/" ? "/" + Self.fileName : directory + "/" + Self.fileName
        self.path = path
        self.isReadOnly = readOnly

        if !readOnly {
            let failure = Self.makeDirectory(directory)
            if failure != 0 {
                throw SQLiteError(code: SQLITE_CANTOPEN,
                                  message: "cannot create the directory \(directory): \(Self.errnoText(failure))",
                                  operation: "opening", path: path)
            }
        }
        database = try SQLiteDatabase(path: path, readOnly: readOnly, buffersWALWrites: buffersWALWrites && !readOnly)
        // Reading the header is the first real I/O: a file that is not a database fails here with SQLITE_NOTADB.
        let found = try checkVersion(readOnly: readOnly)
        try configure(synchronous: synchronous, readOnly: readOnly, fresh: found == 0,
                      cacheSizeKiB: cacheSizeKiB ?? StoreTuning.cacheSizeKiB,
                      autocheckpointBytes: autocheckpointBytes ?? StoreTuning.walAutocheckpointBytes)
        if !readOnly && found < StoreSchema.version {
            try migrate()
        }
    }

    /// Frees the connection's unused cache pages, and with `trimHeap` returns the freed heap to the kernel
    /// (`SQLiteDatabase.releaseMemory`). Call it on the thread that uses the store, between transactions.
    public func releaseCacheMemory(trimHeap: Bool = true) {
        database.releaseMemory(trimHeap: trimHeap)
    }

    // MARK: Writing

    /// One transaction: append (or replace) the journal chunk, insert the documents (existing execution ids are
    /// ignored), delete the journal chunks below `pruneJournalBelow`. Either all of it is durable when this returns
    /// (with `.full`, on disk) or none of it is written.
    public func commit(_ batch: StoreBatch) throws(SQLiteError) {
        guard batch.journalChunk != nil || !batch.documents.isEmpty || batch.pruneJournalBelow != nil else { return }
        do throws(SQLiteError) {
            try write { () throws(SQLiteError) in
                if let chunk = batch.journalChunk {
                    let insert = try statement("""
                        INSERT INTO journal(sequence, bytes) VALUES (?1, ?2)
                        ON CONFLICT(sequence) DO UPDATE SET bytes = excluded.bytes
                        """)
                    try insert.bind(1, chunk.sequence)
                    try insert.stepBorrowing(chunk.bytes, at: 2)
                }
                if !batch.documents.isEmpty {
                    let insert = try statement("""
                        INSERT INTO documents(execution_id, script_name, status, started_at, completed_at, body)
                        VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(execution_id) DO NOTHING
                        """)
                    defer { insert.clearBindings() }
                    let enqueue = enqueuesForDelivery
                        ? try statement("INSERT INTO delivery_queue(sequence) VALUES (?1)") : nil
                    for document in batch.documents {
                        defer { insert.reset() }
                        try insert.bind(1, document.executionID)
                        try insert.bind(2, document.scriptName)
                        try insert.bind(3, document.status)
                        try insert.bind(4, document.startedAt)
                        try insert.bind(5, document.completedAt)
                        try insert.stepBorrowing(document.body, at: 6)
                        if let enqueue, database.changes > 0 {
                            defer { enqueue.reset() }
                            try enqueue.bind(1, database.lastInsertRowID)
                            _ = try enqueue.step()
                        }
                    }
                }
                if let below = batch.pruneJournalBelow {
                    let prune = try statement("DELETE FROM journal WHERE sequence < ?1")
                    defer { prune.reset() }
                    try prune.bind(1, below)
                    _ = try prune.step()
                }
            }
        } catch {
            throw error.during("committing \(Self.describe(batch)) to")
        }
    }

    /// Retention: deletes the documents whose `completedAt` is older than `cutoff` (µs since epoch). Returns how many.
    public func deleteDocuments(completedBefore cutoff: Int64) throws(SQLiteError) -> Int {
        do throws(SQLiteError) {
            return try write { () throws(SQLiteError) -> Int in
                let delete = try statement("DELETE FROM documents WHERE completed_at < ?1")
                defer { delete.reset() }
                try delete.bind(1, cutoff)
                _ = try delete.step()
                let deleted = database.changes
                let orphans = try statement("DELETE FROM delivery_queue WHERE sequence NOT IN (SELECT sequence FROM documents)")
                defer { orphans.reset() }
                _ = try orphans.step()
                return deleted
            }
        } catch {
            throw error.during("deleting documents completed before \(cutoff) from")
        }
    }

    /// A write probe for health checks: writes and commits (with the configured durability) a heartbeat row.
    public func checkWritable() throws(SQLiteError) {
        do throws(SQLiteError) {
            try write { () throws(SQLiteError) in
                let upsert = try statement("""
                    INSERT INTO meta(key, value) VALUES ('heartbeat', ?1)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value
                    """)
                defer { upsert.reset() }
                try upsert.bind(1, Self.nowMicroseconds())
                _ = try upsert.step()
            }
        } catch {
            throw error.during("checking that the store can be written: writing a heartbeat to")
        }
    }

    // MARK: Reading

    /// Sequence to use for the next journal chunk: max(sequence) + 1, or 1 when the journal is empty.
    public func nextJournalSequence() throws(SQLiteError) -> Int64 {
        do throws(SQLiteError) {
            let query = try statement("SELECT coalesce(max(sequence), 0) + 1 FROM journal")
            defer { query.reset() }
            _ = try query.step()
            return query.int64(0)
        } catch {
            throw error.during("reading the journal's last sequence from")
        }
    }

    /// The WAL size at which a checkpoint is due (a connection's default `autocheckpointBytes`).
    public static let checkpointBytes = StoreTuning.walAutocheckpointBytes

    /// Copies what the WAL holds into the database file without blocking the writer or readers (SQLite's
    /// PASSIVE checkpoint), so that the next commit can start the WAL over. Returns the WAL's size and how
    /// much of it is now in the database file, in pages.
    @discardableResult
    public func checkpoint() throws(SQLiteError) -> (walPages: Int, checkpointedPages: Int) {
        do throws(SQLiteError) {
            let query = try statement("PRAGMA wal_checkpoint(PASSIVE)")
            defer { query.reset() }
            _ = try query.step()
            return (Int(query.int64(1)), Int(query.int64(2)))
        } catch {
            throw error.during("checkpointing")
        }
    }

    /// Calls `body` with every journal chunk, in ascending sequence (for crash recovery). One statement reads them
    /// all, so they come from one snapshot (unless `body` itself writes through this store).
    /// Rethrows what `body` throws; store errors are `SQLiteError`s.
    public func forEachJournalChunk(_ body: (Int64, [UInt8]) throws -> Void) throws {
        // A statement of its own (not the cache), so that `body` may use the store.
        let query: SQLiteStatement
        do throws(SQLiteError) {
            query = try database.prepare("SELECT sequence, bytes FROM journal ORDER BY sequence")
        } catch {
            throw error.during("reading the journal from")
        }
        defer { query.reset() }
        while true {
            let hasRow: Bool
            do throws(SQLiteError) {
                hasRow = try query.step()
            } catch {
                throw error.during("reading the journal from")
            }
            guard hasRow else { break }
            try body(query.int64(0), query.blob(1))
        }
    }

    /// Which of `ids` already have a stored document.
    public func existingDocuments(among ids: [String]) throws(SQLiteError) -> Set<String> {
        guard !ids.isEmpty else { return [] }
        do throws(SQLiteError) {
            return try read { () throws(SQLiteError) -> Set<String> in
                let query = try statement("SELECT 1 FROM documents WHERE execution_id = ?1")
                defer { query.clearBindings() }
                var found = Set<String>()
                for id in ids where !found.contains(id) {
                    defer { query.reset() }
                    try query.bind(1, id)
                    if try query.step() { found.insert(id) }
                }
                return found
            }
        } catch {
            throw error.during("looking up \(ids.count) execution ids in")
        }
    }

    /// Up to `limit` summaries, newest (highest sequence, i.e. most recently stored) first, optionally of one script.
    public func documentSummaries(limit: Int, script: String?) throws(SQLiteError) -> [DocumentSummary] {
        guard limit > 0 else { return [] }
        do throws(SQLiteError) {
            let columns = "sequence, execution_id, script_name, status, started_at, completed_at, length(body)"
            let query = try statement(script == nil
                ? "SELECT \(columns) FROM documents ORDER BY sequence DESC LIMIT ?1"
                : "SELECT \(columns) FROM documents WHERE script_name = ?2 ORDER BY sequence DESC LIMIT ?1")
            defer { query.reset(); query.clearBindings() }
            try query.bind(1, Int64(limit))
            if let script { try query.bind(2, script) }
            var summaries: [DocumentSummary] = []
            while try query.step() {
                summaries.append(DocumentSummary(
                    sequence: query.int64(0), executionID: query.text(1), scriptName: query.text(2),
                    status: query.text(3), startedAt: query.int64(4), completedAt: query.int64(5),
                    bodyBytes: Int(query.int64(6))))
            }
            return summaries
        } catch {
            throw error.during("listing documents in")
        }
    }

    /// The stored document of an execution (exact id match), or nil.
    public func document(executionID: String) throws(SQLiteError) -> StoredDocument? {
        do throws(SQLiteError) {
            let query = try statement("""
                SELECT execution_id, script_name, status, started_at, completed_at, body
                FROM documents WHERE execution_id = ?1
                """)
            defer { query.reset(); query.clearBindings() }
            try query.bind(1, executionID)
            guard try query.step() else { return nil }
            return StoredDocument(executionID: query.text(0), scriptName: query.text(1), status: query.text(2),
                                  startedAt: query.int64(3), completedAt: query.int64(4), body: query.blob(5))
        } catch {
            throw error.during("reading the document of execution \(executionID) from")
        }
    }

    /// Row counts (from one snapshot) and the size of the database and WAL files.
    public func statistics() throws(SQLiteError) -> StoreStatistics {
        do throws(SQLiteError) {
            return try read { () throws(SQLiteError) -> StoreStatistics in
                let documents = try statement("SELECT count(*) FROM documents")
                defer { documents.reset() }
                _ = try documents.step()
                let journal = try statement("SELECT count(*), coalesce(sum(length(bytes)), 0) FROM journal")
                defer { journal.reset() }
                _ = try journal.step()
                return StoreStatistics(documentCount: Int(documents.int64(0)),
                                       journalChunkCount: Int(journal.int64(0)), journalBytes: Int(journal.int64(1)),
                                       fileBytes: Self.fileSize(path) + Self.fileSize(path + "-wal"))
            }
        } catch {
            throw error.during("computing statistics of")
        }
    }

    // MARK: Opening

    /// Refuses files that belong to something else or to a newer telemetryd; returns the schema version found.
    private func checkVersion(readOnly: Bool) throws(SQLiteError) -> Int32 {
        let operation = "checking the schema version of"
        let applicationID: Int32
        let version: Int32
        do throws(SQLiteError) {
            applicationID = try pragmaInt32("application_id")
            version = try pragmaInt32("user_version")
        } catch {
            throw error.during(operation)
        }
        if applicationID != 0 && applicationID != StoreSchema.applicationID {
            throw SQLiteError(code: SQLITE_ERROR, message: "not a telemetryd database (application_id \(applicationID))",
                              operation: operation, path: path)
        }
        if version > StoreSchema.version {
            throw SQLiteError(
                code: SQLITE_ERROR,
                message: "the database has schema version \(version), newer than version \(StoreSchema.version) that "
                    + "this telemetryd supports; it was written by a newer telemetryd: upgrade, or move the file away",
                operation: operation, path: path)
        }
        if version == 0 {
            let objects: Int64
            do throws(SQLiteError) {
                let query = try database.prepare("SELECT count(*) FROM sqlite_schema")
                _ = try query.step()
                objects = query.int64(0)
            } catch {
                throw error.during(operation)
            }
            if objects > 0 {
                throw SQLiteError(code: SQLITE_ERROR,
                                  message: "the database holds \(objects) schema objects but no telemetryd schema "
                                      + "version; refusing to modify a database that telemetryd did not create",
                                  operation: operation, path: path)
            }
        }
        if readOnly && version < StoreSchema.version {
            let found = version == 0 ? "no telemetryd schema yet" : "schema version \(version)"
            throw SQLiteError(code: SQLITE_ERROR,
                              message: "the database has \(found) (expected \(StoreSchema.version)); start the "
                                  + "daemon once to create or migrate it",
                              operation: "opening read-only", path: path)
        }
        return version
    }

    private func configure(synchronous: StoreSyncMode, readOnly: Bool, fresh: Bool, cacheSizeKiB: Int,
                           autocheckpointBytes: Int) throws(SQLiteError) {
        do throws(SQLiteError) {
            try database.execute("PRAGMA temp_store = MEMORY")
            guard !readOnly else {
                try database.execute("PRAGMA cache_size = -\(StoreTuning.readerCacheSizeKiB)")
                return
            }
            if fresh {
                // Only possible before the first table exists and before WAL mode.
                try database.execute("PRAGMA page_size = \(StoreTuning.pageSize)")
            }
            let mode = try pragmaText("journal_mode = WAL")
            guard mode.lowercased() == "wal" else {
                throw SQLiteError(code: SQLITE_ERROR, message: "WAL mode could not be enabled (journal_mode is \(mode))",
                                  operation: "configuring", path: path)
            }
            // secure_delete: Debian builds SQLite with SECURE_DELETE on, which zero-fills every freed page, so each
            // pruned journal chunk would be written a second time. FAST still purges deleted content from b-tree
            // pages but leaves it on freelist pages: here the chunks' overflow pages, which the next chunks reuse.
            let pageSize = max(512, Int(try pragmaInt32("page_size")))
            // The cache as a page count, set after the page size is final: a KiB value given while a fresh
            // database still has 4 KiB pages is kept as that many 4 KiB pages and grows 16-fold at 64 KiB.
            try database.execute("""
                PRAGMA cache_size = \(max(16, cacheSizeKiB * 1024 / pageSize));
                PRAGMA synchronous = \(synchronous == .full ? "FULL" : "NORMAL");
                PRAGMA wal_autocheckpoint = \(max(1, autocheckpointBytes / pageSize));
                PRAGMA journal_size_limit = \(StoreTuning.journalSizeLimitBytes);
                PRAGMA secure_delete = FAST;
                """)
        } catch {
            throw error.during("configuring")
        }
    }

    private func migrate() throws(SQLiteError) {
        do throws(SQLiteError) {
            try write { () throws(SQLiteError) in
                // Re-read inside the write lock: another process may have migrated meanwhile.
                let version = try pragmaInt32("user_version")
                guard version < StoreSchema.version else { return }
                for step in Int(version)..<Int(StoreSchema.version) {
                    for sql in StoreSchema.migrations[step] { try database.execute(sql) }
                }
                if version == 0 {
                    try database.execute("""
                        PRAGMA application_id = \(StoreSchema.applicationID);
                        INSERT INTO meta(key, value) VALUES ('created_at', \(Self.nowMicroseconds()))
                        """)
                }
                try database.execute("PRAGMA user_version = \(StoreSchema.version)")
            }
        } catch {
            throw error.during("creating or migrating the schema of")
        }
    }

    // MARK: Helpers

    /// A cached statement (prepared once per connection; the commit path reuses them on every call).
    func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        let prepared = try database.prepare(sql, persistent: true)
        statements[sql] = prepared
        return prepared
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction.
    func write<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        guard !isReadOnly else {
            throw SQLiteError(code: SQLITE_READONLY, message: "the store was opened read-only", operation: "writing to",
                              path: path)
        }
        database.rollback()  // only does something if an earlier failure left a transaction open
        try database.begin(immediate: true)
        do throws(SQLiteError) {
            let result = try body()
            try database.commit()
            return result
        } catch {
            database.rollback()
            throw error
        }
    }

    /// Runs `body` in one read snapshot.
    func read<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        database.rollback()
        try database.begin(immediate: false)
        do throws(SQLiteError) {
            let result = try body()
            try database.commit()
            return result
        } catch {
            database.rollback()
            throw error
        }
    }

    private func pragmaInt32(_ name: String) throws(SQLiteError) -> Int32 {
        let query = try database.prepare("PRAGMA \(name)")
        _ = try query.step()
        return Int32(truncatingIfNeeded: query.int64(0))
    }

    private func pragmaText(_ pragma: String) throws(SQLiteError) -> String {
        let query = try database.prepare("PRAGMA \(pragma)")
        _ = try query.step()
        return query.text(0)
    }

    private static func describe(_ batch: StoreBatch) -> String {
        var parts: [String] = []
        if let chunk = batch.journalChunk {
            parts.append("journal chunk \(chunk.sequence) (\(chunk.bytes.count) bytes)")
        }
        if !batch.documents.isEmpty {
            parts.append(batch.documents.count == 1 ? "1 document" : "\(batch.documents.count) documents")
        }
        if let below = batch.pruneJournalBelow {
            parts.append("pruning the journal below \(below)")
        }
        return parts.joined(separator: ", ")
    }

    static func nowMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }

    private static func fileSize(_ path: String) -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int(info.st_size)
    }

    private static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    /// `mkdir -p` with mode 0750 for what it creates. Returns 0 or an errno.
    private static func makeDirectory(_ directory: String) -> Int32 {
        if directory.isEmpty { return 0 }
        if mkdir(directory, 0o750) == 0 { return 0 }
        var failure = errno
        if failure == ENOENT, let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            let parentFailure = makeDirectory(String(directory[..<slash]))
            if parentFailure != 0 { return parentFailure }
            if mkdir(directory, 0o750) == 0 { return 0 }
            failure = errno
        }
        if failure == EEXIST {
            var info = stat()
            guard stat(directory, &info) == 0 else { return errno }
            return (info.st_mode & S_IFMT) == S_IFDIR ? 0 : ENOTDIR
        }
        return failure
    }
}
