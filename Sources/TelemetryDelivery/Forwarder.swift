import Logging
import TelemetryCore
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// What an operator sees of delivery in `telemetry status` and the STATUS line.
public struct DeliveryStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Nothing waits, or what waits is not due yet.
        case idle
        /// The last attempt succeeded.
        case delivering
        /// A batch failed and is being retried within the current cycle.
        case retrying
        /// The endpoint has been failing; documents wait in the store.
        case outage
    }

    public var state: State = .idle
    public var outageSince: Timestamp?
    public var lastSuccessAt: Timestamp?
    public var lastError: String?
    /// When the next cycle may run during an outage (never before a Retry-After).
    public var nextAttemptAt: Timestamp?
    public var pendingDocuments = 0
    public var batchesDelivered = 0
    public var documentsDelivered = 0
    /// Failed attempts by kind (`http_503`, `timeout`, `connect`, `tls_verification`, …).
    public var failedAttempts: [String: Int] = [:]
    public var retries = 0
    public var batchesDeadLettered = 0
    /// Seconds the last delivered request took.
    public var lastLatencySeconds: Double?

    public init() {}
}

/// The answer to `telemetry flush` once delivery is on.
public struct FlushOutcome: Sendable, Equatable {
    /// Everything stored when the flush was asked for has been delivered.
    public var delivered: Bool
    public var pendingDocuments: Int
    public var message: String?

    public init(delivered: Bool, pendingDocuments: Int, message: String?) {
        self.delivered = delivered
        self.pendingDocuments = pendingDocuments
        self.message = message
    }
}

/// Drains the store to the endpoint on its own thread: forms batches (by count, age and bytes), sends each with
/// retries, and records the outcome in the store, so that a crash at any point resends the same batch with the
/// same Idempotency-Key and loses nothing (at least once). See docs/delivery.md.
public final class Forwarder: @unchecked Sendable {
    private enum Cycle {
        case delivered
        case refused
        case gaveUp(reason: String)
    }

    private let store: TelemetryStore
    // Forwarder-thread state; a reload hands new values over through `pendingReconfiguration`.
    private var settings: DeliverySettings
    private var transport: HTTPTransport
    private let logger: Logger
    private let now: @Sendable () -> Timestamp
    private let unitRandom: @Sendable () -> Double
    private let signal = WakeSignal()
    private var thread: pthread_t?

    // Shared with other threads, under `signal`'s lock.
    private var stopRequested = false
    private var stopDeadline: Double?
    /// Each waiter with the number of batches dead-lettered when it asked, to report refusals since then.
    private var flushWaiters: [(deadLetteredBefore: Int, callback: @Sendable (FlushOutcome) -> Void)] = []
    private var published = DeliveryStatus()
    private var pendingReconfiguration: (settings: DeliverySettings, transport: HTTPTransport?)?

    // Forwarder-thread state.
    private var working = DeliveryStatus()
    private var consecutiveFailures = 0
    /// Monotonic time before which no new cycle starts (backoff and Retry-After).
    private var notBefore: Double = 0

    public init(store: TelemetryStore, settings: DeliverySettings, transport: HTTPTransport, logger: Logger,
                now: @escaping @Sendable () -> Timestamp = { Timestamp.now() },
                unitRandom: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.store = store
        self.settings = settings
        self.transport = transport
        self.logger = logger
        self.now = now
        self.unitRandom = unitRandom
    }

    public var status: DeliveryStatus { signal.withLock { published } }

    /// Told, on the forwarder thread, how many seconds each delivered request took (the metrics' latency
    /// histogram). Set it before `start()`.
    public var onDelivered: (@Sendable (_ seconds: Double) -> Void)?

    public func start() {
        thread = DaemonThread.start(name: "forwarder") { self.run() }
    }

    /// New delivery settings (a configuration reload): taken up between two batches, never in the middle of one,
    /// so a batch keeps its documents and its Idempotency-Key. `transport` replaces the HTTP session when the
    /// TLS files or timeouts changed. A waiting backoff ends: the next attempt uses the new settings at once.
    public func reconfigure(_ settings: DeliverySettings, transport: HTTPTransport?) {
        signal.withLock { pendingReconfiguration = (settings, transport) }
        signal.poke()
    }


    private func applyPendingReconfiguration() {
        guard let pending = signal.withLock({ () -> (settings: DeliverySettings, transport: HTTPTransport?)? in
            defer { pendingReconfiguration = nil }
            return pendingReconfiguration
        }) else { return }
        settings = pending.settings
        if let transport = pending.transport { self.transport = transport }
        notBefore = 0
        consecutiveFailures = 0
    }

