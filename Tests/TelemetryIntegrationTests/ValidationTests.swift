// Validation over a raw socket: bad lines are counted by reason and skipped; the connection and the good lines
// around them are unaffected. Also the host-wide opt-out (TELEMETRY_ENABLED=false).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Validation")
struct ValidationTests {
    static let allReasons = ["too_long", "invalid_utf8", "not_json", "not_object", "unsupported_version", "unknown_kind",
                             "missing_field", "wrong_type", "unknown_field", "invalid_value", "non_finite_number",
                             "bad_execution_id", "bad_timestamp", "execution_closed", "disabled"]

    @Test("one connection, good and bad lines mixed: good ones stored, bad ones counted by reason, connection stays open")
    func mixedLinesOnOneConnection() async throws {
        try await withDaemon(environment: ["TELEMETRY_MAX_LINE_BYTES": "1024"], tag: "valid") { daemon in
            let id = newExecutionID()
            let ts = Wire.baseTS
            // (expected reason or nil for a good line, bytes of the line without the newline)
            var lines: [(String?, [UInt8])] = []
            func good(_ line: String) { lines.append((nil, Array(line.utf8))) }
            func bad(_ reason: String, _ line: String) { lines.append((reason, Array(line.utf8))) }

            good(Wire.start(id, script: "validate.sh"))
            bad("not_json", "this is not json")
            bad("not_object", "[1,2,3]")
            bad("unknown_kind", Wire.object([("v", 1), ("kind", "bogus"), ("execution_id", id), ("ts", ts)]))
            bad("missing_field", Wire.object([("v", 1), ("kind", "event"), ("execution_id", id), ("ts", ts), ("level", "info")]))
            bad("wrong_type", Wire.metric(id, "wrong_type_metric", "5"))
            bad("too_long", Wire.event(id, "info", "too-long", String(repeating: "x", count: 2_000)))
            var invalidUTF8 = Array(Wire.event(id, "info", "invalid-utf8", "AB").utf8)
            let marker = invalidUTF8.firstIndex(of: UInt8(ascii: "A"))!
            invalidUTF8.replaceSubrange(marker...(marker + 1), with: [0xFF, 0xC3])
            lines.append(("invalid_utf8", invalidUTF8))
            bad("non_finite_number", Wire.metric(id, "nan_metric", RawJSON("NaN")))
            bad("bad_execution_id", Wire.start("not-a-uuid", script: "validate.sh"))
            good(Wire.event(id, "info", "after-bad-lines", "still here"))
            bad("unsupported_version", Wire.object([("v", 2), ("kind", "event"), ("execution_id", id), ("ts", ts),
                                                    ("level", "info"), ("operation", "v2")]))
            bad("unknown_field", Wire.object([("v", 1), ("kind", "tag"), ("execution_id", id), ("ts", ts),
                                              ("key", "k"), ("value", "v"), ("color", "red")]))
            bad("bad_timestamp", Wire.object([("v", 1), ("kind", "event"), ("execution_id", id), ("ts", "yesterday"),
                                              ("level", "info"), ("operation", "bad-ts")]))
            bad("invalid_value", Wire.event(id, "fatal", "bad-level"))
            good(Wire.metric(id, "good_metric", 7))

            let client = try daemon.connect()
            defer { client.close() }
            // In three writes, so the bad lines sit in different reads than some good ones.
            let stream = lines.map { $0.1 + [UInt8(ascii: "\n")] }
            try client.send(Array(stream[0..<4].joined()))
            try client.send(Array(stream[4..<11].joined()))
            try client.send(Array(stream[11...].joined()))
            // The connection is still usable: more lines, including a late one for the closed execution.
            try client.sendLines([Wire.tag(id, "team", "qa"), Wire.end(id, exitCode: 0)])
            try client.sendLine(Wire.event(id, "info", "too-late", "after the end"))
            let flush = try await client.flush()
            #expect(flush.bool("durable") == true, "\(flush)")

            let status = try await daemon.cli(["status", "--json"])
            try #require(status.status == 0, "\(status)")
            let reply = try parseJSONObject(status.stdout)
            let rejected = try #require(reply.object("lines_rejected"), "\(status.stdout)")
            var expected = Dictionary(uniqueKeysWithValues: Self.allReasons.map { ($0, 0) })
            for case let (reason?, _) in lines { expected[reason, default: 0] += 1 }
            expected["execution_closed", default: 0] += 1
            for reason in Self.allReasons {
                #expect(rejected.int(reason) == expected[reason], "lines_rejected.\(reason): \(rejected)")
            }
            // start, event, metric, tag, end
            #expect(reply.int("lines_accepted") == 5, "\(status.stdout)")

            let document = try #require(try await daemon.document(id), "\(daemon.stderr)")
            #expect(document.string("status") == "success")
            #expect(document.array("events")?.map { $0.string("operation") ?? "?" } == ["after-bad-lines"])
            #expect(document.array("errors")?.isEmpty == true)
            #expect(document.object("metrics")?.count == 1)
            #expect(document.object("metrics")?.double("good_metric") == 7)
            #expect(document.object("tags")?.count == 1)
            #expect(document.object("tags")?.string("team") == "qa")

            // Later lines on the same connection are still accepted.
            let second = newExecutionID()
            try client.sendLines(Wire.execution(second, script: "second.sh"))
            _ = try await client.flush()
            let secondDocument = try await daemon.document(second)
            #expect(secondDocument?.string("script_name") == "second.sh")
            let after = try await daemon.status()
            #expect(after.int("lines_accepted") == 11)

            // The daemon logs what it refused, with the reason.
            #expect(daemon.stderr.contains("not_json"), "\(daemon.stderr)")
        }
    }

