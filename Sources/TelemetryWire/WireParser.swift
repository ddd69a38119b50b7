/// Parses and validates one protocol line (docs/protocol.md). This is the daemon's hot path:
/// a single pass over the raw bytes with `JSONScanner`, member values remembered as byte ranges in a
/// stack-allocated table, and Strings allocated only for the fields the record keeps.
///
/// Checks happen in a fixed order so that a line always gets the same reason:
/// too_long → invalid_utf8 → not_json → not_object → non_finite_number → duplicate field (invalid_value)
/// → `v` → `kind` → unknown fields → the kind's fields in documented order.
public enum WireParser {
    /// Parses and validates one line without copying an event's strings: see `ParsedLine`, which is valid
    /// only while `line`'s bytes are. The client's validation and the daemon's ingest use this.
    public static func parseLine(_ line: UnsafeRawBufferPointer, maxLineBytes: Int = defaultMaxLineBytes) throws(WireError) -> ParsedLine {
        guard line.count <= maxLineBytes else {
            throw WireError(.tooLong, "line is \(line.count) bytes, more than the limit of \(maxLineBytes) bytes")
        }
        guard let raw = line.baseAddress, line.count > 0 else {
            throw WireError(.notJSON, "expected a JSON object at byte offset 0, found end of line (the line is empty)")
        }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        var count = line.count
        if base[count - 1] == ASCII.carriageReturn { count -= 1 }
        if let bad = UTF8Validation.firstInvalidOffset(base, count) {
            let hex = String(base[bad], radix: 16, uppercase: true)
            throw WireError(.invalidUTF8, "invalid UTF-8 at byte offset \(bad) (byte 0x\(base[bad] < 0x10 ? "0" : "")\(hex))")
        }
        if let event = CanonicalEvent.parse(base, count) { return .event(event) }
        return try parseGeneral(base, count)
    }

    /// The general path: any member order, whitespace, every error. `base[0..<count]` is valid UTF-8.
    static func parseGeneral(_ base: UnsafePointer<UInt8>, _ count: Int) throws(WireError) -> ParsedLine {
        try withUnsafeTemporaryAllocation(of: JSONToken.self, capacity: WireField.count) {
            (slots: UnsafeMutableBufferPointer<JSONToken>) throws(WireError) -> ParsedLine in
            var line = ScannedLine(base: base, count: count, slots: slots.baseAddress!)
            try line.scan()
            return try line.validate()
        }
    }

    /// Parses and validates one line into value types.
    public static func parse(_ line: UnsafeRawBufferPointer, maxLineBytes: Int = defaultMaxLineBytes) throws(WireError) -> WireMessage {
        try parseLine(line, maxLineBytes: maxLineBytes).message
    }

    public static func parse(_ line: [UInt8], maxLineBytes: Int = defaultMaxLineBytes) throws(WireError) -> WireMessage {
        try line.withUnsafeBytes { bytes in
            Result { () throws(WireError) in try parse(bytes, maxLineBytes: maxLineBytes) }
        }.get()
    }

    public static func parse(_ line: String, maxLineBytes: Int = defaultMaxLineBytes) throws(WireError) -> WireMessage {
        var line = line
        return try line.withUTF8 { bytes in
            Result { () throws(WireError) in try parse(UnsafeRawBufferPointer(bytes), maxLineBytes: maxLineBytes) }
        }.get()
    }

    /// The kinds, in documentation order.
    public static let kinds = ["start", "event", "metric", "tag", "end", "control"]
}

/// Every member name protocol version 1 knows. The raw value is the bit in the presence masks.
enum WireField: Int, CaseIterable {
    case v, kind, executionID, ts
    case script, version, environment, pid
    case level, operation, message, durationSeconds
    case name, value, key, exitCode, request, limit, batchID

    static let count = 19

    /// The member name as written in JSON.
    var name: String { staticName.description }

    @inline(__always) var bit: UInt32 { 1 << UInt32(rawValue) }

