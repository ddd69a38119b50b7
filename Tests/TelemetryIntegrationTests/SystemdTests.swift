// The daemon's side of systemd without a booted systemd: sd_notify datagrams (READY, STATUS, WATCHDOG,
// RELOADING, STOPPING) read from a NOTIFY_SOCKET the test owns, SIGHUP reloads, socket activation through
// `systemd-socket-activate`, and native journal entries read back from a standalone systemd-journald.
// tests/systemd/ covers the same against a real systemd in a container.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

private func fields(_ message: String) -> [String] { message.split(separator: "\n").map(String.init) }

@Suite("systemd: notify, watchdog, reload, socket activation, journal")
struct SystemdTests {
    @Test("WATCHDOG_USEC set: WATCHDOG=1 at about half the interval, after READY=1; none without it")
    func watchdogPets() async throws {
        try await withNotifyingDaemon(environment: ["WATCHDOG_USEC": "400000"], tag: "wdog") { daemon, notify in
            let started = monotonicSeconds()
            _ = await notify.waitFor(timeout: 3) { _ in notify.messages.filter { $0 == "WATCHDOG=1" }.count >= 4 }
            let elapsed = monotonicSeconds() - started
            let pets = notify.messages.filter { $0 == "WATCHDOG=1" }.count
            #expect(pets >= 4, "expected WATCHDOG=1 every ~0.2 s: \(notify.messages)\n\(daemon.stderr)")
            #expect(elapsed < 2.5, "4 pets took \(elapsed) s; the interval is 0.4 s, pets are due every 0.2 s")
            let ready = notify.messages.firstIndex { fields($0).contains("READY=1") } ?? Int.max
            let firstPet = notify.messages.firstIndex { $0 == "WATCHDOG=1" } ?? -1
            #expect(ready < firstPet, "READY=1 comes first: \(notify.messages)")

            // A stopped (wedged) process pets nothing; it resumes when it runs again.
            daemon.signal(SIGSTOP)
            try await Task.sleep(for: .milliseconds(100))  // a datagram sent just before the stop may still arrive
            notify.drain()
            let before = notify.messages.count
            try await Task.sleep(for: .milliseconds(600))
            notify.drain()
            #expect(notify.messages.count == before, "pets while stopped: \(notify.messages[before...])")
            daemon.signal(SIGCONT)
            let resumed = await notify.waitFor(timeout: 2) { _ in notify.messages[before...].contains("WATCHDOG=1") }
            #expect(resumed != nil, "no pet after SIGCONT")
            #expect(try await daemon.terminate().status == 0)
        }

        // Without WATCHDOG_USEC, no pets at all.
        try await withNotifyingDaemon(tag: "wdog2") { _, quiet in
            _ = await quiet.waitFor(timeout: 1.2) { $0 == "WATCHDOG=1" }
            #expect(!quiet.messages.contains("WATCHDOG=1"), "\(quiet.messages)")
        }
    }

