import Logging
import NIOConcurrencyHelpers
import TelemetryCore
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Checkpoints the store's WAL on its own thread and connection, so that the ingest writer only appends.
///
/// A checkpoint reads back what the WAL holds, writes it into the database file and syncs it: about as
/// much I/O as the commits themselves. Done inside a commit (SQLite's auto-checkpoint), it stalled the one
/// thread that every accepted line goes through. Here the writer only reports how many bytes it committed,
/// and this thread runs a PASSIVE checkpoint, which neither blocks nor waits for the writer:
/// - once the writer has been idle for `idleSeconds` with at least `idleBytes` committed since the last
///   checkpoint, so that on a quiet host the WAL stays small and the database file current;
/// - during a burst, only every `burstBytes`, so that the checkpoint competes with ingest for the CPU and the
///   disk rarely, and copies a page rewritten by many commits once (measured: 8 % more events per second
///   than checkpointing every 32 MiB, in 6 of 6 alternating runs).
/// The writer's own connection keeps an auto-checkpoint at four times `burstBytes` as a bound, should this
/// thread ever fall behind.
final class StoreCheckpointer: @unchecked Sendable {
    struct Policy: Sendable {
        var burstBytes = 4 * TelemetryStore.checkpointBytes
        var idleBytes = 1 << 20
        var idleSeconds = 0.5
    }

    private let store: TelemetryStore
    private let logger: Logger
    private let policy: Policy
    /// Guarded by `condition` (value: true when the thread should look now).
    private let condition = ConditionLock(value: false)
    private var pendingBytes = 0
    private var lastCommit: Int64 = 0
    private var stopRequested = false
    private var thread: pthread_t?
    private var lastFailureLogged: Int64 = 0

    /// The writer connection's auto-checkpoint bound when a checkpointer runs.
    static let writerAutocheckpointBytes = 4 * Policy().burstBytes

    init(store: TelemetryStore, logger: Logger, policy: Policy = Policy()) {
        self.store = store
        self.logger = logger
        self.policy = policy
    }

    /// Called by the writer after each commit with the bytes it wrote (journal chunk and documents).
    func committed(bytes: Int) {
        condition.lock()
        let before = pendingBytes
        pendingBytes += bytes
        lastCommit = monotonicMicroseconds()
        // Wake the thread to start its idle timer, or for a burst's checkpoint; otherwise it sleeps or is timing.
        if (before < policy.idleBytes && pendingBytes >= policy.idleBytes) || pendingBytes >= policy.burstBytes {
            condition.unlock(withValue: true)
        } else {
            condition.unlock()
        }
    }

    func start() {
        store.releaseCacheMemory(trimHeap: false)  // opening read the schema; a checkpoint does not use the cache
        thread = DaemonThread.start(name: "checkpointer") { self.run() }
    }

    /// Ends the thread after a last checkpoint (so that a clean stop leaves a short WAL).
    func stop() {
        condition.lock()
        stopRequested = true
        condition.unlock(withValue: true)
        DaemonThread.join(&thread)
    }

    private func run() {
        while true {
            condition.lock()
            if !stopRequested && pendingBytes < policy.burstBytes {
                // Too little to copy: sleep until commits bring enough. Enough: until the writer has been idle.
                let idleFor = Double(monotonicMicroseconds() - lastCommit) / 1_000_000
                if pendingBytes < policy.idleBytes || idleFor < policy.idleSeconds {
                    let timeout = pendingBytes < policy.idleBytes ? 3_600 : policy.idleSeconds - idleFor
                    condition.unlock(withValue: false)
                    if !condition.lock(whenValue: true, timeoutSeconds: timeout) { condition.lock() }
                }
            }
            let stopping = stopRequested
            let idleFor = Double(monotonicMicroseconds() - lastCommit) / 1_000_000
            let due = stopping || pendingBytes >= policy.burstBytes
                || (pendingBytes >= policy.idleBytes && idleFor >= policy.idleSeconds)
            if due { pendingBytes = 0 }
            condition.unlock(withValue: false)
            if due { checkpoint() }
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
