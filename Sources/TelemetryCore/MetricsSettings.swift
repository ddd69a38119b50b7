/// TELEMETRY_METRICS_LISTEN: where the daemon serves /metrics, /healthz and /readyz, or `off`.
public enum MetricsListen: Sendable, Equatable, CustomStringConvertible {
    case off
    /// `host` is an IPv4 address, an IPv6 address (without brackets) or `localhost`; port 0 picks a free port.
    case address(host: String, port: Int)

    /// The default: loopback only. The exporter port range 9100-9999 of Prometheus's port allocations is
    /// taken in full; 9469 is clear of the ports most often run beside the daemon (node exporter 9100, the
    /// OpenTelemetry SDK exporter 9464, Prometheus 9090, Alertmanager 9093). See docs/metrics.md.
    public static let defaultText = "127.0.0.1:9469"

    public var description: String {
        switch self {
        case .off: "off"
        case .address(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// Parses the setting; on failure returns the message of the configuration error (what is expected, the
    /// value, what to do).
    public static func parse(_ text: String) -> Result<MetricsListen, MetricsListenError> {
        if ConfigurationText.asciiLowercased(text) == "off" { return .success(.off) }
        let expected = "must be off or ADDRESS:PORT with an IPv4 address, [IPv6] address or localhost and a port "
            + "0-65535, such as \(defaultText) (got \(ConfigurationText.quoted(text)))"
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(MetricsListenError(message: expected))
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard isIPv6(host) else {
                return .failure(MetricsListenError(message: "has an invalid IPv6 address \(ConfigurationText.quoted(String(host))); " + expected))
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(MetricsListenError(message: expected)) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard host == "localhost" || isIPv4(host) else {
                let hint = host.contains(":") ? "; put an IPv6 address in brackets, such as [::1]:9469" : "; host names other than localhost are not resolved"
                return .failure(MetricsListenError(message: expected + hint))
            }
        }
        guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let port = Int(portText), port <= 65_535 else {
            return .failure(MetricsListenError(message: "has an invalid port \(ConfigurationText.quoted(String(portText))); " + expected))
        }
        return .success(.address(host: String(host), port: port))
    }

    private static func isIPv4(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && Int(part)! <= 255
        }
    }

    private static func isIPv6(_ text: Substring) -> Bool {
        !text.isEmpty && text.contains(":") && text.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 58) || (byte | 0x20 >= 97 && byte | 0x20 <= 102) || byte == 46
        }
    }
}

public struct MetricsListenError: Error, Sendable, Equatable {
    public var message: String
}

/// Caps on the label values that scripts choose (TELEMETRY_METRICS_MAX_SCRIPTS, _ENVIRONMENTS, _NAMES). Every admitted value is a set of
/// series that lives as long as the process, so the caps bound the exposition and Prometheus's memory.
public struct MetricLabelLimits: Sendable, Equatable {
    /// Distinct `script` label values.
    public var maxScripts: Int
    /// Distinct `environment` label values.
    public var maxEnvironments: Int
    /// Distinct (`script`, `name`) pairs of `script_metric`, over all scripts.
    public var maxMetricNames: Int

    public init(maxScripts: Int = 100, maxEnvironments: Int = 10, maxMetricNames: Int = 500) {
        self.maxScripts = maxScripts
        self.maxEnvironments = maxEnvironments
        self.maxMetricNames = maxMetricNames
    }
}

