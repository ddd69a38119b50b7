#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

@testable import TelemetryCore

private let confPath = "/etc/telemetryd/telemetryd.conf"

private func loadFile(_ contents: String, path: String = confPath, permissions: UInt32? = nil) -> ConfigurationResult {
    ConfigurationLoader.load(
        flags: [:], environment: [:],
        file: ConfigurationFile(path: path, contents: contents, permissions: permissions))
}

/// A file where the assignment under test is on line 3, after a comment and a blank line.
private func fileWithAssignment(_ key: String, _ value: String) -> String {
    "# test file\n\n\(key)=\(ConfigurationText.quoteForEnvironmentFile(value))\nHTTPS_PROXY=http://proxy.internal:3128\n"
}

// MARK: - The key table

@Suite("Configuration key table")
struct ConfigurationKeyTableTests {
    @Test("names are unique TELEMETRY_* names; every key is documented")
    func namesAndDocs() {
        let names = DaemonConfiguration.knownKeys.map(\.name)
        #expect(Set(names).count == names.count)
        for key in DaemonConfiguration.knownKeys {
            #expect(key.name.hasPrefix("TELEMETRY_"))
            #expect(key.summary.hasSuffix("."), "\(key.name)")
            #expect(!key.valueSyntax.isEmpty && !key.valueSyntax.hasSuffix("."), "\(key.name)")
        }
    }

    @Test("the table holds exactly the keys of the spec")
    func expectedKeys() {
        let daemonKeys: Set = [
            "TELEMETRY_ENABLED", "TELEMETRY_ENDPOINT", "TELEMETRY_API_KEY", "TELEMETRY_API_KEY_FILE",
            "TELEMETRY_BATCH_SIZE", "TELEMETRY_FLUSH_INTERVAL", "TELEMETRY_RETRY_ATTEMPTS", "TELEMETRY_SOCKET",
            "TELEMETRY_STATE_DIR", "TELEMETRY_SPOOL_DIR", "TELEMETRY_MAX_LINE_BYTES", "TELEMETRY_EXECUTION_TIMEOUT",
            "TELEMETRY_MAX_EVENTS_PER_EXECUTION", "TELEMETRY_COMMIT_INTERVAL_MS", "TELEMETRY_STORE_SYNC",
            "TELEMETRY_MAX_CONNECTIONS", "TELEMETRY_RETENTION_DAYS", "TELEMETRY_LOG_LEVEL", "TELEMETRY_HOSTNAME",
            "TELEMETRY_BATCH_MAX_BYTES", "TELEMETRY_FORMAT", "TELEMETRY_COMPRESSION", "TELEMETRY_CA_FILE",
            "TELEMETRY_CLIENT_CERT", "TELEMETRY_CLIENT_KEY", "TELEMETRY_CONNECT_TIMEOUT", "TELEMETRY_REQUEST_TIMEOUT",
            "TELEMETRY_RETRY_MAX_BACKOFF", "TELEMETRY_SHUTDOWN_TIMEOUT", "TELEMETRY_SPOOL_MAX_MB",
            "TELEMETRY_LOG_TARGET", "TELEMETRY_JOURNAL_EVENTS",
            "TELEMETRY_METRICS_LISTEN", "TELEMETRY_METRICS_MAX_SCRIPTS", "TELEMETRY_METRICS_MAX_ENVIRONMENTS",
            "TELEMETRY_METRICS_MAX_NAMES",
        ]
        let clientKeys: Set = [
            "TELEMETRY_ENVIRONMENT", "TELEMETRY_QUIET", "TELEMETRY_DEBUG", "TELEMETRY_CLIENT", "TELEMETRY_FLUSH_TIMEOUT",
        ]
        #expect(Set(DaemonConfiguration.knownKeys.filter { !$0.isClientOnly }.map(\.name)) == daemonKeys)
        #expect(Set(DaemonConfiguration.knownKeys.filter(\.isClientOnly).map(\.name)) == clientKeys)
    }

    @Test("each default text parses to the default configuration and is what the configuration shows")
    func defaultsRoundTrip() {
        for key in DaemonConfiguration.knownKeys where !key.isClientOnly {
            var configuration = DaemonConfiguration.defaults
            if key.defaultValue.isEmpty && key.name != "TELEMETRY_HOSTNAME" && key.name != "TELEMETRY_ENDPOINT"
                && key.name != "TELEMETRY_API_KEY" && key.name != "TELEMETRY_API_KEY_FILE"
                && !["TELEMETRY_CA_FILE", "TELEMETRY_CLIENT_CERT", "TELEMETRY_CLIENT_KEY"].contains(key.name)
            {
                Issue.record("\(key.name) has an empty default")
            }
            #expect(key.apply(key.defaultValue, to: &configuration) == nil, "\(key.name)")
            #expect(configuration == .defaults, "\(key.name)")
            if key.isSecret {
                #expect(key.displayValue(in: configuration) == "<unset>")
            } else {
                #expect(key.displayValue(in: configuration) == key.defaultValue, "\(key.name)")
            }
        }
    }

    @Test("defaults are the documented values")
    func defaults() {
        let d = DaemonConfiguration.defaults
        #expect(d.enabled == true)
        #expect(d.endpoint == "" && d.apiKey == "" && d.apiKeyFile == "" && d.hostname == "")
        #expect(d.batchSize == 100 && d.flushIntervalSeconds == 60 && d.retryAttempts == 3)
        #expect(d.socketPath == "/run/telemetryd/telemetryd.sock" && d.stateDirectory == "/var/lib/telemetryd")
        #expect(d.maxLineBytes == 65_536 && d.executionTimeoutSeconds == 3600 && d.maxEventsPerExecution == 10_000)
        #expect(d.commitIntervalMilliseconds == 10 && d.storeSync == .full && d.maxConnections == 1024)
        #expect(d.retentionDays == 30 && d.logLevel == .info)
        #expect(d.flushInterval == .seconds(60) && d.executionTimeout == .seconds(3600))
        #expect(d.commitInterval == .milliseconds(10))
        #expect(!d.forwardsDocuments)
    }

