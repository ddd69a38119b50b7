import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// `telemetry send`: copies line-delimited JSON from an input descriptor to the daemon, validating each line
/// first, and writes one reply line to the output for each control line, in order. It serves both a one-shot
/// pipe (`echo '{...}' | telemetry send`) and a long-lived stream (the bash library's coprocess).
///
/// It never blocks its producer for long: the socket is non-blocking, input is always drained, and when the
/// daemon is unreachable or stops reading, lines go to the local spool (see `SpoolWriter`) instead. While
/// spooling it answers control lines itself, so a script waiting for a flush reply is never left hanging.
public struct SendSession {
    public struct Options: Sendable {
        public var socketPath: String
        public var spoolDirectory: String = defaultSpoolDirectory
        public var quiet = false
        /// Ask the daemon to make everything durable before exiting, and wait for the answer.
        public var wait = false
        public var timeoutSeconds: Double = 2
        public var maxLineBytes = defaultMaxLineBytes
        /// Bytes held in memory for a daemon that is slower than the input; beyond it input is paused.
        public var maxBufferedBytes = 8 << 20
        /// How long the daemon may take no bytes at all, while some wait, before the client gives up on it
        /// and spools (a stopped or wedged daemon). Busy is fine; stuck is not.
        public var stallSeconds: Double = 2
        /// Telemetry is switched off for this user or host (TELEMETRY_ENABLED=false, DO_NOT_TRACK=1): lines are
        /// read and discarded, nothing is sent or spooled, control lines are answered here.
        public var disabled = false
        public init(socketPath: String) { self.socketPath = socketPath }
    }

    public struct Outcome: Sendable {
        public var linesSpooled = 0
        public var linesInvalid = 0
        public var linesDropped = 0
        public var connectionProblem: String?
        public var spoolPath: String?
        public var flushProblem: String?
        public var ok: Bool {
            linesInvalid == 0 && linesDropped == 0 && linesSpooled == 0 && connectionProblem == nil && flushProblem == nil
        }
    }

    /// Who is waiting for the daemon's answer to a forwarded control line.
    private enum ReplyTarget { case output(ControlRequest), ownFlush }

    private let options: Options
    private let input: Int32
    private let output: Int32
    private var outcome = Outcome()
    private var socket: Int32 = -1
    private var connectAttempted = false
    private var spool: SpoolWriter?
    private var spoolFailed = false
    private var lineNumber = 0
    /// Validated lines the daemon has not taken yet.
    private var outgoing = OutgoingLines()
    private var replies: [ReplyTarget] = []
    private var replyBuffer: [UInt8] = []
    /// Whether the input just read held a control line or an execution's end (then nothing is delayed).
    private var sawControl = false
    private var inputReads = 0
    /// When the daemon last took bytes (or when bytes started waiting).
    private var lastProgress: Int64 = 0

    public init(options: Options, input: Int32 = 0, output: Int32 = 1) {
        self.options = options
        self.input = input
        self.output = output
    }

    public mutating func run() -> Outcome {
        var framer = LineFramer(maxLineBytes: options.maxLineBytes)
        // Not zero-filled: read(2) fills what is used, and a one-shot send would pay page faults for 64 KiB of zeros.
        var buffer = [UInt8](unsafeUninitializedCapacity: 65_536) { _, count in count = 65_536 }
        // Two fixed slots rather than an [pollfd] (whose type metadata the runtime would build at start-up).
        let descriptors = UnsafeMutablePointer<pollfd>.allocate(capacity: 2)
        defer { descriptors.deallocate() }
        var inputOpen = true
        var drainDeadline: Int64?
        while true {
            if !inputOpen {
                if socket < 0 || (outgoing.isEmpty && replies.isEmpty) { break }
                let now = monotonicMicroseconds()
                let deadline = drainDeadline ?? now + Int64(options.timeoutSeconds * 1_000_000)
                drainDeadline = deadline
                if now >= deadline {
                    spill(reason: "telemetryd did not take the last lines within \(options.timeoutSeconds)s")
                    break
                }
            }
            var watched = 0
            // While the daemon is taking bytes but more than the buffer bound waits, stop reading input: a
            // bulk producer is paced by the daemon. A stuck daemon is spilled to the spool within stallSeconds,
            // so a producer is never held up for longer than that.
            let backlogFull = socket >= 0 && outgoing.pendingBytes > options.maxBufferedBytes
            if inputOpen && !backlogFull {
                descriptors[watched] = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
                watched += 1
            }
            if socket >= 0 {
                let events = Int16(POLLIN) | (outgoing.isEmpty ? 0 : Int16(POLLOUT))
                descriptors[watched] = pollfd(fd: socket, events: events, revents: 0)
                watched += 1
            }
            if watched == 0 { break }
            let waiting = socket >= 0 && !outgoing.isEmpty
            let timeout: Int32 = (inputOpen && !waiting) ? -1 : 50
            if poll(descriptors, nfds_t(watched), timeout) < 0 {
                if errno == EINTR { continue }
                break
            }
            for slot in 0..<watched where descriptors[slot].revents != 0 {
                let entry = descriptors[slot]
                if entry.fd == input {
                    let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                    if count < 0 {
                        if errno == EINTR || errno == EAGAIN { continue }
                        complain("cannot read standard input: \(errnoText())")
                        inputOpen = false
                    } else if count == 0 {
                        inputOpen = false
                        framer.finish { route($0, number: $1) }
                        if options.wait { requestOwnFlush() }
                    } else {
                        sawControl = false
                        buffer.withUnsafeBytes { raw in
                            framer.push(UnsafeRawBufferPointer(rebasing: raw[..<count])) { route($0, number: $1) }
                        }
                        // A trickle of events (a script's coprocess): let a few accumulate before the next read,
                        // so the producer's writes rarely wake us. Control lines are answered without delay.
                        // Not after the first read: a one-shot `echo … | telemetry send` must not pay for it.
                        inputReads += 1
                        if count < 4_096 && !sawControl && inputReads > 1 { usleep(1_000) }
                    }
                } else if entry.fd == socket {
                    if entry.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { receiveReplies() }
                    if socket >= 0, entry.revents & Int16(POLLOUT) != 0 { transmit() }
                }
            }
            if socket >= 0, !outgoing.isEmpty { transmit() }
            if socket >= 0, !outgoing.isEmpty {
                let stalled = monotonicMicroseconds() - lastProgress > Int64(options.stallSeconds * 1_000_000)
                if stalled {
                    spill(reason: "telemetryd took nothing for \(options.stallSeconds)s")
                }
            }
        }
        finishSpool()
        if socket >= 0 { close(socket) }
        return outcome
    }

