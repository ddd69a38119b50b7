#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A configuration file's text and where it came from.
public struct ConfigurationFile: Sendable, Equatable {
    public var path: String
    public var contents: String
    /// Permission bits (`st_mode & 0o7777`) when read from disk by `ConfigurationLoader.readFile(at:)`;
    /// used to warn about an API key in a file that every user can read.
    public var permissions: UInt32?

    public init(path: String, contents: String, permissions: UInt32? = nil) {
        self.path = path
        self.contents = contents
        self.permissions = permissions
    }
}

/// One thing wrong (or suspicious) in the configuration, located like `sshd -t` does.
public struct ConfigurationProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Severity: Sendable, Equatable {
        /// The daemon must not start with this configuration.
        case error
        /// Worth fixing; the configuration is usable.
        case warning
    }

    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A configuration file; `line` is 1-based, 0 when the problem concerns the whole file.
        case file(path: String, line: Int)
        /// A TELEMETRY_* environment variable of the daemon's process.
        case environment
        /// A command-line flag (given to the loader under its TELEMETRY_* name).
        case flag

        public var description: String {
            switch self {
            case .file(let path, let line): line > 0 ? "\(path):\(line)" : path
            case .environment: "environment"
            case .flag: "command line"
            }
        }
    }

    public var severity: Severity
    /// The TELEMETRY_* (or other) variable concerned, nil for a problem of syntax or of the whole file.
    public var key: String?
    public var source: Source
    /// What is wrong and, where useful, what to do. Never contains a secret value.
    public var message: String
    /// Set only by `ConfigurationLoader.readFile(at:)` when the file does not exist (ENOENT), so the caller
    /// can treat a missing default file as "no file" and a missing explicit `--config` file as an error.
    public var isFileNotFound: Bool

    public init(severity: Severity, key: String?, source: Source, message: String, isFileNotFound: Bool = false) {
        self.severity = severity
        self.key = key
        self.source = source
        self.message = message
        self.isFileNotFound = isFileNotFound
    }

    /// `path:line: KEY: message`, `environment: KEY: message`, `command line: KEY: message`; warnings have
    /// `warning: ` before the key.
    public var description: String {
        var text = source.description + ": "
        if severity == .warning { text += "warning: " }
        if let key { text += key + ": " }
        return text + message
    }
}

/// The configuration that will be used and everything wrong with its inputs.
public struct ConfigurationResult: Sendable, Equatable {
    /// Defaults overridden by every valid value found (an invalid value leaves the previous layer's value).
    public var configuration: DaemonConfiguration
    /// Every problem found, in order: file (by line), environment (by name), flags (by name), then checks
    /// that involve several keys.
    public var problems: [ConfigurationProblem]
    /// Where each key that is not at its default got its effective value.
    public var valueSources: [String: ConfigurationProblem.Source]

    public init(
        configuration: DaemonConfiguration, problems: [ConfigurationProblem],
        valueSources: [String: ConfigurationProblem.Source] = [:]
    ) {
        self.configuration = configuration
        self.problems = problems
        self.valueSources = valueSources
    }

    /// No problem of severity `.error`: the daemon may start.
    public var isValid: Bool { problems.allSatisfy { $0.severity != .error } }
    public var errors: [ConfigurationProblem] { problems.filter { $0.severity == .error } }
    public var warnings: [ConfigurationProblem] { problems.filter { $0.severity == .warning } }
}

public enum ConfigurationLoader {
    /// The file read when no `--config` is given. Its absence is not an error.
    public static let defaultFilePath = "/etc/telemetryd/telemetryd.conf"
    /// A larger file is refused: it is certainly not a telemetryd configuration.
    public static let maxFileBytes = 1 << 20
    /// Only environment variables with this prefix are looked at.
    public static let environmentPrefix = "TELEMETRY_"