    @Test("redactedDescription lists every daemon key and never the API key")
    func redactedDescription() {
        var configuration = DaemonConfiguration.defaults
        #expect(configuration.redactedDescription.contains("TELEMETRY_API_KEY=<unset>\n"))
        configuration.apiKey = "sk-live-0123456789"
        configuration.endpoint = "https://t.example.com/ingest?token=abc123"
        let text = configuration.redactedDescription
        #expect(text.contains("TELEMETRY_API_KEY=<set>\n"))
        #expect(!text.contains("sk-live"))
        #expect(!text.contains("abc123"))
        #expect(text.contains("TELEMETRY_ENDPOINT=https://t.example.com/ingest?<redacted>\n"))
        #expect(text.contains("TELEMETRY_BATCH_SIZE=100\n"))
        #expect(text.contains("TELEMETRY_HOSTNAME=\n"))
        let lines = text.split(separator: "\n")
        #expect(lines.count == DaemonConfiguration.knownKeys.filter { !$0.isClientOnly }.count)
    }

    @Test("effectiveHostname falls back to gethostname()")
    func effectiveHostname() {
        var configuration = DaemonConfiguration.defaults
        #expect(!configuration.effectiveHostname.isEmpty)
        configuration.hostname = "build-01"
        #expect(configuration.effectiveHostname == "build-01")
    }

    @Test("log levels are ordered like swift-log's")
    func logLevelOrder() {
        #expect(DaemonConfiguration.LogLevel.trace < .debug)
        #expect(DaemonConfiguration.LogLevel.error < .critical)
        #expect(DaemonConfiguration.LogLevel.allCases.map(\.rawValue)
            == ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    }
}

// MARK: - Values

@Suite("Configuration values")
struct ConfigurationValueTests {
    @Test("every daemon key can be set from the file")
    func everyKeyFromFile() {
        let result = loadFile(
            """
            TELEMETRY_ENABLED=no
            TELEMETRY_ENDPOINT=https://telemetry.example.com/v1/executions
            TELEMETRY_API_KEY_FILE=/etc/telemetryd/api-key
            TELEMETRY_BATCH_SIZE=500
            TELEMETRY_FLUSH_INTERVAL=30
            TELEMETRY_RETRY_ATTEMPTS=0
            TELEMETRY_SOCKET=/run/t.sock
            TELEMETRY_STATE_DIR=/srv/telemetryd
            TELEMETRY_MAX_LINE_BYTES=1048576
            TELEMETRY_EXECUTION_TIMEOUT=10
            TELEMETRY_MAX_EVENTS_PER_EXECUTION=1000000
            TELEMETRY_COMMIT_INTERVAL_MS=1000
            TELEMETRY_STORE_SYNC=normal
            TELEMETRY_MAX_CONNECTIONS=65536
            TELEMETRY_RETENTION_DAYS=0
            TELEMETRY_LOG_LEVEL=debug
            TELEMETRY_HOSTNAME=build-01.example.com
            """)
        #expect(result.problems == [])
        let c = result.configuration
        #expect(c.enabled == false)
        #expect(c.endpoint == "https://telemetry.example.com/v1/executions" && c.forwardsDocuments)
        #expect(c.apiKeyFile == "/etc/telemetryd/api-key")
        #expect(c.batchSize == 500 && c.flushIntervalSeconds == 30 && c.retryAttempts == 0)
        #expect(c.socketPath == "/run/t.sock" && c.stateDirectory == "/srv/telemetryd")
        #expect(c.maxLineBytes == 1_048_576 && c.executionTimeoutSeconds == 10 && c.maxEventsPerExecution == 1_000_000)
        #expect(c.commitIntervalMilliseconds == 1000 && c.storeSync == .normal && c.maxConnections == 65_536)
        #expect(c.retentionDays == 0 && c.logLevel == .debug && c.hostname == "build-01.example.com")
        #expect(result.valueSources["TELEMETRY_BATCH_SIZE"] == .file(path: confPath, line: 4))
        #expect(result.valueSources["TELEMETRY_API_KEY"] == nil)
    }

    @Test("booleans", arguments: [
        ("true", true), ("TRUE", true), ("1", true), ("yes", true), ("Yes", true), ("on", true), ("ON", true),
        ("false", false), ("False", false), ("0", false), ("no", false), ("NO", false), ("off", false), ("Off", false),
    ])
    func booleans(text: String, value: Bool) {
        let result = loadFile("TELEMETRY_ENABLED=\(text)\n")
        #expect(result.problems == [])
        #expect(result.configuration.enabled == value)
    }

    @Test("accepted values at the limits", arguments: [
        ("TELEMETRY_BATCH_SIZE", "1"), ("TELEMETRY_BATCH_SIZE", "10000"),
        ("TELEMETRY_FLUSH_INTERVAL", "1"), ("TELEMETRY_FLUSH_INTERVAL", "86400"),
        ("TELEMETRY_RETRY_ATTEMPTS", "0"), ("TELEMETRY_RETRY_ATTEMPTS", "100"),
        ("TELEMETRY_MAX_LINE_BYTES", "256"), ("TELEMETRY_MAX_LINE_BYTES", "1048576"),
        ("TELEMETRY_EXECUTION_TIMEOUT", "10"), ("TELEMETRY_EXECUTION_TIMEOUT", "604800"),
        ("TELEMETRY_MAX_EVENTS_PER_EXECUTION", "10"), ("TELEMETRY_MAX_EVENTS_PER_EXECUTION", "1000000"),
        ("TELEMETRY_COMMIT_INTERVAL_MS", "1"), ("TELEMETRY_COMMIT_INTERVAL_MS", "1000"),
        ("TELEMETRY_MAX_CONNECTIONS", "1"), ("TELEMETRY_MAX_CONNECTIONS", "65536"),
        ("TELEMETRY_RETENTION_DAYS", "0"), ("TELEMETRY_RETENTION_DAYS", "3650"),
        ("TELEMETRY_STORE_SYNC", "FULL"), ("TELEMETRY_LOG_LEVEL", "Critical"), ("TELEMETRY_LOG_LEVEL", "trace"),
        ("TELEMETRY_ENDPOINT", ""), ("TELEMETRY_ENDPOINT", "https://t.example.com"),
        ("TELEMETRY_ENDPOINT", "HTTPS://T.example.com:8443/v1/x"), ("TELEMETRY_ENDPOINT", "https://[2001:db8::1]:443/v1"),
        ("TELEMETRY_ENDPOINT", "http://127.0.0.1:8080/v1"), ("TELEMETRY_ENDPOINT", "http://localhost/ingest"),
        ("TELEMETRY_ENDPOINT", "http://LOCALHOST:9000"), ("TELEMETRY_ENDPOINT", "http://[::1]:9000/"),
        ("TELEMETRY_SOCKET", "/" + String(repeating: "s", count: 106)),
        ("TELEMETRY_API_KEY", "sk_live_abc-DEF.123"), ("TELEMETRY_API_KEY_FILE", ""),
        ("TELEMETRY_HOSTNAME", ""), ("TELEMETRY_HOSTNAME", "host-01.example.com"),
        ("TELEMETRY_METRICS_LISTEN", "off"), ("TELEMETRY_METRICS_LISTEN", "127.0.0.1:9469"),
        ("TELEMETRY_METRICS_LISTEN", "0.0.0.0:0"), ("TELEMETRY_METRICS_LISTEN", "localhost:65535"),
        ("TELEMETRY_METRICS_LISTEN", "[::1]:9469"), ("TELEMETRY_METRICS_LISTEN", "[fe80::1]:80"),
        ("TELEMETRY_METRICS_MAX_SCRIPTS", "1"), ("TELEMETRY_METRICS_MAX_SCRIPTS", "100000"),
        ("TELEMETRY_METRICS_MAX_ENVIRONMENTS", "10000"), ("TELEMETRY_METRICS_MAX_NAMES", "0"),
    ])
    func acceptedValues(key: String, value: String) {
        let result = loadFile(fileWithAssignment(key, value))
        #expect(result.problems == [], "\(key)=\(value)")
        let shown = DaemonConfiguration.key(named: key)!.displayValue(in: result.configuration)
        if key == "TELEMETRY_API_KEY" {
            #expect(shown == "<set>")
        } else {
            #expect(ConfigurationText.asciiLowercased(shown ?? "") == ConfigurationText.asciiLowercased(value))
        }
    }

