import Logging
import Synchronization

/// A log handler that keeps every entry in memory, for tests that check what the daemon tells an operator.
struct RecordingLogHandler: LogHandler {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    final class Store: Sendable {
        private let entries = Mutex<[Entry]>([])
        func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
        var all: [Entry] { entries.withLock { $0 } }
        /// The entries that carry `messageID` as their journal MESSAGE_ID.
        func withMessageID(_ messageID: String) -> [Entry] { all.filter { $0.metadata["message_id"] == messageID } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    /// A logger whose entries end up in the returned store.
    static func logger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "test") { _ in RecordingLogHandler(store: store) }, store)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        store.append(Entry(level: event.level, message: "\(event.message)",
                           metadata: merged.mapValues { "\($0)" }))
    }
}
