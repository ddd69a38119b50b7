import Testing
import TelemetryStore
#if canImport(Glibc)
import Glibc
#endif

/// The WAL write-buffer VFS (`CWALWriteBuffer.h`): the ingest writer's WAL writes gathered into large writes,
/// with every commit's frames on file before SQLite publishes it, and a full disk failing the commit.
@Suite("WAL write buffer")
struct WALWriteBufferTests {
    /// A document of `size` bytes whose content depends on `n` (so a misplaced or stale page would show).
    static func largeDocument(_ n: Int, size: Int) -> StoredDocument {
        var body = Array(#"{"execution_id":"\#(executionID(n))","filler":""#.utf8)
        var state = UInt64(truncatingIfNeeded: n) &* 0x9E37_79B9_7F4A_7C15 | 1
        while body.count < size - 2 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            body.append(UInt8(97 + state % 26))
        }
        body += Array(#""}"#.utf8)
        return document(n, body: String(decoding: body, as: UTF8.self))
    }

    @Test func aCommitReachesTheWALInFewLargeWritesAndReadsBackFromAnotherConnection() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory, synchronous: .normal, buffersWALWrites: true)
            let before = try #require(store.database.walWriteBufferStatistics, "the connection uses the VFS")
            let documents = (1...40).map { Self.largeDocument($0, size: 64 * 1024) }
            try store.commit(StoreBatch(documents: documents))
            let after = try #require(store.database.walWriteBufferStatistics)
            let writes = after.writes - before.writes
            let fileWrites = after.fileWrites - before.fileWrites
            // 2.6 MB is about 160 frames, each a header write and a page write; 256 KiB writes make about 11.
            #expect(writes >= 300)
            #expect(fileWrites <= 16, "\(fileWrites) writes reached the file for \(writes) from SQLite")
            #expect(after.barrierFlushes == 0, "every commit was written by the commit-frame rule")
            #expect(after.discardedBytes == 0)

