/// Fast parsing of the 36-byte 8-4-4-4-12 UUID text form, eight hex digits at a time (SWAR).
enum UUIDText {
    /// The 128-bit value of `bytes` (exactly 36 bytes, either case), or nil.
    @inline(__always)
    static func parse(_ bytes: UnsafeRawBufferPointer) -> (high: UInt64, low: UInt64)? {
        guard bytes.count == 36, let base = bytes.baseAddress else { return nil }
        let hyphen = UInt8(ascii: "-")
        guard bytes[8] == hyphen, bytes[13] == hyphen, bytes[18] == hyphen, bytes[23] == hyphen else { return nil }
        @inline(__always) func load64(_ offset: Int) -> UInt64 {
            UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
        @inline(__always) func load32(_ offset: Int) -> UInt64 {
            UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        }
        guard let a = hex8(load64(0)),                               // 8 digits
              let b = hex8(load32(9) | load32(14) << 32),            // 4 + 4
              let c = hex8(load32(19) | load32(24) << 32),           // 4 + first 4 of 12
              let d = hex8(load64(28))                               // last 8 of 12
        else { return nil }
        return (a << 32 | b, c << 32 | d)
    }

    /// The value of 8 ASCII hex digits packed little-endian in `word` (first digit in the lowest byte).
    @inline(__always)
    static func hex8(_ word: UInt64) -> UInt64? {
        let highs: UInt64 = 0x8080_8080_8080_8080
        guard word & highs == 0 else { return nil }
        @inline(__always) func atLeast(_ x: UInt64, _ bound: UInt8) -> UInt64 {
            // High bit of each byte set iff that byte >= bound (bytes are < 0x80, no carries).
            (x &+ 0x0101_0101_0101_0101 &* UInt64(0x80 - bound)) & highs
        }
        let isDigit = atLeast(word, 0x30) & ~atLeast(word, 0x3A)
        let lower = word | 0x2020_2020_2020_2020
        let isLetter = atLeast(lower, 0x61) & ~atLeast(lower, 0x67)
        guard isDigit | isLetter == highs else { return nil }
        // Digits: low nibble. Letters (bit 6 set): low nibble + 9.
        let nibbles = (word & 0x0F0F_0F0F_0F0F_0F0F) &+ ((word >> 6) & 0x0101_0101_0101_0101) &* 9
        let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00FF_00FF_00FF_00FF
        let quads = ((pairs << 8) | (pairs >> 16)) & 0x0000_FFFF_0000_FFFF
        return ((quads << 16) | (quads >> 32)) & 0xFFFF_FFFF
    }
}
