import CSystemd
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TelemetryCore
import TelemetryDelivery
import TelemetryMetrics
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// What the daemon needs to run, already validated (see `DaemonConfiguration` for where it comes from).
public struct DaemonSettings: Sendable {
    public var socketPath: String
    public var stateDirectory: String
    public var enabled: Bool = true
    public var endpoint: String = ""
    public var maxLineBytes: Int = defaultMaxLineBytes
    public var executionTimeoutSeconds: Int = 3_600
    public var maxEventsPerExecution: Int = 10_000
    public var commitIntervalMilliseconds: Int = 10
    public var storeSync: StoreSyncMode = .full
    public var maxConnections: Int = 1_024
    public var retentionDays: Int = 30
    public var hostname: String = ""
    /// Where clients leave lines while the daemon is unreachable (TELEMETRY_SPOOL_DIR).
    public var spoolDirectory: String = "/var/spool/telemetryd"
    public var spoolScanIntervalSeconds: Int64 = 5
    /// Forwarding to TELEMETRY_ENDPOINT; nil keeps everything in the local store.
    public var delivery: DeliverySettings?
    /// Size cap of the store in bytes (TELEMETRY_SPOOL_MAX_MB); 0 for none.
    public var maxStoreBytes = 0
    /// Time for the last delivery at shutdown (TELEMETRY_SHUTDOWN_TIMEOUT).
    public var shutdownTimeoutSeconds: Double = 10
    /// Bound on reading what clients already sent after SIGTERM, before connections are closed.
    public var shutdownGraceMilliseconds: Int = 2_000
    /// The Prometheus listener (TELEMETRY_METRICS_LISTEN) and the caps on script label values.
    public var metricsListen: MetricsListen = .off
    public var metricLabelLimits = MetricLabelLimits()

    public init(socketPath: String, stateDirectory: String) {
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
    }
}

/// Why the daemon could not start; printed once, with what to do.
public struct DaemonStartError: Error, CustomStringConvertible {
    public var description: String
}

/// The running daemon: store, writer, socket server, sd_notify status. `run()` blocks until SIGTERM/SIGINT
/// (or `requestShutdown()`), then stops intake, commits what clients already sent, and returns.
public final class Daemon: @unchecked Sendable {
    public static let version = telemetrydVersion

    private let settings: DaemonSettings
    private let logger: Logger
    private let notifier = SystemdNotifier()
    private let counters = DaemonCounters()
    private let shutdown = ConditionLock(value: false)
    private let children = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    public init(settings: DaemonSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    public func requestShutdown() {
        shutdown.lock()
        shutdown.unlock(withValue: true)
    }

    public func run() throws {
        telemetry_limit_malloc_arenas()
        let startedAt = Timestamp.now()
        try ensureDirectory(settings.stateDirectory)
        let key: [UInt8]
        do {
            key = try AnonymizationKey.loadOrCreate(atPath: settings.stateDirectory + "/anonymization.key")
        } catch {
            throw DaemonStartError(description: "cannot load the user anonymization key: \(error)")
        }
        let store: TelemetryStore
        let reader: TelemetryStore
        do {
            store = try TelemetryStore(directory: settings.stateDirectory, synchronous: settings.storeSync)
            reader = try TelemetryStore(directory: settings.stateDirectory, synchronous: settings.storeSync, readOnly: true)
        } catch {
            throw DaemonStartError(description: "cannot open the store in \(settings.stateDirectory): \(error)")
        }

        store.enqueuesForDelivery = settings.delivery != nil
        let host = settings.hostname.isEmpty ? Self.hostname() : settings.hostname
        let writer = try IngestWriter(
            store: store,
            settings: .init(limits: AggregationLimits(maxEventsPerExecution: settings.maxEventsPerExecution,
                                                      idleTimeoutSeconds: settings.executionTimeoutSeconds),
                            host: host,
                            commitIntervalMicroseconds: Int64(settings.commitIntervalMilliseconds) * 1_000,
                            retentionMicroseconds: Int64(settings.retentionDays) * 86_400 * 1_000_000,
                            forwarding: settings.delivery != nil, maxStoreBytes: settings.maxStoreBytes),
            anonymizer: UserAnonymizer(key: key), counters: counters, logger: logger)
        var forwarder: Forwarder?
        if let delivery = settings.delivery {
            let host = EndpointURL.host(of: delivery.endpoint) ?? ""
            do {
                let session = try CurlSession(settings: delivery.http)
                let forwardStore = try TelemetryStore(directory: settings.stateDirectory, synchronous: settings.storeSync,
                                                      cacheSizeKiB: 2 * 1024)
                forwarder = Forwarder(store: forwardStore, settings: delivery, transport: session, logger: logger)
            } catch {
                throw DaemonStartError(description: "cannot set up delivery to \(host): \(error)")
            }
            writer.onDocumentsCommitted = { [forwarder] in forwarder?.documentsStored() }
        }
        // Metrics see executions as their documents commit, from the recovery on (docs/metrics.md).
        let metricsExporter = settings.metricsListen == .off ? nil
            : MetricsExporter(version: Self.version, limits: settings.metricLabelLimits)
        if let metricsExporter {
            writer.onExecutionsCommitted = { metricsExporter.record($0) }
            forwarder?.onDelivered = { metricsExporter.observeDelivery(seconds: $0) }
        }
        let recovery = try writer.recover()
        if recovery.chunks > 0 {
            logger.notice("recovered open executions from the journal",
                          metadata: ["chunks": "\(recovery.chunks)", "lines": "\(recovery.lines)",
                                     "reopened": "\(recovery.reopened)", "unreadable": "\(recovery.unreadable)"])
        }
        writer.start()
        forwarder?.start()

        // Spooled lines were written before anything that arrives on the socket from now on: take them in first.
        let spool = SpoolIngester(directory: settings.spoolDirectory, socketPath: settings.socketPath,
                                  enabled: settings.enabled, writer: writer, counters: counters,
                                  logger: logger, maxLineBytes: settings.maxLineBytes)
        spool.prepareDirectory()
        // Spool files can be large and the store slow: keep them off the pool that answers control requests.
        let spoolPool = NIOThreadPool(numberOfThreads: 1)
        spoolPool.start()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, min(System.coreCount, 4)))
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let control = ControlResponder(
            identity: .init(version: Self.version, socketPath: settings.socketPath,
                            stateDirectory: settings.stateDirectory, enabled: settings.enabled,
                            endpointHost: EndpointURL.host(of: settings.endpoint), startedAt: startedAt),
            writer: writer, counters: counters, reader: reader, threadPool: threadPool,
            forwarder: forwarder, delivery: settings.delivery)
        let rejectLog = RejectLog(logger: logger)
        let metrics = metricsExporter.map { [forwarder] exporter in
            MetricsService(exporter: exporter,
                           settings: .init(collectionEnabled: settings.enabled, storeLimitBytes: settings.maxStoreBytes,
                                           retentionSeconds: settings.retentionDays * 86_400),
                           counters: counters, reader: control.reader, threadPool: threadPool,
                           deliveryStatus: { forwarder?.status }, logger: logger)
        }
        var metricsChannel: Channel?

