import TelemetryCore
import TelemetryWire

/// Execution documents as OTLP/HTTP JSON (TELEMETRY_FORMAT=otlp): an `ExportLogsServiceRequest` for the
/// events, errors and end of each execution, and an `ExportMetricsServiceRequest` for its duration, exit
/// code and custom metrics. Pure functions of the documents; docs/otlp.md has the table and examples.
///
/// The output follows the OTLP JSON encoding (opentelemetry-proto, "JSON Protobuf Encoding"): protobuf
/// JSON names in lowerCamelCase, enum values as integers, 64-bit integers (`timeUnixNano`, `intValue`,
/// `asInt`) as decimal strings, attribute values as `AnyValue` objects, and fields at their default value
/// left out (`traceId`/`spanId` are never written). Members come in a fixed order, so the same documents
/// always give the same bytes.
///
/// Every document is its own resource (its attributes include `telemetry.execution.id`), so there is one
/// `resourceLogs`/`resourceMetrics` entry per document, in input order. Members that are not objects are
/// skipped; missing or mistyped fields of a document are left out of the output rather than invented.
public enum OTLPMapping {
    /// `scope.name` of every `scopeLogs`/`scopeMetrics`; `scope.version` is `telemetrydVersion`.
    public static let scopeName = "telemetryd"
    /// `service.name` for a document whose `script_name` is empty (an execution that sent no start line),
    /// as the OpenTelemetry resource conventions prescribe.
    public static let unknownServiceName = "unknown_service"

    /// OTLP `SeverityNumber` of an event level: debug 5 (DEBUG), info 9 (INFO), success 9 (INFO: OTLP has
    /// no "success" severity; `severityText` keeps the word), warning 13 (WARN), error 17 (ERROR).
    /// nil for anything else (the record then carries no severityNumber, i.e. UNSPECIFIED).
    public static func severityNumber(level: String) -> Int? {
        switch level {
        case "debug": return 5
        case "info", "success": return 9
        case "warning": return 13
        case "error": return 17
        default: return nil
        }
    }

    // MARK: Logs

