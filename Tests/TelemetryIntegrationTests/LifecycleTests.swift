// Lifecycle: orderly shutdown on SIGTERM and the sd_notify conversation with the service manager.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Lifecycle")
struct LifecycleTests {
    @Test("SIGTERM with lines read but not yet committed (1 s group commit): exit 0 within 5 s, nothing lost")
    func sigtermCommitsWhatWasRead() async throws {
        let dir = try TempDir("term")
        let daemon = try DaemonProcess(dir: dir, environment: ["TELEMETRY_COMMIT_INTERVAL_MS": "1000"])
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try await daemon.start()
        let complete = (0..<6).map { _ in newExecutionID() }
        let open = (0..<6).map { _ in newExecutionID() }

        // A client stopped in the middle of a line keeps its connection open through the shutdown.
        let stalled = try daemon.connect()
        defer { stalled.close() }
        try stalled.send(#"{"v":1,"kind":"event","execution_id":"#)

        // `telemetry send` without --wait: each writes its lines, closes, and is gone.
        try await withThrowingTaskGroup(of: ProcessResult.self) { group in
            for index in complete.indices {
                group.addTask {
                    let lines = Wire.execution(complete[index], script: "cli.sh", index: index) + [
                        Wire.start(open[index], script: "open.sh"),
                        Wire.event(open[index], "info", "open-e1", "sent before SIGTERM"),
                        Wire.metric(open[index], "index", index),
                    ]
                    return try await daemon.cli(["send", "--strict"], stdin: lines.joined(separator: "\n"))
                }
            }
            for try await result in group { #expect(result.status == 0, "\(result)") }
        }
        // The daemon has read every one of those connections to its end: only ours and the stalled one remain.
        var last: [String: Any] = [:]
        let drained = try await waitUntil(timeout: 10) {
            last = try await daemon.status()
            return last.object("connections")?.int("current") == 2
                && last.object("connections")?.int("total") ?? 0 >= complete.count + 2
        }
        try #require(drained, "\(last)")

        let exit = try await daemon.terminate(timeout: 5)
        #expect(exit.signaled == false && exit.status == 0, "telemetryd exit: \(exit)\n\(daemon.stderr)")
        #expect(exit.seconds < 5)
        #expect(daemon.stderr.contains("SIGTERM"), "\(daemon.stderr)")
        #expect(try await stalled.waitForEOF(timeout: 1), "the stalled connection was closed")

        try await Self.restartAndCheck(daemon, complete: complete, open: open)
    }

    @Test("SIGTERM while clients' lines still wait in the daemon's socket (daemon paused while they connect and write)")
    func sigtermWithLinesInSocketBuffers() async throws {
        let dir = try TempDir("termq")
        let daemon = try DaemonProcess(dir: dir)
        defer {
            daemon.forceStop()
            dir.remove()
        }
        try await daemon.start()
        let complete = (0..<40).map { _ in newExecutionID() }
        let open = (0..<40).map { _ in newExecutionID() }

        // While the daemon is not scheduled, the kernel completes the connections and takes the lines.
        daemon.signal(SIGSTOP)
        var clients: [RawClient] = []
        defer {
            daemon.signal(SIGCONT)
            clients.forEach { $0.close() }
        }
        for index in complete.indices {
            let client = try daemon.connect()
            clients.append(client)
            try client.sendLines(Wire.execution(complete[index], script: "raw.sh", index: index) + [
                Wire.start(open[index], script: "open.sh"),
                Wire.event(open[index], "info", "open-e1", "sent before SIGTERM"),
                Wire.metric(open[index], "index", index),
            ])
        }
        daemon.signal(SIGTERM)
        daemon.signal(SIGCONT)

        let exit = try await daemon.terminate(timeout: 5)
        #expect(exit.signaled == false && exit.status == 0, "telemetryd exit: \(exit)\n\(daemon.stderr)")
        try await Self.restartAndCheck(daemon, complete: complete, open: open)
    }

    /// Restarts `daemon`: every `complete` execution is stored; every `open` one is open, and once ended holds
    /// the event and metric sent before the shutdown.
    static func restartAndCheck(_ daemon: DaemonProcess, complete: [String], open: [String]) async throws {
        try await daemon.restart()
        let status = try await daemon.status()
        #expect(status.int("open_executions") == open.count, "\(status)")
        var lost: [Int] = []
        for (index, id) in complete.enumerated() where try await daemon.document(id) == nil { lost.append(index) }
        #expect(lost.isEmpty, "complete executions lost on SIGTERM: clients \(lost) of \(complete.count)\n\(daemon.allStderr)")
        let client = try daemon.connect()
        defer { client.close() }
        try client.sendLines(open.map { Wire.end($0, exitCode: 0) })
        _ = try await client.flush()
        var incomplete: [Int] = []
        for (index, id) in open.enumerated() {
            let document = try await daemon.document(id)
            if document?.array("events")?.map({ $0.string("operation") ?? "?" }) != ["open-e1"]
                || document?.object("metrics")?.double("index") != Double(index) {
                incomplete.append(index)
            }
        }
        #expect(incomplete.isEmpty, "open executions missing lines sent before SIGTERM: clients \(incomplete) of \(open.count)")
    }

    @Test("sd_notify: READY=1 with a STATUS, STATUS updates, and STOPPING=1 on SIGTERM")
    func sdNotify() async throws {
        try await withNotifyingDaemon(tag: "notify") { daemon, notify in

            let ready = await notify.waitFor(timeout: 10) { $0.split(separator: "\n").contains("READY=1") }
            let readyMessage = try #require(ready, "no READY=1 among \(notify.messages)")
            #expect(readyMessage.split(separator: "\n").contains { $0.hasPrefix("STATUS=") && $0.count > 7 }, "\(readyMessage)")

            // The status line follows what the daemon does (published about once a second when it changed).
            try await daemon.sendAndFlush(Wire.execution(newExecutionID()))
            let update = await notify.waitFor(timeout: 5) { $0.contains("STATUS=") && $0.contains("1 documents stored") }
            #expect(update != nil, "no STATUS update after a document was stored: \(notify.messages)")

            let exit = try await daemon.terminate(timeout: 5)
            #expect(exit.status == 0 && !exit.signaled, "\(exit)")
            let stopping = await notify.waitFor(timeout: 2) { $0.split(separator: "\n").contains("STOPPING=1") }
            #expect(stopping != nil, "no STOPPING=1 among \(notify.messages)")
            let readyIndex = notify.messages.firstIndex { $0.contains("READY=1") } ?? Int.max
            let stoppingIndex = notify.messages.firstIndex { $0.contains("STOPPING=1") } ?? -1
            #expect(readyIndex < stoppingIndex, "READY=1 comes before STOPPING=1: \(notify.messages)")
        }
    }
}
