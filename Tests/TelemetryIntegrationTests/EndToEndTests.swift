// End to end: lines in through `telemetry send`, one document out through `telemetry show` / `executions`.

import Foundation
import TelemetryCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("End to end")
struct EndToEndTests {
    static let schemaKeys = ["timestamp", "script_name", "script_version", "execution_id", "user_id", "environment",
                             "host", "status", "exit_code", "duration_seconds", "metrics", "events", "errors", "tags"]

    @Test("send --wait, then show --json returns the document with every schema field")
    func fullDocument() async throws {
        try await withDaemon(tag: "e2e") { daemon in
            let id = newExecutionID()
            let base = Wire.baseTS
            let lines = [
                Wire.start(id, script: "deploy.sh", version: "2.4.1", environment: "staging", pid: 31337, ts: base),
                Wire.event(id, "info", "fetch", "downloaded 3 artifacts", duration: 1.5, ts: base + 1),
                Wire.metric(id, "services_deployed", 5, ts: base + 2),
                Wire.metric(id, "ratio", 0.75, ts: base + 3),
                Wire.tag(id, "team", "platform", ts: base + 4),
                Wire.event(id, "error", "migrate", "schema migration failed: \"users\" is locked", ts: base + 5),
                Wire.event(id, "warning", "cleanup", "left 1 temp file", ts: base + 6),
                Wire.end(id, exitCode: 3, ts: base + 12),
            ]
            let send = try await daemon.cli(["send", "--wait", "--strict"], stdin: lines.joined(separator: "\n") + "\n")
            #expect(send.status == 0, "\(send)")
            #expect(send.stderr.isEmpty, "\(send)")

            let show = try await daemon.cli(["show", id, "--json"])
            try #require(show.status == 0, "\(show)\n\(daemon.stderr)")
            let document = try parseJSONObject(show.stdout)

            for key in Self.schemaKeys {
                #expect(document.has(key), "document lacks \(key): \(show.stdout)")
            }
            #expect(document.string("timestamp") == Wire.rfc3339(base))
            #expect(document.string("script_name") == "deploy.sh")
            #expect(document.string("script_version") == "2.4.1")
            #expect(document.string("execution_id") == id)
            #expect(document.string("environment") == "staging")
            #expect(document.string("host") == localHostname())
            #expect(document.string("status") == "failure")
            #expect(document.int("exit_code") == 3)
            #expect(document.double("duration_seconds") == 12)

            let metrics = try #require(document.object("metrics"))
            #expect(metrics.count == 2)
            #expect(metrics.double("services_deployed") == 5)
            #expect(metrics.double("ratio") == 0.75)
            #expect(document.object("tags")?.count == 1)
            #expect(document.object("tags")?.string("team") == "platform")

            let events = try #require(document.array("events"))
            let nonErrors = events.filter { $0.string("type") != "error" }
            #expect(nonErrors.map { $0.string("operation") ?? "?" } == ["fetch", "cleanup"], "\(events)")
            let fetch = try #require(nonErrors.first)
            #expect(fetch.string("type") == "info")
            #expect(fetch.string("message") == "downloaded 3 artifacts")
            #expect(fetch.string("timestamp") == Wire.rfc3339(base + 1))
            #expect(fetch.double("duration_seconds") == 1.5)
            #expect(nonErrors.last?.string("type") == "warning")

            let errors = try #require(document.array("errors"))
            #expect(errors.count == 1, "\(errors)")
            #expect(errors.first?.string("type") == "error")
            #expect(errors.first?.string("operation") == "migrate")
            #expect(errors.first?.string("message") == "schema migration failed: \"users\" is locked")
            #expect(errors.first?.string("timestamp") == Wire.rfc3339(base + 5))

            // user_id: the installation's HMAC of the sender's uid, never the uid or the user name.
            let userID = try #require(document.string("user_id"))
            #expect(userID.wholeMatch(of: /u_[0-9a-f]{32}/) != nil, "user_id \(userID)")
            #expect(userID != "u_\(getuid())")
            #expect(!userID.contains(userName()), "user_id \(userID) contains the user name")
            #expect(userID == (try expectedUserID(stateDir: daemon.stateDir, uid: getuid())))

            // The human rendering shows the same execution.
            let human = try await daemon.cli(["show", id])
            #expect(human.status == 0, "\(human)")
            #expect(human.stdout.contains("deploy.sh 2.4.1"), "\(human.stdout)")
            #expect(human.stdout.contains("failure (exit code 3)"), "\(human.stdout)")
        }
    }

