import Testing
import TelemetryWire

/// One line the parser must refuse, with the exact reason and words the detail must contain.
struct BadLine: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let reason: RejectReason
    /// Substrings of the detail: the field name (quoted) for field errors, "byte offset" for syntax errors.
    let mentions: [String]
    let maxLineBytes: Int

    init(_ label: String, _ line: String, _ reason: RejectReason, _ mentions: String..., maxLineBytes: Int = defaultMaxLineBytes) {
        self.label = label
        self.bytes = Array(line.utf8)
        self.reason = reason
        self.mentions = mentions
        self.maxLineBytes = maxLineBytes
    }

    init(_ label: String, bytes: [UInt8], _ reason: RejectReason, _ mentions: String...) {
        self.label = label
        self.bytes = bytes
        self.reason = reason
        self.mentions = mentions
        self.maxLineBytes = defaultMaxLineBytes
    }

    var testDescription: String { "\(reason.rawValue): \(label)" }
}

private typealias F = Fixture

private func withByte(_ line: String, replacing marker: String, by replacement: [UInt8]) -> [UInt8] {
    let bytes = Array(line.utf8)
    let pattern = Array(marker.utf8)
    for index in 0...(bytes.count - pattern.count) where Array(bytes[index..<index + pattern.count]) == pattern {
        return Array(bytes[..<index]) + replacement + Array(bytes[(index + pattern.count)...])
    }
    fatalError("marker not found")
}

private let long257 = String(repeating: "s", count: 257)
private let long129 = String(repeating: "x", count: 129)
private let long1025 = String(repeating: "v", count: 1025)
private let uuid = Fixture.uuid

