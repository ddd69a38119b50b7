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
    /// Log each completed execution as one structured entry (TELEMETRY_JOURNAL_EVENTS).
    public var journalEvents = false
    /// The Prometheus listener (TELEMETRY_METRICS_LISTEN) and the caps on script label values.
    public var metricsListen: MetricsListen = .off
    public var metricLabelLimits = MetricLabelLimits()

    public init(socketPath: String, stateDirectory: String) {
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
    }
}

/// What a reload (SIGHUP) needs: where the configuration came from, what it was, and the live log level.
public struct ReloadContext: Sendable {
    public var source: ConfigurationSource
    public var configuration: DaemonConfiguration
    public var file: ConfigurationFile?
    public var logLevel: LogLevelControl

    public init(source: ConfigurationSource, configuration: DaemonConfiguration, file: ConfigurationFile?,
                logLevel: LogLevelControl) {
        self.source = source
        self.configuration = configuration
        self.file = file
        self.logLevel = logLevel
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
    /// The configuration in force and how to reload it; touched only on `reloadQueue`.
    private var reloadContext: ReloadContext?
    private let reloadQueue = DispatchQueue(label: "telemetryd.reload")
    /// What reloads can change while running, read by other threads.
    private let live: NIOLockedValueBox<LiveSettings>
    private let notifier = SystemdNotifier()
    private let counters = DaemonCounters()
    private let shutdown = ConditionLock(value: false)
    private let children = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])

    struct LiveSettings {
        var shutdownTimeoutSeconds: Double
        var journalEvents: Bool
        var delivery: DeliverySettings?
        /// Shown first in the status line until a reload succeeds.
        var reloadProblem: String?
        /// Keys changed by a reload that only a restart applies.
        var restartPending: [String] = []
    }

    public init(settings: DaemonSettings, logger: Logger, reload: ReloadContext? = nil) {
        self.settings = settings
        self.logger = logger
        self.reloadContext = reload
        self.live = NIOLockedValueBox(LiveSettings(shutdownTimeoutSeconds: settings.shutdownTimeoutSeconds,
                                                   journalEvents: settings.journalEvents, delivery: settings.delivery))
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
        let checkpointer: StoreCheckpointer
        do {
            // With `full`, the writer's connection commits with `normal` and a StoreSyncer fsyncs each commit on
            // its own thread before any flush it answers is replied to (WALFile says why). Its WAL writes go out
            // in 256 KiB writes rather than two per page (CWALWriteBuffer.h says why).
            store = try TelemetryStore(directory: settings.stateDirectory, synchronous: .normal,
                                       autocheckpointBytes: StoreCheckpointer.writerAutocheckpointBytes,
                                       buffersWALWrites: true)
            reader = try TelemetryStore(directory: settings.stateDirectory, synchronous: settings.storeSync, readOnly: true)
            checkpointer = StoreCheckpointer(
                store: try TelemetryStore(directory: settings.stateDirectory, synchronous: settings.storeSync,
                                          cacheSizeKiB: 256),
                logger: logger)
        } catch {
            throw DaemonStartError(description: "cannot open the store in \(settings.stateDirectory): \(error)")
        }

        store.enqueuesForDelivery = settings.delivery != nil
        let host = settings.hostname.isEmpty ? Self.hostname() : settings.hostname
        let syncer = settings.storeSync == .full ? StoreSyncer(wal: WALFile(databasePath: store.path), logger: logger) : nil
        let writer = try IngestWriter(
            store: store,
            settings: .init(limits: AggregationLimits(maxEventsPerExecution: settings.maxEventsPerExecution,
                                                      idleTimeoutSeconds: settings.executionTimeoutSeconds),
                            host: host,
                            commitIntervalMicroseconds: Int64(settings.commitIntervalMilliseconds) * 1_000,
                            retentionMicroseconds: Int64(settings.retentionDays) * 86_400 * 1_000_000,
                            forwarding: settings.delivery != nil, maxStoreBytes: settings.maxStoreBytes),
            anonymizer: UserAnonymizer(key: key), counters: counters, logger: logger,
            syncer: syncer)
        var forwarder: Forwarder?
        if let delivery = settings.delivery {
            let host = EndpointURL.host(of: delivery.endpoint) ?? ""
            do {
                let session = try CurlSession(settings: delivery.http)
                let forwardStore = try TelemetryStore(directory: settings.stateDirectory, synchronous: settings.storeSync,
                                                      cacheSizeKiB: 1024)
                forwarder = Forwarder(store: forwardStore, settings: delivery, transport: session, logger: logger)
            } catch {
                throw DaemonStartError(description: "cannot set up delivery to \(host): \(error)")
            }
            writer.onDocumentsCommitted = { [forwarder] in forwarder?.documentsStored() }
        }
        // Metrics see executions as their documents commit (docs/metrics.md).
        let metricsExporter = settings.metricsListen == .off ? nil
            : MetricsExporter(version: Self.version, limits: settings.metricLabelLimits)
        if let metricsExporter {
            forwarder?.onDelivered = { metricsExporter.observeDelivery(seconds: $0) }
            syncer?.onSynced = { metricsExporter.observeFsync(seconds: $0) }
        }
        let live = self.live
        let executionLogger = logger
        writer.onExecutionsCompleted = { executions in
            if let metricsExporter {
                let committedAt = Timestamp.now()
                metricsExporter.record(executions.map { ExecutionOutcome($0, completedAt: committedAt) })
            }
            guard live.withLockedValue({ $0.journalEvents }) else { return }
            for execution in executions { Self.logCompleted(execution, logger: executionLogger) }
        }
        let recovery = try writer.recover()
        if recovery.chunks > 0 {
            logger.notice("recovered open executions from the journal",
                          metadata: ["chunks": "\(recovery.chunks)", "lines": "\(recovery.lines)",
                                     "reopened": "\(recovery.reopened)", "unreadable": "\(recovery.unreadable)"])
        }
        // Start-up (schema, recovery) filled the connections' page caches with pages that an idle daemon does not
        // need: give them back (to the kernel) before the writer thread takes the store over.
        store.releaseCacheMemory()
        reader.releaseCacheMemory()
        writer.onCommitted = { bytes in checkpointer.committed(bytes: bytes) }
        checkpointer.start()
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
                           deliveryStatus: { forwarder?.status }, writerAge: { writer.secondsSinceLastLoop },
                           logger: logger)
        }
        var metricsChannel: Channel?

        let server: Channel
        var listening = settings.socketPath
        var socketActivated = false
        do {
            metricsChannel = try metrics?.bind(settings.metricsListen, group: group)
            // Bind without accepting: spooled lines were written before anything that arrives on the socket
            // from now on, so they go first; clients wait in the backlog meanwhile.
            let bootstrap = makeBootstrap(group: group, writer: writer, control: control, rejectLog: rejectLog)
                .serverChannelOption(.autoRead, value: false)
            if let passed = try SocketActivation.passedSocket() {
                // telemetryd.socket owns the path, its mode and group; the daemon serves what it was given.
                listening = passed.path
                socketActivated = true
                if passed.path != settings.socketPath {
                    logger.warning("serving the socket systemd passed, which is not TELEMETRY_SOCKET; clients use TELEMETRY_SOCKET",
                                   metadata: ["socket": "\(passed.path)", "configured_socket": "\(settings.socketPath)"])
                }
                server = try bootstrap.withBoundSocket(passed.descriptor).wait()
            } else {
                try SocketPath.prepare(settings.socketPath)
                server = try bootstrap.bind(unixDomainSocketPath: settings.socketPath).wait()
                chmod(settings.socketPath, 0o660)
            }
            spool.ingestAvailable()
            try server.setOption(.autoRead, value: true).wait()
        } catch {
            writer.stop()
            checkpointer.stop()
            forwarder?.stop(finalDeliveryWithin: 0)
            try? spoolPool.syncShutdownGracefully()
            try? threadPool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            throw error as? DaemonStartError ?? DaemonStartError(description: "cannot listen on \(settings.socketPath): \(error)")
        }

        if let forwarder { forwarderStatus = { forwarder.status } }
        self.forwarder = forwarder
        let signals = installSignalHandlers()
        logger.notice("telemetryd \(Self.version) ready",
                      metadata: ["socket": "\(listening)", "state_dir": "\(settings.stateDirectory)",
                                 "store": "\(store.path)", "open_executions": "\(recovery.reopened)",
                                 "socket_activated": "\(socketActivated)",
                                 "metrics": "\(metricsChannel?.localAddress.map { "http://\($0.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""):\($0.port ?? 0)/metrics" } ?? "off")",
                                 "forwarding": "\(settings.delivery.map { "to \(EndpointURL.host(of: $0.endpoint) ?? "")" } ?? "off (local store only)")",
                                 JournalMessageID.metadataKey: "\(JournalMessageID.started)"])
        if !settings.enabled {
            logger.warning("TELEMETRY_ENABLED=false: collection is switched off on this host; lines are read, counted as disabled and discarded")
        }
        metrics?.setPhase(.ready)
        notifier.ready(status: statusLine())
        var watchdog: Watchdog?
        if let interval = SystemdNotifier.watchdogInterval() {
            let check = HealthCheck(probes: [
                HealthCheck.eventLoopsAnswer(group),
                HealthCheck.writerIsAlive(writer, staleAfterSeconds: max(3, interval / 2)),
                HealthCheck.storeIsWritable(directory: settings.stateDirectory, storePath: store.path),
            ])
            let notifier = self.notifier
            watchdog = Watchdog(interval: interval, check: check, logger: logger,
                                pet: { notifier.watchdog() }, reportStatus: { notifier.status($0) })
            watchdog?.start()
            logger.info("petting the systemd watchdog every \(interval / 2)s while the health check passes")
        }
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
        watchdog?.stop()
        drainConnections(server: server)
        try? metricsChannel?.close().wait()
        try? spoolPool.syncShutdownGracefully()
        writer.stop()
        checkpointer.stop()
        if let forwarder {
            forwarder.stop(finalDeliveryWithin: live.withLockedValue { $0.shutdownTimeoutSeconds })
            let delivery = forwarder.status
            logger.notice("delivery stopped", metadata: ["pending_documents": "\(delivery.pendingDocuments)",
                                                       "documents_delivered": "\(delivery.documentsDelivered)"])
        }
        let final = counters.snapshot
        logger.notice("stopped", metadata: ["lines_accepted": "\(final.linesAccepted)",
                                            "documents_stored": "\(final.documentsStored)",
                                            "open_executions": "\(final.openExecutions)",
                                            "pending_documents": "\(forwarder?.status.pendingDocuments ?? 0)",
                                            JournalMessageID.metadataKey: "\(JournalMessageID.stopped)"])
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
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4_096, initial: 4_096, maximum: 262_144))
            .childChannelInitializer { channel in
                guard counters.admitConnection(limit: settings.maxConnections) else { return channel.close() }
                let id = ObjectIdentifier(channel)
                children.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    children.withLockedValue { $0[id] = nil }
                    counters.update { $0.connectionsCurrent -= 1 }
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
    private var forwarder: Forwarder?

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
        let (reloadProblem, restartPending) = live.withLockedValue { ($0.reloadProblem, $0.restartPending) }
        if !restartPending.isEmpty { parts.append("restart to apply \(restartPending.joined(separator: ", "))") }
        if let reloadProblem { parts.insert(reloadProblem, at: 0) }
        if !settings.enabled { parts.insert("DISABLED by TELEMETRY_ENABLED=false", at: 0) }
        if let error = snapshot.storeError { parts.insert("STORE FAILING: \(error)", at: 0) }
        return parts.joined(separator: "; ")
    }

    /// TELEMETRY_JOURNAL_EVENTS: one structured entry per completed execution, so that
    /// `journalctl TELEMETRY_SCRIPT=deploy-service` lists the runs of a script.
    static func logCompleted(_ execution: Execution, logger: Logger) {
        let script = execution.scriptName.isEmpty ? "unknown script" : execution.scriptName
        let duration = execution.durationSeconds.map { "\(($0 * 1_000).rounded() / 1_000)" } ?? ""
        var metadata: Logger.Metadata = [
            "script": "\(execution.scriptName)", "execution_id": "\(execution.id)",
            "status": "\(execution.status.rawValue)", "events": "\(execution.eventCount)", "errors": "\(execution.errorCount)",
            JournalMessageID.metadataKey: "\(JournalMessageID.executionCompleted)",
        ]
        if !execution.scriptVersion.isEmpty { metadata["script_version"] = "\(execution.scriptVersion)" }
        if !execution.environment.isEmpty { metadata["environment"] = "\(execution.environment)" }
        if let exitCode = execution.exitCode { metadata["exit_code"] = "\(exitCode)" }
        if !duration.isEmpty { metadata["duration_seconds"] = "\(duration)" }
        let outcome = execution.exitCode.map { "exit code \($0)" } ?? "no exit code"
        logger.log(level: execution.status == .success ? .info : .warning,
                   "\(script) finished: \(execution.status.rawValue), \(outcome)\(duration.isEmpty ? "" : " after \(duration)s")",
                   metadata: metadata)
    }

    /// SIGHUP: re-reads the configuration file, applies what can change while running, and reports the rest.
    /// An invalid configuration changes nothing. Runs on `reloadQueue`, one reload at a time; nothing in flight
    /// is touched (the forwarder takes new settings between two batches).
    private func reloadConfiguration() {
        // A reload that arrives while stopping changes nothing: READY=1 after STOPPING=1 would mislead systemd.
        if shutdown.value {
            logger.notice("SIGHUP received while stopping; the configuration is not reloaded")
            return
        }
        guard var context = reloadContext else {
            logger.warning("SIGHUP received, but this daemon was started without a reloadable configuration; restart it to apply changes")
            return
        }
        notifier.reloading(status: "reloading the configuration from \(context.source.filePath)")
        let (result, file) = context.source.load(previous: context.file)
        var errors = result.errors.map(\.description)
        var delivery: DeliverySettings?
        if errors.isEmpty {
            do {
                delivery = try DaemonSettings.delivery(from: result.configuration)
            } catch {
                errors.append("\(error)")
            }
        }
        guard errors.isEmpty else {
            let summary = errors.count == 1 ? errors[0] : "\(errors[0]) (and \(errors.count - 1) more)"
            logger.error("configuration reload rejected, the running configuration stays in force: \(errors.joined(separator: "; "))",
                         metadata: ["problems": "\(errors.count)", "file": "\(context.source.filePath)",
                                    JournalMessageID.metadataKey: "\(JournalMessageID.reloadRejected)"])
            live.withLockedValue { $0.reloadProblem = "RELOAD FAILED, previous configuration in force: \(summary)" }
            notifier.ready(status: statusLine())
            return
        }
        for warning in result.warnings { logger.warning("configuration: \(warning)") }

        let old = context.configuration
        var new = result.configuration
        let running = live.withLockedValue { $0.delivery }
        // A credential rotated in place (same TELEMETRY_API_KEY_FILE, new content) is a change too.
        let rotated = !new.apiKeyFile.isEmpty && new.apiKeyFile == old.apiKeyFile && delivery?.apiKey != running?.apiKey
        let plan = ReloadPlan(from: old, to: new, apiKeyContentChanged: rotated)
        // What needs a restart keeps its running value, so the next reload compares against what is in force.
        for name in plan.needRestart {
            if let key = DaemonConfiguration.key(named: name), let value = key.displayValue(in: old) {
                _ = key.apply(value, to: &new)
            }
        }

        context.logLevel.level = Logger.Level(rawValue: new.logLevel.rawValue) ?? .info
        if let forwarder, let delivery {
            let transportChanged = running.map { $0.http != delivery.http } ?? true
            var transport: HTTPTransport?
            if transportChanged {
                do {
                    transport = try CurlSession(settings: delivery.http)
                } catch {
                    logger.error("configuration reload: cannot set up the new HTTP session; keeping the old one",
                                 metadata: ["error": "\(error)"])
                }
            }
            forwarder.reconfigure(delivery, transport: transport)
        }
        live.withLockedValue {
            $0.shutdownTimeoutSeconds = Double(new.shutdownTimeoutSeconds)
            $0.journalEvents = new.journalEvents
            if forwarder != nil { $0.delivery = delivery }
            $0.reloadProblem = nil
            $0.restartPending = Array(Set($0.restartPending).union(plan.needRestart)).sorted()
        }
        context.configuration = new
        context.file = file
        reloadContext = context

        let changed = plan.appliedLive.isEmpty ? "nothing" : plan.appliedLive.joined(separator: ", ")
        logger.notice("configuration reloaded: applied \(changed)",
                      metadata: ["changed": "\(plan.appliedLive.joined(separator: ","))",
                                 "restart_required": "\(plan.needRestart.joined(separator: ","))",
                                 "file": "\(context.source.filePath)",
                                 JournalMessageID.metadataKey: "\(JournalMessageID.configurationReloaded)"])
        if !plan.needRestart.isEmpty {
            logger.warning("changed settings that apply only after a restart (systemctl restart telemetryd): \(plan.needRestart.joined(separator: ", "))",
                           metadata: ["restart_required": "\(plan.needRestart.joined(separator: ","))"])
        }
        let status = statusLine()
        notifier.ready(status: status)
        lastStatus.withLockedValue { $0 = status }
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
            guard let self else { return }
            self.reloadQueue.async { self.reloadConfiguration() }
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