    /// Matches a (decoded) member name. Every known name is identified by its length and first byte;
    /// one full comparison then confirms it.
    @inline(__always)
    static func match(_ p: UnsafePointer<UInt8>, _ length: Int) -> WireField? {
        let candidate: WireField
        switch (length, p[0]) {
        case (1, UInt8(ascii: "v")): return .v
        case (2, UInt8(ascii: "t")): candidate = .ts
        case (8, UInt8(ascii: "b")): candidate = .batchID
        case (3, UInt8(ascii: "p")): candidate = .pid
        case (3, UInt8(ascii: "k")): candidate = .key
        case (4, UInt8(ascii: "k")): candidate = .kind
        case (4, UInt8(ascii: "n")): candidate = .name
        case (5, UInt8(ascii: "l")): candidate = p[4] == UInt8(ascii: "l") ? .level : .limit
        case (5, UInt8(ascii: "v")): candidate = .value
        case (6, UInt8(ascii: "s")): candidate = .script
        case (7, UInt8(ascii: "v")): candidate = .version
        case (7, UInt8(ascii: "m")): candidate = .message
        case (7, UInt8(ascii: "r")): candidate = .request
        case (9, UInt8(ascii: "o")): candidate = .operation
        case (9, UInt8(ascii: "e")): candidate = .exitCode
        case (11, UInt8(ascii: "e")): candidate = .environment
        case (12, UInt8(ascii: "e")): candidate = .executionID
        case (16, UInt8(ascii: "d")): candidate = .durationSeconds
        default: return nil
        }
        return ByteCompare.equal(UnsafeRawPointer(p), candidate.staticName, length) ? candidate : nil
    }

    var staticName: StaticString {
        switch self {
        case .v: return "v"
        case .kind: return "kind"
        case .executionID: return "execution_id"
        case .ts: return "ts"
        case .script: return "script"
        case .version: return "version"
        case .environment: return "environment"
        case .pid: return "pid"
        case .level: return "level"
        case .operation: return "operation"
        case .message: return "message"
        case .durationSeconds: return "duration_seconds"
        case .name: return "name"
        case .value: return "value"
        case .key: return "key"
        case .exitCode: return "exit_code"
        case .request: return "request"
        case .limit: return "limit"
        case .batchID: return "batch_id"
        }
    }
}

enum ByteCompare {
    /// `length` bytes at `bytes` equal the ASCII literal (whose length must be `length`, at most 16),
    /// compared with at most four loads per side.
    @inline(__always)
    static func equal(_ bytes: UnsafeRawPointer, _ literal: StaticString, _ length: Int) -> Bool {
        guard literal.utf8CodeUnitCount == length else { return false }
        let text = UnsafeRawPointer(literal.utf8Start)
        switch length {
        case 8...16:
            return bytes.loadUnaligned(as: UInt64.self) == text.loadUnaligned(as: UInt64.self)
                && bytes.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
                == text.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
        case 4...7:
            return bytes.loadUnaligned(as: UInt32.self) == text.loadUnaligned(as: UInt32.self)
                && bytes.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self)
                == text.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self)
        case 2...3:
            return bytes.loadUnaligned(as: UInt16.self) == text.loadUnaligned(as: UInt16.self)
                && bytes.loadUnaligned(fromByteOffset: length - 2, as: UInt16.self)
                == text.loadUnaligned(fromByteOffset: length - 2, as: UInt16.self)
        case 1:
            return bytes.load(as: UInt8.self) == text.load(as: UInt8.self)
        case 0:
            return true
        default:
            for index in 0..<length
            where bytes.load(fromByteOffset: index, as: UInt8.self) != text.load(fromByteOffset: index, as: UInt8.self) {
                return false
            }
            return true
        }
    }
}

enum WireKind: Int {
    case start, event, metric, tag, end, control

    var name: String { WireParser.kinds[rawValue] }

    /// `an "event" line`, `a "start" line`.
    var lineDescription: String { (self == .event || self == .end ? "an" : "a") + " \"\(name)\" line" }

    static func match(_ bytes: UnsafeRawBufferPointer) -> WireKind? {
        switch bytes.count {
        case 3: return bytes.equals("end") ? .end : bytes.equals("tag") ? .tag : nil
        case 5: return bytes.equals("event") ? .event : bytes.equals("start") ? .start : nil
        case 6: return bytes.equals("metric") ? .metric : nil
        case 7: return bytes.equals("control") ? .control : nil
        default: return nil
        }
    }

