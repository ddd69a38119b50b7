import TelemetryClient
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// The subcommands. Each returns an exit status; usage mistakes throw `UsageError`.
enum Commands {
    static func send(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.strict, .quiet, .wait],
                                             options: [.socket, .timeout, .maxLineBytes])
        if parsed.has(.help) { return help("send") }
        guard parsed.positionals.isEmpty else {
            throw UsageError(message: "send reads events from standard input and takes no arguments (got \"\(parsed.positionals[0])\")")
        }
        let environment = ClientEnvironment.current()
        var options = SendSession.Options(socketPath: parsed.value(.socket) ?? environment.socketPath)
        options.spoolDirectory = environment.spoolDirectory
        options.disabled = environment.disabled
        options.quiet = parsed.has(.quiet) || environment.quiet
        options.wait = parsed.has(.wait)
        options.timeoutSeconds = try parsed.seconds(.timeout) ?? environment.flushTimeoutSeconds
        options.maxLineBytes = try parsed.integer(.maxLineBytes, in: 256...1_048_576) ?? defaultMaxLineBytes
        var session = SendSession(options: options)
        let outcome = session.run()
        // Telemetry never fails the script it observes: problems were reported on stderr; only --strict fails.
        return parsed.has(.strict) && !outcome.ok ? ExitStatus.failure : ExitStatus.ok
    }

    static func status(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.json], options: [.socket, .timeout])
        if parsed.has(.help) { return help("status") }
        let socketPath = parsed.value(.socket) ?? ClientEnvironment.current().socketPath
        switch ask(.status, socketPath: socketPath, timeout: try parsed.seconds(.timeout) ?? 5) {
        case .failure(let error):
            if parsed.has(.json) {
                var json = JSONWriter()
                json.beginObject()
                json.key("ok"); json.bool(false)
                json.key("running"); json.bool(false)
                json.key("socket"); json.string(socketPath)
                json.key("error"); json.string(error.description)
                json.endObject()
                writeAll(1, json.bytes + [UInt8(ascii: "\n")])
            } else {
                printError("telemetry status: \(error.description)")
            }
            return error.kind == .notRunning ? ExitStatus.notRunning : ExitStatus.failure
        case .success(let reply):
            if parsed.has(.json) {
                printOutput(reply.serialized())
            } else {
                printOutput(StatusReport.render(reply))
            }
            return reply["ok"]?.boolValue == true ? ExitStatus.ok : ExitStatus.failure
        }
    }

    static func flush(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.json, .quiet], options: [.socket, .timeout])
        if parsed.has(.help) { return help("flush") }
        let environment = ClientEnvironment.current()
        let socketPath = parsed.value(.socket) ?? environment.socketPath
        let timeout = try parsed.seconds(.timeout) ?? environment.flushTimeoutSeconds
        switch ask(.flush, socketPath: socketPath, timeout: timeout) {
        case .failure(let error):
            printError("telemetry flush: \(error.description)")
            return error.kind == .notRunning ? ExitStatus.notRunning : ExitStatus.failure
        case .success(let reply):
            if parsed.has(.json) {
                printOutput(reply.serialized())
            }
            guard reply["ok"]?.boolValue == true else {
                printError("telemetry flush: \(reply["error"]?.stringValue ?? "the daemon refused the flush")")
                return ExitStatus.failure
            }
            if !parsed.has(.json) && !parsed.has(.quiet) {
                let open = reply["open_executions"]?.intValue ?? 0
                let stored = reply["documents_stored"]?.intValue ?? 0
                var text = "flushed: everything received is durable in the local store (\(open) executions open, \(stored) documents stored since start)"
                if reply["delivered"]?.boolValue == true { text += "; every stored document is delivered" }
                printOutput(text)
            }
            return ExitStatus.ok
        }
    }

    static func executions(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.json], options: [.socket, .limit, .script, .timeout])
        if parsed.has(.help) { return help("executions") }
        let limit = try parsed.integer(.limit, in: 1...10_000) ?? 20
        let socketPath = parsed.value(.socket) ?? ClientEnvironment.current().socketPath
        switch ask(.executions, socketPath: socketPath, timeout: try parsed.seconds(.timeout) ?? 10,
                   limit: limit, script: parsed.value(.script)) {
        case .failure(let error):
            printError("telemetry executions: \(error.description)")
            return error.kind == .notRunning ? ExitStatus.notRunning : ExitStatus.failure
        case .success(let reply):
            guard reply["ok"]?.boolValue == true else {
                printError("telemetry executions: \(reply["error"]?.stringValue ?? "the daemon refused the request")")
                return ExitStatus.failure
            }
            let rows = reply["executions"]?.arrayValue ?? []
            if parsed.has(.json) {
                printOutput(JSONValue.array(rows).serialized())
                return ExitStatus.ok
            }
            if rows.isEmpty {
                printOutput(parsed.value(.script).map { "no stored executions of script \"\($0)\"" } ?? "no stored executions yet")
                return ExitStatus.ok
            }
            var table = [["EXECUTION ID", "SCRIPT", "STATUS", "STARTED", "COMPLETED"]]
            for row in rows {
                table.append([row["execution_id"]?.stringValue ?? "", row["script_name"]?.stringValue ?? "",
                              row["status"]?.stringValue ?? "", row["started_at"]?.stringValue ?? "",
                              row["completed_at"]?.stringValue ?? ""])
            }
            printOutput(TextTable.render(table))
            return ExitStatus.ok
        }
    }

    static func show(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.json], options: [.socket, .timeout])
        if parsed.has(.help) { return help("show") }
        guard parsed.positionals.count == 1 else {
            throw UsageError(message: "show needs exactly one EXECUTION_ID (list them with `telemetry executions`)")
        }
        let id = parsed.positionals[0]
        guard let executionID = ExecutionID(id) else {
            throw UsageError(message: "\"\(id)\" is not an execution id; it looks like 6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b")
        }
        let socketPath = parsed.value(.socket) ?? ClientEnvironment.current().socketPath
        switch ask(.show, socketPath: socketPath, timeout: try parsed.seconds(.timeout) ?? 10,
                   executionID: executionID.description) {
        case .failure(let error):
            printError("telemetry show: \(error.description)")
            return error.kind == .notRunning ? ExitStatus.notRunning : ExitStatus.failure
        case .success(let reply):
            guard reply["ok"]?.boolValue == true, let document = reply["document"] else {
                printError("telemetry show: \(reply["error"]?.stringValue ?? "the daemon refused the request")")
                return ExitStatus.failure
            }
            printOutput(parsed.has(.json) ? document.serialized() : DocumentReport.render(document))
            return ExitStatus.ok
        }
    }

    static func testConnection(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.json], options: [.socket, .timeout])
        if parsed.has(.help) { return help("test-connection") }
        let socketPath = parsed.value(.socket) ?? ClientEnvironment.current().socketPath
        switch ask(.testConnection, socketPath: socketPath, timeout: try parsed.seconds(.timeout) ?? 60) {
        case .failure(let error):
            printError("telemetry test-connection: \(error.description)")
            return error.kind == .notRunning ? ExitStatus.notRunning : ExitStatus.failure
        case .success(let reply):
            let ok = reply["ok"]?.boolValue == true
            if parsed.has(.json) {
                printOutput(reply.serialized())
            } else if let summary = reply["summary"]?.stringValue {
                var lines = ["\(ok ? "OK" : "FAILED"): \(summary)"]
                if let failure = reply["failure"]?.stringValue { lines.append("  failure:  \(failure)") }
                if let timing = reply["timing_ms"] {
                    let parts = ["name_lookup", "connect", "tls_handshake", "total"].map { key in
                        "\(key) \(Int(timing[key]?.doubleValue ?? 0)) ms"
                    }
                    lines.append("  timing:   " + parts.joined(separator: ", "))
                }
                if let excerpt = reply["body_excerpt"]?.stringValue { lines.append("  response: \(excerpt)") }
                (ok ? printOutput : printError)(lines.joined(separator: "\n"))
            } else {
                printError("telemetry test-connection: \(reply["error"]?.stringValue ?? "the daemon refused the request")")
            }
            return ok ? ExitStatus.ok : ExitStatus.failure
        }
    }

    static func deadLetter(_ arguments: ArgumentList) throws(UsageError) -> Int32 {
        let parsed = try ParsedOptions.parse(arguments, flags: [.json, .all], options: [.socket, .timeout])
        if parsed.has(.help) { return help("deadletter") }
        guard let action = parsed.positionals.first, ["list", "replay", "purge"].contains(action) else {
            throw UsageError(message: "deadletter needs an action: list, replay BATCH_ID|--all, or purge BATCH_ID|--all")
        }
        let batchID = parsed.positionals.dropFirst().first
        if action != "list" && batchID == nil && !parsed.has(.all) {
            throw UsageError(message: "deadletter \(action) needs a BATCH_ID (see `telemetry deadletter list`) or --all")
        }
        let socketPath = parsed.value(.socket) ?? ClientEnvironment.current().socketPath
        let command: ControlRequest.Command = action == "list" ? .deadletters : action == "replay" ? .deadletterReplay : .deadletterPurge
        switch ask(command, socketPath: socketPath, timeout: try parsed.seconds(.timeout) ?? 10, batchID: batchID) {
        case .failure(let error):
            printError("telemetry deadletter: \(error.description)")
            return error.kind == .notRunning ? ExitStatus.notRunning : ExitStatus.failure
        case .success(let reply):
            guard reply["ok"]?.boolValue == true else {
                printError("telemetry deadletter: \(reply["error"]?.stringValue ?? "the daemon refused the request")")
                return ExitStatus.failure
            }
            if parsed.has(.json) {
                printOutput(reply.serialized())
                return ExitStatus.ok
            }
            if action == "list" {
                let letters = reply["dead_letters"]?.arrayValue ?? []
                if letters.isEmpty {
                    printOutput("no dead letters")
                } else {
                    var table = [["BATCH ID", "DOCUMENTS", "STATUS", "SINCE", "RESPONSE"]]
                    for letter in letters {
                        table.append([letter["batch_id"]?.stringValue ?? "", "\(letter["documents"]?.intValue ?? 0)",
                                      "\(letter["status"]?.intValue ?? 0)", letter["dead_at"]?.stringValue ?? "",
                                      String((letter["response"]?.stringValue ?? "").prefix(60))])
                    }
                    printOutput(TextTable.render(table))
                }
            } else {
                let count = reply["documents"]?.intValue ?? 0
                printOutput(action == "replay" ? "\(count) document(s) queued for delivery again" : "\(count) document(s) deleted")
            }
            return ExitStatus.ok
        }
    }

    private static func ask(_ command: ControlRequest.Command, socketPath: String, timeout: Double,
                            limit: Int? = nil, script: String? = nil,
                            executionID: String? = nil, batchID: String? = nil) -> Result<JSONValue, ConnectionError> {
        do {
            let connection = try DaemonConnection(path: socketPath, timeoutSeconds: timeout)
            return .success(try connection.request(command, limit: limit, script: script, executionID: executionID,
                                                   batchID: batchID))
        } catch {
            return .failure(error)
        }
    }

    private static func help(_ command: String) -> Int32 {
        printOutput(Help.commands[command] ?? Help.overview)
        return ExitStatus.ok
    }
}
