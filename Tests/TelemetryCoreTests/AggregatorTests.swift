import Testing
import TelemetryCore
import TelemetryWire

private let idA = ExecutionID("6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b")!
private let idB = ExecutionID("00000000-0000-4000-8000-000000000002")!
private let alice = SenderIdentity(uid: 1000, pid: 4242)

private func record(_ id: ExecutionID, at seconds: Int64, _ body: WireRecord.Body,
                    receivedAt: Int64? = nil) -> AcceptedRecord {
    AcceptedRecord(record: WireRecord(executionID: id, timestamp: Timestamp(microseconds: seconds * 1_000_000), body: body),
                   sender: alice, receivedAt: Timestamp(microseconds: (receivedAt ?? seconds) * 1_000_000))
}

@Suite("Aggregator")
struct AggregatorTests {
    @Test("a full execution folds into one document-ready aggregate")
    func fullExecution() throws {
        var aggregator = Aggregator(limits: AggregationLimits())
        #expect(aggregator.apply(record(idA, at: 100, .start(script: "deploy-service", version: "v1.0.0", environment: "production", pid: 77))) == nil)
        #expect(aggregator.apply(record(idA, at: 101, .event(level: .info, operation: "deployment", message: "Starting", durationSeconds: nil))) == nil)
        #expect(aggregator.apply(record(idA, at: 102, .event(level: .error, operation: "db", message: "Database connection failed", durationSeconds: nil))) == nil)
        #expect(aggregator.apply(record(idA, at: 103, .event(level: .success, operation: "deployment", message: "", durationSeconds: 2.5))) == nil)
        #expect(aggregator.apply(record(idA, at: 104, .metric(name: "services_deployed", value: 4))) == nil)
        #expect(aggregator.apply(record(idA, at: 105, .metric(name: "services_deployed", value: 5))) == nil)
        #expect(aggregator.apply(record(idA, at: 106, .tag(key: "region", value: "us-east-1"))) == nil)
        #expect(aggregator.openCount == 1)
        let closedResult = aggregator.apply(record(idA, at: 220, .end(exitCode: 0, durationSeconds: nil)))
        let closed = try #require(closedResult)
        #expect(aggregator.openCount == 0)
        #expect(closed.scriptName == "deploy-service")
        #expect(closed.scriptVersion == "v1.0.0")
        #expect(closed.environment == "production")
        #expect(closed.scriptPID == 77)
        #expect(closed.status == .success)
        let events = try JSONValue.parse(Array("[" .utf8) + closed.eventsJSON + Array("]".utf8)).arrayValue ?? []
        let errors = try JSONValue.parse(Array("[" .utf8) + closed.errorsJSON + Array("]".utf8)).arrayValue ?? []
        #expect(events.map { $0["type"]?.stringValue } == ["info", "success"])
        #expect(events.last?["duration_seconds"]?.doubleValue == 2.5)
        #expect(errors.map { $0["message"]?.stringValue } == ["Database connection failed"])
        #expect(closed.eventCount == 2 && closed.errorCount == 1)
        #expect(closed.metrics == ["services_deployed": 5], "the last value of a metric wins")
        #expect(closed.tags == ["region": "us-east-1"])
        #expect(closed.resolvedDurationSeconds == 120)
        #expect(closed.senderUID == 1000)
    }

    @Test("exit code decides success or failure; no end means incomplete")
    func statuses() throws {
        var aggregator = Aggregator(limits: AggregationLimits())
        _ = aggregator.apply(record(idA, at: 1, .start(script: "a", version: "", environment: "", pid: nil)))
        let failedResult = aggregator.apply(record(idA, at: 2, .end(exitCode: 3, durationSeconds: 1.5)))
        let failed = try #require(failedResult)
        #expect(failed.status == .failure)
        #expect(failed.exitCode == 3)
        #expect(failed.resolvedDurationSeconds == 1.5, "a duration reported by the script wins over end - start")
        _ = aggregator.apply(record(idB, at: 1, .start(script: "b", version: "", environment: "", pid: nil)))
        #expect(aggregator.open[idB]?.status == .incomplete)
    }

