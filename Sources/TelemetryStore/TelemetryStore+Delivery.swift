import CSQLite

/// A batch of documents on its way to the endpoint. Its id is sent as `Idempotency-Key` on every attempt,
/// including attempts after a restart, so a receiver can drop the duplicates that at-least-once implies.
public struct DeliveryBatch: Sendable, Equatable {
    public var id: String
    public var createdAt: Int64
    public var attempts: Int
    /// Documents in sequence order: the order executions closed, which keeps each script's runs in order.
    public var documents: [(sequence: Int64, executionID: String, body: [UInt8])]

    public init(id: String, createdAt: Int64, attempts: Int, documents: [(sequence: Int64, executionID: String, body: [UInt8])]) {
        self.id = id
        self.createdAt = createdAt
        self.attempts = attempts
        self.documents = documents
    }

    public static func == (lhs: DeliveryBatch, rhs: DeliveryBatch) -> Bool {
        lhs.id == rhs.id && lhs.createdAt == rhs.createdAt && lhs.attempts == rhs.attempts
            && lhs.documents.map(\.sequence) == rhs.documents.map(\.sequence)
    }
}

/// What waits to be delivered.
public struct DeliveryBacklog: Sendable, Equatable {
    /// Documents neither delivered nor dead-lettered.
    public var pendingDocuments: Int
    /// When the oldest of them was stored (µs), nil when none wait.
    public var oldestCompletedAt: Int64?
    /// Whether a batch was formed and not yet delivered (it is resent first, with its id).
    public var hasOpenBatch: Bool
}

/// A batch the endpoint refused for good (a 4xx other than 408 and 429).
public struct DeadLetter: Sendable, Equatable {
    public var batchID: String
    public var documentCount: Int
    public var status: Int
    public var responseExcerpt: String
    public var deadAt: Int64
}

extension TelemetryStore {
    public func deliveryBacklog() throws(SQLiteError) -> DeliveryBacklog {
        do throws(SQLiteError) {
            return try read { () throws(SQLiteError) -> DeliveryBacklog in
                // The forwarder asks before every batch: count the small queue rows, read one document row.
                let pending = try statement("SELECT count(*) FROM delivery_queue WHERE dead_lettered_at IS NULL")
                defer { pending.reset() }
                _ = try pending.step()
                let oldest = try statement("""
                    SELECT d.completed_at FROM delivery_queue q JOIN documents d ON d.sequence = q.sequence
                    WHERE q.dead_lettered_at IS NULL ORDER BY q.sequence LIMIT 1
                    """)
                defer { oldest.reset() }
                let hasOldest = try oldest.step()
                let open = try statement("SELECT 1 FROM batches WHERE dead_at IS NULL LIMIT 1")
                defer { open.reset() }
                let hasOpen = try open.step()
                return DeliveryBacklog(pendingDocuments: Int(pending.int64(0)),
                                       oldestCompletedAt: hasOldest ? oldest.int64(0) : nil,
                                       hasOpenBatch: hasOpen)
            }
        } catch {
            throw error.during("reading the delivery backlog of")
        }
    }

    /// The batch formed earlier and not yet delivered (after a failure or a restart), if any.
    public func openBatch() throws(SQLiteError) -> DeliveryBatch? {
        do throws(SQLiteError) {
            return try read { () throws(SQLiteError) -> DeliveryBatch? in
                let batch = try statement("""
                    SELECT id, created_at, attempts FROM batches WHERE dead_at IS NULL ORDER BY created_at, id LIMIT 1
                    """)
                defer { batch.reset() }
                guard try batch.step() else { return nil }
                let id = batch.text(0)
                return DeliveryBatch(id: id, createdAt: batch.int64(1), attempts: Int(batch.int64(2)),
                                     documents: try documents(inBatch: id))
            }
        } catch {
            throw error.during("reading the open delivery batch of")
        }
    }

    /// Forms a new batch from the oldest pending documents: at most `maxDocuments`, and at most `maxBytes` of
    /// bodies (always at least one document, so a single large document is not stuck). Nil when none wait.
    public func createBatch(id: String, maxDocuments: Int, maxBytes: Int, now: Int64) throws(SQLiteError) -> DeliveryBatch? {
        do throws(SQLiteError) {
            return try write { () throws(SQLiteError) -> DeliveryBatch? in
                let candidates = try statement("""
                    SELECT q.sequence, length(d.body) FROM delivery_queue q JOIN documents d ON d.sequence = q.sequence
                    WHERE q.batch_id IS NULL AND q.dead_lettered_at IS NULL
                    ORDER BY q.sequence LIMIT ?1
                    """)
                defer { candidates.reset(); candidates.clearBindings() }
                try candidates.bind(1, Int64(maxDocuments))
                var chosen: [Int64] = []
                var bytes = 0
                while try candidates.step() {
                    let size = Int(candidates.int64(1))
                    if !chosen.isEmpty && bytes + size > maxBytes { break }
                    chosen.append(candidates.int64(0))
                    bytes += size
                }
                candidates.reset()
                guard !chosen.isEmpty else { return nil }
                let insert = try statement("INSERT INTO batches(id, created_at) VALUES (?1, ?2)")
                defer { insert.reset(); insert.clearBindings() }
                try insert.bind(1, id)
                try insert.bind(2, now)
                _ = try insert.step()
                let assign = try statement("UPDATE delivery_queue SET batch_id = ?1 WHERE sequence = ?2")
                defer { assign.clearBindings() }
                for sequence in chosen {
                    defer { assign.reset() }
                    try assign.bind(1, id)
                    try assign.bind(2, sequence)
                    _ = try assign.step()
                }
                return DeliveryBatch(id: id, createdAt: now, attempts: 0, documents: try documents(inBatch: id))
            }
        } catch {
            throw error.during("forming delivery batch \(id) in")
        }
    }

