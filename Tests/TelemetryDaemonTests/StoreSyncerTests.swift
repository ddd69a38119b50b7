import Dispatch
import Logging
import Synchronization
import Testing
@testable import TelemetryDaemon
import TelemetryCore
import TelemetryStore

#if canImport(Glibc)
import Glibc
#endif

/// The answers flush callbacks received, in order.
private final class Answers: Sendable {
    private let list = Mutex<[String]>([])
    var all: [String] { list.withLock { $0 } }

    /// A flush callback that records its answer under `name` and signals `answered`.
    func recorder(_ name: String, signalling answered: DispatchSemaphore? = nil) -> StoreSyncer.Callback {
        { result in
            let answer: String
            switch result {
            case .success: answer = "\(name): durable"
            case .failure(let error): answer = "\(name): \(error)"
            }
            self.list.withLock { $0.append(answer) }
            answered?.signal()
        }
    }
}

private func ioError(_ path: String) -> SQLiteError {
    SQLiteError(code: 10, message: "fdatasync failed", operation: "making commits durable in",
                path: path, systemErrno: EIO)
}

/// A syncer for the store in `directory` whose every fsync fails with EIO.
private func failingSyncer(_ directory: TemporaryDirectory) -> StoreSyncer {
    let walPath = directory.path + "/telemetry.db-wal"
    return StoreSyncer(path: walPath, logger: Logger(label: "test")) { () throws(SQLiteError) in throw ioError(walPath) }
}

@Suite("Commits made durable off the writer thread")
struct StoreSyncerTests {
    @Test("a flush is answered only after an fsync that began after its commit; commits during one fsync share the next")
    func answersAfterTheCoveringSync() {
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let syncs = Mutex(0)
        let syncer = StoreSyncer(path: "test.db-wal", logger: Logger(label: "test")) { () throws(SQLiteError) in
            syncs.withLock { $0 += 1 }
            started.signal()
            release.wait()
        }
        let answers = Answers()
        syncer.start()

        syncer.committed(answering: [answers.recorder("first")])
        started.wait()  // the fsync of the first commit is running
        syncer.committed(answering: [answers.recorder("second")])
        syncer.committed(answering: [answers.recorder("third")])
        #expect(answers.all.isEmpty, "nothing is answered before its fsync ends")

        release.signal()
        started.wait()  // the next fsync began: the first one ended and its flush was answered
        #expect(answers.all == ["first: durable"])

        release.signal()
        syncer.stop()
        #expect(answers.all == ["first: durable", "second: durable", "third: durable"])
        #expect(syncs.withLock { $0 } == 2, "the two commits made during the first fsync shared one")
    }

    @Test("a commit with no flush waiting is synced too, and stop syncs what is left")
    func syncsEveryCommit() {
        let syncs = Mutex(0)
        let synced = DispatchSemaphore(value: 0)
        let syncer = StoreSyncer(path: "test.db-wal", logger: Logger(label: "test")) { () throws(SQLiteError) in
            syncs.withLock { $0 += 1 }
            synced.signal()
        }
        syncer.start()
        syncer.committed(answering: [])
        synced.wait()
        #expect(syncs.withLock { $0 } == 1)

        let answers = Answers()
        syncer.committed(answering: [answers.recorder("last")])
        syncer.stop()
        #expect(answers.all == ["last: durable"], "stop returns after the last commit's fsync and answer")
        #expect(syncs.withLock { $0 } == 2)
    }

    @Test("a failed fsync fails its flushes with the error, and every later one too, without another fsync")
    func failedSyncIsFinal() {
        let attempts = Mutex(0)
        let syncer = StoreSyncer(path: "/state/telemetry.db-wal", logger: Logger(label: "test")) { () throws(SQLiteError) in
            attempts.withLock { $0 += 1 }
            throw ioError("/state/telemetry.db-wal")
        }
        let failures = Mutex<[String]>([])
        syncer.onFailure = { message in failures.withLock { $0.append(message) } }
        let answers = Answers()
        let answered = DispatchSemaphore(value: 0)
        syncer.start()
        defer { syncer.stop() }

        syncer.committed(answering: [answers.recorder("flush", signalling: answered)])
        answered.wait()
        let failed = answers.all
        #expect(failed.count == 1)
        #expect(failed.first?.contains("flush: the store could not confirm its commits on disk (fsync failed): ") == true)
        #expect(failed.first?.contains("fdatasync failed; errno 5: Input/output error") == true)
        #expect(failed.first?.contains("/state/telemetry.db-wal") == true)
        #expect(failed.first?.contains("until telemetryd is restarted") == true)

        // A later fsync might succeed without the pages the kernel dropped: nothing is confirmed any more.
        syncer.committed(answering: [answers.recorder("later", signalling: answered)])
        answered.wait()
        #expect(answers.all.last?.hasPrefix("later: the store could not confirm its commits on disk (fsync failed): ") == true)
        #expect(attempts.withLock { $0 } == 1, "no fsync after the failure")
        #expect(failures.withLock { $0.count } == 1, "reported once")
    }