    @Test("interleaved executions stay apart")
    func interleaved() throws {
        var aggregator = Aggregator(limits: AggregationLimits())
        _ = aggregator.apply(record(idA, at: 1, .start(script: "a", version: "1", environment: "", pid: nil)))
        _ = aggregator.apply(record(idB, at: 1, .start(script: "b", version: "2", environment: "", pid: nil)))
        _ = aggregator.apply(record(idA, at: 2, .tag(key: "k", value: "from-a")))
        _ = aggregator.apply(record(idB, at: 2, .tag(key: "k", value: "from-b")))
        let bResult = aggregator.apply(record(idB, at: 3, .end(exitCode: 0, durationSeconds: nil)))
        let b = try #require(bResult)
        let aResult = aggregator.apply(record(idA, at: 3, .end(exitCode: 1, durationSeconds: nil)))
        let a = try #require(aResult)
        #expect(a.tags["k"] == "from-a")
        #expect(b.tags["k"] == "from-b")
        #expect(a.scriptName == "a" && b.scriptName == "b")
    }

    @Test("events beyond the per-execution limit are counted, not kept")
    func eventLimit() throws {
        var aggregator = Aggregator(limits: AggregationLimits(maxEventsPerExecution: 3))
        for second in 0..<5 {
            _ = aggregator.apply(record(idA, at: Int64(second), .event(level: second == 1 ? .error : .info, operation: "op", message: "\(second)", durationSeconds: nil)))
        }
        let closedResult = aggregator.apply(record(idA, at: 9, .end(exitCode: 0, durationSeconds: nil)))
        let closed = try #require(closedResult)
        #expect(closed.eventCount + closed.errorCount == 3)
        #expect(closed.droppedEvents == 2)
    }

    @Test("idle executions close as incomplete after the timeout, active ones stay open")
    func idleTimeout() {
        var aggregator = Aggregator(limits: AggregationLimits(idleTimeoutSeconds: 60))
        _ = aggregator.apply(record(idA, at: 0, .start(script: "a", version: "", environment: "", pid: nil), receivedAt: 1_000))
        _ = aggregator.apply(record(idB, at: 0, .start(script: "b", version: "", environment: "", pid: nil), receivedAt: 1_050))
        #expect(aggregator.closeIdle(now: Timestamp(microseconds: 1_059 * 1_000_000)).isEmpty)
        let closed = aggregator.closeIdle(now: Timestamp(microseconds: 1_060 * 1_000_000))
        #expect(closed.map(\.id) == [idA])
        #expect(closed.first?.status == .incomplete)
        #expect(aggregator.isOpen(idB))
    }

    @Test("the journal watermark is the oldest chunk an open execution needs")
    func journalWatermark() {
        var aggregator = Aggregator(limits: AggregationLimits())
        #expect(aggregator.lowestNeededJournalSequence == nil)
        _ = aggregator.apply(record(idA, at: 0, .start(script: "a", version: "", environment: "", pid: nil)))
        aggregator.noteJournaled([idA], inChunk: 5)
        _ = aggregator.apply(record(idB, at: 0, .start(script: "b", version: "", environment: "", pid: nil)))
        aggregator.noteJournaled([idA, idB], inChunk: 7)
        #expect(aggregator.open[idA]?.firstJournalSequence == 5, "the first chunk is kept, later ones do not move it")
        #expect(aggregator.lowestNeededJournalSequence == 5)
        _ = aggregator.apply(record(idA, at: 1, .end(exitCode: 0, durationSeconds: nil)))
        #expect(aggregator.lowestNeededJournalSequence == 7)
    }

