import Prometheus
import Synchronization
import TelemetryCore
import TelemetryDelivery
import TelemetryWire

/// The figures of the daemon itself that a scrape reads: the counters the daemon keeps anyway, the store's
/// size and the forwarder's status. Nothing on the ingest path is counted for the metrics' sake.
public struct CollectorSnapshot: Sendable, Equatable {
    public var collectionEnabled = true
    public var eventsAccepted = 0
    public var eventsRejected: [RejectReason: Int] = [:]
    public var eventsDropped = 0
    public var bytesReceived = 0
    public var connectionsOpen = 0
    public var connectionsTotal = 0
    public var connectionsRefused = 0
    public var openExecutions = 0
    public var documentsStored = 0
    public var commits = 0
    public var commitFailures = 0
    /// The store cannot take or confirm data now: commits fail, or an fsync failed (until a restart).
    public var storeFailing = false
    public var storeLimitBytes = 0
    public var retentionSeconds = 0
    /// Read from the store at scrape time; nil when it could not be read (the gauges keep their last values).
    public var store: StoreFigures?
    /// nil when forwarding is off.
    public var delivery: DeliveryStatus?
    public var process: ProcessFigures?

    public init() {}
}

public struct StoreFigures: Sendable, Equatable {
    public var usedBytes: Int
    public var fileBytes: Int
    public var documents: Int
    public var journalBytes: Int
    public var deadLetterBatches: Int
    public var deadLetterDocuments: Int

    public init(usedBytes: Int, fileBytes: Int, documents: Int, journalBytes: Int, deadLetterBatches: Int,
                deadLetterDocuments: Int) {
        self.usedBytes = usedBytes
        self.fileBytes = fileBytes
        self.documents = documents
        self.journalBytes = journalBytes
        self.deadLetterBatches = deadLetterBatches
        self.deadLetterDocuments = deadLetterDocuments
    }
}

/// The standard `process_*` figures, read from /proc by the daemon.
public struct ProcessFigures: Sendable, Equatable {
    public var cpuSeconds: Double
    public var residentBytes: Int
    public var virtualBytes: Int
    public var openFileDescriptors: Int
    public var maxFileDescriptors: Int
    public var startTimeSeconds: Double

    public init(cpuSeconds: Double, residentBytes: Int, virtualBytes: Int, openFileDescriptors: Int,
                maxFileDescriptors: Int, startTimeSeconds: Double) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.virtualBytes = virtualBytes
        self.openFileDescriptors = openFileDescriptors
        self.maxFileDescriptors = maxFileDescriptors
        self.startTimeSeconds = startTimeSeconds
    }
}

/// Everything `/metrics` shows, in one swift-prometheus registry: the script metrics, fed by the writer as
/// executions complete, and the daemon's own figures, copied from a `CollectorSnapshot` when a scrape asks.
///
/// Counters read from the daemon's own counters are set to their value at each scrape (under the scrape lock,
/// right before the registry is written out), so they are exactly the daemon's figures and only ever rise.
/// Every figure is process-lifetime: a restart starts them at 0, which `rate()` and `increase()` handle.
public final class MetricsExporter: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let scripts: ScriptMetrics
    private let collector: CollectorMetrics
    private let deliveryDuration: ValueHistogram
    private let fsyncDuration: ValueHistogram
    /// Scrapes set counters and then write the registry: one at a time.
    private let scrapeLock = Mutex(())

    public init(version: String, limits: MetricLabelLimits) {
        scripts = ScriptMetrics(registry: registry, limits: limits)
        collector = CollectorMetrics(registry: registry, version: version)
        deliveryDuration = registry.makeValueHistogram(Families.deliveryDuration,
                                                       buckets: Families.deliveryBuckets)
        fsyncDuration = registry.makeValueHistogram(Families.fsyncDuration, buckets: Families.fsyncBuckets)
    }

    /// Counts executions whose documents were just committed. Called on the writer thread.
    public func record(_ outcomes: [ExecutionOutcome]) {
        scripts.record(outcomes)
    }

    /// Observes one delivered request's latency. Called on the forwarder thread.
    public func observeDelivery(seconds: Double) {
        deliveryDuration.record(max(0, seconds))
    }

    /// Observes how long one fsync of the store's WAL took. Called on the sync thread.
    public func observeFsync(seconds: Double) {
        fsyncDuration.record(max(0, seconds))
    }

    /// The text exposition (format 0.0.4) with the daemon's figures from `snapshot`, families sorted by name.
    public func render(_ snapshot: CollectorSnapshot) -> [UInt8] {
        scrapeLock.withLock { _ in
            collector.update(snapshot)
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return ExpositionOrder.sorted(buffer)
        }
    }

    /// The `Content-Type` of `render`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// The `telemetryd_*` and `process_*` families, set from a snapshot at each scrape.
