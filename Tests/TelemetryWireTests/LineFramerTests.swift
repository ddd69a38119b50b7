import Testing
import TelemetryWire

/// What a framer delivered, copied out of the callback.
enum Framed: Equatable, CustomStringConvertible {
    case line([UInt8])
    case tooLong(Int)

    var description: String {
        switch self {
        case .line(let bytes): return "line(\(String(decoding: bytes, as: UTF8.self).debugDescription))"
        case .tooLong(let count): return "tooLong(\(count))"
        }
    }
}

private func collect(_ framed: FramedLine, into out: inout [Framed]) {
    switch framed {
    case .line(let bytes): out.append(.line(Array(bytes)))
    case .tooLong(let count): out.append(.tooLong(count))
    }
}

/// Frames `stream` by pushing the given chunk lengths, then finishing.
private func frame(_ stream: [UInt8], chunks: [Int], maxLineBytes: Int, maxBuffered: inout Int) -> [Framed] {
    var framer = LineFramer(maxLineBytes: maxLineBytes)
    var out: [Framed] = []
    var offset = 0
    stream.withUnsafeBytes { raw in
        for length in chunks {
            framer.push(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + length])) { collect($0, into: &out) }
            maxBuffered = max(maxBuffered, framer.bufferedByteCount)
            offset += length
        }
    }
    precondition(offset == stream.count)
    framer.finish { collect($0, into: &out) }
    #expect(framer.bufferedByteCount == 0)
    return out
}

private func frame(_ stream: [UInt8], chunks: [Int], maxLineBytes: Int) -> [Framed] {
    var ignored = 0
    return frame(stream, chunks: chunks, maxLineBytes: maxLineBytes, maxBuffered: &ignored)
}

/// The specification, applied to the whole stream at once.
private func reference(_ stream: [UInt8], maxLineBytes: Int) -> [Framed] {
    var out: [Framed] = []
    var lines = stream.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    if stream.last == UInt8(ascii: "\n") { lines.removeLast() }  // nothing after the final newline
    for line in lines {
        if line.count > maxLineBytes {
            out.append(.tooLong(line.count))
        } else if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            out.append(.line(line))
        }
    }
    return out
}

private let limit = 16

/// Lines of every interesting length around the limit, blanks, CRLF, and a final unterminated line.
private let stream: [UInt8] = Array((
    [
        "first",
        String(repeating: "a", count: limit),          // exactly at the limit
        String(repeating: "b", count: limit + 1),      // one over
        "",                                            // blank
        "   \t \r",                                    // blank with spaces, tab, CR
        String(repeating: "c", count: limit * 3 + 5),  // far over, spans several small chunks
        "after long",
        "crlf line\r",
        String(repeating: "d", count: limit - 1) + "\r", // limit bytes including the CR
        String(repeating: "e", count: limit) + "\r",     // limit + 1 with the CR
        "é✓ unicode",
        "x",
    ].joined(separator: "\n") + "\n" + "tail end"
).utf8)

