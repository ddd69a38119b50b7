// Many clients at once, and clients that misbehave by stalling.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Concurrency")
struct ConcurrencyTests {
    @Test("100 concurrent clients (50 raw sockets interleaved, 50 telemetry send processes): 100 documents")
    func hundredClients() async throws {
        try await withDaemon(tag: "c100") { daemon in
            let ids = (0..<100).map { _ in newExecutionID() }

            // 50 raw connections, all open at the same time.
            let raw = try (0..<50).map { _ in try daemon.connect() }
            defer { raw.forEach { $0.close() } }

            // 50 `telemetry send --wait` processes, started together while the raw clients write.
            async let processResults: [(Int, ProcessResult)] = withThrowingTaskGroup(of: (Int, ProcessResult).self) { group in
                for index in 50..<100 {
                    group.addTask {
                        let input = Wire.execution(ids[index], index: index).joined(separator: "\n") + "\n"
                        return (index, try await daemon.cli(["send", "--wait", "--strict"], stdin: input))
                    }
                }
                var results: [(Int, ProcessResult)] = []
                for try await result in group { results.append(result) }
                return results
            }

            // Line k of every raw client before line k+1 of any: 50 executions open at once, interleaved.
            let rawLines = (0..<50).map { Wire.execution(ids[$0], index: $0) }
            for line in 0..<rawLines[0].count {
                for (index, client) in raw.enumerated() { try client.sendLine(rawLines[index][line]) }
                await Task.yield()
            }
            // Each raw client flushes its own connection; ask all, then collect the answers.
            for client in raw { try client.sendLine(Wire.control("flush")) }
            for client in raw {
                let reply = try await client.readLine()
                #expect(reply?.contains(#""ok":true"#) == true, "\(reply ?? "EOF")")
            }

            for (index, result) in try await processResults {
                #expect(result.status == 0, "client \(index): \(result)")
                #expect(result.stderr.isEmpty, "client \(index): \(result)")
            }

            let status = try await daemon.status()
            #expect(status.int("documents_stored") == 100, "\(status)")
            #expect(status.int("lines_accepted") == 600, "\(status)")
            #expect(status.int("open_executions") == 0, "\(status)")
            #expect((status.object("connections")?.int("total") ?? 0) >= 100, "\(status)")

            let listing = try await daemon.cli(["executions", "--json", "--limit", "1000"])
            try #require(listing.status == 0, "\(listing)")
            let listed = Set(try parseJSONArray(listing.stdout).compactMap { $0.string("execution_id") })
            #expect(listed == Set(ids), "missing: \(Set(ids).subtracting(listed))")

            // Every document holds its own client's lines, nobody else's.
            let reader = try daemon.connect()
            defer { reader.close() }
            for (index, id) in ids.enumerated() {
                let reply = try await reader.request(Wire.control("show", ("execution_id", id)))
                let document = reply.object("document")
                #expect(document?.object("metrics")?.double("index") == Double(index), "document \(index): \(reply)")
                #expect(document?.object("tags")?.string("client") == "c\(index)")
                #expect(document?.array("events")?.map { $0.string("message") ?? "" }
                        == ["client \(index) step 1", "client \(index) step 2"])
            }
        }
    }

    @Test("clients that connect and stall (mid-line, or silent) do not block the others")
    func stalledClientsDoNotBlockOthers() async throws {
        try await withDaemon(tag: "cstall") { daemon in
            let stalledID = newExecutionID()
            let stalledStart = Wire.start(stalledID, script: "stalled.sh")
            let cut = stalledStart.utf8.count / 2
            let stalled = try daemon.connect()
            defer { stalled.close() }
            try stalled.send(Array(Array(stalledStart.utf8)[..<cut]))
            let silent = try daemon.connect()
            defer { silent.close() }
            // A third one stops in the middle of a long line.
            let long = try daemon.connect()
            defer { long.close() }
            try long.send(Array(Wire.event(stalledID, "info", "long", String(repeating: "z", count: 30_000)).utf8.prefix(20_000)))

            let started = monotonicSeconds()
            let others = (0..<10).map { _ in newExecutionID() }
            let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
                for (index, id) in others.enumerated() {
                    group.addTask {
                        try await daemon.cli(["send", "--wait", "--strict"],
                                             stdin: Wire.execution(id, index: index).joined(separator: "\n"),
                                             environment: ["TELEMETRY_FLUSH_TIMEOUT": "10"])
                    }
                }
                var all: [ProcessResult] = []
                for try await result in group { all.append(result) }
                return all
            }
            let raw = try daemon.connect()
            defer { raw.close() }
            let rawID = newExecutionID()
            try raw.sendLines(Wire.execution(rawID))
            _ = try await raw.flush(timeout: 5)
            let elapsed = monotonicSeconds() - started

            for result in results { #expect(result.status == 0, "\(result)") }
            #expect(elapsed < 8, "other clients took \(elapsed)s while three clients stalled")
            for id in others + [rawID] {
                #expect(try await daemon.document(id) != nil, "execution \(id) not stored")
            }
            let status = try await daemon.status()
            #expect((status.object("connections")?.int("current") ?? 0) >= 4, "the stalled connections are still open: \(status)")

            // The stalled client finishes its line later: it is taken as if nothing had happened.
            try stalled.send(Array(Array(stalledStart.utf8)[cut...]) + [UInt8(ascii: "\n")])
            try stalled.sendLine(Wire.end(stalledID, exitCode: 0))
            _ = try await stalled.flush()
            let document = try await daemon.document(stalledID)
            #expect(document?.string("script_name") == "stalled.sh")
        }
    }
}