    @Test("lines before the start line still count; the start line's time is the execution's start")
    func startArrivesLate() throws {
        var aggregator = Aggregator(limits: AggregationLimits())
        _ = aggregator.apply(record(idA, at: 10, .tag(key: "k", value: "v")))
        _ = aggregator.apply(record(idA, at: 12, .start(script: "late", version: "", environment: "", pid: nil)))
        let closedResult = aggregator.apply(record(idA, at: 20, .end(exitCode: 0, durationSeconds: nil)))
        let closed = try #require(closedResult)
        #expect(closed.tags == ["k": "v"])
        #expect(closed.effectiveStart == Timestamp(microseconds: 12_000_000))
    }
}

@Suite("Execution document")
struct ExecutionDocumentTests {
    @Test("the document carries the seed's schema plus status, exit code, duration and host")
    func schema() throws {
        var aggregator = Aggregator(limits: AggregationLimits())
        _ = aggregator.apply(record(idA, at: 1_704_110_400, .start(script: "deploy-service", version: "v1.0.0", environment: "production", pid: nil)))
        _ = aggregator.apply(record(idA, at: 1_704_110_401, .event(level: .success, operation: "deployment", message: "Deployment completed successfully", durationSeconds: nil)))
        _ = aggregator.apply(record(idA, at: 1_704_110_401, .metric(name: "memory_usage", value: 256.7)))
        _ = aggregator.apply(record(idA, at: 1_704_110_401, .metric(name: "execution_time", value: 120.5)))
        _ = aggregator.apply(record(idA, at: 1_704_110_401, .tag(key: "service", value: "auth-service")))
        let executionResult = aggregator.apply(record(idA, at: 1_704_110_520, .end(exitCode: 0, durationSeconds: 120.5)))
        let execution = try #require(executionResult)
        let bytes = execution.encodeDocument(context: DocumentContext(host: "web-1", userID: "u_abc", closedAt: Timestamp(microseconds: 1_704_110_521_000_000)))
        let document = try JSONValue.parse(bytes)
        #expect(document["timestamp"]?.stringValue == "2024-01-01T12:00:00.000Z")
        #expect(document["script_name"]?.stringValue == "deploy-service")
        #expect(document["script_version"]?.stringValue == "v1.0.0")
        #expect(document["execution_id"]?.stringValue == idA.description)
        #expect(document["user_id"]?.stringValue == "u_abc")
        #expect(document["environment"]?.stringValue == "production")
        #expect(document["host"]?.stringValue == "web-1")
        #expect(document["status"]?.stringValue == "success")
        #expect(document["exit_code"]?.intValue == 0)
        #expect(document["duration_seconds"]?.doubleValue == 120.5)
        #expect(document["metrics"]?["execution_time"]?.doubleValue == 120.5)
        #expect(document["metrics"]?["memory_usage"]?.doubleValue == 256.7)
        #expect(document["events"]?.arrayValue?.first?["type"]?.stringValue == "success")
        #expect(document["events"]?.arrayValue?.first?["message"]?.stringValue == "Deployment completed successfully")
        #expect(document["errors"]?.arrayValue?.isEmpty == true)
        #expect(document["tags"]?["service"]?.stringValue == "auth-service")
        // Deterministic: the same execution encodes to the same bytes.
        #expect(bytes == execution.encodeDocument(context: DocumentContext(host: "web-1", userID: "u_abc", closedAt: Timestamp(microseconds: 1_704_110_521_000_000))))
        // Re-serializing the parsed document reproduces it byte for byte (what `telemetry show --json` relies on).
        #expect(Array(document.serialized().utf8) == bytes)
    }

    @Test("an incomplete execution has null exit code and duration")
    func incomplete() throws {
        var aggregator = Aggregator(limits: AggregationLimits())
        _ = aggregator.apply(record(idA, at: 1_704_110_400, .start(script: "s", version: "", environment: "", pid: nil)))
        let execution = try #require(aggregator.open[idA])
        let document = try JSONValue.parse(execution.encodeDocument(context: DocumentContext(host: "h", userID: "u", closedAt: Timestamp(microseconds: 0))))
        #expect(document["status"]?.stringValue == "incomplete")
        #expect(document["exit_code"] == .null)
        #expect(document["duration_seconds"] == .null)
    }
}

