import Logging
import Synchronization
import NIOConcurrencyHelpers
import TelemetryCore
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// The single writer: takes batches from all connections, aggregates them into executions and group-commits
/// journal chunks and closed documents to the store on its own thread (SQLite and fsync block).
///
/// Memory is bounded: when more than `maxQueuedBytes` wait, `submit` says so and the connection stops
/// reading until `whenCapacityAvailable` calls back — backpressure reaches the client's socket.
final class IngestWriter: @unchecked Sendable {
    struct Settings: Sendable {
        var limits: AggregationLimits
        var host: String
        var commitIntervalMicroseconds: Int64
        /// Stored documents older than this are deleted; 0 keeps them forever (TELEMETRY_RETENTION_DAYS).
        var retentionMicroseconds: Int64 = 0
        /// With forwarding on, retention and the size cap delete only delivered documents.
        var forwarding = false
        /// Size cap of the store (TELEMETRY_SPOOL_MAX_MB); 0 for none.
        var maxStoreBytes = 0
        /// Batches waiting for the writer before connections stop being read. 4 MiB ingests as fast as 8 MiB did
        /// (bench/run.sh) with a lower memory peak.
        var maxQueuedBytes: Int = 4 << 20
        var recentlyClosedCapacity: Int = 65_536
    }

    enum FlushError: Error, CustomStringConvertible {
        /// The commit failed (disk full, I/O error, read-only file system): nothing of it was written.
        case storeFailed(String)
        /// The commits were made, but the fsync that should have confirmed them failed (`StoreSyncer`).
        case syncFailed(String)
        case stopped
        var description: String {
            switch self {
            case .storeFailed(let message): "the store could not commit: \(message)"
            case .syncFailed(let message): "the store could not confirm its commits on disk (fsync failed): \(message)"
            case .stopped: "the daemon is shutting down"
            }
        }
    }

    typealias FlushCallback = @Sendable (Result<Void, FlushError>) -> Void

    private enum Item {
        case batch(IngestBatch)
        case flush(FlushCallback)
        /// Store work of a control request; what it returns is called once that work is durable.
        case maintenance(@Sendable (TelemetryStore) -> FlushCallback?)
    }

    // Shared state, guarded by `condition` (value: true when there is something for the writer to do).
    private let condition = ConditionLock(value: false)
    private var queue: [Item] = []
    private var queuedBytes = 0
    private var capacityWaiters: [@Sendable () -> Void] = []
    private var stopRequested = false
    private var stopped = false

    // Writer-thread state: touched only by the writer thread (and by `recover` before it starts).
    private var aggregator: Aggregator
    private var recentlyClosed: RecentlyClosed
    private var nextSequence: Int64
    private var retryCommit: StoreBatch?
    /// True while a failed commit holds more than its bound (4 × the queue limit) in memory.
    private var storeBlocked: Bool {
        guard let retryCommit else { return false }
        let bytes = (retryCommit.journalChunk?.bytes.count ?? 0) + retryCommit.documents.reduce(0) { $0 + $1.body.count }
        return bytes > settings.maxQueuedBytes * 4
    }
    private var lastCommitMicroseconds: Int64 = 0
    /// The commit failures since the last successful commit, for their log lines.
    private var commitFailures = CommitFailureStreak()
    /// CLOCK_MONOTONIC µs at the top of the writer loop: the one heartbeat, read by the watchdog's health check
    /// and by /healthz and /readyz. It starts at creation, so the writer counts as alive from its first moment.
    private let lastLoopMicroseconds = Atomic<Int64>(monotonicMicroseconds())
    private var lastIdleCheckMicroseconds: Int64 = 0
    private var lastRetentionMicroseconds: Int64 = 0
    private var lastSizeCheckMicroseconds: Int64 = 0
    /// The store is at its size cap with undelivered data: new lines are refused (`store_full`).
    private var storeFull = false
    /// Told after each commit that stored documents, so the forwarder can check whether a batch is due.
    var onDocumentsCommitted: (@Sendable () -> Void)?
    /// Called on the writer thread after each successful commit with the bytes it wrote (the checkpointer).
    var onCommitted: (@Sendable (Int) -> Void)?
    /// Called on the writer thread with the executions whose documents were just committed (durable), in the
    /// order they closed. Observers (journal events, metrics) must be quick: the writer waits for them.
    var onExecutionsCompleted: (@Sendable ([Execution]) -> Void)?
    /// Executions closed but not yet committed (a failed commit keeps them for the retry).
    private var uncommittedExecutions: [Execution] = []
    private var userIDs: [UInt32: String] = [:]

