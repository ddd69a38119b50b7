import Dispatch
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What the watchdog checks before each pet: a daemon that fails it is left for systemd to restart.
struct HealthCheck: Sendable {
    /// Each returns nil when healthy, else why not.
    var probes: [@Sendable (_ budgetSeconds: Double) -> String?]

    /// The first problem, nil when every probe passes.
    func problem(budgetSeconds: Double) -> String? {
        for probe in probes {
            if let problem = probe(budgetSeconds) { return problem }
        }
        return nil
    }

    /// Every event loop runs a task within the budget (a loop stuck in a handler would not).
    static func eventLoopsAnswer(_ group: EventLoopGroup) -> @Sendable (Double) -> String? {
        { budget in
            for (index, loop) in group.makeIterator().enumerated() {
                let answered = DispatchSemaphore(value: 0)
                loop.execute { answered.signal() }
                if answered.wait(timeout: .now() + budget) == .timedOut {
                    return "event loop \(index) did not answer within \(budget)s"
                }
            }
            return nil
        }
    }

    /// The writer thread went round its loop recently (it does at least once a second, idle or retrying a
    /// failing commit), so it is not stuck inside the store.
    static func writerIsAlive(_ writer: IngestWriter, staleAfterSeconds: Double) -> @Sendable (Double) -> String? {
        { _ in
            let age = writer.secondsSinceLastLoop
            return age > staleAfterSeconds ? "the store writer has not come round for \(Int(age))s" : nil
        }
    }

    /// The store's file system accepts writes. A full disk does not fail this check: a restart cannot free
    /// space, and the daemon already refuses lines with a reason and applies backpressure.
    static func storeIsWritable(directory: String, storePath: String) -> @Sendable (Double) -> String? {
        { _ in
            var fileSystem = statvfs()
            if statvfs(directory, &fileSystem) == 0, fileSystem.f_flag & UInt(ST_RDONLY) != 0 {
                return "the state directory \(directory) is on a read-only file system"
            }
            if access(storePath, W_OK) != 0 {
                return "the store \(storePath) is not writable: \(String(cString: strerror(errno)))"
            }
            return nil
        }
    }
}

/// Pets systemd's watchdog (WATCHDOG=1) at half of WatchdogSec=, and only while the health check passes, so a
/// wedged daemon is restarted rather than kept alive by a free-running timer.
final class Watchdog: @unchecked Sendable {
    private let interval: Double
    private let check: HealthCheck
    private let pet: @Sendable () -> Void
    private let reportStatus: @Sendable (String) -> Void
    private let logger: Logger
    /// Created by `start()`: libdispatch traps when a source that was never resumed is released.
    private var timer: DispatchSourceTimer?
    private var failing = false  // only touched on `timer`'s queue

    /// `pet` sends WATCHDOG=1; `reportStatus` sends STATUS= (sd_notify in the daemon, recorders in tests).
    init(interval: Double, check: HealthCheck, logger: Logger,
         pet: @escaping @Sendable () -> Void, reportStatus: @escaping @Sendable (String) -> Void) {
        self.interval = interval
        self.check = check
        self.pet = pet
        self.reportStatus = reportStatus
        self.logger = logger
    }

    func start() {
        let period = interval / 2
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "telemetryd.watchdog"))
        timer.schedule(deadline: .now(), repeating: period, leeway: .milliseconds(Int(period * 50)))
        timer.setEventHandler { [self] in tick(budget: period / 2) }
        timer.resume()
        self.timer = timer
    }

    func stop() { timer?.cancel() }

    /// One round: check, then pet or (once per failure) say why not. Called by the timer; tests call it directly.
    func tick(budget: Double) {
        if let problem = check.problem(budgetSeconds: budget) {
            if !failing {
                logger.critical("health check failed, no longer petting the watchdog; systemd will restart the daemon",
                                metadata: ["problem": "\(problem)", "watchdog_seconds": "\(interval)"])
                reportStatus("UNHEALTHY: \(problem)")
            }
            failing = true
            return
        }
        if failing {
            logger.notice("health check passes again; petting the watchdog")
            failing = false
        }
        pet()
    }
}