    /// New documents were committed: re-check whether a batch is due.
    public func documentsStored() { signal.poke() }

    /// Delivers everything that waits now, and calls back with the outcome (the caller bounds the wait).
    public func flush(_ callback: @escaping @Sendable (FlushOutcome) -> Void) {
        signal.withLock { flushWaiters.append((published.batchesDeadLettered, callback)) }
        signal.poke()
    }

    /// Stops after one last delivery attempt that ends within `seconds`; what is left stays in the store.
    public func stop(finalDeliveryWithin seconds: Double) {
        signal.withLock {
            stopRequested = true
            stopDeadline = monotonicSeconds() + seconds
        }
        signal.poke()
        DaemonThread.join(&thread)
    }

    // MARK: The loop

    private func run() {
        var wait = 0.0
        while true {
            // A flush or a stop that arrived during the last cycle must not wait out the sleep.
            if !signal.withLock({ stopRequested || !flushWaiters.isEmpty }) {
                signal.wait(seconds: wait)
            }
            applyPendingReconfiguration()
            let (stopping, deadline, flushing) = signal.withLock { (stopRequested, stopDeadline, !flushWaiters.isEmpty) }
            if stopping {
                _ = cycle(force: true, deadline: deadline)
                completeFlushes()
                return
            }
            wait = cycle(force: flushing, deadline: nil)
            if flushing { completeFlushes() }
        }
    }

    /// One pass: deliver every due batch. Returns how long to sleep before the next pass.
    private func cycle(force: Bool, deadline: Double?) -> Double {
        let started = monotonicSeconds()
        if started < notBefore {
            // Backing off (possibly for a Retry-After): not even a flush may send sooner.
            refreshBacklog()
            return notBefore - started
        }
        while true {
            guard let backlog = refreshBacklog() else { return 5 }
            guard backlog.pendingDocuments > 0 || backlog.hasOpenBatch else {
                if working.state != .outage { working.state = .idle }
                publish()
                return 3_600
            }
            let age = backlog.oldestCompletedAt.map { Double(now().microseconds - $0) / 1_000_000 } ?? 0
            let due = force || backlog.hasOpenBatch || backlog.pendingDocuments >= settings.batchSize
                || age >= settings.flushIntervalSeconds
            guard due else { return max(0.05, settings.flushIntervalSeconds - age) }
            let batch: DeliveryBatch
            do {
                guard let next = try store.openBatch()
                    ?? store.createBatch(id: UUIDv4.generate(), maxDocuments: settings.batchSize,
                                         maxBytes: settings.batchMaxBytes, now: now().microseconds)
                else { return 1 }
                batch = next
            } catch {
                logger.error("cannot read the delivery queue from the store", metadata: ["error": "\(error)"])
                return 5
            }
            switch deliver(consume batch, deadline: deadline) {
            case .delivered, .refused:
                continue
            case .gaveUp:
                refreshBacklog()
                return max(0.05, notBefore - monotonicSeconds())
            }
        }
    }