    /// Builds the configuration from, by increasing precedence, the defaults, `file`, the TELEMETRY_*
    /// variables of `environment` and `flags` (keyed by TELEMETRY_* names), and collects every problem.
    ///
    /// - A value that is invalid is reported and ignored (the lower layer's value stays), so `configuration`
    ///   is always complete; check `isValid` before using it.
    /// - Problems in a layer are reported even when a higher layer overrides the key: the file must stay valid.
    /// - When the unit loads the same file with EnvironmentFile=, its variables arrive twice: an environment
    ///   variable whose value equals the file's is taken as the file's (reported once, with its line number).
    /// - An unknown TELEMETRY_* key is an error in the file and on the command line, but only a warning in the
    ///   environment, where an unrelated program's variable must not stop the daemon.
    public static func load(
        flags: [String: String], environment: [String: String], file: ConfigurationFile?
    ) -> ConfigurationResult {
        var state = LoadState()

        var fileValues: [String: String] = [:]
        var fileAssignments: [String: Int] = [:]
        if let file {
            let parsed = EnvironmentFileParser.parse(file.contents)
            // Syntax problems and entries interleaved in line order.
            var syntaxProblems = parsed.problems[...]
            for entry in parsed.entries {
                while let first = syntaxProblems.first, first.line <= entry.line {
                    state.problems.append(first.problem(path: file.path))
                    syntaxProblems = syntaxProblems.dropFirst()
                }
                let source = ConfigurationProblem.Source.file(path: file.path, line: entry.line)
                if let previous = fileAssignments[entry.key] {
                    state.problems.append(ConfigurationProblem(
                        severity: .warning, key: entry.key, source: source,
                        message: "is also set on line \(previous); the last assignment (this one) wins"))
                }
                fileAssignments[entry.key] = entry.line
                fileValues[entry.key] = entry.value
                if entry.value.contains("\n") && isDaemonKey(entry.key) {
                    let span = entry.lastLine > entry.line ? " (it runs from line \(entry.line) to \(entry.lastLine))" : ""
                    state.problems.append(ConfigurationProblem(
                        severity: .error, key: entry.key, source: source,
                        message: "value contains a line break\(span); is a closing quote missing?"))
                    continue
                }
                state.assign(entry.key, entry.value, source: source, unknownSeverity: .error, checkOtherNames: true)
            }
            for problem in syntaxProblems {
                state.problems.append(problem.problem(path: file.path))
            }
            if let permissions = file.permissions, permissions & 0o004 != 0,
                let line = fileAssignments["TELEMETRY_API_KEY"], fileValues["TELEMETRY_API_KEY"]?.isEmpty == false
            {
                state.problems.append(ConfigurationProblem(
                    severity: .warning, key: "TELEMETRY_API_KEY", source: .file(path: file.path, line: line),
                    message: "this file is readable by every user (mode \(octalMode(permissions))) and holds the API key; "
                        + "run 'chmod 640 \(file.path)' or move the key to a private file named by TELEMETRY_API_KEY_FILE"))
            }
        }

        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix(environmentPrefix) {
            if let fileValue = fileValues[name], fileValue == value { continue }  // EnvironmentFile= echo
            state.assign(name, value, source: .environment, unknownSeverity: .warning, checkOtherNames: false)
        }

        for (name, value) in flags.sorted(by: { $0.key < $1.key }) {
            state.assign(name, value, source: .flag, unknownSeverity: .error, checkOtherNames: true)
        }

        let configuration = state.configuration
        if !configuration.apiKey.isEmpty && !configuration.apiKeyFile.isEmpty {
            let keySource = state.valueSources["TELEMETRY_API_KEY"] ?? .flag
            state.problems.append(ConfigurationProblem(
                severity: .error, key: "TELEMETRY_API_KEY_FILE",
                source: state.valueSources["TELEMETRY_API_KEY_FILE"] ?? .flag,
                message: "cannot be used together with TELEMETRY_API_KEY (set in \(keySource)); remove one of them"))
        }

        if configuration.clientCertificate.isEmpty != configuration.clientKey.isEmpty {
            let missing = configuration.clientCertificate.isEmpty ? "TELEMETRY_CLIENT_CERT" : "TELEMETRY_CLIENT_KEY"
            let given = configuration.clientCertificate.isEmpty ? "TELEMETRY_CLIENT_KEY" : "TELEMETRY_CLIENT_CERT"
            state.problems.append(ConfigurationProblem(
                severity: .error, key: missing, source: state.valueSources[given] ?? .flag,
                message: "mutual TLS needs both TELEMETRY_CLIENT_CERT and TELEMETRY_CLIENT_KEY; \(given) is set, \(missing) is not"))
        }

        return ConfigurationResult(
            configuration: configuration, problems: state.problems, valueSources: state.valueSources)
    }