    @Test("a bad control request is answered with its error, counted by reason, and the connection keeps working")
    func badControlRequest() async throws {
        try await withDaemon(tag: "vctl") { daemon in
            let client = try daemon.connect()
            defer { client.close() }
            try client.sendLine(Wire.control("reboot"))
            try client.sendLine(Wire.control("show"))
            try client.sendLine(Wire.control("show", ("execution_id", "nope")))
            // Each refused request gets a reply, so a waiting client never waits out its timeout.
            for expected in ["invalid_value", "missing_field", "bad_execution_id"] {
                let reply = try #require(try await client.readLine())
                #expect(reply.contains(#""ok":false"#), "\(reply)")
                #expect(reply.contains(expected), "\(reply)")
            }
            let id = newExecutionID()
            try client.sendLines(Wire.execution(id))
            _ = try await client.flush()
            let status = try await daemon.status()
            let rejected = try #require(status.object("lines_rejected"))
            #expect(rejected.int("invalid_value") == 1, "\(rejected)")
            #expect(rejected.int("missing_field") == 1, "\(rejected)")
            #expect(rejected.int("bad_execution_id") == 1, "\(rejected)")
            #expect(try await daemon.document(id) != nil)
        }
    }

    @Test("TELEMETRY_ENABLED=false: nothing is stored, every line is counted as disabled")
    func disabled() async throws {
        try await withDaemon(environment: ["TELEMETRY_ENABLED": "false"], tag: "off") { daemon in
            let id = newExecutionID()
            let lines = Wire.execution(id, script: "quiet.sh")
            let send = try await daemon.cli(["send", "--wait", "--strict"], stdin: lines.joined(separator: "\n"))
            #expect(send.status == 0, "\(send)")

            let status = try await daemon.cli(["status", "--json"])
            try #require(status.status == 0, "\(status)")
            let reply = try parseJSONObject(status.stdout)
            #expect(reply.bool("enabled") == false)
            #expect(reply.object("lines_rejected")?.int("disabled") == lines.count, "\(status.stdout)")
            #expect(reply.int("lines_accepted") == 0)
            #expect(reply.int("documents_stored") == 0)
            #expect(reply.int("open_executions") == 0)
            #expect(reply.object("store")?.int("documents") == 0)
            #expect(reply.object("store")?.int("journal_chunks") == 0)
            #expect((reply.object("store")?.int("commits") ?? 0) >= 1, "the flush of send --wait commits: \(status.stdout)")
            #expect(reply.object("store")?.int("commit_failures") == 0)

            let show = try await daemon.cli(["show", id, "--json"])
            #expect(show.status == 1, "\(show)")
            let executions = try await daemon.cli(["executions", "--json"])
            #expect(try parseJSONArray(executions.stdout).isEmpty, "\(executions)")

            let human = try await daemon.cli(["status"])
            #expect(human.stdout.contains("DISABLED"), "\(human.stdout)")
        }
    }

    @Test("TELEMETRY_ENABLED=false also discards lines waiting in the spool")
    func disabledDiscardsSpool() async throws {
        let dir = try TempDir("offspl")
        let daemon = try DaemonProcess(dir: dir, environment: ["TELEMETRY_ENABLED": "false"])
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try #require(mkdir(daemon.spoolDir, 0o1733) == 0)
        let id = newExecutionID()
        let lines = Wire.execution(id, script: "spooled-while-off.sh")
        let away = try await daemon.cli(["send"], stdin: lines.joined(separator: "\n"))
        #expect(away.status == 0, "\(away)")

        try await daemon.start()
        let status = try await daemon.status()
        #expect(status.object("store")?.int("documents") == 0, "a disabled daemon stored spooled lines: \(status)")
        #expect(status.int("lines_accepted") == 0, "\(status)")
        #expect(status.object("lines_rejected")?.int("disabled") == lines.count, "\(status)")
        #expect(try await daemon.document(id) == nil)
    }
}