    @Test("SIGHUP: RELOADING=1 with MONOTONIC_USEC then READY=1; the log level applies live, a per-execution limit waits for a restart; nothing in flight is lost")
    func reloadAppliesAndReports() async throws {
        try await withNotifyingDaemon(tag: "reload", start: false) { daemon, notify in
            _ = try daemon.dir.write("telemetryd.conf", "TELEMETRY_LOG_LEVEL=info\nTELEMETRY_MAX_EVENTS_PER_EXECUTION=500\n")
            try await daemon.start()
            _ = await notify.waitFor(timeout: 5) { fields($0).contains("READY=1") }

            // A client streams across the reload.
            let id = newExecutionID()
            let client = try daemon.connect()
            defer { client.close() }
            try client.sendLines([Wire.start(id, script: "reload.sh")])

            _ = try daemon.dir.write("telemetryd.conf", "TELEMETRY_LOG_LEVEL=debug\nTELEMETRY_MAX_EVENTS_PER_EXECUTION=20\n")
            notify.drain()
            let before = notify.messages.count
            daemon.signal(SIGHUP)
            let reloading = await notify.waitFor(timeout: 5) { fields($0).contains("RELOADING=1") }
            let reloadingMessage = try #require(reloading, "no RELOADING=1: \(notify.messages)\n\(daemon.stderr)")
            let monotonic = fields(reloadingMessage).first { $0.hasPrefix("MONOTONIC_USEC=") }.flatMap { Int($0.dropFirst(15)) }
            #expect((monotonic ?? 0) > 0, "RELOADING=1 without MONOTONIC_USEC: \(reloadingMessage)")
            let readyAgain = await notify.waitFor(timeout: 5) { message in
                fields(message).contains("READY=1") && notify.messages.lastIndex(of: message).map { $0 > before } == true
                    && notify.messages.firstIndex(of: reloadingMessage).map { notify.messages.lastIndex(of: message)! > $0 } == true
            }
            let ready = try #require(readyAgain, "no READY=1 after RELOADING=1: \(notify.messages)")
            #expect(ready.contains("restart to apply TELEMETRY_MAX_EVENTS_PER_EXECUTION"), "\(ready)")

            let log = daemon.stderr
            #expect(log.contains("configuration reloaded: applied TELEMETRY_LOG_LEVEL"), "\(log)")
            #expect(log.contains("only after a restart") && log.contains("TELEMETRY_MAX_EVENTS_PER_EXECUTION"), "\(log)")
            // debug is live now: the flush below is logged at debug level only after the reload.
            for index in 0..<30 { try client.sendLine(Wire.event(id, "info", "op\(index)")) }
            try client.sendLine(Wire.end(id, exitCode: 0))
            _ = try await client.flush()
            let document = try #require(try await daemon.document(id), "the execution streamed across the reload is stored")
            #expect(document.array("events")?.count == 30, "the old per-execution event limit (500) stays until a restart")
            #expect(daemon.stderr.contains(" debug telemetryd:"), "debug lines after the reload:\n\(daemon.stderr)")
        }
    }

    @Test("an invalid configuration on SIGHUP keeps the running one, says why (file:line) in the log and in STATUS, and the daemon keeps serving")
    func invalidReloadKeepsRunning() async throws {
        try await withNotifyingDaemon(tag: "badrel") { daemon, notify in
            _ = await notify.waitFor(timeout: 5) { fields($0).contains("READY=1") }
            _ = try daemon.dir.write("telemetryd.conf", "# broken\nTELEMETRY_BATCH_SIZE=lots\n")
            daemon.signal(SIGHUP)
            let failed = await notify.waitFor(timeout: 5) { $0.contains("READY=1") && $0.contains("RELOAD FAILED") }
            let message = try #require(failed, "\(notify.messages)\n\(daemon.stderr)")
            #expect(message.contains("TELEMETRY_BATCH_SIZE"), "\(message)")
            #expect(daemon.stderr.contains("configuration reload rejected"), "\(daemon.stderr)")
            #expect(daemon.stderr.contains("telemetryd.conf:2"), "the problem names the file and line:\n\(daemon.stderr)")
            let id = newExecutionID()
            _ = try await daemon.sendAndFlush(Wire.execution(id))
            #expect(try await daemon.document(id) != nil)

            // Fixing the file and reloading again clears the failure from the status line.
            _ = try daemon.dir.write("telemetryd.conf", "TELEMETRY_BATCH_SIZE=50\n")
            daemon.signal(SIGHUP)
            let fixed = await notify.waitFor(timeout: 5) { $0.contains("READY=1") && !$0.contains("RELOAD FAILED") && notify.messages.contains(message) && notify.messages.lastIndex(of: $0)! > notify.messages.firstIndex(of: message)! }
            #expect(fixed != nil, "\(notify.messages)")
            #expect(try await daemon.terminate().status == 0)
        }
    }

