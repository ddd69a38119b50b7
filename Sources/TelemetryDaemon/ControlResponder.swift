import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TelemetryCore
import TelemetryDelivery
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Answers control requests (`flush`, `status`, `executions`, `show`) with one line of JSON:
/// `{"ok":true,"request":...}` or `{"ok":false,"request":...,"error":"what went wrong and what to do"}`.
/// Store reads run on a thread pool so a slow disk never stalls an event loop.
final class ControlResponder: @unchecked Sendable {
    struct Identity: Sendable {
        var version: String
        var socketPath: String
        var stateDirectory: String
        var enabled: Bool
        var endpointHost: String?
        var startedAt: Timestamp
    }

    private let identity: Identity
    private let writer: IngestWriter
    private let counters: DaemonCounters
    let reader: StoreReader
    private let threadPool: NIOThreadPool
    private let forwarder: Forwarder?
    private let delivery: DeliverySettings?

    init(identity: Identity, writer: IngestWriter, counters: DaemonCounters, reader: TelemetryStore,
         threadPool: NIOThreadPool, forwarder: Forwarder? = nil, delivery: DeliverySettings? = nil) {
        self.identity = identity
        self.writer = writer
        self.counters = counters
        self.reader = StoreReader(reader)
        self.threadPool = threadPool
        self.forwarder = forwarder
        self.delivery = delivery
    }