    /// The endpoint accepted the batch: its documents are delivered, the batch is done.
    public func markDelivered(batchID: String, at time: Int64) throws(SQLiteError) {
        do throws(SQLiteError) {
            try write { () throws(SQLiteError) in
                let documents = try statement("DELETE FROM delivery_queue WHERE batch_id = ?1")
                defer { documents.reset(); documents.clearBindings() }
                try documents.bind(1, batchID)
                _ = try documents.step()
                let batch = try statement("DELETE FROM batches WHERE id = ?1")
                defer { batch.reset(); batch.clearBindings() }
                try batch.bind(1, batchID)
                _ = try batch.step()
            }
        } catch {
            throw error.during("marking batch \(batchID) delivered in")
        }
    }

    /// Records a failed attempt (for status and the log); the batch stays open and is resent.
    public func recordAttempt(batchID: String, at time: Int64, error message: String?) throws(SQLiteError) {
        do throws(SQLiteError) {
            try write { () throws(SQLiteError) in
                let update = try statement("""
                    UPDATE batches SET attempts = attempts + 1, last_attempt_at = ?2, last_error = ?3 WHERE id = ?1
                    """)
                defer { update.reset(); update.clearBindings() }
                try update.bind(1, batchID)
                try update.bind(2, time)
                if let message { try update.bind(3, message) } else { try update.bindNull(3) }
                _ = try update.step()
            }
        } catch {
            throw error.during("recording an attempt of batch \(batchID) in")
        }
    }

    /// The endpoint refused the batch for good: keep its documents aside, with the answer, for replay or purge.
    public func deadLetter(batchID: String, status: Int, response: String, at time: Int64) throws(SQLiteError) {
        do throws(SQLiteError) {
            try write { () throws(SQLiteError) in
                let documents = try statement("UPDATE delivery_queue SET dead_lettered_at = ?2 WHERE batch_id = ?1")
                defer { documents.reset(); documents.clearBindings() }
                try documents.bind(1, batchID)
                try documents.bind(2, time)
                _ = try documents.step()
                let batch = try statement("""
                    UPDATE batches SET dead_at = ?2, dead_status = ?3, dead_response = ?4, attempts = attempts + 1,
                    last_attempt_at = ?2 WHERE id = ?1
                    """)
                defer { batch.reset(); batch.clearBindings() }
                try batch.bind(1, batchID)
                try batch.bind(2, time)
                try batch.bind(3, Int64(status))
                try batch.bind(4, response)
                _ = try batch.step()
            }
        } catch {
            throw error.during("dead-lettering batch \(batchID) in")
        }
    }

    public func deadLetters() throws(SQLiteError) -> [DeadLetter] {
        do throws(SQLiteError) {
            return try read { () throws(SQLiteError) -> [DeadLetter] in
                let query = try statement("""
                    SELECT b.id, b.dead_status, coalesce(b.dead_response, ''), b.dead_at,
                           (SELECT count(*) FROM delivery_queue q WHERE q.batch_id = b.id)
                    FROM batches b WHERE b.dead_at IS NOT NULL ORDER BY b.dead_at, b.id
                    """)
                defer { query.reset() }
                var letters: [DeadLetter] = []
                while try query.step() {
                    letters.append(DeadLetter(batchID: query.text(0), documentCount: Int(query.int64(4)),
                                              status: Int(query.int64(1)), responseExcerpt: query.text(2),
                                              deadAt: query.int64(3)))
                }
                return letters
            }
        } catch {
            throw error.during("listing dead letters in")
        }
    }

    /// Puts dead-lettered documents (of one batch, or all) back in the queue; they get a new batch and key.
    /// Returns how many documents.
    public func replayDeadLetters(batchID: String?) throws(SQLiteError) -> Int {
        try changeDeadLetters(batchID: batchID, purge: false)
    }

    /// Deletes dead-lettered documents (of one batch, or all). Returns how many documents.
    public func purgeDeadLetters(batchID: String?) throws(SQLiteError) -> Int {
        try changeDeadLetters(batchID: batchID, purge: true)
    }

