/// What a configuration reload (SIGHUP) changes, split into what the running daemon applies at once and what
/// only a restart can apply. Pure: the daemon computes it from the old and new configurations, then acts.
public struct ReloadPlan: Sendable, Equatable {
    /// Keys whose new value takes effect without a restart.
    public var appliedLive: [String]
    /// Keys that changed but keep their old value until the daemon restarts.
    public var needRestart: [String]

    public var isEmpty: Bool { appliedLive.isEmpty && needRestart.isEmpty }

    /// Keys the running daemon can change: everything about delivery (the forwarder picks the new settings up
    /// between two batches), logging, and the shutdown timeout. Turning forwarding on or off is not among them:
    /// documents stored while forwarding was off were never queued, and the queue is set up at start.
    public static let liveKeys: Set<String> = [
        "TELEMETRY_ENDPOINT", "TELEMETRY_API_KEY", "TELEMETRY_API_KEY_FILE", "TELEMETRY_BATCH_SIZE",
        "TELEMETRY_FLUSH_INTERVAL", "TELEMETRY_RETRY_ATTEMPTS", "TELEMETRY_BATCH_MAX_BYTES", "TELEMETRY_FORMAT",
        "TELEMETRY_COMPRESSION", "TELEMETRY_CA_FILE", "TELEMETRY_CLIENT_CERT", "TELEMETRY_CLIENT_KEY",
        "TELEMETRY_CONNECT_TIMEOUT", "TELEMETRY_REQUEST_TIMEOUT", "TELEMETRY_RETRY_MAX_BACKOFF",
        "TELEMETRY_SHUTDOWN_TIMEOUT", "TELEMETRY_LOG_LEVEL", "TELEMETRY_JOURNAL_EVENTS",
    ]

    public init(appliedLive: [String], needRestart: [String]) {
        self.appliedLive = appliedLive
        self.needRestart = needRestart
    }

    /// Compares every daemon key of the table (secrets by value, never shown) and sorts the changed ones.
    /// `secretChanged` reports a change that the configuration cannot show, such as new content in
    /// TELEMETRY_API_KEY_FILE.
    public init(from old: DaemonConfiguration, to new: DaemonConfiguration, apiKeyContentChanged: Bool = false) {
        var live: [String] = []
        var restart: [String] = []
        for key in DaemonConfiguration.knownKeys where !key.isClientOnly {
            let changed = key.name == "TELEMETRY_API_KEY"
                ? old.apiKey != new.apiKey
                : key.displayValue(in: old) != key.displayValue(in: new)
            guard changed || (key.name == "TELEMETRY_API_KEY_FILE" && apiKeyContentChanged) else { continue }
            let switchesForwarding = key.name == "TELEMETRY_ENDPOINT" && old.forwardsDocuments != new.forwardsDocuments
            if Self.liveKeys.contains(key.name) && !switchesForwarding {
                live.append(key.name)
            } else {
                restart.append(key.name)
            }
        }
        self.init(appliedLive: live, needRestart: restart)
    }
}