    private let store: TelemetryStore
    /// With `TELEMETRY_STORE_SYNC=full`: fsyncs the commits on its own thread and answers their flushes after.
    /// Without one, the store connection's own `synchronous` setting is all there is (tests, `normal`).
    private let syncer: StoreSyncer?
    private let settings: Settings
    private let anonymizer: UserAnonymizer
    private let counters: DaemonCounters
    private let logger: Logger
    private let now: @Sendable () -> Timestamp
    private var thread: pthread_t?
    private let finished = ConditionLock(value: false)

    init(store: TelemetryStore, settings: Settings, anonymizer: UserAnonymizer, counters: DaemonCounters,
         logger: Logger, syncer: StoreSyncer? = nil,
         now: @escaping @Sendable () -> Timestamp = { Timestamp.now() }) throws {
        self.store = store
        self.syncer = syncer
        // A failed fsync counts as a failed commit, and the store stays failing until a restart (`StoreSyncer`).
        syncer?.onFailure = { [counters] message in
            counters.update {
                $0.commitFailures += 1
                $0.durabilityFailure = message
            }
        }
        self.settings = settings
        self.anonymizer = anonymizer
        self.counters = counters
        self.logger = logger
        self.now = now
        self.aggregator = Aggregator(limits: settings.limits)
        self.recentlyClosed = RecentlyClosed(capacity: settings.recentlyClosedCapacity)
        self.nextSequence = try store.nextJournalSequence()
    }

    // MARK: Recovery

    struct RecoveryReport: Sendable {
        var chunks = 0
        var lines = 0
        var reopened = 0
        var skippedClosed = 0
        var unreadable = 0
    }

    /// Rebuilds the executions that were open when the daemon last stopped, from the journal.
    /// Must run before `start()`.
    func recover() throws -> RecoveryReport {
        var report = RecoveryReport()
        var chunks: [(Int64, [UInt8])] = []
        try store.forEachJournalChunk { sequence, bytes in chunks.append((sequence, bytes)) }
        var decoded: [(Int64, AcceptedRecord)] = []
        var ids = Set<ExecutionID>()
        for (sequence, bytes) in chunks {
            report.chunks += 1
            try JournalRecord.forEach(in: bytes) { entry in
                report.lines += 1
                guard case .record(let record) = try? WireParser.parse(entry.json, maxLineBytes: Int.max) else {
                    report.unreadable += 1
                    return
                }
                ids.insert(record.executionID)
                decoded.append((sequence, AcceptedRecord(record: record, sender: entry.sender,
                                                         receivedAt: entry.receivedAt)))
            }
        }
        let closed = try store.existingDocuments(among: ids.map(\.description))
        var documents: [StoredDocument] = []
        for (sequence, accepted) in decoded {
            let id = accepted.record.executionID
            if closed.contains(id.description) || recentlyClosed.contains(id) {
                report.skippedClosed += 1
                continue
            }
            if let execution = aggregator.apply(accepted) {
                documents.append(document(for: execution))
                recentlyClosed.insert(id)
            } else {
                aggregator.noteJournaled(CollectionOfOne(id), inChunk: sequence)
            }
        }
        report.reopened = aggregator.openCount
        if !documents.isEmpty {
            try store.commit(StoreBatch(documents: documents, pruneJournalBelow: nil))
        }
        counters.update { $0.openExecutions = aggregator.openCount }
        return report
    }

