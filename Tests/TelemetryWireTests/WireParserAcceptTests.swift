import Testing
import TelemetryWire

private typealias F = Fixture

@Suite("WireParser accepts")
struct WireParserAcceptTests {
    private func record(_ line: String) throws -> WireRecord {
        let message = try WireParser.parse(line)
        guard case .record(let record) = message else {
            Issue.record("not a record: \(message)")
            throw WireError(.notObject, "test")
        }
        return record
    }

    private func control(_ line: String) throws -> ControlRequest {
        let message = try WireParser.parse(line)
        guard case .control(let request) = message else {
            Issue.record("not a control request: \(message)")
            throw WireError(.notObject, "test")
        }
        return request
    }

    @Test func sampleEvent() throws {
        let record = try record(F.sampleEvent)
        #expect(record == WireRecord(
            executionID: ExecutionID(high: 0x6f1c_2f8e_2b0a_4c1e, low: 0x9d7a_3e5b_8c9d_0a1b),
            timestamp: Timestamp(microseconds: 1_732_870_000_123_456),
            body: .event(level: .info, operation: "deployment",
                         message: "Deploying service auth-service to cluster production-eu-1, step 3 of 12: rolling update",
                         durationSeconds: 1.25)))
    }

    @Test func startWithEverything() throws {
        let line = F.data("start", #""script":"deploy.sh","version":"2.4.1","environment":"production","pid":4242"#)
        #expect(try record(line) == WireRecord(executionID: F.executionID, timestamp: F.ts,
            body: .start(script: "deploy.sh", version: "2.4.1", environment: "production", pid: 4242)))
    }

    @Test func startDefaults() throws {
        #expect(try record(F.start()).body == .start(script: "deploy.sh", version: "", environment: "", pid: nil))
    }

    @Test func startLimits() throws {
        let script = String(repeating: "s", count: 256)
        let version = String(repeating: "v", count: 128)
        let line = F.data("start", #""script":"\#(script)","version":"\#(version)","environment":"","pid":2147483647"#)
        #expect(try record(line).body == .start(script: script, version: version, environment: "", pid: 2_147_483_647))
        #expect(try record(F.start(#""pid":1"#)).body == .start(script: "deploy.sh", version: "", environment: "", pid: 1))
    }

    @Test(arguments: EventLevel.allCases)
    func eventLevels(_ level: EventLevel) throws {
        let line = F.data("event", #""level":"\#(level.rawValue)","operation":"op""#)
        #expect(try record(line).body == .event(level: level, operation: "op", message: "", durationSeconds: nil))
    }

    @Test func eventEscapes() throws {
        let line = F.event(#""message":"q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20ac \ud83d\ude00 \uD834\uDD1E end""#)
        #expect(try record(line).body == .event(level: .info, operation: "deploy",
            message: "q\" b\\ s/ \u{08}\u{0C}\n\r\t Aé€ 😀 𝄞 end", durationSeconds: nil))
    }

    @Test func eventNonASCII() throws {
        let line = F.data("event", #""level":"warning","operation":"déploiement ✓","message":"日本語 — ok 🚀""#)
        #expect(try record(line).body == .event(level: .warning, operation: "déploiement ✓", message: "日本語 — ok 🚀", durationSeconds: nil))
    }

    @Test func eventDurations() throws {
        #expect(try record(F.event(#""duration_seconds":0"#)).body == .event(level: .info, operation: "deploy", message: "", durationSeconds: 0))
        #expect(try record(F.event(#""duration_seconds":2"#)).body == .event(level: .info, operation: "deploy", message: "", durationSeconds: 2))
        #expect(try record(F.event(#""duration_seconds":1.5e-3"#)).body == .event(level: .info, operation: "deploy", message: "", durationSeconds: 0.0015))
        #expect(try record(F.event(#""duration_seconds":-0.0"#)).body == .event(level: .info, operation: "deploy", message: "", durationSeconds: 0))
    }

    @Test func operationOf256MultibyteBytes() throws {
        let operation = String(repeating: "é", count: 128)  // 256 bytes
        #expect(try record(F.data("event", #""level":"debug","operation":"\#(operation)""#)).body
            == .event(level: .debug, operation: operation, message: "", durationSeconds: nil))
        let tooLong = operation + "x"
        #expect(throws: WireError.self) { try WireParser.parse(F.data("event", #""level":"debug","operation":"\#(tooLong)""#)) }
    }

    @Test(arguments: [
        ("5", 5.0), ("-3", -3.0), ("0", 0.0), ("1.5e3", 1500.0), ("2.5E-2", 0.025), ("0.1", 0.1),
        ("123456789012345678901234567890", 1.2345678901234568e29), ("1.7976931348623157e308", 1.7976931348623157e308),
        ("4.9e-324", Double.leastNonzeroMagnitude), ("1e-400", 0.0), ("9007199254740993", 9007199254740992.0),
        ("0.30000000000000004", 0.30000000000000004), ("1732870000.123456", 1732870000.123456),
    ])
    func metricValues(_ text: String, _ expected: Double) throws {
        let line = F.data("metric", #""name":"rows","value":\#(text)"#)
        #expect(try record(line).body == .metric(name: "rows", value: expected))
    }

    @Test(arguments: ["rows", "_x", "a.b:c-d_9", "Z", "http_requests_total", String(repeating: "m", count: 128)])
    func metricNames(_ name: String) throws {
        #expect(try record(F.data("metric", #""name":"\#(name)","value":1"#)).body == .metric(name: name, value: 1))
    }

    @Test func tags() throws {
        #expect(try record(F.tag()).body == .tag(key: "region", value: "eu"))
        #expect(try record(F.data("tag", #""key":"clé","value":"""#)).body == .tag(key: "clé", value: ""))
        let long = String(repeating: "v", count: 1024)
        #expect(try record(F.data("tag", #""value":"\#(long)","key":"k""#)).body == .tag(key: "k", value: long))
    }

    @Test func ends() throws {
        #expect(try record(F.end()).body == .end(exitCode: 0, durationSeconds: nil))
        #expect(try record(F.data("end", #""exit_code":255,"duration_seconds":12.75"#)).body == .end(exitCode: 255, durationSeconds: 12.75))
        #expect(try record(F.data("end", #""exit_code":-0"#)).body == .end(exitCode: 0, durationSeconds: nil))
    }

    @Test(arguments: ControlRequest.Command.allCases)
    func controlCommands(_ command: ControlRequest.Command) throws {
        let extra = command == .show ? #""execution_id":"\#(F.uuid)""# : ""
        let request = try control(F.control(command.rawValue, extra))
        #expect(request == ControlRequest(command: command, executionID: command == .show ? F.executionID : nil))
    }

    @Test func controlArguments() throws {
        #expect(try control(F.control("executions", #""limit":10000,"script":"backup.sh""#))
            == ControlRequest(command: .executions, limit: 10_000, script: "backup.sh"))
        #expect(try control(F.control("executions", #""limit":1"#)) == ControlRequest(command: .executions, limit: 1))
        #expect(try control(F.control("show", #""execution_id":"6F1C2F8E-2B0A-4C1E-9D7A-3E5B8C9D0A1B""#))
            == ControlRequest(command: .show, executionID: F.executionID))
        // ts is optional and ignored on control lines, whatever it holds.
        #expect(try control(F.control("flush", #""ts":1732870000"#)) == ControlRequest(command: .flush))
        #expect(try control(F.control("flush", #""ts":"not a time""#)) == ControlRequest(command: .flush))
        #expect(try control(F.control("status", #""execution_id":"\#(F.uuid)""#))
            == ControlRequest(command: .status, executionID: F.executionID))
    }

    @Test(arguments: [
        (#""2024-01-01T12:00:00Z""#, 1_704_110_400_000_000 as Int64),
        (#""2024-01-01T14:00:00+02:00""#, 1_704_110_400_000_000),
        (#""2024-01-01T06:30:00-05:30""#, 1_704_110_400_000_000),
        (#""2024-01-01t12:00:00.5z""#, 1_704_110_400_500_000),
        (#""2024-02-29T23:59:59.123456789Z""#, 1_709_251_199_123_456),
        (#""2024-01-01T12:00:00.1Z""#, 1_704_110_400_100_000),
        (#""2024-01-01T12:00:00.000001+00:00""#, 1_704_110_400_000_001),
        (#""2000-01-01T00:00:00Z""#, 946_684_800_000_000),
        (#""2000-01-01T01:00:00+01:00""#, 946_684_800_000_000),
        (#""2099-12-31T23:59:59.999999999Z""#, 4_102_444_799_999_999),
        (#""2100-01-01T00:59:59+01:00""#, 4_102_444_799_000_000),
        (#""2024\u002d01-01T12:00:00Z""#, 1_704_110_400_000_000),
        ("1704110400", 1_704_110_400_000_000),
        ("1704110400.5", 1_704_110_400_500_000),
        ("1704110400.1234569", 1_704_110_400_123_456),
        ("1.7041104e9", 1_704_110_400_000_000),
        ("17041104005E-1", 1_704_110_400_500_000),
        ("946684800", 946_684_800_000_000),
        ("4102444799.999999", 4_102_444_799_999_999),
    ])
    func timestamps(_ raw: String, _ microseconds: Int64) throws {
        let line = #"{"v":1,"kind":"end","execution_id":"\#(F.uuid)","ts":\#(raw),"exit_code":0}"#
        #expect(try record(line).timestamp == Timestamp(microseconds: microseconds))
    }

    @Test func executionIDEitherCase() throws {
        let upper = F.uuid.uppercased()
        let line = #"{"v":1,"kind":"end","execution_id":"\#(upper)","ts":1732870000.5,"exit_code":0}"#
        let record = try record(line)
        #expect(record.executionID == F.executionID)
        #expect(record.executionID.description == F.uuid)
    }

    @Test func whitespaceOrderAndEscapedNames() throws {
        let line = "\t { \"exit_code\" : 3 ,\"ts\": 1732870000.5 , \"\\u006bind\":\"end\" ,\"execution_id\":\"\(F.uuid)\", \"v\" :1 }  \r"
        #expect(try record(line) == WireRecord(executionID: F.executionID, timestamp: F.ts, body: .end(exitCode: 3, durationSeconds: nil)))
        let escapedKind = F.data("\\u0065vent", #""level":"inf\u006f","operation":"op""#)
        #expect(try record(escapedKind).body == .event(level: .info, operation: "op", message: "", durationSeconds: nil))
    }

    @Test func overloadsAgree() throws {
        let bytes = Array(F.sampleEvent.utf8)
        let fromArray = try WireParser.parse(bytes)
        let fromString = try WireParser.parse(F.sampleEvent)
        let fromBuffer = try bytes.withUnsafeBytes { raw in try WireParser.parse(raw) }
        #expect(fromArray == fromString)
        #expect(fromArray == fromBuffer)
    }

    @Test func parsesFromTheMiddleOfALargerBuffer() throws {
        // The daemon hands out slices of its read buffer: bytes around the slice must not matter.
        let bytes = Array(("garbage\"{" + F.end() + "}\"more").utf8)
        let start = 9
        let count = F.end().utf8.count
        let message = try bytes.withUnsafeBytes { raw in
            try WireParser.parse(UnsafeRawBufferPointer(rebasing: raw[start..<start + count]))
        }
        #expect(message == .record(WireRecord(executionID: F.executionID, timestamp: F.ts, body: .end(exitCode: 0, durationSeconds: nil))))
    }

    @Test func unknownValuesMayNestAnything() throws {
        // Nested values are fully validated even though they are skipped: this is not an unknown-field test.
        do {
            _ = try WireParser.parse(F.event(#""extra":{"a":[1,{"b":null}],"c":"\u00e9"}"#))
            Issue.record("accepted")
        } catch {
            #expect(error.reason == .unknownField)
            #expect(error.detail.contains(#""extra""#))
        }
    }
}