@Suite("LineFramer")
struct LineFramerTests {
    @Test func referenceMatchesExpectations() {
        #expect(reference(stream, maxLineBytes: limit) == [
            .line(Array("first".utf8)),
            .line(Array(String(repeating: "a", count: limit).utf8)),
            .tooLong(limit + 1),
            .tooLong(limit * 3 + 5),
            .line(Array("after long".utf8)),
            .line(Array("crlf line\r".utf8)),
            .line(Array((String(repeating: "d", count: limit - 1) + "\r").utf8)),
            .tooLong(limit + 1),
            .line(Array("é✓ unicode".utf8)),
            .line(Array("x".utf8)),
            .line(Array("tail end".utf8)),
        ])
    }

    @Test func wholeStreamInOneChunk() {
        #expect(frame(stream, chunks: [stream.count], maxLineBytes: limit) == reference(stream, maxLineBytes: limit))
    }

    @Test func oneByteAtATime() {
        var maxBuffered = 0
        let framed = frame(stream, chunks: Array(repeating: 1, count: stream.count), maxLineBytes: limit, maxBuffered: &maxBuffered)
        #expect(framed == reference(stream, maxLineBytes: limit))
        #expect(maxBuffered <= limit)
    }

    @Test func splitAtEveryBytePosition() {
        let expected = reference(stream, maxLineBytes: limit)
        for split in 0...stream.count {
            let framed = frame(stream, chunks: [split, stream.count - split], maxLineBytes: limit)
            #expect(framed == expected, "split at \(split)")
        }
    }

    @Test(arguments: 1...40 as ClosedRange<UInt64>)
    func randomChunkSizes(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var chunks: [Int] = []
        var remaining = stream.count
        while remaining > 0 {
            let length = min(remaining, Int.random(in: 0...(Int(seed % 3) == 0 ? 4 : 40), using: &rng))
            chunks.append(length)
            remaining -= length
        }
        var maxBuffered = 0
        #expect(frame(stream, chunks: chunks, maxLineBytes: limit, maxBuffered: &maxBuffered) == reference(stream, maxLineBytes: limit))
        #expect(maxBuffered <= limit)
    }

    @Test func randomStreams() {
        var rng = SplitMix64(seed: 99)
        let alphabet = Array("ab \r\n\n\t{}\"".utf8)
        for _ in 0..<200 {
            let length = Int.random(in: 0...200, using: &rng)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
            let maxLineBytes = Int.random(in: 1...12, using: &rng)
            var chunks: [Int] = []
            var remaining = bytes.count
            while remaining > 0 {
                let size = min(remaining, Int.random(in: 1...17, using: &rng))
                chunks.append(size)
                remaining -= size
            }
            #expect(frame(bytes, chunks: chunks, maxLineBytes: maxLineBytes) == reference(bytes, maxLineBytes: maxLineBytes))
        }
    }

    @Test func exactlyAtTheLimitAndOneOver() {
        let atLimit = Array(String(repeating: "z", count: 10).utf8)
        #expect(frame(atLimit + [0x0A], chunks: [11], maxLineBytes: 10) == [.line(atLimit)])
        #expect(frame(atLimit + [0x7A, 0x0A], chunks: [12], maxLineBytes: 10) == [.tooLong(11)])
        // Same when the line arrives in two pieces (goes through the carry buffer).
        #expect(frame(atLimit + [0x0A], chunks: [4, 7], maxLineBytes: 10) == [.line(atLimit)])
        #expect(frame(atLimit + [0x7A, 0x0A], chunks: [4, 8], maxLineBytes: 10) == [.tooLong(11)])
        #expect(frame(atLimit + [0x7A, 0x0A], chunks: [11, 1], maxLineBytes: 10) == [.tooLong(11)])
        // ...and at finish.
        #expect(frame(atLimit, chunks: [10], maxLineBytes: 10) == [.line(atLimit)])
        #expect(frame(atLimit + [0x7A], chunks: [3, 8], maxLineBytes: 10) == [.tooLong(11)])
    }

    @Test func tooLongThenGoodInTheSameChunk() {
        let bytes = Array((String(repeating: "L", count: 50) + "\nok\n").utf8)
        #expect(frame(bytes, chunks: [bytes.count], maxLineBytes: 10) == [.tooLong(50), .line(Array("ok".utf8))])
    }

    @Test func tooLongThenGoodInLaterChunks() {
        let long = Array(String(repeating: "L", count: 50).utf8)
        var framer = LineFramer(maxLineBytes: 10)
        var out: [Framed] = []
        for piece in [Array(long[0..<5]), Array(long[5..<30]), Array(long[30...]), [0x0A, 0x6F], [0x6B], [0x0A]] {
            piece.withUnsafeBytes { raw in framer.push(raw) { collect($0, into: &out) } }
            #expect(framer.bufferedByteCount <= 10)
        }
        #expect(out == [.tooLong(50), .line(Array("ok".utf8))])
        // The too-long line is reported once, when its newline arrives.
        var counts: [Framed] = []
        var second = LineFramer(maxLineBytes: 4)
        for _ in 0..<100 { [UInt8](repeating: 0x41, count: 7).withUnsafeBytes { raw in second.push(raw) { collect($0, into: &counts) } } }
        #expect(counts.isEmpty)
        #expect(second.bufferedByteCount == 0)
        [UInt8]([0x0A]).withUnsafeBytes { raw in second.push(raw) { collect($0, into: &counts) } }
        #expect(counts == [.tooLong(700)])
    }

    @Test func crlfLinesKeepTheirCRForTheParser() throws {
        let line = Fixture.event() + "\r\n"
        let bytes = Array(line.utf8)
        var framer = LineFramer(maxLineBytes: defaultMaxLineBytes)
        var parsed: [WireMessage] = []
        var failures: [WireError] = []
        bytes.withUnsafeBytes { raw in
            framer.push(raw) { framed in
                guard case .line(let line) = framed else { return }
                do throws(WireError) { parsed.append(try WireParser.parse(line)) } catch { failures.append(error) }
            }
        }
        #expect(failures.isEmpty)
        #expect(parsed.count == 1)
    }

    @Test func blankLinesAreSkipped() {
        let bytes = Array("\n\n \n\t\r\n\r\n  x \n\n".utf8)
        #expect(frame(bytes, chunks: [bytes.count], maxLineBytes: 100) == [.line(Array("  x ".utf8))])
        #expect(frame(Array("   ".utf8), chunks: [3], maxLineBytes: 100) == [])
    }

    @Test func finishDeliversTheTail() {
        var framer = LineFramer(maxLineBytes: 100)
        var out: [Framed] = []
        Array("a\nb".utf8).withUnsafeBytes { raw in framer.push(raw) { collect($0, into: &out) } }
        #expect(out == [.line([0x61])])
        #expect(framer.bufferedByteCount == 1)
        framer.finish { collect($0, into: &out) }
        #expect(out == [.line([0x61]), .line([0x62])])
        // Finishing again delivers nothing; the framer can be reused.
        framer.finish { collect($0, into: &out) }
        #expect(out.count == 2)
        Array("c\n".utf8).withUnsafeBytes { raw in framer.push(raw) { collect($0, into: &out) } }
        #expect(out.last == .line([0x63]))
    }

    @Test func emptyChunksAreHarmless() {
        var framer = LineFramer(maxLineBytes: 8)
        var out: [Framed] = []
        framer.push(UnsafeRawBufferPointer(start: nil, count: 0)) { collect($0, into: &out) }
        [UInt8]().withUnsafeBytes { raw in framer.push(raw) { collect($0, into: &out) } }
        framer.finish { collect($0, into: &out) }
        #expect(out.isEmpty)
    }

    @Test func linesInsideOneChunkAreNotCopied() {
        let bytes = Array("one\ntwo\nthr".utf8)
        var framer = LineFramer(maxLineBytes: 100)
        bytes.withUnsafeBytes { raw in
            let range = UInt(bitPattern: raw.baseAddress!)..<UInt(bitPattern: raw.baseAddress! + raw.count)
            var seen = 0
            framer.push(raw) { framed in
                guard case .line(let line) = framed else { return }
                #expect(range.contains(UInt(bitPattern: line.baseAddress!)), "line was copied")
                seen += 1
            }
            #expect(seen == 2)
        }
        #expect(framer.bufferedByteCount == 3)
    }
}
