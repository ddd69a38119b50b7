import ArgumentParser
import Logging
import TelemetryCore
import TelemetryDaemon
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

    func run() throws {
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
        let daemon = Daemon(settings: Self.settings(from: configuration), logger: logger)
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
        return settings
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
