// The listening socket: its mode, stale files left by crashes, a second daemon, a path that is not a socket.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Socket")
struct SocketTests {
    @Test("the socket file has mode 0660")
    func socketMode() async throws {
        try await withDaemon(tag: "smode") { daemon in
            let info = try #require(fileInfo(daemon.socketPath))
            #expect(info.isSocket)
            #expect(info.permissions == 0o660, "mode \(String(info.permissions, radix: 8))")
        }
    }

    @Test("a stale socket file (bound, closed, never unlinked) is replaced at start")
    func staleSocketIsReplaced() async throws {
        let dir = try TempDir("stale")
        let daemon = try DaemonProcess(dir: dir)
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try makeStaleSocket(at: daemon.socketPath)
        let stale = try #require(fileInfo(daemon.socketPath))
        #expect(stale.isSocket)
        #expect(!RawClient.canConnect(daemon.socketPath), "nobody listens on the stale socket")

        try await daemon.start()
        let info = try #require(fileInfo(daemon.socketPath))
        #expect(info.isSocket)
        #expect(RawClient.canConnect(daemon.socketPath), "the daemon listens where the stale socket was")
        #expect(info.permissions == 0o660)
        let status = try await daemon.cli(["status", "--json"])
        #expect(status.status == 0, "\(status)")
        #expect(try parseJSONObject(status.stdout).int("pid") == Int(daemon.pid))
    }

    @Test("after kill -9 the daemon starts again on the socket it left behind")
    func restartAfterKill() async throws {
        try await withDaemon(tag: "skill") { daemon in
            let before = try #require(fileInfo(daemon.socketPath))
            try await daemon.kill9()
            #expect(fileInfo(daemon.socketPath)?.inode == before.inode, "the killed daemon left its socket file")
            #expect(!RawClient.canConnect(daemon.socketPath))
            try await daemon.restart()
            let status = try await daemon.cli(["status"])
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains("pid \(daemon.pid)"), "\(status.stdout)")
        }
    }

    @Test("a second daemon on a live socket fails, says another telemetryd listens, and leaves the first alone")
    func secondDaemonRefused() async throws {
        try await withDaemon(tag: "s2nd") { daemon in
            let id = newExecutionID()
            try await daemon.sendAndFlush([Wire.start(id, script: "first.sh")])
            let before = try #require(fileInfo(daemon.socketPath))

            // Same socket, same state directory, same configuration: what a second `systemctl start` would do.
            let second = try await telemetryd(daemon.arguments, environment: daemon.environment, timeout: 10)
            #expect(second.status != 0, "\(second)")
            #expect(second.stderr.contains("another telemetryd"), "\(second)")
            #expect(second.stderr.contains(daemon.socketPath), "\(second)")

            #expect(daemon.isRunning)
            #expect(fileInfo(daemon.socketPath)?.inode == before.inode, "the first daemon's socket was not touched")
            let status = try await daemon.status()
            #expect(status.int("pid") == Int(daemon.pid))
            #expect(status.int("open_executions") == 1, "\(status)")
            // The first daemon still works, open execution included.
            try await daemon.sendAndFlush([Wire.event(id, "info", "after-second", ""), Wire.end(id, exitCode: 0)])
            let document = try await daemon.document(id)
            #expect(document?.string("script_name") == "first.sh")
            #expect(document?.array("events")?.count == 1)
        }
    }

    @Test("a second daemon that cannot listen leaves the spool to the daemon that runs")
    func secondDaemonLeavesSpoolAlone() async throws {
        try await withDaemon(tag: "s2spl") { daemon in
            // Lines spooled by a client that could not reach the daemon: an execution that is still open.
            let id = newExecutionID()
            let spooled = try await daemon.cli(["send"], stdin: [Wire.start(id, script: "spooled.sh"),
                                                                 Wire.event(id, "info", "while-away", "")].joined(separator: "\n"),
                                               environment: ["TELEMETRY_SOCKET": daemon.dir.file("wrong.sock")])
            #expect(spooled.status == 0, "\(spooled)")
            // The daemon rescans its spool every few seconds; a second daemon starts before that.
            let second = try await telemetryd(daemon.arguments, environment: daemon.environment, timeout: 10)
            #expect(second.status != 0, "\(second)")
            #expect(!second.stderr.contains("took in spooled lines"),
                    "the second daemon took in the spool before finding the socket taken:\n\(second.stderr)")

            // Whoever took it in (the running daemon rescans its spool every few seconds), the running daemon
            // must know the execution when its end arrives.
            let taken = await waitUntil(timeout: 12, interval: .milliseconds(100)) { Self.spoolIsEmpty(daemon.spoolDir) }
            #expect(taken, "the spool file was never taken in")
            try await daemon.sendAndFlush([Wire.end(id, exitCode: 0)])
            let document = try await daemon.document(id)
            #expect(document?.string("script_name") == "spooled.sh", "start line lost: \(String(describing: document))")
            #expect(document?.array("events")?.map { $0.string("operation") ?? "?" } == ["while-away"])
        }
    }

    static func spoolIsEmpty(_ directory: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).allSatisfy { !$0.hasSuffix(".jsonl") }
    }

    @Test("a regular file at the socket path is refused and left in place")
    func regularFileRefused() async throws {
        let dir = try TempDir("sfile")
        defer { dir.remove() }
        let path = try dir.write("d.sock", "precious data\n")
        let daemon = try DaemonProcess(dir: dir)
        defer { daemon.forceStop() }
        let result = try await telemetryd(daemon.arguments, timeout: 10)
        #expect(result.status != 0, "\(result)")
        #expect(result.stderr.contains("not a socket"), "\(result)")
        #expect(fileInfo(path)?.isRegular == true)
        #expect((try? String(contentsOfFile: path, encoding: .utf8)) == "precious data\n")
    }

    @Test("the socket's missing parent directory is created")
    func parentDirectoryCreated() async throws {
        let dir = try TempDir("sdir")
        let daemon = try DaemonProcess(dir: dir, socketName: "run/d.sock")
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try await daemon.start()
        #expect(fileInfo(daemon.socketPath)?.isSocket == true)
        let status = try await daemon.cli(["status"])
        #expect(status.status == 0, "\(status)")
    }
}