    struct BadValue: Sendable, CustomTestStringConvertible {
        var key: String
        var value: String
        /// Must appear in the message.
        var expected: String
        var testDescription: String { "\(key)=\(ConfigurationText.quoted(value))" }

        init(_ key: String, _ value: String, _ expected: String) {
            self.key = key
            self.value = value
            self.expected = expected
        }
    }

    static let socket108 = "/" + String(repeating: "s", count: 107)

    static let badValues: [BadValue] = [
        BadValue("TELEMETRY_ENABLED", "maybe", "must be true or false (1/0, yes/no and on/off are accepted too) (got \"maybe\")"),
        BadValue("TELEMETRY_ENABLED", "", "must be true or false"),
        BadValue("TELEMETRY_ENABLED", "2", "(got \"2\")"),
        BadValue("TELEMETRY_ENDPOINT", "telemetry.example.com", "must be an https:// URL such as"),
        BadValue("TELEMETRY_ENDPOINT", "ftp://telemetry.example.com", "must be an https:// URL"),
        BadValue("TELEMETRY_ENDPOINT", "http://telemetry.example.com/v1", "must be encrypted in transit: use https://"),
        BadValue("TELEMETRY_ENDPOINT", "http://10.0.0.1/v1", "must be encrypted in transit"),
        BadValue("TELEMETRY_ENDPOINT", "https://", "has no host"),
        BadValue("TELEMETRY_ENDPOINT", "https:///v1", "has no host"),
        BadValue("TELEMETRY_ENDPOINT", "https://:443/v1", "has no host"),
        BadValue("TELEMETRY_ENDPOINT", "https://t.example.com:0/", "invalid port \"0\""),
        BadValue("TELEMETRY_ENDPOINT", "https://t.example.com:70000/", "invalid port \"70000\""),
        BadValue("TELEMETRY_ENDPOINT", "https://t.example.com:http/", "invalid port"),
        BadValue("TELEMETRY_ENDPOINT", "https://[::1/v1", "unterminated IPv6 address"),
        BadValue("TELEMETRY_ENDPOINT", "https://t.example.com/a b", "without spaces"),
        BadValue("TELEMETRY_ENDPOINT", "https://user:hunter2@t.example.com/", "must not contain credentials"),
        BadValue("TELEMETRY_API_KEY", "two words", "must not contain spaces"),
        BadValue("TELEMETRY_API_KEY_FILE", "api-key.txt", "must be an absolute path"),
        BadValue("TELEMETRY_BATCH_SIZE", "abc", "must be an integer between 1 and 10000 (got \"abc\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "0", "must be an integer between 1 and 10000 (got \"0\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "10001", "(got \"10001\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "-5", "(got \"-5\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "1.5", "(got \"1.5\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "1_000", "(got \"1_000\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "", "(got \"\")"),
        BadValue("TELEMETRY_BATCH_SIZE", "99999999999999999999999", "between 1 and 10000"),
        BadValue("TELEMETRY_FLUSH_INTERVAL", "0", "must be a whole number of seconds between 1 and 86400 (got \"0\")"),
        BadValue("TELEMETRY_FLUSH_INTERVAL", "86401", "between 1 and 86400"),
        BadValue("TELEMETRY_FLUSH_INTERVAL", "60s", "write the number of seconds without a unit"),
        BadValue("TELEMETRY_RETRY_ATTEMPTS", "-1", "must be an integer between 0 and 100 (got \"-1\")"),
        BadValue("TELEMETRY_RETRY_ATTEMPTS", "101", "between 0 and 100"),
        BadValue("TELEMETRY_RETRY_ATTEMPTS", "three", "(got \"three\")"),
        BadValue("TELEMETRY_SOCKET", "telemetryd.sock", "must be an absolute path"),
        BadValue("TELEMETRY_SOCKET", socket108, "is 108 bytes long, but a Unix socket path can have at most 107 bytes (sockaddr_un"),
        BadValue("TELEMETRY_SOCKET", "/run/telemetryd/", "not a directory"),
        BadValue("TELEMETRY_SOCKET", "", "must be an absolute path"),
        BadValue("TELEMETRY_STATE_DIR", "var/lib/telemetryd", "must be an absolute path starting with /"),
        BadValue("TELEMETRY_STATE_DIR", "", "must be an absolute path (got an empty value)"),
        BadValue("TELEMETRY_SPOOL_DIR", "spool", "must be an absolute path starting with /"),
        BadValue("TELEMETRY_MAX_LINE_BYTES", "255", "must be an integer between 256 and 1048576"),
        BadValue("TELEMETRY_MAX_LINE_BYTES", "1048577", "between 256 and 1048576"),
        BadValue("TELEMETRY_MAX_LINE_BYTES", "64k", "(got \"64k\")"),
        BadValue("TELEMETRY_EXECUTION_TIMEOUT", "9", "must be a whole number of seconds between 10 and 604800"),
        BadValue("TELEMETRY_EXECUTION_TIMEOUT", "604801", "between 10 and 604800"),
        BadValue("TELEMETRY_EXECUTION_TIMEOUT", "1h", "write the number of seconds without a unit"),
        BadValue("TELEMETRY_MAX_EVENTS_PER_EXECUTION", "9", "must be an integer between 10 and 1000000"),
        BadValue("TELEMETRY_MAX_EVENTS_PER_EXECUTION", "1000001", "between 10 and 1000000"),
        BadValue("TELEMETRY_COMMIT_INTERVAL_MS", "0", "must be a whole number of milliseconds between 1 and 1000"),
        BadValue("TELEMETRY_COMMIT_INTERVAL_MS", "1001", "between 1 and 1000"),
        BadValue("TELEMETRY_COMMIT_INTERVAL_MS", "10ms", "write the number of milliseconds without a unit"),
        BadValue("TELEMETRY_STORE_SYNC", "off", "must be one of full, normal (got \"off\")"),
        BadValue("TELEMETRY_STORE_SYNC", "", "must be one of full, normal"),
        BadValue("TELEMETRY_MAX_CONNECTIONS", "0", "must be an integer between 1 and 65536"),
        BadValue("TELEMETRY_MAX_CONNECTIONS", "65537", "between 1 and 65536"),
        BadValue("TELEMETRY_RETENTION_DAYS", "-1", "must be a whole number of days between 0 and 3650"),
        BadValue("TELEMETRY_RETENTION_DAYS", "3651", "between 0 and 3650"),
        BadValue("TELEMETRY_RETENTION_DAYS", "30d", "write the number of days without a unit"),
        BadValue("TELEMETRY_LOG_LEVEL", "verbose", "must be one of trace, debug, info, notice, warning, error, critical"),
        BadValue("TELEMETRY_LOG_LEVEL", "warn", "(got \"warn\")"),
        BadValue("TELEMETRY_LOG_TARGET", "syslog", "must be one of auto, journal, stderr (got \"syslog\")"),
        BadValue("TELEMETRY_JOURNAL_EVENTS", "maybe", "must be true or false"),
        BadValue("TELEMETRY_HOSTNAME", "my host", "must not contain spaces"),
        BadValue("TELEMETRY_BATCH_MAX_BYTES", "1023", "must be an integer between 1024 and 67108864"),
        BadValue("TELEMETRY_FORMAT", "protobuf", "must be one of json, otlp (got \"protobuf\")"),
        BadValue("TELEMETRY_COMPRESSION", "brotli", "must be one of gzip, zstd, none (got \"brotli\")"),
        BadValue("TELEMETRY_CA_FILE", "ca.pem", "must be an absolute path starting with /"),
        BadValue("TELEMETRY_CLIENT_CERT", "client.pem", "must be an absolute path starting with /"),
        BadValue("TELEMETRY_CLIENT_KEY", "client.key", "must be an absolute path starting with /"),
        BadValue("TELEMETRY_CONNECT_TIMEOUT", "0", "must be a whole number of seconds between 1 and 300"),
        BadValue("TELEMETRY_REQUEST_TIMEOUT", "601", "between 1 and 600"),
        BadValue("TELEMETRY_RETRY_MAX_BACKOFF", "5m", "write the number of seconds without a unit"),
        BadValue("TELEMETRY_SHUTDOWN_TIMEOUT", "301", "between 1 and 300"),
        BadValue("TELEMETRY_SPOOL_MAX_MB", "-1", "must be an integer between 0 and 1048576"),
        BadValue("TELEMETRY_HOSTNAME", String(repeating: "h", count: 254), "at most 253 bytes"),
        BadValue("TELEMETRY_METRICS_LISTEN", "9469", "must be off or ADDRESS:PORT"),
        BadValue("TELEMETRY_METRICS_LISTEN", "metrics.example.com:9469", "host names other than localhost are not resolved"),
        BadValue("TELEMETRY_METRICS_LISTEN", "::1:9469", "put an IPv6 address in brackets"),
        BadValue("TELEMETRY_METRICS_LISTEN", "127.0.0.1:65536", "invalid port \"65536\""),
        BadValue("TELEMETRY_METRICS_LISTEN", "256.0.0.1:9469", "(got \"256.0.0.1:9469\")"),
        BadValue("TELEMETRY_METRICS_LISTEN", "[::1:9469", "must be off or ADDRESS:PORT"),
        BadValue("TELEMETRY_METRICS_LISTEN", "disabled", "must be off"),
        BadValue("TELEMETRY_METRICS_MAX_SCRIPTS", "0", "must be an integer between 1 and 100000"),
        BadValue("TELEMETRY_METRICS_MAX_ENVIRONMENTS", "many", "must be an integer between 1 and 10000"),
        BadValue("TELEMETRY_METRICS_MAX_NAMES", "-5", "must be an integer between 0 and 1000000"),
    ]

    @Test("the bad-value table covers every daemon key")
    func badValuesCoverEveryKey() {
        let covered = Set(Self.badValues.map(\.key))
        for key in DaemonConfiguration.knownKeys where !key.isClientOnly && key.name != "TELEMETRY_API_KEY_FILE" {
            #expect(covered.contains(key.name), "no bad value tested for \(key.name)")
        }
        #expect(covered.contains("TELEMETRY_API_KEY_FILE"))
    }

    @Test("a bad value in the file is an error with its line number and key", arguments: badValues)
    func badValueInFile(_ bad: BadValue) {
        let result = loadFile(fileWithAssignment(bad.key, bad.value))
        #expect(!result.isValid)
        #expect(result.problems.count == 1)
        guard let problem = result.problems.first else { return }
        #expect(problem.severity == .error)
        #expect(problem.key == bad.key)
        #expect(problem.source == .file(path: confPath, line: 3))
        #expect(problem.message.contains(bad.expected), "\(problem.message)")
        #expect(problem.description.hasPrefix("\(confPath):3: \(bad.key): "))
        // The value keeps its default.
        #expect(result.configuration == .defaults)
    }

    @Test("a bad value in the environment is reported as environment: KEY:", arguments: badValues)
    func badValueInEnvironment(_ bad: BadValue) {
        let result = ConfigurationLoader.load(flags: [:], environment: [bad.key: bad.value], file: nil)
        #expect(result.problems.count == 1)
        guard let problem = result.problems.first else { return }
        #expect(problem.source == .environment && problem.key == bad.key && problem.severity == .error)
        #expect(problem.description.hasPrefix("environment: \(bad.key): "))
        #expect(problem.message.contains(bad.expected))
    }

    @Test("secrets never appear in messages")
    func secretsHidden() {
        let key = loadFile("TELEMETRY_API_KEY=\"sk-secret with-space\"\n")
        #expect(key.problems.count == 1)
        #expect(!key.problems[0].description.contains("sk-secret"))
        #expect(key.problems[0].message.contains("value not shown"))

        let url = loadFile("TELEMETRY_ENDPOINT=https://user:hunter2@t.example.com/\n")
        #expect(url.problems.count == 1)
        #expect(!url.problems[0].description.contains("hunter2"))

        let query = loadFile("TELEMETRY_ENDPOINT=ftp://t.example.com/in?token=abc123\n")
        #expect(query.problems.count == 1)
        #expect(!query.problems[0].description.contains("abc123"))
        #expect(query.problems[0].description.contains("ftp://t.example.com/in?<redacted>"))

        // A key written without '=' is still a secret.
        let noEquals = loadFile("TELEMETRY_API_KEY sk-secret\n")
        #expect(noEquals.problems.map(\.description) == [
            "\(confPath):1: line has no '=': expected KEY=VALUE (got \"TELEMETRY_API_KEY …\", the rest not shown)"
        ])
    }

    @Test("the exact sshd -t style of a message")
    func messageFormat() {
        let result = loadFile(
            String(repeating: "# comment\n", count: 11) + "TELEMETRY_BATCH_SIZE=abc\n")
        #expect(result.problems.map(\.description) == [
            "/etc/telemetryd/telemetryd.conf:12: TELEMETRY_BATCH_SIZE: must be an integer between 1 and 10000 (got \"abc\")"
        ])
        let env = ConfigurationLoader.load(flags: [:], environment: ["TELEMETRY_FLUSH_INTERVAL": "soon"], file: nil)
        #expect(env.problems.map(\.description) == [
            "environment: TELEMETRY_FLUSH_INTERVAL: must be a whole number of seconds between 1 and 86400 (got \"soon\")"
        ])
        let flag = ConfigurationLoader.load(flags: ["TELEMETRY_RETRY_ATTEMPTS": "x"], environment: [:], file: nil)
        #expect(flag.problems.map(\.description) == [
            "command line: TELEMETRY_RETRY_ATTEMPTS: must be an integer between 0 and 100 (got \"x\")"
        ])
    }

    @Test("a '#' after a value is part of it, and the message says so")
    func inlineCommentHint() {
        let result = loadFile("TELEMETRY_BATCH_SIZE=50 # per upload\n")
        #expect(result.problems.count == 1)
        #expect(result.problems.first?.message.contains("'#' starts a comment only at the beginning of a line") == true)
    }

    @Test("TELEMETRY_API_KEY and TELEMETRY_API_KEY_FILE together are an error")
    func apiKeyAndFile() {
        let result = ConfigurationLoader.load(
            flags: [:], environment: ["TELEMETRY_API_KEY": "k1"],
            file: ConfigurationFile(path: confPath, contents: "\nTELEMETRY_API_KEY_FILE=/etc/telemetryd/key\n"))
        #expect(!result.isValid)
        #expect(result.problems.map(\.description) == [
            "\(confPath):2: TELEMETRY_API_KEY_FILE: cannot be used together with TELEMETRY_API_KEY (set in environment); "
                + "remove one of them"
        ])
    }

    @Test("an API key in a world-readable file is a warning")
    func worldReadableAPIKey() {
        let contents = "TELEMETRY_API_KEY=abc\n"
        let open = loadFile(contents, permissions: 0o644)
        #expect(open.isValid)
        #expect(open.problems.count == 1)
        #expect(open.problems.first?.severity == .warning)
        #expect(open.problems.first?.description.hasPrefix("\(confPath):1: warning: TELEMETRY_API_KEY: this file is readable by every user (mode 0644)") == true)
        #expect(open.problems.first?.description.contains("chmod 640") == true)
        #expect(loadFile(contents, permissions: 0o640).problems == [])
        #expect(loadFile("TELEMETRY_BATCH_SIZE=5\n", permissions: 0o644).problems == [])
    }
}