final class CollectorMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let intake: (connections: Gauge, openExecutions: Gauge, dropped: Counter, bytes: Counter,
                         connectionsTotal: Counter, connectionsRefused: Counter)
    private let storeSettings: (limit: Gauge, retention: Gauge)
    private let commits: (documents: Counter, commits: Counter, failures: Counter, failing: Gauge)
    private let collectionEnabled: Gauge
    private let rejected: [RejectReason: Counter]
    private let received: Counter
    private let store: (used: Gauge, file: Gauge, documents: Gauge, journal: Gauge, deadBatches: Gauge, deadDocuments: Gauge)
    private let delivery: (enabled: Gauge, pending: Gauge, batches: Counter, documents: Counter, retries: Counter,
                           deadLettered: Counter, lastSuccess: Gauge, states: [DeliveryStatus.State: Gauge])
    private let failures: Mutex<[String: Counter]>
    private let process: (cpu: Counter, resident: Gauge, virtual: Gauge, open: Gauge, max: Gauge, start: Gauge)

    init(registry: PrometheusCollectorRegistry, version: String) {
        self.registry = registry
        registry.makeGauge(Families.buildInfo, labels: [("version", version)]).set(1.0)
        collectionEnabled = registry.makeGauge(Families.collectionEnabled)
        received = registry.makeCounter(Families.eventsReceived)
        var rejected: [RejectReason: Counter] = [:]
        // Every reason from the start, at 0: an alert on the first rejection needs the series before it.
        for reason in RejectReason.allCases {
            rejected[reason] = registry.makeCounter(Families.eventsRejected, labels: [("reason", reason.rawValue)])
        }
        self.rejected = rejected
        intake = (registry.makeGauge(Families.connections), registry.makeGauge(Families.openExecutions),
                  registry.makeCounter(Families.eventsDropped), registry.makeCounter(Families.receivedBytes),
                  registry.makeCounter(Families.connectionsTotal), registry.makeCounter(Families.connectionsRefused))
        storeSettings = (registry.makeGauge(Families.storeLimit), registry.makeGauge(Families.retention))
        commits = (registry.makeCounter(Families.documentsStored), registry.makeCounter(Families.commits),
                   registry.makeCounter(Families.commitFailures), registry.makeGauge(Families.storeFailing))
        store = (registry.makeGauge(Families.storeUsed), registry.makeGauge(Families.storeFile),
                 registry.makeGauge(Families.storeDocuments), registry.makeGauge(Families.storeJournal),
                 registry.makeGauge(Families.deadLetterBatches),
                 registry.makeGauge(Families.deadLetterDocuments))
        var states: [DeliveryStatus.State: Gauge] = [:]
        for state in [DeliveryStatus.State.idle, .delivering, .retrying, .outage] {
            states[state] = registry.makeGauge(Families.deliveryState, labels: [("state", state.rawValue)])
        }
        delivery = (registry.makeGauge(Families.deliveryEnabled),
                    registry.makeGauge(Families.pendingDocuments),
                    registry.makeCounter(Families.batchesSent),
                    registry.makeCounter(Families.documentsSent),
                    registry.makeCounter(Families.retries),
                    registry.makeCounter(Families.deadLettered),
                    registry.makeGauge(Families.lastSuccess), states)
        // Transport failure kinds exist from the start at 0; http_<status> reasons appear when they happen.
        var failures: [String: Counter] = [:]
        for kind in HTTPFailure.Kind.allCases {
            failures[kind.rawValue] = registry.makeCounter(Families.deliveryFailures, labels: [("reason", kind.rawValue)])
        }
        self.failures = Mutex(failures)
        process = (registry.makeCounter(Families.cpuSeconds),
                   registry.makeGauge(Families.residentMemory),
                   registry.makeGauge(Families.virtualMemory),
                   registry.makeGauge(Families.openFDs), registry.makeGauge(Families.maxFDs),
                   registry.makeGauge(Families.startTime))
    }

    /// Copies `snapshot` into the registry. Runs under the exporter's scrape lock.
    func update(_ snapshot: CollectorSnapshot) {
        collectionEnabled.set(snapshot.collectionEnabled ? 1.0 : 0.0)
        intake.connections.set(Double(snapshot.connectionsOpen))
        intake.openExecutions.set(Double(snapshot.openExecutions))
        Self.set(intake.dropped, snapshot.eventsDropped)
        Self.set(intake.bytes, snapshot.bytesReceived)
        Self.set(intake.connectionsTotal, snapshot.connectionsTotal)
        Self.set(intake.connectionsRefused, snapshot.connectionsRefused)
        storeSettings.limit.set(Double(snapshot.storeLimitBytes))
        storeSettings.retention.set(Double(snapshot.retentionSeconds))
        Self.set(commits.documents, snapshot.documentsStored)
        Self.set(commits.commits, snapshot.commits)
        Self.set(commits.failures, snapshot.commitFailures)
        commits.failing.set(snapshot.storeFailing ? 1.0 : 0.0)
        var rejectedTotal = 0
        for (reason, counter) in rejected {
            let count = snapshot.eventsRejected[reason] ?? 0
            rejectedTotal += count
            Self.set(counter, count)
        }
        Self.set(received, snapshot.eventsAccepted + rejectedTotal)

        if let figures = snapshot.store {
            store.used.set(Double(figures.usedBytes))
            store.file.set(Double(figures.fileBytes))
            store.documents.set(Double(figures.documents))
            store.journal.set(Double(figures.journalBytes))
            store.deadBatches.set(Double(figures.deadLetterBatches))
            store.deadDocuments.set(Double(figures.deadLetterDocuments))
        }

        let status = snapshot.delivery ?? DeliveryStatus()
        delivery.enabled.set(snapshot.delivery == nil ? 0.0 : 1.0)
        delivery.pending.set(Double(status.pendingDocuments))
        Self.set(delivery.batches, status.batchesDelivered)
        Self.set(delivery.documents, status.documentsDelivered)
        Self.set(delivery.retries, status.retries)
        Self.set(delivery.deadLettered, status.batchesDeadLettered)
        delivery.lastSuccess.set(status.lastSuccessAt?.seconds ?? 0)
        for (state, gauge) in delivery.states {
            gauge.set(snapshot.delivery != nil && status.state == state ? 1.0 : 0.0)
        }
        failures.withLock { failures in
            for (reason, count) in status.failedAttempts {
                let counter = failures[reason] ?? registry.makeCounter(Families.deliveryFailures,
                                                                       labels: [("reason", reason)])
                failures[reason] = counter
                Self.set(counter, count)
            }
        }

        if let figures = snapshot.process {
            process.cpu.reset()
            process.cpu.increment(by: figures.cpuSeconds)
            process.resident.set(Double(figures.residentBytes))
            process.virtual.set(Double(figures.virtualBytes))
            process.open.set(Double(figures.openFileDescriptors))
            process.max.set(Double(figures.maxFileDescriptors))
            process.start.set(figures.startTimeSeconds)
        }
    }

    /// Sets a counter to the daemon's own count (which only rises while the process lives).
    private static func set(_ counter: Counter, _ value: Int) {
        counter.reset()
        counter.increment(by: Int64(max(0, value)))
    }
}
