/// The byte-level JSON scanner shared by `WireParser` (the daemon's hot path) and `JSONValue`.
///
/// It works on already UTF-8-validated bytes, never builds a tree and never allocates: strings and
/// numbers come back as byte ranges (`JSONToken`) that the caller decodes only if it keeps them.
/// Syntax errors throw `not_json` naming the byte offset and what was expected. Non-finite numbers
/// (`NaN`, `Infinity`, `-Infinity`, or a literal beyond the range of Double such as `1e999`) are not a
/// syntax error: the first one is remembered in `nonFinite` so that the caller can report
/// `non_finite_number` only once the whole text is known to be JSON.

enum JSONTokenKind: UInt8 {
    case string
    case number
    case trueLiteral
    case falseLiteral
    case null
    case object
    case array
    /// `NaN`, `Infinity`, `-Infinity`, or a number literal that overflows Double.
    case nonFinite

    var typeName: String {
        switch self {
        case .string: return "a string"
        case .number, .nonFinite: return "a number"
        case .trueLiteral, .falseLiteral: return "a boolean"
        case .null: return "null"
        case .object: return "an object"
        case .array: return "an array"
        }
    }
}

/// One scanned value. For strings `start..<end` is the content between the quotes; for everything
/// else it is the value's full text.
struct JSONToken {
    var kind: JSONTokenKind
    var start: Int
    var end: Int
    /// Strings: the content contains at least one backslash escape. Numbers: no fraction and no exponent.
    var flag: Bool

    @inline(__always) var hasEscapes: Bool { flag }
    @inline(__always) var isInteger: Bool { flag }
    /// The value as written, quotes included for strings.
    @inline(__always) var rawStart: Int { kind == .string ? start - 1 : start }
    @inline(__always) var rawEnd: Int { kind == .string ? end + 1 : end }
}

enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}

struct JSONScanner {
    /// Containers nested deeper than this are refused as not_json (keeps the recursion bounded).
    static let maxDepth = 256

    let base: UnsafePointer<UInt8>
    let end: Int
    var pos: Int = 0
    /// Byte offset and length of the first non-finite number seen, if any.
    var nonFiniteOffset: Int = -1
    var nonFiniteLength: Int = 0

    init(base: UnsafePointer<UInt8>, count: Int) {
        self.base = base
        self.end = count
    }

    var hasNonFinite: Bool { nonFiniteOffset >= 0 }

    // MARK: Errors

    /// A `not_json` error: "expected X at byte offset N, found Y".
    func syntaxError(expected: String, at offset: Int? = nil) -> WireError {
        let offset = offset ?? pos
        return WireError(.notJSON, "expected \(expected) at byte offset \(offset), found \(describeByte(at: offset))")
    }

    func syntaxError(_ message: String, at offset: Int) -> WireError {
        WireError(.notJSON, "\(message) at byte offset \(offset)")
    }

    /// Human description of the character at `offset` for error messages.
    func describeByte(at offset: Int) -> String {
        guard offset < end else { return "end of line" }
        let byte = base[offset]
        switch byte {
        case 0x20: return "a space"
        case 0x09: return "a tab"
        case 0x0A: return "a line feed"
        case 0x0D: return "a carriage return"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        case 0x80...:
            // The text is valid UTF-8, so this is the lead byte of a complete sequence.
            let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
            let upper = min(end, offset + length)
            return "'" + String(decoding: UnsafeBufferPointer(start: base + offset, count: upper - offset), as: UTF8.self) + "'"
        default:
            let hex = String(byte, radix: 16, uppercase: true)
            return "control character 0x" + (byte < 0x10 ? "0" : "") + hex
        }
    }

