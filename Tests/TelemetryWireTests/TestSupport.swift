import TelemetryWire

/// Shared fixtures for the TelemetryWire tests.
enum Fixture {
    static let uuid = "6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b"
    static let executionID = ExecutionID(uuid)!
    /// 1732870000.5 as used by `data(...)`.
    static let ts = Timestamp(microseconds: 1_732_870_000_500_000)

    /// The sample event line from the protocol documentation.
    static let sampleEvent = #"{"v":1,"kind":"event","execution_id":"6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b","ts":1732870000.123456,"level":"info","operation":"deployment","message":"Deploying service auth-service to cluster production-eu-1, step 3 of 12: rolling update","duration_seconds":1.25}"#

    /// A data line of `kind` with the common fields followed by `rest` (raw JSON members).
    static func data(_ kind: String, _ rest: String = "") -> String {
        #"{"v":1,"kind":"\#(kind)","execution_id":"\#(uuid)","ts":1732870000.5"# + (rest.isEmpty ? "" : ",") + rest + "}"
    }

    static func start(_ rest: String = "") -> String { data("start", #""script":"deploy.sh""# + comma(rest)) }
    static func event(_ rest: String = "") -> String { data("event", #""level":"info","operation":"deploy""# + comma(rest)) }
    static func metric(_ rest: String = "") -> String { data("metric", #""name":"rows","value":5"# + comma(rest)) }
    static func tag(_ rest: String = "") -> String { data("tag", #""key":"region","value":"eu""# + comma(rest)) }
    static func end(_ rest: String = "") -> String { data("end", #""exit_code":0"# + comma(rest)) }
    static func control(_ request: String = "status", _ rest: String = "") -> String {
        #"{"v":1,"kind":"control","request":"\#(request)""# + comma(rest) + "}"
    }

    private static func comma(_ rest: String) -> String { rest.isEmpty ? "" : "," + rest }

    static func parse(_ line: String) throws(WireError) -> WireMessage {
        try WireParser.parse(line)
    }

    static func record(_ line: String) throws(WireError) -> WireRecord? {
        if case .record(let record) = try WireParser.parse(line) { return record }
        return nil
    }
}

/// Deterministic PRNG for the framing tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
