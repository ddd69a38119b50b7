import Testing
import TelemetryWire

/// Randomized consistency checks: the hot-path parser and the general JSON parser share the scanner
/// and must agree on what is JSON; nothing may crash.
@Suite("Fuzz")
struct FuzzTests {
    static let seeds: [String] = [
        Fixture.sampleEvent,
        Fixture.start(#""version":"1.0","environment":"prod","pid":77"#),
        Fixture.metric(),
        Fixture.tag(),
        Fixture.end(#""duration_seconds":3.5"#),
        Fixture.control("executions", #""limit":5,"script":"a.sh""#),
        Fixture.event(#""message":"\u00e9\ud83d\ude00\n","extra":[{"a":null}]"#),
    ]

    static let alphabet: [[UInt8]] = [
        "{", "}", "[", "]", "\"", "\\", ":", ",", " ", "0", "1", "9", "-", "+", ".", "e", "E", "a", "u", "n",
        "t", "f", "N", "I", "\u{0}", "\t", "\r", "é", "\\u", "\\ud800", "NaN", "1e999", "null", "true", "\"v\":1,",
    ].map { Array($0.utf8) } + [[0xFF], [0xC3], [0xED, 0xA0, 0x80]]

    @Test(arguments: 0..<7)
    func mutatedLinesAgreeWithJSONValue(seedIndex: Int) {
        var rng = SplitMix64(seed: UInt64(seedIndex) &* 7919 &+ 1)
        let original = Array(Self.seeds[seedIndex].utf8)
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let position = Int.random(in: 0...bytes.count, using: &rng)
                let piece = Self.alphabet.randomElement(using: &rng)!
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes.insert(contentsOf: piece, at: position)
                case 1: if position < bytes.count { bytes.remove(at: position) }
                default:
                    let end = min(bytes.count, position + piece.count)
                    bytes.replaceSubrange(position..<end, with: piece)
                }
            }
            check(bytes)
        }
    }

    @Test func randomBytes() {
        var rng = SplitMix64(seed: 4242)
        for _ in 0..<3000 {
            let length = Int.random(in: 0...40, using: &rng)
            let bytes = (0..<length).map { _ in Self.alphabet.randomElement(using: &rng)!.first! }
            check(bytes)
        }
    }

    private func check(_ bytes: [UInt8]) {
        var wireError: WireError?
        var message: WireMessage?
        do { message = try WireParser.parse(bytes) } catch { wireError = error }
        var generic: JSONValue?
        var genericError: WireError?
        // The wire parser strips one trailing CR; do the same for the comparison.
        let trimmed = bytes.last == 0x0D ? Array(bytes.dropLast()) : bytes
        do { generic = try JSONValue.parse(trimmed) } catch { genericError = error }
        let text = String(decoding: bytes, as: UTF8.self).debugDescription
        switch genericError?.reason {
        case .invalidUTF8?:
            #expect(wireError?.reason == .invalidUTF8, "\(text)")
        case .notJSON?:
            #expect(wireError?.reason == .notJSON, "\(text): \(String(describing: wireError))")
        case .nonFiniteNumber?:
            #expect(wireError?.reason == .nonFiniteNumber || wireError?.reason == .notObject, "\(text)")
        case .invalidValue?:  // lone surrogate somewhere
            #expect(wireError != nil && wireError?.reason != .notJSON && wireError?.reason != .notObject, "\(text): \(String(describing: wireError)) \(genericError!)")
        case nil:
            if case .object = generic! {
                let syntaxReasons: [RejectReason] = [.invalidUTF8, .notJSON, .notObject, .nonFiniteNumber]
                #expect(!syntaxReasons.contains(wireError?.reason ?? .disabled), "\(text): \(String(describing: wireError))")
                if let message {
                    let kind = generic!["kind"]?.stringValue
                    switch message {
                    case .control: #expect(kind == "control")
                    case .record(let record):
                        #expect(generic!["execution_id"]?.stringValue.flatMap { ExecutionID($0) } == record.executionID)
                    }
                }
            } else {
                #expect(wireError?.reason == .notObject, "\(text)")
            }
        default:
            Issue.record("unexpected JSONValue error \(genericError!)")
        }
    }
}
