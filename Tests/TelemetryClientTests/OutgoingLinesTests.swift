import Testing
@testable import TelemetryClient

#if canImport(Glibc)
import Glibc
#endif

/// A connected pair of Unix stream sockets with a small send buffer, non-blocking on the sending side.
private struct SocketPair {
    let sender: Int32
    let receiver: Int32

    init() {
        var descriptors: [Int32] = [0, 0]
        let created = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &descriptors)
        precondition(created == 0, "socketpair failed")
        sender = descriptors[0]
        receiver = descriptors[1]
        var size: Int32 = 4_096
        setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(sender, F_SETFL, fcntl(sender, F_GETFL) | O_NONBLOCK)
    }

    /// Everything readable now (the receiver is non-blocking for this).
    func drain() -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count <= 0 { return received }
            received.append(contentsOf: buffer[..<count])
        }
    }

    func close() {
        Glibc.close(sender)
        Glibc.close(receiver)
    }
}

private func lines(_ count: Int, length: Int = 100) -> [[UInt8]] {
    (0..<count).map { index in
        let head = Array("line \(index) ".utf8)
        return head + [UInt8](repeating: UInt8(ascii: "x"), count: max(0, length - head.count))
    }
}

@Suite("telemetry send's queue of lines for the daemon")
struct OutgoingLinesTests {
    @Test("lines go out whole and in order across many segments, whatever the socket takes at a time")
    func sendsInOrder() {
        let pair = SocketPair()
        defer { pair.close() }
        var queue = OutgoingLines()
        let input = lines(20_000, length: 150)  // about 3 MiB: more than ten full segments
        var expected: [UInt8] = []
        for line in input {
            line.withUnsafeBytes { queue.append(line: $0) }
            expected += line + [UInt8(ascii: "\n")]
        }
        #expect(queue.pendingBytes == expected.count)
        var received: [UInt8] = []
        var rounds = 0
        while !queue.isEmpty && rounds < 100_000 {
            guard case .sent = queue.send(to: pair.sender) else {
                Issue.record("send failed")
                return
            }
            received += pair.drain()
            rounds += 1
        }
        received += pair.drain()
        #expect(queue.pendingBytes == 0)
        #expect(received == expected)
    }

    @Test("a spill hands over the partly sent line whole, then every later line, and empties the queue")
    func drainsFromThePartlySentLine() {
        let pair = SocketPair()
        defer { pair.close() }
        var queue = OutgoingLines()
        let input = lines(2_000)
        for line in input { line.withUnsafeBytes { queue.append(line: $0) } }
        guard case .sent(let bytes) = queue.send(to: pair.sender) else {
            Issue.record("send failed")
            return
        }
        let lineBytes = input[0].count + 1
        #expect(bytes > 0 && bytes < input.count * lineBytes, "the socket took only part")
        let wholeLinesSent = bytes / lineBytes

        var handed: [[UInt8]] = []
        queue.drainUnsent { handed.append(Array($0)) }
        #expect(queue.isEmpty && queue.pendingBytes == 0)
        #expect(handed == Array(input[wholeLinesSent...]), "from the first line not wholly sent, in order")
    }

    @Test("a closed peer is a failure with its errno, not a silent loss")
    func failsOnAClosedPeer() {
        let pair = SocketPair()
        Glibc.close(pair.receiver)
        defer { Glibc.close(pair.sender) }
        var queue = OutgoingLines()
        Array("{}".utf8).withUnsafeBytes { queue.append(line: $0) }
        #expect(queue.send(to: pair.sender) == .failed(errno: EPIPE))
        #expect(queue.pendingBytes == 3, "nothing counts as sent")
    }

    @Test("a line longer than a segment gets a segment of its own")
    func longLine() {
        let pair = SocketPair()
        defer { pair.close() }
        var queue = OutgoingLines()
        let long = [UInt8](repeating: UInt8(ascii: "y"), count: OutgoingLines.segmentBytes + 10)
        Array("short".utf8).withUnsafeBytes { queue.append(line: $0) }
        long.withUnsafeBytes { queue.append(line: $0) }
        var handed: [[UInt8]] = []
        queue.drainUnsent { handed.append(Array($0)) }
        #expect(handed == [Array("short".utf8), long])
    }
}
