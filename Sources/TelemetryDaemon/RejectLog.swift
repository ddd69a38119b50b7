import Logging
import NIOConcurrencyHelpers
import TelemetryCore
import TelemetryWire

/// Logs rejected lines so an operator can find the misbehaving script, without letting a flood of bad
/// input flood the journal: at most `burst` lines per window, then one summary of what was suppressed.
final class RejectLog: Sendable {
    private struct Window {
        var startedAt: Int64 = 0
        var logged = 0
        var suppressed = 0
    }

    let logger: Logger
    private let burst: Int
    private let windowMicroseconds: Int64
    private let window = NIOLockedValueBox(Window())

    init(logger: Logger, burst: Int = 10, windowSeconds: Int = 60) {
        self.logger = logger
        self.burst = burst
        self.windowMicroseconds = Int64(windowSeconds) * 1_000_000
    }

    func record(_ error: WireError, line: Int, sender: SenderIdentity, excerpt: String?) {
        let now = Timestamp.now().microseconds
        let (shouldLog, suppressedBefore) = window.withLockedValue { window -> (Bool, Int) in
            var suppressed = 0
            if now - window.startedAt >= windowMicroseconds {
                suppressed = window.suppressed
                window = Window(startedAt: now)
            }
            if window.logged < burst {
                window.logged += 1
                return (true, suppressed)
            }
            window.suppressed += 1
            return (false, suppressed)
        }
        if suppressedBefore > 0 {
            logger.warning("suppressed \(suppressedBefore) further rejected-line messages in the last \(windowMicroseconds / 1_000_000)s; see telemetry status for counts by reason")
        }
        guard shouldLog else { return }
        var metadata: Logger.Metadata = [
            "reason": "\(error.reason.rawValue)",
            "line": "\(line)",
            "sender_pid": "\(sender.pid)",
        ]
        if let excerpt { metadata["excerpt"] = "\(excerpt)" }
        logger.warning("rejected line \(line) from pid \(sender.pid): \(error.detail)", metadata: metadata)
    }
}
