import Testing
import TelemetryWire

@Suite("JSONWriter")
struct JSONWriterTests {
    private func written(_ build: (inout JSONWriter) -> Void) -> String {
        var writer = JSONWriter()
        build(&writer)
        return writer.string
    }

    @Test func escapesEveryControlCharacter() throws {
        let named: [UInt8: String] = [0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"]
        let hex = Array("0123456789abcdef")
        for byte in UInt8(0)..<0x20 {
            let text = String(decoding: [0x61, byte, 0x62], as: UTF8.self)
            let expected = named[byte] ?? "\\u00\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xF)])"
            let json = written { $0.string(text) }
            #expect(json == "\"a\(expected)b\"", "byte \(byte)")
            #expect(try JSONValue.parse(json) == .string(text))
        }
    }

    @Test func escapesQuotesAndBackslashesOnly() throws {
        let text = "say \"hi\" \\ / \u{7F} é ✓ 😀"
        let json = written { $0.string(text) }
        #expect(json == #""say \"hi\" \\ / "# + "\u{7F} é ✓ 😀\"")
        #expect(try JSONValue.parse(json) == .string(text))
        // Same through the UTF-8 collection entry point.
        #expect(written { $0.string(utf8: Array(text.utf8)) } == json)
        #expect(written { $0.string(utf8: text.utf8) } == json)
    }

    @Test(arguments: [
        (5.0, "5"), (-5.0, "-5"), (0.0, "0"), (-0.0, "0"), (1.5, "1.5"), (0.1, "0.1"), (-2.25, "-2.25"),
        (1e-7, "1e-07"), (123456789.0, "123456789"), (9007199254740991.0, "9007199254740991"),
        (9007199254740992.0, "9007199254740992.0"), (1e16, "1e+16"), (1e300, "1e+300"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (Double.leastNonzeroMagnitude, "5e-324"), (1732870000.123456, "1732870000.123456"),
    ])
    func numbers(_ value: Double, _ expected: String) throws {
        let json = written { $0.number(value) }
        #expect(json == expected)
        #expect(try JSONValue.parse(json) == .number(value))
    }

    @Test(arguments: [0, 1, -1, 42, 255, Int64.max, Int64.min, 1_732_870_000_123_456])
    func integers(_ value: Int64) throws {
        let json = written { $0.integer(value) }
        #expect(json == String(value))
    }

    @Test func objectsArraysAndCommas() throws {
        var writer = JSONWriter(capacity: 16)
        writer.beginObject()
        writer.field("ok", true)
        writer.field("count", 3)
        writer.field("ratio", 0.5)
        writer.field("big", Int64(1) << 40)
        writer.field("name", "a\"b")
        writer.nullField("nothing")
        writer.key("list")
        writer.beginArray()
        writer.integer(1)
        writer.beginObject()
        writer.endObject()
        writer.beginArray()
        writer.endArray()
        writer.string("x")
        writer.null()
        writer.bool(false)
        writer.raw(Array(#"{"pre":[1,2]}"#.utf8))
        writer.endArray()
        writer.rawField("raw", Array("[true]".utf8))
        writer.key("nested")
        writer.beginObject()
        writer.key("deeper")
        writer.beginObject()
        writer.field("v", 1)
        writer.endObject()
        writer.endObject()
        writer.endObject()
        let json = writer.string
        #expect(json == #"{"ok":true,"count":3,"ratio":0.5,"big":1099511627776,"name":"a\"b","nothing":null,"list":[1,{},[],"x",null,false,{"pre":[1,2]}],"raw":[true],"nested":{"deeper":{"v":1}}}"#)
        let expected: JSONValue = [
            "ok": true, "count": 3, "ratio": 0.5, "big": 1_099_511_627_776, "name": "a\"b", "nothing": nil,
            "list": [1, [:], [], "x", nil, false, ["pre": [1, 2]]],
            "raw": [true], "nested": ["deeper": ["v": 1]],
        ]
        #expect(try JSONValue.parse(json) == expected)
        #expect(!json.contains("\n"))
    }

    @Test func writesAProtocolLineTheParserAccepts() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("v", 1)
        writer.field("kind", "event")
        writer.field("execution_id", Fixture.uuid)
        writer.field("ts", 1_732_870_000.5)
        writer.field("level", "error")
        writer.field("operation", "tab\there")
        writer.field("message", "line1\nline2 \u{01} \"quoted\" ✓")
        writer.field("duration_seconds", 0.25)
        writer.endObject()
        let message = try WireParser.parse(writer.bytes)
        #expect(message == .record(WireRecord(executionID: Fixture.executionID, timestamp: Fixture.ts,
            body: .event(level: .error, operation: "tab\there", message: "line1\nline2 \u{01} \"quoted\" ✓", durationSeconds: 0.25))))
    }

    @Test func resetKeepsNothing() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.integer(1)
        writer.reset()
        writer.integer(2)
        #expect(writer.string == "2")
    }
}

