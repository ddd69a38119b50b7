// Framing: how the daemon cuts a byte stream into lines, whatever the pieces it arrives in.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Framing")
struct FramingTests {
    static let limitEnvironment = ["TELEMETRY_MAX_LINE_BYTES": "1024"]

    static func rejectedTotal(_ status: [String: Any]) -> Int {
        (status.object("lines_rejected") ?? [:]).values.compactMap { ($0 as? NSNumber)?.intValue }.reduce(0, +)
    }

    @Test("an execution written one byte at a time is stored intact")
    func oneByteAtATime() async throws {
        try await withDaemon(environment: Self.limitEnvironment, tag: "fbyte") { daemon in
            let id = newExecutionID()
            let message = "héllo wörld ✓ 🚀 \"quoted\" back\\slash"
            let lines = [Wire.start(id, script: "bytewise.sh"), Wire.event(id, "info", "unicode", message),
                         Wire.metric(id, "pi", 3.25), Wire.end(id, exitCode: 0)]
            let client = try daemon.connect()
            defer { client.close() }
            try await client.sendSlowly(Array((lines.joined(separator: "\n") + "\n").utf8), chunkSize: 1,
                                        pause: .microseconds(100))
            _ = try await client.flush()

            let status = try await daemon.status()
            #expect(Self.rejectedTotal(status) == 0, "\(status)")
            #expect(status.int("lines_accepted") == 4)
            let document = try #require(try await daemon.document(id))
            #expect(document.array("events")?.first?.string("message") == message)
            #expect(document.object("metrics")?.double("pi") == 3.25)
            #expect(document.string("status") == "success")
        }
    }

    @Test("lines split inside keys, UTF-8 sequences, escapes, CRLF and across line boundaries")
    func awkwardSplits() async throws {
        try await withDaemon(environment: Self.limitEnvironment, tag: "fsplit") { daemon in
            let id = newExecutionID()
            let message = "naïve 🚀 \"q\" \\ end"
            let event = Wire.event(id, "warning", "split", message)
            let end = Wire.end(id, exitCode: 2)
            let stream = Wire.start(id, script: "splits.sh") + "\r\n" + "\n" + "   \t \n" + event + "\n" + "\r\n"
                + Wire.metric(id, "bytes", 1024) + "\n" + end + "\n"
            let bytes = Array(stream.utf8)

            func offset(of needle: String, after start: Int = 0) -> Int {
                let pattern = Array(needle.utf8)
                for index in start...(bytes.count - pattern.count) where Array(bytes[index..<(index + pattern.count)]) == pattern {
                    return index
                }
                Issue.record("\(needle) not found in the stream")
                return start
            }
            let eventStart = offset(of: event)
            let emoji = offset(of: "🚀")
            let points = [
                offset(of: "execution_id") + 4,          // inside a member name
                offset(of: "\r\n") + 1,                  // between \r and \n
                offset(of: "\r\n") + 3,                  // right after a blank line
                offset(of: "ï") + 1,                     // inside a 2-byte UTF-8 sequence
                emoji + 1, emoji + 3,                    // inside a 4-byte UTF-8 sequence
                offset(of: #"\""#, after: eventStart) + 1,  // between a backslash and the escaped quote
                eventStart + event.utf8.count,           // just before the newline
                offset(of: "1024") + 2,                  // inside a number
                offset(of: end) + 10,                    // a chunk holding the end of one line and the start of the next
            ]
            var chunks: [[UInt8]] = []
            var previous = 0
            for point in Set(points).sorted() where point > previous && point < bytes.count {
                chunks.append(Array(bytes[previous..<point]))
                previous = point
            }
            chunks.append(Array(bytes[previous...]))
            #expect(chunks.count == points.count + 1)

            let client = try daemon.connect()
            defer { client.close() }
            try await client.sendChunks(chunks)
            _ = try await client.flush()

            let status = try await daemon.status()
            #expect(Self.rejectedTotal(status) == 0, "blank lines and CRLF are not errors: \(status)")
            #expect(status.int("lines_accepted") == 4)
            let document = try #require(try await daemon.document(id))
            #expect(document.string("script_name") == "splits.sh")
            #expect(document.array("events")?.first?.string("message") == message)
            #expect(document.array("events")?.first?.string("type") == "warning")
            #expect(document.object("metrics")?.double("bytes") == 1024)
            #expect(document.int("exit_code") == 2)
            #expect(document.string("status") == "failure")
        }
    }

    @Test("a line of exactly TELEMETRY_MAX_LINE_BYTES is accepted, one byte more is too_long")
    func lineLengthLimit() async throws {
        try await withDaemon(environment: Self.limitEnvironment, tag: "flimit") { daemon in
            let id = newExecutionID()
            func event(_ operation: String, bytes total: Int) -> String {
                let bare = Wire.event(id, "info", operation, "")
                return Wire.event(id, "info", operation, String(repeating: "p", count: total - bare.utf8.count))
            }
            let atLimit = event("at-limit", bytes: 1024)
            let overLimit = event("over-limit", bytes: 1025)
            try #require(atLimit.utf8.count == 1024 && overLimit.utf8.count == 1025)

            let client = try daemon.connect()
            defer { client.close() }
            try client.sendLine(Wire.start(id, script: "limits.sh"))
            try client.sendLine(atLimit)
            try client.sendLine(overLimit)
            // A "\r" before the "\n" counts as a byte of the line.
            try client.send(event("crlf-at-limit", bytes: 1023) + "\r\n")
            try client.send(event("crlf-over", bytes: 1024) + "\r\n")
            // A long line arriving in small pieces, its end in the same piece as a good line.
            let long = Array(event("long", bytes: 5_000).utf8)
            var pieces = stride(from: 0, to: long.count, by: 100).map { Array(long[$0..<min($0 + 100, long.count)]) }
            pieces[pieces.count - 1] += Array(("\n" + event("after-long", bytes: 200) + "\n").utf8)
            try await client.sendChunks(pieces, pause: .microseconds(300))
            try client.sendLine(Wire.end(id, exitCode: 0))
            _ = try await client.flush()

            let status = try await daemon.status()
            #expect(status.object("lines_rejected")?.int("too_long") == 3, "\(status)")
            #expect(Self.rejectedTotal(status) == 3, "\(status)")
            #expect(status.int("lines_accepted") == 5, "\(status)")
            let document = try #require(try await daemon.document(id))
            let events = document.array("events") ?? []
            #expect(events.map { $0.string("operation") ?? "?" } == ["at-limit", "crlf-at-limit", "after-long"])
            let bare = Wire.event(id, "info", "at-limit", "").utf8.count
            #expect(events.first?.string("message")?.utf8.count == 1024 - bare)
        }
    }

    @Test("an unterminated last line is taken when the client ends its input")
    func unterminatedLastLine() async throws {
        try await withDaemon(tag: "feof") { daemon in
            let id = newExecutionID()
            let lines = Wire.execution(id, script: "eof.sh")
            let client = try daemon.connect()
            defer { client.close() }
            try client.send(lines.joined(separator: "\n"))  // no newline after the end line
            client.shutdownWrite()
            #expect(try await client.waitForEOF(), "the daemon closes the connection once the input ended")
            var document: [String: Any]?
            let stored = try await waitUntil(timeout: 5) {
                document = try await daemon.document(id)
                return document != nil
            }
            #expect(stored, "the unterminated end line was not taken: \(daemon.stderr)")
            #expect(document?.string("status") == "success")
        }
    }
}
