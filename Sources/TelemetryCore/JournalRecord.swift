import TelemetryWire

/// The journal's on-disk form of one accepted line: `<uid> <pid> <received-µs> <json>\n`.
///
/// The JSON is stored exactly as received, so crash recovery re-parses it with the same `WireParser`
/// that accepted it; the prefix carries what the daemon added (SO_PEERCRED and the receive time).
public enum JournalRecord {
    /// Appends one record to `chunk`.
    public static func append(json: UnsafeRawBufferPointer, sender: SenderIdentity, receivedAt: Timestamp,
                              to chunk: inout [UInt8]) {
        appendPrefix(sender: sender, receivedAt: receivedAt, to: &chunk)
        chunk.append(contentsOf: json)
        chunk.append(UInt8(ascii: "\n"))
    }

    /// The `<uid> <pid> <received-µs> ` prefix, to render once for all lines of one read.
    public static func prefix(sender: SenderIdentity, receivedAt: Timestamp) -> [UInt8] {
        var prefix: [UInt8] = []
        prefix.reserveCapacity(40)
        appendPrefix(sender: sender, receivedAt: receivedAt, to: &prefix)
        return prefix
    }

    /// Appends one record whose prefix was rendered by `prefix(sender:receivedAt:)`.
    public static func append(json: UnsafeRawBufferPointer, prefix: [UInt8], to chunk: inout [UInt8]) {
        chunk.append(contentsOf: prefix)
        chunk.append(contentsOf: json)
        chunk.append(UInt8(ascii: "\n"))
    }

    private static func appendPrefix(sender: SenderIdentity, receivedAt: Timestamp, to chunk: inout [UInt8]) {
        appendDecimal(UInt64(sender.uid), to: &chunk)
        chunk.append(UInt8(ascii: " "))
        if sender.pid < 0 { chunk.append(UInt8(ascii: "-")) }
        appendDecimal(UInt64(sender.pid.magnitude), to: &chunk)
        chunk.append(UInt8(ascii: " "))
        appendDecimal(UInt64(max(0, receivedAt.microseconds)), to: &chunk)
        chunk.append(UInt8(ascii: " "))
    }

    /// One decoded journal line; `json` points into the chunk and is valid only inside the callback.
    public struct Entry {
        public var sender: SenderIdentity
        public var receivedAt: Timestamp
        public var json: UnsafeRawBufferPointer
    }

    public struct CorruptRecord: Error, CustomStringConvertible {
        public var offset: Int
        public var description: String { "journal record at byte \(offset) has a malformed prefix" }
    }

    /// Calls `body` for each record of a chunk, in order. A malformed record is reported, not skipped silently.
    public static func forEach(in chunk: [UInt8], _ body: (Entry) throws -> Void) throws {
        try chunk.withUnsafeBytes { bytes in
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                var cursor = start
                guard let uid = readDecimal(bytes, &cursor, end: end, allowNegative: false),
                      let pid = readDecimal(bytes, &cursor, end: end, allowNegative: true),
                      let received = readDecimal(bytes, &cursor, end: end, allowNegative: false),
                      let uid32 = UInt32(exactly: uid), let pid32 = Int32(exactly: pid)
                else { throw CorruptRecord(offset: start) }
                let json = UnsafeRawBufferPointer(rebasing: bytes[cursor..<end])
                try body(Entry(sender: SenderIdentity(uid: uid32, pid: pid32),
                               receivedAt: Timestamp(microseconds: received), json: json))
                start = end + 1
            }
        }
    }

    private static func readDecimal(_ bytes: UnsafeRawBufferPointer, _ cursor: inout Int, end: Int,
                                    allowNegative: Bool) -> Int64? {
        var negative = false
        if allowNegative, cursor < end, bytes[cursor] == UInt8(ascii: "-") {
            negative = true
            cursor += 1
        }
        var value: Int64 = 0
        var digits = 0
        while cursor < end, bytes[cursor] >= UInt8(ascii: "0"), bytes[cursor] <= UInt8(ascii: "9") {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int64(bytes[cursor] - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
            cursor += 1
            digits += 1
        }
        guard digits > 0, cursor < end, bytes[cursor] == UInt8(ascii: " ") else { return nil }
        cursor += 1
        return negative ? -value : value
    }

    private static func appendDecimal(_ value: UInt64, to chunk: inout [UInt8]) {
        if value == 0 {
            chunk.append(UInt8(ascii: "0"))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var remaining = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while remaining > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { chunk.append(buffer[index]) }
        }
    }
}