@Suite("Journal record")
struct JournalRecordTests {
    @Test("records round-trip with sender and receive time, in order")
    func roundTrip() throws {
        var chunk: [UInt8] = []
        let lines = [#"{"v":1,"kind":"tag"}"#, #"{"a":"b c"}"#]
        for (index, line) in lines.enumerated() {
            Array(line.utf8).withUnsafeBytes {
                JournalRecord.append(json: $0, sender: SenderIdentity(uid: UInt32(index), pid: index == 0 ? -1 : 99),
                                     receivedAt: Timestamp(microseconds: 1_700_000_000_123_456 + Int64(index)), to: &chunk)
            }
        }
        var decoded: [(SenderIdentity, Int64, String)] = []
        try JournalRecord.forEach(in: chunk) { entry in
            decoded.append((entry.sender, entry.receivedAt.microseconds, String(decoding: entry.json, as: UTF8.self)))
        }
        #expect(decoded.count == 2)
        #expect(decoded[0].0 == SenderIdentity(uid: 0, pid: -1))
        #expect(decoded[1].0 == SenderIdentity(uid: 1, pid: 99))
        #expect(decoded[1].1 == 1_700_000_000_123_457)
        #expect(decoded.map(\.2) == lines)
    }

    @Test("a malformed prefix is an error, not a silent skip")
    func corrupt() {
        #expect(throws: JournalRecord.CorruptRecord.self) {
            try JournalRecord.forEach(in: Array("12 x 5 {}\n".utf8)) { _ in }
        }
    }
}

@Suite("Event fragments")
struct EventFragmentTests {
    @Test("events encoded ahead (on the event loop) give the same document as events encoded by the aggregator")
    func preEncodedMatches() throws {
        let records = [
            record(idA, at: 1, .start(script: "s", version: "1", environment: "e", pid: nil)),
            record(idA, at: 2, .event(level: .info, operation: "op", message: "quote \" and \\ and \n newline", durationSeconds: 0.25)),
            record(idA, at: 3, .event(level: .error, operation: "db", message: "näh ✓", durationSeconds: nil)),
            record(idA, at: 4, .end(exitCode: 1, durationSeconds: nil)),
        ]
        var plain = Aggregator(limits: AggregationLimits())
        var ahead = Aggregator(limits: AggregationLimits())
        var closedPlain: Execution?
        var closedAhead: Execution?
        for accepted in records {
            closedPlain = plain.apply(accepted) ?? closedPlain
            guard case let .event(level, operation, message, duration) = accepted.record.body else {
                closedAhead = ahead.apply(accepted) ?? closedAhead
                continue
            }
            var object = JSONWriter()
            EventFragment.write(level: level, operation: operation, message: message, durationSeconds: duration,
                                timestamp: accepted.record.timestamp, into: &object)
            object.bytes.withUnsafeBytes { bytes in
                ahead.applyEvents(accepted.record.executionID, count: 1, earliest: accepted.record.timestamp,
                                  latestReceivedAt: accepted.receivedAt, sender: accepted.sender,
                                  isError: level == .error, objects: bytes, prefixLength: { _ in bytes.count })
            }
        }
        let context = DocumentContext(host: "h", userID: "u", closedAt: Timestamp(microseconds: 9_000_000))
        let one = try #require(closedPlain).encodeDocument(context: context)
        let two = try #require(closedAhead).encodeDocument(context: context)
        #expect(one == two)
        let document = try JSONValue.parse(one)
        #expect(document["events"]?[0]?["message"]?.stringValue == "quote \" and \\ and \n newline")
        #expect(document["errors"]?[0]?["message"]?.stringValue == "näh ✓")
    }

