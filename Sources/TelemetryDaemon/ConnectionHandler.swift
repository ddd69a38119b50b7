import CSystemd
import Logging
import NIOCore
import TelemetryCore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// One client connection: frames the byte stream into lines, validates each, hands valid records to the
/// writer in one batch per read, answers control requests in order, and applies backpressure.
///
/// A bad line is counted, logged (rate-limited) and skipped; the other lines of the connection are unaffected.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var framer: LineFramer
    private let maxLineBytes: Int
    private let writer: IngestWriter
    private let control: ControlResponder
    private let counters: DaemonCounters
    private let rejectLog: RejectLog
    private let enabled: Bool
    private var sender = SenderIdentity(uid: UInt32.max, pid: -1)
    private var batch = IngestBatch()
    private var rejects: [RejectReason: Int] = [:]
    private var lineNumber = 0
    /// Replies must leave in request order even when one takes longer than the next.
    private var lastReply: EventLoopFuture<Void>?
    private var readPaused = false

    init(maxLineBytes: Int, writer: IngestWriter, control: ControlResponder, counters: DaemonCounters,
         rejectLog: RejectLog, enabled: Bool) {
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
        self.maxLineBytes = maxLineBytes
        self.writer = writer
        self.control = control
        self.counters = counters
        self.rejectLog = rejectLog
        self.enabled = enabled
    }

    func channelActive(context: ChannelHandlerContext) {
        if let provider = context.channel as? SocketOptionProvider {
            // On the event loop this completes at once, before any read is delivered.
            let credentials: EventLoopFuture<telemetry_peer_credentials> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            credentials.assumeIsolated().whenSuccess { credentials in
                self.sender = SenderIdentity(uid: credentials.uid, pid: credentials.pid)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        readAt = Timestamp.now()
        framer.finish { handle($0, number: $1, context: context) }
        handOff(context: context)
        rejectLog.logger.debug("connection closed", metadata: [
            "uid": "\(sender.uid)", "pid": "\(sender.pid)", "lines": "\(lineNumber)",
        ])
        context.fireChannelInactive()
    }

    /// Receive time of the lines of the current read: one clock read per read, not per line.
    private var readAt = Timestamp(microseconds: 0) {
        didSet { journalPrefix = JournalRecord.prefix(sender: sender, receivedAt: readAt) }
    }
    /// The journal prefix (`<uid> <pid> <received-µs> `) shared by the lines of the current read.
    private var journalPrefix: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        readAt = Timestamp.now()
        let count = buffer.readableBytes
        counters.update { $0.bytesRead += count }
        batch.reserve(lines: count / 200 + 1, bytes: count)
        buffer.withUnsafeReadableBytes { bytes in
            framer.push(bytes) { handle($0, number: $1, context: context) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        handOff(context: context)
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client finished sending; keep the connection for pending replies, then close it.
            framer.finish { handle($0, number: $1, context: context) }
            handOff(context: context)
            let done = lastReply ?? context.eventLoop.makeSucceededVoidFuture()
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    // MARK: Lines

    private func handle(_ framed: FramedLine, number: Int, context: ChannelHandlerContext) {
        lineNumber = number
        switch framed {
        case .tooLong(let byteCount):
            reject(WireError(.tooLong, "line of \(byteCount)+ bytes exceeds TELEMETRY_MAX_LINE_BYTES=\(maxLineBytes)"),
                   excerpt: nil)
        case .line(let bytes):
            do {
                let parsed = try WireParser.parseLine(bytes, maxLineBytes: maxLineBytes)
                switch parsed {
                case .event, .record:
                    if enabled {
                        batch.append(parsed, json: bytes, sender: sender, receivedAt: readAt, journalPrefix: journalPrefix)
                    } else {
                        rejects[.disabled, default: 0] += 1
                    }
                case .control(let request):
                    handOff(context: context)
                    respond(to: request, context: context)
                }
            } catch {
                reject(error, excerpt: bytes)
                if error.isControlRequest {
                    // A client waiting for an answer must not wait out its timeout: say what was wrong.
                    handOff(context: context)
                    replyRefused(error, line: lineNumber, context: context)
                }
            }
        }
    }

    private func reject(_ error: WireError, excerpt: UnsafeRawBufferPointer?) {
        rejects[error.reason, default: 0] += 1
        rejectLog.record(error, line: lineNumber, sender: sender, excerpt: excerpt.map { Excerpt.of($0) })
    }

    private func handOff(context: ChannelHandlerContext) {
        if !rejects.isEmpty {
            let counted = rejects
            rejects = [:]
            counters.update { snapshot in
                for (reason, count) in counted { snapshot.rejected[reason, default: 0] += count }
            }
        }
        guard !batch.isEmpty else { return }
        let ready = batch
        batch = IngestBatch()
        if !writer.submit(ready), !readPaused {
            readPaused = true
            let channel = context.channel
            channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            writer.whenCapacityAvailable {
                channel.eventLoop.execute {
                    handler.value.readPaused = false
                    channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                }
            }
        }
    }

    private func replyRefused(_ error: WireError, line: Int, context: ChannelHandlerContext) {
        let bytes = ControlReply.encode(request: nil, ok: false,
                                        error: "line \(line) refused: \(error.reason.rawValue): \(error.detail)")
        enqueueReply(context.eventLoop.makeSucceededFuture(bytes), context: context)
    }

    private func respond(to request: ControlRequest, context: ChannelHandlerContext) {
        rejectLog.logger.debug("control request \(request.command)", metadata: ["uid": "\(sender.uid)", "pid": "\(sender.pid)"])
        enqueueReply(control.reply(to: request, on: context.eventLoop), context: context)
    }

    private func enqueueReply(_ reply: EventLoopFuture<[UInt8]>, context: ChannelHandlerContext) {
        let channel = context.channel
        let previous = lastReply ?? context.eventLoop.makeSucceededVoidFuture()
        let written = previous.flatMap { reply }.flatMap { bytes -> EventLoopFuture<Void> in
            var buffer = channel.allocator.buffer(capacity: bytes.count + 1)
            buffer.writeBytes(bytes)
            buffer.writeInteger(UInt8(ascii: "\n"))
            return channel.writeAndFlush(buffer)
        }
        lastReply = written.recover { _ in }
    }
}

/// A short, printable piece of a rejected line for logs and client messages.
enum Excerpt {
    static func of(_ bytes: UnsafeRawBufferPointer, limit: Int = 80) -> String {
        let slice = bytes.prefix(limit)
        var text = String(decoding: slice, as: UTF8.self)
        text = String(text.map { $0.isASCII && ($0.asciiValue ?? 0) < 0x20 ? "?" : $0 })
        return bytes.count > limit ? text + "…" : text
    }
}
