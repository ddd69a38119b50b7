/// The parser's fast path for the line nearly every producer writes: an event with its members in the
/// documented order, without whitespace, as the bash library prints it:
///
///     {"v":1,"kind":"event","execution_id":"…","ts":…,"level":"…","operation":"…"[,"message":"…"][,"duration_seconds":…]}
///
/// It compares the fixed member names as literals and parses each value with the same scanner and checks
/// as `ScannedLine`, so it skips the general path's member table and dispatch. It only ever *accepts*: any
/// difference from that shape, and any value that fails a check, returns nil, and the general path then
/// parses the line and gives the same answer or error it always gives. The tests compare the two paths on
/// accepted lines and on mutations of them.
enum CanonicalEvent {
    /// The event in `base[0..<count]` (UTF-8 already validated), or nil when the general path must decide.
    static func parse(_ base: UnsafePointer<UInt8>, _ count: Int) -> EventLine? {
        var scanner = JSONScanner(base: base, count: count)
        guard scanner.literal(#"{"v":1,"kind":"event","execution_id":""#) else { return nil }
        guard scanner.pos + 36 <= count,
              let id = ExecutionID(utf8: UnsafeRawBufferPointer(start: base + scanner.pos, count: 36))
        else { return nil }
        scanner.pos += 36
        guard scanner.literal(#"","ts":"#), let tsRange = plainDecimal(&scanner),
              let microseconds = ScannedLine.numericMicroseconds(
                  base, JSONToken(kind: .number, start: tsRange.lowerBound, end: tsRange.upperBound, flag: false)),
              microseconds >= Timestamp.earliestAccepted.microseconds,
              microseconds < Timestamp.latestAcceptedExclusive.microseconds
        else { return nil }
        guard scanner.literal(#","level":""#) else { return nil }
        let levelStart = scanner.pos
        while scanner.pos < count && base[scanner.pos] >= UInt8(ascii: "a") && base[scanner.pos] <= UInt8(ascii: "z") {
            scanner.pos += 1
        }
        guard let level = ScannedLine.matchLevel(UnsafeRawBufferPointer(start: base + levelStart, count: scanner.pos - levelStart)),
              scanner.literal(#"","operation":"#),
              let operation = string(&scanner, minBytes: 1, maxBytes: 256)
        else { return nil }
        var message = JSONStringSlice(raw: UnsafeRawBufferPointer(start: base, count: 0), hasEscapes: false)
        if scanner.literal(#","message":"#) {
            guard let text = string(&scanner, minBytes: 0, maxBytes: Int.max) else { return nil }
            message = text
        }
        var duration: Double?
        if scanner.literal(#","duration_seconds":"#) {
            guard let range = plainDecimal(&scanner) else { return nil }
            duration = JSONNumbers.parse(base, range.lowerBound, range.upperBound)  // no sign: never negative or -0
        }
        guard scanner.literal("}"), scanner.pos == count else { return nil }
        return EventLine(executionID: id, timestamp: Timestamp(microseconds: microseconds), level: level,
                         operation: operation, message: message, durationSeconds: duration)
    }

    /// A number at `scanner.pos` written as a plain decimal: `0` or a digit 1-9 and at most 14 more digits,
    /// then optionally `.` and digits; no sign, no exponent. Valid JSON, and finite whatever its fraction.
    /// Anything else returns nil (an exponent makes the member literal that follows fail).
    private static func plainDecimal(_ scanner: inout JSONScanner) -> Range<Int>? {
        let base = scanner.base
        let start = scanner.pos
        var pos = start
        @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte &- ASCII.zero < 10 }
        guard pos < scanner.end, isDigit(base[pos]) else { return nil }
        if base[pos] == ASCII.zero {
            pos += 1
        } else {
            while pos < scanner.end && isDigit(base[pos]) { pos += 1 }
        }
        guard pos - start <= 15 else { return nil }
        if pos < scanner.end && base[pos] == ASCII.dot {
            pos += 1
            let fractionStart = pos
            while pos < scanner.end && isDigit(base[pos]) { pos += 1 }
            guard pos > fractionStart else { return nil }
        }
        scanner.pos = pos
        return start..<pos
    }

    /// A string value at `scanner.pos` that passes the same checks as `ScannedLine.stringSlice`, or nil.
    private static func string(_ scanner: inout JSONScanner, minBytes: Int, maxBytes: Int) -> JSONStringSlice? {
        guard scanner.pos < scanner.end, scanner.base[scanner.pos] == ASCII.quote,
              let token = try? scanner.scanString() else { return nil }
        guard case .success(let length) = JSONStrings.decodedLength(scanner.base, token),
              length >= minBytes && length <= maxBytes else { return nil }
        return JSONStringSlice(scanner.base, token)
    }
}

extension JSONScanner {
    /// Consumes `text` if the bytes at `pos` are exactly it.
    @inline(__always)
    mutating func literal(_ text: StaticString) -> Bool {
        let length = text.utf8CodeUnitCount
        guard end - pos >= length else { return false }
        let here = UnsafeRawPointer(base + pos)
        let expected = UnsafeRawPointer(text.utf8Start)
        var offset = 0
        while offset + 8 <= length {
            guard here.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                == expected.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset += 8
        }
        while offset < length {
            guard here.load(fromByteOffset: offset, as: UInt8.self) == expected.load(fromByteOffset: offset, as: UInt8.self)
            else { return false }
            offset += 1
        }
        pos += length
        return true
    }
}