            let reader = try TelemetryStore(directory: directory, readOnly: true)
            for document in documents {
                #expect(try reader.document(executionID: document.executionID) == document)
            }
        }
    }

    @Test func aConnectionWithoutTheOptionUsesTheDefaultVFS() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(documents: [document(1)]))
            #expect(store.database.walWriteBufferStatistics == nil)
            #expect(try text(store.database, "PRAGMA integrity_check") == "ok")
        }
    }

    /// A transaction larger than the page cache spills pages into the WAL before it commits, and SQLite may read
    /// them back and rewrite them: every read and every write that is not an append goes to the file in order.
    @Test func aTransactionLargerThanThePageCacheStillReadsBackExactly() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory, synchronous: .normal, cacheSizeKiB: 256,
                                           buffersWALWrites: true)
            var committed: [StoredDocument] = []
            for round in 0..<3 {
                let documents = (1...60).map { Self.largeDocument(round * 100 + $0, size: 100 * 1024) }
                try store.commit(StoreBatch(journalChunk: (Int64(round + 1), bytes("chunk \(round)\n")),
                                            documents: documents, pruneJournalBelow: Int64(round + 1)))
                committed += documents
            }
            let statistics = try #require(store.database.walWriteBufferStatistics)
            #expect(statistics.barrierFlushes == 0 && statistics.discardedBytes == 0)
            #expect(try text(store.database, "PRAGMA integrity_check") == "ok")
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            for document in committed {
                #expect(try reader.document(executionID: document.executionID) == document)
            }
            #expect(try journal(reader).map(\.0) == [3])
            // A checkpoint through the buffering connection reads the WAL back through it.
            _ = try store.checkpoint()
            #expect(try store.statistics().documentCount == committed.count)
        }
    }

    /// An indexed table larger than the page cache: inserts in random key order spill pages mid-transaction and
    /// read them back from the WAL while later frames are still gathered, so every read writes what was gathered
    /// first (without that, SQLite meets a short read).
    @Test func pagesATransactionWroteAreReadBackFromTheWAL() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory, synchronous: .normal, cacheSizeKiB: 256,
                                           buffersWALWrites: true)
            try store.database.execute("CREATE TABLE spill(k BLOB PRIMARY KEY, v BLOB)")
            for _ in 0..<3 {
                try store.database.transaction {
                    try store.database.execute(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                            + "INSERT INTO spill SELECT randomblob(200), randomblob(300) FROM n")
                }
            }
            let statistics = try #require(store.database.walWriteBufferStatistics)
            #expect(statistics.barrierFlushes == 0 && statistics.discardedBytes == 0)
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            #expect(try text(reader.database, "PRAGMA integrity_check") == "ok")
            #expect(try scalar(reader.database, "SELECT count(*) FROM spill") == 9_000)
        }
    }

    /// A writer that opens a WAL holding frames (another connection kept it from being checkpointed and removed)
    /// appends after them: its first write does not continue one of its own, and the commit still reaches the
    /// file before it is published.
    @Test func aWriterThatReopensAWALWithFramesAppendsAfterThem() throws {
        try withTemporaryDirectory { directory in
            do {
                let first = try TelemetryStore(directory: directory, synchronous: .normal, buffersWALWrites: true)
                try first.commit(StoreBatch(documents: [Self.largeDocument(1, size: 100_000)]))
            }
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            #expect(try reader.document(executionID: executionID(1)) == Self.largeDocument(1, size: 100_000))
            var documents = [Self.largeDocument(1, size: 100_000)]
            for round in 2...4 {
                let writer = try TelemetryStore(directory: directory, synchronous: .normal, buffersWALWrites: true)
                let document = Self.largeDocument(round, size: 300_000)
                try writer.commit(StoreBatch(documents: [document]))
                documents.append(document)
                let statistics = try #require(writer.database.walWriteBufferStatistics)
                #expect(statistics.fileWrites < statistics.writes / 4)
                #expect(statistics.barrierFlushes == 0 && statistics.discardedBytes == 0)
            }
            for document in documents {
                #expect(try reader.document(executionID: document.executionID) == document)
            }
        }
    }

    /// A transaction that spilled pages into the buffer and then rolled back leaves nothing for later: another
    /// connection commits frames at the same WAL offsets, and the next use of the first connection (a read) must
    /// not write the rolled-back frames over them.
    @Test func aRolledBackTransactionLeavesNothingToOverwriteAnotherConnectionsCommit() throws {
        try withTemporaryDirectory { directory in
            let writer = try TelemetryStore(directory: directory, synchronous: .normal, cacheSizeKiB: 256,
                                            buffersWALWrites: true)
            try writer.commit(StoreBatch(documents: [document(1)]))
            _ = try text(writer.database, "PRAGMA wal_checkpoint(TRUNCATE)")  // the next transaction restarts the WAL
            struct Abandon: Error {}
            #expect(throws: Abandon.self) {
                try writer.database.transaction {
                    for n in 0..<60 {
                        try writer.database.execute(
                            "INSERT INTO documents(execution_id, script_name, status, started_at, completed_at, body) "
                                + "VALUES ('rolled-back-\(n)', 'a.sh', 'success', 0, 0, randomblob(50000))")
                    }
                    throw Abandon()
                }
            }
            let discarded = try #require(writer.database.walWriteBufferStatistics).discardedBytes
            #expect(discarded > 0, "the spilled frames were still gathered when the transaction ended")

            let other = try TelemetryStore(directory: directory, synchronous: .normal)
            let committed = (2...90).map { Self.largeDocument($0, size: 50_000) }  // past the rolled-back frames
            try other.commit(StoreBatch(documents: committed))
            _ = try writer.statistics()  // the first connection's next transaction (a read)
            _ = try writer.document(executionID: executionID(1))

            // A fresh connection reads the file (the other two may still hold the pages in their caches).
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            #expect(try text(reader.database, "PRAGMA integrity_check") == "ok")
            for document in committed {
                #expect(try reader.document(executionID: document.executionID) == document)
            }
            #expect(try scalar(reader.database,
                               "SELECT count(*) FROM documents WHERE execution_id LIKE 'rolled-back-%'") == 0)
            #expect(try #require(writer.database.walWriteBufferStatistics).barrierFlushes == 0)
        }
    }

    @Test func releasingFreesTheBufferBetweenTransactions() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory, synchronous: .normal, buffersWALWrites: true)
            try store.commit(StoreBatch(documents: [Self.largeDocument(1, size: 50_000)]))
            #expect(try #require(store.database.walWriteBufferStatistics).bufferAllocated == 1)
            store.releaseCacheMemory()
            #expect(try #require(store.database.walWriteBufferStatistics).bufferAllocated == 0)
            try store.commit(StoreBatch(documents: [Self.largeDocument(2, size: 50_000)]))
            #expect(try store.document(executionID: executionID(2)) == Self.largeDocument(2, size: 50_000))
        }
    }

    /// A real full disk: the store on a 3 MiB tmpfs. The commit that does not fit fails with SQLITE_FULL and
    /// leaves nothing of itself; earlier commits stay readable; once there is room, the same batch commits.
    @Test(.enabled(if: SmallTmpfs.canMount, "needs root and permission to mount a tmpfs"))
    func aFullDiskFailsTheCommitThatDoesNotFitAndTheStoreGoesOn() throws {
        try withTemporaryDirectory { directory in
            let mount = try SmallTmpfs(at: directory + "/disk", sizeKiB: 3 * 1024)
            defer { mount.unmount() }
            try writeFile(mount.path + "/filler", [UInt8](repeating: 1, count: 1024 * 1024))
            let store = try TelemetryStore(directory: mount.path + "/state", synchronous: .normal, cacheSizeKiB: 256,
                                           buffersWALWrites: true)
            var committed: [StoredDocument] = []
            var failure: SQLiteError?
            var next = 1
            while failure == nil && next < 200 {
                let batch = (next..<next + 4).map { Self.largeDocument($0, size: 40 * 1024) }
                do throws(SQLiteError) {
                    try store.commit(StoreBatch(documents: batch))
                    committed += batch
                    next += 4
                } catch {
                    failure = error
                }
            }
            let error = try #require(failure, "the disk filled up")
            #expect(error.isDiskFull, "\(error)")
            #expect(!committed.isEmpty)
            #expect(try store.document(executionID: executionID(next)) == nil, "nothing of the failed commit")
            let reader = try TelemetryStore(directory: mount.path + "/state", readOnly: true)
            for document in committed {
                #expect(try reader.document(executionID: document.executionID) == document)
            }

            unlink(mount.path + "/filler")
            let retry = (next..<next + 4).map { Self.largeDocument($0, size: 40 * 1024) }
            try store.commit(StoreBatch(documents: retry))
            for document in committed + retry {
                #expect(try reader.document(executionID: document.executionID) == document)
            }
            #expect(try text(store.database, "PRAGMA integrity_check") == "ok")
            let statistics = try #require(store.database.walWriteBufferStatistics)
            #expect(statistics.barrierFlushes == 0 && statistics.discardedBytes == 0)
        }
    }
}

/// A size-limited tmpfs mounted for one test (root only).
struct SmallTmpfs {
    let path: String

    /// Whether this process may mount one: root, and not in a container that forbids mounts. Probed once.
    static let canMount: Bool = {
        guard geteuid() == 0, let probe = try? makeTemporaryDirectory() else { return false }
        defer { removeRecursively(probe) }
        guard let mounted = try? SmallTmpfs(at: probe + "/m", sizeKiB: 64) else { return false }
        mounted.unmount()
        return true
    }()

    init(at path: String, sizeKiB: Int) throws {
        self.path = path
        mkdir(path, 0o700)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(sizeKiB)k,mode=0700") == 0 else {
            throw TestFailure("cannot mount a tmpfs at \(path): \(String(cString: strerror(errno)))")
        }
    }

    func unmount() {
        umount2(path, Int32(MNT_DETACH))
    }
}