    @Test("socket activation: systemd-socket-activate starts the daemon on the first connection; it serves the passed socket and leaves its path alone")
    func socketActivation() async throws {
        guard access("/usr/bin/systemd-socket-activate", X_OK) == 0 else {
            Issue.record("systemd-socket-activate is missing: install the systemd package (make deps)")
            return
        }
        let dir = try TempDir("sockact")
        defer { dir.remove() }
        let notify = try NotifySocket(path: dir.file("notify.sock"))
        let id = newExecutionID()
        _ = try dir.write("lines.jsonl", Wire.execution(id).joined(separator: "\n") + "\n")
        _ = try dir.write("none.conf", "")
        // One shell owns (and reaps) the activator and the daemon it becomes. systemd-socket-activate passes a
        // clean environment: what the daemon needs goes through -E.
        let script = """
        set -u
        D=\(dir.path)
        systemd-socket-activate -l "$D/activated.sock" -E NOTIFY_SOCKET="$D/notify.sock" \\
          -E TELEMETRY_SPOOL_DIR="$D/spool" -E TELEMETRY_SOCKET="$D/activated.sock" \\
          "\(Binaries.telemetryd)" --state-dir "$D/state" --config "$D/none.conf" 2>"$D/daemon.stderr" &
        A=$!
        # The socket file appears at bind(), before listen(): a connect in between is refused. The activator
        # says "Listening on" once it listens.
        for _ in $(seq 200); do grep -q "Listening on" "$D/daemon.stderr" 2>/dev/null && break; sleep 0.05; done
        [ -S "$D/activated.sock" ] || { echo "no socket"; exit 1; }
        [ -d "$D/state" ] && echo "STARTED_EARLY" || echo "NOT_STARTED_BEFORE_CONNECTION"
        export TELEMETRY_SOCKET="$D/activated.sock" TELEMETRY_SPOOL_DIR="$D/spool"
        timeout 20 "\(Binaries.telemetry)" send --wait --strict <"$D/lines.jsonl"; echo "SEND=$?"
        timeout 20 "\(Binaries.telemetry)" show "\(id)" --json >"$D/show.json"; echo "SHOW=$?"
        [ "$(cat /proc/$A/comm)" = telemetryd ] && echo "DAEMON_IS_THE_ACTIVATED_PROCESS"
        kill -TERM $A; wait $A; echo "EXIT=$?"
        [ -S "$D/activated.sock" ] && echo "SOCKET_LEFT_IN_PLACE"
        """
        _ = try dir.write("run.sh", script)
        let run = try await runProcess("/bin/bash", [dir.file("run.sh")], timeout: 60)
        let log = (try? String(contentsOfFile: dir.file("daemon.stderr"), encoding: .utf8)) ?? ""
        let output = run.stdout.split(separator: "\n").map(String.init)
        #expect(output.contains("NOT_STARTED_BEFORE_CONNECTION"), "\(run)")
        #expect(output.contains("SEND=0"), "\(run)\n\(log)")
        #expect(output.contains("SHOW=0"), "\(run)\n\(log)")
        let show = (try? String(contentsOfFile: dir.file("show.json"), encoding: .utf8)) ?? ""
        #expect(show.contains(id), "\(show)")
        #expect(output.contains("DAEMON_IS_THE_ACTIVATED_PROCESS"), "\(run)")
        #expect(output.contains("EXIT=0"), "\(run)\n\(log)")
        #expect(output.contains("SOCKET_LEFT_IN_PLACE"), "the socket belongs to whoever passed it: \(run)")
        #expect(log.contains("socket_activated=true"), "\(log)")
        let ready = await notify.waitFor(timeout: 2) { fields($0).contains("READY=1") }
        #expect(ready != nil, "\(notify.messages)")
    }

