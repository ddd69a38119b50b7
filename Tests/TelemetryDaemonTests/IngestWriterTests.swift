import Logging
import Testing
@testable import TelemetryDaemon
import TelemetryCore
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// A fresh state directory per test, removed afterwards.
final class TemporaryDirectory {
    let path: String
    init() {
        var template = Array("/tmp/telemetryd-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    deinit { _ = system("rm -rf '\(path)'") }
}

struct Lines {
    let id: ExecutionID
    var clock: Int64 = 1_732_870_000

    init(_ id: String) { self.id = ExecutionID(id)! }

    mutating func next(_ kind: String, _ fields: String) -> String {
        clock += 1
        return #"{"v":1,"kind":"\#(kind)","execution_id":"\#(id)","ts":\#(clock)\#(fields.isEmpty ? "" : ",")\#(fields)}"#
    }
    mutating func start(_ script: String) -> String { next("start", #""script":"\#(script)","version":"1.0""#) }
    mutating func info(_ message: String) -> String { next("event", #""level":"info","operation":"op","message":"\#(message)""#) }
    mutating func end(_ code: Int) -> String { next("end", #""exit_code":\#(code)"#) }
}

func batch(_ lines: [String], uid: UInt32 = 1000) throws -> IngestBatch {
    var batch = IngestBatch()
    for line in lines {
        let bytes = Array(line.utf8)
        try bytes.withUnsafeBytes { raw in
            let parsed = try WireParser.parseLine(raw)
            if case .control = parsed { Issue.record("not a data line"); return }
            batch.append(parsed, json: raw, sender: SenderIdentity(uid: uid, pid: 1), receivedAt: Timestamp.now())
        }
    }
    return batch
}

func makeWriter(_ directory: TemporaryDirectory, counters: DaemonCounters = DaemonCounters(),
                limits: AggregationLimits = AggregationLimits(), syncer: StoreSyncer? = nil)
    throws -> (IngestWriter, TelemetryStore) {
    let store = try TelemetryStore(directory: directory.path, synchronous: .normal)
    let writer = try IngestWriter(
        store: store,
        settings: .init(limits: limits, host: "test-host", commitIntervalMicroseconds: 1_000),
        anonymizer: UserAnonymizer(key: Array(repeating: 7, count: 32)), counters: counters,
        logger: Logger(label: "test"), syncer: syncer)
    return (writer, store)
}

@Suite("Ingest writer")
struct IngestWriterTests {
    @Test("a completed execution becomes one document; flush confirms only after the commit")
    func completedExecution() async throws {
        let directory = TemporaryDirectory()
        let counters = DaemonCounters()
        let (writer, store) = try makeWriter(directory, counters: counters)
        writer.start()
        var lines = Lines("11111111-1111-4111-8111-111111111111")
        writer.submit(try batch([lines.start("deploy"), lines.info("one"), lines.end(0)]))
        let result = await writer.flush()
        #expect((try? result.get()) != nil)
        let document = try #require(try store.document(executionID: lines.id.description))
        let json = try JSONValue.parse(document.body)
        #expect(json["script_name"]?.stringValue == "deploy")
        #expect(json["host"]?.stringValue == "test-host")
        #expect(json["user_id"]?.stringValue?.hasPrefix("u_") == true)
        #expect(json["user_id"]?.stringValue?.contains("1000") == false)
        #expect(try store.statistics().journalChunkCount == 0, "a closed execution needs no journal")
        #expect(counters.snapshot.linesAccepted == 3)
        #expect(counters.snapshot.documentsStored == 1)
        writer.stop()
    }

    @Test("open executions are journaled and rebuilt by recovery after a restart")
    func recovery() async throws {
        let directory = TemporaryDirectory()
        var open = Lines("22222222-2222-4222-8222-222222222222")
        var done = Lines("33333333-3333-4333-8333-333333333333")
        do {
            let (writer, store) = try makeWriter(directory)
            writer.start()
            writer.submit(try batch([open.start("long-running"), done.start("short"), open.info("before crash"), done.end(0)]))
            _ = await writer.flush()
            #expect(try store.statistics().journalChunkCount == 1)
            #expect(try store.document(executionID: done.id.description) != nil)
            writer.stop()
        }
        let (writer, store) = try makeWriter(directory)
        let report = try writer.recover()
        #expect(report.reopened == 1)
        writer.start()
        writer.submit(try batch([open.info("after restart"), open.end(2)]))
        _ = await writer.flush()
        let document = try #require(try store.document(executionID: open.id.description))
        let json = try JSONValue.parse(document.body)
        #expect(json["script_name"]?.stringValue == "long-running")
        #expect(json["status"]?.stringValue == "failure")
        #expect(json["events"]?.arrayValue?.compactMap { $0["message"]?.stringValue } == ["before crash", "after restart"])
        #expect(try store.statistics().journalChunkCount == 0, "the journal is pruned once nothing open needs it")
        writer.stop()
    }

    @Test("lines for an execution that already closed are refused and counted")
    func lateLines() async throws {
        let directory = TemporaryDirectory()
        let counters = DaemonCounters()
        let (writer, store) = try makeWriter(directory, counters: counters)
        writer.start()
        var lines = Lines("44444444-4444-4444-8444-444444444444")
        writer.submit(try batch([lines.start("s"), lines.end(0)]))
        writer.submit(try batch([lines.info("too late")]))
        _ = await writer.flush()
        #expect(counters.snapshot.rejected[.executionClosed] == 1)
        let json = try JSONValue.parse(try #require(try store.document(executionID: lines.id.description)).body)
        #expect(json["events"]?.arrayValue?.isEmpty == true)
        writer.stop()

        // After a restart the in-memory memory of closed ids is gone: the store still refuses them.
        let restartedCounters = DaemonCounters()
        let (restarted, _) = try makeWriter(directory, counters: restartedCounters)
        restarted.start()
        restarted.submit(try batch([lines.info("much too late")]))
        _ = await restarted.flush()
        #expect(restartedCounters.snapshot.rejected[.executionClosed] == 1)
        #expect(restartedCounters.snapshot.openExecutions == 0)
        restarted.stop()
    }

    @Test("backpressure: submit reports a full queue and capacity returns once drained")
    func backpressure() async throws {
        let directory = TemporaryDirectory()
        let store = try TelemetryStore(directory: directory.path, synchronous: .normal)
        let writer = try IngestWriter(
            store: store,
            settings: .init(limits: AggregationLimits(), host: "h", commitIntervalMicroseconds: 1_000, maxQueuedBytes: 1_000),
            anonymizer: UserAnonymizer(key: Array(repeating: 1, count: 32)), counters: DaemonCounters(),
            logger: Logger(label: "test"))
        var lines = Lines("55555555-5555-4555-8555-555555555555")
        var many: [String] = [lines.start("s")]
        for index in 0..<20 { many.append(lines.info("line \(index)")) }
        #expect(writer.submit(try batch(many)) == false, "over the limit before the writer runs")
        await withCheckedContinuation { continuation in
            writer.whenCapacityAvailable { continuation.resume() }
            writer.start()
        }
        _ = await writer.flush()
        writer.stop()
    }

    @Test("stop commits what was queued")
    func stopCommits() throws {
        let directory = TemporaryDirectory()
        let (writer, store) = try makeWriter(directory)
        writer.start()
        var lines = Lines("66666666-6666-4666-8666-666666666666")
        writer.submit(try batch([lines.start("s"), lines.end(0)]))
        writer.stop()
        #expect(try store.document(executionID: lines.id.description) != nil)
    }
}

@Suite("Ingest writer with a full disk")
struct IngestWriterDiskFullTests {
    @Test("a full store fails flushes, keeps the data, pushes back on clients, and commits once there is room")
    func diskFull() async throws {
        let directory = TemporaryDirectory()
        let counters = DaemonCounters()
        let store = try TelemetryStore(directory: directory.path, synchronous: .normal)
        let (logger, log) = RecordingLogHandler.logger()
        let writer = try IngestWriter(
            store: store,
            settings: .init(limits: AggregationLimits(), host: "h", commitIntervalMicroseconds: 1_000, maxQueuedBytes: 4_096),
            anonymizer: UserAnonymizer(key: Array(repeating: 3, count: 32)), counters: counters,
            logger: logger)
        writer.start()
        writer.withStore { store in
            // Cap the database at its current size: every further commit fails like a full disk.
            _ = try? store.database.execute("PRAGMA max_page_count = 1")
            return nil
        }
        var open = Lines("77777777-7777-4777-8777-777777777777")
        var lines = [open.start("fills-the-disk")]
        for index in 0..<400 { lines.append(open.info("line \(index) with some padding to take room")) }
        writer.submit(try batch(lines))
        let failed = await writer.flush()
        guard case .failure(.storeFailed(let message)) = failed else {
            Issue.record("flush succeeded on a full store: \(failed)")
            return
        }
        #expect(message.contains("full"))
        #expect(counters.snapshot.commitFailures >= 1)
        // Over the retained-data bound the writer stops taking batches: submit reports no room.
        var closer = open
        var accepted = 0
        while accepted < 100, writer.submit(try batch([closer.info("more \(accepted)")])) { accepted += 1 }
        #expect(accepted < 100, "batches pile up in the bounded queue until submit reports no room")
        // Let the writer retry (and fail) once more before there is room: the log must not repeat the error.
        for _ in 0..<100 where counters.snapshot.commitFailures < 2 { try await Task.sleep(for: .milliseconds(20)) }

        writer.withStore { store in
            _ = try? store.database.execute("PRAGMA max_page_count = 1000000")
            return nil
        }
        var succeeded = false
        for _ in 0..<50 where !succeeded {
            if case .success = await writer.flush() { succeeded = true } else { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(succeeded, "the retained data commits once the store has room")
        // The journal tells the story once, not once per retry: the first failure, then the recovery.
        let failures = log.withMessageID(JournalMessageID.commitFailed)
        #expect(failures.count == 1)
        #expect(failures.first?.level == .error)
        #expect(failures.first?.metadata["error"]?.contains("full") == true)
        #expect(counters.snapshot.commitFailures >= 2, "retried meanwhile")
        #expect(log.all.filter { $0.level == .error }.count == 1, "retries within a minute are not logged again")
        let recovery = try #require(log.withMessageID(JournalMessageID.commitsRecovered).first)
        #expect(recovery.level == .notice)
        #expect(Int(recovery.metadata["failures"] ?? "") == Int(counters.snapshot.commitFailures))
        writer.submit(try batch([closer.end(0)]))
        _ = await writer.flush()
        let document = try #require(try store.document(executionID: open.id.description))
        let events = try JSONValue.parse(document.body)["events"]?.arrayValue ?? []
        #expect(events.count == 400 + accepted + 1, "nothing accepted before or during the outage is lost")
        writer.stop()
    }
}
