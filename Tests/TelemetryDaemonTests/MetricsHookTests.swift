import Logging
import Synchronization
import Testing
@testable import TelemetryDaemon
import TelemetryCore
import TelemetryStore
import TelemetryWire

/// Collects what the writer reports, from its thread.
final class OutcomeLog: Sendable {
    private let outcomes = Mutex<[[ExecutionOutcome]]>([])
    func append(_ batch: [ExecutionOutcome]) { outcomes.withLock { $0.append(batch) } }
    var all: [[ExecutionOutcome]] { outcomes.withLock { $0 } }
}

@Suite("Metrics hooks")
struct MetricsHookTests {
    @Test("the writer reports each execution once, after the commit that stored its document, with what the metrics need")
    func outcomesAfterCommit() async throws {
        let directory = TemporaryDirectory()
        let (writer, store) = try makeWriter(directory)
        let log = OutcomeLog()
        writer.onExecutionsCompleted = { executions in
            // What the daemon hands the metrics exporter.
            log.append(executions.map { ExecutionOutcome($0, completedAt: Timestamp.now()) })
        }
        writer.start()
        var ok = Lines("22222222-2222-4222-8222-222222222222")
        var failing = Lines("33333333-3333-4333-8333-333333333333")
        var open = Lines("44444444-4444-4444-8444-444444444444")
        writer.submit(try batch([
            ok.start("deploy"), ok.next("metric", #""name":"services_deployed","value":5"#), ok.end(0),
            failing.start("deploy"), failing.end(3),
            open.start("long-running"),
        ]))
        #expect((try? await writer.flush().get()) != nil)
        writer.stop()

        let reported = log.all.flatMap { $0 }
        #expect(reported.count == 2, "the open execution is not reported: \(reported)")
        let success = try #require(reported.first { $0.status == .success })
        #expect(success.scriptName == "deploy")
        #expect(success.metrics == ["services_deployed": 5])
        #expect(success.durationSeconds == 2, "end minus start (the lines are a second apart)")
        #expect(reported.contains { $0.status == .failure })
        #expect(try store.document(executionID: ok.id.description) != nil)
    }

    @Test("readiness: starting, ready, stopping, a stalled writer and a failing store, by the injected clock")
    func readiness() {
        let settings = MetricsService.Settings(writerReadySeconds: 10, writerLiveSeconds: 60)
        let now = Timestamp(microseconds: 1_000_000_000)
        let recent = Timestamp(microseconds: now.microseconds - 2_000_000)
        let stale = Timestamp(microseconds: now.microseconds - 20_000_000)
        let dead = Timestamp(microseconds: now.microseconds - 120_000_000)
        func ready(_ phase: MetricsService.Phase, _ alive: Timestamp?, _ error: String? = nil) -> Bool {
            MetricsService.readiness(phase: phase, writerAliveAt: alive, storeError: error, now: now, settings: settings).ok
        }
        #expect(ready(.ready, recent))
        #expect(!ready(.starting, recent))
        #expect(!ready(.stopping, recent))
        #expect(!ready(.ready, nil))
        #expect(!ready(.ready, stale))
        #expect(!ready(.ready, recent, "disk I/O error"))
        #expect(MetricsService.readiness(phase: .ready, writerAliveAt: recent, storeError: "disk full", now: now,
                                         settings: settings).message.contains("disk full"))
        #expect(MetricsService.liveness(writerAliveAt: stale, now: now, settings: settings).ok)
        #expect(MetricsService.liveness(writerAliveAt: nil, now: now, settings: settings).ok)
        #expect(!MetricsService.liveness(writerAliveAt: dead, now: now, settings: settings).ok)
    }
}
