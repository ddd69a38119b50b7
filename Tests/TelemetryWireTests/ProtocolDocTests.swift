import Testing
import TelemetryWire
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps docs/protocol.md honest: every example line in it parses, and every documented error is
/// exactly what the parser says.
@Suite("docs/protocol.md")
struct ProtocolDocTests {
    static func document() -> String? {
        // #filePath may go through a symlinked checkout; resolve it, then go up to the package root.
        guard let resolved = realpath(#filePath, nil) else { return nil }
        defer { free(resolved) }
        var path = String(cString: resolved)
        for _ in 0..<3 {
            guard let slash = path.lastIndex(of: "/") else { return nil }
            path = String(path[..<slash])
        }
        path += "/docs/protocol.md"
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static var lines: [Substring] {
        document()?.split(separator: "\n", omittingEmptySubsequences: false) ?? []
    }

    @Test func documentIsFound() {
        #expect(Self.document() != nil)
    }

    @Test func exampleLinesParse() throws {
        let examples = Self.lines.filter { $0.hasPrefix(#"{"v""#) && !$0.contains(#""ok":"#) }
        #expect(examples.count >= 15)
        for example in examples {
            do {
                _ = try WireParser.parse(String(example))
            } catch {
                Issue.record("docs example rejected: \(example)\n\(error)")
            }
        }
    }

    @Test func fullExecutionIsConsistent() throws {
        let executionID = ExecutionID("0b6f9a52-8a4c-4e8e-9f3d-2c1a7e5b9d40")!
        var records: [WireRecord] = []
        for example in Self.lines where example.hasPrefix(#"{"v":1,"kind":"#) && !example.contains("control") {
            if case .record(let record) = try WireParser.parse(String(example)) { records.append(record) }
        }
        #expect(!records.isEmpty)
        #expect(records.allSatisfy { $0.executionID == executionID })
    }

    @Test func documentedErrorsAreExact() {
        let lines = Self.lines
        var checked = 0
        for (index, line) in lines.enumerated() where line.hasPrefix("line:  ") {
            guard index + 1 < lines.count, lines[index + 1].hasPrefix("error: ") else {
                Issue.record("no error: after \(line)")
                continue
            }
            let input = String(line.dropFirst("line:  ".count))
            let expected = String(lines[index + 1].dropFirst("error: ".count))
            do {
                let message = try WireParser.parse(input)
                Issue.record("documented as rejected but accepted: \(input) → \(message)")
            } catch {
                #expect(error.description == expected, "\(input)")
            }
            checked += 1
        }
        #expect(checked >= 10)
    }

    @Test func replyExamplesAreJSON() throws {
        let replies = Self.lines.filter { $0.hasPrefix("{") && $0.contains(#""ok":"#) }
        #expect(replies.count >= 2)
        for reply in replies {
            let value = try JSONValue.parse(String(reply))
            #expect(value["ok"]?.boolValue != nil)
            if value["ok"]?.boolValue == false { #expect(value["error"]?.stringValue != nil) }
        }
    }

    @Test func everyReasonIsDocumented() {
        let text = Self.document() ?? ""
        for reason in RejectReason.allCases {
            #expect(text.contains("| `\(reason.rawValue)` |"), "\(reason.rawValue) missing from the reasons table")
        }
    }
}
