import Dispatch
import Logging
import NIOPosix
import Synchronization
import Testing
@testable import TelemetryDaemon
import TelemetryCore

#if canImport(Glibc)
import Glibc
#endif

private func text(_ fields: [[UInt8]]) -> [String] { fields.map { String(decoding: $0, as: UTF8.self) } }

@Suite("Journal log handler")
struct DaemonLogHandlerTests {
    @Test("an entry carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_* and one field per metadata key")
    func journalFields() {
        let fields = text(DaemonLogHandler.journalFields(
            level: .warning, message: "delivery attempt failed: HTTP 503\nsecond line",
            metadata: ["endpoint_host": "t.example.com", "message_id": "281c71bc61dc4142a7f35a3506343f80",
                       "errno": "28", "batch-id": "b1", "script": "deploy-service"],
            file: "TelemetryDelivery/Forwarder.swift", function: "deliver(_:deadline:)", line: 231))
        #expect(fields == [
            "MESSAGE=delivery attempt failed: HTTP 503\nsecond line",
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=telemetryd",
            "CODE_FILE=TelemetryDelivery/Forwarder.swift",
            "CODE_LINE=231",
            "CODE_FUNC=deliver(_:deadline:)",
            "TELEMETRY_BATCH_ID=b1",
            "TELEMETRY_ENDPOINT_HOST=t.example.com",
            "ERRNO=28",
            "MESSAGE_ID=281c71bc61dc4142a7f35a3506343f80",
            "TELEMETRY_SCRIPT=deploy-service",
        ])
    }

    @Test("levels map to syslog priorities")
    func priorities() {
        let expected: [(Logger.Level, Int)] = [(.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4),
                                               (.error, 3), (.critical, 2)]
        for (level, priority) in expected { #expect(DaemonLogHandler.priority(of: level) == priority, "\(level)") }
    }

    @Test("field names: upper case, [A-Z0-9_] only, never a leading underscore, at most 64 bytes")
    func fieldNames() {
        #expect(DaemonLogHandler.fieldName(forMetadataKey: "execution_id") == "TELEMETRY_EXECUTION_ID")
        #expect(DaemonLogHandler.fieldName(forMetadataKey: "Outage.Seconds") == "TELEMETRY_OUTAGE_SECONDS")
        #expect(DaemonLogHandler.fieldName(forMetadataKey: "_PID") == "TELEMETRY__PID")
        #expect(DaemonLogHandler.fieldName(forMetadataKey: "") == nil)
        let long = DaemonLogHandler.fieldName(forMetadataKey: String(repeating: "k", count: 100))
        #expect(long?.utf8.count == 64)
    }

    @Test("auto picks the journal only when JOURNAL_STREAM names stderr's device and inode")
    func destination() {
        var status = stat()
        #expect(fstat(2, &status) == 0)
        #expect(LogDestination.resolve(.auto, journalStream: "\(status.st_dev):\(status.st_ino)") == .journal)
        #expect(LogDestination.resolve(.auto, journalStream: "\(status.st_dev):\(status.st_ino + 1)") == .standardError)
        #expect(LogDestination.resolve(.auto, journalStream: nil) == .standardError)
        #expect(LogDestination.resolve(.auto, journalStream: "garbage") == .standardError)
        #expect(LogDestination.resolve(.journal, journalStream: nil) == .journal)
        #expect(LogDestination.resolve(.stderr, journalStream: "\(status.st_dev):\(status.st_ino)") == .standardError)
    }

    @Test("the level is shared: a reload that changes it affects loggers made before")
    func sharedLevel() {
        let control = LogLevelControl(.info)
        let handler = DaemonLogHandler(label: "t", destination: .standardError, level: control)
        let logger = Logger(label: "t") { _ in handler }
        #expect(logger.logLevel == .info)
        control.level = .debug
        #expect(logger.logLevel == .debug)
    }
}

@Suite("Watchdog")
struct WatchdogTests {
    final class Recorder: Sendable {
        let pets = Atomic(0)
        let statuses = Mutex<[String]>([])
        let problem = Mutex<String?>(nil)
    }

    private func makeWatchdog(_ recorder: Recorder) -> Watchdog {
        let check = HealthCheck(probes: [{ _ in recorder.problem.withLock { $0 } }])
        return Watchdog(interval: 10, check: check, logger: Logger(label: "test"),
                        pet: { recorder.pets.add(1, ordering: .relaxed) },
                        reportStatus: { status in recorder.statuses.withLock { $0.append(status) } })
    }

    @Test("pets while healthy; stops petting (and says why, once) while a probe fails; resumes after")
    func gatesPets() {
        let recorder = Recorder()
        let watchdog = makeWatchdog(recorder)
        watchdog.tick(budget: 0.1)
        watchdog.tick(budget: 0.1)
        #expect(recorder.pets.load(ordering: .relaxed) == 2)
        recorder.problem.withLock { $0 = "event loop 1 did not answer within 0.1s" }
        watchdog.tick(budget: 0.1)
        watchdog.tick(budget: 0.1)
        #expect(recorder.pets.load(ordering: .relaxed) == 2, "no pet while unhealthy")
        #expect(recorder.statuses.withLock { $0 } == ["UNHEALTHY: event loop 1 did not answer within 0.1s"])
        recorder.problem.withLock { $0 = nil }
        watchdog.tick(budget: 0.1)
        #expect(recorder.pets.load(ordering: .relaxed) == 3)
    }

    @Test("probes: a blocked event loop, a writer that stopped coming round, and a store that cannot be written fail")
    func probes() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let probe = HealthCheck.eventLoopsAnswer(group)
        #expect(probe(1) == nil)
        let release = DispatchSemaphore(value: 0)
        group.next().execute { release.wait() }
        let blocked = probe(0.05)
        release.signal()
        #expect(blocked?.contains("did not answer") == true, "\(blocked ?? "nil")")

        let directory = TemporaryDirectory()
        let (writer, store) = try makeWriter(directory)
        #expect(HealthCheck.writerIsAlive(writer, staleAfterSeconds: 0)(1) != nil, "never started: stale")
        writer.start()
        defer { writer.stop() }
        #expect(HealthCheck.writerIsAlive(writer, staleAfterSeconds: 30)(1) == nil)

        #expect(HealthCheck.storeIsWritable(directory: directory.path, storePath: store.path)(1) == nil)
        let missing = HealthCheck.storeIsWritable(directory: directory.path, storePath: directory.path + "/gone/x.db")(1)
        #expect(missing?.contains("not writable") == true, "\(missing ?? "nil")")
    }
}