    // MARK: Primitives

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < end {
            let byte = base[pos]
            if byte > ASCII.space { return }  // the usual case: no whitespace at all
            guard byte == ASCII.space || byte == ASCII.tab || byte == ASCII.lineFeed || byte == ASCII.carriageReturn
            else { return }
            pos &+= 1
        }
    }

    /// Consumes `byte` (after optional whitespace) or throws "expected `what`".
    @inline(__always)
    mutating func expect(_ byte: UInt8, _ what: String) throws(WireError) {
        skipWhitespace()
        guard pos < end, base[pos] == byte else { throw syntaxError(expected: what) }
        pos &+= 1
    }

    @inline(__always)
    static func broadcast(_ byte: UInt8) -> UInt64 { 0x0101_0101_0101_0101 &* UInt64(byte) }

    /// A mask with the high bit set in every byte of `word` that is `"`, `\` or below 0x20 (SWAR).
    /// Bytes above the first such byte may be flagged spuriously (borrows), but the lowest flagged
    /// byte is always exact, and the mask is zero only if there is none.
    @inline(__always)
    static func stringSpecialMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ broadcast(ASCII.quote)
        let backslash = word ^ broadcast(ASCII.backslash)
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        let hasControl = (word &- broadcast(0x20)) & ~word
        return (hasQuote | hasBackslash | hasControl) & highs
    }

    /// Scans a string whose opening quote is at `pos`. Validates escapes (surrogate pairing is checked
    /// when decoding, see `JSONStrings`). Leaves `pos` after the closing quote.
    @inline(__always)
    mutating func scanString() throws(WireError) -> JSONToken {
        let open = pos
        pos &+= 1
        let start = pos
        var escaped = false
        while true {
            if pos &+ 8 <= end {
                // Fast path: 8 bytes at a time, jumping straight to the first special byte.
                let word = UInt64(littleEndian: UnsafeRawPointer(base + pos).loadUnaligned(as: UInt64.self))
                let mask = JSONScanner.stringSpecialMask(word)
                if mask == 0 {
                    pos &+= 8
                    continue
                }
                pos &+= mask.trailingZeroBitCount &>> 3
            } else {
                guard pos < end else {
                    throw syntaxError("unterminated string (opened at byte offset \(open)): expected '\"'", at: pos)
                }
                let byte = base[pos]
                if byte >= 0x20 && byte != ASCII.quote && byte != ASCII.backslash {
                    pos &+= 1
                    continue
                }
            }
            let byte = base[pos]
            if byte == ASCII.quote {
                let token = JSONToken(kind: .string, start: start, end: pos, flag: escaped)
                pos &+= 1
                return token
            }
            if byte == ASCII.backslash {
                escaped = true
                try scanEscape()
                continue
            }
            throw syntaxError(
                "unescaped \(describeByte(at: pos)) inside a string (control characters must be written as \\n, \\t, \\u00XX...)",
                at: pos)
        }
    }

    /// Validates one escape sequence starting at the backslash at `pos`.
    mutating func scanEscape() throws(WireError) {
        let slash = pos
        pos &+= 1
        guard pos < end else { throw syntaxError(expected: "an escape character after '\\'") }
        switch base[pos] {
        case ASCII.quote, ASCII.backslash, ASCII.slash,
             UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos &+= 1
        case UInt8(ascii: "u"):
            pos &+= 1
            for _ in 0..<4 {
                guard pos < end, JSONStrings.hexValue(base[pos]) != nil else {
                    throw syntaxError(expected: "4 hex digits after '\\u' (escape at byte offset \(slash))")
                }
                pos &+= 1
            }
        default:
            throw syntaxError(
                expected: "one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX (escape at byte offset \(slash))")
        }
    }

    private mutating func matchWord(_ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard end - pos >= length else { return false }
        let text = word.utf8Start
        for index in 0..<length where base[pos + index] != text[index] { return false }
        pos += length
        return true
    }

    private mutating func recordNonFinite(from start: Int) {
        if nonFiniteOffset < 0 {
            nonFiniteOffset = start
            nonFiniteLength = pos - start
        }
    }

    /// Scans a number (or `-Infinity`) starting at `pos`.
    @inline(__always)
    mutating func scanNumber() throws(WireError) -> JSONToken {
        let start = pos
        if base[pos] == ASCII.minus {
            pos &+= 1
            if pos < end && base[pos] == UInt8(ascii: "I") {
                if matchWord("Infinity") {
                    recordNonFinite(from: start)
                    return JSONToken(kind: .nonFinite, start: start, end: pos, flag: false)
                }
            }
        }
        // Integer part.
        guard pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine else {
            throw syntaxError(expected: "a digit in the number starting at byte offset \(start)")
        }
        var intDigits = 0
        let intIsZero = base[pos] == ASCII.zero
        if intIsZero {
            pos &+= 1
            if pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
                throw syntaxError("number with a leading zero (starting at byte offset \(start))", at: pos)
            }
        } else {
            while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
                pos &+= 1
                intDigits &+= 1
            }
        }
        var isInteger = true
        // Leading zeros of the fraction (only relevant when the integer part is 0) and whether
        // any digit is non-zero, for the overflow test below.
        var fractionLeadingZeros = 0
        var fractionNonZero = false
        if pos < end, base[pos] == ASCII.dot {
            isInteger = false
            pos &+= 1
            guard pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine else {
                throw syntaxError(expected: "a digit after the decimal point")
            }
            while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
                if base[pos] != ASCII.zero {
                    fractionNonZero = true
                } else if !fractionNonZero {
                    fractionLeadingZeros &+= 1
                }
                pos &+= 1
            }
        }
        var exponent = 0
        if pos < end, base[pos] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            pos &+= 1
            var negative = false
            if pos < end, base[pos] == ASCII.minus || base[pos] == ASCII.plus {
                negative = base[pos] == ASCII.minus
                pos &+= 1
            }
            guard pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine else {
                throw syntaxError(expected: "a digit in the exponent")
            }
            while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
                if exponent < 100_000_000 { exponent = exponent &* 10 &+ Int(base[pos] &- ASCII.zero) }
                pos &+= 1
            }
            if negative { exponent = -exponent }
        }
        if exponent > 0 || intDigits > 300 {
            // Decimal position of the leading significant digit; only large values can overflow.
            let magnitude: Int
            if !intIsZero {
                magnitude = intDigits - 1 + exponent
            } else if fractionNonZero {
                magnitude = -(fractionLeadingZeros + 1) + exponent
            } else {
                magnitude = Int.min  // the value is zero
            }
            if magnitude >= 309 || (magnitude == 308 && !JSONNumbers.parseSlow(base, start, pos).isFinite) {
                recordNonFinite(from: start)
                return JSONToken(kind: .nonFinite, start: start, end: pos, flag: false)
            }
        }
        return JSONToken(kind: .number, start: start, end: pos, flag: isInteger)
    }

    /// Scans any value at `pos` (whitespace already skipped). Objects and arrays are validated and
    /// skipped; the token spans their whole text.
    @inline(__always)
    mutating func scanValue(depth: Int = 0) throws(WireError) -> JSONToken {
        guard pos < end else { throw syntaxError(expected: "a JSON value") }
        let start = pos
        switch base[pos] {
        case ASCII.quote:
            return try scanString()
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return try scanNumber()
        case ASCII.openBrace, ASCII.openBracket:
            try skipContainer(depth: depth + 1)
            return JSONToken(kind: base[start] == ASCII.openBrace ? .object : .array, start: start, end: pos, flag: false)
        case UInt8(ascii: "t"):
            if matchWord("true") { return JSONToken(kind: .trueLiteral, start: start, end: pos, flag: false) }
        case UInt8(ascii: "f"):
            if matchWord("false") { return JSONToken(kind: .falseLiteral, start: start, end: pos, flag: false) }
        case UInt8(ascii: "n"):
            if matchWord("null") { return JSONToken(kind: .null, start: start, end: pos, flag: false) }
        case UInt8(ascii: "N"):
            if matchWord("NaN") {
                recordNonFinite(from: start)
                return JSONToken(kind: .nonFinite, start: start, end: pos, flag: false)
            }
        case UInt8(ascii: "I"):
            if matchWord("Infinity") {
                recordNonFinite(from: start)
                return JSONToken(kind: .nonFinite, start: start, end: pos, flag: false)
            }
        default:
            break
        }
        throw syntaxError(expected: "a JSON value (string, number, object, array, true, false or null)")
    }

    /// Validates and skips the object or array whose opening bracket is at `pos`.
    mutating func skipContainer(depth: Int) throws(WireError) {
        guard depth <= JSONScanner.maxDepth else {
            throw syntaxError("containers nested deeper than \(JSONScanner.maxDepth) levels", at: pos)
        }
        let isObject = base[pos] == ASCII.openBrace
        let close = isObject ? ASCII.closeBrace : ASCII.closeBracket
        pos &+= 1
        skipWhitespace()
        if pos < end && base[pos] == close {
            pos &+= 1
            return
        }
        while true {
            skipWhitespace()
            if isObject {
                guard pos < end, base[pos] == ASCII.quote else { throw syntaxError(expected: "'\"' to start a member name") }
                _ = try scanString()
                try expect(ASCII.colon, "':' after the member name")
                skipWhitespace()
            }
            _ = try scanValue(depth: depth)
            skipWhitespace()
            guard pos < end else {
                throw syntaxError(expected: isObject ? "',' or '}' in the object" : "',' or ']' in the array")
            }
            let byte = base[pos]
            pos &+= 1
            if byte == ASCII.comma { continue }
            if byte == close { return }
            pos &-= 1
            throw syntaxError(expected: isObject ? "',' or '}' in the object" : "',' or ']' in the array")
        }
    }

    /// Throws unless only whitespace remains.
    mutating func expectEnd() throws(WireError) {
        skipWhitespace()
        guard pos == end else { throw syntaxError("unexpected \(describeByte(at: pos)) after the JSON value", at: pos) }
    }

    /// An excerpt of the text `start..<end`, at most `limit` bytes (cut at a character boundary, "…" appended).
    func excerpt(_ start: Int, _ stop: Int, limit: Int = 60) -> String {
        JSONStrings.excerpt(UnsafeRawBufferPointer(start: base + start, count: stop - start), limit: limit)
    }
}

