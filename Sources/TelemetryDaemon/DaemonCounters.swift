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
        /// An fsync failed: nothing committed since is confirmed until a restart (`StoreSyncer`).
        var durabilityFailure: String?
        var connectionsCurrent = 0
        var connectionsTotal = 0
        var connectionsRefused = 0

        var rejectedTotal: Int { rejected.values.reduce(0, +) }
        /// Why the store cannot take or confirm data now, if it cannot: what status, STATUS=, /readyz and the
        /// spool take-in look at.
        var storeError: String? { durabilityFailure ?? lastCommitError }
    }

    private let state = NIOLockedValueBox(Snapshot())

    var snapshot: Snapshot { state.withLockedValue { $0 } }

    /// Counts a new connection, unless `limit` are open already: then it counts a refusal and returns false.
    /// One lock for the check and the count, so that connections accepted at once cannot all pass the check.
    func admitConnection(limit: Int) -> Bool {
        state.withLockedValue {
            guard $0.connectionsCurrent < limit else {
                $0.connectionsRefused += 1
                return false
            }
            $0.connectionsCurrent += 1
            $0.connectionsTotal += 1
            return true
        }
    }

    func update(_ body: (inout Snapshot) -> Void) {
        state.withLockedValue { body(&$0) }
    }

    func reject(_ reason: RejectReason, count: Int = 1) {
        state.withLockedValue { $0.rejected[reason, default: 0] += count }
    }
}