        let server: Channel
        do {
            metricsChannel = try metrics?.bind(settings.metricsListen, group: group)
            try SocketPath.prepare(settings.socketPath)
            // Bind without accepting: spooled lines were written before anything that arrives on the socket
            // from now on, so they go first; clients wait in the backlog meanwhile.
            server = try makeBootstrap(group: group, writer: writer, control: control, rejectLog: rejectLog)
                .serverChannelOption(.autoRead, value: false)
                .bind(unixDomainSocketPath: settings.socketPath).wait()
            chmod(settings.socketPath, 0o660)
            spool.ingestAvailable()
            try server.setOption(.autoRead, value: true).wait()
        } catch {
            writer.stop()
            forwarder?.stop(finalDeliveryWithin: 0)
            try? spoolPool.syncShutdownGracefully()
            try? threadPool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            throw error as? DaemonStartError ?? DaemonStartError(description: "cannot listen on \(settings.socketPath): \(error)")
        }

        if let forwarder { forwarderStatus = { forwarder.status } }
        let signals = installSignalHandlers()
        logger.notice("telemetryd \(Self.version) ready",
                      metadata: ["socket": "\(settings.socketPath)", "state_dir": "\(settings.stateDirectory)",
                                 "store": "\(store.path)", "open_executions": "\(recovery.reopened)",
                                 "metrics": "\(metricsChannel?.localAddress.map { "http://\($0.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""):\($0.port ?? 0)/metrics" } ?? "off")",
                                 "forwarding": "\(settings.delivery.map { "to \(EndpointURL.host(of: $0.endpoint) ?? "")" } ?? "off (local store only)")"])
        if !settings.enabled {
            logger.warning("TELEMETRY_ENABLED=false: collection is switched off on this host; lines are read, counted as disabled and discarded")
        }
        metrics?.setPhase(.ready)
        notifier.ready(status: statusLine())
        let statusTask = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.publishStatus()
        }
        let spoolTask = group.next().scheduleRepeatedTask(
            initialDelay: .seconds(settings.spoolScanIntervalSeconds), delay: .seconds(settings.spoolScanIntervalSeconds)
        ) { _ in
            spoolPool.submit { state in
                guard case .active = state else { return }
                spool.ingestAvailable()
                spool.forgetCommitted()
            }
        }

        shutdown.lock(whenValue: true)
        shutdown.unlock()

        metrics?.setPhase(.stopping)
        logger.notice("shutting down: reading what clients already sent, then closing connections and committing")
        notifier.stopping(status: "stopping: committing \(counters.snapshot.openExecutions) open executions")
        statusTask.cancel()
        spoolTask.cancel()
        drainConnections(server: server)
        try? metricsChannel?.close().wait()
        try? spoolPool.syncShutdownGracefully()
        writer.stop()
        if let forwarder {
            forwarder.stop(finalDeliveryWithin: settings.shutdownTimeoutSeconds)
            let delivery = forwarder.status
            logger.notice("delivery stopped", metadata: ["pending_documents": "\(delivery.pendingDocuments)",
                                                       "documents_delivered": "\(delivery.documentsDelivered)"])
        }
        let final = counters.snapshot
        logger.notice("stopped", metadata: ["lines_accepted": "\(final.linesAccepted)",
                                            "documents_stored": "\(final.documentsStored)",
                                            "open_executions": "\(final.openExecutions)"])
        for source in signals { source.cancel() }
        try? threadPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    private func makeBootstrap(group: EventLoopGroup, writer: IngestWriter, control: ControlResponder,
                               rejectLog: RejectLog) -> ServerBootstrap {
        let settings = self.settings
        let counters = self.counters
        let children = self.children
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4_096, initial: 65_536, maximum: 262_144))
            .childChannelInitializer { channel in
                if counters.snapshot.connectionsCurrent >= settings.maxConnections {
                    counters.update { $0.connectionsRefused += 1 }
                    return channel.close()
                }
                let id = ObjectIdentifier(channel)
                children.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    children.withLockedValue { $0[id] = nil }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
                        maxLineBytes: settings.maxLineBytes, writer: writer, control: control,
                        counters: counters, rejectLog: rejectLog, enabled: settings.enabled))
                }
            }
    }

    /// Reads what clients already sent before closing anything: the listener stays open (connections waiting
    /// in its backlog have written data the kernel accepted), and connections are read until input has been
    /// quiet for 150 ms or the grace period ends. Then the listener and every connection close; the writer
    /// commits everything read before `run()` returns.
    private func drainConnections(server: Channel) {
        let deadline = Timestamp.now().microseconds + Int64(settings.shutdownGraceMilliseconds) * 1_000
        func activity() -> Int {
            let snapshot = counters.snapshot
            return snapshot.bytesRead + snapshot.connectionsTotal
        }
        var last = activity()
        var quietPolls = 0
        while quietPolls < 3, Timestamp.now().microseconds < deadline {
            usleep(50_000)
            let now = activity()
            quietPolls = now == last ? quietPolls + 1 : 0
            last = now
        }
        try? server.close().wait()
        let open = children.withLockedValue { Array($0.values) }
        for channel in open { try? channel.close().wait() }
    }

    private let lastStatus = NIOLockedValueBox("")
    private var forwarderStatus: (() -> DeliveryStatus)?

    private func publishStatus() {
        let line = statusLine()
        let changed = lastStatus.withLockedValue { last in
            defer { last = line }
            return last != line
        }
        if changed { notifier.status(line) }
    }

    /// One line for `systemctl status`: what an operator wants at a glance.
    func statusLine() -> String {
        let snapshot = counters.snapshot
        var parts = [
            "\(snapshot.openExecutions) open executions",
            "\(snapshot.documentsStored) documents stored",
            "\(snapshot.linesAccepted) lines accepted",
            "\(snapshot.rejectedTotal) rejected",
        ]
        if let delivery = forwarderStatus?() {
            switch delivery.state {
            case .outage:
                let since = delivery.outageSince.map { " since \($0.rfc3339)" } ?? ""
                parts.insert("OUTAGE\(since): \(delivery.lastError ?? "")", at: 0)
            case .retrying:
                parts.insert("retrying: \(delivery.lastError ?? "")", at: 0)
            case .delivering, .idle:
                parts.append("delivering" + (delivery.lastSuccessAt.map { ", last success \($0.rfc3339)" } ?? ""))
            }
            parts.append("\(delivery.pendingDocuments) queued")
        } else {
            parts.append("local store only")
        }
        if !settings.enabled { parts.insert("DISABLED by TELEMETRY_ENABLED=false", at: 0) }
        if let error = snapshot.lastCommitError { parts.insert("STORE FAILING: \(error)", at: 0) }
        return parts.joined(separator: "; ")
    }

    private func installSignalHandlers() -> [DispatchSourceSignal] {
        var sources: [DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                self?.logger.notice("received \(number == SIGTERM ? "SIGTERM" : "SIGINT")")
                self?.requestShutdown()
            }
            source.resume()
            sources.append(source)
        }
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { [weak self] in
            self?.logger.warning("SIGHUP received; this version does not reload its configuration, restart the daemon to apply changes")
        }
        hangup.resume()
        sources.append(hangup)
        return sources
    }

    private func ensureDirectory(_ path: String) throws {
        if access(path, F_OK) == 0 { return }
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if access(prefix, F_OK) != 0, mkdir(prefix, 0o750) != 0, errno != EEXIST {
                throw DaemonStartError(description: "cannot create the state directory \(prefix): \(errnoText()); create it or set TELEMETRY_STATE_DIR")
            }
        }
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}
