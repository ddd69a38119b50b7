import Logging
import NIOConcurrencyHelpers
import Synchronization
import TelemetryCore
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Makes the writer's commits durable on a thread of its own (`TELEMETRY_STORE_SYNC=full`), so that the writer
/// aggregates and commits the next group while the disk syncs the last one (see `WALFile` for why).
///
/// After each commit the writer hands over the flushes that commit answers. This thread runs one `fdatasync`
/// for everything committed since its previous one began, then answers those flushes: a reply that says
/// "durable" always follows the fsync that covers it. Commits with no flush waiting are synced as well, right
/// away, so every commit reaches the disk within about one fsync.
///
/// A failed fsync is final until a restart. Linux may mark the pages it could not write as clean, so a later
/// fsync can succeed without writing them, and SQLite's recovery drops every commit after a lost WAL frame:
/// confirming anything after such a failure could be a lie. From then on every flush fails with the reason,
/// and the daemon reports the store as failing (status, systemd STATUS=, /readyz) until it is restarted, which
/// recovers the store from what is on the disk.
final class StoreSyncer: @unchecked Sendable {
    typealias Callback = IngestWriter.FlushCallback

    /// What is synced (the WAL file's path), for the log.
    private let path: String
    private let syncFile: @Sendable () throws(SQLiteError) -> Void
    private let logger: Logger
    /// Guarded by `condition` (value: true when a commit waits for its fsync, or on stop).
    private let condition = ConditionLock(value: false)
    private var waiting: [Callback] = []
    private var unsynced = false
    private var stopRequested = false
    private var thread: pthread_t?
    /// Sync-thread state: the first fsync failure, after which nothing is confirmed.
    private var failure: String?
    /// CLOCK_MONOTONIC µs when the fsync under way began; 0 while none is.
    private let syncStartedMicroseconds = Atomic<Int64>(0)
    /// Called once, on the sync thread, when an fsync fails, with its error (the daemon's counters).
    var onFailure: (@Sendable (String) -> Void)?
    /// Called on the sync thread after each fsync that succeeded, with the seconds it took (the metrics).
    var onSynced: (@Sendable (Double) -> Void)?

    convenience init(wal: WALFile, logger: Logger) {
        self.init(path: wal.path, logger: logger) { () throws(SQLiteError) in try wal.sync() }
    }

    /// `sync` makes everything committed so far durable (tests pass their own).
    init(path: String, logger: Logger, sync: @escaping @Sendable () throws(SQLiteError) -> Void) {
        self.path = path
        self.logger = logger
        self.syncFile = sync
    }

    /// A commit succeeded: answer `flushes` once it is on disk.
    func committed(answering flushes: [Callback]) {
        condition.lock()
        unsynced = true
        waiting.append(contentsOf: flushes)
        condition.unlock(withValue: true)
    }

    func start() {
        thread = DaemonThread.start(name: "syncer") { self.run() }
    }

    /// Syncs what was committed before the call, answers every waiting flush and ends the thread.
    func stop() {
        condition.lock()
        stopRequested = true
        condition.unlock(withValue: true)
        DaemonThread.join(&thread)
    }

    private func run() {
        while true {
            condition.lock(whenValue: true)
            let flushes = waiting
            let needed = unsynced
            let stopping = stopRequested
            waiting = []
            unsynced = false
            condition.unlock(withValue: false)

            if needed {
                let result = sync()
                for flush in flushes { flush(result) }
            }
            if stopping { return }
        }
    }

    /// How long the fsync under way has taken so far, 0 when none is: a disk that hangs shows here (the watchdog
    /// and /healthz read it through `IngestWriter.secondsSinceLastLoop`).
    var secondsInCurrentSync: Double {
        let started = syncStartedMicroseconds.load(ordering: .relaxed)
        return started == 0 ? 0 : Double(monotonicMicroseconds() - started) / 1_000_000
    }

    private func sync() -> Result<Void, IngestWriter.FlushError> {
        if let failure { return .failure(.syncFailed(failure)) }
        let started = monotonicMicroseconds()
        syncStartedMicroseconds.store(started, ordering: .relaxed)
        defer { syncStartedMicroseconds.store(0, ordering: .relaxed) }
        do {
            try syncFile()
            onSynced?(Double(monotonicMicroseconds() - started) / 1_000_000)
            return .success(())
        } catch {
            let message = "\(error); commits since the last good fsync may not be on disk, and none is confirmed "
                + "until telemetryd is restarted (check the disk, e.g. dmesg, then restart it)"
            failure = message
            onFailure?(message)
            var metadata: Logger.Metadata = ["error": "\(error)", "path": "\(path)",
                                             JournalMessageID.metadataKey: "\(JournalMessageID.fsyncFailed)"]
            if error.systemErrno != 0 { metadata["errno"] = "\(error.systemErrno)" }
            logger.critical("an fsync of the store's WAL failed: flushes fail from now on, until telemetryd is restarted",
                            metadata: metadata)
            return .failure(.syncFailed(message))
        }
    }
}