@Suite("JSONValue")
struct JSONValueTests {
    @Test func parsesEveryType() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5e1, true, false, null, "s\u00e9"], "b": {}, "c": [], "d": {"e": "f"}} "#)
        #expect(value == ["a": [1, -25, true, false, nil, "sé"], "b": [:], "c": [], "d": ["e": "f"]])
        #expect(value["a"]?[5]?.stringValue == "sé")
        #expect(value["a"]?[1]?.doubleValue == -25)
        #expect(value["a"]?[1]?.intValue == -25)
        #expect(value["a"]?[2]?.boolValue == true)
        #expect(value["a"]?[4]?.isNull == true)
        #expect(value["a"]?.arrayValue?.count == 6)
        #expect(value["d"]?.objectValue?.first?.0 == "e")
        #expect(value["missing"] == nil)
        #expect(value["a"]?[6] == nil)
        #expect(value["a"]?["x"] == nil)
        #expect(value.stringValue == nil)
        #expect(JSONValue.number(1.5).intValue == nil)
        #expect(JSONValue.number(1e300).intValue == nil)
    }

    @Test func topLevelScalars() throws {
        #expect(try JSONValue.parse("42") == 42)
        #expect(try JSONValue.parse(#""x""#) == "x")
        #expect(try JSONValue.parse("null") == nil)
        #expect(try JSONValue.parse(" true ") == true)
        #expect(try JSONValue.parse(Array("[]".utf8)) == [])
    }

    @Test func replyEnvelope() throws {
        let ok = try JSONValue.parse(#"{"ok":true,"executions":[{"execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","script":"deploy.sh"}]}"#)
        #expect(ok["ok"]?.boolValue == true)
        #expect(ok["executions"]?[0]?["script"]?.stringValue == "deploy.sh")
        let failed = try JSONValue.parse(#"{"ok":false,"error":"no such execution"}"#)
        #expect(failed["ok"]?.boolValue == false)
        #expect(failed["error"]?.stringValue == "no such execution")
    }

    @Test(arguments: [
        ("", RejectReason.notJSON), ("{", .notJSON), ("[1,]", .notJSON), ("{\"a\" 1}", .notJSON), ("01", .notJSON),
        ("[1] [2]", .notJSON), ("'x'", .notJSON), ("[NaN]", .nonFiniteNumber), ("-Infinity", .nonFiniteNumber),
        ("{\"a\":1e999}", .nonFiniteNumber), (#""\ud800""#, .invalidValue), ("[1,NaN,", .notJSON),
    ])
    func errors(_ text: String, _ reason: RejectReason) {
        do {
            let value = try JSONValue.parse(text)
            Issue.record("parsed \(value)")
        } catch {
            #expect(error.reason == reason, "\(error)")
            #expect(error.detail.contains("byte offset"))
        }
    }

    @Test func invalidUTF8() {
        #expect(throws: WireError(.invalidUTF8, "invalid UTF-8 at byte offset 2")) {
            try JSONValue.parse([0x22, 0x61, 0xFF, 0x22])
        }
    }

    @Test func serializedRoundTrips() throws {
        let value: JSONValue = [
            "s": "line\nbreak \"q\" \\ \u{0} é", "n": 1.25, "i": -7, "big": 1e21, "t": true, "f": false, "z": nil,
            "arr": [[], [:], [1, [2, [3]]]], "obj": ["k": ["deep": "x"]],
        ]
        let text = value.serialized()
        #expect(!text.contains("\n"))
        #expect(try JSONValue.parse(text) == value)
        #expect(value.description == text)
        #expect(JSONValue.number(.nan).serialized() == "null")
    }

    @Test func equalityIsOrderSensitiveForMembers() {
        let ab: JSONValue = ["a": 1, "b": 2]
        let ba: JSONValue = ["b": 2, "a": 1]
        #expect(ab != ba)
        #expect(ab == .object([("a", .number(1)), ("b", .number(2))]))
        #expect(JSONValue.string("1") != .number(1))
    }

    @Test func duplicateMembersKeepTheFirstForLookup() throws {
        let value = try JSONValue.parse(#"{"a":1,"a":2}"#)
        #expect(value["a"] == 1)
        #expect(value.objectValue?.count == 2)
    }

    @Test func deepNestingIsBounded() {
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: WireError.self) { try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: Never.self) { try JSONValue.parse(fine) }
    }
}

@Suite("JSONWriter numbers: the short-decimal path writes what description writes")
struct JSONWriterShortDecimalTests {
    private func written(_ value: Double) -> String {
        var writer = JSONWriter()
        writer.number(value)
        return writer.string
    }

    @Test(arguments: [0.001, 0.0015, 0.000999, 0.0001, 1e-05, 0.5, 1.001, 2.25, 123.456789, 999_999.999999,
                      999_999.9999995, 1_000_000.5, 0.1, 0.2, 0.3, 1.0000005, 42.000001, -0.001, -17.5, 3.14159265])
    func edgeCases(_ value: Double) {
        #expect(written(value) == value.description, "\(value)")
    }

    @Test func decimalsWithUpToSixFractionDigits() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let micros = Int64.random(in: 1...999_999_999_999, using: &generator)
            let value = Double(micros) / 1_000_000 * (Bool.random(using: &generator) ? 1 : -1)
            if value.rounded(.towardZero) == value { continue }
            #expect(written(value) == value.description, "\(micros)")
        }
    }

    @Test func arbitraryDoubles() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let value = Double.random(in: -2_000_000...2_000_000, using: &generator)
                / pow10(Int.random(in: 0...9, using: &generator))
            if value.rounded(.towardZero) == value { continue }
            #expect(written(value) == value.description, "\(value)")
        }
    }

    private func pow10(_ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<exponent { result *= 10 }
        return result
    }
}