// MARK: - File syntax

@Suite("Configuration file syntax (systemd EnvironmentFile=)")
struct ConfigurationFileSyntaxTests {
    private func entries(_ text: String) -> [String: String] {
        let parsed = EnvironmentFileParser.parse(text)
        #expect(parsed.problems == [], "\(parsed.problems)")
        var result: [String: String] = [:]
        for entry in parsed.entries { result[entry.key] = entry.value }
        return result
    }

    @Test("values are read like systemd reads them", arguments: [
        ("A=plain", "plain"),
        ("A=  spaced around  ", "spaced around"),
        ("  A  =  x", "x"),
        ("A=", ""),
        ("A='single $quoted \\n literal'", "single $quoted \\n literal"),
        ("A=\"double \\\"escaped\\\" \\\\ \\$HOME \\`cmd\\`\"", "double \"escaped\" \\ $HOME `cmd`"),
        ("A=\"keeps \\n and \\t\"", "keeps \\n and \\t"),
        ("A=\"  inner spaces kept  \"", "  inner spaces kept  "),
        ("A='  inner spaces kept  '   ", "  inner spaces kept  "),
        ("A=\"cat\"'en'ated", "catenated"),
        ("A=\"a b\"  'c'", "a bc"),
        ("A=con\"cat\"'en'ated", "con\"cat\"'en'ated"),
        ("A=it's", "it's"),
        ("A=back\\slash", "backslash"),
        ("A=#not-a-comment", "#not-a-comment"),
        ("A=value ; not a comment", "value ; not a comment"),
        ("export A=exported", "exported"),
        ("export\tA=tab", "tab"),
        ("A=first\\\nsecond", "firstsecond"),
        ("A=\"first \\\nsecond\"", "first second"),
        ("A='multi\nline'", "multi\nline"),
        ("A=crlf\r\n", "crlf"),
        ("A=no-newline-at-end", "no-newline-at-end"),
        ("A=trailing-backslash\\", "trailing-backslash"),
    ])
    func values(line: String, value: String) {
        #expect(entries(line) == ["A": value])
    }

