// The `telemetry` client: exit codes and messages when the daemon is down, and invalid input.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Client")
struct ClientTests {
    static func sampleInput() -> String {
        Wire.execution(newExecutionID(), script: "client.sh").joined(separator: "\n") + "\n"
    }

    /// Spool files in `directory` (name → lines).
    static func spoolFiles(_ directory: String) -> [String: [String]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var files: [String: [String]] = [:]
        for name in names where name.hasSuffix(".jsonl") {
            let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
            files[name] = text.split(separator: "\n").map(String.init)
        }
        return files
    }

    @Test("send with the daemon down: exit 0, a message naming the socket, lines spooled; --strict exits 1; --quiet is silent")
    func sendWithDaemonDown() async throws {
        let dir = try TempDir("cdown")
        defer { dir.remove() }
        let socket = dir.file("none.sock")
        let spool = dir.file("spool")
        try #require(mkdir(spool, 0o1733) == 0)
        let environment = ["TELEMETRY_SPOOL_DIR": spool]

        let plain = try await telemetry(["send"], stdin: Self.sampleInput(), socket: socket, environment: environment)
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.stderr.contains(socket), "\(plain)")
        #expect(plain.stderr.contains("not running"), "\(plain)")
        #expect(plain.stderr.contains("spooled"), "\(plain)")
        #expect(plain.stdout.isEmpty)

        let strict = try await telemetry(["send", "--strict"], stdin: Self.sampleInput(), socket: socket, environment: environment)
        #expect(strict.status == 1, "\(strict)")
        #expect(strict.stderr.contains(socket), "\(strict)")

        let wait = try await telemetry(["send", "--wait"], stdin: Self.sampleInput(), socket: socket, environment: environment)
        #expect(wait.status == 0, "\(wait)")

        let quiet = try await telemetry(["send", "--quiet"], stdin: Self.sampleInput(), socket: socket, environment: environment)
        #expect(quiet.status == 0, "\(quiet)")
        #expect(quiet.stderr.isEmpty && quiet.stdout.isEmpty, "\(quiet)")

        let quietEnvironment = try await telemetry(["send"], stdin: Self.sampleInput(), socket: socket,
                                                   environment: environment.merging(["TELEMETRY_QUIET": "1"]) { $1 })
        #expect(quietEnvironment.status == 0)
        #expect(quietEnvironment.stderr.isEmpty && quietEnvironment.stdout.isEmpty, "\(quietEnvironment)")

        let quietStrict = try await telemetry(["send", "--quiet", "--strict"], stdin: Self.sampleInput(), socket: socket,
                                              environment: environment)
        #expect(quietStrict.status == 1, "\(quietStrict)")
        #expect(quietStrict.stderr.isEmpty, "\(quietStrict)")

