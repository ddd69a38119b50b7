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
///
/// The command line is parsed by hand: swift-argument-parser would bring FoundationEssentials into a daemon
/// that otherwise has no Foundation, and its code into the resident memory of every host.
@main
struct TelemetrydCommand {
    static let defaultConfigPath = "/etc/telemetryd/telemetryd.conf"

    static let helpText = """
        telemetryd — collect telemetry from deployment and operations scripts

        Usage: telemetryd [--config FILE] [--socket PATH] [--state-dir DIR]
               telemetryd --check-config [--config FILE] [...]
               telemetryd --print-default-config | --version | --help

        Listens on a Unix socket for line-delimited JSON events (docs/protocol.md), aggregates them into one
        document per script execution and keeps them durably in a local SQLite store under the state directory;
        with TELEMETRY_ENDPOINT it forwards them over HTTPS. Every setting is a TELEMETRY_* key;
        config/telemetryd.conf documents each one and its default. Precedence: command-line flags, then the
        environment, then the configuration file.

        Options:
          --config FILE           Configuration file (KEY=VALUE lines; default /etc/telemetryd/telemetryd.conf, optional).
          --socket PATH           Unix socket to listen on (TELEMETRY_SOCKET).
          --state-dir DIR         Directory of the store and the anonymization key (TELEMETRY_STATE_DIR).
          --check-config          Check the configuration, print every problem with its key and line, and exit
                                  (non-zero when invalid).
          --print-default-config  Print the documented configuration file with every key at its default and exit.
          --version               Print the version and exit.
          -h, --help              Print this help and exit.

        Signals: SIGTERM/SIGINT drain and stop, SIGHUP reloads the configuration file (docs/systemd.md).
        """

    var config: String?
    var socket: String?
    var stateDir: String?
    var checkConfig = false
    var printDefaultConfig = false

    enum Parsed {
        case run(TelemetrydCommand)
        case help
        case version
        case usage(String)
    }

    /// `--option VALUE` and `--option=VALUE` both work; a value may not be empty.
    static func parse(_ arguments: [String]) -> Parsed {
        var command = TelemetrydCommand()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value(_ what: String) -> String? {
                if let inlineValue { return inlineValue.isEmpty ? nil : inlineValue }
                guard index < arguments.count, !arguments[index].hasPrefix("--") || arguments[index] == "--" else { return nil }
                defer { index += 1 }
                return arguments[index].isEmpty ? nil : arguments[index]
            }
            switch name {
            case "-h", "--help": return .help
            case "--version": return .version
            case "--check-config", "--print-default-config":
                if inlineValue != nil { return .usage("\(name) takes no value") }
                if name == "--check-config" { command.checkConfig = true } else { command.printDefaultConfig = true }
            case "--config", "--socket", "--state-dir":
                let what = name == "--config" ? "a file path" : name == "--socket" ? "a socket path" : "a directory"
                guard let given = value(what) else { return .usage("\(name) needs a value: \(what)") }
                switch name {
                case "--config": command.config = given
                case "--socket": command.socket = given
                default: command.stateDir = given
                }
            default:
                return .usage(argument.hasPrefix("-") ? "unknown option '\(name)'" : "unexpected argument '\(argument)'")
            }
        }
        return .run(command)
    }

    static func main() {
        switch parse(Array(CommandLine.arguments.dropFirst())) {
        case .help:
            print(helpText)
            exit(0)
        case .version:
            print("telemetryd \(telemetrydVersion)")
            exit(0)
        case .usage(let message):
            printError("telemetryd: \(message); see `telemetryd --help`")
            exit(2)
        case .run(let command):
            exit(command.run())
        }
    }

    func run() -> Int32 {
        if printDefaultConfig {
            print(DaemonConfiguration.documentedFileText(), terminator: "")
            return 0
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
                return 0
            }
            printError("telemetryd: configuration has \(problems.filter { $0.severity == .error }.count) error(s); the daemon would not start")
            return 1
        }

        for problem in problems where problem.severity == .warning { printError("telemetryd: \(problem)") }
        guard valid else {
            for problem in problems where problem.severity == .error { printError("telemetryd: \(problem)") }
            printError("telemetryd: not starting: fix the configuration (check it with `telemetryd --check-config`)")
            return 1
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
            return 1
        }
        let reload = ReloadContext(source: source, configuration: configuration, file: file, logLevel: level)
        let daemon = Daemon(settings: settings, logger: logger, reload: reload)
        do {
            try daemon.run()
        } catch {
            logger.critical("\(error)")
            return 1
        }
        return 0
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
