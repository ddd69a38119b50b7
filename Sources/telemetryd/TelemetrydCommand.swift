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

        let source = ConfigurationSource(flags: flags, environment: Self.environment(),
                                         filePath: config ?? Self.defaultConfigPath, filePathIsExplicit: config != nil)
        let (result, file) = source.load()
        var problems = result.problems
        if result.isValid {
            do {
                _ = try DaemonSettings.delivery(from: result.configuration)
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
        let level = LogLevelControl(Logger.Level(rawValue: configuration.logLevel.rawValue) ?? .info)
        let destination = LogDestination.resolve(configuration.logTarget)
        LoggingSystem.bootstrap { label in
            DaemonLogHandler(label: label, destination: destination, level: level)
        }
        let logger = Logger(label: "telemetryd")
        var settings = DaemonSettings(configuration: configuration)
        do {
            settings.delivery = try DaemonSettings.delivery(from: configuration)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let reload = ReloadContext(source: source, configuration: configuration, file: file, logLevel: level)
        let daemon = Daemon(settings: settings, logger: logger, reload: reload)
        do {
            try daemon.run()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
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