let badLines: [BadLine] = [
    // Length, encoding, syntax, shape.
    BadLine("over the limit", F.sampleEvent, .tooLong, "263 bytes", "limit of 100", maxLineBytes: 100),
    BadLine("limit + 1", String(repeating: " ", count: 11), .tooLong, "11 bytes", maxLineBytes: 10),
    BadLine("stray 0xFF", bytes: withByte(F.event(#""message":"@""#), replacing: "@", by: [0xFF]), .invalidUTF8, "byte offset"),
    BadLine("overlong slash", bytes: withByte(F.event(#""message":"@""#), replacing: "@", by: [0xC0, 0xAF]), .invalidUTF8, "byte offset"),
    BadLine("encoded surrogate", bytes: withByte(F.event(#""message":"@""#), replacing: "@", by: [0xED, 0xA0, 0x80]), .invalidUTF8, "byte offset"),
    BadLine("truncated sequence", bytes: withByte(F.event(#""message":"@""#), replacing: "@", by: [0xE2, 0x82]), .invalidUTF8, "byte offset"),
    BadLine("above U+10FFFF", bytes: withByte(F.event(#""message":"@""#), replacing: "@", by: [0xF4, 0x90, 0x80, 0x80]), .invalidUTF8, "byte offset"),
    BadLine("bad UTF-8 outside a string", bytes: [0x7B, 0xFE, 0x7D], .invalidUTF8, "byte offset 1"),
    BadLine("empty line", "", .notJSON, "byte offset 0"),
    BadLine("only spaces", "   ", .notJSON, "byte offset 3"),
    BadLine("unclosed object", "{", .notJSON, "byte offset 1"),
    BadLine("trailing comma", #"{"v":1,}"#, .notJSON, "byte offset 7", "member name"),
    BadLine("leading zero", #"{"v":01}"#, .notJSON, "byte offset", "leading zero"),
    BadLine("content after the object", #"{"v":1} x"#, .notJSON, "byte offset 8", "'x'"),
    BadLine("two objects", #"{"v":1}{"v":1}"#, .notJSON, "byte offset 7"),
    BadLine("unquoted key", #"{v:1}"#, .notJSON, "byte offset 1"),
    BadLine("single quotes", #"{'v':1}"#, .notJSON, "byte offset 1"),
    BadLine("missing colon", #"{"v" 1}"#, .notJSON, "byte offset 5", "':'"),
    BadLine("missing comma", #"{"v":1 "kind":"event"}"#, .notJSON, "byte offset 7", "','"),
    BadLine("unterminated string", #"{"v":1,"kind":"eve"#, .notJSON, "unterminated string", "byte offset"),
    BadLine("raw tab in a string", "{\"v\":1,\"kind\":\"ev\tent\"}", .notJSON, "byte offset 17", "tab"),
    BadLine("raw newline in a string", "{\"v\":1,\"kind\":\"ev\nent\"}", .notJSON, "byte offset 17"),
    BadLine("unknown escape", #"{"v":1,"kind":"\x41"}"#, .notJSON, "byte offset", "escape"),
    BadLine("short unicode escape", #"{"v":1,"kind":"\u12"}"#, .notJSON, "byte offset", "4 hex digits"),
    BadLine("lowercase nan", #"{"v":nan}"#, .notJSON, "byte offset 5"),
    BadLine("misspelled true", #"{"v":tru}"#, .notJSON, "byte offset 5"),
    BadLine("number with a bare dot", #"{"v":1.}"#, .notJSON, "byte offset 7", "decimal point"),
    BadLine("lone minus", #"{"v":-}"#, .notJSON, "byte offset"),
    BadLine("leading dot", #"{"v":.5}"#, .notJSON, "byte offset 5"),
    BadLine("leading plus", #"{"v":+1}"#, .notJSON, "byte offset 5"),
    BadLine("empty exponent", #"{"v":1e}"#, .notJSON, "byte offset 7", "exponent"),
    BadLine("unclosed array in a member", #"{"x":[1,2}"#, .notJSON, "byte offset 9"),
    BadLine("nesting too deep", #"{"x":"# + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}",
            .notJSON, "nested deeper"),
    BadLine("syntax error after a NaN", #"{"v":1,"x":NaN,"#, .notJSON, "byte offset 15"),
    BadLine("array", "[1,2]", .notObject, "JSON object", "an array"),
    BadLine("string", #""event""#, .notObject, "JSON object", "a string"),
    BadLine("number", "42", .notObject, "JSON object", "a number"),
    BadLine("null", "null", .notObject, "JSON object", "null"),
    BadLine("array holding NaN", "[NaN]", .notObject, "JSON object"),

    // Non-finite numbers, anywhere.
    BadLine("NaN duration", F.event(#""duration_seconds":NaN"#), .nonFiniteNumber, #""duration_seconds""#, "NaN"),
    BadLine("Infinity value", F.metric().replacingValue(with: "Infinity"), .nonFiniteNumber, #""value""#, "Infinity"),
    BadLine("-Infinity value", F.metric().replacingValue(with: "-Infinity"), .nonFiniteNumber, #""value""#, "-Infinity"),
    BadLine("1e999 value", F.metric().replacingValue(with: "1e999"), .nonFiniteNumber, #""value""#, "1e999"),
    BadLine("-1e999 value", F.metric().replacingValue(with: "-1e999"), .nonFiniteNumber, #""value""#, "-1e999"),
    BadLine("just above DBL_MAX", F.metric().replacingValue(with: "1.8e308"), .nonFiniteNumber, #""value""#),
    BadLine("400-digit integer", F.metric().replacingValue(with: String(repeating: "9", count: 400)), .nonFiniteNumber, #""value""#),
    BadLine("NaN nested in an unknown field", F.event(#""extra":{"a":[1,NaN]}"#), .nonFiniteNumber, #""extra""#),
    BadLine("NaN ts", #"{"v":1,"kind":"end","execution_id":"\#(uuid)","ts":NaN,"exit_code":0}"#, .nonFiniteNumber, #""ts""#),
    BadLine("NaN before a duplicate", #"{"v":1,"v":1,"x":NaN}"#, .nonFiniteNumber, #""x""#),

    // Duplicates (before anything about v or kind).
    BadLine("duplicate ts", F.event(#""ts":1732870001"#), .invalidValue, #""ts""#, "twice"),
    BadLine("duplicate v", #"{"v":1,"v":2,"kind":"event"}"#, .invalidValue, #""v""#, "twice"),
    BadLine("duplicate via an escape", #"{"v":1,"\u0076":1,"kind":"control","request":"status"}"#, .invalidValue, #""\u0076""#, "twice"),
    BadLine("duplicate unknown field", F.event(#""foo":1,"foo":2"#), .invalidValue, #""foo""#, "twice"),

    // v
    BadLine("missing v", #"{"kind":"control","request":"status"}"#, .missingField, #""v""#),
    BadLine("v as a string", #"{"v":"1","kind":"control","request":"status"}"#, .wrongType, #""v""#, "integer"),
    BadLine("v with a fraction", #"{"v":1.0,"kind":"control","request":"status"}"#, .wrongType, #""v""#, "1.0"),
    BadLine("v with an exponent", #"{"v":1e0,"kind":"control","request":"status"}"#, .wrongType, #""v""#),
    BadLine("v as a boolean", #"{"v":true,"kind":"control","request":"status"}"#, .wrongType, #""v""#),
    BadLine("v null", #"{"v":null,"kind":"control","request":"status"}"#, .wrongType, #""v""#),
    BadLine("v 2", #"{"v":2,"kind":"control","request":"status"}"#, .unsupportedVersion, #""v""#, "version 1"),
    BadLine("v 0", #"{"v":0,"kind":"control","request":"status"}"#, .unsupportedVersion, #""v""#, "got", "0"),
    BadLine("v huge", #"{"v":99999999999999999999,"kind":"control"}"#, .unsupportedVersion, #""v""#, "99999999999999999999"),
    BadLine("v 2 beats unknown fields", #"{"v":2,"kind":"control","whatever":1}"#, .unsupportedVersion, #""v""#),

    // kind
    BadLine("missing kind", #"{"v":1,"execution_id":"\#(uuid)"}"#, .missingField, #""kind""#),
    BadLine("kind as a number", #"{"v":1,"kind":5}"#, .wrongType, #""kind""#, "a string"),
    BadLine("unknown kind", #"{"v":1,"kind":"bogus"}"#, .unknownKind, #""kind""#, "start, event, metric, tag, end, control", #""bogus""#),
    BadLine("kind is case-sensitive", #"{"v":1,"kind":"Event"}"#, .unknownKind, #""kind""#),
    BadLine("empty kind", #"{"v":1,"kind":"","foo":1}"#, .unknownKind, #""kind""#),

    // Unknown fields.
    BadLine("unknown field", F.event(#""foo":1"#), .unknownField, #""foo""#, "event"),
    BadLine("uid is never accepted from JSON", F.start(#""uid":0"#), .unknownField, #""uid""#),
    BadLine("field of another kind", F.metric(#""level":"info""#), .unknownField, #""level""#, "metric"),
    BadLine("request on a data line", F.start(#""request":"flush""#), .unknownField, #""request""#),
    BadLine("event field on control", F.control("status", #""level":"info""#), .unknownField, #""level""#, "control"),
    BadLine("first unknown is reported", F.event(#""zzz":1,"aaa":2"#), .unknownField, #""zzz""#),
    BadLine("known-but-disallowed before unknown", F.tag(#""exit_code":1,"zzz":1"#), .unknownField, #""exit_code""#),

    // execution_id
    BadLine("missing execution_id", #"{"v":1,"kind":"event","ts":1732870000,"level":"info","operation":"x"}"#, .missingField, #""execution_id""#, "event"),
    BadLine("execution_id as a number", #"{"v":1,"kind":"tag","execution_id":123,"ts":1732870000,"key":"a","value":"b"}"#, .wrongType, #""execution_id""#),
    BadLine("execution_id too short", #"{"v":1,"kind":"tag","execution_id":"abc","ts":1732870000,"key":"a","value":"b"}"#, .badExecutionID, #""execution_id""#, #""abc""#),
    BadLine("execution_id non-hex", #"{"v":1,"kind":"tag","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1g","ts":1732870000,"key":"a","value":"b"}"#, .badExecutionID, #""execution_id""#),
    BadLine("execution_id without hyphens", #"{"v":1,"kind":"tag","execution_id":"6f1c2f8e2b0a4c1e9d7a3e5b8c9d0a1b","ts":1732870000,"key":"a","value":"b"}"#, .badExecutionID, #""execution_id""#),
    BadLine("execution_id in braces", #"{"v":1,"kind":"tag","execution_id":"{6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b}","ts":1732870000,"key":"a","value":"b"}"#, .badExecutionID, #""execution_id""#),
    BadLine("execution_id hyphens misplaced", #"{"v":1,"kind":"tag","execution_id":"6f1c2f8e2-b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":1732870000,"key":"a","value":"b"}"#, .badExecutionID, #""execution_id""#),

    // ts
    BadLine("missing ts", #"{"v":1,"kind":"end","execution_id":"\#(uuid)","exit_code":0}"#, .missingField, #""ts""#, "end"),
    BadLine("ts boolean", F.end().replacingTS(with: "true"), .wrongType, #""ts""#),
    BadLine("ts null", F.end().replacingTS(with: "null"), .wrongType, #""ts""#),
    BadLine("ts object", F.end().replacingTS(with: "{}"), .wrongType, #""ts""#),
    BadLine("ts words", F.end().replacingTS(with: #""yesterday""#), .badTimestamp, #""ts""#, "yesterday"),
    BadLine("ts month 13", F.end().replacingTS(with: #""2024-13-01T00:00:00Z""#), .badTimestamp, #""ts""#),
    BadLine("ts 2023-02-29", F.end().replacingTS(with: #""2023-02-29T00:00:00Z""#), .badTimestamp, #""ts""#),
    BadLine("ts without zone", F.end().replacingTS(with: #""2024-01-01T12:00:00""#), .badTimestamp, #""ts""#),
    BadLine("ts with a space", F.end().replacingTS(with: #""2024-01-01 12:00:00Z""#), .badTimestamp, #""ts""#),
    BadLine("ts 10 fraction digits", F.end().replacingTS(with: #""2024-01-01T12:00:00.1234567891Z""#), .badTimestamp, #""ts""#),
    BadLine("ts empty fraction", F.end().replacingTS(with: #""2024-01-01T12:00:00.Z""#), .badTimestamp, #""ts""#),
    BadLine("ts leap second", F.end().replacingTS(with: #""2016-12-31T23:59:60Z""#), .badTimestamp, #""ts""#),
    BadLine("ts hour 24", F.end().replacingTS(with: #""2024-01-01T24:00:00Z""#), .badTimestamp, #""ts""#),
    BadLine("ts offset without colon", F.end().replacingTS(with: #""2024-01-01T12:00:00+0200""#), .badTimestamp, #""ts""#),
    BadLine("ts numeric string", F.end().replacingTS(with: #""1732870000""#), .badTimestamp, #""ts""#),
    BadLine("ts before 2000 (RFC 3339)", F.end().replacingTS(with: #""1999-12-31T23:59:59.999Z""#), .badTimestamp, #""ts""#, "2000-01-01"),
    BadLine("ts 2000 via an offset", F.end().replacingTS(with: #""2000-01-01T00:30:00+01:00""#), .badTimestamp, #""ts""#),
    BadLine("ts at 2100 (RFC 3339)", F.end().replacingTS(with: #""2100-01-01T00:00:00Z""#), .badTimestamp, #""ts""#, "2100-01-01"),
    BadLine("ts before 2000 (seconds)", F.end().replacingTS(with: "946684799.999999"), .badTimestamp, #""ts""#),
    BadLine("ts at 2100 (seconds)", F.end().replacingTS(with: "4102444800"), .badTimestamp, #""ts""#),
    BadLine("ts milliseconds by mistake", F.end().replacingTS(with: "1732870000123"), .badTimestamp, #""ts""#),
    BadLine("ts negative", F.end().replacingTS(with: "-5"), .badTimestamp, #""ts""#),
    BadLine("ts zero", F.end().replacingTS(with: "0"), .badTimestamp, #""ts""#),
    BadLine("ts exponent out of range", F.end().replacingTS(with: "1e20"), .badTimestamp, #""ts""#),

    // start
    BadLine("start without script", F.data("start"), .missingField, #""script""#, "start"),
    BadLine("start empty script", F.data("start", #""script":"""#), .invalidValue, #""script""#, "empty"),
    BadLine("start script 257 bytes", F.data("start", #""script":"\#(long257)""#), .invalidValue, #""script""#, "256"),
    BadLine("start script number", F.data("start", #""script":5"#), .wrongType, #""script""#, "a string"),
    BadLine("start version 129 bytes", F.start(#""version":"\#(long129)""#), .invalidValue, #""version""#, "128"),
    BadLine("start version number", F.start(#""version":1.2"#), .wrongType, #""version""#),
    BadLine("start environment 129 bytes", F.start(#""environment":"\#(long129)""#), .invalidValue, #""environment""#, "128"),
    BadLine("start environment null", F.start(#""environment":null"#), .wrongType, #""environment""#),
    BadLine("start pid 0", F.start(#""pid":0"#), .invalidValue, #""pid""#, "1 to 2147483647"),
    BadLine("start pid negative", F.start(#""pid":-1"#), .invalidValue, #""pid""#),
    BadLine("start pid 2^31", F.start(#""pid":2147483648"#), .invalidValue, #""pid""#),
    BadLine("start pid fraction", F.start(#""pid":1.5"#), .wrongType, #""pid""#, "integer"),
    BadLine("start pid exponent", F.start(#""pid":1e3"#), .wrongType, #""pid""#, "integer"),
    BadLine("start pid string", F.start(#""pid":"123""#), .wrongType, #""pid""#),

    // event
    BadLine("event without level", F.data("event", #""operation":"x""#), .missingField, #""level""#, "event"),
    BadLine("event level fatal", F.data("event", #""level":"fatal","operation":"x""#), .invalidValue,
            #"field "level" must be one of success, error, warning, info, debug (got "fatal")"#),
    BadLine("event level uppercase", F.data("event", #""level":"INFO","operation":"x""#), .invalidValue, #""level""#),
    BadLine("event level number", F.data("event", #""level":1,"operation":"x""#), .wrongType, #""level""#),
    BadLine("event without operation", F.data("event", #""level":"info""#), .missingField, #""operation""#),
    BadLine("event empty operation", F.data("event", #""level":"info","operation":"""#), .invalidValue, #""operation""#, "empty"),
    BadLine("event operation 257 bytes", F.data("event", #""level":"info","operation":"\#(long257)""#), .invalidValue, #""operation""#, "256"),
    BadLine("event operation array", F.data("event", #""level":"info","operation":["x"]"#), .wrongType, #""operation""#, "an array"),
    BadLine("event message number", F.event(#""message":5"#), .wrongType, #""message""#),
    BadLine("event message lone high surrogate", F.event(#""message":"a\ud800b""#), .invalidValue, #""message""#, "surrogate"),
    BadLine("event message lone low surrogate", F.event(#""message":"\udc00""#), .invalidValue, #""message""#, "surrogate"),
    BadLine("event message high then non-low", F.event(#""message":"\ud800\u0041""#), .invalidValue, #""message""#, "surrogate"),
    BadLine("event message high at the end", F.event(#""message":"x\uD83D""#), .invalidValue, #""message""#, "surrogate"),
    BadLine("event negative duration", F.event(#""duration_seconds":-1"#), .invalidValue, #""duration_seconds""#, ">= 0"),
    BadLine("event duration string", F.event(#""duration_seconds":"1.5""#), .wrongType, #""duration_seconds""#, "a number"),

    // metric
    BadLine("metric without name", F.data("metric", #""value":1"#), .missingField, #""name""#, "metric"),
    BadLine("metric empty name", F.data("metric", #""name":"","value":1"#), .invalidValue, #""name""#, "empty"),
    BadLine("metric name starting with a digit", F.data("metric", #""name":"1rows","value":1"#), .invalidValue, #""name""#, "[A-Za-z_]"),
    BadLine("metric name with a space", F.data("metric", #""name":"row count","value":1"#), .invalidValue, #""name""#),
    BadLine("metric name non-ASCII", F.data("metric", #""name":"größe","value":1"#), .invalidValue, #""name""#),
    BadLine("metric name 129 bytes", F.data("metric", #""name":"\#(long129)","value":1"#), .invalidValue, #""name""#, "128"),
    BadLine("metric without value", F.data("metric", #""name":"rows""#), .missingField, #""value""#),
    BadLine("metric value string", F.data("metric", #""name":"rows","value":"5""#), .wrongType, #""value""#, "a number", #""5""#),
    BadLine("metric value boolean", F.data("metric", #""name":"rows","value":true"#), .wrongType, #""value""#),
    BadLine("metric value null", F.data("metric", #""name":"rows","value":null"#), .wrongType, #""value""#),

    // tag
    BadLine("tag without key", F.data("tag", #""value":"x""#), .missingField, #""key""#, "tag"),
    BadLine("tag empty key", F.data("tag", #""key":"","value":"x""#), .invalidValue, #""key""#),
    BadLine("tag key 129 bytes", F.data("tag", #""key":"\#(long129)","value":"x""#), .invalidValue, #""key""#, "128"),
    BadLine("tag without value", F.data("tag", #""key":"region""#), .missingField, #""value""#),
    BadLine("tag value 1025 bytes", F.data("tag", #""key":"k","value":"\#(long1025)""#), .invalidValue, #""value""#, "1024"),
    BadLine("tag value number", F.data("tag", #""key":"k","value":5"#), .wrongType, #""value""#, "a string"),

    // end
    BadLine("end without exit_code", F.data("end"), .missingField, #""exit_code""#, "end"),
    BadLine("end exit_code 256", F.data("end", #""exit_code":256"#), .invalidValue, #""exit_code""#, "0 to 255"),
    BadLine("end exit_code -1", F.data("end", #""exit_code":-1"#), .invalidValue, #""exit_code""#),
    BadLine("end exit_code 1.0", F.data("end", #""exit_code":1.0"#), .wrongType, #""exit_code""#, "integer"),
    BadLine("end exit_code string", F.data("end", #""exit_code":"0""#), .wrongType, #""exit_code""#),
    BadLine("end negative duration", F.end(#""duration_seconds":-0.5"#), .invalidValue, #""duration_seconds""#),

    // control
    BadLine("control without request", #"{"v":1,"kind":"control"}"#, .missingField, #""request""#, "control"),
    BadLine("control unknown request", F.control("restart"), .invalidValue, #""request""#, "flush, sync, status, executions, show, test_connection, deadletters", #""restart""#),
    BadLine("control request number", #"{"v":1,"kind":"control","request":5}"#, .wrongType, #""request""#),
    BadLine("control limit 0", F.control("executions", #""limit":0"#), .invalidValue, #""limit""#, "1 to 10000"),
    BadLine("control limit 10001", F.control("executions", #""limit":10001"#), .invalidValue, #""limit""#),
    BadLine("control limit fraction", F.control("executions", #""limit":1.5"#), .wrongType, #""limit""#, "integer"),
    BadLine("control limit string", F.control("executions", #""limit":"5""#), .wrongType, #""limit""#),
    BadLine("control script number", F.control("executions", #""script":5"#), .wrongType, #""script""#),
    BadLine("control empty script", F.control("executions", #""script":"""#), .invalidValue, #""script""#),
    BadLine("show without execution_id", F.control("show"), .missingField, #""execution_id""#, "show"),
    BadLine("show with a bad execution_id", F.control("show", #""execution_id":"nope""#), .badExecutionID, #""execution_id""#, "nope"),
    BadLine("status with a bad execution_id", F.control("status", #""execution_id":"nope""#), .badExecutionID, #""execution_id""#),
    BadLine("show execution_id number", F.control("show", #""execution_id":7"#), .wrongType, #""execution_id""#),
]

extension String {
    /// Replaces the metric fixture's `"value":5`.
    func replacingValue(with raw: String) -> String { replacingFirst(#""value":5"#, with: #""value":"# + raw) }
    /// Replaces the fixture's `"ts":1732870000.5`.
    func replacingTS(with raw: String) -> String { replacingFirst(#""ts":1732870000.5"#, with: #""ts":"# + raw) }

    func replacingFirst(_ target: String, with replacement: String) -> String {
        let bytes = Array(utf8)
        let pattern = Array(target.utf8)
        for index in 0...(bytes.count - pattern.count) where Array(bytes[index..<index + pattern.count]) == pattern {
            return String(decoding: bytes[..<index] + Array(replacement.utf8) + bytes[(index + pattern.count)...], as: UTF8.self)
        }
        fatalError("\(target) not found in \(self)")
    }
}

@Suite("WireParser rejects")
struct WireParserRejectTests {
    @Test(arguments: badLines)
    func rejects(_ bad: BadLine) {
        do {
            let message = try WireParser.parse(bad.bytes, maxLineBytes: bad.maxLineBytes)
            Issue.record("accepted \(String(decoding: bad.bytes, as: UTF8.self)) as \(message)")
        } catch {
            #expect(error.reason == bad.reason, "\(error.detail)")
            for mention in bad.mentions {
                #expect(error.detail.contains(mention), "detail \(error.detail.debugDescription) lacks \(mention.debugDescription)")
            }
            #expect(!error.detail.isEmpty)
        }
    }

    @Test("every parser-side reject reason is covered by the table")
    func tableCoversEveryReason() {
        let covered = Set(badLines.map(\.reason))
        let daemonOnly: Set<RejectReason> = [.executionClosed, .disabled, .notPermitted, .storeFull]
        #expect(covered == Set(RejectReason.allCases).subtracting(daemonOnly))
    }

    @Test("the three overloads agree")
    func overloadsAgree() throws {
        for bad in badLines where bad.maxLineBytes == defaultMaxLineBytes {
            guard let text = String(validating: bad.bytes, as: UTF8.self) else { continue }
            var fromString: WireError?
            var fromBytes: WireError?
            do { _ = try WireParser.parse(text) } catch { fromString = error }
            do { _ = try WireParser.parse(bad.bytes) } catch { fromBytes = error }
            #expect(fromString == fromBytes, "\(bad.label)")
        }
    }

    @Test("a trailing CR does not hide an error and the limit counts it")
    func carriageReturn() {
        do {
            _ = try WireParser.parse(F.event(#""foo":1"#) + "\r")
            Issue.record("accepted")
        } catch {
            #expect(error.reason == .unknownField)
        }
        let line = Array(F.event().utf8)
        #expect(throws: WireError.self) { try WireParser.parse(line + [0x0D], maxLineBytes: line.count) }
        #expect(throws: Never.self) { try WireParser.parse(line + [0x0D], maxLineBytes: line.count + 1) }
    }

    @Test("a line of exactly maxLineBytes is parsed")
    func exactLimit() throws {
        let line = Array(F.sampleEvent.utf8)
        _ = try WireParser.parse(line, maxLineBytes: line.count)
        #expect(throws: WireError(.tooLong, "line is \(line.count) bytes, more than the limit of \(line.count - 1) bytes")) {
            try WireParser.parse(line, maxLineBytes: line.count - 1)
        }
    }

    @Test("non-finite numbers are reported after syntax, before fields")
    func precedence() {
        func reason(_ line: String) -> RejectReason? {
            do { _ = try WireParser.parse(line); return nil } catch { return error.reason }
        }
        #expect(reason(#"{"v":NaN,"kind":"nope"}"#) == .nonFiniteNumber)
        #expect(reason(#"{"v":1,"kind":"event","x":Infinity"#) == .notJSON)
        #expect(reason(#"[1e999]"#) == .notObject)
        #expect(reason(#"{"v":1,"kind":"nope","zzz":1}"#) == .unknownKind)
        #expect(reason(#"{"kind":"control","request":"status","zzz":1}"#) == .missingField)
    }
}
