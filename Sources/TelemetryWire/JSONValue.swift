/// A parsed JSON document, for reading the daemon's one-line replies and for tests.
/// Not the hot path: `WireParser` never builds one.
///
/// Objects keep their members in document order (duplicates included); equality compares members in
/// order, and `value["key"]` returns the first member with that name.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    // MARK: Parsing

    /// Parses one JSON value (any type at the top level). Errors use the wire reasons:
    /// invalid_utf8, not_json (with byte offset), non_finite_number, and invalid_value for a lone
    /// UTF-16 surrogate escape.
    public static func parse(_ bytes: [UInt8]) throws(WireError) -> JSONValue {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(WireError) in try parse(utf8: raw) }
        }.get()
    }

    public static func parse(_ text: String) throws(WireError) -> JSONValue {
        var text = text
        return try text.withUTF8 { utf8 in
            Result { () throws(WireError) in try parse(utf8: UnsafeRawBufferPointer(utf8)) }
        }.get()
    }

    public static func parse(utf8 bytes: UnsafeRawBufferPointer) throws(WireError) -> JSONValue {
        guard let raw = bytes.baseAddress, bytes.count > 0 else {
            throw WireError(.notJSON, "expected a JSON value at byte offset 0, found end of text")
        }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        if let bad = UTF8Validation.firstInvalidOffset(base, bytes.count) {
            throw WireError(.invalidUTF8, "invalid UTF-8 at byte offset \(bad)")
        }
        var builder = Builder(scanner: JSONScanner(base: base, count: bytes.count))
        builder.scanner.skipWhitespace()
        let value = try builder.value(depth: 0)
        try builder.scanner.expectEnd()
        if builder.scanner.hasNonFinite {
            let offset = builder.scanner.nonFiniteOffset
            let text = builder.scanner.excerpt(offset, offset + builder.scanner.nonFiniteLength, limit: 40)
            throw WireError(.nonFiniteNumber, "non-finite number \(text) at byte offset \(offset)")
        }
        if let offset = builder.loneSurrogateOffset {
            throw WireError(.invalidValue,
                "lone UTF-16 surrogate escape at byte offset \(offset) (\\uD800-\\uDBFF must be followed by \\uDC00-\\uDFFF)")
        }
        return value
    }

    private struct Builder {
        var scanner: JSONScanner

        /// The first lone surrogate escape; reported only once the whole text is known to be JSON.
        var loneSurrogateOffset: Int?

        mutating func string(_ token: JSONToken) throws(WireError) -> String {
            switch JSONStrings.decode(scanner.base, token) {
            case .success(let text): return text
            case .failure(let lone):
                if loneSurrogateOffset == nil { loneSurrogateOffset = lone.offset }
                return ""
            }
        }

        mutating func value(depth: Int) throws(WireError) -> JSONValue {
            guard scanner.pos < scanner.end else { throw scanner.syntaxError(expected: "a JSON value") }
            let byte = scanner.base[scanner.pos]
            guard byte == ASCII.openBrace || byte == ASCII.openBracket else {
                let token = try scanner.scanValue(depth: depth)
                switch token.kind {
                case .string: return .string(try string(token))
                case .number: return .number(JSONNumbers.parse(scanner.base, token.start, token.end))
                case .trueLiteral: return .bool(true)
                case .falseLiteral: return .bool(false)
                case .null: return .null
                case .nonFinite: return .null  // reported after the syntax check
                case .object, .array: preconditionFailure("containers are handled below")
                }
            }
            guard depth < JSONScanner.maxDepth else {
                throw scanner.syntaxError("containers nested deeper than \(JSONScanner.maxDepth) levels", at: scanner.pos)
            }
            let isObject = byte == ASCII.openBrace
            let close = isObject ? ASCII.closeBrace : ASCII.closeBracket
            scanner.pos += 1
            scanner.skipWhitespace()
            var elements: [JSONValue] = []
            var members: [(String, JSONValue)] = []
            if scanner.pos < scanner.end && scanner.base[scanner.pos] == close {
                scanner.pos += 1
                return isObject ? .object([]) : .array([])
            }
            while true {
                scanner.skipWhitespace()
                if isObject {
                    guard scanner.pos < scanner.end, scanner.base[scanner.pos] == ASCII.quote else {
                        throw scanner.syntaxError(expected: "'\"' to start a member name")
                    }
                    let name = try string(try scanner.scanString())
                    try scanner.expect(ASCII.colon, "':' after the member name")
                    scanner.skipWhitespace()
                    members.append((name, try value(depth: depth + 1)))
                } else {
                    elements.append(try value(depth: depth + 1))
                }
                scanner.skipWhitespace()
                guard scanner.pos < scanner.end else {
                    throw scanner.syntaxError(expected: isObject ? "',' or '}' in the object" : "',' or ']' in the array")
                }
                let next = scanner.base[scanner.pos]
                if next == ASCII.comma {
                    scanner.pos += 1
                    continue
                }
                if next == close {
                    scanner.pos += 1
                    return isObject ? .object(members) : .array(elements)
                }
                throw scanner.syntaxError(expected: isObject ? "',' or '}' in the object" : "',' or ']' in the array")
            }
        }
    }

    // MARK: Serialization

    /// One-line JSON text (via `JSONWriter`). Numbers must be finite.
    public func serialized() -> String {
        var writer = JSONWriter()
        writer.value(self)
        return writer.string
    }

    // MARK: Access

    /// The first member named `key` of an object; nil for other values or a missing member.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// The element at `index` of an array; nil for other values or an index out of range.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    /// The number as an Int when it is integral and in range.
    public var intValue: Int? {
        guard case .number(let number) = self, number.rounded(.towardZero) == number,
              number >= -9_223_372_036_854_775_808.0, number < 9_223_372_036_854_775_808.0
        else { return nil }
        return Int(number)
    }

    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var objectValue: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { serialized() }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Keeps the literal's member order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
}