    // MARK: Input lines

    private mutating func route(_ framed: FramedLine, number: Int) {
        lineNumber = number
        switch framed {
        case .tooLong(let byteCount):
            outcome.linesInvalid += 1
            complain("line \(lineNumber): too_long: \(byteCount)+ bytes exceed the limit of \(options.maxLineBytes) bytes; split the message or raise TELEMETRY_MAX_LINE_BYTES on both sides")
        case .line(let bytes):
            // parseLine: an event line (nearly every line) is checked without copying its strings.
            let parsed: ParsedLine
            do {
                parsed = try WireParser.parseLine(bytes, maxLineBytes: options.maxLineBytes)
            } catch {
                outcome.linesInvalid += 1
                complain("line \(lineNumber): \(error.reason.rawValue): \(error.detail) in: \(excerpt(bytes))")
                return
            }
            var control: ControlRequest?
            switch parsed {
            case .event: break
            case .control(let request):
                sawControl = true
                control = request
            case .record(let record):
                // An execution's end is followed by the exit path's wait for durability: no pause before it.
                if case .end = record.body { sawControl = true }
            }
            if options.disabled {
                if let control { answerDisabled(control) }
                return
            }
            if !connectAttempted { connect() }
            if socket >= 0 {
                if outgoing.isEmpty { lastProgress = monotonicMicroseconds() }
                outgoing.append(line: bytes)
                if let control { replies.append(.output(control)) }
            } else if let control {
                answerLocally(control)
            } else {
                spoolLine(bytes)
            }
        }
    }

    private mutating func requestOwnFlush() {
        guard socket >= 0 else { return }
        let request: StaticString = #"{"v":1,"kind":"control","request":"sync"}"#
        outgoing.append(line: UnsafeRawBufferPointer(start: request.utf8Start, count: request.utf8CodeUnitCount))
        replies.append(.ownFlush)
    }

    // MARK: Socket

    private mutating func connect() {
        connectAttempted = true
        do {
            let connection = try DaemonConnection(path: options.socketPath, timeoutSeconds: options.timeoutSeconds)
            socket = dup(connection.descriptor)
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            _ = fcntl(socket, F_SETFD, FD_CLOEXEC)
        } catch {
            outcome.connectionProblem = error.description
            complain(error.description)
        }
    }

    private mutating func transmit() {
        switch outgoing.send(to: socket) {
        case .sent(let bytes):
            if bytes > 0 { lastProgress = monotonicMicroseconds() }
        case .failed(let code):
            spill(reason: "lost the connection to telemetryd: \(errnoText(code))")
        }
    }

    private mutating func receiveReplies() {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while socket >= 0 {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                replyBuffer.append(contentsOf: buffer[..<count])
                deliverReplies()
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
            spill(reason: count == 0 ? "telemetryd closed the connection" : "lost the connection to telemetryd: \(errnoText())")
            return
        }
    }