    @Test("comments, blank lines and line numbers")
    func commentsAndLines() {
        let text = "# comment\n; also a comment\n   # indented comment\n\n\t\nA=1\nB=one \\\n two\nC=3\r\nD=4\n"
        let parsed = EnvironmentFileParser.parse(text)
        #expect(parsed.problems == [])
        #expect(parsed.entries.map(\.key) == ["A", "B", "C", "D"])
        #expect(parsed.entries.map(\.line) == [6, 7, 9, 10])
        #expect(parsed.entries[1].value == "one  two")  // whitespace before the backslash and on the next line stays
        #expect(parsed.entries[1].lastLine == 8)
    }

    @Test("a comment ending in a backslash does not swallow the next line (systemd >= 254)")
    func commentBackslash() {
        #expect(entries("# comment \\\nA=1\n") == ["A": "1"])
    }

    @Test("other variables are accepted and ignored")
    func otherVariables() {
        let result = loadFile(
            "HTTPS_PROXY=http://proxy.internal:3128\nNO_PROXY=localhost,127.0.0.1\nhttp_proxy=x\nLANG=C.UTF-8\n")
        #expect(result.problems == [])
        #expect(result.configuration == .defaults)
    }

    @Test("client-only keys are accepted silently in the file and the environment")
    func clientKeys() {
        let result = ConfigurationLoader.load(
            flags: [:],
            environment: ["TELEMETRY_QUIET": "whatever", "TELEMETRY_CLIENT": "x"],
            file: ConfigurationFile(
                path: confPath,
                contents: "TELEMETRY_ENVIRONMENT=production\nTELEMETRY_QUIET=1\nTELEMETRY_DEBUG=\n"
                    + "TELEMETRY_CLIENT=/usr/bin/telemetry\nTELEMETRY_FLUSH_TIMEOUT=5\n"))
        #expect(result.problems == [])
        #expect(result.configuration == .defaults)
    }