    /// Sends one batch, retrying within the cycle; records the outcome in the store.
    private func deliver(_ batch: consuming DeliveryBatch, deadline: Double?) -> Cycle {
        var attempt = 0
        let documentCount = batch.documents.count
        // JSON: the body is built once (each document's bytes released as they are copied) and compressed
        // once; every attempt sends the same bytes. The batch never holds its documents and the whole body at
        // the same time for long (memory peak: one uncompressed body).
        var prepared: Result<HTTPRequest, CompressionError>?
        if settings.format == .json {
            prepared = prepareJSON(&batch)
        }
        while true {
            if let deadline, monotonicSeconds() >= deadline { return .gaveUp(reason: "shutdown deadline reached") }
            let startedAt = monotonicSeconds()
            let outcome = send(batch, prepared: prepared, deadline: deadline)
            let stamp = now()
            switch outcome {
            case .delivered(let status):
                do {
                    try store.markDelivered(batchID: batch.id, at: stamp.microseconds)
                } catch {
                    // Delivered but not recorded: it will be sent again with the same key (at least once).
                    logger.error("batch delivered but the store could not record it; it will be resent with the same Idempotency-Key",
                                 metadata: ["batch_id": "\(batch.id)", "error": "\(error)"])
                    return .gaveUp(reason: "\(error)")
                }
                if working.state == .outage, let since = working.outageSince {
                    logger.notice("delivery resumed after an outage of \(Int(stamp.seconds - since.seconds))s",
                                  metadata: ["endpoint_host": "\(endpointHost)", "status": "\(status)",
                                             "outage_seconds": "\(Int(stamp.seconds - since.seconds))",
                                             JournalMessageID.metadataKey: "\(JournalMessageID.outageEnded)"])
                }
                working.state = .delivering
                working.outageSince = nil
                working.nextAttemptAt = nil
                working.lastSuccessAt = stamp
                working.lastError = nil
                working.batchesDelivered += 1
                working.documentsDelivered += documentCount
                let latency = monotonicSeconds() - startedAt
                working.lastLatencySeconds = latency
                consecutiveFailures = 0
                notBefore = 0
                publish()
                onDelivered?(latency)
                return .delivered
            case .refused(let status, let excerpt):
                do {
                    try store.deadLetter(batchID: batch.id, status: status, response: excerpt, at: stamp.microseconds)
                } catch {
                    logger.error("cannot dead-letter a refused batch; it will be sent again", metadata: ["error": "\(error)"])
                    return .gaveUp(reason: "\(error)")
                }
                logger.error("the endpoint refused a batch with HTTP \(status); it is kept as a dead letter (see `telemetry deadletter list`)",
                             metadata: ["batch_id": "\(batch.id)", "documents": "\(documentCount)",
                                        "http_status": "\(status)", "response": "\(excerpt)", "endpoint_host": "\(endpointHost)",
                                        JournalMessageID.metadataKey: "\(JournalMessageID.batchDeadLettered)"])
                working.batchesDeadLettered += 1
                working.failedAttempts["http_\(status)", default: 0] += 1
                publish()
                return .refused
            case .retry(let kind, let reason, let after):
                try? store.recordAttempt(batchID: batch.id, at: stamp.microseconds, error: reason)
                working.failedAttempts[kind, default: 0] += 1
                working.lastError = reason
                if working.state != .outage {
                    // Each failed attempt before an outage is declared; during an outage only its start and end
                    // are logged (the backoff bounds how often an attempt is made anyway).
                    logger.warning("delivery attempt failed: \(reason)",
                                   metadata: ["reason": "\(reason)", "kind": "\(kind)", "endpoint_host": "\(endpointHost)",
                                              "batch_id": "\(batch.id)", "attempt": "\(attempt + 1)",
                                              JournalMessageID.metadataKey: "\(JournalMessageID.deliveryFailed)"])
                }
                if attempt < settings.retryAttempts {
                    if working.state != .outage { working.state = .retrying }
                    let delay = max(RetryPolicy.backoff(attempt: attempt, baseSeconds: settings.baseBackoffSeconds,
                                                        capSeconds: settings.maxBackoffSeconds, unitRandom: unitRandom),
                                    after ?? 0)
                    if let deadline, monotonicSeconds() + delay >= deadline {
                        return .gaveUp(reason: reason)
                    }
                    attempt += 1
                    working.retries += 1
                    publish()
                    if !sleep(seconds: delay) { return .gaveUp(reason: reason) }
                    continue
                }
                consecutiveFailures += 1
                // Between cycles: at least half of an exponentially growing ceiling, capped; never before Retry-After.
                let ceiling = min(settings.maxBackoffSeconds,
                                  settings.baseBackoffSeconds * Double(1 << min(consecutiveFailures + settings.retryAttempts, 30)))
                let wait = max(ceiling / 2 + ceiling / 2 * unitRandom(), after ?? 0)
                notBefore = monotonicSeconds() + wait
                if working.state != .outage {
                    working.outageSince = stamp
                    logger.error("delivery outage: \(reason); documents stay in the store and are retried",
                                 metadata: ["reason": "\(reason)", "endpoint_host": "\(endpointHost)",
                                            "retry_in_seconds": "\(Int(wait))", "batch_id": "\(batch.id)",
                                            JournalMessageID.metadataKey: "\(JournalMessageID.outageBegan)"])
                }
                working.state = .outage
                working.nextAttemptAt = Timestamp(microseconds: stamp.microseconds + Int64(wait * 1_000_000))
                publish()
                return .gaveUp(reason: reason)
            }
        }
    }

    /// Sleeps for `seconds` unless a stop arrives (new documents do not shorten a backoff). False when stopped.
    private func sleep(seconds: Double) -> Bool {
        let end = monotonicSeconds() + seconds
        var poked = false
        // Pass on a poke (new documents) that arrived meanwhile, so the main loop looks again afterwards.
        defer { if poked { signal.poke() } }
        while true {
            let remaining = end - monotonicSeconds()
            if remaining <= 0 { return true }
            if signal.wait(seconds: remaining) { poked = true }
            if signal.withLock({ stopRequested }) { return false }
        }
    }

    // MARK: Requests

