import TelemetryWire

/// `telemetry test-connection`: one real request with the daemon's own TLS, auth and compression settings,
/// and a diagnosis precise enough to act on.
public struct ProbeReport: Sendable {
    public var ok: Bool
    public var endpointHost: String
    /// What happened, for a person: "HTTP 200 in 12 ms", "TLS verification failed: …".
    public var summary: String
    public var status: Int?
    public var failureKind: String?
    public var bodyExcerpt: String?
    public var httpVersion: String?
    public var timing: HTTPTiming
}

public enum ConnectionProbe {
    /// Sends an empty batch (`[]`, or an empty OTLP logs request) with a fresh Idempotency-Key.
    /// Receivers must accept an empty batch with a 2xx (docs/delivery.md).
    public static func run(settings: DeliverySettings, transport: HTTPTransport) -> ProbeReport {
        let host = EndpointURL.host(of: settings.endpoint) ?? ""
        let url: String
        let body: [UInt8]
        switch settings.format {
        case .json:
            url = settings.endpoint
            body = Array("[]".utf8)
        case .otlp:
            let base = settings.endpoint.hasSuffix("/") ? String(settings.endpoint.dropLast()) : settings.endpoint
            url = base + "/v1/logs"
            body = Array(#"{"resourceLogs":[]}"#.utf8)
        }
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        var payload = body
        if settings.compression != .none, let compressed = try? PayloadCompressor.compress(body, settings.compression) {
            payload = compressed
            headers.append(("Content-Encoding", settings.compression.rawValue))
        }
        if let key = settings.apiKey, !key.isEmpty { headers.append(("Authorization", "Bearer \(key)")) }
        headers.append(("Idempotency-Key", UUIDv4.generate()))
        headers.append(("User-Agent", settings.http.userAgent))
        switch transport.post(HTTPRequest(url: url, body: payload, headers: headers)) {
        case .success(let response):
            let milliseconds = Int(response.timing.total * 1_000)
            let ok = (200..<300).contains(response.status)
            var summary = "HTTP \(response.status) from \(host) in \(milliseconds) ms (HTTP/\(response.httpVersion))"
            switch response.status {
            case 200..<300: break
            case 401, 403: summary += ": the endpoint refused the credentials; check TELEMETRY_API_KEY / TELEMETRY_API_KEY_FILE"
            case 404: summary += ": no receiver at this path; check TELEMETRY_ENDPOINT"
            case 408, 429, 500..<600: summary += ": the endpoint is reachable but failing; delivery will retry"
            default: summary += ": the endpoint refused the probe"
            }
            return ProbeReport(ok: ok, endpointHost: host, summary: summary, status: response.status, failureKind: nil,
                               bodyExcerpt: response.body.isEmpty ? nil : RetryPolicy.excerpt(response.body),
                               httpVersion: response.httpVersion, timing: response.timing)
        case .failure(let failure):
            return ProbeReport(ok: false, endpointHost: host, summary: failure.message, status: nil,
                               failureKind: failure.kind.rawValue, bodyExcerpt: nil, httpVersion: nil,
                               timing: failure.timing)
        }
    }
}
