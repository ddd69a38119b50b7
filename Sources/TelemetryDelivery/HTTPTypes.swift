/// The HTTP side of delivery, as the forwarder sees it: one POST, its outcome, and why it failed.
/// `CurlSession` implements it with libcurl.

/// How the request body is compressed (TELEMETRY_COMPRESSION); sent as `Content-Encoding`.
public enum PayloadCompression: String, Sendable, CaseIterable {
    case gzip, zstd, none
}

/// TLS, timeouts and identity for every request to the endpoint. Verification is always on.
public struct HTTPSettings: Sendable, Equatable {
    /// PEM bundle of a private CA to trust instead of the system's (TELEMETRY_CA_FILE).
    public var caFile: String?
    /// PEM client certificate and key for mTLS (TELEMETRY_CLIENT_CERT, TELEMETRY_CLIENT_KEY).
    public var clientCertificate: String?
    public var clientKey: String?
    public var connectTimeoutSeconds: Double
    /// Bound on the whole request, connect included.
    public var requestTimeoutSeconds: Double
    public var userAgent: String

    public init(caFile: String? = nil, clientCertificate: String? = nil, clientKey: String? = nil,
                connectTimeoutSeconds: Double = 10, requestTimeoutSeconds: Double = 30, userAgent: String) {
        self.caFile = caFile
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.userAgent = userAgent
    }
}

public struct HTTPRequest: Sendable {
    public var url: String
    public var body: [UInt8]
    /// Header names and values; never logged (the Authorization value is a secret).
    public var headers: [(name: String, value: String)]
    /// A tighter bound than the session's request timeout for this one request (the last delivery at
    /// shutdown must end before systemd's stop timeout).
    public var timeoutSeconds: Double?

    public init(url: String, body: [UInt8], headers: [(name: String, value: String)], timeoutSeconds: Double? = nil) {
        self.url = url
        self.body = body
        self.headers = headers
        self.timeoutSeconds = timeoutSeconds
    }
}

/// Where the time of one request went, in seconds from its start (libcurl's CURLINFO_*_TIME).
public struct HTTPTiming: Sendable, Equatable {
    public var nameLookup: Double
    public var connect: Double
    public var tlsHandshake: Double
    public var total: Double

    public init(nameLookup: Double = 0, connect: Double = 0, tlsHandshake: Double = 0, total: Double = 0) {
        self.nameLookup = nameLookup
        self.connect = connect
        self.tlsHandshake = tlsHandshake
        self.total = total
    }
}

/// Any HTTP answer, whatever its status.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names lowercased; the last value wins.
    public var headers: [String: String]
    /// The first 64 KiB of the body, enough for an excerpt in the log.
    public var body: [UInt8]
    public var timing: HTTPTiming
    /// The HTTP version libcurl used ("1.1", "2").
    public var httpVersion: String

    public init(status: Int, headers: [String: String], body: [UInt8], timing: HTTPTiming, httpVersion: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.timing = timing
        self.httpVersion = httpVersion
    }
}

/// No HTTP answer: what went wrong, precisely enough for `telemetry test-connection` to say what to fix.
public struct HTTPFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// The host name did not resolve (or the proxy's).
        case nameResolution = "name_resolution"
        /// TCP connect refused, unreachable or timed out.
        case connect
        /// The server certificate was not trusted: unknown CA, wrong host name, expired.
        case tlsVerification = "tls_verification"
        /// Another TLS failure: handshake, client certificate, protocol.
        case tls
        /// The request did not complete within the request timeout.
        case timeout
        /// The connection broke while sending or receiving (reset, closed early).
        case connectionLost = "connection_lost"
        /// Our own settings are unusable (a missing CA file, a bad URL).
        case configuration
        case other
    }

    public var kind: Kind
    /// A sentence for an operator: libcurl's message and, for TLS, the verification reason.
    public var message: String
    /// The CURLcode, for the record.
    public var curlCode: Int32
    public var timing: HTTPTiming

    public init(kind: Kind, message: String, curlCode: Int32, timing: HTTPTiming = HTTPTiming()) {
        self.kind = kind
        self.message = message
        self.curlCode = curlCode
        self.timing = timing
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// Something that sends one request and returns its outcome. `CurlSession` is the real one; tests of the
/// forwarder's logic may use a scripted one.
public protocol HTTPTransport: AnyObject {
    func post(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPFailure>
}