    @Test("status is success for exit code 0; the end line's duration wins; TELEMETRY_HOSTNAME names the host")
    func successDocument() async throws {
        try await withDaemon(environment: ["TELEMETRY_HOSTNAME": "build-host-7"], tag: "e2eok") { daemon in
            let id = newExecutionID()
            let lines = [Wire.start(id, script: "backup.sh", version: "", environment: ""),
                         Wire.event(id, "success", "dump", "ok"),
                         Wire.end(id, exitCode: 0, duration: 42.5, ts: Wire.baseTS + 7)]
            let send = try await daemon.cli(["send", "--wait", "--strict"], stdin: lines.joined(separator: "\n"))
            #expect(send.status == 0, "\(send)")
            let show = try await daemon.cli(["show", id, "--json"])
            try #require(show.status == 0, "\(show)")
            let document = try parseJSONObject(show.stdout)
            #expect(document.string("status") == "success")
            #expect(document.int("exit_code") == 0)
            #expect(document.double("duration_seconds") == 42.5)
            #expect(document.string("host") == "build-host-7")
            #expect(document.string("script_version") == "")
            #expect(document.string("environment") == "")
            #expect(document.array("errors")?.isEmpty == true)
            #expect(document.array("events")?.count == 1)
            #expect(document.object("metrics")?.isEmpty == true)
            #expect(document.object("tags")?.isEmpty == true)
        }
    }

    @Test("executions --json lists stored documents; --script filters by script name")
    func executionsListing() async throws {
        try await withDaemon(tag: "e2els") { daemon in
            let deploy = newExecutionID()
            let backup = newExecutionID()
            let open = newExecutionID()
            let input = (Wire.execution(deploy, script: "deploy.sh", exitCode: 1)
                + Wire.execution(backup, script: "backup.sh", exitCode: 0)
                + [Wire.start(open, script: "deploy.sh")]).joined(separator: "\n")
            let send = try await daemon.cli(["send", "--wait"], stdin: input)
            #expect(send.status == 0, "\(send)")

            let all = try await daemon.cli(["executions", "--json"])
            try #require(all.status == 0, "\(all)")
            let rows = try parseJSONArray(all.stdout)
            #expect(Set(rows.compactMap { $0.string("execution_id") }) == [deploy, backup], "an open execution is not listed: \(rows)")
            let deployRow = rows.first { $0.string("execution_id") == deploy }
            #expect(deployRow?.string("script_name") == "deploy.sh")
            #expect(deployRow?.string("status") == "failure")
            #expect(rows.first { $0.string("execution_id") == backup }?.string("status") == "success")

            let filtered = try await daemon.cli(["executions", "--json", "--script", "deploy.sh"])
            #expect(filtered.status == 0, "\(filtered)")
            #expect(try parseJSONArray(filtered.stdout).compactMap { $0.string("execution_id") } == [deploy])

            let other = try await daemon.cli(["executions", "--json", "--script", "backup.sh"])
            #expect(try parseJSONArray(other.stdout).compactMap { $0.string("execution_id") } == [backup])

            let none = try await daemon.cli(["executions", "--json", "--script", "nope.sh"])
            #expect(none.status == 0, "\(none)")
            #expect(try parseJSONArray(none.stdout).isEmpty)

            let limited = try await daemon.cli(["executions", "--json", "--limit", "1"])
            #expect(try parseJSONArray(limited.stdout).count == 1)

            let table = try await daemon.cli(["executions"])
            #expect(table.status == 0)
            #expect(table.stdout.contains(deploy) && table.stdout.contains(backup), "\(table.stdout)")
        }
    }

