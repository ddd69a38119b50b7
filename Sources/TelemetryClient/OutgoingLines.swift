#if canImport(Glibc)
import Glibc
#endif

/// The lines `telemetry send` has validated and the daemon has not taken yet, in order.
///
/// They sit in segments of whole lines (a line never straddles two), sent from the front and dropped once
/// sent, so that no byte is ever moved: a single array compacted from the front moved every waiting byte
/// about once more, and growing it by doubling to the 8 MiB bound touched twice that in fresh pages; that
/// was a third of a streaming client's time while the daemon held it back. One emptied segment is kept
/// for the next, so a steady stream allocates nothing. Segments start small and double up to
/// `segmentBytes`, so that a one-shot `send` of one line allocates a few KiB only.
struct OutgoingLines {
    static let segmentBytes = 256 << 10
    private static let firstSegmentBytes = 4 << 10

    private var segments: [[UInt8]] = []
    /// Bytes of `segments[0]` that went out.
    private var sentInFirst = 0
    private var spare: [UInt8]?
    /// Bytes waiting to be sent.
    private(set) var pendingBytes = 0

    var isEmpty: Bool { pendingBytes == 0 }

    /// Queues `line` and its newline.
    mutating func append(line: UnsafeRawBufferPointer) {
        let needed = line.count + 1
        if segments.isEmpty || segments[segments.count - 1].capacity - segments[segments.count - 1].count < needed {
            segments.append(newSegment(holding: needed))
        }
        let last = segments.count - 1
        segments[last].append(contentsOf: line)
        segments[last].append(UInt8(ascii: "\n"))
        pendingBytes += needed
    }

    private mutating func newSegment(holding needed: Int) -> [UInt8] {
        let grown = segments.last.map { Swift.min($0.capacity * 2, Self.segmentBytes) } ?? Self.firstSegmentBytes
        let capacity = Swift.max(grown, needed)
        if var reused = spare, reused.capacity >= capacity {
            spare = nil
            reused.removeAll(keepingCapacity: true)
            return reused
        }
        var segment: [UInt8] = []
        segment.reserveCapacity(capacity)
        return segment
    }

    enum SendResult: Equatable {
        /// Everything went out, or the socket is full (`EAGAIN`): try again when it is writable.
        case sent(bytes: Int)
        /// The connection failed with this errno.
        case failed(errno: Int32)
    }

    /// Sends what the socket takes without blocking.
    mutating func send(to socket: Int32) -> SendResult {
        var total = 0
        while let first = segments.first {
            let written = first.withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress! + sentInFirst, $0.count - sentInFirst, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if written < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { break }
                return .failed(errno: code)
            }
            total += written
            pendingBytes -= written
            sentInFirst += written
            if sentInFirst == first.count {
                let done = segments.removeFirst()
                sentInFirst = 0
                if done.capacity > (spare?.capacity ?? -1) { spare = done }
            } else {
                break  // the socket took part of it: it is full
            }
        }
        return .sent(bytes: total)
    }

    /// Hands every line not wholly sent, the partly sent one first, to `body` (without its newline), in order,
    /// and empties the queue. A line the daemon got only part of is handed over whole: the daemon discards a
    /// line cut by a closed connection, so it must go to the spool whole.
    mutating func drainUnsent(_ body: (UnsafeRawBufferPointer) -> Void) {
        for (index, segment) in segments.enumerated() {
            segment.withUnsafeBytes { bytes in
                var start = 0
                if index == 0 {
                    start = sentInFirst
                    while start > 0 && bytes[start - 1] != UInt8(ascii: "\n") { start -= 1 }
                }
                var lineStart = start
                for offset in start..<bytes.count where bytes[offset] == UInt8(ascii: "\n") {
                    body(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<offset]))
                    lineStart = offset + 1
                }
            }
        }
        segments = []
        sentInFirst = 0
        pendingBytes = 0
    }
}
