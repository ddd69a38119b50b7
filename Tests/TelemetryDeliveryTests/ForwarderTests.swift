import Logging
import Testing
import TelemetryCore
@testable import TelemetryDelivery
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// A transport that answers from a script and records what it was asked, with when.
final class ScriptedTransport: HTTPTransport, @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var script: [Result<HTTPResponse, HTTPFailure>]
    private var fallbackResult: Result<HTTPResponse, HTTPFailure>
    private(set) var requests: [(request: HTTPRequest, at: Double)] = []

    init(_ script: [Result<HTTPResponse, HTTPFailure>], then fallback: Result<HTTPResponse, HTTPFailure> = .success(ok())) {
        self.script = script
        self.fallbackResult = fallback
        pthread_mutex_init(lock, nil)
    }

    func post(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPFailure> {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        requests.append((request, monotonicSeconds()))
        return script.isEmpty ? fallbackResult : script.removeFirst()
    }

    /// What every request gets once the script is used up.
    var fallback: Result<HTTPResponse, HTTPFailure> {
        get {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            return fallbackResult
        }
        set {
            pthread_mutex_lock(lock)
            fallbackResult = newValue
            pthread_mutex_unlock(lock)
        }
    }

    var recorded: [(request: HTTPRequest, at: Double)] {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return requests
    }

    static func ok(_ status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: [:], body: [], timing: HTTPTiming(total: 0.001), httpVersion: "1.1")
    }

    static func status(_ status: Int, headers: [String: String] = [:], body: String = "") -> Result<HTTPResponse, HTTPFailure> {
        .success(HTTPResponse(status: status, headers: headers, body: Array(body.utf8), timing: HTTPTiming(), httpVersion: "1.1"))
    }
}

func header(_ request: HTTPRequest, _ name: String) -> String? {
    request.headers.first { $0.name.lowercased() == name.lowercased() }?.value
}

final class StoreFixture {
    let directory: String
    let store: TelemetryStore