        // Each run left its six lines in a spool file of its own.
        let files = Self.spoolFiles(spool)
        #expect(files.count == 6, "\(files.keys)")
        for (name, lines) in files {
            #expect(lines.count == 6, "\(name): \(lines)")
            #expect(name.hasPrefix("\(getuid())."), "spool files are named <uid>.<pid>.<random>.jsonl: \(name)")
        }
    }

    @Test("send with the daemon down and no usable spool: exit 0 and says the lines are lost; --strict exits 1")
    func sendWithDaemonDownAndNoSpool() async throws {
        let dir = try TempDir("cnospl")
        defer { dir.remove() }
        let socket = dir.file("none.sock")
        let plain = try await telemetry(["send"], stdin: Self.sampleInput(), socket: socket)
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.stderr.contains(socket), "\(plain)")
        #expect(plain.stderr.contains("lost"), "\(plain)")
        let strict = try await telemetry(["send", "--strict"], stdin: Self.sampleInput(), socket: socket)
        #expect(strict.status == 1, "\(strict)")
    }

    @Test("while the daemon is away, send answers control lines itself: flush from the spool, others with an error")
    func controlRepliesWhileAway() async throws {
        let dir = try TempDir("caway")
        defer { dir.remove() }
        let spool = dir.file("spool")
        try #require(mkdir(spool, 0o1733) == 0)
        let input = Self.sampleInput() + Wire.control("flush") + "\n" + Wire.control("status") + "\n"
        let send = try await telemetry(["send"], stdin: input, socket: dir.file("none.sock"),
                                       environment: ["TELEMETRY_SPOOL_DIR": spool])
        #expect(send.status == 0, "\(send)")
        let replies = try send.stdout.split(separator: "\n").map { try parseJSONObject(String($0)) }
        try #require(replies.count == 2, "one reply per control line: \(send)")
        #expect(replies[0].bool("ok") == true && replies[0].bool("durable") == true && replies[0].bool("spooled") == true,
                "\(replies[0])")
        #expect(replies[0].string("request") == "flush")
        #expect(replies[1].bool("ok") == false, "\(replies[1])")
        #expect(replies[1].string("request") == "status")
        #expect(replies[1].string("error")?.contains("unreachable") == true, "\(replies[1])")
    }

    @Test("opt-out: with TELEMETRY_ENABLED=false or DO_NOT_TRACK=1, send sends and spools nothing and answers flush itself")
    func optOut() async throws {
        for environment in [["TELEMETRY_ENABLED": "false"], ["TELEMETRY_ENABLED": "off"], ["DO_NOT_TRACK": "1"]] {
            try await withDaemon(tag: "optout") { daemon in
                let input = Self.sampleInput() + Wire.control("flush") + "\n"
                let send = try await daemon.cli(["send", "--strict"], stdin: input, environment: environment)
                #expect(send.status == 0, "\(send)")
                #expect(send.stderr.isEmpty, "\(send)")
                let reply = try parseJSONObject(send.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(reply.bool("ok") == true && reply.bool("disabled") == true, "\(reply)")
                let status = try await daemon.status()
                #expect(status.int("lines_accepted") == 0, "nothing reached the daemon with \(environment)")
                #expect(Self.spoolFiles(daemon.spoolDir).isEmpty, "nothing was spooled with \(environment)")
            }
        }
    }

    @Test("spooled lines are taken in when the daemon starts, and every few seconds while it runs")
    func spoolIsTakenIn() async throws {
        let dir = try TempDir("cspool")
        let daemon = try DaemonProcess(dir: dir)
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try #require(mkdir(daemon.spoolDir, 0o1733) == 0)
        let early = newExecutionID()
        let away = try await daemon.cli(["send", "--wait"], stdin: Wire.execution(early, script: "spooled.sh").joined(separator: "\n"))
        #expect(away.status == 0, "\(away)")
        #expect(Self.spoolFiles(daemon.spoolDir).count == 1)

        try await daemon.start()
        let document = try await daemon.document(early)
        #expect(document?.string("script_name") == "spooled.sh", "spooled lines are in before the daemon listens")
        #expect(document?.string("user_id") == (try expectedUserID(stateDir: daemon.stateDir, uid: getuid())),
                "spooled lines belong to the spool file's owner")
        #expect(Self.spoolFiles(daemon.spoolDir).isEmpty, "the daemon deletes a spool file once it took it in")
        #expect(daemon.stderr.contains("spool"), "\(daemon.stderr)")

        // A client that cannot reach the running daemon spools; the daemon's periodic scan takes the file in.
        let late = newExecutionID()
        let lost = try await telemetry(["send"], stdin: Wire.execution(late, script: "late.sh").joined(separator: "\n"),
                                       socket: dir.file("wrong.sock"), environment: ["TELEMETRY_SPOOL_DIR": daemon.spoolDir])
        #expect(lost.status == 0, "\(lost)")
        var lateDocument: [String: Any]?
        await waitUntil(timeout: 12, interval: .milliseconds(100)) {
            lateDocument = try? await daemon.document(late)
            return lateDocument != nil
        }
        #expect(lateDocument?.string("script_name") == "late.sh", "the running daemon did not take in the spool")
    }

    @Test("status, flush, executions and show exit 3 when the daemon is not running")
    func commandsWithDaemonDown() async throws {
        let dir = try TempDir("cdown3")
        defer { dir.remove() }
        let missing = dir.file("none.sock")
        let stale = dir.file("stale.sock")
        try makeStaleSocket(at: stale)

        for socket in [missing, stale] {
            let status = try await telemetry(["status"], socket: socket)
            #expect(status.status == 3, "\(status)")
            #expect(status.stderr.contains(socket), "\(status)")

            let statusJSON = try await telemetry(["status", "--json"], socket: socket)
            #expect(statusJSON.status == 3, "\(statusJSON)")
            let reply = try parseJSONObject(statusJSON.stdout)
            #expect(reply.bool("running") == false, "\(statusJSON)")
            #expect(reply.string("socket") == socket)

            let flush = try await telemetry(["flush"], socket: socket)
            #expect(flush.status == 3, "\(flush)")
            #expect(flush.stderr.contains(socket), "\(flush)")

            let executions = try await telemetry(["executions"], socket: socket)
            #expect(executions.status == 3, "\(executions)")

            let show = try await telemetry(["show", newExecutionID()], socket: socket)
            #expect(show.status == 3, "\(show)")
        }

        // --socket wins over TELEMETRY_SOCKET.
        let flag = try await telemetry(["status", "--socket", missing], socket: "/nonexistent/other.sock")
        #expect(flag.status == 3)
        #expect(flag.stderr.contains(missing), "\(flag)")
    }

    @Test("show with a malformed execution id exits 2 with a clear message")
    func showMalformedID() async throws {
        let dir = try TempDir("cshow")
        defer { dir.remove() }
        for bad in ["abc", "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1", "6f1c2f8e_2b0a_4c1e_9d7a_3e5b8c9d0a1b", "zzzzzzzz-2b0a-4c1e-9d7a-3e5b8c9d0a1b"] {
            let show = try await telemetry(["show", bad], socket: dir.file("none.sock"))
            #expect(show.status == 2, "\(bad): \(show)")
            #expect(show.stderr.contains("\"\(bad)\" is not an execution id"), "\(bad): \(show)")
            #expect(show.stdout.isEmpty)
        }
        let noArgument = try await telemetry(["show"], socket: dir.file("none.sock"))
        #expect(noArgument.status == 2, "\(noArgument)")
    }

    @Test("show for an unknown id (daemon up) exits 1 and explains")
    func showUnknownID() async throws {
        try await withDaemon(tag: "cunk") { daemon in
            let show = try await daemon.cli(["show", newExecutionID()])
            #expect(show.status == 1, "\(show)")
            #expect(show.stderr.contains("no stored document"), "\(show)")
        }
    }

    @Test("send with invalid lines: `line N: reason: ...` on stderr, exit 0, the valid lines still arrive")
    func sendInvalidLines() async throws {
        try await withDaemon(tag: "cinv") { daemon in
            let id = newExecutionID()
            let input = [
                Wire.start(id, script: "mixed.sh"),                       // 1
                "not json at all",                                        // 2
                Wire.event(id, "info", "ok", "fine"),                     // 3
                Wire.object([("v", 1), ("kind", "event"), ("execution_id", id), ("ts", Wire.baseTS), ("level", "info")]),  // 4
                Wire.metric(id, "nan", RawJSON("NaN")),                   // 5
                "",                                                       // 6 (blank: skipped, still counted as a line)
                Wire.metric(id, "good", 1),                               // 7
                Wire.end(id, exitCode: 0),                                // 8
                "[1]",                                                    // 9
            ].joined(separator: "\n")
            let send = try await daemon.cli(["send", "--wait"], stdin: input)
            #expect(send.status == 0, "\(send)")
            #expect(send.stderr.contains("line 2: not_json: "), "\(send)")
            #expect(send.stderr.contains("line 4: missing_field: "), "\(send)")
            #expect(send.stderr.contains("line 5: non_finite_number: "), "\(send)")
            #expect(send.stderr.contains("line 9: not_object: "), "line numbers count blank lines too: \(send)")
            let reported = send.stderr.split(separator: "\n").filter { $0.contains(": line ") }
            #expect(reported.count == 4, "\(send)")

            let document = try await daemon.document(id)
            #expect(document?.array("events")?.map { $0.string("operation") ?? "" } == ["ok"])
            #expect(document?.object("metrics")?.count == 1)
            let status = try await daemon.status()
            #expect(status.int("lines_accepted") == 4, "the client does not send invalid lines: \(status)")

            let strict = try await daemon.cli(["send", "--strict"], stdin: "{\"v\":1}\n")
            #expect(strict.status == 1, "\(strict)")
            #expect(strict.stderr.contains("line 1: missing_field: "), "\(strict)")
        }
    }

    @Test("send passes control replies to stdout; flush prints a confirmation")
    func controlThroughSend() async throws {
        try await withDaemon(tag: "cctl") { daemon in
            let send = try await daemon.cli(["send"], stdin: Wire.control("status") + "\n")
            #expect(send.status == 0, "\(send)")
            let reply = try parseJSONObject(send.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(reply.bool("ok") == true)
            #expect(reply.int("pid") == Int(daemon.pid))

            let flush = try await daemon.cli(["flush", "--json"])
            #expect(flush.status == 0, "\(flush)")
            #expect(try parseJSONObject(flush.stdout).bool("durable") == true, "\(flush)")
        }
    }
}
