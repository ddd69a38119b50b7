import Logging
import Testing
@testable import TelemetryDaemon
import TelemetryCore
import TelemetryStore
import TelemetryWire

private extension Lines {
    mutating func error(_ message: String) -> String {
        next("event", #""level":"error","operation":"op","message":"\#(message)""#)
    }
}

@Suite("Ingest batches: runs of events")
struct IngestBatchTests {
    @Test("consecutive events of one execution form one entry; an error, another execution or another kind starts a new one")
    func runs() throws {
        var a = Lines("11111111-1111-4111-8111-111111111111")
        var b = Lines("22222222-2222-4222-8222-222222222222")
        let batch = try batch([a.start("s"), a.info("1"), a.info("2"), a.info("3"), a.error("4"), a.error("5"),
                                     b.info("6"), a.info("7"), a.end(0)])
        #expect(batch.lineCount == 9)
        let shapes = batch.entries.map { entry -> String in
            switch entry.content {
            case .events(_, let ends, let isError): return "\(isError ? "errors" : "events")×\(ends.count)"
            case .record: return "record"
            }
        }
        #expect(shapes == ["record", "events×3", "errors×2", "events×1", "events×1", "record"])
        // A run's objects are one comma-separated list, and its journal records are contiguous.
        guard case .events(let objects, let ends, _) = batch.entries[1].content else { Issue.record("no run"); return }
        let list = try JSONValue.parse("[" + String(decoding: batch.fragments.bytes[objects], as: UTF8.self) + "]")
        #expect(list.arrayValue?.compactMap { $0["message"]?.stringValue } == ["1", "2", "3"])
        // Each object ends just before the comma that separates it from the next; the last ends the run.
        #expect(batch.fragments.bytes[batch.objectEnds[ends.lowerBound]] == UInt8(ascii: ","))
        #expect(batch.fragments.bytes[batch.objectEnds[ends.lowerBound] - 1] == UInt8(ascii: "}"))
        #expect(batch.objectEnds[ends.upperBound - 1] == objects.upperBound)
        var journaled = 0
        try JournalRecord.forEach(in: Array(batch.journal[batch.entries[1].journal])) { _ in journaled += 1 }
        #expect(journaled == 3)
    }

    @Test("a run that crosses TELEMETRY_MAX_EVENTS keeps exactly the events before the limit")
    func runCrossingTheEventLimit() async throws {
        let directory = TemporaryDirectory()
        let (writer, store) = try makeWriter(directory, limits: AggregationLimits(maxEventsPerExecution: 4))
        writer.start()
        defer { writer.stop() }
        var lines = Lines("33333333-3333-4333-8333-333333333333")
        writer.submit(try batch([lines.start("s"), lines.info("1"), lines.info("2")]))
        writer.submit(try batch([lines.info("3"), lines.info("4"), lines.info("5"), lines.info("6"), lines.end(0)]))
        _ = await writer.flush()
        let document = try JSONValue.parse(try #require(try store.document(executionID: lines.id.description)).body)
        #expect(document["events"]?.arrayValue?.compactMap { $0["message"]?.stringValue } == ["1", "2", "3", "4"])
        #expect(document["dropped_events"]?.intValue == 2)
    }
}