    // MARK: Producer side (any thread)

    /// Queues a batch. Returns false when the queue is over its limit: stop reading and wait for
    /// `whenCapacityAvailable`.
    @discardableResult
    func submit(_ batch: IngestBatch) -> Bool {
        condition.lock()
        if stopped {
            condition.unlock()
            return true
        }
        // Wake the writer only when it has something new to decide: it may be idle (the queue was empty), or the
        // queue just became urgent. Otherwise it is busy and will find the batch, or it is letting a group gather
        // and would only go back to sleep: waking it per batch cost a context switch per socket read.
        let wasEmpty = queue.isEmpty
        queuedBytes += batch.byteCount
        queue.append(.batch(batch))
        let hasRoom = queuedBytes < settings.maxQueuedBytes
        if wasEmpty || queuedBytes >= settings.maxQueuedBytes / 2 {
            condition.unlock(withValue: true)
        } else {
            condition.unlock()
        }
        return hasRoom
    }

    /// Calls `callback` (on the writer thread) once the queue has drained below its limit.
    func whenCapacityAvailable(_ callback: @escaping @Sendable () -> Void) {
        condition.lock()
        if queuedBytes < settings.maxQueuedBytes || stopped {
            condition.unlock()
            callback()
            return
        }
        capacityWaiters.append(callback)
        condition.unlock()
    }

    /// Calls `callback` once everything submitted before this call is committed to the store.
    func flush(_ callback: @escaping FlushCallback) {
        condition.lock()
        if stopped {
            condition.unlock()
            callback(.failure(.stopped))
            return
        }
        queue.append(.flush(callback))
        condition.unlock(withValue: true)
    }

    /// Runs `body` on the writer thread, the only thread that may use the writing store connection. The callback
    /// `body` returns, if any, is called once what it changed is durable (with the syncer, after an fsync), so
    /// that a control request is not answered before its change would survive a power loss.
    func withStore(_ body: @escaping @Sendable (TelemetryStore) -> FlushCallback?) {
        condition.lock()
        queue.append(.maintenance(body))
        condition.unlock(withValue: true)
    }

    func flush() async -> Result<Void, FlushError> {
        await withCheckedContinuation { continuation in
            flush { continuation.resume(returning: $0) }
        }
    }

    // MARK: Writer thread

    func start() {
        if let syncer {
            syncer.start()
            syncer.committed(answering: [])  // what `recover` committed
        }
        thread = DaemonThread.start(name: "writer") { self.run() }
    }

    /// Commits everything queued, stops the thread and waits for it. Safe to call more than once.
    func stop() {
        condition.lock()
        stopRequested = true
        condition.unlock(withValue: true)
        DaemonThread.join(&thread)
        syncer?.stop()  // after the writer's last commit: syncs it and answers the last flushes
    }

    /// Seconds since the writer thread last went round its loop (at least once a second while it runs), or, if
    /// longer, how long the syncer's fsync under way has taken: either stuck means the store is stuck.
    var secondsSinceLastLoop: Double {
        let loopAge = Double(monotonicMicroseconds() - lastLoopMicroseconds.load(ordering: .relaxed)) / 1_000_000
        return max(loopAge, syncer?.secondsInCurrentSync ?? 0)
    }