    /// Fields allowed in a line of this kind, in the order they are validated and documented.
    var fields: [WireField] {
        switch self {
        case .start: return [.v, .kind, .executionID, .ts, .script, .version, .environment, .pid]
        case .event: return [.v, .kind, .executionID, .ts, .level, .operation, .message, .durationSeconds]
        case .metric: return [.v, .kind, .executionID, .ts, .name, .value]
        case .tag: return [.v, .kind, .executionID, .ts, .key, .value]
        case .end: return [.v, .kind, .executionID, .ts, .exitCode, .durationSeconds]
        case .control: return [.v, .kind, .request, .limit, .script, .executionID, .batchID, .ts]
        }
    }

    var allowedMask: UInt32 {
        let data: UInt32 = WireField.v.bit | WireField.kind.bit | WireField.executionID.bit | WireField.ts.bit
        switch self {
        case .start: return data | WireField.script.bit | WireField.version.bit | WireField.environment.bit | WireField.pid.bit
        case .event: return data | WireField.level.bit | WireField.operation.bit | WireField.message.bit | WireField.durationSeconds.bit
        case .metric: return data | WireField.name.bit | WireField.value.bit
        case .tag: return data | WireField.key.bit | WireField.value.bit
        case .end: return data | WireField.exitCode.bit | WireField.durationSeconds.bit
        case .control:
            return WireField.v.bit | WireField.kind.bit | WireField.request.bit | WireField.limit.bit
                | WireField.script.bit | WireField.executionID.bit | WireField.batchID.bit | WireField.ts.bit
        }
    }
}

/// One line being parsed: the scanner plus the member table.
struct ScannedLine {
    var scanner: JSONScanner
    /// Indexed by `WireField.rawValue`; an entry is initialized only if its bit is in `present`.
    let slots: UnsafeMutablePointer<JSONToken>
    var present: UInt32 = 0
    /// Byte offset of each known member's name (for "first unknown member" ordering). A fixed-size tuple
    /// (no allocation per line) with one slot per `WireField`; `init` checks the two agree.
    var keyOffsets: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    /// The name (raw, quotes excluded) of the first duplicated member, if any.
    var duplicate: (start: Int, end: Int)?
    /// The first member name this protocol version does not know.
    var firstUnknown: (start: Int, end: Int)?
    /// Decoded names of unknown members, only kept to detect duplicates among them.
    var unknownNames: Set<[UInt8]>?
    /// The member whose value contained the first non-finite number.
    var nonFiniteMember: (start: Int, end: Int)?

    init(base: UnsafePointer<UInt8>, count: Int, slots: UnsafeMutablePointer<JSONToken>) {
        precondition(MemoryLayout.size(ofValue: keyOffsets) >= WireField.count * MemoryLayout<Int>.stride,
                     "keyOffsets needs one slot per WireField")
        self.scanner = JSONScanner(base: base, count: count)
        self.slots = slots
    }

    var base: UnsafePointer<UInt8> { scanner.base }

    // MARK: Pass 1: syntax

    mutating func scan() throws(WireError) {
        scanner.skipWhitespace()
        guard scanner.pos < scanner.end else {
            throw scanner.syntaxError(expected: "a JSON object")
        }
        guard scanner.base[scanner.pos] == ASCII.openBrace else {
            let value = try scanner.scanValue()
            try scanner.expectEnd()
            throw WireError(.notObject, "a line must be a JSON object {...}, got \(value.kind.typeName) "
                + scanner.excerpt(value.rawStart, value.rawEnd))
        }
        scanner.pos += 1
        scanner.skipWhitespace()
        if scanner.pos < scanner.end && scanner.base[scanner.pos] == ASCII.closeBrace {
            scanner.pos += 1
            try scanner.expectEnd()
            return
        }
        while true {
            scanner.skipWhitespace()
            guard scanner.pos < scanner.end, scanner.base[scanner.pos] == ASCII.quote else {
                throw scanner.syntaxError(expected: "'\"' to start a member name")
            }
            let key = try scanner.scanString()
            try scanner.expect(ASCII.colon, "':' after the member name")
            scanner.skipWhitespace()
            let hadNonFinite = scanner.hasNonFinite
            let value = try scanner.scanValue(depth: 1)  // the line's object is the first level
            if !hadNonFinite && scanner.hasNonFinite { nonFiniteMember = (key.start, key.end) }
            record(key: key, value: value)
            scanner.skipWhitespace()
            guard scanner.pos < scanner.end else { throw scanner.syntaxError(expected: "',' or '}' after the member") }
            let byte = scanner.base[scanner.pos]
            scanner.pos += 1
            if byte == ASCII.comma { continue }
            if byte == ASCII.closeBrace { break }
            scanner.pos -= 1
            throw scanner.syntaxError(expected: "',' or '}' after the member")
        }
        try scanner.expectEnd()
    }

