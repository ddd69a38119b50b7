import TelemetryWire

/// Renders the daemon's status reply for a person.
enum StatusReport {
    static func render(_ reply: JSONValue) -> String {
        guard reply["ok"]?.boolValue == true else {
            return "telemetryd answered with an error: \(reply["error"]?.stringValue ?? "unknown")"
        }
        let store = reply["store"]
        let connections = reply["connections"]
        var rejectedParts: [String] = []
        var rejectedTotal = 0
        for member in reply["lines_rejected"]?.objectValue ?? [] {
            let count = member.1.intValue ?? 0
            if count > 0 {
                rejectedParts.append("\(member.0) \(count)")
                rejectedTotal += count
            }
        }
        let endpoint = reply["endpoint"]?.stringValue
        var lines = [
            "telemetryd \(reply["version"]?.stringValue ?? "?") is running (pid \(reply["pid"]?.intValue ?? 0), up \(duration(reply["uptime_seconds"]?.intValue ?? 0)))",
            row("socket", reply["socket"]?.stringValue ?? ""),
            row("state dir", reply["state_dir"]?.stringValue ?? ""),
            row("collection", reply["enabled"]?.boolValue == false ? "DISABLED (TELEMETRY_ENABLED=false): incoming lines are discarded" : "enabled"),
            row("forwarding", endpoint.map { "to \($0)" } ?? "off: documents stay in the local store"),
            row("store", "\(store?["path"]?.stringValue ?? ""), \(bytes(store?["bytes"]?.intValue ?? 0)), \(store?["documents"]?.intValue ?? 0) documents"),
            row("last commit", store?["last_commit"]?.stringValue ?? "none yet"),
            row("open executions", "\(reply["open_executions"]?.intValue ?? 0)"),
            row("lines accepted", "\(reply["lines_accepted"]?.intValue ?? 0)"),
            row("lines rejected", rejectedTotal == 0 ? "0" : "\(rejectedTotal) (\(rejectedParts.joined(separator: ", ")))"),
            row("connections", "\(connections?["current"]?.intValue ?? 0) open, \(connections?["total"]?.intValue ?? 0) since start"),
        ]
        if let delivery = reply["delivery"], delivery != .null {
            let state = delivery["state"]?.stringValue ?? "?"
            var text = state == "outage"
                ? "OUTAGE since \(delivery["outage_since"]?.stringValue ?? "?"): \(delivery["last_error"]?.stringValue ?? "")"
                : state
            if let next = delivery["next_attempt_at"]?.stringValue, state == "outage" { text += "; next attempt \(next)" }
            lines.append(row("delivery", text))
            lines.append(row("queued", "\(delivery["pending_documents"]?.intValue ?? 0) documents"))
            lines.append(row("delivered", "\(delivery["documents_delivered"]?.intValue ?? 0) documents in \(delivery["batches_delivered"]?.intValue ?? 0) batches since start, last \(delivery["last_success_at"]?.stringValue ?? "never")"))
            let dead = delivery["dead_letter_batches"]?.intValue ?? 0
            if dead > 0 {
                lines.append(row("dead letters", "\(dead) batches (see `telemetry deadletter list`)"))
            }
            let failures = (delivery["failed_attempts"]?.objectValue ?? []).map { "\($0.0) \($0.1.intValue ?? 0)" }
            if !failures.isEmpty {
                lines.append(row("failed attempts", failures.joined(separator: ", ") + ", \(delivery["retries"]?.intValue ?? 0) retries"))
            }
        }
        if let dropped = reply["events_dropped"]?.intValue, dropped > 0 {
            lines.append(row("events dropped", "\(dropped) (over TELEMETRY_MAX_EVENTS_PER_EXECUTION)"))
        }
        if let error = store?["last_error"]?.stringValue {
            lines.append(row("STORE ERROR", error))
        }
        return lines.joined(separator: "\n")
    }

    static func row(_ label: String, _ value: String) -> String {
        "  " + label + ":" + String(repeating: " ", count: max(1, 18 - label.count)) + value
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3_600 { return "\(seconds / 60)m \(seconds % 60)s" }
        if seconds < 86_400 { return "\(seconds / 3_600)h \(seconds % 3_600 / 60)m" }
        return "\(seconds / 86_400)d \(seconds % 86_400 / 3_600)h"
    }

    static func bytes(_ count: Int) -> String {
        if count < 1_024 { return "\(count) B" }
        if count < 1_048_576 { return "\(count / 1_024) KiB" }
        return "\(count / 1_048_576) MiB"
    }
}

/// Renders one execution document for a person.
enum DocumentReport {
    static func render(_ document: JSONValue) -> String {
        func text(_ key: String) -> String {
            guard let value = document[key] else { return "" }
            if case .null = value { return "-" }
            return value.stringValue ?? value.serialized()
        }
        var lines = [
            "execution \(text("execution_id"))",
            StatusReport.row("script", "\(text("script_name")) \(text("script_version"))"),
            StatusReport.row("status", "\(text("status")) (exit code \(text("exit_code")))"),
            StatusReport.row("started", text("timestamp")),
            StatusReport.row("duration", text("duration_seconds") == "-" ? "-" : "\(text("duration_seconds")) s"),
            StatusReport.row("environment", text("environment")),
            StatusReport.row("host", text("host")),
            StatusReport.row("user", text("user_id")),
        ]
        let tags = document["tags"]?.objectValue ?? []
        if !tags.isEmpty {
            lines.append(StatusReport.row("tags", tags.map { "\($0.0)=\($0.1.stringValue ?? "")" }.joined(separator: " ")))
        }
        let metrics = document["metrics"]?.objectValue ?? []
        if !metrics.isEmpty {
            lines.append("  metrics:")
            for member in metrics { lines.append("    \(member.0) = \(member.1.serialized())") }
        }
        for (title, key) in [("events", "events"), ("errors", "errors")] {
            let entries = document[key]?.arrayValue ?? []
            guard !entries.isEmpty else { continue }
            lines.append("  \(title):")
            for entry in entries {
                let type = entry["type"]?.stringValue ?? ""
                let message = entry["message"]?.stringValue ?? ""
                lines.append("    \(entry["timestamp"]?.stringValue ?? "") \(type.uppercased()) \(entry["operation"]?.stringValue ?? "")\(message.isEmpty ? "" : ": " + message)")
            }
        }
        if let dropped = document["dropped_events"]?.intValue, dropped > 0 {
            lines.append(StatusReport.row("dropped events", "\(dropped)"))
        }
        return lines.joined(separator: "\n")
    }
}

/// Left-aligned columns separated by two spaces.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