    private func run() {
        while true {
            lastLoopMicroseconds.store(monotonicMicroseconds(), ordering: .relaxed)
            condition.lock()
            if queue.isEmpty && !stopRequested {
                condition.unlock()
                if !condition.lock(whenValue: true, timeoutSeconds: 1.0) { condition.lock() }
            }
            // Group commit: unless a flush or a full queue is waiting, let lines gather for the commit interval.
            // The wait ends early when a flush, a stop or a queue past half its limit arrives (those wake it), so
            // a `sync` at the end of a script is answered without waiting out the interval.
            let waitUntil = lastCommitMicroseconds + settings.commitIntervalMicroseconds
            while true {
                let urgent = stopRequested || queuedBytes >= settings.maxQueuedBytes / 2
                    || queue.contains { if case .flush = $0 { true } else { false } }
                let nowMicros = now().microseconds
                guard !urgent, !queue.isEmpty, nowMicros < waitUntil else { break }
                condition.unlock(withValue: false)
                let seconds = Double(min(waitUntil - nowMicros, 1_000_000)) / 1_000_000
                if !condition.lock(whenValue: true, timeoutSeconds: seconds) { condition.lock() }
            }
            if storeBlocked && !stopRequested {
                // The store keeps failing and the retained data reached its bound: stop taking batches so the
                // backpressure reaches the clients (which spool), answer flushes at once, and retry the commit.
                var flushes: [FlushCallback] = []
                var storeWork: [@Sendable (TelemetryStore) -> FlushCallback?] = []
                queue.removeAll { item in
                    switch item {
                    case .flush(let callback): flushes.append(callback)
                    case .maintenance(let body): storeWork.append(body)
                    case .batch: return false
                    }
                    return true
                }
                condition.unlock(withValue: false)
                runStoreWork(storeWork)
                process([])
                if storeBlocked {
                    let message = counters.snapshot.lastCommitError ?? "the store is failing"
                    for flush in flushes { flush(.failure(.storeFailed(message))) }
                    usleep(200_000)
                } else if !flushes.isEmpty {
                    // The retry went through, but batches queued before these flushes are not committed yet:
                    // queue the flushes again, behind them, for the normal path to answer.
                    condition.lock()
                    queue.append(contentsOf: flushes.map { .flush($0) })
                    condition.unlock(withValue: true)
                }
                continue
            }
            let items = queue
            queue = []
            queuedBytes = 0
            let waiters = capacityWaiters
            capacityWaiters = []
            let stopping = stopRequested
            condition.unlock(withValue: false)

            for waiter in waiters { waiter() }
            process(items)

            if stopping {
                condition.lock()
                let leftovers = queue
                queue = []
                stopped = true
                let lateWaiters = capacityWaiters
                capacityWaiters = []
                condition.unlock(withValue: false)
                if !leftovers.isEmpty { process(leftovers) }
                for waiter in lateWaiters { waiter() }
                if let lost = retryCommit {
                    // Never silent: these lines were not confirmed to any client (flushes failed) and cannot be kept.
                    logger.critical("stopping with data the store refused; it is lost",
                                    metadata: ["journal_bytes": "\(lost.journalChunk?.bytes.count ?? 0)",
                                               "documents": "\(lost.documents.count)",
                                               "error": "\(counters.snapshot.lastCommitError ?? "")"])
                }
                return
            }
        }
    }

