import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import TelemetryCore
import TelemetryDelivery
import TelemetryMetrics
import TelemetryStore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// The Prometheus side of the daemon: owns the `MetricsExporter`, gathers the daemon's figures when a scrape
/// asks (counters in memory, the store's size on the control thread pool, the forwarder's status), answers
/// the health checks, and serves them over HTTP (`MetricsHTTPHandler`) on the daemon's event loops.
final class MetricsService: Sendable {
    enum Phase: Sendable {
        /// Recovering, taking in the spool: not ready yet.
        case starting
        /// Accepting connections.
        case ready
        /// SIGTERM received: draining, then stopping.
        case stopping
    }

    struct Settings: Sendable {
        var collectionEnabled = true
        var storeLimitBytes = 0
        var retentionSeconds = 0
        /// Readiness needs the writer to have gone round its loop this recently (it does so every second).
        var writerReadySeconds: Double = 10
        /// Liveness fails when the writer has not gone round its loop for this long.
        var writerLiveSeconds: Double = 60
    }

    let exporter: MetricsExporter
    private let settings: Settings
    private let counters: DaemonCounters
    private let reader: StoreReader
    private let threadPool: NIOThreadPool
    private let deliveryStatus: @Sendable () -> DeliveryStatus?
    /// Seconds since the writer thread last went round its loop (`IngestWriter.secondsSinceLastLoop`).
    private let writerAge: @Sendable () -> Double
    private let phase = NIOLockedValueBox(Phase.starting)
    private let now: @Sendable () -> Timestamp
    private let processFigures: @Sendable () -> ProcessFigures?
    private let logger: Logger

    /// `deliveryStatus` is the forwarder's status, nil when forwarding is off.
    init(exporter: MetricsExporter, settings: Settings, counters: DaemonCounters, reader: StoreReader,
         threadPool: NIOThreadPool, deliveryStatus: @escaping @Sendable () -> DeliveryStatus?,
         writerAge: @escaping @Sendable () -> Double, logger: Logger,
         now: @escaping @Sendable () -> Timestamp = { Timestamp.now() },
         processFigures: @escaping @Sendable () -> ProcessFigures? = { ProcessFiguresReader.read() }) {
        self.exporter = exporter
        self.settings = settings
        self.counters = counters
        self.reader = reader
        self.threadPool = threadPool
        self.deliveryStatus = deliveryStatus
        self.writerAge = writerAge
        self.logger = logger
        self.now = now
        self.processFigures = processFigures
    }

    func setPhase(_ new: Phase) { phase.withLockedValue { $0 = new } }

    // MARK: Scrapes

    /// The exposition, built on the control thread pool (the store is read there, never on an event loop).
    func scrape(on eventLoop: EventLoop) -> EventLoopFuture<[UInt8]> {
        threadPool.runIfActive(eventLoop: eventLoop) { [self] in
            exporter.render(snapshot())
        }
    }

    /// The daemon's figures now. Reads the store: call it off the event loops.
    func snapshot() -> CollectorSnapshot {
        let daemon = counters.snapshot
        var snapshot = CollectorSnapshot()
        snapshot.collectionEnabled = settings.collectionEnabled
        snapshot.eventsAccepted = daemon.linesAccepted
        snapshot.eventsRejected = daemon.rejected
        snapshot.eventsDropped = daemon.eventsDropped
        snapshot.bytesReceived = daemon.bytesRead
        snapshot.connectionsOpen = daemon.connectionsCurrent
        snapshot.connectionsTotal = daemon.connectionsTotal
        snapshot.connectionsRefused = daemon.connectionsRefused
        snapshot.openExecutions = daemon.openExecutions
        snapshot.documentsStored = daemon.documentsStored
        snapshot.commits = daemon.commits
        snapshot.commitFailures = daemon.commitFailures
        snapshot.storeFailing = daemon.storeError != nil
        snapshot.storeLimitBytes = settings.storeLimitBytes
        snapshot.retentionSeconds = settings.retentionSeconds
        do {
            snapshot.store = try reader.read { store in
                let statistics = try store.statistics()
                let deadLetters = try store.deadLetters()
                return StoreFigures(usedBytes: try store.usedBytes(), fileBytes: statistics.fileBytes,
                                    documents: statistics.documentCount, journalBytes: statistics.journalBytes,
                                    deadLetterBatches: deadLetters.count,
                                    deadLetterDocuments: deadLetters.reduce(0) { $0 + $1.documentCount })
            }
        } catch {
            logger.warning("metrics: cannot read the store's figures; the store gauges keep their last values",
                           metadata: ["error": "\(error)"])
        }
        snapshot.delivery = deliveryStatus()
        snapshot.process = processFigures()
        return snapshot
    }

    // MARK: Health

    struct Health: Sendable, Equatable {
        var ok: Bool
        var message: String
    }

    /// Liveness: the process answers and its writer thread still goes round its loop.
    func liveness() -> Health {
        let now = now()
        return Self.liveness(writerAliveAt: writerAliveAt(now: now), now: now, settings: settings)
    }

