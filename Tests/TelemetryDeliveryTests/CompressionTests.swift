import Testing
@testable import TelemetryDelivery

/// A deterministic pseudo-random generator (SplitMix64): the same bytes on every run.
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

/// A JSON array of execution documents as the forwarder batches them (the shape `telemetry show --json`
/// prints): random execution ids, timestamps, durations and metric values; scripts, hosts, users,
/// operations and messages drawn from small sets, as in a real fleet. About `approximateBytes` long.
func typicalExecutionBatch(approximateBytes: Int, seed: UInt64 = 42) -> [UInt8] {
    var random = SplitMix64(seed: seed)
    func hex(_ count: Int) -> String {
        String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &random)! })
    }
    func timestamp(_ second: Int) -> String {
        let millis = Int.random(in: 0..<1000, using: &random)
        return "2026-11-\(10 + second / 86_400 % 18)T\(pad(second / 3600 % 24)):\(pad(second / 60 % 60)):\(pad(second % 60)).\(pad(millis, 3))Z"
    }
    func pad(_ value: Int, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    let scripts = ["backup.sh", "deploy.sh", "rotate-logs.sh", "nightly-report", "db-vacuum.sh", "sync-assets.sh"]
    let hosts = (1...40).map { "web-\(pad($0, 3)).eu-west.internal" }
    let operations = ["copy", "verify", "upload", "compress", "cleanup", "migrate", "notify"]
    let messages = ["ok", "done", "retrying after timeout", "quota exceeded", "checksum matches", "skipped: unchanged"]
    let statuses = ["success", "success", "success", "success", "failure", "incomplete"]
    // User ids are anonymised hashes of the account a script runs as: a handful per fleet (root, deploy, ci...).
    let users = (0..<8).map { _ in "u_" + hex(32) }

    var out = "["
    var second = 1_000_000
    var first = true
    while out.utf8.count < approximateBytes {
        second += Int.random(in: 1...600, using: &random)
        let status = statuses.randomElement(using: &random)!
        var events: [String] = []
        for _ in 0..<Int.random(in: 1...6, using: &random) {
            events.append(#"{"type":"info","operation":"\#(operations.randomElement(using: &random)!)","message":"\#(messages.randomElement(using: &random)!)","timestamp":"\#(timestamp(second))","duration_seconds":\#(Double(Int.random(in: 1...99_999, using: &random)) / 1000)}"#)
        }
        let document = #"{"schema_version":1,"timestamp":"\#(timestamp(second))","script_name":"\#(scripts.randomElement(using: &random)!)","script_version":"1.\#(Int.random(in: 0...9, using: &random)).\#(Int.random(in: 0...20, using: &random))","execution_id":"\#(hex(8))-\#(hex(4))-4\#(hex(3))-8\#(hex(3))-\#(hex(12))","user_id":"\#(users.randomElement(using: &random)!)","environment":"production","host":"\#(hosts.randomElement(using: &random)!)","status":"\#(status)","exit_code":\#(status == "success" ? 0 : 1),"duration_seconds":\#(Double(Int.random(in: 1...999_999, using: &random)) / 1000),"ended_at":"\#(timestamp(second + 30))","closed_at":"\#(timestamp(second + 31))","metrics":{"files_copied":\#(Int.random(in: 0...5000, using: &random)),"memory_usage":\#(Int.random(in: 1_000_000...900_000_000, using: &random))},"events":[\#(events.joined(separator: ","))],"errors":[],"tags":{"region":"eu-west","team":"platform"},"dropped_events":0}"#
        out += (first ? "" : ",") + document
        first = false
    }
    return Array((out + "]").utf8)
}

/// Not compressible at all.
private func randomBytes(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
    var random = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
}

/// `printf 'telemetry zstd frame without a content size\n' | zstd -c`: a frame from a streaming writer,
/// with a checksum and no content size in its header.
private let zstdFrameWithoutContentSize: [UInt8] = [
    0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x61, 0x01, 0x00, 0x74, 0x65, 0x6c, 0x65, 0x6d, 0x65, 0x74, 0x72, 0x79,
    0x20, 0x7a, 0x73, 0x74, 0x64, 0x20, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x20, 0x77, 0x69, 0x74, 0x68, 0x6f, 0x75,
    0x74, 0x20, 0x61, 0x20, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x20, 0x73, 0x69, 0x7a, 0x65, 0x0a, 0xc5,
    0x80, 0x18, 0xe9,
]

/// `gzip -c -9 greeting.txt`: a gzip member from another writer, with the FNAME field set.
private let gzipWithFileName: [UInt8] = [
    0x1f, 0x8b, 0x08, 0x08, 0xb1, 0xb0, 0x0b, 0x6b, 0x02, 0x03, 0x67, 0x72, 0x65, 0x65, 0x74, 0x69, 0x6e, 0x67,
    0x2e, 0x74, 0x78, 0x74, 0x00, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0x2b, 0xca, 0xcf, 0x55, 0x48, 0xaf,
    0xca, 0x2c, 0x50, 0x28, 0xcf, 0x2c, 0xc9, 0x50, 0x48, 0x54, 0x48, 0xcb, 0xcc, 0x49, 0x55, 0xc8, 0x4b, 0xcc,
    0x4d, 0xe5, 0x02, 0x00, 0xa7, 0xa6, 0xdf, 0xc0, 0x21, 0x00, 0x00, 0x00,
]

private func expectCompressionError(_ fragment: String, _ body: () throws -> [UInt8],
                                    sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try body()
        Issue.record("expected a CompressionError containing \"\(fragment)\"", sourceLocation: sourceLocation)
    } catch let error as CompressionError {
        #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a CompressionError, got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Payload compression (gzip, zstd)")
struct CompressionTests {
    static let inputs: [(String, [UInt8])] = [
        ("empty", []),
        ("one byte", [0]),
        ("short text", Array("hello, telemetry".utf8)),
        ("random 1 MiB", randomBytes(1 << 20)),
        ("JSON batch", typicalExecutionBatch(approximateBytes: 300_000)),
    ]

    @Test("every input survives a round trip", arguments: PayloadCompression.allCases)
    func roundTrips(_ compression: PayloadCompression) throws {
        for (name, input) in Self.inputs {
            let compressed = try PayloadCompressor.compress(input, compression)
            let restored = try PayloadCompressor.decompress(compressed, compression)
            #expect(restored == input, "\(compression) \(name)")
        }
    }

    @Test("none passes the bytes through; gzip and zstd write their magic numbers")
    func formats() throws {
        let input = Array("{\"a\":1}".utf8)
        #expect(try PayloadCompressor.compress(input, .none) == input)
        #expect(try PayloadCompressor.decompress(input, .none) == input)
        #expect(try PayloadCompressor.compress(input, .gzip).prefix(3) == [0x1f, 0x8b, 0x08])
        #expect(try PayloadCompressor.compress(input, .zstd).prefix(4) == [0x28, 0xb5, 0x2f, 0xfd])
    }

    @Test("a typical 300 KB JSON batch compresses to about 13 % (under 15 %)", arguments: [PayloadCompression.gzip, .zstd])
    func ratio(_ compression: PayloadCompression) throws {
        let batch = typicalExecutionBatch(approximateBytes: 300_000)
        #expect(batch.count >= 300_000 && batch.count < 302_000)
        let compressed = try PayloadCompressor.compress(batch, compression)
        // Measured on this batch (about 300 documents of 1 KB): gzip -6 12.7 %, zstd -3 12.8 %; gzip -9 12.0 %,
        // zstd -19 10.3 %. What remains is about 128 bytes per document: the random execution id and, above
        // all, every timestamp's milliseconds, duration and metric value, each of which also breaks a match.
        // Under 10 % holds only for documents with fewer varying fields per KB.
        #expect(compressed.count * 100 < batch.count * 15, "\(compression): \(compressed.count) of \(batch.count) bytes")
        // Random bytes grow only by the format's overhead.
        let noise = randomBytes(100_000)
        #expect(try PayloadCompressor.compress(noise, compression).count < noise.count + 100)
    }

    @Test("levels: in range round-trip (higher is not larger), out of range is an error")
    func levels() throws {
        let batch = typicalExecutionBatch(approximateBytes: 100_000)
        for compression in [PayloadCompression.gzip, .zstd] {
            let fast = try PayloadCompressor.compress(batch, compression, level: 1)
            let small = try PayloadCompressor.compress(batch, compression, level: compression == .gzip ? 9 : 19)
            #expect(try PayloadCompressor.decompress(fast, compression) == batch)
            #expect(try PayloadCompressor.decompress(small, compression) == batch)
            #expect(small.count <= fast.count)
        }
        #expect(try PayloadCompressor.decompress(PayloadCompressor.compress(batch, .gzip, level: 0), .gzip) == batch)
        expectCompressionError("gzip level 10 is out of range") { try PayloadCompressor.compress(batch, .gzip, level: 10) }
        expectCompressionError("gzip level -1 is out of range") { try PayloadCompressor.compress(batch, .gzip, level: -1) }
        expectCompressionError("zstd level 100 is out of range") { try PayloadCompressor.compress(batch, .zstd, level: 100) }
    }

    @Test("data from other writers: gzip with a file name, zstd without a content size")
    func foreignData() throws {
        #expect(try PayloadCompressor.decompress(gzipWithFileName, .gzip) == Array("hello from gzip with a file name\n".utf8))
        #expect(try PayloadCompressor.decompress(zstdFrameWithoutContentSize, .zstd)
            == Array("telemetry zstd frame without a content size\n".utf8))
    }

    @Test("concatenated gzip members and zstd frames decompress to the concatenation",
          arguments: [PayloadCompression.gzip, .zstd])
    func concatenated(_ compression: PayloadCompression) throws {
        let first = typicalExecutionBatch(approximateBytes: 20_000, seed: 1)
        let second = typicalExecutionBatch(approximateBytes: 30_000, seed: 2)
        let joined = try PayloadCompressor.compress(first, compression) + PayloadCompressor.compress(second, compression)
        #expect(try PayloadCompressor.decompress(joined, compression) == first + second)
    }

    @Test("corrupt, truncated and empty input are errors with a message")
    func corrupt() throws {
        let batch = typicalExecutionBatch(approximateBytes: 50_000)
        let gzip = try PayloadCompressor.compress(batch, .gzip)
        let zstd = try PayloadCompressor.compress(batch, .zstd)
        expectCompressionError("not valid gzip") { try PayloadCompressor.decompress(Array("not gzip at all".utf8), .gzip) }
        expectCompressionError("truncated") { try PayloadCompressor.decompress(Array(gzip.prefix(gzip.count / 2)), .gzip) }
        expectCompressionError("empty") { try PayloadCompressor.decompress([], .gzip) }
        var flipped = gzip
        flipped[gzip.count - 6] ^= 0xFF  // inside the CRC-32 trailer
        expectCompressionError("not valid gzip") { try PayloadCompressor.decompress(flipped, .gzip) }

        expectCompressionError("not valid zstd") { try PayloadCompressor.decompress(Array("not zstd at all".utf8), .zstd) }
        expectCompressionError("truncated") { try PayloadCompressor.decompress(Array(zstd.prefix(zstd.count / 2)), .zstd) }
        expectCompressionError("empty") { try PayloadCompressor.decompress([], .zstd) }
    }

    @Test("decompression stops at the limit instead of filling memory", arguments: [PayloadCompression.gzip, .zstd])
    func limit(_ compression: PayloadCompression) throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let bomb = try PayloadCompressor.compress(zeros, compression, level: compression == .gzip ? 9 : 19)
        #expect(bomb.count < 20_000)
        expectCompressionError("more than 1000000 bytes") { try PayloadCompressor.decompress(bomb, compression, limit: 1_000_000) }
        #expect(try PayloadCompressor.decompress(bomb, compression, limit: 4 << 20) == zeros)
    }

    @Test("compressors are independent: concurrent use from several threads")
    func concurrent() async throws {
        let batch = typicalExecutionBatch(approximateBytes: 200_000)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let compression: PayloadCompression = index % 2 == 0 ? .gzip : .zstd
                    let compressed = try PayloadCompressor.compress(batch, compression)
                    return try PayloadCompressor.decompress(compressed, compression) == batch
                }
            }
            for try await same in group { #expect(same) }
        }
    }
}
