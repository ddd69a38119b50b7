import Logging
import NIOConcurrencyHelpers
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
    private var lastFailureLogged: Int64 = 0
    /// Called on the sync thread after a failed fsync, with its error (the daemon's counters).
    var onFailure: (@Sendable (String) -> Void)?

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

    private func sync() -> Result<Void, IngestWriter.FlushError> {
        do {
            try syncFile()
            return .success(())
        } catch {
            let message = "\(error)"
            onFailure?(message)
            let now = monotonicMicroseconds()
            if now - lastFailureLogged >= 10_000_000 {
                lastFailureLogged = now
                var metadata: Logger.Metadata = ["error": "\(message)", "path": "\(path)"]
                if error.systemErrno != 0 { metadata["errno"] = "\(error.systemErrno)" }
                logger.error("cannot make commits durable; flushes fail until an fsync succeeds", metadata: metadata)
            }
            return .failure(.storeFailed(message))
        }
    }
}
