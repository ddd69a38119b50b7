/// Appends one-line JSON to a byte buffer: protocol lines, control replies and stored documents.
///
/// Commas are inserted automatically; the caller only has to call the methods in a valid order
/// (`key` before every value inside an object). Strings are escaped so that the output is always
/// valid JSON on a single line: `"` `\` and every control character below 0x20 are escaped
/// (`\n \r \t \b \f`, otherwise `\u00XX`); DEL and non-ASCII stay as UTF-8.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]
    /// True when the next value or key at the current level must be preceded by a comma.
    private var needsComma = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Makes room for at least `count` more bytes, growing geometrically, so that a caller that reserves before
    /// each chunk of input still copies the buffer a logarithmic number of times.
    public mutating func reserve(additional count: Int) {
        bytes.reserveGrowing(additional: count)
    }

    /// The output as a String.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Empties the buffer, keeping its capacity.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        needsComma = false
    }

    @inline(__always)
    private mutating func separate() {
        if needsComma { bytes.append(ASCII.comma) }
    }

    // MARK: Structure

    public mutating func beginObject() {
        separate()
        bytes.append(ASCII.openBrace)
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(ASCII.closeBrace)
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(ASCII.openBracket)
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(ASCII.closeBracket)
        needsComma = true
    }

    /// A member name; the next call writes its value.
    public mutating func key(_ name: String) {
        separate()
        appendQuoted(name)
        bytes.append(ASCII.colon)
        needsComma = false
    }

    // MARK: Values

    public mutating func string(_ value: String) {
        separate()
        appendQuoted(value)
        needsComma = true
    }

    /// A string given as UTF-8 bytes (assumed valid UTF-8).
    public mutating func string(utf8 value: some Collection<UInt8>) {
        separate()
        bytes.append(ASCII.quote)
        for byte in value { appendEscaped(byte) }
        bytes.append(ASCII.quote)
        needsComma = true
    }

    /// A finite number. Integral values of magnitude below 2^53 print without a fraction (`5`, not `5.0`);
    /// others use Swift's shortest round-trip form (`0.1`, `1e-07`, `1.5e+300`), which is valid JSON.
    public mutating func number(_ value: Double) {
        precondition(value.isFinite, "JSON cannot represent \(value)")
        separate()
        if !appendFormatted(maximum: Self.maximumNumberBytes, { Self.formatNumber(value, into: $0) }) {
            bytes.append(contentsOf: value.description.utf8)
        }
        needsComma = true
    }

    public mutating func integer(_ value: Int64) {
        separate()
        _ = appendFormatted(maximum: Self.maximumNumberBytes) { Self.formatInteger(value, into: $0) }
        needsComma = true
    }

    // MARK: Formatting through a pointer

    /// The most bytes `formatNumber` and `formatInteger` write.
    public static let maximumNumberBytes = 24

    /// Appends what `format` writes at a pointer to at most `maximum` bytes (it returns the count), in one
    /// copy: cheaper than appending piece by piece, which checks the array's capacity and uniqueness at every
    /// step. When `format` returns nil (a case it does not handle), nothing is appended and the result is false.
    /// Keep `maximum` small (up to about 1 KiB): the scratch space is on the stack.
    @inline(__always)
    public mutating func appendFormatted(maximum: Int, _ format: (UnsafeMutablePointer<UInt8>) -> Int?) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maximum) { scratch -> Bool in
            guard let base = scratch.baseAddress, let count = format(base) else { return false }
            bytes.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
            return true
        }
    }

    /// Writes `value` exactly as `number` does when that needs no `description`: an integral value below 2^53
    /// as an integer, or a short decimal (`formatShortDecimal`). Returns the byte count, or nil otherwise.
    @inline(__always)
    public static func formatNumber(_ value: Double, into out: UnsafeMutablePointer<UInt8>) -> Int? {
        if value.rounded(.towardZero) == value && value.magnitude < 9_007_199_254_740_992 {
            return formatInteger(Int64(value), into: out)
        }
        return formatShortDecimal(value, into: out)
    }

    /// Writes `value` in decimal (at most 20 bytes) and returns the byte count.
    @inline(__always)
    public static func formatInteger(_ value: Int64, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var count = 0
        if value < 0 {
            out[0] = ASCII.minus
            count = 1
        }
        let magnitude = value.magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        writeDigits(magnitude, width: digits, into: out + count)
        return count + digits
    }

    /// Writes the last `width` decimal digits of `value` at `out`, zero-padded.
    @inline(__always)
    private static func writeDigits(_ value: UInt64, width: Int, into out: UnsafeMutablePointer<UInt8>) {
        var rest = value
        var index = width
        while index > 0 {
            index -= 1
            out[index] = ASCII.zero + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
    }

    /// Writes `value` when it is exactly a decimal with at most 6 fraction digits and a magnitude from
    /// 0.001 to below 10^6 (durations and most metrics) without going through `description`; returns the
    /// byte count, or nil otherwise. The text is the one `description` gives: below 10^6 doubles are less
    /// than 10^-9 apart, so a decimal with at most 6 fraction digits that round-trips is the only such decimal
    /// for this double, hence also its shortest round-trip form; and `description` uses fixed notation there.
    @inline(__always)
    static func formatShortDecimal(_ value: Double, into out: UnsafeMutablePointer<UInt8>) -> Int? {
        let magnitude = value.magnitude
        guard magnitude >= 0.001 && magnitude < 1_000_000 else { return nil }
        let scaled = (magnitude * 1_000_000).rounded()
        // Division is correctly rounded, as is parsing the decimal: equal exactly when the decimal round-trips.
        guard scaled / 1_000_000 == magnitude else { return nil }
        let micros = Int64(scaled)
        var fraction = micros % 1_000_000
        guard fraction != 0 else { return nil }  // not reached: integral values are written as integers
        var count = 0
        if value < 0 {
            out[0] = ASCII.minus
            count = 1
        }
        count += formatInteger(micros / 1_000_000, into: out + count)
        out[count] = ASCII.dot
        count += 1
        var width = 6
        while fraction % 10 == 0 {
            fraction /= 10
            width -= 1
        }
        writeDigits(UInt64(fraction), width: width, into: out + count)
        return count + width
    }

    public mutating func integer(_ value: Int) {
        integer(Int64(value))
    }

    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
        needsComma = true
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
        needsComma = true
    }

    /// A value that is already encoded JSON (not checked).
    public mutating func raw(_ json: [UInt8]) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// Already encoded JSON from any byte collection (not checked).
    public mutating func raw(bytes json: some Collection<UInt8>) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// Starts a new top-level value without a separating comma, so one buffer can hold several
    /// independent JSON values back to back (the ingest path encodes many event objects into one buffer).
    public mutating func startIndependentValue() {
        needsComma = false
    }

    /// A timestamp as an RFC 3339 string, written straight into the buffer.
    public mutating func timestamp(_ value: Timestamp) {
        separate()
        bytes.append(ASCII.quote)
        value.appendRFC3339(to: &bytes)
        bytes.append(ASCII.quote)
        needsComma = true
    }

    /// Any `JSONValue` (a non-finite number, which JSON cannot express, is written as null).
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .number(let number): number.isFinite ? self.number(number) : null()  // JSON has no NaN/Infinity
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for (name, member) in members {
                key(name)
                self.value(member)
            }
            endObject()
        }
    }

    // MARK: Members

    public mutating func field(_ key: String, _ value: String) {
        self.key(key)
        string(value)
    }

    public mutating func field(_ key: String, _ value: Double) {
        self.key(key)
        number(value)
    }

    public mutating func field(_ key: String, _ value: Int64) {
        self.key(key)
        integer(value)
    }

    public mutating func field(_ key: String, _ value: Int) {
        self.key(key)
        integer(Int64(value))
    }

    public mutating func field(_ key: String, _ value: Bool) {
        self.key(key)
        bool(value)
    }

    public mutating func field(_ key: String, _ value: JSONValue) {
        self.key(key)
        self.value(value)
    }

    /// `"key":null`.
    public mutating func nullField(_ key: String) {
        self.key(key)
        null()
    }

    /// `"key":` followed by pre-encoded JSON.
    public mutating func rawField(_ key: String, _ json: [UInt8]) {
        self.key(key)
        raw(json)
    }

    // MARK: Fixed shapes

    /// Appends bytes verbatim, outside the comma bookkeeping, for an encoder that lays out a fixed shape
    /// itself (the per-event hot path). The caller is responsible for producing valid JSON.
    public mutating func appendVerbatim(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends a quoted, escaped string, outside the comma bookkeeping (see `appendVerbatim`).
    public mutating func appendQuotedString(_ text: String) {
        appendQuoted(text)
    }

    // MARK: Escaping

    private mutating func appendQuoted(_ text: String) {
        var text = text
        text.withUTF8 { appendQuotedString(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// Appends UTF-8 bytes as a quoted, escaped string, outside the comma bookkeeping.
    public mutating func appendQuotedString(utf8: UnsafeRawBufferPointer) {
        bytes.append(ASCII.quote)
        // Copy runs of bytes that need no escaping in one go.
        var runStart = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            if byte >= 0x20 && byte != ASCII.quote && byte != ASCII.backslash { continue }
            if runStart < index { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart..<index])) }
            appendEscaped(byte)
            runStart = index + 1
        }
        if runStart < utf8.count { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart...])) }
        bytes.append(ASCII.quote)
    }

    /// `"` + bytes known to need no escaping + `"`.
    mutating func appendQuotedVerbatim(_ content: UnsafeRawBufferPointer) {
        bytes.append(ASCII.quote)
        bytes.append(contentsOf: content)
        bytes.append(ASCII.quote)
    }

    @inline(__always)
    private mutating func appendEscaped(_ byte: UInt8) {
        let short: UInt8
        switch byte {
        case ASCII.quote: short = ASCII.quote
        case ASCII.backslash: short = ASCII.backslash
        case 0x0A: short = UInt8(ascii: "n")
        case 0x0D: short = UInt8(ascii: "r")
        case 0x09: short = UInt8(ascii: "t")
        case 0x08: short = UInt8(ascii: "b")
        case 0x0C: short = UInt8(ascii: "f")
        case 0..<0x20:
            bytes.append(ASCII.backslash)
            bytes.append(UInt8(ascii: "u"))
            bytes.append(ASCII.zero)
            bytes.append(ASCII.zero)
            bytes.append(Self.hexDigit(byte >> 4))
            bytes.append(Self.hexDigit(byte & 0xF))
            return
        default:
            bytes.append(byte)
            return
        }
        bytes.append(ASCII.backslash)
        bytes.append(short)
    }

    @inline(__always)
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? ASCII.zero + value : UInt8(ascii: "a") + value - 10
    }
}

extension Array {
    /// `reserveCapacity` for buffers that are reserved for piece after piece: when the room runs out, at least
    /// double it. (`reserveCapacity(count + n)` alone allocates exactly that, so reserving before each of k
    /// pieces would copy the buffer k times.)
    @inlinable
    public mutating func reserveGrowing(additional count: Int) {
        let needed = self.count + count
        if capacity < needed { reserveCapacity(Swift.max(needed, capacity * 2)) }
    }
}
