import Logging
import Testing
@testable import TelemetryDaemon
import TelemetryStore

#if canImport(Glibc)
import Glibc
#endif

private func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : -1
}

private func documents(_ count: Int, from first: Int) -> [StoredDocument] {
    (first..<(first + count)).map { index in
        let digits = String(index)
        let id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - digits.count) + digits
        return StoredDocument(executionID: id, scriptName: "s", status: "success", startedAt: 1, completedAt: 2,
                              body: Array("{\"n\":\(index)}".utf8) + [UInt8](repeating: 0x20, count: 20_000))
    }
}

/// A writer connection as the daemon opens it and a started checkpointer with `policy`, on a fresh store.
private struct Fixture {
    let directory = TemporaryDirectory()
    let writerStore: TelemetryStore
    let checkpointer: StoreCheckpointer
    var database: String { directory.path + "/telemetry.db" }

    init(_ policy: StoreCheckpointer.Policy = .init()) throws {
        writerStore = try TelemetryStore(directory: directory.path, synchronous: .normal,
                                         autocheckpointBytes: StoreCheckpointer.writerAutocheckpointBytes)
        checkpointer = StoreCheckpointer(store: try TelemetryStore(directory: directory.path, synchronous: .normal),
                                         logger: Logger(label: "test"), policy: policy)
        checkpointer.start()
    }

    /// Waits up to 5 s for the database file to reach `size` bytes.
    func waitForDatabase(atLeast size: Int) {
        var waited = 0
        while fileSize(database) < size && waited < 100 {
            usleep(50_000)
            waited += 1
        }
    }
}

@Suite("WAL checkpoints off the writer thread")
struct StoreCheckpointerTests {
    @Test("during a burst the WAL is copied into the database file only once burstBytes were committed")
    func checkpointsWhenTheWriterReportsEnoughBytes() throws {
        let fixture = try Fixture(.init(burstBytes: 1_000_000, idleBytes: 1_000_000, idleSeconds: 60))
        let (writerStore, checkpointer) = (fixture.writerStore, fixture.checkpointer)
        defer { checkpointer.stop() }
        let database = fixture.database
        let before = fileSize(database)
        try writerStore.commit(StoreBatch(documents: documents(100, from: 0)))
        #expect(fileSize(fixture.database + "-wal") > 2_000_000, "the commit went to the WAL")
        #expect(fileSize(database) == before, "no checkpoint inside the commit")

        checkpointer.committed(bytes: 999_999)  // below the threshold: nothing happens
        usleep(200_000)
        #expect(fileSize(database) == before)

        checkpointer.committed(bytes: 1)
        fixture.waitForDatabase(atLeast: before + 2_000_000)
        #expect(fileSize(database) >= before + 2_000_000, "the checkpoint copied the documents into the database file")
        // What was checkpointed is readable through a fresh connection.
        let reader = try TelemetryStore(directory: fixture.directory.path, synchronous: .normal, readOnly: true)
        #expect(try reader.documentSummaries(limit: 1_000, script: nil).count == 100)
    }

    @Test("once the writer is idle, what it committed is checkpointed")
    func checkpointsWhenIdle() throws {
        let fixture = try Fixture(.init(burstBytes: 1 << 40, idleBytes: 1_000, idleSeconds: 0.3))
        let (writerStore, checkpointer) = (fixture.writerStore, fixture.checkpointer)
        defer { checkpointer.stop() }
        let database = fixture.database
        let before = fileSize(database)
        try writerStore.commit(StoreBatch(documents: documents(20, from: 2_000)))
        checkpointer.committed(bytes: 500)  // below idleBytes: never checkpointed on its own
        usleep(600_000)
        #expect(fileSize(database) == before)
        try writerStore.commit(StoreBatch(documents: documents(20, from: 3_000)))
        checkpointer.committed(bytes: 500)
        usleep(100_000)
        #expect(fileSize(database) == before, "not before the writer has been idle for idleSeconds")
        fixture.waitForDatabase(atLeast: before + 500_000)
        #expect(fileSize(database) >= before + 500_000)
    }

    @Test("stop runs a last checkpoint")
    func stopCheckpoints() throws {
        let fixture = try Fixture()
        let (writerStore, checkpointer) = (fixture.writerStore, fixture.checkpointer)
        let before = fileSize(fixture.database)
        try writerStore.commit(StoreBatch(documents: documents(50, from: 1_000)))
        checkpointer.stop()
        #expect(fileSize(fixture.database) >= before + 1_000_000)
    }
}
