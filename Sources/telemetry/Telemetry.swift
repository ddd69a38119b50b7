import TelemetryClient
import TelemetryCore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses, documented in `telemetry --help`.
enum ExitStatus {
    static let ok: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    /// Like `systemctl status`: the daemon is not running.
    static let notRunning: Int32 = 3
}

struct UsageError: Error {
    var message: String
}

/// The parsed options of one subcommand: flags and options by long name, plus positionals.
struct ParsedOptions {
    var flags: Set<String> = []
    var values: [String: String] = [:]
    var positionals: [String] = []

    static func parse(_ arguments: [String], flags known: Set<String>, options: Set<String>) throws(UsageError) -> ParsedOptions {
        var parsed = ParsedOptions()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                parsed.positionals.append(contentsOf: arguments[index...])
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else {
                parsed.positionals.append(argument)
                continue
            }
            var name = argument
            var inlineValue: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            if name == "-h" { name = "--help" }
            if name == "-q" { name = "--quiet" }
            if known.contains(name) || name == "--help" {
                guard inlineValue == nil else { throw UsageError(message: "\(name) takes no value") }
                parsed.flags.insert(name)
            } else if options.contains(name) {
                if let inlineValue {
                    parsed.values[name] = inlineValue
                } else {
                    guard index < arguments.count else { throw UsageError(message: "\(name) needs a value") }
                    parsed.values[name] = arguments[index]
                    index += 1
                }
            } else {
                throw UsageError(message: "unknown option \(name)")
            }
        }
        return parsed
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(UsageError) -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError(message: "\(name) must be a whole number between \(range.lowerBound) and \(range.upperBound) (got \"\(text)\")")
        }
        return value
    }

    func seconds(_ name: String) throws(UsageError) -> Double? {
        guard let text = values[name] else { return nil }
        guard let value = Double(text), value > 0, value <= 3_600 else {
            throw UsageError(message: "\(name) must be a number of seconds between 0 and 3600 (got \"\(text)\")")
        }
        return value
    }
}

enum Telemetry {
    static func main(_ arguments: [String]) -> Int32 {
        guard let command = arguments.first else {
            printError(Help.overview)
            return ExitStatus.usage
        }
        let rest = Array(arguments.dropFirst())
        do {
            switch command {
            case "send": return try Commands.send(rest)
            case "status": return try Commands.status(rest)
            case "flush": return try Commands.flush(rest)
            case "executions": return try Commands.executions(rest)
            case "show": return try Commands.show(rest)
            case "test-connection": return try Commands.testConnection(rest)
            case "deadletter": return try Commands.deadLetter(rest)
            case "help", "--help", "-h":
                if let topic = rest.first, let text = Help.commands[topic] {
                    printOutput(text)
                } else {
                    printOutput(Help.overview)
                }
                return ExitStatus.ok
            case "--version", "version":
                printOutput("telemetry \(telemetrydVersion) (protocol v\(wireProtocolVersion))")
                return ExitStatus.ok
            default:
                printError("telemetry: unknown command \"\(command)\"; run `telemetry --help` for the list of commands")
                return ExitStatus.usage
            }
        } catch {
            printError("telemetry \(command): \(error.message); run `telemetry help \(command)` for usage")
            return ExitStatus.usage
        }
    }
}