    @Test("events beyond TELEMETRY_MAX_EVENTS_PER_EXECUTION are counted, not kept")
    func eventLimit() async throws {
        try await withDaemon(environment: ["TELEMETRY_MAX_EVENTS_PER_EXECUTION": "10"], tag: "e2emax") { daemon in
            let id = newExecutionID()
            var lines = [Wire.start(id, script: "chatty.sh")]
            for index in 0..<15 {
                lines.append(Wire.event(id, index % 5 == 4 ? "error" : "info", "op-\(index)", ts: Wire.baseTS + 1 + index))
            }
            lines.append(Wire.end(id, exitCode: 0, ts: Wire.baseTS + 30))
            try await daemon.sendAndFlush(lines)
            let document = try #require(try await daemon.document(id))
            let kept = (document.array("events") ?? []) + (document.array("errors") ?? [])
            #expect(kept.count == 10, "\(document)")
            #expect(document.int("dropped_events") == 5)
            #expect(Set(kept.compactMap { $0.string("operation") }) == Set((0..<10).map { "op-\($0)" }), "the first ten are kept")
            let status = try await daemon.status()
            #expect(status.int("events_dropped") == 5, "\(status)")
        }
    }

    @Test("an execution without an end line is stored as incomplete after TELEMETRY_EXECUTION_TIMEOUT")
    func incompleteAfterTimeout() async throws {
        try await withDaemon(environment: ["TELEMETRY_EXECUTION_TIMEOUT": "10"], tag: "e2eto") { daemon in
            let id = newExecutionID()
            try await daemon.sendAndFlush([Wire.start(id, script: "killed.sh"), Wire.event(id, "info", "before-kill")])
            #expect(try await daemon.document(id) == nil, "still open")
            var document: [String: Any]?
            let closed = try await waitUntil(timeout: 25, interval: .milliseconds(250)) {
                document = try await daemon.document(id)
                return document != nil
            }
            try #require(closed, "not closed after the timeout: \(daemon.stderr)")
            #expect(document?.string("status") == "incomplete")
            #expect(document?.isNull("exit_code") == true, "\(String(describing: document))")
            #expect(document?.array("events")?.first?.string("operation") == "before-kill")
            let late = try daemon.connect()
            defer { late.close() }
            try late.sendLine(Wire.end(id, exitCode: 0))
            _ = try await late.flush()
            let status = try await daemon.status()
            #expect(status.object("lines_rejected")?.int("execution_closed") == 1, "a late end is refused: \(status)")
            #expect(try await daemon.document(id)?.string("status") == "incomplete")
        }
    }

    @Test("another uid gets another user_id, which does not contain the uid",
          .enabled(if: getuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0, "needs root and setpriv"))
    func userIDOfAnotherUser() async throws {
        try await withDaemon(tag: "e2euid") { daemon in
            let uid: UInt32 = 54_321
            let mine = newExecutionID()
            let theirs = newExecutionID()
            try await daemon.sendAndFlush(Wire.execution(mine))
            // The socket is root:root 0660: group 0 may connect (once it may enter the test directory).
            chmod(daemon.dir.path, 0o755)
            let send = try await runProcess(
                "/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=0", "--clear-groups", "--", Binaries.telemetry, "send", "--wait", "--strict"],
                stdin: Array(Wire.execution(theirs).joined(separator: "\n").utf8),
                environment: ["TELEMETRY_SOCKET": daemon.socketPath])
            #expect(send.status == 0, "\(send)")
            let myDocument = try await daemon.document(mine)
            let theirDocument = try await daemon.document(theirs)
            let myID = try #require(myDocument?.string("user_id"))
            let theirID = try #require(theirDocument?.string("user_id"))
            #expect(myID != theirID)
            #expect(!theirID.contains(String(uid)), "user_id \(theirID) contains the uid")
            #expect(theirID.wholeMatch(of: /u_[0-9a-f]{32}/) != nil)
            #expect(theirID == (try expectedUserID(stateDir: daemon.stateDir, uid: uid)))
        }
    }
}

/// What the daemon should put in `user_id` for `uid`: computed with the installation key it created.
func expectedUserID(stateDir: String, uid: UInt32) throws -> String {
    let key = try Data(contentsOf: URL(fileURLWithPath: stateDir + "/anonymization.key"))
    return UserAnonymizer(key: Array(key)).userID(forUID: uid)
}

func localHostname() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, 255)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func userName() -> String {
    guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return "\(getuid())" }
    return String(cString: name)
}
