import Testing
import TelemetryStore

@Suite("TelemetryStore")
struct TelemetryStoreTests {
    // MARK: Opening

    @Test func createsTheDirectoryAndTheSchemaThenReopens() throws {
        try withTemporaryDirectory { base in
            let directory = base + "/state/telemetryd"
            do {
                let store = try TelemetryStore(directory: directory)
                #expect(store.path == directory + "/telemetry.db")
                #expect(fileExists(store.path))
                #expect(fileMode(directory) == 0o750)
                #expect(try text(store.database, "PRAGMA journal_mode") == "wal")
                #expect(try scalar(store.database, "PRAGMA synchronous") == 2)  // FULL
                #expect(try scalar(store.database, "PRAGMA user_version") == 2)
                #expect(try scalar(store.database, "PRAGMA page_size") == 16_384)
                #expect(try scalar(store.database, "PRAGMA temp_store") == 2)  // MEMORY
                #expect(try scalar(store.database, "PRAGMA wal_autocheckpoint") == 2_048)  // 32 MiB of 16 KiB pages
                #expect(try scalar(store.database, "PRAGMA journal_size_limit") == 64 * 1024 * 1024)
                #expect(try scalar(store.database, "SELECT count(*) FROM meta WHERE key = 'created_at'") == 1)
                let empty = try store.statistics()
                #expect(empty.documentCount == 0 && empty.journalChunkCount == 0 && empty.journalBytes == 0)
                try store.commit(StoreBatch(journalChunk: (1, bytes("line\n")), documents: [document(1)]))
            }
            // A trailing slash names the same directory.
            let reopened = try TelemetryStore(directory: directory + "/", synchronous: .normal)
            #expect(reopened.path == directory + "/telemetry.db")
            #expect(try scalar(reopened.database, "PRAGMA synchronous") == 1)  // NORMAL
            #expect(try reopened.document(executionID: executionID(1)) == document(1))
            #expect(try journal(reopened).map(\.0) == [1])
            #expect(try scalar(reopened.database, "SELECT count(*) FROM meta WHERE key = 'created_at'") == 1,
                    "reopening does not re-run the schema creation")
        }
    }

    @Test func aPathThatIsAFileCannotBeTheDirectory() throws {
        try withTemporaryDirectory { base in
            try writeFile(base + "/occupied", bytes("x"))
            let error = try #require(throws: SQLiteError.self) { _ = try TelemetryStore(directory: base + "/occupied") }
            #expect(error.code == 14)
            #expect(error.description.contains("cannot create the directory " + base + "/occupied"))
            #expect(error.description.contains("Not a directory"))
        }
    }

    @Test func aNewerSchemaVersionIsRefusedClearly() throws {
        try withTemporaryDirectory { directory in
            _ = try TelemetryStore(directory: directory)
            do {
                let db = try SQLiteDatabase(path: directory + "/telemetry.db")
                try db.execute("PRAGMA user_version = 7")
            }
            for readOnly in [false, true] {
                let error = try #require(throws: SQLiteError.self) {
                    _ = try TelemetryStore(directory: directory, readOnly: readOnly)
                }
                #expect(error.message.contains("schema version 7, newer than version 2"))
                #expect(error.description.contains("upgrade"))
                #expect(error.description.hasSuffix("checking the schema version of \(directory)/telemetry.db"))
            }
            let db = try SQLiteDatabase(path: directory + "/telemetry.db")
            #expect(try scalar(db, "PRAGMA user_version") == 7, "left untouched")
        }
    }

    @Test func aGarbageFileIsReportedAsNotADatabase() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/telemetry.db"
            let garbage = [UInt8](repeating: 0x5A, count: 8_192)
            try writeFile(path, garbage)
            for readOnly in [false, true] {
                let error = try #require(throws: SQLiteError.self) {
                    _ = try TelemetryStore(directory: directory, readOnly: readOnly)
                }
                #expect(error.isCorrupt)
                #expect(error.code == 26)  // SQLITE_NOTADB
                #expect(error.description.contains("file is not a database"))
                #expect(error.description.hasSuffix(" " + path))
            }
            #expect(readFile(path) == garbage, "the file is not modified")
        }
    }

    @Test func aForeignDatabaseIsNotTouched() throws {
        try withTemporaryDirectory { directory in
            do {
                let db = try SQLiteDatabase(path: directory + "/telemetry.db")
                try db.execute("CREATE TABLE customers(name TEXT)")
            }
            let error = try #require(throws: SQLiteError.self) { _ = try TelemetryStore(directory: directory) }
            #expect(error.message.contains("telemetryd did not create"))
            let db = try SQLiteDatabase(path: directory + "/telemetry.db")
            #expect(try scalar(db, "SELECT count(*) FROM sqlite_schema") == 1)
        }
    }

    // MARK: Commit

    @Test func commitAppendsTheChunkAndInsertsDocumentsInOneTransaction() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(journalChunk: (1, bytes("a\nb\n")), documents: [document(1), document(2)]))
            try store.commit(StoreBatch(journalChunk: (2, bytes("c\n"))))
            let chunks = try journal(store)
            #expect(chunks.map(\.0) == [1, 2])
            #expect(chunks.map(\.1) == [bytes("a\nb\n"), bytes("c\n")])
            #expect(try store.document(executionID: executionID(1)) == document(1))
            #expect(try store.document(executionID: executionID(2)) == document(2))
            #expect(try store.document(executionID: executionID(3)) == nil)
            #expect(store.database.isAutocommit)
        }
    }

    @Test func anEmptyBatchWritesNothing() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch())
            try store.commit(StoreBatch(journalChunk: (1, [])))  // an empty chunk is stored as an empty blob
            #expect(try journal(store).map(\.1) == [[]])
        }
    }

    @Test func commitPrunesBelowTheWatermarkAfterAppending() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            for sequence in Int64(1)...5 {
                try store.commit(StoreBatch(journalChunk: (sequence, bytes("chunk \(sequence)"))))
            }
            try store.commit(StoreBatch(journalChunk: (6, bytes("chunk 6")), pruneJournalBelow: 4))
            #expect(try journal(store).map(\.0) == [4, 5, 6])
            try store.commit(StoreBatch(pruneJournalBelow: 2))  // below what is left: nothing happens
            #expect(try journal(store).map(\.0) == [4, 5, 6])
            try store.commit(StoreBatch(journalChunk: (7, bytes("chunk 7")), pruneJournalBelow: 8))
            #expect(try journal(store).isEmpty, "the watermark applies to the chunk of the same batch too")
        }
    }

    @Test func documentsAreInsertedIdempotently() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(documents: [document(1, status: "success")]))
            try store.commit(StoreBatch(documents: [document(1, status: "failure"), document(2),
                                                    document(2, status: "failure")]))
            #expect(try store.statistics().documentCount == 2)
            #expect(try store.document(executionID: executionID(1))?.status == "success", "the first one wins")
            #expect(try store.document(executionID: executionID(2))?.status == "success")
            let sequences = try store.documentSummaries(limit: 10, script: nil).map(\.sequence)
            #expect(sequences.count == 2 && sequences[0] > sequences[1], "increasing; ignored inserts may leave gaps")
        }
    }

    @Test func aRetriedChunkReplacesTheStoredOne() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(journalChunk: (7, bytes("a\n")), documents: [document(1)]))
            // The daemon retries a batch whose commit it believes failed, with more lines appended.
            try store.commit(StoreBatch(journalChunk: (7, bytes("a\nb\n")), documents: [document(1)]))
            let chunks = try journal(store)
            #expect(chunks.count == 1)
            #expect(chunks.first?.1 == bytes("a\nb\n"))
            #expect(try store.statistics().documentCount == 1)
        }
    }

    @Test func aFailedCommitWritesNothingAndSaysWhereAndWhat() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(journalChunk: (1, bytes("kept")), documents: [document(1)]))
            // Simulate a full disk: cap the database at its current size.
            let pages = try scalar(store.database, "PRAGMA page_count")
            try store.database.execute("PRAGMA max_page_count = \(pages)")
            let big = [UInt8](repeating: 0x41, count: 1_000_000)
            let batch = StoreBatch(journalChunk: (2, big), documents: [document(2)], pruneJournalBelow: 2)
            let error = try #require(throws: SQLiteError.self) { try store.commit(batch) }
            #expect(error.isDiskFull)
            #expect(error.description == "SQLite error 13 (database or disk is full) while committing journal "
                + "chunk 2 (1000000 bytes), 1 document, pruning the journal below 2 to \(store.path)")
            #expect(store.database.isAutocommit, "no transaction is left open")
            #expect(try journal(store).map(\.0) == [1], "nothing of the batch was written, the prune neither")
            #expect(try store.existingDocuments(among: [executionID(2)]).isEmpty)

            // Once there is room again, the same batch commits.
            try store.database.execute("PRAGMA max_page_count = 1000000")
            try store.commit(batch)
            #expect(try journal(store).map(\.0) == [2])
            #expect(try store.existingDocuments(among: [executionID(2)]) == [executionID(2)])
        }
    }

    // MARK: Journal

    @Test func nextJournalSequenceFollowsTheHighestChunkAcrossReopen() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try TelemetryStore(directory: directory)
                #expect(try store.nextJournalSequence() == 1)
                try store.commit(StoreBatch(journalChunk: (3, bytes("x"))))
                try store.commit(StoreBatch(journalChunk: (4, bytes("y"))))
                #expect(try store.nextJournalSequence() == 5)
            }
            let store = try TelemetryStore(directory: directory)
            #expect(try store.nextJournalSequence() == 5)
            try store.commit(StoreBatch(pruneJournalBelow: 5))
            #expect(try store.nextJournalSequence() == 1, "max(sequence) + 1, or 1 when the journal is empty")
        }
    }

    @Test func forEachJournalChunkYieldsAscendingSequences() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            for sequence: Int64 in [3, 1, 2, 10] {
                try store.commit(StoreBatch(journalChunk: (sequence, bytes("chunk \(sequence)"))))
            }
            try store.commit(StoreBatch(documents: [document(1)]))
            var seen: [(Int64, [UInt8])] = []
            try store.forEachJournalChunk { sequence, chunk in
                seen.append((sequence, chunk))
                // The store stays usable from inside the callback.
                let found = try store.existingDocuments(among: [executionID(1)])
                #expect(found == [executionID(1)])
            }
            #expect(seen.map(\.0) == [1, 2, 3, 10])
            #expect(seen.map(\.1) == [1, 2, 3, 10].map { bytes("chunk \($0)") })

            struct Stop: Error {}
            var calls = 0
            #expect(throws: Stop.self) {
                try store.forEachJournalChunk { _, _ in
                    calls += 1
                    throw Stop()
                }
            }
            #expect(calls == 1)
            try store.commit(StoreBatch(journalChunk: (11, bytes("after"))))  // nothing left locked
        }
    }

    // MARK: Documents

    @Test func existingDocumentsReportsOnlyStoredIDs() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(documents: [document(1), document(2), document(3)]))
            #expect(try store.existingDocuments(among: []) == [])
            #expect(try store.existingDocuments(among: [executionID(9)]) == [])
            #expect(try store.existingDocuments(among: [executionID(3), executionID(9), executionID(1), executionID(3)])
                == [executionID(1), executionID(3)])
            try store.commit(StoreBatch(documents: [document(0xabc)]))
            #expect(try store.existingDocuments(among: [executionID(0xabc).uppercased()]) == [], "ids match exactly")
            #expect(try store.existingDocuments(among: [executionID(0xabc)]) == [executionID(0xabc)])
            let many = (0..<5_000).map(executionID)
            #expect(try store.existingDocuments(among: many)
                == [executionID(1), executionID(2), executionID(3), executionID(0xabc)])
        }
    }

    @Test func summariesAreNewestFirstWithLimitAndScriptFilter() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(documents: [document(1, script: "a.sh"), document(2, script: "b.sh")]))
            try store.commit(StoreBatch(documents: [document(3, script: "a.sh", status: "failure"),
                                                    document(4, script: "b.sh"),
                                                    document(5, script: "a.sh", body: "{}")]))
            let all = try store.documentSummaries(limit: 100, script: nil)
            #expect(all.map(\.executionID) == [5, 4, 3, 2, 1].map(executionID))
            #expect(all.map(\.sequence) == [5, 4, 3, 2, 1])
            #expect(all[0] == DocumentSummary(sequence: 5, executionID: executionID(5), scriptName: "a.sh",
                                              status: "success", startedAt: document(5).startedAt,
                                              completedAt: document(5).completedAt, bodyBytes: 2))
            #expect(all[2].status == "failure")
            #expect(all[4].bodyBytes == document(1).body.count)
            #expect(try store.documentSummaries(limit: 2, script: nil).map(\.sequence) == [5, 4])
            #expect(try store.documentSummaries(limit: 10, script: "a.sh").map(\.sequence) == [5, 3, 1])
            #expect(try store.documentSummaries(limit: 1, script: "b.sh").map(\.sequence) == [4])
            #expect(try store.documentSummaries(limit: 10, script: "c.sh").isEmpty)
            #expect(try store.documentSummaries(limit: 0, script: nil).isEmpty)
        }
    }

    @Test func retentionDeletesDocumentsCompletedBeforeTheCutoff() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(documents: [document(1, completedAt: 100), document(2, completedAt: 200),
                                                    document(3, completedAt: 300)]))
            #expect(try store.deleteDocuments(completedBefore: 200) == 1)
            #expect(try store.deleteDocuments(completedBefore: 200) == 0)
            #expect(try store.documentSummaries(limit: 10, script: nil).map(\.executionID)
                == [executionID(3), executionID(2)])
            #expect(try store.deleteDocuments(completedBefore: 1_000) == 2)
            #expect(try store.statistics().documentCount == 0)
            // Sequences are never reused, even after the newest rows were deleted (what a forwarder relies on).
            try store.commit(StoreBatch(documents: [document(4)]))
            #expect(try store.documentSummaries(limit: 1, script: nil).first?.sequence == 4)
        }
    }

    @Test func statisticsCountRowsBytesAndFiles() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.commit(StoreBatch(journalChunk: (1, [UInt8](repeating: 1, count: 100_000)),
                                        documents: [document(1), document(2)]))
            try store.commit(StoreBatch(journalChunk: (2, [UInt8](repeating: 2, count: 50))))
            let statistics = try store.statistics()
            #expect(statistics.documentCount == 2)
            #expect(statistics.journalChunkCount == 2)
            #expect(statistics.journalBytes == 100_050)
            #expect(statistics.fileBytes >= 100_050)
        }
    }

    @Test func checkWritableCommitsAHeartbeat() throws {
        try withTemporaryDirectory { directory in
            let store = try TelemetryStore(directory: directory)
            try store.checkWritable()
            let first = try scalar(store.database, "SELECT value FROM meta WHERE key = 'heartbeat'")
            #expect(first > 1_700_000_000_000_000)
            try store.checkWritable()
            #expect(try scalar(store.database, "SELECT count(*) FROM meta WHERE key = 'heartbeat'") == 1)
            // Committed, not just written: another connection sees it.
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            #expect(try scalar(reader.database, "SELECT value FROM meta WHERE key = 'heartbeat'") >= first)
        }
    }

    // MARK: Read-only

    @Test func aReadOnlyStoreSeesTheWritersCommits() throws {
        try withTemporaryDirectory { directory in
            let writer = try TelemetryStore(directory: directory)
            try writer.commit(StoreBatch(journalChunk: (1, bytes("one")), documents: [document(1)]))
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            #expect(reader.isReadOnly)
            #expect(try reader.statistics().documentCount == 1)

            // The writer keeps committing while the reader is open.
            try writer.commit(StoreBatch(journalChunk: (2, bytes("two")), documents: [document(2)]))
            #expect(try reader.document(executionID: executionID(2)) == document(2))
            #expect(try reader.documentSummaries(limit: 10, script: nil).count == 2)
            #expect(try reader.existingDocuments(among: [executionID(1), executionID(2)]).count == 2)
            #expect(try reader.nextJournalSequence() == 3)
            #expect(try journal(reader).map(\.0) == [1, 2])
            try writer.checkWritable()

            let error = try #require(throws: SQLiteError.self) {
                try reader.commit(StoreBatch(documents: [document(3)]))
            }
            #expect(error.isReadOnly)
            #expect(error.description.contains(reader.path))
            #expect(try #require(throws: SQLiteError.self) { try reader.checkWritable() }.isReadOnly)
            #expect(try #require(throws: SQLiteError.self) {
                _ = try reader.deleteDocuments(completedBefore: .max)
            }.isReadOnly)
            #expect(try writer.statistics().documentCount == 2)
        }
    }

    @Test func aReaderAndTheWriterRunConcurrently() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeRecursively(directory) }
        _ = try TelemetryStore(directory: directory)
        let commits = 150
        let writer = Task.detached { () throws -> Int in
            let store = try TelemetryStore(directory: directory)
            let chunk = [UInt8](repeating: 0x6C, count: 256 * 1024)
            for n in 1...commits {
                try store.commit(StoreBatch(journalChunk: (Int64(n), chunk), documents: [document(n)],
                                            pruneJournalBelow: Int64(n) - 1))
            }
            return commits
        }
        let reader = Task.detached { () throws -> (reads: Int, monotonic: Bool, consistent: Bool) in
            let store = try TelemetryStore(directory: directory, readOnly: true)
            var reads = 0, last = 0, monotonic = true, consistent = true
            while last < commits && reads < 100_000 {
                let statistics = try store.statistics()
                monotonic = monotonic && statistics.documentCount >= last
                last = statistics.documentCount
                // Each snapshot holds at most the two newest chunks, in order, each complete.
                var sequences: [Int64] = []
                try store.forEachJournalChunk { sequence, bytes in
                    sequences.append(sequence)
                    consistent = consistent && bytes.count == 256 * 1024
                }
                consistent = consistent && sequences.count <= 2 && sequences == sequences.sorted()
                _ = try store.documentSummaries(limit: 5, script: nil)
                reads += 1
            }
            return (reads, monotonic, consistent)
        }
        #expect(try await writer.value == commits)
        let result = try await reader.value
        #expect(result.reads < 100_000, "the reader saw every commit")
        #expect(result.monotonic && result.consistent)
    }

    @Test func aReadOnlyStoreOpensAfterTheWriterClosed() throws {
        try withTemporaryDirectory { directory in
            do {
                let writer = try TelemetryStore(directory: directory)
                try writer.commit(StoreBatch(journalChunk: (1, bytes("one")), documents: [document(1)]))
            }
            let reader = try TelemetryStore(directory: directory, readOnly: true)
            #expect(try reader.document(executionID: executionID(1)) == document(1))
            #expect(try journal(reader).map(\.0) == [1])
        }
    }

    @Test func aReadOnlyStoreCreatesNothing() throws {
        try withTemporaryDirectory { base in
            let directory = base + "/absent"
            let error = try #require(throws: SQLiteError.self) {
                _ = try TelemetryStore(directory: directory, readOnly: true)
            }
            #expect(error.code == 14)  // SQLITE_CANTOPEN
            #expect(error.description.contains("opening \(directory)/telemetry.db"))
            #expect(!fileExists(directory))

            // An empty database file (no schema yet) is not initialized by a reader either.
            try writeFile(base + "/telemetry.db", [])
            let empty = try #require(throws: SQLiteError.self) { _ = try TelemetryStore(directory: base, readOnly: true) }
            #expect(empty.message.contains("no telemetryd schema yet"))
            #expect(readFile(base + "/telemetry.db") == [])
        }
    }
}