    func reply(to request: ControlRequest, on eventLoop: EventLoop) -> EventLoopFuture<[UInt8]> {
        switch request.command {
        case .flush, .sync:
            let promise = eventLoop.makePromise(of: [UInt8].self)
            let forwarder = request.command == .flush ? self.forwarder : nil
            writer.flush { [counters] result in
                switch result {
                case .success:
                    let snapshot = counters.snapshot
                    let reply: @Sendable (FlushOutcome?) -> Void = { outcome in
                        promise.succeed(Self.envelope(request, ok: outcome?.delivered ?? true) { json in
                            json.key("durable"); json.bool(true)
                            json.key("open_executions"); json.integer(Int64(snapshot.openExecutions))
                            json.key("documents_stored"); json.integer(Int64(snapshot.documentsStored))
                            if let outcome {
                                json.key("delivered"); json.bool(outcome.delivered)
                                json.key("pending_documents"); json.integer(Int64(outcome.pendingDocuments))
                                if let message = outcome.message {
                                    json.key("error"); json.string("durable in the local store, but \(message)")
                                }
                            }
                        })
                    }
                    if let forwarder {
                        // Answer within the client's default wait: a delivery still retrying is reported as such.
                        let answered = NIOLockedValueBox(false)
                        let once: @Sendable (FlushOutcome?) -> Void = { outcome in
                            let first = answered.withLockedValue { done in
                                defer { done = true }
                                return !done
                            }
                            if first { reply(outcome) }
                        }
                        forwarder.flush { once($0) }
                        eventLoop.scheduleTask(in: .milliseconds(1_500)) {
                            let status = forwarder.status
                            once(FlushOutcome(delivered: false, pendingDocuments: status.pendingDocuments,
                                              message: "delivery still in progress (\(status.state.rawValue)\(status.lastError.map { ": \($0)" } ?? ""))"))
                        }
                    } else {
                        reply(nil)
                    }
                case .failure(let error):
                    promise.succeed(Self.failure(request, "flush failed: \(error)"))
                }
            }
            return promise.futureResult
        case .testConnection:
            guard let delivery else {
                return eventLoop.makeSucceededFuture(Self.failure(request, "TELEMETRY_ENDPOINT is not set: documents stay in the local store and nothing is sent"))
            }
            return threadPool.runIfActive(eventLoop: eventLoop) {
                let report: ProbeReport
                do {
                    report = ConnectionProbe.run(settings: delivery, transport: try CurlSession(settings: delivery.http))
                } catch {
                    return Self.failure(request, "cannot set up HTTPS: \(error)")
                }
                return Self.envelope(request, ok: report.ok) { json in
                    json.key("endpoint_host"); json.string(report.endpointHost)
                    json.key("summary"); json.string(report.summary)
                    if !report.ok { json.key("error"); json.string(report.summary) }
                    json.key("status")
                    if let status = report.status { json.integer(Int64(status)) } else { json.null() }
                    json.key("failure")
                    if let kind = report.failureKind { json.string(kind) } else { json.null() }
                    json.key("http_version")
                    if let version = report.httpVersion { json.string(version) } else { json.null() }
                    json.key("body_excerpt")
                    if let excerpt = report.bodyExcerpt { json.string(excerpt) } else { json.null() }
                    json.key("timing_ms")
                    json.beginObject()
                    json.key("name_lookup"); json.number(report.timing.nameLookup * 1_000)
                    json.key("connect"); json.number(report.timing.connect * 1_000)
                    json.key("tls_handshake"); json.number(report.timing.tlsHandshake * 1_000)
                    json.key("total"); json.number(report.timing.total * 1_000)
                    json.endObject()
                }
            }.recover { error in Self.failure(request, "\(error)") }
        case .deadletters:
            return onStore(request, eventLoop) { store in
                let letters = try store.deadLetters()
                return Self.envelope(request, ok: true) { json in
                    json.key("dead_letters")
                    json.beginArray()
                    for letter in letters {
                        json.beginObject()
                        json.key("batch_id"); json.string(letter.batchID)
                        json.key("documents"); json.integer(Int64(letter.documentCount))
                        json.key("status"); json.integer(Int64(letter.status))
                        json.key("response"); json.string(letter.responseExcerpt)
                        json.key("dead_at"); json.string(Timestamp(microseconds: letter.deadAt).rfc3339)
                        json.endObject()
                    }
                    json.endArray()
                }
            }
        case .deadletterReplay, .deadletterPurge:
            let promise = eventLoop.makePromise(of: [UInt8].self)
            let replay = request.command == .deadletterReplay
            writer.withStore { [forwarder] store in
                let count: Int
                do {
                    count = replay ? try store.replayDeadLetters(batchID: request.batchID)
                                   : try store.purgeDeadLetters(batchID: request.batchID)
                } catch {
                    promise.succeed(Self.failure(request, "\(error)"))
                    return nil
                }
                if replay { forwarder?.documentsStored() }
                // Answered once the change is durable, like a flush.
                return { durable in
                    switch durable {
                    case .success:
                        promise.succeed(Self.envelope(request, ok: true) { json in
                            json.key("documents"); json.integer(Int64(count))
                        })
                    case .failure(let error):
                        promise.succeed(Self.failure(request, "\(error)"))
                    }
                }
            }
            return promise.futureResult
        case .status:
            return onStore(request, eventLoop) { store in try self.status(request, store: store) }
        case .executions:
            return onStore(request, eventLoop) { store in
                let limit = request.limit ?? 20
                let summaries = try store.documentSummaries(limit: limit, script: request.script)
                return Self.envelope(request, ok: true) { json in
                    json.key("executions")
                    json.beginArray()
                    for summary in summaries {
                        json.beginObject()
                        json.key("execution_id"); json.string(summary.executionID)
                        json.key("script_name"); json.string(summary.scriptName)
                        json.key("status"); json.string(summary.status)
                        json.key("started_at"); json.string(Timestamp(microseconds: summary.startedAt).rfc3339)
                        json.key("completed_at"); json.string(Timestamp(microseconds: summary.completedAt).rfc3339)
                        json.key("bytes"); json.integer(Int64(summary.bodyBytes))
                        json.endObject()
                    }
                    json.endArray()
                }
            }
        case .show:
            return onStore(request, eventLoop) { store in
                guard let id = request.executionID else {
                    return Self.failure(request, "show needs an execution_id")
                }
                guard let document = try store.document(executionID: id.description) else {
                    return Self.failure(request, "no stored document for execution \(id); an execution is stored once it ends (or after TELEMETRY_EXECUTION_TIMEOUT); list stored ones with `telemetry executions`")
                }
                return Self.envelope(request, ok: true) { json in
                    json.key("document"); json.raw(document.body)
                }
            }
        }
    }

    private func onStore(_ request: ControlRequest, _ eventLoop: EventLoop,
                         _ body: @escaping @Sendable (TelemetryStore) throws -> [UInt8]) -> EventLoopFuture<[UInt8]> {
        let reader = self.reader
        return threadPool.runIfActive(eventLoop: eventLoop) {
            do {
                return try reader.read(body)
            } catch {
                return Self.failure(request, "could not read the store: \(error)")
            }
        }.recover { error in Self.failure(request, "\(error)") }
    }