    private mutating func deliverReplies() {
        while let newline = replyBuffer.firstIndex(of: UInt8(ascii: "\n")), !replies.isEmpty {
            let line = Array(replyBuffer[...newline])
            replyBuffer.removeSubrange(...newline)
            switch replies.removeFirst() {
            case .output: writeAll(output, line)
            case .ownFlush: checkFlushReply(Array(line.dropLast()))
            }
        }
    }

    private mutating func checkFlushReply(_ line: [UInt8]) {
        guard let reply = try? JSONValue.parse(line), reply["ok"]?.boolValue == true else {
            let message = (try? JSONValue.parse(line))?["error"]?.stringValue ?? "unreadable reply"
            outcome.flushProblem = "telemetryd could not make the lines durable: \(message)"
            complain(outcome.flushProblem!)
            return
        }
    }

    // MARK: Spool

    /// Gives up on the daemon for the rest of this process: unsent lines (from the first partly sent one)
    /// and every later line go to the spool, in order, so no line is lost or reordered.
    private mutating func spill(reason: String) {
        guard socket >= 0 else { return }
        complain("\(reason); spooling")
        outcome.connectionProblem = reason
        close(socket)
        socket = -1
        // Taken out first: spoolLine mutates self, which a closure over `outgoing.drainUnsent` may not.
        var unsent = outgoing
        outgoing = OutgoingLines()
        unsent.drainUnsent { spoolLine($0) }
        // The daemon will not answer what it was asked: answer from here, after the spool is durable.
        let waiting = replies
        replies = []
        replyBuffer = []
        for target in waiting {
            switch target {
            case .output(let request): answerLocally(request)
            case .ownFlush:
                let durable = spool != nil && (try? spool?.sync()) != nil
                if !durable { outcome.flushProblem = "telemetryd was unreachable and the spool could not be written" }
            }
        }
    }

    private mutating func spoolLine(_ bytes: UnsafeRawBufferPointer) {
        if spool == nil && !spoolFailed {
            do {
                spool = try SpoolWriter(directory: options.spoolDirectory)
                outcome.spoolPath = spool?.path
            } catch {
                spoolFailed = true
                complain("\(error.description); lines are lost")
            }
        }
        guard let spool, spool.hasRoom(for: bytes.count + 1) else {
            outcome.linesDropped += 1
            return
        }
        spool.append(bytes)
        spool.append(CollectionOfOne(UInt8(ascii: "\n")))
        outcome.linesSpooled += 1
    }

    private mutating func answerLocally(_ request: ControlRequest) {
        switch request.command {
        case .flush, .sync:
            writeAll(output, localFlushReply(request: request.command.rawValue))
        default:
            reply(ControlReply.encode(request: request.command.rawValue, ok: false,
                                      error: "telemetryd is unreachable at \(options.socketPath); lines are spooled locally"))
        }
    }

    private func answerDisabled(_ request: ControlRequest) {
        let durability = request.command == .flush || request.command == .sync
        reply(ControlReply.encode(
            request: request.command.rawValue, ok: durability,
            error: durability ? nil : "telemetry is switched off here (TELEMETRY_ENABLED or DO_NOT_TRACK); nothing was sent"
        ) { json in
            json.key("disabled"); json.bool(true)
        })
    }

    /// Makes the spool durable and says so in the daemon's reply format.
    private mutating func localFlushReply(request: String) -> [UInt8] {
        var error: String?
        if let spool {
            do { try spool.sync() } catch let failure { error = failure.description }
        } else if spoolFailed {
            error = "telemetryd is unreachable and the spool directory \(options.spoolDirectory) is not writable"
        }
        let durable = error == nil
        return ControlReply.encode(request: request, ok: durable, error: error) { json in
            if durable {
                json.key("durable"); json.bool(true)
                json.key("spooled"); json.bool(true)
            }
        } + [UInt8(ascii: "\n")]
    }

    private func reply(_ bytes: [UInt8]) {
        writeAll(output, bytes + [UInt8(ascii: "\n")])
    }

    private mutating func finishSpool() {
        if let spool {
            do {
                try spool.sync()
            } catch {
                complain(error.description)
            }
            outcome.linesDropped += spool.droppedLines
            outcome.linesSpooled -= spool.droppedLines
            if outcome.linesSpooled > 0 {
                complain("\(outcome.linesSpooled) line(s) spooled to \(spool.path); telemetryd takes them in when it is back")
            }
            self.spool = nil
        }
        if outcome.linesDropped > 0 {
            complain("\(outcome.linesDropped) line(s) LOST: telemetryd was unreachable and the spool (\(options.spoolDirectory)) was full, capped at \(maxSpoolFileBytes >> 20) MiB per process, or not writable")
        }
    }

    private func complain(_ message: String) {
        if !options.quiet { printError("telemetry send: \(message)") }
    }

    private func excerpt(_ bytes: UnsafeRawBufferPointer) -> String {
        let limit = 60
        let text = String(decoding: bytes.prefix(limit), as: UTF8.self)
        return bytes.count > limit ? text + "…" : text
    }
}
