import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// `telemetry send`: copies line-delimited JSON from an input descriptor to the daemon, validating each line
/// first, and copies the daemon's replies to control lines back to an output descriptor. It serves both a
/// one-shot pipe (`echo '{...}' | telemetry send`) and a long-lived stream (the bash library's coprocess).
public struct SendSession {
    public struct Options: Sendable {
        public var socketPath: String
        public var quiet = false
        /// Ask the daemon to make everything durable before exiting, and wait for the answer.
        public var wait = false
        public var timeoutSeconds: Double = 2
        public var maxLineBytes = defaultMaxLineBytes
        public init(socketPath: String) { self.socketPath = socketPath }
    }

    public struct Outcome: Sendable {
        public var linesSent = 0
        public var linesInvalid = 0
        public var linesUnsent = 0
        public var connectionProblem: String?
        public var flushProblem: String?
        public var ok: Bool { linesInvalid == 0 && linesUnsent == 0 && connectionProblem == nil && flushProblem == nil }
    }

    private let options: Options
    private let input: Int32
    private let output: Int32
    private var outcome = Outcome()
    private var connection: DaemonConnection?
    private var connectFailed = false
    private var lineNumber = 0
    private var outgoing: [UInt8] = []
    private var repliesExpected = 0
    private var replyBuffer: [UInt8] = []

    public init(options: Options, input: Int32 = 0, output: Int32 = 1) {
        self.options = options
        self.input = input
        self.output = output
    }

    public mutating func run() -> Outcome {
        var framer = LineFramer(maxLineBytes: options.maxLineBytes)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var inputOpen = true
        while inputOpen {
            if repliesExpected > 0, let connection {
                var descriptors = [pollfd(fd: input, events: Int16(POLLIN), revents: 0),
                                   pollfd(fd: connection.descriptor, events: Int16(POLLIN), revents: 0)]
                if poll(&descriptors, 2, -1) < 0 && errno != EINTR { break }
                if descriptors[1].revents != 0 { pumpReplies(blocking: false) }
                if descriptors[0].revents == 0 { continue }
            }
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                complain("cannot read standard input: \(errnoText())")
                break
            }
            if count == 0 {
                inputOpen = false
                framer.finish { handle($0) }
            } else {
                buffer.withUnsafeBytes { raw in
                    framer.push(UnsafeRawBufferPointer(rebasing: raw[..<count])) { handle($0) }
                }
            }
            transmit()
        }
        if options.wait, connection != nil {
            outgoing.append(contentsOf: Array(#"{"v":1,"kind":"control","request":"flush"}"#.utf8))
            outgoing.append(UInt8(ascii: "\n"))
            repliesExpected += 1
            transmit()
        }
        finish()
        return outcome
    }

    private mutating func handle(_ framed: FramedLine) {
        lineNumber += 1
        switch framed {
        case .tooLong(let byteCount):
            outcome.linesInvalid += 1
            complain("line \(lineNumber): too_long: \(byteCount)+ bytes exceed the limit of \(options.maxLineBytes) bytes; split the message or raise TELEMETRY_MAX_LINE_BYTES on both sides")
        case .line(let bytes):
            do {
                let message = try WireParser.parse(bytes, maxLineBytes: options.maxLineBytes)
                if case .control = message { repliesExpected += 1 }
                outgoing.append(contentsOf: bytes)
                outgoing.append(UInt8(ascii: "\n"))
            } catch {
                outcome.linesInvalid += 1
                complain("line \(lineNumber): \(error.reason.rawValue): \(error.detail) in: \(excerpt(bytes))")
            }
        }
    }

    private mutating func transmit() {
        guard !outgoing.isEmpty else { return }
        let lines = outgoing.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        defer { outgoing.removeAll(keepingCapacity: true) }
        if connection == nil && !connectFailed {
            do {
                connection = try DaemonConnection(path: options.socketPath, timeoutSeconds: options.timeoutSeconds)
            } catch {
                connectFailed = true
                outcome.connectionProblem = error.description
                complain(error.description)
            }
        }
        guard let connection else {
            outcome.linesUnsent += lines
            repliesExpected = 0
            return
        }
        do {
            try connection.write(outgoing)
            outcome.linesSent += lines
        } catch {
            outcome.linesUnsent += lines
            outcome.connectionProblem = error.description
            complain(error.description)
            self.connection = nil
            connectFailed = true
            repliesExpected = 0
        }
    }

    /// Copies complete reply lines to the output. The reply to our own `--wait` flush is checked, not copied.
    private mutating func pumpReplies(blocking: Bool) {
        guard let connection else { return }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let count = buffer.withUnsafeMutableBytes {
            recv(connection.descriptor, $0.baseAddress, $0.count, blocking ? 0 : Int32(MSG_DONTWAIT))
        }
        if count <= 0 {
            if count < 0 && (errno == EAGAIN || errno == EINTR) && !blocking { return }
            if repliesExpected > 0 {
                let why = count == 0 ? "closed the connection" : "did not answer in time (\(errnoText()))"
                if options.wait { outcome.flushProblem = "telemetryd \(why) before confirming the flush" }
                complain("telemetryd \(why); \(repliesExpected) request(s) unanswered")
            }
            repliesExpected = 0
            return
        }
        replyBuffer.append(contentsOf: buffer[..<count])
        while let newline = replyBuffer.firstIndex(of: UInt8(ascii: "\n")), repliesExpected > 0 {
            let line = Array(replyBuffer[...newline])
            replyBuffer.removeSubrange(...newline)
            repliesExpected -= 1
            if repliesExpected == 0 && options.wait {
                checkFlushReply(Array(line.dropLast()))
            } else {
                writeAll(output, line)
            }
        }
    }

    private mutating func checkFlushReply(_ line: [UInt8]) {
        guard let reply = try? JSONValue.parse(line) else {
            outcome.flushProblem = "unreadable flush reply from telemetryd"
            complain(outcome.flushProblem!)
            return
        }
        if reply["ok"]?.boolValue != true {
            let message = reply["error"]?.stringValue ?? "unknown error"
            outcome.flushProblem = "telemetryd could not make the lines durable: \(message)"
            complain(outcome.flushProblem!)
        }
    }

    private mutating func finish() {
        guard let connection else { return }
        if repliesExpected > 0 {
            connection.finishSending()
            while repliesExpected > 0 { pumpReplies(blocking: true) }
        }
        self.connection = nil
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
