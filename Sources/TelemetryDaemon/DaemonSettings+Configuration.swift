import TelemetryCore
import TelemetryStore
import TelemetryDelivery

#if canImport(Glibc)
import Glibc
#endif

/// DaemonSettings from a loaded configuration: at start, and again at each reload.
extension DaemonSettings {
    public init(configuration: DaemonConfiguration) {
        self.init(socketPath: configuration.socketPath, stateDirectory: configuration.stateDirectory)
        self.enabled = configuration.enabled
        self.endpoint = configuration.endpoint
        self.maxLineBytes = configuration.maxLineBytes
        self.executionTimeoutSeconds = configuration.executionTimeoutSeconds
        self.maxEventsPerExecution = configuration.maxEventsPerExecution
        self.commitIntervalMilliseconds = configuration.commitIntervalMilliseconds
        self.storeSync = StoreSyncMode(rawValue: configuration.storeSync.rawValue) ?? .full
        self.maxConnections = configuration.maxConnections
        self.retentionDays = configuration.retentionDays
        self.hostname = configuration.hostname
        self.spoolDirectory = configuration.spoolDirectory
        self.maxStoreBytes = configuration.spoolMaxMegabytes << 20
        self.shutdownTimeoutSeconds = Double(configuration.shutdownTimeoutSeconds)
        self.journalEvents = configuration.journalEvents
        self.metricsListen = configuration.metricsListen
        self.metricLabelLimits = MetricLabelLimits(maxScripts: configuration.metricsMaxScripts,
                                                   maxEnvironments: configuration.metricsMaxEnvironments,
                                                   maxMetricNames: configuration.metricsMaxNames)
    }

    public struct DeliverySetupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Forwarding settings, or nil without TELEMETRY_ENDPOINT. Files named by the configuration must be readable
    /// now: a typo should stop the start, not fail every delivery later.
    public static func delivery(from configuration: DaemonConfiguration) throws -> DeliverySettings? {
        guard !configuration.endpoint.isEmpty else { return nil }
        for (key, path) in [("TELEMETRY_CA_FILE", configuration.caFile), ("TELEMETRY_CLIENT_CERT", configuration.clientCertificate),
                            ("TELEMETRY_CLIENT_KEY", configuration.clientKey), ("TELEMETRY_API_KEY_FILE", configuration.apiKeyFile)]
        where !path.isEmpty && access(path, R_OK) != 0 {
            throw DeliverySetupError(description: "\(key)=\(path) cannot be read: \(String(cString: strerror(errno))); fix the path or its permissions")
        }
        var apiKey = configuration.apiKey
        if !configuration.apiKeyFile.isEmpty {
            apiKey = try readSecret(configuration.apiKeyFile)
        }
        var delivery = DeliverySettings(endpoint: configuration.endpoint, http: HTTPSettings(
            caFile: configuration.caFile.isEmpty ? nil : configuration.caFile,
            clientCertificate: configuration.clientCertificate.isEmpty ? nil : configuration.clientCertificate,
            clientKey: configuration.clientKey.isEmpty ? nil : configuration.clientKey,
            connectTimeoutSeconds: Double(configuration.connectTimeoutSeconds),
            requestTimeoutSeconds: Double(configuration.requestTimeoutSeconds),
            userAgent: "telemetryd/\(telemetrydVersion)"))
        delivery.format = PayloadFormat(rawValue: configuration.format.rawValue) ?? .json
        delivery.compression = PayloadCompression(rawValue: configuration.compression.rawValue) ?? .gzip
        delivery.apiKey = apiKey.isEmpty ? nil : apiKey
        delivery.batchSize = configuration.batchSize
        delivery.batchMaxBytes = configuration.batchMaxBytes
        delivery.flushIntervalSeconds = Double(configuration.flushIntervalSeconds)
        delivery.retryAttempts = configuration.retryAttempts
        delivery.maxBackoffSeconds = Double(configuration.retryMaxBackoffSeconds)
        return delivery
    }

    /// The API key file's content without surrounding whitespace; its content never appears in an error.
    public static func readSecret(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw DeliverySetupError(description: "TELEMETRY_API_KEY_FILE=\(path) cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while bytes.count < 65_536 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let trimmed = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == " " || $0 == "\t" }).first.map(String.init) ?? ""
        guard !trimmed.isEmpty else {
            throw DeliverySetupError(description: "TELEMETRY_API_KEY_FILE=\(path) is empty")
        }
        return trimmed
    }
}
