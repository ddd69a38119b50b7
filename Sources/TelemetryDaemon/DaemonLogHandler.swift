import CSystemd
import Logging
import Synchronization
import TelemetryCore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's log threshold, shared by every logger so that a reload (SIGHUP) changes it at once.
public final class LogLevelControl: Sendable {
    private let raw: Atomic<Int>

    public init(_ level: Logger.Level) { raw = Atomic(Self.index(of: level)) }

    public var level: Logger.Level {
        get { Logger.Level.allCases[raw.load(ordering: .relaxed)] }
        set { raw.store(Self.index(of: newValue), ordering: .relaxed) }
    }

    private static func index(of level: Logger.Level) -> Int { Logger.Level.allCases.firstIndex(of: level) ?? 2 }
}

/// Where log entries go: native journal entries (structured fields, MESSAGE_ID, PRIORITY) or lines on stderr.
public enum LogDestination: Sendable, Equatable {
    case journal
    case standardError

    /// `auto` picks the journal exactly when stderr is the stream systemd connected to journald: JOURNAL_STREAM
    /// names stderr's device and inode (systemd.exec(5)). A child with redirected stderr, or a daemon started
    /// by hand, logs lines to stderr. sd_journal_sendv succeeds even with no journald listening, so the
    /// variable, not the call's result, decides.
    public static func resolve(_ target: DaemonConfiguration.LogTarget,
                               journalStream: String? = getenv("JOURNAL_STREAM").map { String(cString: $0) }) -> LogDestination {
        switch target {
        case .journal: return .journal
        case .stderr: return .standardError
        case .auto:
            guard let journalStream else { return .standardError }
            let parts = journalStream.split(separator: ":")
            guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .standardError }
            var status = stat()
            guard fstat(2, &status) == 0 else { return .standardError }
            return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode ? .journal : .standardError
        }
    }
}

/// A swift-log handler for the daemon: journal entries through sd_journal_sendv, or plain lines on stderr.
///
/// Journal fields: MESSAGE, PRIORITY (syslog severity of the level), SYSLOG_IDENTIFIER=telemetryd, CODE_FILE,
/// CODE_LINE, CODE_FUNC, and one field per metadata key: `message_id` becomes MESSAGE_ID, `errno` ERRNO, and
/// any other key TELEMETRY_<KEY> in upper case (so `script` is TELEMETRY_SCRIPT). On stderr the line is
/// `TIME LEVEL telemetryd: key=value … [module] message`, without the MESSAGE_ID.
public struct DaemonLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let destination: LogDestination
    private let levelControl: LogLevelControl
    private let label: String

    public init(label: String, destination: LogDestination, level: LogLevelControl) {
        self.label = label
        self.destination = destination
        self.levelControl = level
    }

    public var logLevel: Logger.Level {
        get { levelControl.level }
        set { levelControl.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        switch destination {
        case .journal:
            let fields = Self.journalFields(level: event.level, message: "\(event.message)", metadata: merged,
                                            file: event.file, function: event.function, line: event.line)
            if Self.sendToJournal(fields) { return }
            // journald is gone (restarting, or never there): the line must not be lost.
            writeLine(level: event.level, message: "\(event.message)", metadata: merged, source: event.source)
        case .standardError:
            writeLine(level: event.level, message: "\(event.message)", metadata: merged, source: event.source)
        }
    }

    /// The entry's fields as `NAME=value` byte strings, in a stable order. Internal for tests.
    static func journalFields(level: Logger.Level, message: String, metadata: Logger.Metadata,
                              file: String, function: String, line: UInt) -> [[UInt8]] {
        var fields: [[UInt8]] = [
            Array("MESSAGE=\(message)".utf8),
            Array("PRIORITY=\(priority(of: level))".utf8),
            Array("SYSLOG_IDENTIFIER=telemetryd".utf8),
            Array("CODE_FILE=\(file)".utf8),
            Array("CODE_LINE=\(line)".utf8),
            Array("CODE_FUNC=\(function)".utf8),
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard let name = fieldName(forMetadataKey: key) else { continue }
            fields.append(Array("\(name)=\(value)".utf8))
        }
        return fields
    }

    /// syslog severities, as journald's PRIORITY expects them.
    static func priority(of level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A journal field name for a metadata key: upper case letters, digits and underscores, not starting with
    /// an underscore (those are journald's trusted fields), at most 64 bytes. Nil when nothing usable is left.
    static func fieldName(forMetadataKey key: String) -> String? {
        switch key {
        case JournalMessageID.metadataKey: return "MESSAGE_ID"
        case "errno": return "ERRNO"
        default: break
        }
        var name = "TELEMETRY_"
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): name.unicodeScalars.append(Unicode.Scalar(byte - 32))
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                name.unicodeScalars.append(Unicode.Scalar(byte))
            default: name.append("_")
            }
        }
        guard name.utf8.count > "TELEMETRY_".utf8.count else { return nil }
        return String(decoding: name.utf8.prefix(64), as: UTF8.self)
    }

    /// One native journal entry; false when journald did not take it.
    private static func sendToJournal(_ fields: [[UInt8]]) -> Bool {
        var joined: [UInt8] = []
        joined.reserveCapacity(fields.reduce(0) { $0 + $1.count })
        var ranges: [(offset: Int, count: Int)] = []
        for field in fields {
            ranges.append((joined.count, field.count))
            joined += field
        }
        return joined.withUnsafeMutableBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return false }
            let vectors = ranges.map { iovec(iov_base: base + $0.offset, iov_len: $0.count) }
            return sd_journal_sendv(vectors, Int32(vectors.count)) >= 0
        }
    }

    private func writeLine(level: Logger.Level, message: String, metadata: Logger.Metadata, source: String) {
        var line = "\(Timestamp.now().rfc3339) \(level) \(label):"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where key != JournalMessageID.metadataKey {
            line += " \(key)=\(value)"
        }
        line += " [\(source)] \(message)\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