    private func process(_ items: [Item]) {
        var flushes: [FlushCallback] = []
        var batches: [IngestBatch] = []
        var storeWork: [@Sendable (TelemetryStore) -> FlushCallback?] = []
        for item in items {
            switch item {
            case .batch(let batch): batches.append(batch)
            case .flush(let callback): flushes.append(callback)
            case .maintenance(let body): storeWork.append(body)
            }
        }
        runStoreWork(storeWork)
        let nowStamp = now()
        var documents: [StoredDocument] = []
        var accepted = 0
        var closedLate = 0
        var dropped = 0
        checkStoreSize(now: nowStamp)
        if storeFull {
            // Refuse, count and say so; nothing already stored is given up to make room.
            let refused = batches.reduce(0) { $0 + $1.lineCount }
            if refused > 0 { counters.reject(.storeFull, count: refused) }
            batches = []
        }

        // Ids this group mentions that are neither open nor remembered as closed: ask the store once.
        // Consecutive entries mostly share an execution, so each loop looks an id up once per run of them.
        var unknown = Set<ExecutionID>()
        var previous: ExecutionID?
        for batch in batches {
            for entry in batch.entries where entry.executionID != previous {
                let id = entry.executionID
                previous = id
                if !aggregator.isOpen(id) && !recentlyClosed.contains(id) { unknown.insert(id) }
            }
        }
        if !unknown.isEmpty {
            do {
                let closedInStore = try store.existingDocuments(among: unknown.map(\.description))
                for id in unknown where closedInStore.contains(id.description) { recentlyClosed.insert(id) }
            } catch {
                logger.error("store lookup failed; treating unknown executions as new", metadata: ["error": "\(error)"])
            }
        }

        // Aggregate, remembering which entries belong to executions that may stay open.
        var pending: [(batch: Int, entry: Int)] = []
        for (batchIndex, batch) in batches.enumerated() {
            var previous: ExecutionID?
            var previousClosed = false
            batch.fragments.bytes.withUnsafeBytes { fragments in
                for (entryIndex, entry) in batch.entries.enumerated() {
                    let id = entry.executionID
                    if id != previous {
                        previous = id
                        previousClosed = recentlyClosed.contains(id)
                    }
                    switch entry.content {
                    case .events(let objects, let ends, let isError):
                        if previousClosed {
                            closedLate += ends.count
                            continue
                        }
                        accepted += ends.count
                        aggregator.applyEvents(id, count: ends.count, earliest: entry.timestamp,
                                               latestReceivedAt: entry.receivedAt, sender: entry.sender,
                                               isError: isError,
                                               objects: UnsafeRawBufferPointer(rebasing: fragments[objects]),
                                               prefixLength: { batch.objectEnds[ends.lowerBound + $0 - 1] - objects.lowerBound })
                        pending.append((batchIndex, entryIndex))
                    case .record(let index):
                        if previousClosed {
                            closedLate += 1
                            continue
                        }
                        accepted += 1
                        let record = AcceptedRecord(record: batch.records[index], sender: entry.sender,
                                                    receivedAt: entry.receivedAt)
                        if let execution = aggregator.apply(record) {
                            dropped += execution.droppedEvents
                            documents.append(document(for: execution))
                            uncommittedExecutions.append(execution)
                            recentlyClosed.insert(id)
                            previousClosed = true
                        } else {
                            pending.append((batchIndex, entryIndex))
                        }
                    }
                }
            }
        }

        // Journal only the lines of executions still open after this group: closed ones live in their documents.
        var chunk: [UInt8] = []
        var journaled = Set<ExecutionID>()
        previous = nil
        var previousOpen = false
        var next = 0
        for (batchIndex, batch) in batches.enumerated() where next < pending.count && pending[next].batch == batchIndex {
            batch.journal.withUnsafeBytes { journal in
                while next < pending.count && pending[next].batch == batchIndex {
                    let entry = batch.entries[pending[next].entry]
                    next += 1
                    if entry.executionID != previous {
                        previous = entry.executionID
                        previousOpen = aggregator.isOpen(entry.executionID)
                        if previousOpen { journaled.insert(entry.executionID) }
                    }
                    if previousOpen { chunk.append(contentsOf: UnsafeRawBufferPointer(rebasing: journal[entry.journal])) }
                }
            }
        }

        if nowStamp.microseconds - lastIdleCheckMicroseconds >= 1_000_000 {
            lastIdleCheckMicroseconds = nowStamp.microseconds
            for execution in aggregator.closeIdle(now: nowStamp) {
                logger.info("execution closed as incomplete after \(settings.limits.idleTimeoutMicroseconds / 1_000_000)s without a line",
                            metadata: ["execution_id": "\(execution.id)", "script": "\(execution.scriptName)"])
                dropped += execution.droppedEvents
                documents.append(document(for: execution))
                uncommittedExecutions.append(execution)
                recentlyClosed.insert(execution.id)
            }
        }

        var batch = retryCommit ?? StoreBatch()
        retryCommit = nil
        if !chunk.isEmpty {
            if var existing = batch.journalChunk {
                batch.journalChunk = nil
                existing.bytes.append(contentsOf: chunk)
                batch.journalChunk = existing
                aggregator.noteJournaled(journaled, inChunk: existing.sequence)
            } else {
                batch.journalChunk = (nextSequence, chunk)
                aggregator.noteJournaled(journaled, inChunk: nextSequence)
                nextSequence += 1
            }
        }
        batch.documents.append(contentsOf: documents)
        batch.pruneJournalBelow = aggregator.lowestNeededJournalSequence ?? nextSequence

        let needsCommit = batch.journalChunk != nil || !batch.documents.isEmpty || !flushes.isEmpty
        var failure: String?
        if needsCommit {
            do {
                try store.commit(batch)
                lastCommitMicroseconds = now().microseconds
                onCommitted?((batch.journalChunk?.bytes.count ?? 0) + batch.documents.reduce(0) { $0 + $1.body.count })
                logCommitSucceeded()
            } catch {
                failure = "\(error)"
                retryCommit = batch
                logCommitFailed(error)
            }
        }

        if settings.retentionMicroseconds > 0, failure == nil,
           nowStamp.microseconds - lastRetentionMicroseconds >= 3_600_000_000 {
            lastRetentionMicroseconds = nowStamp.microseconds
            do {
                let cutoff = nowStamp.microseconds - settings.retentionMicroseconds
                let deleted = settings.forwarding
                    ? try store.deleteDeliveredDocuments(completedBefore: cutoff)
                    : try store.deleteDocuments(completedBefore: cutoff)
                if deleted > 0 {
                    logger.info("retention: deleted \(deleted) documents older than TELEMETRY_RETENTION_DAYS")
                }
            } catch {
                logger.error("retention cleanup failed", metadata: ["error": "\(error)"])
            }
        }

        let openCount = aggregator.openCount
        let committedDocuments = failure == nil ? batch.documents.count : 0
        counters.update {
            $0.linesAccepted += accepted
            if closedLate > 0 { $0.rejected[.executionClosed, default: 0] += closedLate }
            $0.openExecutions = openCount
            $0.documentsStored += committedDocuments
            $0.eventsDropped += dropped
            if needsCommit {
                if let failure {
                    $0.commitFailures += 1
                    $0.lastCommitError = failure
                } else {
                    $0.commits += 1
                    $0.lastCommitAt = nowStamp
                    $0.lastCommitError = nil
                }
            }
        }
        if committedDocuments > 0 { onDocumentsCommitted?() }
        // Flushes first: a client waiting for durability (a script's exit path) is answered before the
        // observers (metrics, journal events) run.
        if needsCommit { answer(flushes, failure: failure) }
        if failure == nil, !uncommittedExecutions.isEmpty {
            let completed = uncommittedExecutions
            uncommittedExecutions = []
            onExecutionsCompleted?(completed)
        }
    }

