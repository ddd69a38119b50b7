import TelemetryWire

/// What one attempt to deliver a batch came to.
public enum AttemptOutcome: Sendable, Equatable {
    /// 2xx: the documents leave the queue.
    case delivered(status: Int)
    /// 408, 429, 5xx, timeouts and connection failures: send the same batch again later, never sooner than
    /// `notBefore` seconds when the server said so (Retry-After).
    /// `kind` labels the failure for counters: `http_503`, `timeout`, `connect`, `tls_verification`, …
    case retry(kind: String, reason: String, notBefore: Double?)
    /// Any other 4xx: the endpoint will never take this batch as it is; dead-letter it.
    case refused(status: Int, excerpt: String)
}

/// The retry rules of docs/delivery.md, as pure functions (the forwarder supplies the clock and the dice).
public enum RetryPolicy {
    public static func classify(_ result: Result<HTTPResponse, HTTPFailure>, now: Timestamp) -> AttemptOutcome {
        switch result {
        case .failure(let failure):
            return .retry(kind: failure.kind.rawValue, reason: failure.description, notBefore: nil)
        case .success(let response):
            switch response.status {
            case 200..<300:
                return .delivered(status: response.status)
            case 408, 429, 500..<600:
                let after = response.headers["retry-after"].flatMap { retryAfterSeconds($0, now: now) }
                return .retry(kind: "http_\(response.status)", reason: "HTTP \(response.status)\(excerptSuffix(response.body))",
                              notBefore: after)
            default:
                return .refused(status: response.status, excerpt: excerpt(response.body))
            }
        }
    }

    /// Exponential backoff with full jitter: a uniformly random delay in [0, min(cap, base × 2^attempt)].
    /// `unitRandom` returns a value in [0, 1).
    public static func backoff(attempt: Int, baseSeconds: Double, capSeconds: Double,
                               unitRandom: () -> Double) -> Double {
        let ceiling = min(capSeconds, baseSeconds * Double(1 << min(max(attempt, 0), 30)))
        return ceiling * unitRandom()
    }

    /// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 IMF-fixdate), in seconds from `now` (≥ 0).
    public static func retryAfterSeconds(_ value: String, now: Timestamp) -> Double? {
        let text = value.trimmingSpaces()
        if let seconds = Int(text), seconds >= 0 { return Double(seconds) }
        guard let date = parseHTTPDate(text) else { return nil }
        return max(0, date.seconds - now.seconds)
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func parseHTTPDate(_ text: String) -> Timestamp? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let monthIndex = months.firstIndex(of: String(parts[2])) else { return nil }
        let clock = parts[4].split(separator: ":")
        guard clock.count == 3, let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]),
              (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let month = String(format2: monthIndex + 1)
        let iso = "\(year)-\(month)-\(String(format2: day))T\(String(format2: hour)):\(String(format2: minute)):\(String(format2: second))Z"
        return Timestamp.parseRFC3339(iso)
    }

    /// The start of a response body, printable, for logs and dead letters.
    public static func excerpt(_ body: [UInt8], limit: Int = 300) -> String {
        let text = String(decoding: body.prefix(limit), as: UTF8.self)
            .map { $0.isASCII && ($0.asciiValue ?? 0) < 0x20 ? " " : String($0) }.joined()
        return body.count > limit ? text + "…" : text
    }

    private static func excerptSuffix(_ body: [UInt8]) -> String {
        body.isEmpty ? "" : ": " + excerpt(body, limit: 120)
    }
}

extension String {
    init(format2 value: Int) {
        self = value < 10 ? "0\(value)" : "\(value)"
    }

    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
