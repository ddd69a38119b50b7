// Crash recovery: kill -9 the daemon and restart it on the same state directory, several times.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Crash recovery")
struct RecoveryTests {
    /// Sends `lines` on a raw connection (no in-band flush), waits until the daemon counted `accepted` lines
    /// since its start, then runs `telemetry flush` and requires its acknowledgement.
    static func sendThenFlush(_ daemon: DaemonProcess, _ lines: [String], acceptedSinceStart accepted: Int) async throws {
        let client = try daemon.connect()
        defer { client.close() }
        try client.sendLines(lines)
        var last: [String: Any] = [:]
        let counted = try await waitUntil(timeout: 10) {
            last = try await daemon.status()
            return last.int("lines_accepted") == accepted
        }
        if !counted {
            let listing = try? await daemon.cli(["executions", "--json", "--limit", "100"])
            Issue.record("lines_accepted never reached \(accepted): \(last)\nstored: \(listing?.stdout ?? "?")\n\(daemon.allStderr)")
            throw HarnessError("lines_accepted never reached \(accepted)")
        }
        let flush = try await daemon.cli(["flush"])
        try #require(flush.status == 0, "\(flush)")
        #expect(flush.stdout.contains("flushed"), "\(flush)")
    }

    @Test("kill -9 three times: complete executions survive, open ones are rebuilt from the journal")
    func killNineThreeTimes() async throws {
        let dir = try TempDir("crash")
        let daemon = try DaemonProcess(dir: dir)
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try await daemon.start()
        let base = Wire.baseTS
        let (a1, a2, a3) = (newExecutionID(), newExecutionID(), newExecutionID())
        let (c1, c2, c3) = (newExecutionID(), newExecutionID(), newExecutionID())

        // Round 1: A1 and A2 stay open, C1 completes.
        try await Self.sendThenFlush(daemon, [
            Wire.start(a1, script: "long-1.sh", version: "1.1", environment: "prod", ts: base),
            Wire.event(a1, "info", "a1-e1", "before crash 1", ts: base + 1),
            Wire.metric(a1, "m1", 1, ts: base + 1),
            Wire.start(a2, script: "long-2.sh", ts: base),
            Wire.event(a2, "warning", "a2-e1", "before crash 1", ts: base + 1),
        ] + Wire.execution(c1, script: "short.sh", index: 1), acceptedSinceStart: 11)
        try await daemon.kill9()
        #expect(fileInfo(daemon.socketPath)?.isSocket == true, "kill -9 leaves the socket file behind")
        try await daemon.restart()

        var status = try await daemon.status()
        #expect(status.int("open_executions") == 2, "A1 and A2 reopened from the journal: \(status)")
        #expect(try await daemon.document(c1) != nil, "C1 lost in crash 1")
        #expect(try await daemon.document(a1) == nil)
        let notYet = try await daemon.cli(["show", a2])
        #expect(notYet.status == 1, "\(notYet)")
        #expect(notYet.stderr.contains("no stored document"), "\(notYet)")

        // Round 2: more for A1, A2 ends, A3 opens, C2 completes, and a late line for C1 is refused.
        try await Self.sendThenFlush(daemon, [
            Wire.event(a1, "info", "a1-e2", "between crashes 1 and 2", ts: base + 2),
            Wire.end(a2, exitCode: 0, ts: base + 5),
            Wire.start(a3, script: "long-3.sh", ts: base + 3),
            Wire.event(a3, "error", "a3-e1", "before crash 2", ts: base + 4),
        ] + Wire.execution(c2, script: "short.sh", index: 2), acceptedSinceStart: 10)
        let late = try daemon.connect()
        try late.sendLine(Wire.event(c1, "info", "late", "C1 is closed"))
        _ = try await late.flush()
        late.close()
        status = try await daemon.status()
        #expect(status.object("lines_rejected")?.int("execution_closed") == 1, "\(status)")

        let a2Document = try #require(try await daemon.document(a2), "A2 not stored after its end line")
        #expect(a2Document.array("events")?.map { $0.string("operation") ?? "?" } == ["a2-e1"],
                "A2's event sent before crash 1 is missing: \(a2Document)")
        #expect(a2Document.string("script_name") == "long-2.sh")
        #expect(a2Document.string("status") == "success")
        try await daemon.kill9()
        try await daemon.restart()

        status = try await daemon.status()
        #expect(status.int("open_executions") == 2, "A1 and A3 reopened: \(status)")
        for id in [c1, c2, a2] {
            #expect(try await daemon.document(id) != nil, "\(id) lost in crash 2")
        }
        #expect(try await daemon.document(c1)?.array("events")?.count == 2, "C1 unchanged by the refused late line")

        // Round 3: A1 and A3 end; C3 through `telemetry send --wait`.
        try await Self.sendThenFlush(daemon, [
            Wire.event(a1, "success", "a1-e3", "after crash 2", ts: base + 6),
            Wire.end(a1, exitCode: 4, ts: base + 20),
            Wire.end(a3, exitCode: 0, ts: base + 9),
        ], acceptedSinceStart: 3)
        let send = try await daemon.cli(["send", "--wait", "--strict"],
                                        stdin: Wire.execution(c3, script: "short.sh", index: 3).joined(separator: "\n"))
        #expect(send.status == 0, "\(send)")
        try await daemon.kill9()
        try await daemon.restart()

        status = try await daemon.status()
        #expect(status.int("open_executions") == 0, "\(status)")
        #expect(status.object("store")?.int("documents") == 6, "\(status)")
        #expect(status.object("store")?.int("journal_chunks") == 0, "the journal is pruned once nothing is open: \(status)")

        let a1Document = try #require(try await daemon.document(a1), "A1 not stored:\n\(daemon.allStderr)")
        #expect(a1Document.array("events")?.map { $0.string("operation") ?? "?" } == ["a1-e1", "a1-e2", "a1-e3"],
                "A1 must hold the events sent before each crash: \(a1Document)")
        #expect(a1Document.string("script_name") == "long-1.sh")
        #expect(a1Document.string("script_version") == "1.1")
        #expect(a1Document.string("environment") == "prod")
        #expect(a1Document.string("timestamp") == Wire.rfc3339(base))
        #expect(a1Document.object("metrics")?.double("m1") == 1)
        #expect(a1Document.string("status") == "failure")
        #expect(a1Document.int("exit_code") == 4)
        #expect(a1Document.double("duration_seconds") == 20)

        let a3Document = try #require(try await daemon.document(a3))
        #expect(a3Document.array("errors")?.map { $0.string("operation") ?? "?" } == ["a3-e1"], "\(a3Document)")
        #expect(a3Document.string("script_name") == "long-3.sh")

        let c1Document = try #require(try await daemon.document(c1))
        let c3Document = try #require(try await daemon.document(c3))
        #expect(a1Document.string("user_id") == c1Document.string("user_id"), "the anonymization key survives restarts")
        #expect(c3Document.string("user_id") == c1Document.string("user_id"))

        let listing = try await daemon.cli(["executions", "--json", "--limit", "100"])
        #expect(Set(try parseJSONArray(listing.stdout).compactMap { $0.string("execution_id") }) == [a1, a2, a3, c1, c2, c3])
        #expect(daemon.starts == 4)
    }
}