    /// The JSON array of the batch's documents as a ready request; the documents' own bytes are released.
    private func prepareJSON(_ batch: inout DeliveryBatch) -> Result<HTTPRequest, CompressionError> {
        var body: [UInt8] = [UInt8(ascii: "[")]
        body.reserveCapacity(batch.documents.reduce(2) { $0 + $1.body.count + 1 })
        for index in batch.documents.indices {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: batch.documents[index].body)
            batch.documents[index].body = []
        }
        body.append(UInt8(ascii: "]"))
        do {
            return .success(try makeRequest(body, url: settings.endpoint, idempotencyKey: batch.id, timeout: nil))
        } catch let error as CompressionError {
            return .failure(error)
        } catch {
            return .failure(CompressionError("\(error)"))
        }
    }

    private func send(_ batch: DeliveryBatch, prepared: Result<HTTPRequest, CompressionError>?, deadline: Double?) -> AttemptOutcome {
        let timeout = deadline.map { max(0.5, $0 - monotonicSeconds()) }
        switch settings.format {
        case .json:
            var copy = batch
            switch prepared ?? prepareJSON(&copy) {
            case .success(var request):
                request.timeoutSeconds = timeout
                return RetryPolicy.classify(transport.post(request), now: now())
            case .failure(let error):
                return .retry(kind: "compression", reason: "cannot compress the batch: \(error)", notBefore: nil)
            }
        case .otlp:
            let documents = batch.documents.compactMap { try? JSONValue.parse($0.body) }
            let base = settings.endpoint.hasSuffix("/") ? String(settings.endpoint.dropLast()) : settings.endpoint
            let logs = post(OTLPMapping.logsRequest(documents: documents), to: base + "/v1/logs", key: batch.id, timeout: timeout)
            guard case .delivered = logs else { return logs }
            return post(OTLPMapping.metricsRequest(documents: documents), to: base + "/v1/metrics", key: batch.id, timeout: timeout)
        }
    }

    private func post(_ json: [UInt8], to url: String, key: String, timeout: Double?) -> AttemptOutcome {
        let request: HTTPRequest
        do {
            request = try makeRequest(json, url: url, idempotencyKey: key, timeout: timeout)
        } catch {
            return .retry(kind: "compression", reason: "cannot compress the batch: \(error)", notBefore: nil)
        }
        return RetryPolicy.classify(transport.post(request), now: now())
    }

    func makeRequest(_ json: [UInt8], url: String, idempotencyKey: String, timeout: Double?) throws -> HTTPRequest {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        let body: [UInt8]
        if settings.compression == .none {
            body = json
        } else {
            body = try PayloadCompressor.compress(json, settings.compression)
            headers.append(("Content-Encoding", settings.compression.rawValue))
        }
        if let key = settings.apiKey, !key.isEmpty { headers.append(("Authorization", "Bearer \(key)")) }
        headers.append(("Idempotency-Key", idempotencyKey))
        headers.append(("User-Agent", settings.http.userAgent))
        return HTTPRequest(url: url, body: body, headers: headers, timeoutSeconds: timeout)
    }

    // MARK: Status

    @discardableResult
    private func refreshBacklog() -> DeliveryBacklog? {
        do {
            let backlog = try store.deliveryBacklog()
            working.pendingDocuments = backlog.pendingDocuments
            publish()
            return backlog
        } catch {
            logger.error("cannot read the delivery backlog from the store", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func publish() {
        let snapshot = working
        signal.withLock { published = snapshot }
    }

    private func completeFlushes() {
        let waiters = signal.withLock { () -> [(deadLetteredBefore: Int, callback: @Sendable (FlushOutcome) -> Void)] in
            defer { flushWaiters = [] }
            return flushWaiters
        }
        guard !waiters.isEmpty else { return }
        let pending = working.pendingDocuments
        for waiter in waiters {
            let refused = working.batchesDeadLettered - waiter.deadLetteredBefore
            let message: String?
            if refused > 0 {
                message = "the endpoint refused \(refused) batch(es) for good; they are dead letters (see `telemetry deadletter list`)"
            } else if pending > 0 {
                message = working.lastError.map { "not delivered: \($0)" } ?? "not delivered yet"
            } else {
                message = nil
            }
            waiter.callback(FlushOutcome(delivered: pending == 0 && refused == 0, pendingDocuments: pending, message: message))
        }
    }

    private var endpointHost: String { EndpointURL.host(of: settings.endpoint) ?? "" }

}

/// Parts of the endpoint URL that are safe to show (never its query, which may carry a token).
public enum EndpointURL {
    public static func host(of endpoint: String) -> String? {
        guard !endpoint.isEmpty else { return nil }
        var rest = Substring(endpoint)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            rest = rest[rest.index(colon, offsetBy: 3)...]
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return String(authority.split(separator: "@").last ?? authority)
    }
}