    /// `ExportLogsServiceRequest` JSON: per document one `resourceLogs` with one `scopeLogs` holding one
    /// log record per event and per error (in timestamp order; events before errors at equal times), then
    /// one record for the end of the execution. `serviceNamespace`, when non-empty, becomes the
    /// `service.namespace` resource attribute.
    public static func logsRequest(documents: [JSONValue], serviceNamespace: String? = nil) -> [UInt8] {
        var json = JSONWriter(capacity: 1024 * max(documents.count, 1))
        json.beginObject()
        json.key("resourceLogs")
        json.beginArray()
        for value in documents {
            guard let document = Document(value) else { continue }
            json.beginObject()
            json.key("resource")
            writeResource(document, serviceNamespace: serviceNamespace, into: &json)
            json.key("scopeLogs")
            json.beginArray()
            json.beginObject()
            json.key("scope")
            writeScope(into: &json)
            json.key("logRecords")
            json.beginArray()
            writeLogRecords(document, into: &json)
            json.endArray()
            json.endObject()
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return json.bytes
    }

    private static func writeLogRecords(_ document: Document, into json: inout JSONWriter) {
        // Attributes every record of the execution carries, encoded once.
        var common = JSONWriter(capacity: 256)
        if let id = document.executionID { attribute("script.execution_id", string: id, into: &common) }
        if let user = document.userID { attribute("enduser.id", string: user, into: &common) }
        for (key, value) in document.tags { attribute("script.tag." + key, string: value, into: &common) }
        let observed = document.closedAt

        // Events and errors are kept apart in the document; interleave them again by time.
        var entries: [(time: Timestamp?, order: Int, event: JSONValue)] = []
        entries.reserveCapacity(document.events.count + document.errors.count)
        for event in document.events where event.objectValue != nil { entries.append((time(event["timestamp"]), entries.count, event)) }
        for event in document.errors where event.objectValue != nil { entries.append((time(event["timestamp"]), entries.count, event)) }
        entries.sort { a, b in
            let ta = a.time?.microseconds ?? .max, tb = b.time?.microseconds ?? .max
            return ta != tb ? ta < tb : a.order < b.order
        }

        for entry in entries {
            let event = entry.event
            let type = event["type"]?.stringValue ?? ""
            json.beginObject()
            writeTimes(time: entry.time, observed: observed ?? entry.time, into: &json)
            if let severity = severityNumber(level: type) { json.field("severityNumber", severity) }
            if !type.isEmpty { json.field("severityText", type) }
            json.key("body")
            stringValue(event["message"]?.stringValue ?? "", into: &json)
            json.key("attributes")
            json.beginArray()
            if !common.bytes.isEmpty { json.raw(common.bytes) }
            if let operation = event["operation"]?.stringValue { attribute("script.operation", string: operation, into: &json) }
            if !type.isEmpty { attribute("script.event.type", string: type, into: &json) }
            if let duration = event["duration_seconds"]?.doubleValue {
                attribute("script.event.duration_seconds", double: duration, into: &json)
            }
            json.endArray()
            json.endObject()
        }

        // The end of the execution: when it ended, else (incomplete) when the daemon closed it.
        let severity: (number: Int, text: String)
        let body: String
        let durationText = document.durationSeconds.map { ", \(formatSeconds($0)) s" } ?? ""
        switch document.status {
        case "success":
            severity = (9, "success")
            body = "execution ended: success, exit code \(document.exitCode.map(String.init) ?? "unknown")\(durationText)"
        case "failure":
            severity = (17, "error")
            body = "execution ended: failure, exit code \(document.exitCode.map(String.init) ?? "unknown")\(durationText)"
        case "incomplete":
            severity = (13, "warning")
            body = "execution incomplete: closed without an end line (no exit code)\(durationText)"
        default:
            severity = (9, "info")
            body = "execution closed: status \(document.status ?? "unknown")\(durationText)"
        }
        let endTime = document.endedAt ?? document.closedAt
        json.beginObject()
        writeTimes(time: endTime, observed: observed ?? endTime, into: &json)
        json.field("severityNumber", severity.number)
        json.field("severityText", severity.text)
        json.key("body")
        stringValue(body, into: &json)
        json.key("attributes")
        json.beginArray()
        if !common.bytes.isEmpty { json.raw(common.bytes) }
        attribute("script.event.type", string: "end", into: &json)
        if let status = document.status { attribute("script.execution.status", string: status, into: &json) }
        if let exitCode = document.exitCode { attribute("script.execution.exit_code", int: exitCode, into: &json) }
        if let duration = document.durationSeconds {
            attribute("script.execution.duration_seconds", double: duration, into: &json)
        }
        attribute("script.execution.dropped_events", int: document.droppedEvents, into: &json)
        json.endArray()
        json.endObject()
    }

    private static func writeTimes(time: Timestamp?, observed: Timestamp?, into json: inout JSONWriter) {
        if let nanos = unixNanos(time) { json.field("timeUnixNano", nanos) }
        if let nanos = unixNanos(observed) { json.field("observedTimeUnixNano", nanos) }
    }

    // MARK: Metrics

    /// `ExportMetricsServiceRequest` JSON: per document one `resourceMetrics` (the same resource as in
    /// `logsRequest`) with gauges `script.execution.duration` (s, when the duration is known),
    /// `script.execution.exit_code` (when the execution ended) and `script.metric.<name>` for each of the
    /// document's metrics, all at the end time (`ended_at`, else `closed_at`) with `startTimeUnixNano` the
    /// execution's start. A document with none of these (an incomplete execution without metrics) adds
    /// no entry.
    public static func metricsRequest(documents: [JSONValue], serviceNamespace: String? = nil) -> [UInt8] {
        var json = JSONWriter(capacity: 512 * max(documents.count, 1))
        json.beginObject()
        json.key("resourceMetrics")
        json.beginArray()
        for value in documents {
            guard let document = Document(value) else { continue }
            guard document.durationSeconds != nil || document.exitCode != nil || !document.metrics.isEmpty else {
                continue
            }
            let start = unixNanos(document.start)
            let end = unixNanos(document.endedAt ?? document.closedAt)
            var statusAttribute = JSONWriter(capacity: 96)
            if let status = document.status { attribute("script.execution.status", string: status, into: &statusAttribute) }

            json.beginObject()
            json.key("resource")
            writeResource(document, serviceNamespace: serviceNamespace, into: &json)
            json.key("scopeMetrics")
            json.beginArray()
            json.beginObject()
            json.key("scope")
            writeScope(into: &json)
            json.key("metrics")
            json.beginArray()
            if let duration = document.durationSeconds {
                gauge(name: "script.execution.duration", unit: "s",
                      description: "Duration of the script execution", start: start, end: end,
                      attributes: statusAttribute.bytes, into: &json) { $0.field("asDouble", duration) }
            }
            if let exitCode = document.exitCode {
                gauge(name: "script.execution.exit_code", unit: nil,
                      description: "Exit code of the script execution", start: start, end: end,
                      attributes: statusAttribute.bytes, into: &json) { $0.field("asInt", String(exitCode)) }
            }
            for (name, value) in document.metrics {
                gauge(name: "script.metric." + name, unit: nil, description: nil, start: start, end: end,
                      attributes: [], into: &json) { $0.field("asDouble", value) }
            }
            json.endArray()
            json.endObject()
            json.endArray()
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return json.bytes
    }

    private static func gauge(name: String, unit: String?, description: String?, start: String?, end: String?,
                              attributes: [UInt8], into json: inout JSONWriter,
                              value: (inout JSONWriter) -> Void) {
        json.beginObject()
        json.field("name", name)
        if let description { json.field("description", description) }
        if let unit { json.field("unit", unit) }
        json.key("gauge")
        json.beginObject()
        json.key("dataPoints")
        json.beginArray()
        json.beginObject()
        if !attributes.isEmpty {
            json.key("attributes")
            json.beginArray()
            json.raw(attributes)
            json.endArray()
        }
        if let start { json.field("startTimeUnixNano", start) }
        if let end { json.field("timeUnixNano", end) }
        value(&json)
        json.endObject()
        json.endArray()
        json.endObject()
        json.endObject()
    }

    // MARK: Shared pieces

    private static func writeResource(_ document: Document, serviceNamespace: String?, into json: inout JSONWriter) {
        json.beginObject()
        json.key("attributes")
        json.beginArray()
        attribute("service.name", string: document.scriptName.isEmpty ? unknownServiceName : document.scriptName,
                  into: &json)
        if let namespace = serviceNamespace, !namespace.isEmpty {
            attribute("service.namespace", string: namespace, into: &json)
        }
        if !document.scriptVersion.isEmpty { attribute("service.version", string: document.scriptVersion, into: &json) }
        if !document.environment.isEmpty {
            attribute("deployment.environment.name", string: document.environment, into: &json)
            attribute("deployment.environment", string: document.environment, into: &json)
        }
        if !document.host.isEmpty { attribute("host.name", string: document.host, into: &json) }
        if let id = document.executionID { attribute("telemetry.execution.id", string: id, into: &json) }
        json.endArray()
        json.endObject()
    }

    private static func writeScope(into json: inout JSONWriter) {
        json.beginObject()
        json.field("name", scopeName)
        json.field("version", telemetrydVersion)
        json.endObject()
    }

    /// `{"stringValue":text}`.
    private static func stringValue(_ text: String, into json: inout JSONWriter) {
        json.beginObject()
        json.field("stringValue", text)
        json.endObject()
    }

    /// A `KeyValue`: `{"key":K,"value":{"stringValue":V}}`.
    private static func attribute(_ key: String, string value: String, into json: inout JSONWriter) {
        json.beginObject()
        json.field("key", key)
        json.key("value")
        stringValue(value, into: &json)
        json.endObject()
    }

    /// `{"key":K,"value":{"intValue":"V"}}` (int64 as a decimal string).
    private static func attribute(_ key: String, int value: Int64, into json: inout JSONWriter) {
        json.beginObject()
        json.field("key", key)
        json.key("value")
        json.beginObject()
        json.field("intValue", String(value))
        json.endObject()
        json.endObject()
    }

    /// `{"key":K,"value":{"doubleValue":V}}`; nothing for a non-finite value, which JSON cannot carry.
    private static func attribute(_ key: String, double value: Double, into json: inout JSONWriter) {
        guard value.isFinite else { return }
        json.beginObject()
        json.field("key", key)
        json.key("value")
        json.beginObject()
        json.field("doubleValue", value)
        json.endObject()
        json.endObject()
    }

    /// Nanoseconds since the Unix epoch as a decimal string (OTLP fixed64); nil when unknown, before 1970
    /// or past 2262.
    static func unixNanos(_ time: Timestamp?) -> String? {
        guard let time, time.microseconds >= 0 else { return nil }
        let (nanos, overflow) = time.microseconds.multipliedReportingOverflow(by: 1000)
        return overflow ? nil : String(nanos)
    }

    private static func time(_ value: JSONValue?) -> Timestamp? {
        guard let text = value?.stringValue else { return nil }
        return Timestamp.parseRFC3339(text)
    }

    /// Seconds for the end record's body: Swift's shortest round-trip form, without a trailing ".0".
    private static func formatSeconds(_ seconds: Double) -> String {
        if seconds.rounded(.towardZero) == seconds && seconds.magnitude < 1e15 { return String(Int64(seconds)) }
        return String(seconds)
    }

    /// The fields of one execution document (ExecutionDocument.swift `encodeDocument`) that the mapping uses.
    private struct Document {
        var scriptName: String
        var scriptVersion: String
        var environment: String
        var host: String
        var executionID: String?
        var userID: String?
        var status: String?
        var exitCode: Int64?
        var durationSeconds: Double?
        var start: Timestamp?
        var endedAt: Timestamp?
        var closedAt: Timestamp?
        var metrics: [(String, Double)]
        var events: [JSONValue]
        var errors: [JSONValue]
        var tags: [(String, String)]
        var droppedEvents: Int64

        init?(_ value: JSONValue) {
            guard value.objectValue != nil else { return nil }
            scriptName = value["script_name"]?.stringValue ?? ""
            scriptVersion = value["script_version"]?.stringValue ?? ""
            environment = value["environment"]?.stringValue ?? ""
            host = value["host"]?.stringValue ?? ""
            executionID = value["execution_id"]?.stringValue
            userID = value["user_id"]?.stringValue
            status = value["status"]?.stringValue
            exitCode = value["exit_code"]?.intValue.map(Int64.init)
            durationSeconds = value["duration_seconds"]?.doubleValue.flatMap { $0.isFinite ? $0 : nil }
            start = OTLPMapping.time(value["timestamp"])
            endedAt = OTLPMapping.time(value["ended_at"])
            closedAt = OTLPMapping.time(value["closed_at"])
            metrics = (value["metrics"]?.objectValue ?? []).compactMap { name, number in
                guard let number = number.doubleValue, number.isFinite else { return nil }
                return (name, number)
            }
            events = value["events"]?.arrayValue ?? []
            errors = value["errors"]?.arrayValue ?? []
            tags = (value["tags"]?.objectValue ?? []).compactMap { key, text in
                text.stringValue.map { (key, $0) }
            }
            droppedEvents = Int64(value["dropped_events"]?.intValue ?? 0)
        }
    }
}