    private func changeDeadLetters(batchID: String?, purge: Bool) throws(SQLiteError) -> Int {
        do throws(SQLiteError) {
            return try write { () throws(SQLiteError) -> Int in
                let filter = batchID == nil ? "IN (SELECT id FROM batches WHERE dead_at IS NOT NULL)" : "= ?1"
                if purge {
                    let documents = try statement("""
                        DELETE FROM documents WHERE sequence IN (
                            SELECT sequence FROM delivery_queue WHERE dead_lettered_at IS NOT NULL AND batch_id \(filter))
                        """)
                    defer { documents.reset(); documents.clearBindings() }
                    if let batchID { try documents.bind(1, batchID) }
                    _ = try documents.step()
                }
                let queue = try statement(purge
                    ? "DELETE FROM delivery_queue WHERE dead_lettered_at IS NOT NULL AND batch_id \(filter)"
                    : "UPDATE delivery_queue SET dead_lettered_at = NULL, batch_id = NULL WHERE dead_lettered_at IS NOT NULL AND batch_id \(filter)")
                defer { queue.reset(); queue.clearBindings() }
                if let batchID { try queue.bind(1, batchID) }
                _ = try queue.step()
                let count = database.changes
                let batches = try statement(batchID == nil
                    ? "DELETE FROM batches WHERE dead_at IS NOT NULL"
                    : "DELETE FROM batches WHERE dead_at IS NOT NULL AND id = ?1")
                defer { batches.reset(); batches.clearBindings() }
                if let batchID { try batches.bind(1, batchID) }
                _ = try batches.step()
                return count
            }
        } catch {
            throw error.during("\(purge ? "purging" : "replaying") dead letters in")
        }
    }

    /// Retention once documents are forwarded: deletes delivered documents completed before `cutoff`.
    /// Undelivered documents are never removed by retention.
    public func deleteDeliveredDocuments(completedBefore cutoff: Int64) throws(SQLiteError) -> Int {
        do throws(SQLiteError) {
            return try write { () throws(SQLiteError) -> Int in
                let delete = try statement("""
                    DELETE FROM documents WHERE completed_at < ?1 AND sequence NOT IN (SELECT sequence FROM delivery_queue)
                    """)
                defer { delete.reset(); delete.clearBindings() }
                try delete.bind(1, cutoff)
                _ = try delete.step()
                return database.changes
            }
        } catch {
            throw error.during("deleting delivered documents from")
        }
    }

    /// Frees room when the store is over its size cap: deletes up to `limit` of the oldest documents, delivered
    /// ones only unless `includingUndelivered` (local-only mode, where nothing is ever delivered).
    public func deleteOldestDelivered(limit: Int, includingUndelivered: Bool = false) throws(SQLiteError) -> Int {
        do throws(SQLiteError) {
            return try write { () throws(SQLiteError) -> Int in
                let delete = try statement(includingUndelivered ? """
                    DELETE FROM documents WHERE sequence IN (SELECT sequence FROM documents ORDER BY sequence LIMIT ?1)
                    """ : """
                    DELETE FROM documents WHERE sequence IN (
                        SELECT sequence FROM documents WHERE sequence NOT IN (SELECT sequence FROM delivery_queue)
                        ORDER BY sequence LIMIT ?1)
                    """)
                defer { delete.reset(); delete.clearBindings() }
                try delete.bind(1, Int64(limit))
                _ = try delete.step()
                let deleted = database.changes
                if includingUndelivered {
                    let orphans = try statement("DELETE FROM delivery_queue WHERE sequence NOT IN (SELECT sequence FROM documents)")
                    defer { orphans.reset() }
                    _ = try orphans.step()
                }
                return deleted
            }
        } catch {
            throw error.during("freeing room in")
        }
    }

    private func documents(inBatch id: String) throws(SQLiteError) -> [(sequence: Int64, executionID: String, body: [UInt8])] {
        let query = try statement("""
            SELECT d.sequence, d.execution_id, d.body FROM delivery_queue q JOIN documents d ON d.sequence = q.sequence
            WHERE q.batch_id = ?1 ORDER BY q.sequence
            """)
        defer { query.reset(); query.clearBindings() }
        try query.bind(1, id)
        var documents: [(sequence: Int64, executionID: String, body: [UInt8])] = []
        while try query.step() {
            documents.append((query.int64(0), query.text(1), query.blob(2)))
        }
        return documents
    }
}

extension TelemetryStore {
    /// Bytes of the database in use (pages not on the freelist); the WAL is not counted, it is bounded by
    /// `journal_size_limit`. Deleted rows free pages for reuse without shrinking the file, so this, not the
    /// file size, says how full the store is.
    public func usedBytes() throws(SQLiteError) -> Int {
        do throws(SQLiteError) {
            let pages = try statement("PRAGMA page_count")
            defer { pages.reset() }
            _ = try pages.step()
            let free = try statement("PRAGMA freelist_count")
            defer { free.reset() }
            _ = try free.step()
            let size = try statement("PRAGMA page_size")
            defer { size.reset() }
            _ = try size.step()
            return Int(pages.int64(0) - free.int64(0)) * Int(size.int64(0))
        } catch {
            throw error.during("measuring")
        }
    }
}