    /// Readiness: started, not stopping, the writer alive and the store taking commits.
    func readiness() -> Health {
        let now = now()
        return Self.readiness(phase: phase.withLockedValue { $0 }, writerAliveAt: writerAliveAt(now: now),
                              storeError: counters.snapshot.storeError, now: now, settings: settings)
    }

    /// The writer's heartbeat (monotonic, immune to clock steps) as a point on `now`'s clock.
    private func writerAliveAt(now: Timestamp) -> Timestamp {
        Timestamp(microseconds: now.microseconds - Int64(writerAge() * 1_000_000))
    }

    static func liveness(writerAliveAt: Timestamp?, now: Timestamp, settings: Settings) -> Health {
        if let alive = writerAliveAt, now.seconds - alive.seconds > settings.writerLiveSeconds {
            return Health(ok: false, message: "the writer thread has not run for \(Int(now.seconds - alive.seconds)) s\n")
        }
        return Health(ok: true, message: "ok\n")
    }

    static func readiness(phase: Phase, writerAliveAt: Timestamp?, storeError: String?, now: Timestamp,
                          settings: Settings) -> Health {
        switch phase {
        case .starting: return Health(ok: false, message: "starting\n")
        case .stopping: return Health(ok: false, message: "stopping\n")
        case .ready: break
        }
        guard let alive = writerAliveAt, now.seconds - alive.seconds <= settings.writerReadySeconds else {
            return Health(ok: false, message: "the writer thread is not running\n")
        }
        if let storeError {
            return Health(ok: false, message: "the store is not writable: \(storeError)\n")
        }
        return Health(ok: true, message: "ready\n")
    }

    // MARK: The listener

    /// Binds the HTTP listener on `group`. Throws a `DaemonStartError` that names the setting.
    func bind(_ listen: MetricsListen, group: EventLoopGroup) throws -> Channel? {
        guard case .address(let host, let port) = listen else { return nil }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(service: self))
                }
            }
        do {
            return try bootstrap.bind(host: host, port: port).wait()
        } catch {
            throw DaemonStartError(description: "cannot serve metrics on TELEMETRY_METRICS_LISTEN=\(listen): \(error); "
                + "choose a free address:port, or set TELEMETRY_METRICS_LISTEN=off")
        }
    }
}

/// GET or HEAD `/metrics`, `/healthz`, `/readyz`; 404 for any other path, 405 for any other method.
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: MetricsService
    private var request: HTTPRequestHead?

    init(service: MetricsService) {
        self.service = service
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let channel = context.channel
        guard head.method == .GET || head.method == .HEAD else {
            Self.send(.methodNotAllowed, "only GET and HEAD are served\n", for: head, on: channel,
                      extraHeaders: [("Allow", "GET, HEAD")])
            return
        }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        switch path {
        case "/metrics":
            service.scrape(on: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let body):
                    Self.send(.ok, body, contentType: MetricsExporter.contentType, for: head, on: channel)
                case .failure(let error):
                    Self.send(.internalServerError, Array("cannot collect the metrics: \(error)\n".utf8), for: head, on: channel)
                }
            }
        case "/healthz":
            let health = service.liveness()
            Self.send(health.ok ? .ok : .serviceUnavailable, health.message, for: head, on: channel)
        case "/readyz":
            let health = service.readiness()
            Self.send(health.ok ? .ok : .serviceUnavailable, health.message, for: head, on: channel)
        default:
            Self.send(.notFound, "not found: the paths are /metrics, /healthz and /readyz\n", for: head, on: channel)
        }
    }

    private static func send(_ status: HTTPResponseStatus, _ text: String, for request: HTTPRequestHead,
                             on channel: Channel, extraHeaders: [(String, String)] = []) {
        send(status, Array(text.utf8), contentType: "text/plain; charset=utf-8", for: request, on: channel,
             extraHeaders: extraHeaders)
    }

    private static func send(_ status: HTTPResponseStatus, _ body: [UInt8], contentType: String = "text/plain; charset=utf-8",
                             for request: HTTPRequestHead, on channel: Channel, extraHeaders: [(String, String)] = []) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.count))])
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        if request.method != .HEAD {
            channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        }
        let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        if !keepAlive { done.whenComplete { _ in channel.close(promise: nil) } }
    }
}

/// The standard `process_*` figures of this process, from /proc (Linux).
enum ProcessFiguresReader {
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    private static let bootTime: Double? = {
        guard let text = readFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6))
        }
        return nil
    }()

    static func read() -> ProcessFigures? {
        // Fields after the parenthesised command name, which may itself contain spaces or parentheses.
        guard let stat = readFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state): field n is fields[n - 3].
        guard fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]),
              let start = Double(fields[19]), let virtual = Int(fields[20]), let rss = Int(fields[21]) else { return nil }
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessFigures(cpuSeconds: (utime + stime) / ticksPerSecond, residentBytes: rss * pageSize,
                              virtualBytes: virtual, openFileDescriptors: openFileDescriptors(),
                              maxFileDescriptors: Int(clamping: limit.rlim_cur),
                              startTimeSeconds: (bootTime ?? 0) + start / ticksPerSecond)
    }

    private static func openFileDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { count += 1 }
        }
        return max(0, count - 1)  // the descriptor opendir itself holds
    }

    private static func readFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