    /// The log lines of a failing store (`CommitFailureStreak` says which): the first failure, a reminder a minute.
    private func logCommitFailed(_ error: SQLiteError) {
        let now = monotonicMicroseconds()
        let report = commitFailures.failed(at: now)
        guard report != .quiet else { return }
        var metadata: Logger.Metadata = ["error": "\(error)", "path": "\(store.path)"]
        if error.systemErrno != 0 { metadata["errno"] = "\(error.systemErrno)" }
        if report == .first {
            metadata[JournalMessageID.metadataKey] = "\(JournalMessageID.commitFailed)"
            logger.error("commit to the store failed; keeping the data in memory and retrying", metadata: metadata)
        } else {
            metadata["failures"] = "\(commitFailures.failures)"
            metadata["failing_seconds"] = "\(commitFailures.seconds(at: now))"
            logger.error("commits to the store still fail; the data stays in memory and is retried", metadata: metadata)
        }
    }

    /// The line that ends a failing streak, if there was one.
    private func logCommitSucceeded() {
        guard let ended = commitFailures.succeeded(at: monotonicMicroseconds()) else { return }
        logger.notice("commits to the store succeed again; the data held in memory is stored",
                      metadata: ["failures": "\(ended.failures)", "failing_seconds": "\(ended.seconds)",
                                 "path": "\(store.path)",
                                 JournalMessageID.metadataKey: "\(JournalMessageID.commitsRecovered)"])
    }

