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

enum Telemetry {
    static func main(_ arguments: ArgumentList) -> Int32 {
        guard let command = arguments.first else {
            printError(Help.overview)
            return ExitStatus.usage
        }
        let rest = arguments.dropFirst()
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
