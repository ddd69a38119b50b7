import ArgumentParser
import Logging
import TelemetryCore
import TelemetryDaemon
import TelemetryDelivery
import TelemetryStore

#if canImport(Glibc)
import Glibc
#endif

/// `telemetryd`: the collector daemon. Settings come from flags, then TELEMETRY_* environment variables,
/// then the configuration file (KEY=VALUE, the same file systemd reads as EnvironmentFile=).
@main
struct TelemetrydCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telemetryd",
        abstract: "Collect telemetry from deployment and operations scripts.",
        discussion: """
        Listens on a Unix socket for line-delimited JSON events (docs/protocol.md), aggregates them into one
        document per script execution and keeps them durably in a local SQLite store under the state directory.
        Every setting is a TELEMETRY_* key; config/telemetryd.conf documents each one and its default.
        Precedence: command-line flags, then the environment, then the configuration file.
        """,
        version: "telemetryd \(telemetrydVersion)")

    static let defaultConfigPath = "/etc/telemetryd/telemetryd.conf"

    @Option(name: .long, help: ArgumentHelp("Configuration file (KEY=VALUE lines).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Unix socket to listen on (TELEMETRY_SOCKET).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Directory of the store and the anonymization key (TELEMETRY_STATE_DIR).", valueName: "dir"))
    var stateDir: String?

    @Flag(name: .customLong("check-config"), help: "Check the configuration, print every problem with its key and line, and exit (non-zero when invalid).")
    var checkConfig = false

    @Flag(name: .customLong("print-default-config"), help: "Print the documented configuration file with every key at its default (what config/telemetryd.conf holds) and exit.")
    var printDefaultConfig = false

    func run() throws {
        if printDefaultConfig {
            print(DaemonConfiguration.documentedFileText(), terminator: "")
            return
        }
        var flags: [String: String] = [:]
        if let socket { flags["TELEMETRY_SOCKET"] = socket }
        if let stateDir { flags["TELEMETRY_STATE_DIR"] = stateDir }

        var problems: [ConfigurationProblem] = []
        var file: ConfigurationFile?
        let path = config ?? Self.defaultConfigPath
        switch ConfigurationLoader.readFile(at: path) {
        case .success(let contents):
            file = contents
        case .failure(let problem):
            if !(problem.isFileNotFound && config == nil) { problems.append(problem) }
        }
        let result = ConfigurationLoader.load(flags: flags, environment: Self.environment(), file: file)
        problems.append(contentsOf: result.problems)
        if result.isValid {
            do {
                _ = try Self.delivery(from: result.configuration)
            } catch {
                problems.append(ConfigurationProblem(severity: .error, key: nil, source: .environment, message: "\(error)"))
            }
        }
        let valid = problems.allSatisfy { $0.severity != .error }

        if checkConfig {
            for problem in problems { printError(problem.description) }
            if valid {
                print("telemetryd: configuration OK (\(file.map { "file \($0.path)" } ?? "no configuration file, defaults and environment"))")
                print(result.configuration.redactedDescription)
                return
            }
            printError("telemetryd: configuration has \(problems.filter { $0.severity == .error }.count) error(s); the daemon would not start")
            throw ExitCode(1)
        }

        for problem in problems where problem.severity == .warning { printError("telemetryd: \(problem)") }
        guard valid else {
            for problem in problems where problem.severity == .error { printError("telemetryd: \(problem)") }
            printError("telemetryd: not starting: fix the configuration (check it with `telemetryd --check-config`)")
            throw ExitCode(1)
        }

        let configuration = result.configuration
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: configuration.logLevel.rawValue) ?? .info
            return handler
        }
        let logger = Logger(label: "telemetryd")
        var settings = Self.settings(from: configuration)
        do {
            settings.delivery = try Self.delivery(from: configuration)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let daemon = Daemon(settings: settings, logger: logger)
        do {
            try daemon.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
    }

    static func settings(from configuration: DaemonConfiguration) -> DaemonSettings {
        var settings = DaemonSettings(socketPath: configuration.socketPath, stateDirectory: configuration.stateDirectory)
        settings.enabled = configuration.enabled
        settings.endpoint = configuration.endpoint
        settings.maxLineBytes = configuration.maxLineBytes
        settings.executionTimeoutSeconds = configuration.executionTimeoutSeconds
        settings.maxEventsPerExecution = configuration.maxEventsPerExecution
        settings.commitIntervalMilliseconds = configuration.commitIntervalMilliseconds
        settings.storeSync = StoreSyncMode(rawValue: configuration.storeSync.rawValue) ?? .full
        settings.maxConnections = configuration.maxConnections
        settings.retentionDays = configuration.retentionDays
        settings.hostname = configuration.hostname
        settings.spoolDirectory = configuration.spoolDirectory
        settings.maxStoreBytes = configuration.spoolMaxMegabytes << 20
        settings.shutdownTimeoutSeconds = Double(configuration.shutdownTimeoutSeconds)
        settings.metricsListen = configuration.metricsListen
        settings.metricLabelLimits = MetricLabelLimits(maxScripts: configuration.metricsMaxScripts,
                                                       maxEnvironments: configuration.metricsMaxEnvironments,
                                                       maxMetricNames: configuration.metricsMaxNames)
        return settings
    }

    struct DeliverySetupError: Error, CustomStringConvertible {
        var description: String
    }

    /// Forwarding settings, or nil without TELEMETRY_ENDPOINT. Files named by the configuration must be readable
    /// now: a typo should stop the start, not fail every delivery later.
    static func delivery(from configuration: DaemonConfiguration) throws -> DeliverySettings? {
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
    static func readSecret(_ path: String) throws -> String {
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

    static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if text.hasPrefix("TELEMETRY_"), let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

func printError(_ message: String) {
    var line = Array(message.utf8)
    line.append(UInt8(ascii: "\n"))
    line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}
