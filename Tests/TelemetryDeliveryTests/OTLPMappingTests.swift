import Foundation
import Testing
import TelemetryCore
import TelemetryDelivery
import TelemetryWire

// Documents as `telemetry show ID --json` prints them (the first two captured from a running daemon).

/// start, info event with a duration and non-ASCII, an error, a success, two metrics, a tag, end exit 1.
private let fullDocument = #"""
{"schema_version":1,"timestamp":"2024-05-01T12:00:00.123Z","script_name":"backup.sh","script_version":"1.2.3","execution_id":"0f8c2b1e-5d4a-4e6b-9a7c-1234567890ab","user_id":"u_9c8342334d1b0a453d2fbf28eccf7b4b","environment":"production","host":"vm","status":"failure","exit_code":1,"duration_seconds":5.876,"ended_at":"2024-05-01T12:00:05.999Z","closed_at":"2026-11-29T04:49:17.989Z","metrics":{"files_copied":42,"memory_usage":150000000},"events":[{"type":"info","operation":"copy","message":"Kopie läuft 🚀","timestamp":"2024-05-01T12:00:01.500Z","duration_seconds":1.25},{"type":"success","operation":"verify","message":"ok","timestamp":"2024-05-01T12:00:02.000Z"}],"errors":[{"type":"error","operation":"upload","message":"quota exceeded","timestamp":"2024-05-01T12:00:02.000Z"}],"tags":{"region":"eu-west"},"dropped_events":0}
"""#

/// A start line only, closed by TELEMETRY_EXECUTION_TIMEOUT: no version, environment, exit code or duration.
private let incompleteDocument = #"""
{"schema_version":1,"timestamp":"2024-05-01T12:00:00.000Z","script_name":"nightly","script_version":"","execution_id":"11111111-2222-4333-8444-555555555555","user_id":"u_ea44c15f99ad0b8f1a1fdfdb67803698","environment":"","host":"vm","status":"incomplete","exit_code":null,"duration_seconds":null,"ended_at":null,"closed_at":"2026-11-29T04:49:34.911Z","metrics":{},"events":[],"errors":[],"tags":{},"dropped_events":0}
"""#

/// Ended with exit code 0 and nothing else: no events, errors, metrics or tags.
private let noEventsDocument = #"""
{"schema_version":1,"timestamp":"2024-06-01T00:00:00.000Z","script_name":"cleanup","script_version":"2","execution_id":"22222222-3333-4444-8555-666666666666","user_id":"u_0123456789abcdef0123456789abcdef","environment":"staging","host":"db-1","status":"success","exit_code":0,"duration_seconds":2,"ended_at":"2024-06-01T00:00:02.000Z","closed_at":"2024-06-01T00:00:02.010Z","metrics":{},"events":[],"errors":[],"tags":{},"dropped_events":0}
"""#

/// Non-ASCII and JSON escapes everywhere a string can go.
private let nonASCIIDocument = #"""
{"schema_version":1,"timestamp":"2024-07-01T08:00:00.000Z","script_name":"sauvegarde-été","script_version":"ß-1","execution_id":"33333333-4444-4555-8666-777777777777","user_id":"u_ffffffffffffffffffffffffffffffff","environment":"prod-日本","host":"höst","status":"success","exit_code":0,"duration_seconds":0.001,"ended_at":"2024-07-01T08:00:00.001Z","closed_at":"2024-07-01T08:00:00.002Z","metrics":{"größe":1e-7},"events":[{"type":"warning","operation":"übertragung","message":"line1\nline2\t\"quoted\" \\ \u0001 😀 ","timestamp":"2024-07-01T08:00:00.000Z"},{"type":"debug","operation":"x","message":"","timestamp":"2024-07-01T08:00:00.000Z"}],"errors":[],"tags":{"ключ":"значение","emoji 🚀":"✓"},"dropped_events":3}
"""#

private func document(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

/// A document with `count` tags `tag000`… and one event.
private func manyTagsDocument(_ count: Int) throws -> JSONValue {
    var document = try JSONValue.parse(noEventsDocument)
    guard case .object(var members) = document else { return document }
    let tags = (0..<count).map { index -> (String, JSONValue) in
        let key = "tag" + String(repeating: "0", count: 3 - String(index).count) + String(index)
        return (key, .string("value \(index)"))
    }
    for index in members.indices {
        if members[index].0 == "tags" { members[index].1 = .object(tags) }
        if members[index].0 == "events" {
            members[index].1 = [["type": "info", "operation": "op", "message": "m", "timestamp": "2024-06-01T00:00:01.000Z"]]
        }
    }
    document = .object(members)
    return document
}

// MARK: Reading the produced JSON

private func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONValue.parse(bytes) }

/// `attributes` (an array of KeyValue) as (key, AnyValue) pairs in order.
private func attributes(_ owner: JSONValue?) -> [(String, JSONValue)] {
    (owner?["attributes"]?.arrayValue ?? []).map { ($0["key"]?.stringValue ?? "?", $0["value"] ?? .null) }
}

private func attribute(_ owner: JSONValue?, _ key: String) -> JSONValue? {
    attributes(owner).first { $0.0 == key }?.1
}

private func resourceAttributes(_ entry: JSONValue?) -> [(String, JSONValue)] {
    attributes(entry?["resource"])
}

private func logRecords(_ request: JSONValue, resource: Int = 0) -> [JSONValue] {
    request["resourceLogs"]?[resource]?["scopeLogs"]?[0]?["logRecords"]?.arrayValue ?? []
}

private func metrics(_ request: JSONValue, resource: Int = 0) -> [JSONValue] {
    request["resourceMetrics"]?[resource]?["scopeMetrics"]?[0]?["metrics"]?.arrayValue ?? []
}

private func point(_ metric: JSONValue?) -> JSONValue? { metric?["gauge"]?["dataPoints"]?[0] }

private func keys(_ value: JSONValue?) -> [String] { value?.objectValue?.map(\.0) ?? [] }

private func str(_ text: String) -> JSONValue { ["stringValue": .string(text)] }
private func int(_ text: String) -> JSONValue { ["intValue": .string(text)] }
private func dbl(_ number: Double) -> JSONValue { ["doubleValue": .number(number)] }

private func sameAttributes(_ actual: [(String, JSONValue)], _ expected: [(String, JSONValue)],
                            sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.map(\.0) == expected.map(\.0), sourceLocation: sourceLocation)
    for ((key, value), (_, want)) in zip(actual, expected) {
        #expect(value == want, "attribute \(key)", sourceLocation: sourceLocation)
    }
}

@Suite("OTLP mapping")
struct OTLPMappingTests {
    // MARK: Logs

    @Test("logs: resource, scope and every field of a full document")
    func logsFullDocument() throws {
        let request = try parse(OTLPMapping.logsRequest(documents: [document(fullDocument)]))
        #expect(keys(request) == ["resourceLogs"])
        let resources = try #require(request["resourceLogs"]?.arrayValue)
        #expect(resources.count == 1)
        #expect(keys(resources[0]) == ["resource", "scopeLogs"])
        sameAttributes(resourceAttributes(resources[0]), [
            ("service.name", str("backup.sh")),
            ("service.version", str("1.2.3")),
            ("deployment.environment.name", str("production")),
            ("deployment.environment", str("production")),
            ("host.name", str("vm")),
            ("telemetry.execution.id", str("0f8c2b1e-5d4a-4e6b-9a7c-1234567890ab")),
        ])
        let scopeLogs = try #require(resources[0]["scopeLogs"]?.arrayValue)
        #expect(scopeLogs.count == 1)
        #expect(scopeLogs[0]["scope"] == ["name": "telemetryd", "version": .string(telemetrydVersion)])

        let records = logRecords(request)
        // Events and errors interleaved by time (events first at equal times), then the end record.
        #expect(records.map { $0["severityText"]?.stringValue } == ["info", "success", "error", "error"])
        #expect(records.map { $0["severityNumber"]?.intValue } == [9, 9, 17, 17])
        #expect(records.map { $0["body"] } == [
            str("Kopie läuft 🚀"), str("ok"), str("quota exceeded"),
            str("execution ended: failure, exit code 1, 5.876 s"),
        ])
        #expect(records.map { $0["timeUnixNano"] } == [
            "1714564801500000000", "1714564802000000000", "1714564802000000000", "1714564805999000000",
        ])
        // Observed: when telemetryd closed the execution (closed_at), the same for every record.
        #expect(records.allSatisfy { $0["observedTimeUnixNano"] == "1795927757989000000" })
        for record in records {
            #expect(keys(record) == ["timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText",
                                     "body", "attributes"])
        }
        let common: [(String, JSONValue)] = [
            ("script.execution_id", str("0f8c2b1e-5d4a-4e6b-9a7c-1234567890ab")),
            ("enduser.id", str("u_9c8342334d1b0a453d2fbf28eccf7b4b")),
            ("script.tag.region", str("eu-west")),
        ]
        sameAttributes(attributes(records[0]), common + [
            ("script.operation", str("copy")),
            ("script.event.type", str("info")),
            ("script.event.duration_seconds", dbl(1.25)),
        ])
        sameAttributes(attributes(records[1]), common + [
            ("script.operation", str("verify")), ("script.event.type", str("success")),
        ])
        sameAttributes(attributes(records[2]), common + [
            ("script.operation", str("upload")), ("script.event.type", str("error")),
        ])
        sameAttributes(attributes(records[3]), common + [
            ("script.event.type", str("end")),
            ("script.execution.status", str("failure")),
            ("script.execution.exit_code", int("1")),
            ("script.execution.duration_seconds", dbl(5.876)),
            ("script.execution.dropped_events", int("0")),
        ])
    }

    @Test("logs: a document without events or errors gives only the end record")
    func logsNoEvents() throws {
        let request = try parse(OTLPMapping.logsRequest(documents: [document(noEventsDocument)]))
        let records = logRecords(request)
        #expect(records.count == 1)
        #expect(records[0]["severityNumber"] == 9)
        #expect(records[0]["severityText"] == "success")
        #expect(records[0]["body"] == str("execution ended: success, exit code 0, 2 s"))
        #expect(records[0]["timeUnixNano"] == "1717200002000000000")
        #expect(records[0]["observedTimeUnixNano"] == "1717200002010000000")
        #expect(attribute(records[0], "script.execution.exit_code") == int("0"))
        #expect(attribute(records[0], "script.operation") == nil)
    }

    @Test("logs: an incomplete execution (null exit_code, duration, ended_at) ends with a WARN record at closed_at")
    func logsIncomplete() throws {
        let request = try parse(OTLPMapping.logsRequest(documents: [document(incompleteDocument)]))
        sameAttributes(resourceAttributes(request["resourceLogs"]?[0]), [
            ("service.name", str("nightly")),  // empty version and environment are left out
            ("host.name", str("vm")),
            ("telemetry.execution.id", str("11111111-2222-4333-8444-555555555555")),
        ])
        let records = logRecords(request)
        #expect(records.count == 1)
        let end = try #require(records.first)
        #expect(end["severityNumber"] == 13)
        #expect(end["severityText"] == "warning")
        #expect(end["body"] == str("execution incomplete: closed without an end line (no exit code)"))
        #expect(end["timeUnixNano"] == "1795927774911000000")
        #expect(end["observedTimeUnixNano"] == "1795927774911000000")
        sameAttributes(attributes(end), [
            ("script.execution_id", str("11111111-2222-4333-8444-555555555555")),
            ("enduser.id", str("u_ea44c15f99ad0b8f1a1fdfdb67803698")),
            ("script.event.type", str("end")),
            ("script.execution.status", str("incomplete")),
            ("script.execution.dropped_events", int("0")),
        ])
    }

    @Test("logs: non-ASCII and escaped text survive, dropped events are reported")
    func logsNonASCII() throws {
        let bytes = OTLPMapping.logsRequest(documents: [try document(nonASCIIDocument)])
        #expect(!bytes.contains(0x0A), "one line: control characters are escaped")
        let request = try parse(bytes)
        #expect(attribute(request["resourceLogs"]?[0]?["resource"], "service.name") == str("sauvegarde-été"))
        #expect(attribute(request["resourceLogs"]?[0]?["resource"], "deployment.environment.name") == str("prod-日本"))
        #expect(attribute(request["resourceLogs"]?[0]?["resource"], "host.name") == str("höst"))
        let records = logRecords(request)
        #expect(records.map { $0["severityNumber"]?.intValue } == [13, 5, 9])
        #expect(records[0]["body"] == str("line1\nline2\t\"quoted\" \\ \u{01} 😀 "))
        #expect(records[1]["body"] == str(""))
        #expect(attribute(records[0], "script.operation") == str("übertragung"))
        #expect(attribute(records[0], "script.tag.ключ") == str("значение"))
        #expect(attribute(records[0], "script.tag.emoji 🚀") == str("✓"))
        #expect(attribute(records[2], "script.execution.dropped_events") == int("3"))
        #expect(attribute(records[2], "script.execution.duration_seconds") == dbl(0.001))
    }

    @Test("logs: many tags become script.tag.* attributes on every record, in key order")
    func logsManyTags() throws {
        let request = try parse(OTLPMapping.logsRequest(documents: [try manyTagsDocument(300)]))
        let records = logRecords(request)
        #expect(records.count == 2)
        for record in records {
            let tagKeys = attributes(record).map(\.0).filter { $0.hasPrefix("script.tag.") }
            #expect(tagKeys.count == 300)
            #expect(tagKeys.first == "script.tag.tag000")
            #expect(tagKeys.last == "script.tag.tag299")
            #expect(attribute(record, "script.tag.tag123") == str("value 123"))
        }
    }

    @Test("severity numbers follow OTLP SeverityNumber", arguments: [
        ("debug", 5), ("info", 9), ("success", 9), ("warning", 13), ("error", 17),
    ])
    func severity(level: String, number: Int) throws {
        #expect(OTLPMapping.severityNumber(level: level) == number)
        var document = try JSONValue.parse(noEventsDocument)
        if case .object(var members) = document, let index = members.firstIndex(where: { $0.0 == "events" }) {
            members[index].1 = [["type": .string(level), "operation": "o", "message": "m",
                                 "timestamp": "2024-06-01T00:00:01.000Z"]]
            document = .object(members)
        }
        let record = logRecords(try parse(OTLPMapping.logsRequest(documents: [document])))[0]
        #expect(record["severityNumber"] == .number(Double(number)))
        #expect(record["severityText"] == .string(level))
        #expect(OTLPMapping.severityNumber(level: "fatal") == nil)
    }

    @Test("one resource per document in input order; non-objects skipped; service.namespace; unknown_service")
    func logsSeveralDocuments() throws {
        var noName = try document(noEventsDocument)
        if case .object(var members) = noName, let index = members.firstIndex(where: { $0.0 == "script_name" }) {
            members[index].1 = ""
            noName = .object(members)
        }
        let documents: [JSONValue] = [try document(fullDocument), "not a document", try document(incompleteDocument), noName]
        let request = try parse(OTLPMapping.logsRequest(documents: documents, serviceNamespace: "ops"))
        let resources = request["resourceLogs"]?.arrayValue ?? []
        #expect(resources.map { attribute($0["resource"], "telemetry.execution.id") } == [
            str("0f8c2b1e-5d4a-4e6b-9a7c-1234567890ab"), str("11111111-2222-4333-8444-555555555555"),
            str("22222222-3333-4444-8555-666666666666"),
        ])
        #expect(resources.allSatisfy { attribute($0["resource"], "service.namespace") == str("ops") })
        #expect(resourceAttributes(resources[0]).map(\.0).prefix(2) == ["service.name", "service.namespace"])
        #expect(attribute(resources[2]["resource"], "service.name") == str("unknown_service"))
        // Deterministic bytes.
        #expect(OTLPMapping.logsRequest(documents: documents) == OTLPMapping.logsRequest(documents: documents))
        #expect(OTLPMapping.logsRequest(documents: []) == Array(#"{"resourceLogs":[]}"#.utf8))
    }

    // MARK: Metrics

    @Test("metrics: duration, exit code and custom metrics of a full document")
    func metricsFullDocument() throws {
        let request = try parse(OTLPMapping.metricsRequest(documents: [document(fullDocument)]))
        #expect(keys(request) == ["resourceMetrics"])
        let entry = request["resourceMetrics"]?[0]
        #expect(keys(entry) == ["resource", "scopeMetrics"])
        #expect(resourceAttributes(entry).map(\.0) == [
            "service.name", "service.version", "deployment.environment.name", "deployment.environment", "host.name",
            "telemetry.execution.id",
        ])
        #expect(entry?["scopeMetrics"]?[0]?["scope"] == ["name": "telemetryd", "version": .string(telemetrydVersion)])
        let all = metrics(request)
        #expect(all.map { $0["name"]?.stringValue } == [
            "script.execution.duration", "script.execution.exit_code",
            "script.metric.files_copied", "script.metric.memory_usage",
        ])
        #expect(all.map { $0["unit"]?.stringValue } == ["s", nil, nil, nil])
        for metric in all {
            #expect(metric["gauge"]?["dataPoints"]?.arrayValue?.count == 1)
            #expect(point(metric)?["startTimeUnixNano"] == "1714564800123000000")
            #expect(point(metric)?["timeUnixNano"] == "1714564805999000000")
        }
        #expect(keys(point(all[0])) == ["attributes", "startTimeUnixNano", "timeUnixNano", "asDouble"])
        #expect(point(all[0])?["asDouble"] == 5.876)
        sameAttributes(attributes(point(all[0])), [("script.execution.status", str("failure"))])
        #expect(point(all[1])?["asInt"] == "1")
        sameAttributes(attributes(point(all[1])), [("script.execution.status", str("failure"))])
        #expect(point(all[2])?["asDouble"] == 42)
        #expect(point(all[3])?["asDouble"] == 150_000_000)
        #expect(keys(point(all[2])) == ["startTimeUnixNano", "timeUnixNano", "asDouble"])
    }

    @Test("metrics: an incomplete execution has no duration or exit code; with no metrics it adds no resource")
    func metricsIncomplete() throws {
        #expect(OTLPMapping.metricsRequest(documents: [try document(incompleteDocument)])
            == Array(#"{"resourceMetrics":[]}"#.utf8))
        var withMetric = try document(incompleteDocument)
        if case .object(var members) = withMetric, let index = members.firstIndex(where: { $0.0 == "metrics" }) {
            members[index].1 = ["rows": 7]
            withMetric = .object(members)
        }
        let request = try parse(OTLPMapping.metricsRequest(documents: [withMetric]))
        let all = metrics(request)
        #expect(all.map { $0["name"]?.stringValue } == ["script.metric.rows"])
        #expect(point(all.first)?["timeUnixNano"] == "1795927774911000000")  // closed_at stands in for ended_at
        #expect(point(all.first)?["startTimeUnixNano"] == "1714564800000000000")
    }

    @Test("metrics: no events, non-ASCII metric names, tiny values")
    func metricsEdgeCases() throws {
        let plain = metrics(try parse(OTLPMapping.metricsRequest(documents: [document(noEventsDocument)])))
        #expect(plain.map { $0["name"]?.stringValue } == ["script.execution.duration", "script.execution.exit_code"])
        #expect(point(plain[1])?["asInt"] == "0")
        let request = try parse(OTLPMapping.metricsRequest(documents: [document(nonASCIIDocument)], serviceNamespace: "ns"))
        #expect(attribute(request["resourceMetrics"]?[0]?["resource"], "service.namespace") == str("ns"))
        let all = metrics(request)
        #expect(all.last?["name"] == "script.metric.größe")
        #expect(point(all.last)?["asDouble"] == 1e-7)
    }

    // MARK: docs/otlp.md

    @Test("docs/otlp.md: the example document maps to exactly the example requests")
    func documentationExample() throws {
        let text = try String(contentsOfFile: Validator.repositoryPath("docs/otlp.md"), encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```json" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        try #require(blocks.count == 3, "docs/otlp.md needs three json blocks: document, logs, metrics")
        // The example shows scope version 0.1.0; a release bump must not make the page wrong.
        blocks = blocks.map {
            $0.replacingOccurrences(of: #""version": "0.1.0""#, with: #""version": "\#(telemetrydVersion)""#)
        }
        let example = try JSONValue.parse(blocks[0])
        #expect(try parse(OTLPMapping.logsRequest(documents: [example])) == JSONValue.parse(blocks[1]))
        #expect(try parse(OTLPMapping.metricsRequest(documents: [example])) == JSONValue.parse(blocks[2]))
    }

    // MARK: The official protobuf parser

    @Test("the official opentelemetry-proto JSON parser accepts every request", arguments: [
        "full", "incomplete", "noEvents", "nonASCII", "manyTags", "all",
    ])
    func officialParserAccepts(fixture: String) throws {
        let documents: [JSONValue]
        switch fixture {
        case "full": documents = [try document(fullDocument)]
        case "incomplete": documents = [try document(incompleteDocument)]
        case "noEvents": documents = [try document(noEventsDocument)]
        case "nonASCII": documents = [try document(nonASCIIDocument)]
        case "manyTags": documents = [try manyTagsDocument(300)]
        default:
            documents = [try document(fullDocument), try document(incompleteDocument), try document(noEventsDocument),
                         try document(nonASCIIDocument), try manyTagsDocument(20)]
        }
        let logs = try Validator.run("logs", OTLPMapping.logsRequest(documents: documents, serviceNamespace: "ops"))
        try #require(logs.status == 0, "validate.py logs rejected the request:\n\(logs.stderr)")
        let metrics = try Validator.run("metrics", OTLPMapping.metricsRequest(documents: documents))
        try #require(metrics.status == 0, "validate.py metrics rejected the request:\n\(metrics.stderr)")

        // The summary is what protobuf parsed: compare it with what went in.
        let logSummary = try JSONValue.parse(logs.stdout)
        let resources = logSummary["resources"]?.arrayValue ?? []
        #expect(resources.count == documents.count)
        #expect(resources.map { $0["execution"] } == documents.map { $0["execution_id"] })
        let recordCounts = resources.map { $0["records"]?.arrayValue?.count ?? -1 }
        #expect(recordCounts == documents.map {
            ($0["events"]?.arrayValue?.count ?? 0) + ($0["errors"]?.arrayValue?.count ?? 0) + 1
        })
        if fixture == "full" {
            let records = resources[0]["records"]?.arrayValue ?? []
            #expect(records.map { $0["severityNumber"]?.intValue } == [9, 9, 17, 17])
            #expect(records.first?["body"] == "Kopie läuft 🚀")
            #expect(records.first?["timeUnixNano"] == "1714564801500000000")
            let metricSummary = try JSONValue.parse(metrics.stdout)
            #expect(sortedEqual(metricSummary["resources"]?[0]?["metrics"], [
                ("script.execution.duration", 5.876), ("script.execution.exit_code", 1),
                ("script.metric.files_copied", 42), ("script.metric.memory_usage", 150_000_000),
            ]), "\(metrics.stdout)")
        }
    }

    /// JSON that breaks an OTLP JSON rule must make the validator (and so this suite) fail.
    @Test("the validator rejects what the OTLP JSON mapping forbids", arguments: [
        ("logs", #"{"resourceLogs":[{"unknownField":1}]}"#, "unknownField"),
        ("logs", #"{"resource_logs":[]}"#, "lowerCamelCase"),
        ("logs", #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_INFO"}]}]}]}"#, "must be an integer"),
        ("logs", #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1714564801500000000}]}]}]}"#, "decimal string"),
        ("logs", #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"nine"}]}]}]}"#, "failed"),
        ("metrics", #"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asInt":3}]}}]}]}]}"#, "decimal string"),
        ("metrics", #"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asDouble":"1.5"}]}}]}]}]}"#, "JSON number"),
        ("metrics", "{\"resourceMetrics\":[]", "failed"),
    ])
    func validatorRejects(kind: String, json: String, reason: String) throws {
        let result = try Validator.run(kind, Array(json.utf8))
        #expect(result.status == 1, "validate.py accepted \(json)\nstderr: \(result.stderr)")
        #expect(result.stderr.contains(reason), "stderr: \(result.stderr)")
    }

    @Test("the validator rejects a mapping mistake the protobuf parser accepts")
    func validatorChecksMapping() throws {
        // Valid protobuf JSON, but the `success` record claims WARN.
        var bytes = OTLPMapping.logsRequest(documents: [try document(fullDocument)])
        var text = String(decoding: bytes, as: UTF8.self)
        text = text.replacingOccurrences(of: #""severityNumber":9,"severityText":"success""#,
                                         with: #""severityNumber":13,"severityText":"success""#)
        try #require(text.contains(#""severityNumber":13,"severityText":"success""#))
        bytes = Array(text.utf8)
        let result = try Validator.run("logs", bytes)
        #expect(result.status == 1)
        #expect(result.stderr.contains("does not match severityNumber 13"), "stderr: \(result.stderr)")
    }
}

private func sortedEqual(_ value: JSONValue?, _ expected: [(String, Double)]) -> Bool {
    let members = (value?.objectValue ?? []).sorted { $0.0 < $1.0 }
    return members.count == expected.count
        && zip(members, expected.sorted { $0.0 < $1.0 }).allSatisfy { $0.0 == $1.0 && $0.1 == .number($1.1) }
}

/// Runs tests/otlp/validate.py with python3 from PATH (or OTLP_VALIDATE_PYTHON). A missing interpreter
/// or a missing opentelemetry-proto package is a test failure that says how to install it.
private enum Validator {
    static let install = "python3 -m pip install 'opentelemetry-proto==1.45.2' 'protobuf==7.36.2'"

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A path relative to the repository root (three levels above this file).
    static func repositoryPath(_ relative: String) -> String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent(relative).path
    }

    static let script = repositoryPath("tests/otlp/validate.py")

    static func run(_ kind: String, _ json: [UInt8]) throws -> Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("otlp-mapping-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("request.json")
        let output = directory.appendingPathComponent("stdout")
        let errors = directory.appendingPathComponent("stderr")
        try Data(json).write(to: input)
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let stdout = try FileHandle(forWritingTo: output)
        let stderr = try FileHandle(forWritingTo: errors)

        let python = ProcessInfo.processInfo.environment["OTLP_VALIDATE_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, kind, input.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        process.waitUntilExit()
        try? stdout.close()
        try? stderr.close()
        let result = Result(status: process.terminationStatus,
                            stdout: (try? String(contentsOf: output, encoding: .utf8)) ?? "",
                            stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
        switch result.status {
        case 127:
            throw Failure(description: "\(python) not found: install Python 3, then \(install)\n\(result.stderr)")
        case 2, 3:
            // 3: opentelemetry-proto missing (stderr says how to install it); 2: usage.
            let hint = result.stderr.contains("pip install") ? "" : "Install with: \(install)"
            throw Failure(description: "validate.py could not run (exit \(result.status)):\n\(result.stderr)\(hint)")
        default:
            return result
        }
    }
}