    /// Reads a configuration file with open(2)/read(2).
    ///
    /// On failure the problem's source is `.file(path, line: 0)`. A file that does not exist gives a failure
    /// with `isFileNotFound == true`: the daemon treats that as "no file" for `defaultFilePath` and as an error
    /// for a path given with `--config`. A directory, a file over `maxFileBytes` or one that is not UTF-8 is
    /// an error.
    public static func readFile(at path: String) -> Result<ConfigurationFile, ConfigurationProblem> {
        func failure(_ message: String, notFound: Bool = false) -> Result<ConfigurationFile, ConfigurationProblem> {
            .failure(ConfigurationProblem(
                severity: .error, key: nil, source: .file(path: path, line: 0), message: message,
                isFileNotFound: notFound))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            return failure("cannot open: \(String(cString: strerror(code)))", notFound: code == ENOENT)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return failure("cannot stat: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { return failure("is not a regular file") }
        guard info.st_size <= maxFileBytes else {
            return failure("is \(info.st_size) bytes long; a configuration file may have at most \(maxFileBytes) bytes")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return failure("cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            if bytes.count > maxFileBytes {
                return failure("is longer than \(maxFileBytes) bytes; a configuration file may not be that long")
            }
        }
        let contents = String(decoding: bytes, as: UTF8.self)
        if !contents.utf8.elementsEqual(bytes) {
            // Name the first line that is not valid UTF-8.
            var line = 1
            for lineBytes in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                if !String(decoding: lineBytes, as: UTF8.self).utf8.elementsEqual(lineBytes) { break }
                line += 1
            }
            return .failure(ConfigurationProblem(
                severity: .error, key: nil, source: .file(path: path, line: line),
                message: "is not valid UTF-8; save the file as UTF-8"))
        }
        return .success(ConfigurationFile(path: path, contents: contents, permissions: UInt32(info.st_mode) & 0o7777))
    }

    /// The known key closest to `name` by edit distance (case-insensitive), if it is close enough to be a
    /// plausible typo.
    public static func suggestion(for name: String) -> String? {
        let upper = ConfigurationText.asciiUppercased(name)
        let names = DaemonConfiguration.knownKeys.map(\.name)
        if let exact = names.first(where: { $0 == upper }) { return exact }
        var best: (name: String, distance: Int)?
        for candidate in names {
            let distance = editDistance(Array(upper.utf8), Array(candidate.utf8))
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        let limit = max(2, min(4, upper.utf8.count / 6))
        if let best, best.distance <= limit { return best.name }
        // TELEMETRY_TIMEOUT-like shortenings: a unique known key containing the rest of the name.
        if upper.hasPrefix(environmentPrefix) {
            let rest = String(upper.dropFirst(environmentPrefix.count))
            if rest.utf8.count >= 4 {
                let containing = names.filter { $0.dropFirst(environmentPrefix.count).contains(rest) }
                if containing.count == 1 { return containing[0] }
            }
        }
        return nil
    }
}

private func isDaemonKey(_ name: String) -> Bool {
    DaemonConfiguration.key(named: name).map { !$0.isClientOnly } ?? false
}

private func octalMode(_ mode: UInt32) -> String {
    let digits = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Levenshtein distance.
private func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

private struct LoadState {
    var configuration = DaemonConfiguration.defaults
    var problems: [ConfigurationProblem] = []
    var valueSources: [String: ConfigurationProblem.Source] = [:]

    /// Applies one assignment. `checkOtherNames`: also look for typos in names without the TELEMETRY_ prefix
    /// or in the wrong case (file and flags; the environment is full of unrelated variables).
    mutating func assign(
        _ name: String, _ value: String, source: ConfigurationProblem.Source,
        unknownSeverity: ConfigurationProblem.Severity, checkOtherNames: Bool
    ) {
        if let key = DaemonConfiguration.key(named: name) {
            if key.isClientOnly { return }
            if var message = key.apply(value, to: &configuration) {
                if case .file = source, !key.isSecret, value.contains(" #") || value.contains("\t#") {
                    message += "; note that '#' starts a comment only at the beginning of a line"
                }
                problems.append(ConfigurationProblem(severity: .error, key: name, source: source, message: message))
            } else {
                valueSources[name] = source
            }
            return
        }
        let prefix = ConfigurationLoader.environmentPrefix
        if name.hasPrefix(prefix) {
            var message = "unknown setting"
            if let suggestion = ConfigurationLoader.suggestion(for: name) {
                message += "; did you mean \(suggestion)?"
            } else {
                message += "; the documented telemetryd.conf lists every known TELEMETRY_* setting"
            }
            problems.append(ConfigurationProblem(severity: unknownSeverity, key: name, source: source, message: message))
            return
        }
        guard checkOtherNames else { return }
        if ConfigurationText.asciiUppercased(name).hasPrefix(prefix) {
            var message = "names are case-sensitive, so this is not a telemetryd setting"
            if let suggestion = ConfigurationLoader.suggestion(for: name) { message += "; did you mean \(suggestion)?" }
            problems.append(ConfigurationProblem(severity: .error, key: name, source: source, message: message))
            return
        }
        if case .flag = source {
            problems.append(ConfigurationProblem(
                severity: .error, key: name, source: source, message: "is not a telemetryd setting"))
            return
        }
        // Other variables (HTTPS_PROXY, NO_PROXY, ...) are allowed; flag only near-misses of our names.
        let upper = Array(ConfigurationText.asciiUppercased(name).utf8)
        if let near = DaemonConfiguration.knownKeys.first(where: { editDistance(upper, Array($0.name.utf8)) <= 2 }) {
            problems.append(ConfigurationProblem(
                severity: .warning, key: name, source: source,
                message: "is not a telemetryd setting and is ignored; did you mean \(near.name)?"))
        }
    }
}

// MARK: - systemd EnvironmentFile= syntax

/// One `KEY=VALUE` assignment of an environment file.
struct EnvironmentFileEntry: Equatable {
    var key: String
    var value: String
    /// Line of the key.
    var line: Int
    /// Line where the value ends (differs for continuation lines and multi-line quotes).
    var lastLine: Int
}

struct EnvironmentFileSyntaxProblem: Equatable {
    var line: Int
    var key: String?
    var message: String

    func problem(path: String) -> ConfigurationProblem {
        ConfigurationProblem(severity: .error, key: key, source: .file(path: path, line: line), message: message)
    }
}

/// Parses the syntax of systemd's EnvironmentFile= (the state machine of systemd's env-file.c), so a file
/// means the same to telemetryd as to systemd:
/// - `KEY=VALUE` assignments; blank lines ignored; `#` or `;` as the first non-blank character makes a comment
///   line (elsewhere they are part of the value); whitespace around the key and the value is trimmed;
/// - `'…'` is literal; in `"…"` a backslash escapes `"` `\` `` ` `` `$` and a newline (other backslashes stay);
///   unquoted, a backslash escapes any character; a backslash before the end of a line continues the value
///   on the next line; a quote opens only at the start of the value or right after a closing quote
///   (`"a b"'c'd` is `a bcd`, while the quotes of `it's` and `a"b"` are literal);
/// - an optional `export ` before the key is tolerated (systemd itself would drop such a line).
/// Unlike systemd, which silently skips them, it reports: a line without `=`, an invalid variable name and a
/// quote still open at the end of the file.
enum EnvironmentFileParser {
    private enum State {
        case preKey, key, preValue, value, valueEscape, singleQuote, doubleQuote, doubleQuoteEscape, comment
    }

    static func parse(_ text: String) -> (entries: [EnvironmentFileEntry], problems: [EnvironmentFileSyntaxProblem]) {
        var entries: [EnvironmentFileEntry] = []
        var problems: [EnvironmentFileSyntaxProblem] = []

        var state = State.preKey
        var key: [UInt8] = []
        var value: [UInt8] = []
        var keyWhitespaceStart: Int?  // where trailing whitespace of the key begins
        var valueWhitespaceStart: Int?  // where trailing whitespace of an unquoted value begins
        var line = 1
        var entryLine = 1
        var quoteLine = 1

        func finishEntry(endLine: Int) {
            if let start = keyWhitespaceStart { key.removeSubrange(start...) }
            var name = key[...]
            if name.starts(with: "export".utf8), name.count > 6, name[name.startIndex + 6] == 0x20 || name[name.startIndex + 6] == 0x09 {
                name = name.dropFirst(6).drop { $0 == 0x20 || $0 == 0x09 }
            }
            let keyText = String(decoding: name, as: UTF8.self)
            if let problem = variableNameProblem(name) {
                problems.append(EnvironmentFileSyntaxProblem(line: entryLine, key: nil, message: problem))
            } else {
                entries.append(EnvironmentFileEntry(
                    key: keyText, value: String(decoding: value, as: UTF8.self), line: entryLine, lastLine: endLine))
            }
            key.removeAll(keepingCapacity: true)
            value.removeAll(keepingCapacity: true)
            keyWhitespaceStart = nil
            valueWhitespaceStart = nil
        }

        func trimValueWhitespace() {
            if let start = valueWhitespaceStart { value.removeSubrange(start...) }
            valueWhitespaceStart = nil
        }

        for byte in text.utf8 {
            let isNewline = byte == 0x0A || byte == 0x0D
            let isBlank = byte == 0x20 || byte == 0x09
            switch state {
            case .preKey:
                if byte == UInt8(ascii: "#") || byte == UInt8(ascii: ";") {
                    state = .comment
                } else if byte == UInt8(ascii: "=") {
                    // "=value": systemd would take "=value" as a key without '=' and skip it; say what is wrong.
                    state = .preValue
                    entryLine = line
                    key = []
                    keyWhitespaceStart = nil
                } else if !isNewline && !isBlank {
                    state = .key
                    entryLine = line
                    key = [byte]
                    keyWhitespaceStart = nil
                }
            case .key:
                if isNewline {
                    if let start = keyWhitespaceStart { key.removeSubrange(start...) }
                    problems.append(EnvironmentFileSyntaxProblem(line: entryLine, key: nil, message: missingEqualsMessage(key)))
                    key.removeAll(keepingCapacity: true)
                    keyWhitespaceStart = nil
                    state = .preKey
                } else if byte == UInt8(ascii: "=") {
                    state = .preValue
                    valueWhitespaceStart = nil
                } else {
                    if !isBlank {
                        keyWhitespaceStart = nil
                    } else if keyWhitespaceStart == nil {
                        keyWhitespaceStart = key.count
                    }
                    key.append(byte)
                }
            case .preValue:
                if isNewline {
                    finishEntry(endLine: line)
                    state = .preKey
                } else if byte == UInt8(ascii: "'") {
                    state = .singleQuote
                    quoteLine = line
                } else if byte == UInt8(ascii: "\"") {
                    state = .doubleQuote
                    quoteLine = line
                } else if byte == UInt8(ascii: "\\") {
                    state = .valueEscape
                } else if !isBlank {
                    state = .value
                    value.append(byte)
                }
            case .value:
                if isNewline {
                    trimValueWhitespace()
                    finishEntry(endLine: line)
                    state = .preKey
                } else if byte == UInt8(ascii: "\\") {
                    state = .valueEscape
                    valueWhitespaceStart = nil
                } else {
                    if !isBlank {
                        valueWhitespaceStart = nil
                    } else if valueWhitespaceStart == nil {
                        valueWhitespaceStart = value.count
                    }
                    value.append(byte)
                }
            case .valueEscape:
                state = .value
                if !isNewline { value.append(byte) }  // an escaped newline is eaten: continuation line
            case .singleQuote:
                if byte == UInt8(ascii: "'") {
                    state = .preValue
                } else {
                    value.append(byte)
                }
            case .doubleQuote:
                if byte == UInt8(ascii: "\"") {
                    state = .preValue
                } else if byte == UInt8(ascii: "\\") {
                    state = .doubleQuoteEscape
                } else {
                    value.append(byte)
                }
            case .doubleQuoteEscape:
                state = .doubleQuote
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "`")
                    || byte == UInt8(ascii: "$")
                {
                    value.append(byte)
                } else if byte != 0x0A {
                    value.append(UInt8(ascii: "\\"))
                    value.append(byte)
                }
            case .comment:
                if isNewline { state = .preKey }
            }
            if byte == 0x0A { line += 1 }
        }

        let lastLine = text.utf8.last == 0x0A ? line - 1 : line
        switch state {
        case .preKey, .comment:
            break
        case .key:
            if let start = keyWhitespaceStart { key.removeSubrange(start...) }
            problems.append(EnvironmentFileSyntaxProblem(line: entryLine, key: nil, message: missingEqualsMessage(key)))
        case .preValue, .valueEscape:
            finishEntry(endLine: lastLine)
        case .value:
            trimValueWhitespace()
            finishEntry(endLine: lastLine)
        case .singleQuote, .doubleQuote, .doubleQuoteEscape:
            if let start = keyWhitespaceStart { key.removeSubrange(start...) }
            let name = String(decoding: key, as: UTF8.self)
            let quote = state == .singleQuote ? "'" : "\""
            let opened = quoteLine == entryLine ? "" : " (opened on line \(quoteLine))"
            problems.append(EnvironmentFileSyntaxProblem(
                line: entryLine, key: variableNameProblem(key[...]) == nil ? name : nil,
                message: "unterminated \(quote) quote\(opened): the value runs to the end of the file; "
                    + "add the closing \(quote)"))
        }
        return (entries, problems)
    }

    /// The message for a line without '='. The line is shown, except what follows the name of a secret key
    /// (`TELEMETRY_API_KEY sk-…` must not end up in a log).
    private static func missingEqualsMessage(_ line: [UInt8]) -> String {
        let text = String(decoding: line, as: UTF8.self)
        let firstWord = String(text.prefix { $0 != " " && $0 != "\t" && $0 != ":" })
        let shown = DaemonConfiguration.key(named: firstWord)?.isSecret == true && firstWord != text
            ? ConfigurationText.quoted(firstWord + " …") + ", the rest not shown"
            : ConfigurationText.quoted(text)
        return "line has no '=': expected KEY=VALUE (got \(shown))"
    }

    /// nil for a valid variable name (`[A-Za-z_][A-Za-z0-9_]*`), else the message.
    private static func variableNameProblem(_ name: ArraySlice<UInt8>) -> String? {
        guard let first = name.first else { return "missing variable name before '='" }
        func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        let valid = (isLetter(first) || first == UInt8(ascii: "_"))
            && name.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
        if valid { return nil }
        return "invalid variable name \(ConfigurationText.quoted(String(decoding: name, as: UTF8.self))): a name has only letters, "
            + "digits and '_' and does not start with a digit"
    }
}