// MARK: - Strings

enum JSONStrings {
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// Decodes the content of a scanned string (escapes already validated by the scanner) into `out`,
    /// which must have room for `count` bytes (decoding never grows the text). Returns the number of
    /// bytes written, or `-(offset + 1)` for a lone surrogate escape at `offset` within the source.
    static func unescape(_ source: UnsafePointer<UInt8>, _ count: Int, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var read = 0
        var written = 0
        func hex4(_ at: Int) -> UInt32 {
            (hexValue(source[at])! << 12) | (hexValue(source[at + 1])! << 8)
                | (hexValue(source[at + 2])! << 4) | hexValue(source[at + 3])!
        }
        while read < count {
            let byte = source[read]
            if byte != ASCII.backslash {
                out[written] = byte
                written += 1
                read += 1
                continue
            }
            let escape = source[read + 1]
            read += 2
            var scalar: UInt32
            switch escape {
            case UInt8(ascii: "b"): scalar = 0x08
            case UInt8(ascii: "f"): scalar = 0x0C
            case UInt8(ascii: "n"): scalar = 0x0A
            case UInt8(ascii: "r"): scalar = 0x0D
            case UInt8(ascii: "t"): scalar = 0x09
            case UInt8(ascii: "u"):
                scalar = hex4(read)
                let escapeStart = read - 2
                read += 4
                if scalar >= 0xDC00 && scalar <= 0xDFFF { return -(escapeStart + 1) }
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard read + 6 <= count, source[read] == ASCII.backslash, source[read + 1] == UInt8(ascii: "u") else {
                        return -(escapeStart + 1)
                    }
                    let low = hex4(read + 2)
                    guard low >= 0xDC00 && low <= 0xDFFF else { return -(escapeStart + 1) }
                    read += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
            default: scalar = UInt32(escape)  // " \ /
            }
            // UTF-8 encode.
            if scalar < 0x80 {
                out[written] = UInt8(scalar)
                written += 1
            } else if scalar < 0x800 {
                out[written] = UInt8(0xC0 | (scalar >> 6))
                out[written + 1] = UInt8(0x80 | (scalar & 0x3F))
                written += 2
            } else if scalar < 0x10000 {
                out[written] = UInt8(0xE0 | (scalar >> 12))
                out[written + 1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
                out[written + 2] = UInt8(0x80 | (scalar & 0x3F))
                written += 3
            } else {
                out[written] = UInt8(0xF0 | (scalar >> 18))
                out[written + 1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
                out[written + 2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
                out[written + 3] = UInt8(0x80 | (scalar & 0x3F))
                written += 4
            }
        }
        return written
    }

    /// The decoded string, or the offset (within the content) of a lone surrogate escape.
    static func decode(_ base: UnsafePointer<UInt8>, _ token: JSONToken) -> Result<String, LoneSurrogate> {
        let count = token.end - token.start
        let source = base + token.start
        if !token.hasEscapes {
            return .success(String(decoding: UnsafeBufferPointer(start: source, count: count), as: UTF8.self))
        }
        var failure = -1
        let text = String(unsafeUninitializedCapacity: count) { buffer in
            let written = unescape(source, count, into: buffer.baseAddress!)
            if written < 0 {
                failure = -written - 1
                return 0
            }
            return written
        }
        if failure >= 0 { return .failure(LoneSurrogate(offset: token.start + failure)) }
        return .success(text)
    }

    /// Calls `body` with the decoded bytes of a string token (the raw bytes when there are no escapes).
    static func withDecodedBytes<R>(
        _ base: UnsafePointer<UInt8>, _ token: JSONToken,
        _ body: (UnsafeRawBufferPointer) -> R
    ) -> Result<R, LoneSurrogate> {
        let count = token.end - token.start
        if !token.hasEscapes {
            return .success(body(UnsafeRawBufferPointer(start: base + token.start, count: count)))
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(count, 1)) { buffer in
            let written = unescape(base + token.start, count, into: buffer.baseAddress!)
            if written < 0 { return .failure(LoneSurrogate(offset: token.start - written - 1)) }
            return .success(body(UnsafeRawBufferPointer(start: buffer.baseAddress!, count: written)))
        }
    }

    /// The length in bytes of the decoded string, without decoding it when it has no escapes.
    static func decodedLength(_ base: UnsafePointer<UInt8>, _ token: JSONToken) -> Result<Int, LoneSurrogate> {
        token.hasEscapes ? withDecodedBytes(base, token, { $0.count }) : .success(token.end - token.start)
    }

    struct LoneSurrogate: Error {
        /// Byte offset of the escape's backslash within the line.
        var offset: Int
    }

    /// At most `limit` bytes of `bytes`, cut at a character boundary, with "…" appended when cut.
    static func excerpt(_ bytes: UnsafeRawBufferPointer, limit: Int = 60) -> String {
        if bytes.count <= limit { return String(decoding: bytes, as: UTF8.self) }
        var cut = limit
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<cut]), as: UTF8.self) + "…"
    }
}