    @inline(__always)
    mutating func record(key: JSONToken, value: JSONToken) {
        let field: WireField?
        if !key.hasEscapes {
            field = WireField.match(base + key.start, key.end - key.start)
        } else {
            field = Self.matchEscaped(base, key)
        }
        guard let field else {
            recordUnknown(key)
            return
        }
        if present & field.bit != 0 {
            if duplicate == nil { duplicate = (key.start, key.end) }
            return
        }
        present |= field.bit
        slots[field.rawValue] = value
        withUnsafeMutableBytes(of: &keyOffsets) { $0.storeBytes(of: key.start, toByteOffset: field.rawValue * MemoryLayout<Int>.stride, as: Int.self) }
    }

    static func matchEscaped(_ base: UnsafePointer<UInt8>, _ key: JSONToken) -> WireField? {
        let result = JSONStrings.withDecodedBytes(base, key) { bytes -> WireField? in
            guard let start = bytes.baseAddress, bytes.count > 0 else { return nil }
            return WireField.match(start.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        if case .success(let field) = result { return field }
        return nil
    }

    mutating func recordUnknown(_ key: JSONToken) {
        if firstUnknown == nil {
            firstUnknown = (key.start, key.end)
            if !key.hasEscapes { unknownNames = [Array(UnsafeBufferPointer(start: base + key.start, count: key.end - key.start))]; return }
        }
        let decoded: [UInt8]
        switch JSONStrings.withDecodedBytes(base, key, { Array($0) }) {
        case .success(let bytes): decoded = bytes
        case .failure: decoded = Array(UnsafeBufferPointer(start: base + key.start, count: key.end - key.start))
        }
        if unknownNames == nil { unknownNames = [] }
        if !unknownNames!.insert(decoded).inserted, duplicate == nil {
            duplicate = (key.start, key.end)
        }
    }

    func keyOffset(_ field: WireField) -> Int {
        withUnsafeBytes(of: keyOffsets) { $0.load(fromByteOffset: field.rawValue * MemoryLayout<Int>.stride, as: Int.self) }
    }

    // MARK: Pass 2: fields

    @inline(__always) func has(_ field: WireField) -> Bool { present & field.bit != 0 }
    @inline(__always) func token(_ field: WireField) -> JSONToken { slots[field.rawValue] }

    func rawExcerpt(_ token: JSONToken) -> String {
        scanner.excerpt(token.rawStart, token.rawEnd)
    }

    func keyText(_ range: (start: Int, end: Int)) -> String {
        scanner.excerpt(range.start, range.end, limit: 80)
    }

    func missing(_ field: WireField, _ kind: WireKind?) -> WireError {
        if let kind {
            return WireError(.missingField, "field \"\(field.name)\" is required in \(kind.lineDescription)")
        }
        return WireError(.missingField, "field \"\(field.name)\" is required in every line")
    }

    func wrongType(_ field: WireField, _ expected: String) -> WireError {
        let got = token(field)
        return WireError(.wrongType, "field \"\(field.name)\" must be \(expected) (got \(got.kind.typeName) \(rawExcerpt(got)))")
    }

    func invalid(_ field: WireField, _ requirement: String, reason: RejectReason = .invalidValue) -> WireError {
        WireError(reason, "field \"\(field.name)\" \(requirement) (got \(rawExcerpt(token(field))))")
    }

    mutating func validate() throws(WireError) -> ParsedLine {
        if scanner.hasNonFinite {
            let text = scanner.excerpt(scanner.nonFiniteOffset, scanner.nonFiniteOffset + scanner.nonFiniteLength, limit: 40)
            let member = nonFiniteMember.map { "field \"\(keyText($0))\" contains" } ?? "the line contains"
            throw WireError(.nonFiniteNumber,
                "\(member) the non-finite number \(text) at byte offset \(scanner.nonFiniteOffset) (NaN, Infinity and numbers beyond the range of a double are not allowed)")
        }
        if let duplicate {
            throw WireError(.invalidValue, "field \"\(keyText(duplicate))\" appears twice")
        }
        // v
        guard has(.v) else { throw missing(.v, nil) }
        let version = token(.v)
        guard version.kind == .number, version.isInteger else { throw wrongType(.v, "an integer") }
        guard JSONNumbers.parseInteger(base, version.start, version.end) == Int64(wireProtocolVersion) else {
            throw WireError(.unsupportedVersion,
                "field \"v\" must be \(wireProtocolVersion): only protocol version \(wireProtocolVersion) is supported (got \(rawExcerpt(version)))")
        }
        // kind
        guard has(.kind) else { throw missing(.kind, nil) }
        let kindToken = token(.kind)
        guard kindToken.kind == .string else { throw wrongType(.kind, "a string") }
        let kindMatch = JSONStrings.withDecodedBytes(base, kindToken) { WireKind.match($0) }
        guard case .success(let matchedKind) = kindMatch, let kind = matchedKind else {
            throw WireError(.unknownKind,
                "field \"kind\" must be one of \(WireParser.kinds.joined(separator: ", ")) (got \(rawExcerpt(kindToken)))")
        }
        if kind == .control {
            do throws(WireError) {
                try checkMembers(of: kind)
                return .control(try controlRequest())
            } catch {
                var refused = error
                refused.isControlRequest = true
                throw refused
            }
        }
        try checkMembers(of: kind)
        return try record(kind)
    }

    /// Unknown members: the earliest of an unknown name and a known name not allowed for this kind.
    func checkMembers(of kind: WireKind) throws(WireError) {
        let disallowed = present & ~kind.allowedMask
        if disallowed != 0 || firstUnknown != nil {
            var offset = firstUnknown?.start ?? Int.max
            var name = firstUnknown.map { keyText($0) } ?? ""
            for field in WireField.allCases where disallowed & field.bit != 0 && keyOffset(field) < offset {
                offset = keyOffset(field)
                name = field.name
            }
            throw WireError(.unknownField,
                "field \"\(name)\" is not allowed in \(kind.lineDescription) (allowed: \(kind.fields.map(\.name).joined(separator: ", ")))")
        }
    }

    func record(_ kind: WireKind) throws(WireError) -> ParsedLine {
        guard has(.executionID) else { throw missing(.executionID, kind) }
        let executionID = try executionIDValue()
        guard has(.ts) else { throw missing(.ts, kind) }
        let timestamp = try timestampValue()
        let body: WireRecord.Body
        switch kind {
        case .start:
            let script = try requiredString(.script, kind, maxBytes: 256)
            let version = try optionalString(.version, minBytes: 0, maxBytes: 128) ?? ""
            let environment = try optionalString(.environment, minBytes: 0, maxBytes: 128) ?? ""
            let pid = try optionalInteger(.pid, 1...2_147_483_647).map { Int32($0) }
            body = .start(script: script, version: version, environment: environment, pid: pid)
        case .event:
            guard has(.level) else { throw missing(.level, kind) }
            let levelToken = token(.level)
            guard levelToken.kind == .string else { throw wrongType(.level, "a string") }
            let matched = JSONStrings.withDecodedBytes(base, levelToken) { Self.matchLevel($0) }
            guard case .success(let found) = matched, let level = found else {
                throw invalid(.level, "must be one of \(EventLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard has(.operation) else { throw missing(.operation, kind) }
            let operation = try stringSlice(.operation, minBytes: 1, maxBytes: 256)!
            let message = try stringSlice(.message, minBytes: 0, maxBytes: Int.max)
                ?? JSONStringSlice(raw: UnsafeRawBufferPointer(start: base, count: 0), hasEscapes: false)
            let duration = try optionalDuration()
            return .event(EventLine(executionID: executionID, timestamp: timestamp, level: level,
                                    operation: operation, message: message, durationSeconds: duration))
        case .metric:
            let name = try requiredString(.name, kind, maxBytes: 128)
            guard Self.isMetricName(name) else {
                throw invalid(.name, "must match [A-Za-z_][A-Za-z0-9_.:-]*")
            }
            guard has(.value) else { throw missing(.value, kind) }
            let valueToken = token(.value)
            guard valueToken.kind == .number else { throw wrongType(.value, "a number") }
            body = .metric(name: name, value: JSONNumbers.parse(base, valueToken.start, valueToken.end))
        case .tag:
            let key = try requiredString(.key, kind, maxBytes: 128)
            guard has(.value) else { throw missing(.value, kind) }
            let value = try optionalString(.value, minBytes: 0, maxBytes: 1024)!
            body = .tag(key: key, value: value)
        case .end:
            guard has(.exitCode) else { throw missing(.exitCode, kind) }
            let exitCode = try optionalInteger(.exitCode, 0...255)!
            let duration = try optionalDuration()
            body = .end(exitCode: Int32(exitCode), durationSeconds: duration)
        case .control:
            preconditionFailure("control lines are not records")
        }
        return .record(WireRecord(executionID: executionID, timestamp: timestamp, body: body))
    }

    func controlRequest() throws(WireError) -> ControlRequest {
        guard has(.request) else { throw missing(.request, .control) }
        let requestToken = token(.request)
        guard requestToken.kind == .string else { throw wrongType(.request, "a string") }
        let matched = JSONStrings.withDecodedBytes(base, requestToken) { bytes -> ControlRequest.Command? in
            ControlRequest.Command.allCases.first { bytes.elementsEqual($0.rawValue.utf8) }
        }
        guard case .success(let found) = matched, let command = found else {
            throw invalid(.request, "must be one of \(ControlRequest.Command.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let limit = try optionalInteger(.limit, 1...10_000).map { Int($0) }
        let script = try optionalString(.script, minBytes: 1, maxBytes: 256)
        var executionID: ExecutionID?
        if has(.executionID) {
            executionID = try executionIDValue()
        } else if command == .show {
            throw WireError(.missingField, "field \"execution_id\" is required for the \"show\" request")
        }
        let batchID = try optionalString(.batchID, minBytes: 1, maxBytes: 64)
        return ControlRequest(command: command, limit: limit, script: script, executionID: executionID, batchID: batchID)
    }

    // MARK: Field helpers

    func executionIDValue() throws(WireError) -> ExecutionID {
        let idToken = token(.executionID)
        guard idToken.kind == .string else { throw wrongType(.executionID, "a string") }
        let parsed = JSONStrings.withDecodedBytes(base, idToken) { ExecutionID(utf8: $0) }
        guard case .success(let found) = parsed, let id = found else {
            throw invalid(.executionID, "must be a UUID in 8-4-4-4-12 hex form such as 6f1c2f8e-2b0a-4c1e-9d7a-3e5b8c9d0a1b", reason: .badExecutionID)
        }
        return id
    }

    func timestampValue() throws(WireError) -> Timestamp {
        let tsToken = token(.ts)
        let range = "must be from 2000-01-01T00:00:00Z up to, not including, 2100-01-01T00:00:00Z"
        let microseconds: Int64
        switch tsToken.kind {
        case .number:
            guard let value = Self.numericMicroseconds(base, tsToken) else {
                throw invalid(.ts, range, reason: .badTimestamp)
            }
            microseconds = value
        case .string:
            let parsed = JSONStrings.withDecodedBytes(base, tsToken) { Timestamp.parseRFC3339(utf8: $0) }
            guard case .success(let found) = parsed, let timestamp = found else {
                throw invalid(.ts,
                    "must be Unix seconds or an RFC 3339 time such as 2024-01-01T12:00:00Z or 2024-01-01T14:00:00.5+02:00",
                    reason: .badTimestamp)
            }
            microseconds = timestamp.microseconds
        default:
            throw wrongType(.ts, "a number of Unix seconds or an RFC 3339 string")
        }
        guard microseconds >= Timestamp.earliestAccepted.microseconds,
              microseconds < Timestamp.latestAcceptedExclusive.microseconds
        else { throw invalid(.ts, range, reason: .badTimestamp) }
        return Timestamp(microseconds: microseconds)
    }

    /// Unix seconds as microseconds, exact for plain decimals (extra fraction digits truncated);
    /// nil when far out of range.
    @inline(__always)
    static func numericMicroseconds(_ base: UnsafePointer<UInt8>, _ token: JSONToken) -> Int64? {
        var pos = token.start
        let end = token.end
        if base[pos] == ASCII.minus { return nil }  // before 1970: out of range anyway
        var seconds: Int64 = 0
        var digits = 0
        while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
            seconds = seconds &* 10 &+ Int64(base[pos] &- ASCII.zero)
            digits &+= 1
            pos &+= 1
        }
        if digits > 12 { return nil }
        var micros: Int64 = 0
        if pos < end, base[pos] == ASCII.dot {
            pos &+= 1
            var fractionDigits = 0
            while pos < end, base[pos] >= ASCII.zero, base[pos] <= ASCII.nine {
                if fractionDigits < 6 {
                    micros = micros &* 10 &+ Int64(base[pos] &- ASCII.zero)
                    fractionDigits &+= 1
                }
                pos &+= 1
            }
            while fractionDigits < 6 {
                micros &*= 10
                fractionDigits &+= 1
            }
        }
        if pos == end { return seconds &* 1_000_000 &+ micros }
        // With an exponent: go through Double (microsecond rounding).
        let value = JSONNumbers.parse(base, token.start, token.end)
        guard value >= 0, value < 1e12 else { return nil }
        return Int64((value * 1_000_000).rounded())
    }

    static func matchLevel(_ bytes: UnsafeRawBufferPointer) -> EventLevel? {
        switch bytes.count {
        case 4: return bytes.equals("info") ? .info : nil
        case 5: return bytes.equals("error") ? .error : bytes.equals("debug") ? .debug : nil
        case 7: return bytes.equals("success") ? .success : bytes.equals("warning") ? .warning : nil
        default: return nil
        }
    }

    static func isMetricName(_ name: String) -> Bool {
        var first = true
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"):
                break
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"):
                if first { return false }
            default:
                return false
            }
            first = false
        }
        return !first
    }

    func requiredString(_ field: WireField, _ kind: WireKind, maxBytes: Int) throws(WireError) -> String {
        guard has(field) else { throw missing(field, kind) }
        return try optionalString(field, minBytes: 1, maxBytes: maxBytes)!
    }

    func optionalString(_ field: WireField, minBytes: Int, maxBytes: Int) throws(WireError) -> String? {
        try stringSlice(field, minBytes: minBytes, maxBytes: maxBytes)?.string
    }

    /// A string member checked without copying it: type, lone surrogate escapes, decoded length.
    func stringSlice(_ field: WireField, minBytes: Int, maxBytes: Int) throws(WireError) -> JSONStringSlice? {
        guard has(field) else { return nil }
        let stringToken = token(field)
        guard stringToken.kind == .string else { throw wrongType(field, "a string") }
        let length: Int
        switch JSONStrings.decodedLength(base, stringToken) {
        case .success(let decodedLength): length = decodedLength
        case .failure(let lone):
            throw WireError(.invalidValue,
                "field \"\(field.name)\" contains a lone UTF-16 surrogate escape at byte offset \(lone.offset) (\(scanner.excerpt(lone.offset, min(lone.offset + 6, scanner.end))) must be part of a \\uD800-\\uDBFF + \\uDC00-\\uDFFF pair)")
        }
        if length < minBytes {
            throw WireError(.invalidValue, "field \"\(field.name)\" must not be empty")
        }
        if length > maxBytes {
            throw WireError(.invalidValue,
                "field \"\(field.name)\" must be at most \(maxBytes) bytes (got \(length) bytes: \(rawExcerpt(stringToken)))")
        }
        return JSONStringSlice(base, stringToken)
    }

    func optionalInteger(_ field: WireField, _ range: ClosedRange<Int64>) throws(WireError) -> Int64? {
        guard has(field) else { return nil }
        let numberToken = token(field)
        guard numberToken.kind == .number, numberToken.isInteger else { throw wrongType(field, "an integer") }
        guard let value = JSONNumbers.parseInteger(base, numberToken.start, numberToken.end), range.contains(value) else {
            throw invalid(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func optionalDuration() throws(WireError) -> Double? {
        guard has(.durationSeconds) else { return nil }
        let numberToken = token(.durationSeconds)
        guard numberToken.kind == .number else { throw wrongType(.durationSeconds, "a number") }
        let value = JSONNumbers.parse(base, numberToken.start, numberToken.end)
        guard value >= 0 else { throw invalid(.durationSeconds, "must be a number of seconds >= 0") }
        return value == 0 ? 0 : value  // no -0
    }
}

extension UnsafeRawBufferPointer {
    /// Byte-wise equality with an ASCII literal.
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        guard let base = baseAddress else { return literal.utf8CodeUnitCount == 0 }
        return ByteCompare.equal(base, literal, count)
    }
}
