import Testing
@testable import TelemetryWire

/// The canonical-event fast path may only accept what the general path accepts, with the same result.
@Suite("Canonical event fast path")
struct CanonicalEventTests {
    static let prefix = #"{"v":1,"kind":"event","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":"#

    static let canonical = [
        prefix + #"1732870000.123456,"level":"info","operation":"deploy","message":"Deploying auth-service","duration_seconds":1.25}"#,
        prefix + #"1732870000,"level":"error","operation":"db","message":"failed: \"quoted\" \\ \n \u00e9 \ud83d\ude00"}"#,
        prefix + #"1732870000.5,"level":"warning","operation":"o"}"#,
        prefix + #"1732870000.5,"level":"debug","operation":"näh ✓","duration_seconds":0}"#,
        prefix + #"1732870000.5,"level":"success","operation":"o","message":"","duration_seconds":0.0}"#,
        prefix + #"1732870000.123456789,"level":"info","operation":"o","duration_seconds":0.1000000000000000055511}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":123456789012345.5}"#,
    ]

    /// The result of one path as comparable values, or the general path's error.
    private static func general(_ bytes: [UInt8]) -> Result<WireRecord?, WireError> {
        bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(WireError) -> WireRecord? in
                switch try WireParser.parseGeneral(buffer.baseAddress!, buffer.count) {
                case .event(let event): return event.record
                case .record, .control: return nil
                }
            }
        }
    }

    private static func fast(_ bytes: [UInt8]) -> WireRecord? {
        bytes.withUnsafeBufferPointer { CanonicalEvent.parse($0.baseAddress!, $0.count)?.record }
    }

    @Test(arguments: canonical)
    func acceptsTheCanonicalShapeLikeTheGeneralPath(_ line: String) throws {
        let bytes = Array(line.utf8)
        let fast = try #require(Self.fast(bytes), "the fast path should take \(line)")
        #expect(try Self.general(bytes).get() == fast)
    }

    @Test(arguments: [
        // Other orders, whitespace, other kinds, strings for ts, escapes in names: all left to the general path.
        #"{"kind":"event","v":1,"execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":1,"level":"info","operation":"o"}"#,
        prefix + #" 1732870000,"level":"info","operation":"o"}"#,
        prefix + #""2024-11-29T08:46:40Z","level":"info","operation":"o"}"#,
        prefix + #"1732870000,"level":"in\u0066o","operation":"o"}"#,
        prefix + #"1732870000,"level":"info","operation":"o","message":"m","extra":1}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":1,"message":"m"}"#,
        prefix + #"1732870000,"level":"fatal","operation":"o"}"#,
        prefix + #"1732870000,"level":"info","operation":""}"#,
        prefix + #"1732870000,"level":"info","operation":"o","message":"\ud800"}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":-1}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":1e999}"#,
        prefix + #"99999999999999,"level":"info","operation":"o"}"#,
        prefix + #"01,"level":"info","operation":"o"}"#,
        prefix + #"1732870000,"level":"info","operation":"o"} "#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":1234567890123456}"#,
        prefix + #"1732870000.,"level":"info","operation":"o"}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":00.5}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":1e2}"#,
        prefix + #"1.7e9,"level":"info","operation":"o","message":"exponent ts"}"#,
        prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":-0.0}"#,
    ])
    func leavesEverythingElseToTheGeneralPath(_ line: String) {
        #expect(Self.fast(Array(line.utf8)) == nil, "\(line)")
    }

    @Test func operationLengthLimitIsTheGeneralPathsLimit() throws {
        let at = Array((Self.prefix + #"1732870000,"level":"info","operation":""# + String(repeating: "o", count: 256) + #""}"#).utf8)
        let over = Array((Self.prefix + #"1732870000,"level":"info","operation":""# + String(repeating: "o", count: 257) + #""}"#).utf8)
        #expect(Self.fast(at) != nil)
        #expect(Self.fast(over) == nil)
        #expect(throws: WireError.self) { try Self.general(over).get() }
    }

    /// Random edits of canonical lines: whenever the fast path accepts one, the general path accepts it too,
    /// with the same record.
    @Test func mutationsNeverMakeThePathsDisagree() throws {
        var random = SplitMix64(seed: 0x7E1E_3E7E)
        let seeds = Self.canonical + [Self.prefix + #"1.7e9,"level":"info","operation":"o","duration_seconds":3e2}"#,
                                      Self.prefix + #"1732870000,"level":"info","operation":"o","duration_seconds":-0.0}"#]
        let alphabet = Array(#"{}[]":,.-+0123456789eEabcdefinfotrulsv\u "#.utf8) + [0xC3, 0xA9]
        var fastAccepted = 0
        for _ in 0..<60_000 {
            var bytes = Array(seeds[Int(random.next() % UInt64(seeds.count))].utf8)
            for _ in 0...(random.next() % 3) {
                let position = Int(random.next() % UInt64(bytes.count))
                let byte = alphabet[Int(random.next() % UInt64(alphabet.count))]
                switch random.next() % 3 {
                case 0: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                default: bytes.remove(at: position)
                }
            }
            guard !bytes.isEmpty, bytes.withUnsafeBytes({ UTF8Validation.firstInvalidOffset($0) }) == nil
            else { continue }
            guard let fast = Self.fast(bytes) else { continue }
            fastAccepted += 1
            let general = Self.general(bytes)
            #expect(try general.get() == fast, "\(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(fastAccepted > 1_000)
    }
}
