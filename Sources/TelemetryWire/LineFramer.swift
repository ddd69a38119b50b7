#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One unit of a framed byte stream.
public enum FramedLine {
    /// A line without its "\n" (a trailing "\r" is left for the parser to strip). The buffer is only
    /// valid during the callback.
    case line(UnsafeRawBufferPointer)
    /// A line longer than `maxLineBytes`; `byteCount` is its full length without the "\n". Its bytes
    /// were skipped, never buffered. Reported once, when its terminating newline arrives (or at `finish`).
    case tooLong(byteCount: Int)
}

/// Splits a byte stream into "\n"-terminated lines; shared by the client (stdin) and the daemon (sockets).
///
/// - Lines entirely inside one pushed chunk are handed out without copying; only a partial line at the
///   end of a chunk is copied into the carry buffer, which never holds more than `maxLineBytes` bytes.
/// - A line of exactly `maxLineBytes` bytes (every byte before the "\n" counts, a "\r" included) is a
///   line; one byte more makes it `.tooLong`.
/// - Blank lines (empty, or only spaces, tabs and "\r") are skipped silently.
public struct LineFramer: Sendable {
    public let maxLineBytes: Int
    private var carry: [UInt8] = []
    /// True while skipping the rest of a too-long line.
    private var discarding = false
    /// Length so far of the line being skipped.
    private var discardedCount = 0
    /// Lines ended so far, blank ones included: the 1-based number of the line being handed out.
    private var lineCount = 0

    public init(maxLineBytes: Int) {
        precondition(maxLineBytes > 0, "maxLineBytes must be positive")
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes of an incomplete line held between `push` calls (at most `maxLineBytes`).
    public var bufferedByteCount: Int { carry.count }

    /// Frames `chunk`, calling `handle` for every complete line in order.
    public mutating func push(_ chunk: UnsafeRawBufferPointer, _ handle: (FramedLine) -> Void) {
        push(chunk) { framed, _ in handle(framed) }
    }

    /// Frames `chunk`, calling `handle` for every complete line in order with its 1-based number in the
    /// stream (blank lines are skipped but counted, so the number matches what a person sees in the input).
    public mutating func push(_ chunk: UnsafeRawBufferPointer, _ handle: (FramedLine, Int) -> Void) {
        guard let chunkBase = chunk.baseAddress, chunk.count > 0 else { return }
        let count = chunk.count
        var start = 0
        while start < count {
            guard let newline = Self.findNewline(chunkBase + start, count - start) else {
                keepTail(UnsafeRawBufferPointer(start: chunkBase + start, count: count - start))
                return
            }
            let segment = UnsafeRawBufferPointer(start: chunkBase + start, count: newline)
            start += newline + 1
            lineCount += 1
            let number = lineCount
            if discarding {
                handle(.tooLong(byteCount: discardedCount + segment.count), number)
                discarding = false
                discardedCount = 0
            } else if carry.isEmpty {
                if segment.count > maxLineBytes {
                    handle(.tooLong(byteCount: segment.count), number)
                } else {
                    Self.deliver(segment, number, handle)
                }
            } else {
                let total = carry.count + segment.count
                if total > maxLineBytes {
                    handle(.tooLong(byteCount: total), number)
                } else {
                    carry.append(contentsOf: segment)
                    carry.withUnsafeBytes { Self.deliver($0, number, handle) }
                }
                carry.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Ends the stream: an unterminated last line is delivered as a line (or reported as too long).
    public mutating func finish(_ handle: (FramedLine) -> Void) {
        finish { framed, _ in handle(framed) }
    }

    /// Ends the stream, numbering the last line like `push(_:_:)` does.
    public mutating func finish(_ handle: (FramedLine, Int) -> Void) {
        if discarding || !carry.isEmpty { lineCount += 1 }
        let number = lineCount
        if discarding {
            handle(.tooLong(byteCount: discardedCount), number)
        } else if !carry.isEmpty {
            carry.withUnsafeBytes { Self.deliver($0, number, handle) }
        }
        discarding = false
        discardedCount = 0
        carry = []
    }

    private mutating func keepTail(_ tail: UnsafeRawBufferPointer) {
        if discarding {
            discardedCount += tail.count
        } else if carry.count + tail.count > maxLineBytes {
            discarding = true
            discardedCount = carry.count + tail.count
            carry.removeAll(keepingCapacity: true)
        } else {
            if carry.capacity == 0 { carry.reserveCapacity(min(maxLineBytes, max(tail.count * 2, 256))) }
            carry.append(contentsOf: tail)
        }
    }

    @inline(__always)
    private static func deliver(_ line: UnsafeRawBufferPointer, _ number: Int, _ handle: (FramedLine, Int) -> Void) {
        for byte in line where byte != ASCII.space && byte != ASCII.tab && byte != ASCII.carriageReturn {
            handle(.line(line), number)
            return
        }
    }

    /// Offset of the first "\n" in `count` bytes at `start`.
    @inline(__always)
    static func findNewline(_ start: UnsafeRawPointer, _ count: Int) -> Int? {
        // The C library's memchr is vectorised: on the benchmark's ~286-byte lines it took 14-29 ns a line
        // against 63 ns for an eight-bytes-at-a-time loop, and this runs over every byte a client or the daemon reads.
        guard let found = memchr(start, Int32(ASCII.lineFeed), count) else { return nil }
        return UnsafeRawPointer(found) - start
    }
}