    struct SyntaxError: Sendable, CustomTestStringConvertible {
        var contents: String
        var line: Int
        var key: String?
        var expected: String
        var severity: ConfigurationProblem.Severity = .error
        var testDescription: String { ConfigurationText.quoted(contents) }
    }

    static let syntaxErrors: [SyntaxError] = [
        SyntaxError(contents: "# c\n\nTELEMETRY_BATCH_SIZE 50\n", line: 3, key: nil,
                    expected: "line has no '=': expected KEY=VALUE (got \"TELEMETRY_BATCH_SIZE 50\")"),
        SyntaxError(contents: "# c\n\nTELEMETRY_BATCH_SIZE: 50", line: 3, key: nil, expected: "line has no '='"),
        SyntaxError(contents: "# c\n\nTELEMETRY BATCH=5\n", line: 3, key: nil,
                    expected: "invalid variable name \"TELEMETRY BATCH\""),
        SyntaxError(contents: "# c\n\n1TELEMETRY=5\n", line: 3, key: nil, expected: "does not start with a digit"),
        SyntaxError(contents: "# c\n\n=5\n", line: 3, key: nil, expected: "missing variable name before '='"),
        SyntaxError(contents: "# c\n\nTELEMETRY-BATCH=5\n", line: 3, key: nil, expected: "invalid variable name"),
        SyntaxError(contents: "# c\n\nTELEMETRY_ENDPOINT=\"https://x\nTELEMETRY_BATCH_SIZE=5\n", line: 3,
                    key: "TELEMETRY_ENDPOINT",
                    expected: "unterminated \" quote: the value runs to the end of the file; add the closing \""),
        SyntaxError(contents: "# c\n\nTELEMETRY_HOSTNAME='h\n", line: 3, key: "TELEMETRY_HOSTNAME",
                    expected: "unterminated ' quote"),
        SyntaxError(contents: "# c\n\nTELEMETRY_HOSTNAME='a\nb''c\n", line: 3, key: "TELEMETRY_HOSTNAME",
                    expected: "unterminated ' quote (opened on line 4)"),
        SyntaxError(contents: "# c\n\nTELEMETRY_BATCHSIZE=5\n", line: 3, key: "TELEMETRY_BATCHSIZE",
                    expected: "unknown setting; did you mean TELEMETRY_BATCH_SIZE?"),
        SyntaxError(contents: "# c\n\nTELEMETRY_FLUSH_INTERVALL=5\n", line: 3, key: "TELEMETRY_FLUSH_INTERVALL",
                    expected: "did you mean TELEMETRY_FLUSH_INTERVAL?"),
        SyntaxError(contents: "# c\n\nTELEMETRY_ENDPIONT=https://x\n", line: 3, key: "TELEMETRY_ENDPIONT",
                    expected: "did you mean TELEMETRY_ENDPOINT?"),
        SyntaxError(contents: "# c\n\nTELEMETRY_RETRIES=5\n", line: 3, key: "TELEMETRY_RETRIES",
                    expected: "unknown setting"),
        SyntaxError(contents: "# c\n\nTELEMETRY_XYZZY=5\n", line: 3, key: "TELEMETRY_XYZZY",
                    expected: "unknown setting; the documented telemetryd.conf lists every known TELEMETRY_* setting"),
        SyntaxError(contents: "# c\n\ntelemetry_batch_size=5\n", line: 3, key: "telemetry_batch_size",
                    expected: "names are case-sensitive, so this is not a telemetryd setting; did you mean TELEMETRY_BATCH_SIZE?"),
        SyntaxError(contents: "# c\n\nTELEMERTY_BATCH_SIZE=5\n", line: 3, key: "TELEMERTY_BATCH_SIZE",
                    expected: "is not a telemetryd setting and is ignored; did you mean TELEMETRY_BATCH_SIZE?",
                    severity: .warning),
        SyntaxError(contents: "TELEMETRY_BATCH_SIZE=5\n\nTELEMETRY_BATCH_SIZE=6\n", line: 3, key: "TELEMETRY_BATCH_SIZE",
                    expected: "is also set on line 1; the last assignment (this one) wins", severity: .warning),
        SyntaxError(contents: "# c\n\nTELEMETRY_SOCKET='/run/a\n/b.sock'\n", line: 3, key: "TELEMETRY_SOCKET",
                    expected: "value contains a line break (it runs from line 3 to 4); is a closing quote missing?"),
    ]

