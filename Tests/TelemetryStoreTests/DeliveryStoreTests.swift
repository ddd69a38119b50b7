import Testing
@testable import TelemetryStore

#if canImport(Glibc)
import Glibc
#endif

private func withStore(_ body: (TelemetryStore, String) throws -> Void) throws {
    var template = Array("/tmp/telemetry-delivery-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    defer { _ = system("rm -rf '\(directory)'") }
    let store = try TelemetryStore(directory: directory, synchronous: .normal)
    store.enqueuesForDelivery = true
    try body(store, directory)
}

private func documents(_ range: ClosedRange<Int>, size: Int = 10) -> [StoredDocument] {
    range.map { index in
        StoredDocument(executionID: "00000000-0000-4000-8000-\(String(index).leftPadded(to: 12))", scriptName: "s",
                       status: "success", startedAt: Int64(index), completedAt: Int64(index) * 1_000,
                       body: Array("{\"n\":\(index)}".utf8) + [UInt8](repeating: 0x20, count: size))
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite("Delivery bookkeeping in the store")
struct DeliveryStoreTests {
    @Test("batches take the oldest pending documents, capped by count and bytes, and survive a reopen with their id")
    func batching() throws {
        try withStore { store, directory in
            try store.commit(StoreBatch(documents: documents(1...5, size: 100)))
            #expect(try store.deliveryBacklog() == DeliveryBacklog(pendingDocuments: 5,
                                                                 oldestCompletedAt: 1_000, hasOpenBatch: false))
            let first = try #require(try store.createBatch(id: "batch-1", maxDocuments: 3, maxBytes: 250, now: 7))
            #expect(first.documents.map(\.sequence) == [1, 2], "the byte cap stops at two documents of 107 bytes")
            #expect(try store.deliveryBacklog().hasOpenBatch)
            let reopened = try TelemetryStore(directory: directory, synchronous: .normal)
            let open = try #require(try reopened.openBatch())
            #expect(open.id == "batch-1" && open.documents.map(\.sequence) == [1, 2], "same batch, same key after a restart")
            try reopened.recordAttempt(batchID: "batch-1", at: 8, error: "503")
            #expect(try reopened.openBatch()?.attempts == 1)
            try reopened.markDelivered(batchID: "batch-1", at: 9)
            #expect(try reopened.openBatch() == nil)
            let second = try #require(try reopened.createBatch(id: "batch-2", maxDocuments: 10, maxBytes: 1, now: 10))
            #expect(second.documents.map(\.sequence) == [3], "one document always fits, whatever the byte cap")
            #expect(try reopened.deliveryBacklog().pendingDocuments == 3)
        }
    }

    @Test("dead letters are listed, replayed into a new batch, or purged")
    func deadLetters() throws {
        try withStore { store, _ in
            try store.commit(StoreBatch(documents: documents(1...4)))
            _ = try store.createBatch(id: "bad", maxDocuments: 2, maxBytes: 1 << 20, now: 1)
            try store.deadLetter(batchID: "bad", status: 400, response: "bad schema", at: 2)
            #expect(try store.deadLetters() == [DeadLetter(batchID: "bad", documentCount: 2, status: 400,
                                                           responseExcerpt: "bad schema", deadAt: 2)])
            #expect(try store.openBatch() == nil, "a dead batch is not resent")
            #expect(try store.deliveryBacklog().pendingDocuments == 2)
            #expect(try store.replayDeadLetters(batchID: "bad") == 2)
            #expect(try store.deadLetters().isEmpty)
            #expect(try store.deliveryBacklog().pendingDocuments == 4)
            _ = try store.createBatch(id: "bad-again", maxDocuments: 4, maxBytes: 1 << 20, now: 3)
            try store.deadLetter(batchID: "bad-again", status: 422, response: "nope", at: 4)
            #expect(try store.purgeDeadLetters(batchID: nil) == 4)
            #expect(try store.statistics().documentCount == 0)
        }
    }

    @Test("retention and the size cap only ever delete delivered documents")
    func onlyDeliveredAreDeleted() throws {
        try withStore { store, _ in
            try store.commit(StoreBatch(documents: documents(1...4)))
            _ = try store.createBatch(id: "b", maxDocuments: 2, maxBytes: 1 << 20, now: 1)
            try store.markDelivered(batchID: "b", at: 2)
            #expect(try store.deleteDeliveredDocuments(completedBefore: 10_000) == 2)
            #expect(try store.deleteOldestDelivered(limit: 10) == 0)
            #expect(try store.statistics().documentCount == 2)
        }
    }
}

@Suite("Delivery store across connections")
struct DeliveryStoreConnectionTests {
    @Test("a second read-write connection (the forwarder's) sees documents the writer commits later")
    func forwarderSeesWriterCommits() throws {
        try withStore { writer, directory in
            let forwarder = try TelemetryStore(directory: directory, synchronous: .normal)
            #expect(try forwarder.deliveryBacklog().pendingDocuments == 0)
            try writer.commit(StoreBatch(documents: documents(1...2)))
            #expect(try forwarder.deliveryBacklog().pendingDocuments == 2)
            #expect(try forwarder.openBatch() == nil)
            let batch = try #require(try forwarder.createBatch(id: "x", maxDocuments: 10, maxBytes: 1 << 20, now: 1))
            #expect(batch.documents.count == 2)
        }
    }
}