// MARK: - Numbers

enum JSONNumbers {
    /// Exact powers of ten representable in a Double (10^0 ... 10^22).
    static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The value of a scanned number token `start..<end`, correctly rounded.
    /// Uses the exact fast path (mantissa ≤ 2^53, |exponent| ≤ 22) and falls back to the C library otherwise.
    @inline(__always)
    static func parse(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Double {
        var pos = start
        var negative = false
        if base[pos] == ASCII.minus {
            negative = true
            pos &+= 1
        }
        var mantissa: UInt64 = 0
        var significantDigits = 0
        var decimalExponent = 0
        while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
            mantissa = mantissa &* 10 &+ UInt64(base[pos] &- ASCII.zero)
            if mantissa != 0 { significantDigits &+= 1 }
            pos &+= 1
        }
        if pos < end, base[pos] == ASCII.dot {
            pos &+= 1
            while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
                mantissa = mantissa &* 10 &+ UInt64(base[pos] &- ASCII.zero)
                if mantissa != 0 { significantDigits &+= 1 }
                decimalExponent &-= 1
                pos &+= 1
            }
        }
        if pos < end {  // exponent
            pos &+= 1
            var expNegative = false
            if base[pos] == ASCII.minus || base[pos] == ASCII.plus {
                expNegative = base[pos] == ASCII.minus
                pos &+= 1
            }
            var exponent = 0
            while pos < end {
                if exponent < 100_000 { exponent = exponent &* 10 &+ Int(base[pos] &- ASCII.zero) }
                pos &+= 1
            }
            decimalExponent &+= expNegative ? -exponent : exponent
        }
        if significantDigits <= 19 && mantissa <= (1 << 53) && decimalExponent >= -22 && decimalExponent <= 22 {
            var value = Double(mantissa)
            if decimalExponent < 0 {
                value /= powersOfTen[-decimalExponent]
            } else {
                value *= powersOfTen[decimalExponent]
            }
            return negative ? -value : value
        }
        return parseSlow(base, start, end)
    }

    /// Correctly rounded conversion through the C library's strtod (via the stdlib).
    static func parseSlow(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Double {
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
        return Double(text) ?? .infinity
    }

    /// The value of an integer token (no fraction, no exponent), or nil if it does not fit in Int64.
    @inline(__always)
    static func parseInteger(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int64? {
        var pos = start
        let negative = base[pos] == ASCII.minus
        if negative { pos &+= 1 }
        var value: Int64 = 0
        while pos < end {
            let digit = Int64(base[pos] &- ASCII.zero)
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative
                ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            value = next
            pos &+= 1
        }
        return value
    }
}