    /// Runs the store work of control requests (`withStore`), then answers those that wait for durability.
    private func runStoreWork(_ bodies: [@Sendable (TelemetryStore) -> FlushCallback?]) {
        let replies = bodies.compactMap { $0(store) }
        // Not for an empty list: with a syncer, that would be an fsync each time the idle writer comes round.
        if !replies.isEmpty { answer(replies, failure: nil) }
    }

    /// Answers `flushes` once the commit just made is durable: with a syncer, after its next fsync (and a commit
    /// with no flush waiting is synced too); otherwise now. A failed commit fails them now.
    private func answer(_ flushes: [FlushCallback], failure: String?) {
        if let failure {
            for flush in flushes { flush(.failure(.storeFailed(failure))) }
        } else if let syncer {
            syncer.committed(answering: flushes)
        } else {
            for flush in flushes { flush(.success(())) }
        }
    }

    /// Once a second: over the size cap, delete the oldest delivered documents; if undelivered ones still fill
    /// the store, refuse new lines until delivery (or an operator) makes room.
    private func checkStoreSize(now: Timestamp) {
        guard settings.maxStoreBytes > 0, now.microseconds - lastSizeCheckMicroseconds >= 1_000_000 else { return }
        lastSizeCheckMicroseconds = now.microseconds
        do {
            var used = try store.usedBytes()
            var deleted = 0
            // Forwarding: delivered documents go first, undelivered ones never. Local store only: the oldest go,
            // as in a journal with a size cap.
            while used > settings.maxStoreBytes {
                let count = try store.deleteOldestDelivered(limit: 1_000, includingUndelivered: !settings.forwarding)
                if count == 0 { break }
                deleted += count
                used = try store.usedBytes()
            }
            if deleted > 0 {
                logger.notice("the store reached TELEMETRY_SPOOL_MAX_MB: deleted the \(deleted) oldest \(settings.forwarding ? "delivered " : "")documents",
                              metadata: ["used_bytes": "\(used)", "limit_bytes": "\(settings.maxStoreBytes)"])
            }
            let full = used > settings.maxStoreBytes
            if full != storeFull {
                if full {
                    logger.error("the store is full (TELEMETRY_SPOOL_MAX_MB) with documents not yet delivered; new lines are refused and counted as store_full until there is room",
                                 metadata: ["used_bytes": "\(used)", "limit_bytes": "\(settings.maxStoreBytes)",
                                            JournalMessageID.metadataKey: "\(JournalMessageID.storeFull)"])
                } else {
                    logger.notice("the store has room again; accepting lines", metadata: ["used_bytes": "\(used)"])
                }
                storeFull = full
            }
        } catch {
            logger.error("cannot measure the store", metadata: ["error": "\(error)"])
        }
    }

    private func document(for execution: Execution) -> StoredDocument {
        let userID: String
        if let cached = userIDs[execution.senderUID] {
            userID = cached
        } else {
            userID = anonymizer.userID(forUID: execution.senderUID)
            userIDs[execution.senderUID] = userID
        }
        let closedAt = now()
        let body = execution.encodeDocument(context: DocumentContext(host: settings.host, userID: userID,
                                                                     closedAt: closedAt))
        return StoredDocument(executionID: execution.id.description, scriptName: execution.scriptName,
                              status: execution.status.rawValue,
                              startedAt: execution.effectiveStart.microseconds,
                              completedAt: closedAt.microseconds, body: body)
    }
}