    @Test("journal: native entries with PRIORITY, SYSLOG_IDENTIFIER, CODE_*, TELEMETRY_* fields and MESSAGE_IDs, read back from a standalone systemd-journald")
    func journalEntries() async throws {
        guard getuid() == 0 else {
            Issue.record("this test needs root: it runs systemd-journald in a private mount namespace (unshare --mount)")
            return
        }
        let dir = try TempDir("jrnl")
        defer { dir.remove() }
        let journalDir = dir.file("journal")
        try FileManager.default.createDirectory(atPath: journalDir, withIntermediateDirectories: true)
        let id = newExecutionID()
        let lines = Wire.execution(id, script: "deploy-service").joined(separator: "\n") + "\n"
        _ = try dir.write("lines.jsonl", lines)
        _ = try dir.write("journald.conf", "[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitIntervalSec=0\nForwardToSyslog=no\nForwardToWall=no\n")
        let script = """
        set -eu
        D=\(dir.path)
        mount -t tmpfs -o mode=755 tmpfs /run
        mkdir -p /run/log/journal /run/systemd/journal
        mount --bind "$D/journal" /run/log/journal
        [ -e /etc/systemd/journald.conf ] && mount --bind "$D/journald.conf" /etc/systemd/journald.conf
        if [ ! -s /etc/machine-id ]; then systemd-id128 new >"$D/machine-id"; mount --bind "$D/machine-id" /etc/machine-id 2>/dev/null || true; fi
        /lib/systemd/systemd-journald </dev/null >"$D/journald.log" 2>&1 &
        J=$!
        for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
        [ -S /run/systemd/journal/socket ] || { echo "journald did not start"; cat "$D/journald.log"; exit 1; }
        TELEMETRY_LOG_TARGET=journal TELEMETRY_JOURNAL_EVENTS=true TELEMETRY_SPOOL_DIR="$D/spool" \\
          "\(Binaries.telemetryd)" --socket "$D/d.sock" --state-dir "$D/state" --config "$D/none.conf" 2>"$D/daemon.stderr" &
        P=$!
        for _ in $(seq 200); do [ -S "$D/d.sock" ] && break; sleep 0.05; done
        TELEMETRY_SOCKET="$D/d.sock" TELEMETRY_SPOOL_DIR="$D/spool" "\(Binaries.telemetry)" send --wait --strict <"$D/lines.jsonl"
        kill -TERM $P; wait $P
        journalctl --sync || true
        kill -TERM $J; wait $J || true
        """
        _ = try dir.write("none.conf", "")
        _ = try dir.write("run.sh", script)
        let run = try await runProcess("/usr/bin/unshare", ["--mount", "--propagation", "private", "bash", dir.file("run.sh")], timeout: 60)
        try #require(run.status == 0, "\(run)\n\((try? String(contentsOfFile: dir.file("daemon.stderr"), encoding: .utf8)) ?? "")")
        let read = try await runProcess("/usr/bin/journalctl", ["-D", journalDir, "-o", "json", "--no-pager"], timeout: 30)
        try #require(read.status == 0, "\(read)")
        let entries = read.stdout.split(separator: "\n").compactMap { try? parseJSONObject(String($0)) }
        let ours = entries.filter { $0.string("SYSLOG_IDENTIFIER") == "telemetryd" }
        try #require(!ours.isEmpty, "no telemetryd entries among \(entries.count): \(read.stdout.prefix(2_000))")

        let started = try #require(ours.first { $0.string("MESSAGE_ID") == "3944deaae2354d7c832a23c431d62065" },
                                   "no 'started' entry: \(ours.map { $0.string("MESSAGE") ?? "" })")
        #expect(started.string("PRIORITY") == "5", "notice is syslog priority 5: \(started)")
        #expect(started.string("TELEMETRY_SOCKET") == dir.file("d.sock"), "\(started)")
        #expect(started.string("CODE_FILE")?.hasSuffix("Daemon.swift") == true, "\(started)")
        #expect(Int(started.string("CODE_LINE") ?? "") != nil && started.string("CODE_FUNC") != nil, "\(started)")
        #expect(started.string("MESSAGE")?.contains("ready") == true, "\(started)")
        #expect(ours.contains { $0.string("MESSAGE_ID") == "f9938a7fe9d545e5bbe9a252271b18d6" }, "a 'stopped' entry")
        let execution = try #require(ours.first { $0.string("MESSAGE_ID") == "e140fb4759d6466fa6b763bfb30cf280" },
                                     "TELEMETRY_JOURNAL_EVENTS=true logs each completed execution")
        #expect(execution.string("TELEMETRY_SCRIPT") == "deploy-service", "\(execution)")
        #expect(execution.string("TELEMETRY_EXECUTION_ID") == id, "\(execution)")
        #expect(execution.string("TELEMETRY_STATUS") == "success", "\(execution)")
        #expect(execution.string("TELEMETRY_EXIT_CODE") == "0", "\(execution)")
        // Nothing went to stderr: the journal took every entry.
        let stderr = (try? String(contentsOfFile: dir.file("daemon.stderr"), encoding: .utf8)) ?? ""
        #expect(stderr.isEmpty, "\(stderr)")
    }
}