    private func status(_ request: ControlRequest, store: TelemetryStore) throws -> [UInt8] {
        let snapshot = counters.snapshot
        let statistics = try store.statistics()
        let now = Timestamp.now()
        return Self.envelope(request, ok: true) { json in
            json.key("version"); json.string(identity.version)
            json.key("pid"); json.integer(Int64(getpid()))
            json.key("uptime_seconds"); json.integer((now.microseconds - identity.startedAt.microseconds) / 1_000_000)
            json.key("started_at"); json.string(identity.startedAt.rfc3339)
            json.key("socket"); json.string(identity.socketPath)
            json.key("state_dir"); json.string(identity.stateDirectory)
            json.key("enabled"); json.bool(identity.enabled)
            json.key("endpoint")
            if let host = identity.endpointHost { json.string(host) } else { json.null() }
            json.key("store")
            json.beginObject()
            json.key("path"); json.string(store.path)
            json.key("bytes"); json.integer(Int64(statistics.fileBytes))
            json.key("documents"); json.integer(Int64(statistics.documentCount))
            json.key("journal_chunks"); json.integer(Int64(statistics.journalChunkCount))
            json.key("journal_bytes"); json.integer(Int64(statistics.journalBytes))
            json.key("last_commit")
            if let last = snapshot.lastCommitAt { json.string(last.rfc3339) } else { json.null() }
            json.key("commits"); json.integer(Int64(snapshot.commits))
            json.key("commit_failures"); json.integer(Int64(snapshot.commitFailures))
            json.key("last_error")
            if let error = snapshot.storeError { json.string(error) } else { json.null() }
            json.endObject()
            json.key("open_executions"); json.integer(Int64(snapshot.openExecutions))
            json.key("documents_stored"); json.integer(Int64(snapshot.documentsStored))
            json.key("lines_accepted"); json.integer(Int64(snapshot.linesAccepted))
            json.key("events_dropped"); json.integer(Int64(snapshot.eventsDropped))
            json.key("lines_rejected")
            json.beginObject()
            for reason in RejectReason.allCases {
                json.key(reason.rawValue); json.integer(Int64(snapshot.rejected[reason] ?? 0))
            }
            json.endObject()
            json.key("delivery")
            if let forwarder {
                let delivery = forwarder.status
                json.beginObject()
                json.key("state"); json.string(delivery.state.rawValue)
                json.key("outage_since")
                if let since = delivery.outageSince { json.string(since.rfc3339) } else { json.null() }
                json.key("next_attempt_at")
                if let next = delivery.nextAttemptAt { json.string(next.rfc3339) } else { json.null() }
                json.key("last_success_at")
                if let last = delivery.lastSuccessAt { json.string(last.rfc3339) } else { json.null() }
                json.key("last_error")
                if let error = delivery.lastError { json.string(error) } else { json.null() }
                json.key("pending_documents"); json.integer(Int64(delivery.pendingDocuments))
                json.key("batches_delivered"); json.integer(Int64(delivery.batchesDelivered))
                json.key("documents_delivered"); json.integer(Int64(delivery.documentsDelivered))
                json.key("retries"); json.integer(Int64(delivery.retries))
                json.key("batches_dead_lettered"); json.integer(Int64(delivery.batchesDeadLettered))
                json.key("dead_letter_batches"); json.integer(Int64((try? store.deadLetters().count) ?? 0))
                json.key("failed_attempts")
                json.beginObject()
                for (kind, count) in delivery.failedAttempts.sorted(by: { $0.key < $1.key }) {
                    json.key(kind); json.integer(Int64(count))
                }
                json.endObject()
                json.endObject()
            } else {
                json.null()
            }
            json.key("connections")
            json.beginObject()
            json.key("current"); json.integer(Int64(snapshot.connectionsCurrent))
            json.key("total"); json.integer(Int64(snapshot.connectionsTotal))
            json.key("refused"); json.integer(Int64(snapshot.connectionsRefused))
            json.endObject()
        }
    }

    static func envelope(_ request: ControlRequest, ok: Bool, _ body: (inout JSONWriter) -> Void) -> [UInt8] {
        ControlReply.encode(request: request.command.rawValue, ok: ok, body)
    }

    static func failure(_ request: ControlRequest, _ message: String) -> [UInt8] {
        ControlReply.encode(request: request.command.rawValue, ok: false, error: message)
    }
}

/// The read-only store connection used for control requests, one request at a time.
/// SQLite connections are not thread-safe; the lock makes this one usable from the thread pool.
final class StoreReader: @unchecked Sendable {
    private let lock = NIOLock()
    private let store: TelemetryStore

    init(_ store: TelemetryStore) { self.store = store }

    /// Monotonic seconds of the previous read; guarded by `lock`.
    private var lastRead = -Double.infinity

    /// Runs `body` on the reader connection, then frees its cache pages: reads are occasional (control
    /// requests, scrapes), and in WAL mode SQLite drops a connection's cache anyway when another connection
    /// wrote since its last read, so between reads the pages would only sit in the daemon's RSS. The heap is
    /// trimmed only after a read that follows a second without any: a client polling `status` every few
    /// milliseconds (as `make bench` does during ingest) does not make the daemon walk its heap each time.
    func read<T>(_ body: (TelemetryStore) throws -> T) throws -> T {
        try lock.withLock {
            let now = monotonicSeconds()
            let sparse = now - lastRead >= 1
            lastRead = now
            defer { store.releaseCacheMemory(trimHeap: sparse) }
            return try body(store)
        }
    }
}