    @Test("an event parsed without copying its strings encodes to the same bytes as the decoded record",
          arguments: [
              #""level":"info","operation":"deploy","message":"plain text","duration_seconds":1.25"#,
              #""level":"error","operation":"db","message":"quote \" backslash \\ slash \/ newline \n tab \t""#,
              #""level":"warning","operation":"op\u0041","message":"\u00e9\u2713 \ud83d\ude00 \u0001""#,
              #""level":"debug","operation":"näh","message":"raw ✓ 😀 \u007f""#,
              #""level":"success","operation":"o","duration_seconds":0.000001"#,
              #""level":"info","operation":"o","message":"","duration_seconds":12345.678"#,
          ])
    func parsedLineMatchesRecord(_ members: String) throws {
        let line = #"{"v":1,"kind":"event","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":1732870000.123456,"#
            + members + "}"
        let bytes = Array(line.utf8)
        let (fromSlices, fromRecord, record) = try bytes.withUnsafeBytes { raw throws -> ([UInt8], [UInt8], WireRecord?) in
            guard case .event(let event) = try WireParser.parseLine(raw) else {
                Issue.record("not parsed as an event")
                return ([], [], nil)
            }
            var sliced = JSONWriter()
            let range = EventFragment.append(event, to: &sliced)
            var decoded = JSONWriter()
            guard case let .event(level, operation, message, duration) = event.record.body else { return ([], [], nil) }
            EventFragment.write(level: level, operation: operation, message: message, durationSeconds: duration,
                                timestamp: event.timestamp, into: &decoded)
            return (Array(sliced.bytes[range]), decoded.bytes, event.record)
        }
        #expect(String(decoding: fromSlices, as: UTF8.self) == String(decoding: fromRecord, as: UTF8.self))
        #expect(try WireParser.parse(line) == .record(#require(record)))
    }

    @Test("the one-copy path for plain strings gives the bytes of the general writer, for 20,000 random events")
    func verbatimPathMatchesTheWriter() throws {
        var generator = SystemRandomNumberGenerator()
        let levels = ["success", "error", "warning", "info", "debug"]
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:äé✓😀".unicodeScalars)
        func text(_ maximum: Int) -> String {
            let count = Int.random(in: 0...maximum, using: &generator)
            return String(String.UnicodeScalarView((0..<count).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        let durations: [() -> String?] = [
            { nil },
            { String(Int.random(in: 0...100_000, using: &generator)) },
            { String(format6(Double(Int.random(in: 1...999_999_999, using: &generator)) / 1_000)) },
            { "0.000001" }, { "1e-7" }, { "123456789.123" }, { "0" }, { "2.5E3" },
        ]
        for round in 0..<20_000 {
            // Messages up to 1,100 bytes: both sides of the one-copy path's 1 KiB bound.
            let message = text(round % 10 == 0 ? 1_100 : 200)
            let operation = text(40).isEmpty ? "op" : text(40) + "x"
            var members = #""level":"\#(levels[round % 5])","operation":"\#(operation)","message":"\#(message)""#
            if let duration = durations.randomElement(using: &generator)!() { members += #","duration_seconds":\#(duration)"# }
            let seconds = Int64.random(in: 946_684_800...4_102_444_799, using: &generator)  // the accepted years 2000-2099
            let line = #"{"v":1,"kind":"event","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":\#(seconds).\#(Int.random(in: 100_000...999_999, using: &generator)),"#
                + members + "}"
            let (sliced, decoded) = try Array(line.utf8).withUnsafeBytes { raw throws -> (String, String) in
                guard case .event(let event) = try WireParser.parseLine(raw),
                      case let .event(level, operation, message, duration) = event.record.body else {
                    Issue.record("not parsed as an event: \(line)")
                    return ("", "")
                }
                var fast = JSONWriter()
                let range = EventFragment.append(event, to: &fast)
                var general = JSONWriter()
                EventFragment.write(level: level, operation: operation, message: message, durationSeconds: duration,
                                    timestamp: event.timestamp, into: &general)
                return (String(decoding: fast.bytes[range], as: UTF8.self), general.string)
            }
            #expect(sliced == decoded, "\(line)")
            if sliced != decoded { return }
        }
    }

    private func format6(_ value: Double) -> String {
        var text = String(Int64(value * 1_000_000))
        while text.count < 7 { text = "0" + text }
        text.insert(".", at: text.index(text.endIndex, offsetBy: -6))
        return text
    }
}