    @Test("syntax problems name their line", arguments: syntaxErrors)
    func syntaxProblems(_ error: SyntaxError) {
        let result = loadFile(error.contents)
        #expect(result.problems.count == 1, "\(result.problems)")
        guard let problem = result.problems.first else { return }
        #expect(problem.source == .file(path: confPath, line: error.line))
        #expect(problem.key == error.key)
        #expect(problem.severity == error.severity)
        #expect(problem.message.contains(error.expected), "\(problem.message)")
        let prefix = "\(confPath):\(error.line): " + (error.severity == .warning ? "warning: " : "")
            + (error.key.map { "\($0): " } ?? "")
        #expect(problem.description.hasPrefix(prefix), "\(problem.description)")
        #expect(result.isValid == (error.severity == .warning))
    }

    @Test("the last assignment of a repeated key wins")
    func lastWins() {
        let result = loadFile("TELEMETRY_BATCH_SIZE=5\nTELEMETRY_BATCH_SIZE=6\n")
        #expect(result.configuration.batchSize == 6)
        #expect(result.isValid)
    }

    @Test("all problems are collected, in line order")
    func allProblemsCollected() {
        let result = loadFile(
            """
            # a broken file
            TELEMETRY_BATCH_SIZE=abc
            TELEMETRY_FLUSH_INTERVAL=0
            not an assignment
            TELEMETRY_BATCHSIZE=5
            TELEMETRY_ENDPOINT=http://t.example.com
            TELEMETRY_BATCH_SIZE=7
            TELEMETRY_LOG_LEVEL=loud
            TELEMETRY_HOSTNAME='unterminated
            """)
        #expect(result.problems.map { problem -> Int in
            if case .file(_, let line) = problem.source { return line }
            return -1
        } == [2, 3, 4, 5, 6, 7, 8, 9])
        #expect(result.errors.count == 7)
        #expect(result.warnings.count == 1)
        #expect(result.configuration.batchSize == 7)
        #expect(!result.isValid)
    }

    @Test("an empty file and a file of comments give the defaults")
    func emptyFile() {
        #expect(loadFile("") == ConfigurationResult(configuration: .defaults, problems: []))
        #expect(loadFile("# only\n; comments\n\n") == ConfigurationResult(configuration: .defaults, problems: []))
    }
}

// MARK: - Layers

@Suite("Configuration precedence")
struct ConfigurationPrecedenceTests {
    let file = ConfigurationFile(
        path: confPath,
        contents: "TELEMETRY_BATCH_SIZE=10\nTELEMETRY_FLUSH_INTERVAL=20\nTELEMETRY_RETRY_ATTEMPTS=30\n")

    @Test("flags > environment > file > defaults")
    func precedence() {
        let result = ConfigurationLoader.load(
            flags: ["TELEMETRY_BATCH_SIZE": "1"],
            environment: ["TELEMETRY_BATCH_SIZE": "2", "TELEMETRY_FLUSH_INTERVAL": "2"],
            file: file)
        #expect(result.problems == [])
        #expect(result.configuration.batchSize == 1)
        #expect(result.configuration.flushIntervalSeconds == 2)
        #expect(result.configuration.retryAttempts == 30)
        #expect(result.configuration.maxConnections == 1024)
        #expect(result.valueSources["TELEMETRY_BATCH_SIZE"] == .flag)
        #expect(result.valueSources["TELEMETRY_FLUSH_INTERVAL"] == .environment)
        #expect(result.valueSources["TELEMETRY_RETRY_ATTEMPTS"] == .file(path: confPath, line: 3))
        #expect(result.valueSources["TELEMETRY_MAX_CONNECTIONS"] == nil)
    }

    @Test("only TELEMETRY_* environment variables are looked at")
    func environmentFilter() {
        let result = ConfigurationLoader.load(
            flags: [:],
            environment: ["PATH": "/usr/bin", "BATCH_SIZE": "x", "telemetry_batch_size": "x", "HOME": "/root"],
            file: nil)
        #expect(result.problems == [])
        #expect(result.configuration == .defaults)
    }

    @Test("an unknown TELEMETRY_* environment variable is only a warning")
    func unknownEnvironmentVariable() {
        let result = ConfigurationLoader.load(flags: [:], environment: ["TELEMETRY_BATCHSIZE": "5"], file: nil)
        #expect(result.isValid)
        #expect(result.problems.map(\.description) == [
            "environment: warning: TELEMETRY_BATCHSIZE: unknown setting; did you mean TELEMETRY_BATCH_SIZE?"
        ])
    }

    @Test("an unknown flag key is an error")
    func unknownFlag() {
        let result = ConfigurationLoader.load(flags: ["TELEMETRY_BATCHSIZE": "5", "BATCH": "1"], environment: [:], file: nil)
        #expect(result.errors.count == 2)
        #expect(result.problems.allSatisfy { $0.source == .flag })
    }

    @Test("an invalid value keeps the lower layer's value, and the lower layer's problems are still reported")
    func invalidHigherLayer() {
        let result = ConfigurationLoader.load(
            flags: [:], environment: ["TELEMETRY_BATCH_SIZE": "lots", "TELEMETRY_RETRY_ATTEMPTS": "4"],
            file: ConfigurationFile(path: confPath, contents: "TELEMETRY_BATCH_SIZE=50\nTELEMETRY_RETRY_ATTEMPTS=x\n"))
        #expect(result.configuration.batchSize == 50)
        #expect(result.configuration.retryAttempts == 4)
        #expect(result.problems.map(\.description) == [
            "\(confPath):2: TELEMETRY_RETRY_ATTEMPTS: must be an integer between 0 and 100 (got \"x\")",
            "environment: TELEMETRY_BATCH_SIZE: must be an integer between 1 and 10000 (got \"lots\")",
        ])
    }

    @Test("the same file loaded by systemd as EnvironmentFile= is reported once, with line numbers")
    func environmentFileEcho() {
        let contents = "TELEMETRY_BATCH_SIZE=abc\nTELEMETRY_TYPO=1\nTELEMETRY_RETRY_ATTEMPTS=5\n"
        let echoed = EnvironmentFileParser.parse(contents).entries.reduce(into: [String: String]()) {
            $0[$1.key] = $1.value
        }
        let result = ConfigurationLoader.load(
            flags: [:], environment: echoed, file: ConfigurationFile(path: confPath, contents: contents))
        #expect(result.problems.count == 2)
        #expect(result.problems.allSatisfy { if case .file = $0.source { true } else { false } })
        #expect(result.valueSources["TELEMETRY_RETRY_ATTEMPTS"] == .file(path: confPath, line: 3))
    }

    @Test("suggestions by edit distance", arguments: [
        ("TELEMETRY_BATCHSIZE", "TELEMETRY_BATCH_SIZE"),
        ("TELEMETRY_BACH_SIZE", "TELEMETRY_BATCH_SIZE"),
        ("TELEMETRY_LOGLEVEL", "TELEMETRY_LOG_LEVEL"),
        ("TELEMETRY_STATEDIR", "TELEMETRY_STATE_DIR"),
        ("TELEMETRY_APIKEY", "TELEMETRY_API_KEY"),
        ("TELEMETRY_MAX_EVENTS", "TELEMETRY_MAX_EVENTS_PER_EXECUTION"),
        ("TELEMETRY_RETENTION", "TELEMETRY_RETENTION_DAYS"),
        ("telemetry_enabled", "TELEMETRY_ENABLED"),
    ])
    func suggestions(name: String, expected: String) {
        #expect(ConfigurationLoader.suggestion(for: name) == expected)
    }

    @Test("no suggestion for names far from every key", arguments: ["TELEMETRY_XYZZY", "TELEMETRY_TIMEOUT", "TELEMETRY_A"])
    func noSuggestion(name: String) {
        #expect(ConfigurationLoader.suggestion(for: name) == nil)
    }
}

