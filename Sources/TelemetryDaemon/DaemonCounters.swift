import NIOConcurrencyHelpers
import TelemetryCore
import TelemetryWire

/// Counters shared by the event loops and the writer thread. Updated once per batch, not per line.
final class DaemonCounters: Sendable {
    struct Snapshot: Sendable {
        var linesAccepted = 0
        var bytesRead = 0
        var rejected: [RejectReason: Int] = [:]
        var openExecutions = 0
        var documentsStored = 0
        var eventsDropped = 0
        var commits = 0
        var commitFailures = 0
        var lastCommitAt: Timestamp?
        var lastCommitError: String?
        var connectionsCurrent = 0
        var connectionsTotal = 0
        var connectionsRefused = 0

        var rejectedTotal: Int { rejected.values.reduce(0, +) }
    }

    private let state = NIOLockedValueBox(Snapshot())

    var snapshot: Snapshot { state.withLockedValue { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        state.withLockedValue { body(&$0) }
    }

    func reject(_ reason: RejectReason, count: Int = 1) {
        state.withLockedValue { $0.rejected[reason, default: 0] += count }
    }
}
