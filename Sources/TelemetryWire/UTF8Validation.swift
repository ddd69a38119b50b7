/// UTF-8 validation over raw bytes, with an eight-bytes-at-a-time ASCII fast path.
///
/// Rejects everything RFC 3629 rejects: stray continuation bytes, truncated sequences, overlong forms,
/// UTF-16 surrogates (U+D800–U+DFFF) and scalars above U+10FFFF.
enum UTF8Validation {
    /// Returns the byte offset of the first byte that does not start a valid UTF-8 sequence, or nil.
    @inline(__always)
    static func firstInvalidOffset(_ base: UnsafePointer<UInt8>, _ count: Int) -> Int? {
        var index = 0
        // ASCII fast path: 32 bytes per step, then 8, while no high bit is set.
        let raw = UnsafeRawPointer(base)
        while index &+ 32 <= count {
            let any = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                | raw.loadUnaligned(fromByteOffset: index &+ 8, as: UInt64.self)
                | raw.loadUnaligned(fromByteOffset: index &+ 16, as: UInt64.self)
                | raw.loadUnaligned(fromByteOffset: index &+ 24, as: UInt64.self)
            if any & 0x8080_8080_8080_8080 != 0 { break }
            index &+= 32
        }
        while index &+ 8 <= count {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            if word & 0x8080_8080_8080_8080 != 0 { break }
            index &+= 8
        }
        if index == count { return nil }
        if count >= 8 {
            // Tail shorter than a word: check the last 8 bytes (overlapping what was already checked).
            let word = UnsafeRawPointer(base + (count &- 8)).loadUnaligned(as: UInt64.self)
            if word & 0x8080_8080_8080_8080 == 0 { return nil }
        }
        return slowPath(base, count, from: index)
    }

    static func slowPath(_ base: UnsafePointer<UInt8>, _ count: Int, from start: Int) -> Int? {
        var index = start
        while index < count {
            // Skip ASCII words again after a multi-byte sequence.
            if index &+ 8 <= count {
                let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 {
                    index &+= 8
                    continue
                }
            }
            let lead = base[index]
            if lead < 0x80 {
                index &+= 1
                continue
            }
            let length: Int
            var lowerBound: UInt8 = 0x80
            var upperBound: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF:
                length = 2
            case 0xE0:
                length = 3; lowerBound = 0xA0  // no overlong 3-byte forms
            case 0xE1...0xEC, 0xEE...0xEF:
                length = 3
            case 0xED:
                length = 3; upperBound = 0x9F  // no surrogates
            case 0xF0:
                length = 4; lowerBound = 0x90  // no overlong 4-byte forms
            case 0xF1...0xF3:
                length = 4
            case 0xF4:
                length = 4; upperBound = 0x8F  // nothing above U+10FFFF
            default:
                return index  // continuation byte, C0/C1 overlong lead, or F5...FF
            }
            if index &+ length > count { return index }
            let second = base[index &+ 1]
            if second < lowerBound || second > upperBound { return index }
            if length >= 3 && base[index &+ 2] & 0xC0 != 0x80 { return index }
            if length == 4 && base[index &+ 3] & 0xC0 != 0x80 { return index }
            index &+= length
        }
        return nil
    }

    static func firstInvalidOffset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let raw = bytes.baseAddress, bytes.count > 0 else { return nil }
        return firstInvalidOffset(raw.assumingMemoryBound(to: UInt8.self), bytes.count)
    }
}