// MARK: - Reading files

@Suite("ConfigurationLoader.readFile")
struct ConfigurationReadFileTests {
    private func withTemporaryFile(_ bytes: [UInt8], mode: mode_t = 0o640, _ body: (String) -> Void) {
        var template = Array("/tmp/telemetryd-conf-test-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        _ = fchmod(fd, mode)
        close(fd)
        defer { unlink(path) }
        body(path)
    }

    @Test("a missing file is a distinguishable failure")
    func missing() {
        let path = "/nonexistent-telemetryd-dir/telemetryd.conf"
        guard case .failure(let problem) = ConfigurationLoader.readFile(at: path) else {
            Issue.record("expected a failure")
            return
        }
        #expect(problem.isFileNotFound)
        #expect(problem.source == .file(path: path, line: 0))
        #expect(problem.description == "\(path): cannot open: No such file or directory")
    }

    @Test("a directory is an error, not 'not found'")
    func directory() {
        guard case .failure(let problem) = ConfigurationLoader.readFile(at: "/tmp") else {
            Issue.record("expected a failure")
            return
        }
        #expect(!problem.isFileNotFound)
        #expect(problem.description == "/tmp: is not a regular file")
    }

    @Test("reads contents and permissions")
    func reads() {
        withTemporaryFile(Array("TELEMETRY_API_KEY=k\n".utf8), mode: 0o644) { path in
            guard case .success(let file) = ConfigurationLoader.readFile(at: path) else {
                Issue.record("expected success")
                return
            }
            #expect(file == ConfigurationFile(path: path, contents: "TELEMETRY_API_KEY=k\n", permissions: 0o644))
            let result = ConfigurationLoader.load(flags: [:], environment: [:], file: file)
            #expect(result.configuration.apiKey == "k")
            #expect(result.warnings.count == 1)
        }
    }

    @Test("invalid UTF-8 is refused with its line")
    func invalidUTF8() {
        withTemporaryFile(Array("A=1\nB=2\nC=".utf8) + [0xFF, 0x0A]) { path in
            guard case .failure(let problem) = ConfigurationLoader.readFile(at: path) else {
                Issue.record("expected a failure")
                return
            }
            #expect(problem.source == .file(path: path, line: 3))
            #expect(problem.message.contains("UTF-8"))
        }
    }
}

// MARK: - config/telemetryd.conf

@Suite("config/telemetryd.conf")
struct DocumentedConfigurationFileTests {
    static var repositoryRoot: String {
        // <root>/Tests/TelemetryCoreTests/ConfigurationTests.swift
        var path = "\(#filePath)"
        for _ in 0..<3 {
            guard let slash = path.lastIndex(of: "/") else { break }
            path = String(path[..<slash])
        }
        return path
    }

    static func documentedFile() throws -> ConfigurationFile {
        let path = repositoryRoot + "/config/telemetryd.conf"
        switch ConfigurationLoader.readFile(at: path) {
        case .success(let file): return file
        case .failure(let problem): throw problem
        }
    }

    @Test("every known key appears, commented out, with its default and its summary")
    func everyKeyDocumented() throws {
        let file = try Self.documentedFile()
        let lines = file.contents.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for key in DaemonConfiguration.knownKeys {
            let assignment = "#\(key.name)=\(ConfigurationText.quoteForEnvironmentFile(key.defaultValue))"
            #expect(lines.contains(assignment), "missing line \(assignment)")
            let firstWords = key.summary.split(separator: " ").prefix(4).joined(separator: " ")
            #expect(file.contents.contains(firstWords), "summary of \(key.name) missing")
        }
    }

    @Test("it names no unknown key and sets nothing: loading it gives the defaults without a problem")
    func loadsCleanly() throws {
        let file = try Self.documentedFile()
        let result = ConfigurationLoader.load(flags: [:], environment: [:], file: file)
        #expect(result.problems == [])
        #expect(result.configuration == .defaults)
        for line in file.contents.split(separator: "\n") where line.hasPrefix("#TELEMETRY_") {
            let name = String(line.dropFirst().prefix { $0 != "=" })
            #expect(DaemonConfiguration.key(named: name) != nil, "unknown key \(name) in the documented file")
        }
        // Uncommenting every assignment gives a valid file with the same (default) configuration.
        let uncommented = file.contents.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("#TELEMETRY_") ? String($0.dropFirst()) : String($0) }
            .joined(separator: "\n")
        let active = ConfigurationLoader.load(
            flags: [:], environment: [:], file: ConfigurationFile(path: file.path, contents: uncommented))
        #expect(active.problems == [])
        #expect(active.configuration == .defaults)
    }

    @Test("it is exactly DaemonConfiguration.documentedFileText() (regenerate it from the key table)")
    func matchesGenerator() throws {
        let file = try Self.documentedFile()
        #expect(file.contents == DaemonConfiguration.documentedFileText())
    }
}
