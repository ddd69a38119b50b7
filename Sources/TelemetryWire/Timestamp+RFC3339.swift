#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Calendar arithmetic without Foundation (proleptic Gregorian calendar, UTC).
/// The algorithms are Howard Hinnant's `days_from_civil` / `civil_from_days`.
enum CivilCalendar {
    /// Days since 1970-01-01 of the given date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day count since 1970-01-01.
    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

extension Timestamp {
    /// The earliest `ts` the protocol accepts: 2000-01-01T00:00:00Z.
    public static let earliestAccepted = Timestamp(microseconds: 946_684_800_000_000)
    /// The first `ts` the protocol no longer accepts: 2100-01-01T00:00:00Z.
    public static let latestAcceptedExclusive = Timestamp(microseconds: 4_102_444_800_000_000)

    /// The current wall-clock time (`clock_gettime(CLOCK_REALTIME)`).
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000)
    }

    /// UTC in RFC 3339 form with exactly three fraction digits (truncated), e.g. `2024-01-01T12:00:00.123Z`.
    public var rfc3339: String {
        var out = [UInt8]()
        out.reserveCapacity(26)
        appendRFC3339(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The UTC calendar date, and the milliseconds since its midnight (truncated).
    @inline(__always)
    private var civilParts: (date: (year: Int, month: Int, day: Int), millisecondsInDay: Int) {
        let perDay: Int64 = 86_400_000_000
        var days = microseconds / perDay
        var inDay = microseconds % perDay
        if inDay < 0 {  // floor division for times before 1970
            inDay += perDay
            days -= 1
        }
        return (CivilCalendar.civilFromDays(Int(days)), Int(inDay / 1000))
    }

    /// Writes the 24 bytes of `rfc3339` at `text` and returns true, for the years 0 to 9999 (all but the
    /// extremes); otherwise writes nothing and returns false (`appendRFC3339` handles every year).
    @inline(__always)
    public func formatRFC3339(into text: UnsafeMutablePointer<UInt8>) -> Bool {
        let (date, millisecondsInDay) = civilParts
        guard date.year >= 0 && date.year <= 9_999 else { return false }
        let millisecond = millisecondsInDay % 1000
        // Two digits at a time, in place.
        func pair(_ value: Int, at offset: Int) {
            text[offset] = UInt8(truncatingIfNeeded: 48 + value / 10)
            text[offset + 1] = UInt8(truncatingIfNeeded: 48 + value % 10)
        }
        pair(date.year / 100, at: 0)
        pair(date.year % 100, at: 2)
        text[4] = ASCII.minus
        pair(date.month, at: 5)
        text[7] = ASCII.minus
        pair(date.day, at: 8)
        text[10] = UInt8(ascii: "T")
        pair(millisecondsInDay / 3_600_000, at: 11)
        text[13] = ASCII.colon
        pair(millisecondsInDay / 60_000 % 60, at: 14)
        text[16] = ASCII.colon
        pair(millisecondsInDay / 1000 % 60, at: 17)
        text[19] = ASCII.dot
        text[20] = UInt8(truncatingIfNeeded: 48 + millisecond / 100)
        pair(millisecond % 100, at: 21)
        text[23] = UInt8(ascii: "Z")
        return true
    }

    /// Appends `rfc3339` to a byte buffer without building a String (the document encoder's hot path).
    public func appendRFC3339(to out: inout [UInt8]) {
        let formatted = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text -> Bool in
            guard let base = text.baseAddress, formatRFC3339(into: base) else { return false }
            out.append(contentsOf: UnsafeBufferPointer(text))
            return true
        }
        if formatted { return }
        let (date, millisecondsInDay) = civilParts
        let hour = millisecondsInDay / 3_600_000
        let minute = millisecondsInDay / 60_000 % 60
        let second = millisecondsInDay / 1000 % 60
        let millisecond = millisecondsInDay % 1000

        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            if rest >= divisor * 10 {  // wider than `width` (years past 9999): print all digits
                for byte in String(rest).utf8 { out.append(byte) }
                return
            }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        var year = date.year
        if year < 0 {
            out.append(ASCII.minus)
            year = -year
        }
        digits(year, 4)
        out.append(ASCII.minus)
        digits(date.month, 2)
        out.append(ASCII.minus)
        digits(date.day, 2)
        out.append(UInt8(ascii: "T"))
        digits(hour, 2)
        out.append(ASCII.colon)
        digits(minute, 2)
        out.append(ASCII.colon)
        digits(second, 2)
        out.append(ASCII.dot)
        digits(millisecond, 3)
        out.append(UInt8(ascii: "Z"))
    }

    /// Parses RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction]Z|±HH:MM` (`T` and `Z` in either case,
    /// a fraction of 1 to 9 digits truncated to microseconds; seconds 00–59, leap seconds refused).
    /// Returns nil for anything else, including impossible dates such as 2023-02-29.
    public static func parseRFC3339(_ text: some StringProtocol) -> Timestamp? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { parseRFC3339(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// `parseRFC3339` over raw UTF-8 bytes.
    public static func parseRFC3339(utf8 text: UnsafeRawBufferPointer) -> Timestamp? {
        let count = text.count
        guard count >= 20 else { return nil }
        var pos = 0
        func number(_ width: Int) -> Int? {
            guard pos + width <= count else { return nil }
            var value = 0
            for _ in 0..<width {
                let byte = text[pos]
                guard byte >= ASCII.zero && byte <= ASCII.nine else { return nil }
                value = value * 10 + Int(byte - ASCII.zero)
                pos += 1
            }
            return value
        }
        func literal(_ byte: UInt8, caseInsensitive: Bool = false) -> Bool {
            guard pos < count else { return false }
            let actual = caseInsensitive ? text[pos] | 0x20 : text[pos]
            guard actual == byte else { return false }
            pos += 1
            return true
        }
        guard let year = number(4), literal(ASCII.minus),
              let month = number(2), literal(ASCII.minus),
              let day = number(2), literal(UInt8(ascii: "t"), caseInsensitive: true),
              let hour = number(2), literal(ASCII.colon),
              let minute = number(2), literal(ASCII.colon),
              let second = number(2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= CivilCalendar.daysInMonth(year: year, month: month),
              hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var micros = 0
        if pos < count && text[pos] == ASCII.dot {
            pos += 1
            var digitCount = 0
            while pos < count, text[pos] >= ASCII.zero, text[pos] <= ASCII.nine {
                if digitCount < 6 { micros = micros * 10 + Int(text[pos] - ASCII.zero) }
                digitCount += 1
                pos += 1
            }
            guard digitCount >= 1 && digitCount <= 9 else { return nil }
            for _ in digitCount..<max(digitCount, 6) { micros *= 10 }
        }
        var offsetSeconds = 0
        guard pos < count else { return nil }
        if text[pos] | 0x20 == UInt8(ascii: "z") {
            pos += 1
        } else if text[pos] == ASCII.plus || text[pos] == ASCII.minus {
            let negative = text[pos] == ASCII.minus
            pos += 1
            guard let offsetHours = number(2), literal(ASCII.colon), let offsetMinutes = number(2),
                  offsetHours <= 23, offsetMinutes <= 59
            else { return nil }
            offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (negative ? -1 : 1)
        } else {
            return nil
        }
        guard pos == count else { return nil }
        let days = CivilCalendar.daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Timestamp(microseconds: Int64(seconds) * 1_000_000 + Int64(micros))
    }
}