    @Test("an fsync under way shows as the time it has taken, and as nothing once it returned")
    func reportsAHangingSync() {
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let syncer = StoreSyncer(path: "test.db-wal", logger: Logger(label: "test")) { () throws(SQLiteError) in
            started.signal()
            release.wait()
        }
        syncer.start()
        #expect(syncer.secondsInCurrentSync == 0)
        syncer.committed(answering: [])
        started.wait()
        #expect(syncer.secondsInCurrentSync > 0)
        release.signal()
        syncer.stop()
        #expect(syncer.secondsInCurrentSync == 0)
    }

    @Test("an idle writer asks for no fsync: only commits, and store work with a reply, do")
    func idleWriterDoesNotSync() async throws {
        let directory = TemporaryDirectory()
        let syncs = Mutex(0)
        let syncer = StoreSyncer(path: directory.path + "/telemetry.db-wal", logger: Logger(label: "test")) {
            () throws(SQLiteError) in syncs.withLock { $0 += 1 }
        }
        let (writer, _) = try makeWriter(directory, syncer: syncer)
        writer.start()
        defer { writer.stop() }
        var lines = Lines("44444444-4444-4444-8444-444444444444")
        writer.submit(try batch([lines.start("idle"), lines.end(0)]))
        _ = await writer.flush()
        let afterCommit = syncs.withLock { $0 }
        // The writer comes round once a second while idle (idle timeouts, retention): no fsync for that.
        try await Task.sleep(for: .milliseconds(2_200))
        #expect(syncs.withLock { $0 } == afterCommit)
    }

    @Test("store work of a control request is answered after the fsync, with its verdict")
    func maintenanceWaitsForTheSync() async throws {
        let directory = TemporaryDirectory()
        let (writer, _) = try makeWriter(directory, syncer: failingSyncer(directory))
        writer.start()
        defer { writer.stop() }
        let verdict = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            writer.withStore { _ in
                { result in
                    switch result {
                    case .success: continuation.resume(returning: "durable")
                    case .failure(let error): continuation.resume(returning: "\(error)")
                    }
                }
            }
        }
        #expect(verdict.contains("fdatasync failed"), "the reply waited for the fsync and carries its failure")
    }

    @Test("the ingest writer answers a flush with the syncer's verdict and counts a failed fsync as a failed commit")
    func writerWaitsForTheSync() async throws {
        let directory = TemporaryDirectory()
        let counters = DaemonCounters()
        let (writer, _) = try makeWriter(directory, counters: counters, syncer: failingSyncer(directory))
        writer.start()
        defer { writer.stop() }
        var lines = Lines("22222222-2222-4222-8222-222222222222")
        writer.submit(try batch([lines.start("deploy"), lines.info("one"), lines.end(0)]))
        let result = await writer.flush()
        guard case .failure(let error) = result else {
            Issue.record("a flush whose fsync failed was answered as durable")
            return
        }
        #expect("\(error)".contains("fdatasync failed; errno 5: Input/output error"))
        #expect(counters.snapshot.commitFailures >= 1)
        #expect(counters.snapshot.storeError?.contains("fdatasync failed") == true)
        #expect(counters.snapshot.durabilityFailure != nil, "stays set: only a restart clears it")
    }
}

@Suite("The WAL file, synced through a descriptor of its own")
struct WALFileTests {
    @Test("syncs the WAL of an open store; a missing WAL is an error that names the file and errno; a replaced one too")
    func syncs() throws {
        let directory = TemporaryDirectory()
        let store = try TelemetryStore(directory: directory.path, synchronous: .normal)
        try store.commit(StoreBatch(documents: []))
        try WALFile(databasePath: store.path).sync()

        let missing = WALFile(databasePath: directory.path + "/other.db")
        do {
            try missing.sync()
            Issue.record("a missing WAL file was synced")
        } catch {
            #expect(error.systemErrno == ENOENT)
            #expect(error.description.contains("cannot find the WAL file"))
            #expect(error.description.contains(directory.path + "/other.db-wal"))
        }
        let created = open(directory.path + "/other.db-wal", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        #expect(created >= 0)
        close(created)
        try missing.sync()

        // Replaced behind the store's back: an fsync of the new file would confirm nothing.
        unlink(directory.path + "/other.db-wal")
        let replacement = open(directory.path + "/other.db-wal", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        close(replacement)
        do {
            try missing.sync()
            Issue.record("a replaced WAL file was synced")
        } catch {
            #expect(error.description.contains("replaced or removed"))
        }
    }
}