    init(documents count: Int) throws {
        var template = Array("/tmp/telemetry-forwarder-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        store = try TelemetryStore(directory: directory, synchronous: .normal)
        store.enqueuesForDelivery = true
        try add(count, from: 1)
    }

    func add(_ count: Int, from first: Int) throws {
        guard count > 0 else { return }
        let documents = (first..<(first + count)).map { index in
            let id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - String(index).count) + String(index)
            return StoredDocument(executionID: id, scriptName: "deploy", status: "success", startedAt: 1,
                                  completedAt: Timestamp.now().microseconds, body: Array(#"{"execution_id":"\#(id)"}"#.utf8))
        }
        try store.commit(StoreBatch(documents: documents))
    }

    deinit { _ = system("rm -rf '\(directory)'") }
}

func settings(batchSize: Int = 100, retryAttempts: Int = 3, compression: PayloadCompression = .none) -> DeliverySettings {
    var settings = DeliverySettings(endpoint: "https://receiver.test/ingest", http: HTTPSettings(userAgent: "telemetryd/test"))
    settings.batchSize = batchSize
    settings.retryAttempts = retryAttempts
    settings.compression = compression
    settings.baseBackoffSeconds = 0.01
    settings.maxBackoffSeconds = 0.05
    settings.flushIntervalSeconds = 3_600
    settings.apiKey = "secret-key"
    return settings
}

extension Forwarder {
    func flushAndWait() async -> FlushOutcome {
        await withCheckedContinuation { continuation in flush { continuation.resume(returning: $0) } }
    }
}

@Suite("Forwarder")
struct ForwarderTests {
    @Test("batches by size, one Idempotency-Key per batch, documents delivered in order with the contract's headers")
    func batching() async throws {
        let fixture = try StoreFixture(documents: 5)
        let transport = ScriptedTransport([])
        let forwarder = Forwarder(store: fixture.store, settings: settings(batchSize: 2, compression: .gzip),
                                  transport: transport, logger: Logger(label: "test"))
        forwarder.start()
        let outcome = await forwarder.flushAndWait()
        forwarder.stop(finalDeliveryWithin: 1)
        #expect(outcome.delivered && outcome.pendingDocuments == 0)
        let requests = transport.recorded.map(\.request)
        #expect(requests.count == 3, "5 documents in batches of 2")
        #expect(Set(requests.compactMap { header($0, "Idempotency-Key") }).count == 3)
        let first = try #require(requests.first)
        #expect(header(first, "Content-Type") == "application/json")
        #expect(header(first, "Content-Encoding") == "gzip")
        #expect(header(first, "Authorization") == "Bearer secret-key")
        #expect(header(first, "User-Agent") == "telemetryd/test")
        let body = try JSONValue.parse(try PayloadCompressor.decompress(first.body, .gzip))
        #expect(body.arrayValue?.compactMap { $0["execution_id"]?.stringValue }
                == ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"])
        #expect(try fixture.store.deliveryBacklog().pendingDocuments == 0)
        #expect(forwarder.status.documentsDelivered == 5)
    }

    @Test("a retryable failure is retried with the same key until it succeeds")
    func retryThenSuccess() async throws {
        let fixture = try StoreFixture(documents: 2)
        let transport = ScriptedTransport([
            ScriptedTransport.status(503, body: "busy"),
            .failure(HTTPFailure(kind: .connectionLost, message: "reset by peer", curlCode: 56)),
            ScriptedTransport.status(200),
        ])
        let forwarder = Forwarder(store: fixture.store, settings: settings(), transport: transport, logger: Logger(label: "test"))
        forwarder.start()
        let outcome = await forwarder.flushAndWait()
        forwarder.stop(finalDeliveryWithin: 1)
        #expect(outcome.delivered)
        let keys = transport.recorded.map { header($0.request, "Idempotency-Key") }
        #expect(keys.count == 3 && Set(keys).count == 1, "every retry of the batch carries the same key")
        #expect(forwarder.status.retries == 2)
        #expect(forwarder.status.failedAttempts["http_503"] == 1)
    }

    @Test("Retry-After is honoured: the next attempt is never sooner")
    func retryAfter() async throws {
        let fixture = try StoreFixture(documents: 1)
        let transport = ScriptedTransport([ScriptedTransport.status(429, headers: ["retry-after": "1"])])
        let forwarder = Forwarder(store: fixture.store, settings: settings(), transport: transport, logger: Logger(label: "test"))
        forwarder.start()
        _ = await forwarder.flushAndWait()
        forwarder.stop(finalDeliveryWithin: 1)
        let times = transport.recorded.map(\.at)
        try #require(times.count == 2)
        #expect(times[1] - times[0] >= 1.0, "waited \(times[1] - times[0]) s after Retry-After: 1")
    }

    @Test("any other 4xx dead-letters the batch, which can be replayed with a new key")
    func deadLetter() async throws {
        let fixture = try StoreFixture(documents: 3)
        let transport = ScriptedTransport([ScriptedTransport.status(400, body: "bad schema")])
        let forwarder = Forwarder(store: fixture.store, settings: settings(batchSize: 2), transport: transport,
                                  logger: Logger(label: "test"))
        forwarder.start()
        let outcome = await forwarder.flushAndWait()
        #expect(!outcome.delivered && outcome.pendingDocuments == 0, "the other batch went through; the refused one is set aside")
        #expect(outcome.message?.contains("dead letters") == true, "a flush says that a batch was refused")
        let letters = try fixture.store.deadLetters()
        #expect(letters.count == 1 && letters.first?.status == 400 && letters.first?.responseExcerpt == "bad schema")
        #expect(forwarder.status.batchesDeadLettered == 1)
        let refusedKey = header(transport.recorded[0].request, "Idempotency-Key")
        #expect(try fixture.store.replayDeadLetters(batchID: letters[0].batchID) == 2)
        _ = await forwarder.flushAndWait()
        forwarder.stop(finalDeliveryWithin: 1)
        #expect(try fixture.store.deliveryBacklog().pendingDocuments == 0)
        #expect(header(transport.recorded.last!.request, "Idempotency-Key") != refusedKey, "a replay is a new batch")
    }

    @Test("when attempts run out nothing is dropped: the batch waits, and goes out with the same key once the endpoint is back")
    func outage() async throws {
        let fixture = try StoreFixture(documents: 2)
        let transport = ScriptedTransport([], then: ScriptedTransport.status(503))
        let forwarder = Forwarder(store: fixture.store, settings: settings(retryAttempts: 1), transport: transport,
                                  logger: Logger(label: "test"))
        forwarder.start()
        let first = await forwarder.flushAndWait()
        #expect(!first.delivered && first.pendingDocuments == 2)
        #expect(first.message?.contains("503") == true, "\(String(describing: first.message))")
        #expect(forwarder.status.state == .outage)
        transport.fallback = .success(ScriptedTransport.ok())
        var delivered = false
        for _ in 0..<100 where !delivered {
            delivered = await forwarder.flushAndWait().delivered
            if !delivered { try await Task.sleep(for: .milliseconds(20)) }
        }
        forwarder.stop(finalDeliveryWithin: 1)
        #expect(delivered)
        #expect(Set(transport.recorded.map { header($0.request, "Idempotency-Key") }).count == 1)
        #expect(forwarder.status.state != .outage && forwarder.status.lastSuccessAt != nil)
    }

    @Test("after a restart the open batch is resent with its key")
    func restartResendsTheSameBatch() async throws {
        let fixture = try StoreFixture(documents: 2)
        let before = ScriptedTransport([ScriptedTransport.status(503)], then: ScriptedTransport.status(503))
        let first = Forwarder(store: fixture.store, settings: settings(retryAttempts: 0), transport: before,
                              logger: Logger(label: "test"))
        first.start()
        _ = await first.flushAndWait()
        first.stop(finalDeliveryWithin: 0)
        let key = try #require(header(before.recorded[0].request, "Idempotency-Key"))

        let reopened = try TelemetryStore(directory: fixture.directory, synchronous: .normal)
        let after = ScriptedTransport([])
        let second = Forwarder(store: reopened, settings: settings(), transport: after, logger: Logger(label: "test"))
        second.start()
        let outcome = await second.flushAndWait()
        second.stop(finalDeliveryWithin: 1)
        #expect(outcome.delivered)
        #expect(after.recorded.map { header($0.request, "Idempotency-Key") } == [key])
    }
}

@Suite("Retry policy")
struct RetryPolicyTests {
    let now = Timestamp(microseconds: 784_111_777_000_000)  // Sun, 06 Nov 1994 08:49:37 GMT

    @Test("status classes")
    func classes() {
        #expect(RetryPolicy.classify(ScriptedTransport.status(204), now: now) == .delivered(status: 204))
        for status in [408, 429, 500, 502, 503, 504] {
            guard case .retry = RetryPolicy.classify(ScriptedTransport.status(status), now: now) else {
                Issue.record("\(status) must be retried")
                continue
            }
        }
        for status in [400, 401, 403, 404, 413, 422] {
            guard case .refused(status, _) = RetryPolicy.classify(ScriptedTransport.status(status), now: now) else {
                Issue.record("\(status) must be refused")
                continue
            }
        }
        guard case .retry = RetryPolicy.classify(.failure(HTTPFailure(kind: .timeout, message: "t", curlCode: 28)), now: now) else {
            Issue.record("timeouts are retried")
            return
        }
    }

    @Test("Retry-After as seconds and as an HTTP date")
    func retryAfter() {
        #expect(RetryPolicy.retryAfterSeconds("120", now: now) == 120)
        #expect(RetryPolicy.retryAfterSeconds("Sun, 06 Nov 1994 08:50:07 GMT", now: now) == 30)
        #expect(RetryPolicy.retryAfterSeconds("Sun, 06 Nov 1994 08:40:00 GMT", now: now) == 0, "a past date means now")
        #expect(RetryPolicy.retryAfterSeconds("soon", now: now) == nil)
        guard case .retry("http_503", _, let after) = RetryPolicy.classify(ScriptedTransport.status(503, headers: ["retry-after": "7"]), now: now) else {
            Issue.record("503 is retried")
            return
        }
        #expect(after == 7)
    }

    @Test("full jitter stays within [0, min(cap, base × 2^attempt)]")
    func jitter() {
        #expect(RetryPolicy.backoff(attempt: 3, baseSeconds: 0.5, capSeconds: 300, unitRandom: { 0.999_999 }) < 4)
        #expect(RetryPolicy.backoff(attempt: 3, baseSeconds: 0.5, capSeconds: 300, unitRandom: { 0.5 }) == 2)
        #expect(RetryPolicy.backoff(attempt: 40, baseSeconds: 0.5, capSeconds: 300, unitRandom: { 0.5 }) == 150)
        #expect(RetryPolicy.backoff(attempt: 0, baseSeconds: 0.5, capSeconds: 300, unitRandom: { 0 }) == 0)
    }
}
