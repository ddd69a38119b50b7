/// The commit failures since the last successful commit, and when to say so in the log.
///
/// A failing store (a full disk) fails the writer's retries (every 0.2 to 1 s, and at every commit interval while
/// lines arrive) for as long as it lasts. One error line per retry would bury everything else in the journal, so
/// the first failure is logged (with its MESSAGE_ID), then one reminder a minute with the count, and the first
/// success after a streak gets a line of its own: an operator sees when the outage began, that it goes on, and
/// when it ended.
struct CommitFailureStreak {
    enum Report: Equatable {
        /// The first failure of a streak.
        case first
        /// A reminder: the streak goes on (at most once per `reminderMicroseconds`).
        case reminder
        /// Nothing to log.
        case quiet
    }

    var reminderMicroseconds: Int64 = 60_000_000
    private(set) var failures = 0
    private var startedAt: Int64 = 0
    private var lastReportAt: Int64 = 0

    /// Records a failure at `now` (monotonic microseconds, as for `succeeded`: a clock step must not hide a
    /// reminder or falsify a duration).
    mutating func failed(at now: Int64) -> Report {
        failures += 1
        if failures == 1 {
            startedAt = now
            lastReportAt = now
            return .first
        }
        guard now - lastReportAt >= reminderMicroseconds else { return .quiet }
        lastReportAt = now
        return .reminder
    }

    /// Records a success at `now`: the streak that it ends, if any.
    mutating func succeeded(at now: Int64) -> (failures: Int, seconds: Int64)? {
        guard failures > 0 else { return nil }
        defer { failures = 0 }
        return (failures, seconds(at: now))
    }

    /// Whole seconds since the streak began.
    func seconds(at now: Int64) -> Int64 { max(0, now - startedAt) / 1_000_000 }
}
