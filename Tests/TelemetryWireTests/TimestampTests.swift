import Testing
import TelemetryWire

@Suite("Timestamp RFC 3339")
struct TimestampTests {
    @Test(arguments: [
        (0 as Int64, "1970-01-01T00:00:00.000Z"),
        (1_704_110_400_000_000, "2024-01-01T12:00:00.000Z"),
        (1_704_110_400_123_999, "2024-01-01T12:00:00.123Z"),  // truncated, not rounded
        (951_782_400_000_000, "2000-02-29T00:00:00.000Z"),
        (1_709_164_800_000_000, "2024-02-29T00:00:00.000Z"),
        (946_684_800_000_000, "2000-01-01T00:00:00.000Z"),
        (4_102_444_799_999_000, "2099-12-31T23:59:59.999Z"),
        (4_102_444_800_000_000, "2100-01-01T00:00:00.000Z"),
        (-1_000, "1969-12-31T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-62_135_596_800_000_000, "0001-01-01T00:00:00.000Z"),
        (253_402_300_799_999_000, "9999-12-31T23:59:59.999Z"),
        (253_402_300_800_000_000, "10000-01-01T00:00:00.000Z"),  // past the four-digit fast path
        (-62_135_596_800_000_001, "0000-12-31T23:59:59.999Z"),
    ])
    func formats(_ microseconds: Int64, _ text: String) {
        #expect(Timestamp(microseconds: microseconds).rfc3339 == text)
    }

    @Test(arguments: [
        ("2099-12-31T23:59:59.999Z", 4_102_444_799_999_000 as Int64),
        ("2000-02-29T00:00:00Z", 951_782_400_000_000),
        ("2024-02-29T12:00:00+12:00", 1_709_164_800_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000001Z", 1),
        ("1969-12-31T23:00:00-01:00", 0),
        ("2024-06-30T23:59:59.999999999-23:59", 1_719_878_339_999_999),
        ("2024-01-01t00:00:00z", 1_704_067_200_000_000),
    ])
    func parses(_ text: String, _ microseconds: Int64) {
        #expect(Timestamp.parseRFC3339(text) == Timestamp(microseconds: microseconds))
        #expect(Timestamp.parseRFC3339(text[...]) == Timestamp(microseconds: microseconds))  // Substring
    }

    @Test(arguments: [
        "", "2024-01-01", "2024-01-01T12:00Z", "2024-01-01T12:00:00", "2024-1-01T12:00:00Z", "2024-01-01T12:00:00.Z",
        "2024-01-01T12:00:00.1234567890Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
        "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T12:60:00Z",
        "2024-01-01T12:00:60Z", "2024-01-01T12:00:00+24:00", "2024-01-01T12:00:00+02", "2024-01-01T12:00:00+0200",
        "2024-01-01T12:00:00Z ", " 2024-01-01T12:00:00Z", "2024-01-01 12:00:00Z", "２０２４-01-01T12:00:00Z",
        "2024-01-01T12:00:00GMT", "+2024-01-01T12:00:00Z",
    ])
    func refuses(_ text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil)
    }

    @Test func roundTripsEveryDayFrom1999To2101() {
        var day = Timestamp.parseRFC3339("1999-01-01T00:00:00Z")!.microseconds
        let stop = Timestamp.parseRFC3339("2101-01-01T00:00:00Z")!.microseconds
        var days = 0
        var previousText = ""
        while day < stop {
            // A different time of day each day, with milliseconds.
            let micros = day + Int64(days % 86_400) * 1_000_000 + Int64(days % 1000) * 1000
            let text = Timestamp(microseconds: micros).rfc3339
            #expect(Timestamp.parseRFC3339(text) == Timestamp(microseconds: micros), "\(text)")
            #expect(text > previousText)
            previousText = text
            day += 86_400_000_000
            days += 1
        }
        #expect(days == 37_255)  // 102 years, 25 of them leap years (2000 is, 2100 is not)
    }

    @Test func leapYears() {
        for year in [2000, 2004, 2024, 2096, 2400] {
            #expect(Timestamp.parseRFC3339("\(year)-02-29T00:00:00Z") != nil, "\(year)")
        }
        for year in [1900, 2001, 2023, 2100] {
            #expect(Timestamp.parseRFC3339("\(year)-02-29T00:00:00Z") == nil, "\(year)")
        }
        let leapDay = Timestamp.parseRFC3339("2024-02-29T23:59:59.999Z")!
        #expect(Timestamp(microseconds: leapDay.microseconds + 1000).rfc3339 == "2024-03-01T00:00:00.000Z")
    }

    @Test func acceptedRange() {
        #expect(Timestamp.earliestAccepted.rfc3339 == "2000-01-01T00:00:00.000Z")
        #expect(Timestamp.latestAcceptedExclusive.rfc3339 == "2100-01-01T00:00:00.000Z")
    }

    @Test func nowIsPlausible() {
        let now = Timestamp.now()
        #expect(now > Timestamp.parseRFC3339("2024-01-01T00:00:00Z")!)
        #expect(now < Timestamp.latestAcceptedExclusive)
    }

    @Test func executionIDTextForms() {
        let id = ExecutionID("6F1C2F8E-2b0a-4c1e-9d7a-3e5b8c9d0a1b")
        #expect(id == ExecutionID(high: 0x6f1c_2f8e_2b0a_4c1e, low: 0x9d7a_3e5b_8c9d_0a1b))
        #expect(id?.description == "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b")
        for bad in ["", "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1", "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1bb",
                    "6f1c2f8e_2b0a-4c1e-9d7a-3e5b8c9d0a1b", "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1G",
                    "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1:", "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1/"] {
            #expect(ExecutionID(bad) == nil, "\(bad)")
        }
        let all = ExecutionID("ffffffff-ffff-ffff-ffff-ffffffffffff")
        #expect(all == ExecutionID(high: .max, low: .max))
    }
}
