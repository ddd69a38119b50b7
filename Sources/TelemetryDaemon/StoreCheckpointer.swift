import Logging
import NIOConcurrencyHelpers
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Checkpoints the store's WAL on its own thread and connection, so that the ingest writer only appends.
///
/// A checkpoint reads back what the WAL holds, writes it into the database file and syncs it: under a
/// burst, about as much I/O as the commits themselves. Done inside a commit (SQLite's auto-checkpoint),
/// it stalls the one thread that every accepted line goes through. Here the writer only reports how many
/// bytes it committed; past `TelemetryStore.checkpointBytes`, this thread runs a PASSIVE checkpoint, which
/// neither blocks nor waits for the writer. The writer's own connection keeps an auto-checkpoint at four
/// times that size as a bound, should this thread ever fall behind.
final class StoreCheckpointer: @unchecked Sendable {
    private let store: TelemetryStore
    private let logger: Logger
    private let thresholdBytes: Int
    /// Guarded by `condition` (value: true when a checkpoint or stop is due).
    private let condition = ConditionLock(value: false)
    private var pendingBytes = 0
    private var due = false
    private var stopRequested = false
    private var thread: pthread_t?
    private var lastFailureLogged: Int64 = 0

    /// The writer connection's auto-checkpoint bound when a checkpointer runs.
    static let writerAutocheckpointBytes = TelemetryStore.checkpointBytes * 4

    init(store: TelemetryStore, logger: Logger, thresholdBytes: Int = TelemetryStore.checkpointBytes) {
        self.store = store
        self.logger = logger
        self.thresholdBytes = thresholdBytes
    }

    /// Called by the writer after each commit with the bytes it wrote (journal chunk and documents).
    func committed(bytes: Int) {
        condition.lock()
        pendingBytes += bytes
        guard pendingBytes >= thresholdBytes, !due else {
            condition.unlock()
            return
        }
        pendingBytes = 0
        due = true
        condition.unlock(withValue: true)
    }

    func start() {
        store.releaseCacheMemory(trimHeap: false)  // opening read the schema; a checkpoint does not use the cache
        let unmanaged = Unmanaged.passRetained(self)
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            let checkpointer = Unmanaged<StoreCheckpointer>.fromOpaque(argument!).takeRetainedValue()
            checkpointer.run()
            return nil
        }, unmanaged.toOpaque())
        self.thread = thread
    }

    /// Ends the thread after a last checkpoint (so that a clean stop leaves a short WAL).
    func stop() {
        condition.lock()
        stopRequested = true
        due = true
        condition.unlock(withValue: true)
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }

    private func run() {
        while true {
            condition.lock(whenValue: true)
            due = false
            let stopping = stopRequested
            condition.unlock(withValue: false)
            checkpoint()
            if stopping { return }
        }
    }

    private func checkpoint() {
        do {
            let result = try store.checkpoint()
            logger.trace("checkpointed the WAL", metadata: ["wal_pages": "\(result.walPages)",
                                                            "checkpointed_pages": "\(result.checkpointedPages)"])
        } catch {
            // The writer's own auto-checkpoint bounds the WAL meanwhile; say so at most once a minute.
            let now = monotonicMicroseconds()
            guard now - lastFailureLogged >= 60_000_000 else { return }
            lastFailureLogged = now
            logger.warning("WAL checkpoint failed; commits will checkpoint instead",
                           metadata: ["error": "\(error)", "path": "\(store.path)"])
        }
    }
}
