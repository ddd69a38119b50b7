/// What `WireParser.parseLine` found in one line, without copying the text of an `event` line.
///
/// Event lines are almost every line a daemon reads, and their operation and message are the only long
/// strings of the protocol. Building a `String` for each would cost an allocation per line on the
/// ingest path (and a free on the writer thread), only for the text to be copied into the document
/// again. So an event keeps `JSONStringSlice`s that point into the line's bytes: the caller encodes
/// them straight into the document (`EventFragment`) while the line is still in its buffer, or
/// asks for `record` when it wants the value types.
///
/// A `ParsedLine` is only valid while the bytes it was parsed from are: do not keep it beyond the
/// call that handed the line over.
public enum ParsedLine {
    case event(EventLine)
    /// Any data line other than an event (start, metric, tag, end), as value types.
    case record(WireRecord)
    case control(ControlRequest)

    /// The line as value types (copies an event's strings).
    public var message: WireMessage {
        switch self {
        case .event(let event): return .record(event.record)
        case .record(let record): return .record(record)
        case .control(let request): return .control(request)
        }
    }
}

/// A validated `"kind":"event"` line whose strings are still in the line's bytes.
public struct EventLine {
    public var executionID: ExecutionID
    public var timestamp: Timestamp
    public var level: EventLevel
    public var operation: JSONStringSlice
    public var message: JSONStringSlice
    public var durationSeconds: Double?

    /// The same event as a `WireRecord`, with its strings decoded.
    public var record: WireRecord {
        WireRecord(executionID: executionID, timestamp: timestamp,
                   body: .event(level: level, operation: operation.string, message: message.string,
                                durationSeconds: durationSeconds))
    }
}

/// The content of a JSON string value as written in a line (between the quotes, escapes not decoded),
/// already validated: valid UTF-8, no raw control characters, no lone surrogate escapes.
public struct JSONStringSlice {
    /// The raw content between the quotes.
    public let raw: UnsafeRawBufferPointer
    /// The content contains at least one backslash escape.
    public let hasEscapes: Bool

    init(raw: UnsafeRawBufferPointer, hasEscapes: Bool) {
        self.raw = raw
        self.hasEscapes = hasEscapes
    }

    /// The string `token` of the line at `base`.
    init(_ base: UnsafePointer<UInt8>, _ token: JSONToken) {
        self.init(raw: UnsafeRawBufferPointer(start: base + token.start, count: token.end - token.start),
                  hasEscapes: token.hasEscapes)
    }

    /// The decoded text.
    public var string: String {
        let token = JSONToken(kind: .string, start: 0, end: raw.count, flag: hasEscapes)
        guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return "" }
        // Lone surrogates were refused by the parser, so decoding cannot fail.
        switch JSONStrings.decode(base, token) {
        case .success(let text): return text
        case .failure: return String(decoding: raw, as: UTF8.self)
        }
    }

    /// Calls `body` with the decoded UTF-8 bytes, without allocating when there are no escapes.
    public func withDecodedBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard hasEscapes, let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return body(raw) }
        let token = JSONToken(kind: .string, start: 0, end: raw.count, flag: true)
        switch JSONStrings.withDecodedBytes(base, token, body) {
        case .success(let result): return result
        case .failure: return body(raw)
        }
    }
}

extension JSONWriter {
    /// Appends `text` as a quoted JSON string, outside the comma bookkeeping (see `appendVerbatim`).
    /// Without escapes the raw content is already exactly what `appendQuotedString` would write (the
    /// writer escapes only `"`, `\` and control characters, which a valid unescaped string cannot hold),
    /// so it is copied as is.
    public mutating func appendQuotedString(_ text: JSONStringSlice) {
        if !text.hasEscapes {
            appendQuotedVerbatim(text.raw)
        } else {
            text.withDecodedBytes { appendQuotedString(utf8: $0) }
        }
    }
}
