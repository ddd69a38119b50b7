#if canImport(Glibc)
import Glibc
#endif

/// Which wire format the endpoint speaks (TELEMETRY_FORMAT).
public enum PayloadFormat: String, Sendable, CaseIterable {
    /// A JSON array of execution documents, POSTed to TELEMETRY_ENDPOINT (docs/delivery.md).
    case json
    /// OTLP/HTTP JSON: events as logs to {endpoint}/v1/logs, execution metrics to {endpoint}/v1/metrics.
    case otlp
}

/// Everything the forwarder needs, already validated by the configuration loader.
public struct DeliverySettings: Sendable {
    public var endpoint: String
    public var format: PayloadFormat = .json
    public var compression: PayloadCompression = .gzip
    /// Sent as `Authorization: Bearer …`; never logged or shown.
    public var apiKey: String?
    public var batchSize = 100
    public var batchMaxBytes = 5 << 20
    public var flushIntervalSeconds: Double = 60
    /// Extra attempts within one delivery cycle, after the first.
    public var retryAttempts = 3
    public var baseBackoffSeconds: Double = 0.5
    /// Longest wait between cycles during an outage.
    public var maxBackoffSeconds: Double = 300
    public var http: HTTPSettings

    public init(endpoint: String, http: HTTPSettings) {
        self.endpoint = endpoint
        self.http = http
    }
}

/// Random version-4 UUIDs for batch ids (Idempotency-Key) and probes.
public enum UUIDv4 {
    public static func generate() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let source = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if source >= 0 {
            _ = bytes.withUnsafeMutableBytes { read(source, $0.baseAddress, 16) }
            close(source)
        } else {
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
