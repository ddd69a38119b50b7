#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The daemon's settings, one property per TELEMETRY_* key.
///
/// Values come from `ConfigurationLoader.load(flags:environment:file:)`; the table of keys
/// (`DaemonConfiguration.knownKeys`) is the single description of every key: the loader, `--check-config`,
/// the docs and `config/telemetryd.conf` are all derived from it.
public struct DaemonConfiguration: Sendable, Equatable {
    /// SQLite `synchronous` setting of the store (TELEMETRY_STORE_SYNC).
    public enum StoreSync: String, Sendable, Equatable, CaseIterable {
        /// fsync on every commit: an accepted line survives a power loss.
        case full
        /// fsync at WAL checkpoints only: faster, the last commits may be lost on power loss (not on a crash).
        case normal
    }

    /// Wire format of deliveries (TELEMETRY_FORMAT).
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// A JSON array of execution documents (docs/delivery.md).
        case json
        /// OTLP/HTTP JSON logs and metrics (docs/otlp.md).
        case otlp
    }

    /// Request body compression (TELEMETRY_COMPRESSION).
    public enum Compression: String, Sendable, Equatable, CaseIterable {
        case gzip, zstd, none
    }

    /// Log threshold (TELEMETRY_LOG_LEVEL); the names and order are swift-log's `Logger.Level`.
    public enum LogLevel: String, Sendable, Equatable, CaseIterable, Comparable {
        case trace, debug, info, notice, warning, error, critical

        public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
            let order = LogLevel.allCases
            return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
        }
    }

    /// Where the daemon's own log goes (TELEMETRY_LOG_TARGET).
    public enum LogTarget: String, Sendable, Equatable, CaseIterable {
        /// The journal when stderr is the journal stream systemd set up (JOURNAL_STREAM), else stderr.
        case auto
        /// Native journal entries with structured fields, whatever stderr is.
        case journal
        /// Plain text lines on stderr.
        case stderr
    }

    // Privacy
    /// TELEMETRY_ENABLED: false makes the daemon discard everything it receives (host-wide opt-out).
    public var enabled: Bool
    /// TELEMETRY_HOSTNAME: the host name put in documents; empty means gethostname() (see `effectiveHostname`).
    public var hostname: String

    // Intake
    /// TELEMETRY_SOCKET: path of the Unix socket clients connect to.
    public var socketPath: String
    /// TELEMETRY_MAX_LINE_BYTES: longest accepted line, newline excluded.
    public var maxLineBytes: Int
    /// TELEMETRY_MAX_CONNECTIONS: simultaneous client connections.
    public var maxConnections: Int
    /// TELEMETRY_EXECUTION_TIMEOUT: seconds without a line after which an execution is closed as `incomplete`.
    public var executionTimeoutSeconds: Int
    /// TELEMETRY_MAX_EVENTS_PER_EXECUTION: events kept per execution; further ones are only counted.
    public var maxEventsPerExecution: Int

    // Store
    /// TELEMETRY_STATE_DIR: directory of the SQLite store and the anonymization key.
    public var stateDirectory: String
    /// TELEMETRY_SPOOL_DIR: where clients leave lines while the daemon is unreachable; the daemon takes them in.
    public var spoolDirectory: String
    /// TELEMETRY_COMMIT_INTERVAL_MS: group-commit window in milliseconds.
    public var commitIntervalMilliseconds: Int
    /// TELEMETRY_STORE_SYNC: durability of each commit.
    public var storeSync: StoreSync
    /// TELEMETRY_RETENTION_DAYS: days completed documents are kept; 0 keeps them forever.
    public var retentionDays: Int

    // Delivery
    /// TELEMETRY_ENDPOINT: URL documents are forwarded to; empty keeps everything in the local store.
    public var endpoint: String
    /// TELEMETRY_API_KEY: the key sent to the endpoint. Never log it: use `redactedDescription`.
    public var apiKey: String
    /// TELEMETRY_API_KEY_FILE: a file holding the API key (exclusive with `apiKey`).
    public var apiKeyFile: String
    /// TELEMETRY_BATCH_SIZE: documents per upload.
    public var batchSize: Int
    /// TELEMETRY_FLUSH_INTERVAL: seconds between uploads of a partial batch.
    public var flushIntervalSeconds: Int
    /// TELEMETRY_FORMAT: json documents or OTLP/HTTP JSON.
    public var format: Format
    /// TELEMETRY_COMPRESSION: request body encoding.
    public var compression: Compression
    /// TELEMETRY_BATCH_MAX_BYTES: cap on the documents of one request, before compression.
    public var batchMaxBytes: Int
    /// TELEMETRY_CA_FILE: PEM CA bundle to trust for the endpoint instead of the system's.
    public var caFile: String
    /// TELEMETRY_CLIENT_CERT / TELEMETRY_CLIENT_KEY: PEM client certificate and key for mTLS.
    public var clientCertificate: String
    public var clientKey: String
    /// TELEMETRY_CONNECT_TIMEOUT / TELEMETRY_REQUEST_TIMEOUT, seconds.
    public var connectTimeoutSeconds: Int
    public var requestTimeoutSeconds: Int
    /// TELEMETRY_RETRY_MAX_BACKOFF: longest wait between delivery cycles during an outage, seconds.
    public var retryMaxBackoffSeconds: Int
    /// TELEMETRY_SPOOL_MAX_MB: size cap of the store in MiB (0: none).
    public var spoolMaxMegabytes: Int
    /// TELEMETRY_SHUTDOWN_TIMEOUT: seconds for the last delivery at shutdown.
    public var shutdownTimeoutSeconds: Int
    /// TELEMETRY_RETRY_ATTEMPTS: retries of a failed upload before it waits for the next flush.
    public var retryAttempts: Int

    // Logging
    /// TELEMETRY_LOG_LEVEL
    public var logLevel: LogLevel
    /// TELEMETRY_LOG_TARGET
    public var logTarget: LogTarget = .auto
    /// TELEMETRY_JOURNAL_EVENTS: also log every completed script execution as one structured entry.
    public var journalEvents = false

    // Metrics
    /// TELEMETRY_METRICS_LISTEN: address of the Prometheus listener (/metrics, /healthz, /readyz), or off.
    public var metricsListen: MetricsListen
    /// TELEMETRY_METRICS_MAX_SCRIPTS / _MAX_ENVIRONMENTS / _MAX_NAMES: label caps of the script metrics.
    public var metricsMaxScripts: Int
    public var metricsMaxEnvironments: Int
    public var metricsMaxNames: Int

    public static let defaults = DaemonConfiguration(
        enabled: true,
        hostname: "",
        socketPath: "/run/telemetryd/telemetryd.sock",
        maxLineBytes: 65_536,
        maxConnections: 1024,
        executionTimeoutSeconds: 3600,
        maxEventsPerExecution: 10_000,
        stateDirectory: "/var/lib/telemetryd",
        spoolDirectory: "/var/spool/telemetryd",
        commitIntervalMilliseconds: 10,
        storeSync: .full,
        retentionDays: 30,
        endpoint: "",
        apiKey: "",
        apiKeyFile: "",
        batchSize: 100,
        flushIntervalSeconds: 60,
        format: .json,
        compression: .gzip,
        batchMaxBytes: 5 << 20,
        caFile: "",
        clientCertificate: "",
        clientKey: "",
        connectTimeoutSeconds: 10,
        requestTimeoutSeconds: 30,
        retryMaxBackoffSeconds: 300,
        spoolMaxMegabytes: 1024,
        shutdownTimeoutSeconds: 10,
        retryAttempts: 3,
        logLevel: .info,
        metricsListen: .address(host: "127.0.0.1", port: 9469),
        metricsMaxScripts: 100,
        metricsMaxEnvironments: 10,
        metricsMaxNames: 500
    )

    public var flushInterval: Duration { .seconds(flushIntervalSeconds) }
    public var executionTimeout: Duration { .seconds(executionTimeoutSeconds) }
    public var commitInterval: Duration { .milliseconds(commitIntervalMilliseconds) }

    /// True when documents are forwarded (TELEMETRY_ENDPOINT is set); false keeps them in the local store.
    public var forwardsDocuments: Bool { !endpoint.isEmpty }

    /// TELEMETRY_HOSTNAME, or gethostname() when it is empty ("localhost" if even that fails).
    public var effectiveHostname: String {
        if !hostname.isEmpty { return hostname }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// Every daemon setting as `KEY=value` lines, in table order, ready to log or print for `--check-config`.
    /// The API key is shown as `<set>` or `<unset>`, and the query string of the endpoint (which might hold a
    /// token) as `?<redacted>`; every other value is shown, quoted like the file when needed.
    public var redactedDescription: String {
        Self.knownKeys.compactMap { key in
            key.renderValue.map { "\(key.name)=\(ConfigurationText.quoteForEnvironmentFile($0(self)))" }
        }.joined(separator: "\n")
    }

    /// The table of every key the configuration file accepts, daemon settings and client-only keys alike.
    public static var knownKeys: [ConfigurationKey] { configurationKeyTable }

    /// The table entry named `name` (exact, case-sensitive), if any.
    public static func key(named name: String) -> ConfigurationKey? {
        configurationKeyTable.first { $0.name == name }
    }

    /// The documented default configuration file: every key commented out with its default and its summary,
    /// grouped. `config/telemetryd.conf` is this text (a test keeps them in step).
    public static func documentedFileText() -> String {
        var lines: [String] = [
            "# telemetryd configuration.",
            "#",
            "# Read by telemetryd (default path /etc/telemetryd/telemetryd.conf, or --config PATH) and usable as the",
            "# unit's EnvironmentFile=: the syntax is systemd's. One KEY=VALUE per line; lines starting with '#' or",
            "# ';' are comments ('#' later in a line is part of the value); values may be 'single-quoted' (literal)",
            "# or \"double-quoted\" (\\\" \\\\ \\` \\$ escapes); a trailing backslash continues the line.",
            "#",
            "# Precedence: command-line flags > TELEMETRY_* environment variables > this file > built-in defaults.",
            "# Every setting is shown below commented out with its default value. Check a file with",
            "# 'telemetryd --check-config'. Other variables (HTTPS_PROXY, NO_PROXY, ...) may be set here too.",
        ]
        for group in ConfigurationKey.Group.allCases {
            let keys = configurationKeyTable.filter { $0.group == group }
            guard !keys.isEmpty else { continue }
            lines.append("")
            lines.append("# ---- \(group.title) " + String(repeating: "-", count: max(4, 96 - group.title.count)))
            for key in keys {
                lines.append("")
                lines += wrapComment(key.summary)
                if !key.isClientOnly { lines += wrapComment("Allowed: " + key.valueSyntax + ".") }
                lines.append("#\(key.name)=\(ConfigurationText.quoteForEnvironmentFile(key.defaultValue))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One TELEMETRY_* key: its name, documentation and how it is parsed into and read from a configuration.
public struct ConfigurationKey: Sendable, CustomStringConvertible {
    /// Sections of the documented file and the docs.
    public enum Group: String, Sendable, CaseIterable {
        case intake, store, delivery, metrics, privacy, logging, client

        public var title: String {
            switch self {
            case .privacy: "Privacy"
            case .intake: "Intake: the socket scripts write to"
            case .store: "Store: the local SQLite database"
            case .delivery: "Delivery: forwarding documents over HTTPS"
            case .metrics: "Metrics: the Prometheus endpoint (docs/metrics.md)"
            case .logging: "Logging"
            case .client: "Clients: read by the telemetry client and the bash library, ignored by the daemon"
            }
        }
    }

    /// Parses `value` into `configuration`; returns nil on success, else the message of the error
    /// (what is expected, the offending value unless the key is secret, what to do).
    public typealias Apply = @Sendable (_ value: String, _ configuration: inout DaemonConfiguration) -> String?

    /// The variable name, e.g. `TELEMETRY_BATCH_SIZE`.
    public let name: String
    /// The default as it is written in the file (may be empty).
    public let defaultValue: String
    /// One sentence saying what the key does.
    public let summary: String
    /// What the value may be, e.g. "integer 1-10000 (seconds)" (lowercase, no final period).
    public let valueSyntax: String
    public let group: Group
    /// The value is a secret: it is never shown in a message or a description.
    public let isSecret: Bool
    let parse: Apply
    /// Reads the current value back as file text; nil for client-only keys, which the daemon does not keep.
    let renderValue: (@Sendable (DaemonConfiguration) -> String)?

    /// True for keys read only by clients and the bash library: accepted in the file and ignored by the daemon.
    public var isClientOnly: Bool { group == .client }

    public var description: String { name }

    /// Parses `value` into `configuration`; nil on success, else the error message.
    public func apply(_ value: String, to configuration: inout DaemonConfiguration) -> String? {
        parse(value, &configuration)
    }

    /// The key's current value in `configuration` as file text (`<set>`/`<unset>` for a secret); nil for
    /// client-only keys.
    public func displayValue(in configuration: DaemonConfiguration) -> String? {
        renderValue.map { $0(configuration) }
    }
}

// MARK: - The key table

private let configurationKeyTable: [ConfigurationKey] = [
    // Intake
    ConfigurationKey(
        name: "TELEMETRY_SOCKET", defaultValue: DaemonConfiguration.defaults.socketPath,
        summary: "Unix socket that scripts and the telemetry client send events to.",
        valueSyntax: "absolute path, at most 107 bytes", group: .intake, isSecret: false,
        parse: { value, configuration in
            if let problem = absolutePathProblem(value) { return problem }
            if value.utf8.count > maxSocketPathBytes {
                return "is \(value.utf8.count) bytes long, but a Unix socket path can have at most \(maxSocketPathBytes) "
                    + "bytes (sockaddr_un.sun_path holds \(maxSocketPathBytes + 1) including the final NUL); "
                    + "choose a shorter path (got \(ConfigurationText.quoted(value)))"
            }
            if value.hasSuffix("/") { return "must name a socket file, not a directory (got \(ConfigurationText.quoted(value)))" }
            configuration.socketPath = value
            return nil
        },
        renderValue: { $0.socketPath }),
    intKey(
        "TELEMETRY_MAX_LINE_BYTES", \.maxLineBytes, 256...1_048_576, group: .intake, unit: "bytes",
        summary: "Longest line a client may send, newline excluded; a longer line is rejected."),
    intKey(
        "TELEMETRY_MAX_CONNECTIONS", \.maxConnections, 1...65_536, group: .intake,
        summary: "Most client connections served at the same time; further ones are closed at once and counted (their clients spool)."),
    intKey(
        "TELEMETRY_EXECUTION_TIMEOUT", \.executionTimeoutSeconds, 10...604_800, group: .intake, unit: "seconds",
        summary: "An execution that sends no line for this long is closed as incomplete."),
    intKey(
        "TELEMETRY_MAX_EVENTS_PER_EXECUTION", \.maxEventsPerExecution, 10...1_000_000, group: .intake,
        summary: "Events kept per execution; events beyond it are counted in the document, not kept."),

    // Store
    ConfigurationKey(
        name: "TELEMETRY_STATE_DIR", defaultValue: DaemonConfiguration.defaults.stateDirectory,
        summary: "Directory of the SQLite store and of the anonymization key.",
        valueSyntax: "absolute path", group: .store, isSecret: false,
        parse: { value, configuration in
            if let problem = absolutePathProblem(value) { return problem }
            configuration.stateDirectory = value
            return nil
        },
        renderValue: { $0.stateDirectory }),
    ConfigurationKey(
        name: "TELEMETRY_SPOOL_DIR", defaultValue: DaemonConfiguration.defaults.spoolDirectory,
        summary: "Where clients spool lines while the daemon is unreachable; the daemon takes them in and deletes them.",
        valueSyntax: "absolute path", group: .store, isSecret: false,
        parse: { value, configuration in
            if let problem = absolutePathProblem(value) { return problem }
            configuration.spoolDirectory = value
            return nil
        },
        renderValue: { $0.spoolDirectory }),
    intKey(
        "TELEMETRY_COMMIT_INTERVAL_MS", \.commitIntervalMilliseconds, 1...1000, group: .store, unit: "milliseconds",
        summary: "Group-commit window: lines accepted within it are made durable by one commit."),
    enumKey(
        "TELEMETRY_STORE_SYNC", \.storeSync, group: .store,
        summary: "How commits reach the disk: full fsyncs each one right after it is made, on a thread of its own, and confirms a flush only after its fsync (nothing confirmed is lost on power failure); normal makes no fsync per commit (SQLite still syncs at checkpoints), and a power failure may lose the last commits, confirmed or not."),
    intKey(
        "TELEMETRY_SPOOL_MAX_MB", \.spoolMaxMegabytes, 0...1_048_576, group: .store,
        summary: "Size cap of the store in MiB (0: none). When full, delivered documents go first; if undelivered ones fill it, new lines are refused (counted as store_full)."),
    intKey(
        "TELEMETRY_RETENTION_DAYS", \.retentionDays, 0...3650, group: .store, unit: "days",
        summary: "Days completed documents are kept in the store; 0 keeps them forever."),

    // Delivery
    ConfigurationKey(
        name: "TELEMETRY_ENDPOINT", defaultValue: "",
        summary: "URL that documents are forwarded to; empty keeps everything in the local store.",
        valueSyntax: "https:// URL (http:// only for 127.0.0.1, localhost or [::1]), or empty", group: .delivery,
        isSecret: false,
        parse: { value, configuration in
            if let problem = endpointProblem(value) { return problem }
            configuration.endpoint = value
            return nil
        },
        renderValue: { redactedEndpoint($0.endpoint) }),
    ConfigurationKey(
        name: "TELEMETRY_API_KEY", defaultValue: "",
        summary: "Key sent to the endpoint; prefer TELEMETRY_API_KEY_FILE, and never both.",
        valueSyntax: "text without spaces or control characters, or empty", group: .delivery, isSecret: true,
        parse: { value, configuration in
            if value.unicodeScalars.contains(where: { $0.properties.isWhitespace || isControl($0) }) {
                return "must not contain spaces, line breaks or control characters (value not shown); check its quoting"
            }
            configuration.apiKey = value
            return nil
        },
        renderValue: { $0.apiKey.isEmpty ? "<unset>" : "<set>" }),
    ConfigurationKey(
        name: "TELEMETRY_API_KEY_FILE", defaultValue: "",
        summary: "File holding the API key (readable by the daemon only), instead of TELEMETRY_API_KEY.",
        valueSyntax: "absolute path, or empty", group: .delivery, isSecret: false,
        parse: { value, configuration in
            if !value.isEmpty, let problem = absolutePathProblem(value) { return problem }
            configuration.apiKeyFile = value
            return nil
        },
        renderValue: { $0.apiKeyFile }),
    intKey(
        "TELEMETRY_BATCH_SIZE", \.batchSize, 1...10_000, group: .delivery,
        summary: "Documents sent per upload."),
    intKey(
        "TELEMETRY_FLUSH_INTERVAL", \.flushIntervalSeconds, 1...86_400, group: .delivery, unit: "seconds",
        summary: "Longest wait before a partial batch is uploaded."),
    intKey(
        "TELEMETRY_RETRY_ATTEMPTS", \.retryAttempts, 0...100, group: .delivery,
        summary: "Times a failed upload is retried; documents not yet delivered stay in the store."),
    intKey(
        "TELEMETRY_BATCH_MAX_BYTES", \.batchMaxBytes, 1_024...(64 << 20), group: .delivery, unit: "bytes",
        summary: "Largest upload, documents before compression; a larger single document is still sent alone."),
    enumKey(
        "TELEMETRY_FORMAT", \.format, group: .delivery,
        summary: "json posts arrays of execution documents; otlp posts OTLP/HTTP JSON to {endpoint}/v1/logs and /v1/metrics."),
    enumKey(
        "TELEMETRY_COMPRESSION", \.compression, group: .delivery,
        summary: "Request body encoding, sent as Content-Encoding."),
    pathKey(
        "TELEMETRY_CA_FILE", \.caFile, group: .delivery,
        summary: "PEM bundle of the CA that signed the endpoint's certificate, instead of the system's CAs."),
    pathKey(
        "TELEMETRY_CLIENT_CERT", \.clientCertificate, group: .delivery,
        summary: "PEM client certificate for mutual TLS (with TELEMETRY_CLIENT_KEY)."),
    pathKey(
        "TELEMETRY_CLIENT_KEY", \.clientKey, group: .delivery,
        summary: "PEM private key of TELEMETRY_CLIENT_CERT."),
    intKey(
        "TELEMETRY_CONNECT_TIMEOUT", \.connectTimeoutSeconds, 1...300, group: .delivery, unit: "seconds",
        summary: "Bound on connecting to the endpoint (TCP and TLS)."),
    intKey(
        "TELEMETRY_REQUEST_TIMEOUT", \.requestTimeoutSeconds, 1...600, group: .delivery, unit: "seconds",
        summary: "Bound on one whole upload, connect included."),
    intKey(
        "TELEMETRY_RETRY_MAX_BACKOFF", \.retryMaxBackoffSeconds, 1...3_600, group: .delivery, unit: "seconds",
        summary: "Longest wait between delivery attempts during an outage."),
    intKey(
        "TELEMETRY_SHUTDOWN_TIMEOUT", \.shutdownTimeoutSeconds, 1...300, group: .delivery, unit: "seconds",
        summary: "Time for a last delivery at shutdown; keep it below systemd's TimeoutStopSec. The rest stays stored."),

    // Privacy
    boolKey(
        "TELEMETRY_ENABLED", \.enabled, group: .privacy,
        summary: "Host-wide opt-out: false makes the daemon accept and discard everything scripts send, storing and forwarding nothing."),
    ConfigurationKey(
        name: "TELEMETRY_HOSTNAME", defaultValue: "",
        summary: "Host name recorded in documents; empty uses the system host name (gethostname).",
        valueSyntax: "text without spaces or control characters, at most 253 bytes", group: .privacy, isSecret: false,
        parse: { value, configuration in
            if value.utf8.count > 253 { return "must be at most 253 bytes long (got \(value.utf8.count) bytes)" }
            if value.unicodeScalars.contains(where: { $0.properties.isWhitespace || isControl($0) }) {
                return "must not contain spaces or control characters (got \(ConfigurationText.quoted(value)))"
            }
            configuration.hostname = value
            return nil
        },
        renderValue: { $0.hostname }),

    // Logging
    enumKey(
        "TELEMETRY_LOG_LEVEL", \.logLevel, group: .logging,
        summary: "Least severe level that the daemon logs (to the journal)."),
    enumKey(
        "TELEMETRY_LOG_TARGET", \.logTarget, group: .logging,
        summary: "Where the daemon logs: auto uses native journal entries with structured fields when stderr is connected to the journal (JOURNAL_STREAM), else plain lines on stderr."),
    boolKey(
        "TELEMETRY_JOURNAL_EVENTS", \.journalEvents, group: .logging,
        summary: "Also log every completed script execution as one structured entry (journalctl TELEMETRY_SCRIPT=NAME finds the runs of a script)."),

    // Metrics
    ConfigurationKey(
        name: "TELEMETRY_METRICS_LISTEN", defaultValue: MetricsListen.defaultText,
        summary: "Address of the HTTP listener serving /metrics (Prometheus), /healthz and /readyz; off disables it. Port 0 picks a free port (logged at start).",
        valueSyntax: "off, or ADDRESS:PORT with an IPv4 address, [IPv6] address or localhost", group: .metrics,
        isSecret: false,
        parse: { value, configuration in
            switch MetricsListen.parse(value) {
            case .success(let listen): configuration.metricsListen = listen; return nil
            case .failure(let error): return error.message
            }
        },
        renderValue: { $0.metricsListen.description }),
    intKey(
        "TELEMETRY_METRICS_MAX_SCRIPTS", \.metricsMaxScripts, 1...100_000, group: .metrics,
        summary: "Distinct script names that get their own script_* series; later ones are folded into script=\"other\" and counted."),
    intKey(
        "TELEMETRY_METRICS_MAX_ENVIRONMENTS", \.metricsMaxEnvironments, 1...10_000, group: .metrics,
        summary: "Distinct environments that get their own script_* series; later ones are folded into environment=\"other\"."),
    intKey(
        "TELEMETRY_METRICS_MAX_NAMES", \.metricsMaxNames, 0...1_000_000, group: .metrics,
        summary: "Distinct (script, metric name) pairs exported as script_metric series; later ones are folded into name=\"other\"."),

    // Client-only keys: accepted so that one file serves the daemon and the clients.
    clientKey(
        "TELEMETRY_ENVIRONMENT", summary: "Environment label (e.g. production, staging) that clients attach to executions."),
    clientKey("TELEMETRY_QUIET", summary: "Set to 1 to make `telemetry send` print no warnings on stderr."),
    clientKey("TELEMETRY_DEBUG", summary: "Set to make clients and the bash library print debugging output."),
    clientKey("TELEMETRY_CLIENT", summary: "Which client the bash library uses to reach the daemon."),
    clientKey("TELEMETRY_FLUSH_TIMEOUT", summary: "How long a client waits for the daemon when an execution ends."),
]

/// `sockaddr_un.sun_path` is 108 bytes on Linux, one of which is the terminating NUL.
private let maxSocketPathBytes = 107

private func intKey(
    _ name: String, _ keyPath: WritableKeyPath<DaemonConfiguration, Int> & Sendable, _ range: ClosedRange<Int>,
    group: ConfigurationKey.Group, unit: String? = nil, summary: String
) -> ConfigurationKey {
    let what = unit == "seconds" || unit == "milliseconds" || unit == "days"
        ? "a whole number of \(unit!)" : "an integer"
    let syntax = "integer \(range.lowerBound)-\(range.upperBound)" + (unit.map { " (\($0))" } ?? "")
    return ConfigurationKey(
        name: name, defaultValue: String(DaemonConfiguration.defaults[keyPath: keyPath]),
        summary: summary, valueSyntax: syntax, group: group, isSecret: false,
        parse: { value, configuration in
            guard let number = parseInteger(value), range.contains(number) else {
                var message = "must be \(what) between \(range.lowerBound) and \(range.upperBound) (got \(ConfigurationText.quoted(value)))"
                if let unit, hasUnitSuffix(value) {
                    message += "; write the number of \(unit) without a unit"
                }
                return message
            }
            configuration[keyPath: keyPath] = number
            return nil
        },
        renderValue: { String($0[keyPath: keyPath]) })
}

private func pathKey(
    _ name: String, _ keyPath: WritableKeyPath<DaemonConfiguration, String> & Sendable,
    group: ConfigurationKey.Group, summary: String
) -> ConfigurationKey {
    ConfigurationKey(
        name: name, defaultValue: "", summary: summary, valueSyntax: "absolute path, or empty", group: group,
        isSecret: false,
        parse: { value, configuration in
            if !value.isEmpty, let problem = absolutePathProblem(value) { return problem }
            configuration[keyPath: keyPath] = value
            return nil
        },
        renderValue: { $0[keyPath: keyPath] })
}

private func boolKey(
    _ name: String, _ keyPath: WritableKeyPath<DaemonConfiguration, Bool> & Sendable,
    group: ConfigurationKey.Group, summary: String
) -> ConfigurationKey {
    ConfigurationKey(
        name: name, defaultValue: String(DaemonConfiguration.defaults[keyPath: keyPath]),
        summary: summary, valueSyntax: "true or false (also 1/0, yes/no, on/off)", group: group, isSecret: false,
        parse: { value, configuration in
            guard let flag = parseBoolean(value) else {
                return "must be true or false (1/0, yes/no and on/off are accepted too) (got \(ConfigurationText.quoted(value)))"
            }
            configuration[keyPath: keyPath] = flag
            return nil
        },
        renderValue: { String($0[keyPath: keyPath]) })
}

private func enumKey<Value: RawRepresentable & CaseIterable & Sendable>(
    _ name: String, _ keyPath: WritableKeyPath<DaemonConfiguration, Value> & Sendable,
    group: ConfigurationKey.Group, summary: String
) -> ConfigurationKey where Value.RawValue == String {
    let names = Value.allCases.map(\.rawValue)
    return ConfigurationKey(
        name: name, defaultValue: DaemonConfiguration.defaults[keyPath: keyPath].rawValue,
        summary: summary, valueSyntax: "one of " + names.joined(separator: ", "), group: group, isSecret: false,
        parse: { value, configuration in
            guard let parsed = Value(rawValue: ConfigurationText.asciiLowercased(value)) else {
                return "must be one of \(names.joined(separator: ", ")) (got \(ConfigurationText.quoted(value)))"
            }
            configuration[keyPath: keyPath] = parsed
            return nil
        },
        renderValue: { $0[keyPath: keyPath].rawValue })
}

private func clientKey(_ name: String, summary: String) -> ConfigurationKey {
    ConfigurationKey(
        name: name, defaultValue: "", summary: summary, valueSyntax: "any value; not read by the daemon", group: .client,
        isSecret: false, parse: { _, _ in nil }, renderValue: nil)
}

// MARK: - Value parsing helpers

/// Decimal integer with an optional sign, nothing else (no spaces, underscores or units).
private func parseInteger(_ text: String) -> Int? {
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") || isDigit($0) })
    else { return nil }
    return Int(text)
}

/// true/false, 1/0, yes/no, on/off, any case.
private func parseBoolean(_ text: String) -> Bool? {
    switch ConfigurationText.asciiLowercased(text) {
    case "true", "1", "yes", "on": true
    case "false", "0", "no", "off": false
    default: nil
    }
}

private func hasUnitSuffix(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard let first = bytes.first, isDigit(first) else { return false }
    let rest = bytes.drop { isDigit($0) }
    return !rest.isEmpty && rest.allSatisfy { ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
}

/// Text helpers shared by the configuration files (internal; namespaced to stay clear of the rest of the module).
enum ConfigurationText {
    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    static func asciiUppercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }

    /// `"value"` with quotes, backslashes and control characters escaped, so that the user sees exactly what
    /// was read (an invisible trailing space or a swallowed line break included).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isControl(scalar) {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// The value as it would be written in the file: bare when safe, else double-quoted with systemd's escapes.
    static func quoteForEnvironmentFile(_ text: String) -> String {
        let safe = text.utf8.allSatisfy { byte in
            byte > 0x20 && byte != 0x7F && !"\"'\\`$#;".utf8.contains(byte)
        }
        if safe { return text }
        var out = "\""
        for character in text {
            if "\"\\`$".contains(character) { out += "\\" }
            out.append(character)
        }
        return out + "\""
    }
}

private func absolutePathProblem(_ value: String) -> String? {
    if value.isEmpty { return "must be an absolute path (got an empty value)" }
    if !value.hasPrefix("/") { return "must be an absolute path starting with / (got \(ConfigurationText.quoted(value)))" }
    if value.unicodeScalars.contains(where: isControl) {
        return "must not contain control characters or line breaks (got \(ConfigurationText.quoted(value)))"
    }
    return nil
}

/// The endpoint with its query string replaced by `?<redacted>` (a token might be there).
private func redactedEndpoint(_ endpoint: String) -> String {
    guard let question = endpoint.firstIndex(of: "?") else { return endpoint }
    return String(endpoint[..<question]) + "?<redacted>"
}

/// Hosts that http:// may be used with: the data never leaves the machine.
private let loopbackHosts: Set<String> = ["127.0.0.1", "localhost", "[::1]"]

/// nil if `value` is an acceptable TELEMETRY_ENDPOINT, else the error message.
private func endpointProblem(_ value: String) -> String? {
    if value.isEmpty { return nil }
    let example = "https://telemetry.example.com/v1/executions"
    let shown = ConfigurationText.quoted(redactedEndpoint(value))  // a query string might hold a token
    if value.unicodeScalars.contains(where: { $0.properties.isWhitespace || isControl($0) }) {
        return "must be a URL without spaces or control characters (got \(shown))"
    }
    let lower = ConfigurationText.asciiLowercased(value)
    let isHTTPS = lower.hasPrefix("https://")
    guard isHTTPS || lower.hasPrefix("http://") else {
        return "must be an https:// URL such as \(example), or empty to keep data in the local store "
            + "(got \(shown))"
    }
    let afterScheme = value.dropFirst(isHTTPS ? 8 : 7)
    let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
    if authority.contains("@") {
        return "must not contain credentials (user:password@); put the key in TELEMETRY_API_KEY_FILE or "
            + "TELEMETRY_API_KEY (value not shown)"
    }
    var host: Substring
    var port: Substring?
    if authority.hasPrefix("[") {
        guard let close = authority.firstIndex(of: "]") else {
            return "has an unterminated IPv6 address: '[' without ']' (got \(shown))"
        }
        host = authority[...close]
        let rest = authority[authority.index(after: close)...]
        if !rest.isEmpty {
            guard rest.hasPrefix(":") else { return "has unexpected text after the IPv6 address (got \(shown))" }
            port = rest.dropFirst()
        }
    } else if let colon = authority.firstIndex(of: ":") {
        host = authority[..<colon]
        port = authority[authority.index(after: colon)...]
    } else {
        host = authority
    }
    if host.isEmpty || host == "[]" {
        return "has no host; expected a URL such as \(example) (got \(shown))"
    }
    if let port {
        guard let number = parseInteger(String(port)), !port.hasPrefix("+"), !port.hasPrefix("-"),
            (1...65_535).contains(number)
        else {
            return "has an invalid port \(ConfigurationText.quoted(String(port))); a port is a number from 1 to 65535 (got \(shown))"
        }
    }
    if !isHTTPS && !loopbackHosts.contains(ConfigurationText.asciiLowercased(String(host))) {
        return "uses http:// with host \(ConfigurationText.quoted(String(host))), but telemetry must be encrypted in transit: use https:// "
            + "(plain http:// is accepted only for the loopback hosts 127.0.0.1, localhost and [::1])"
    }
    return nil
}

/// Splits a sentence into `# `-prefixed comment lines of at most 100 columns.
private func wrapComment(_ text: String, width: Int = 100) -> [String] {
    var lines: [String] = []
    var current = "#"
    for word in text.split(separator: " ") {
        if current.count + 1 + word.count > width && current != "#" {
            lines.append(current)
            current = "#"
        }
        current += " " + word
    }
    lines.append(current)
    return lines
}
