import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// POSTs to the endpoint with libcurl: one easy handle for the session's whole life, so libcurl keeps the
/// connection (and its TLS session) open between requests and reuses it (`lastNewConnectionCount` is 0 then).
///
/// - TLS: the peer certificate and its host name are always verified (CURLOPT_SSL_VERIFYPEER 1,
///   CURLOPT_SSL_VERIFYHOST 2). `settings.caFile` replaces the system's CA bundle (CURLOPT_CAINFO);
///   `clientCertificate`/`clientKey` are PEM files for mTLS (CURLOPT_SSLCERT/CURLOPT_SSLKEY).
/// - HTTP/2 when the server offers it in the TLS handshake (ALPN), HTTP/1.1 otherwise
///   (CURL_HTTP_VERSION_2TLS); plain `http://` URLs use HTTP/1.1. Redirects are not followed: a 3xx is an
///   answer like any other.
/// - Proxies: nothing here sets CURLOPT_PROXY, so libcurl takes the proxy from the environment itself, per
///   request, the standard way: `https_proxy` then `HTTPS_PROXY` for https:// URLs, `http_proxy` (lower case
///   only) for http:// URLs, `all_proxy`/`ALL_PROXY` for both, and skips it for the hosts in `no_proxy` then
///   `NO_PROXY` (checked in libcurl 7.88's url.c, and by the test "HTTPS_PROXY and NO_PROXY from the
///   environment are honoured", which tunnels through a CONNECT proxy). An https:// request goes through
///   the proxy as a CONNECT tunnel, end-to-end TLS verified as usual.
/// - Timeouts: `connectTimeoutSeconds` bounds name resolution, TCP connect and the TLS handshake
///   (CURLOPT_CONNECTTIMEOUT_MS); `requestTimeoutSeconds` bounds the whole request (CURLOPT_TIMEOUT_MS), or
///   the request's own `timeoutSeconds` when that is shorter.
/// - CURLOPT_NOSIGNAL is set: libcurl never uses signals (e.g. SIGALRM around name resolution), which would
///   be unsafe in a threaded daemon. It sends with MSG_NOSIGNAL (TLS included), so a peer that resets the
///   connection mid-upload is a failure, not a SIGPIPE (tested in a process that does not ignore SIGPIPE;
///   the daemon ignores it anyway).
/// - The response: status, headers (names lowercased, last value wins, only those of the final answer: not
///   of a proxy's CONNECT reply or of `100 Continue`), the first 64 KiB of the body (the rest is read and
///   dropped so the connection stays reusable), timings and the HTTP version.
/// - libcurl re-sends a request by itself, once, on a new connection when a reused connection turns out to
///   be closed with no byte of an answer (the usual stale keep-alive case). If the server did get the first
///   copy and then closed without answering, it gets the request twice: deliveries must be idempotent.
/// - Failures are `HTTPFailure`s whose message says what happened and, where it can, what to set. No header
///   value of the request (the Authorization value is a secret) and no password or query in the URL ever
///   appears in a message: they are replaced by `<redacted>` should libcurl's text ever contain one.
///
/// Not thread-safe: one thread (the forwarder's) uses a session; other threads make their own.
public final class CurlSession: HTTPTransport {
    /// How much of a response body is kept.
    public static let responseBodyLimit = 64 * 1024

    public let settings: HTTPSettings
    /// New connections the last request opened (CURLINFO_NUM_CONNECTS): 0 when it reused one.
    public private(set) var lastNewConnectionCount = 0

    /// libcurl's version line, with its TLS library and HTTP/2 support ("libcurl/7.88.1 OpenSSL/3.0.19 ...").
    public static var libcurlVersion: String { String(cString: telemetry_curl_version()) }

    private let handle: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let errorBufferSize: Int
    private let collector: ResponseCollector

    public init(settings: HTTPSettings) throws(HTTPFailure) {
        try CurlGlobal.initialize()
        try Self.validate(settings)
        guard let handle = telemetry_curl_easy_init() else {
            throw HTTPFailure(kind: .other, message: "libcurl could not create a handle (out of memory?)",
                              curlCode: Int32(CURLE_FAILED_INIT.rawValue))
        }
        let size = Int(telemetry_curl_error_size())
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        errorBuffer.initialize(repeating: 0, count: size)
        let collector = ResponseCollector()
        do {
            try Self.configure(handle, settings: settings, errorBuffer: errorBuffer, collector: collector)
        } catch {
            telemetry_curl_easy_cleanup(handle)
            errorBuffer.deallocate()
            throw error
        }
        self.handle = handle
        self.settings = settings
        self.errorBuffer = errorBuffer
        self.errorBufferSize = size
        self.collector = collector
    }

    deinit {
        telemetry_curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    // MARK: one request

    public func post(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPFailure> {
        collector.reset()
        errorBuffer.update(repeating: 0, count: errorBufferSize)
        lastNewConnectionCount = 0
        let secrets = Self.secrets(of: request)
        func failure(_ kind: HTTPFailure.Kind, _ message: String, _ code: CURLcode,
                     _ timing: HTTPTiming = HTTPTiming()) -> Result<HTTPResponse, HTTPFailure> {
            .failure(HTTPFailure(kind: kind, message: Self.redact(message, secrets), curlCode: Int32(code.rawValue),
                                 timing: timing))
        }

        // A NUL would silently cut the URL short on its way to C; line breaks have no place in one either.
        guard !request.url.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            return failure(.configuration, "the endpoint URL contains a control character (NUL, line break, tab); "
                + CurlTarget.urlHint, CURLE_URL_MALFORMAT)
        }
        let target: CurlTarget
        switch CurlTarget.parse(request.url) {
        case .success(let parsed): target = parsed
        case .failure(let problem): return failure(.configuration, problem.message, problem.code)
        }

        // Headers: built for this request, freed after it.
        var list: UnsafeMutablePointer<curl_slist>?
        defer { telemetry_curl_slist_free_all(list) }
        var named = Set<String>()
        for header in request.headers {
            let name = header.name.curlTrimmed
            guard Self.isToken(name) else {
                return failure(.configuration, "a request header name is not valid HTTP (\"\(Self.printable(name))\")",
                               CURLE_BAD_FUNCTION_ARGUMENT)
            }
            guard !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                return failure(.configuration,
                               "the value of request header \(name) contains a line break or NUL; it was not sent",
                               CURLE_BAD_FUNCTION_ARGUMENT)
            }
            named.insert(name.lowercased())
            // "Name;" is libcurl's way to send a header with an empty value ("Name:" would remove it).
            let line = header.value.isEmpty ? "\(name);" : "\(name): \(header.value)"
            guard let appended = telemetry_curl_slist_append(list, line) else {
                return failure(.other, "out of memory building the request headers", CURLE_OUT_OF_MEMORY)
            }
            list = appended
        }
        // No "Expect: 100-continue" round trip before large bodies, and no form content type that a POST
        // without a Content-Type would otherwise get from libcurl.
        for (name, line) in [("expect", "Expect:"), ("content-type", "Content-Type:")] where !named.contains(name) {
            guard let appended = telemetry_curl_slist_append(list, line) else {
                return failure(.other, "out of memory building the request headers", CURLE_OUT_OF_MEMORY)
            }
            list = appended
        }

        // The request's own bound, when tighter than the session's, for this request only.
        var effective = settings
        if let seconds = request.timeoutSeconds, seconds.isFinite, seconds > 0,
           seconds < settings.requestTimeoutSeconds {
            effective.requestTimeoutSeconds = seconds
        }
        // Runs before the list is freed (defers run in reverse): the handle never keeps a freed list.
        defer { _ = telemetry_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, nil) }
        var code = telemetry_curl_setopt_string(handle, CURLOPT_URL, request.url)
        if code == CURLE_OK { code = telemetry_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list) }
        if code == CURLE_OK {
            code = telemetry_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS,
                                              Self.milliseconds(effective.requestTimeoutSeconds))
        }
        guard code == CURLE_OK else {
            return failure(.configuration, "libcurl refused the request: \(Self.curlMessage(code))", code)
        }

        // POSTFIELDS does not copy: the body's bytes are pinned for the whole perform. An empty body still
        // needs a non-NULL pointer (NULL would make libcurl read the body from stdin): a static empty string.
        let nothing = UnsafeRawPointer(("" as StaticString).utf8Start)
        code = request.body.withUnsafeBytes { body -> CURLcode in
            let setCode = telemetry_curl_setopt_postfields(handle, body.count > 0 ? body.baseAddress! : nothing,
                                                           curl_off_t(body.count))
            guard setCode == CURLE_OK else { return setCode }
            let performed = telemetry_curl_easy_perform(handle)
            // The body's pointer dies with this closure: leave none behind in the handle.
            _ = telemetry_curl_setopt_postfields(handle, nothing, 0)
            return performed
        }

        let timing = self.timing()
        lastNewConnectionCount = getLong(CURLINFO_NUM_CONNECTS)
        guard code == CURLE_OK else {
            let text = errorMessage(code)
            let context = CurlFailureContext(
                code: code, curlText: text, verifyResult: getLong(CURLINFO_SSL_VERIFYRESULT),
                osErrno: getLong(CURLINFO_OS_ERRNO), target: target, settings: effective, timing: timing,
                newConnections: lastNewConnectionCount, answerStarted: getLong(CURLINFO_HEADER_SIZE) > 0)
            let classified = context.failure()
            return failure(classified.kind, classified.message, code, timing)
        }
        return .success(HTTPResponse(status: getLong(CURLINFO_RESPONSE_CODE), headers: collector.headers,
                                     body: collector.body, timing: timing,
                                     httpVersion: Self.versionName(getLong(CURLINFO_HTTP_VERSION))))
    }

    // MARK: handle setup

    private static func validate(_ settings: HTTPSettings) throws(HTTPFailure) {
        func configuration(_ message: String) -> HTTPFailure {
            HTTPFailure(kind: .configuration, message: message, curlCode: Int32(CURLE_BAD_FUNCTION_ARGUMENT.rawValue))
        }
        for (name, value) in [("connect", settings.connectTimeoutSeconds), ("request", settings.requestTimeoutSeconds)]
        where !(value.isFinite && value > 0) {
            throw configuration("the \(name) timeout must be a positive number of seconds, not \(value)")
        }
        if settings.clientKey != nil && settings.clientCertificate == nil {
            throw configuration("TELEMETRY_CLIENT_KEY is set but TELEMETRY_CLIENT_CERT is not: set both for mTLS")
        }
        let files: [(String?, String, String)] = [
            (settings.caFile, "TELEMETRY_CA_FILE", "a PEM file with the CA that signed the endpoint's certificate"),
            (settings.clientCertificate, "TELEMETRY_CLIENT_CERT", "the PEM client certificate"),
            (settings.clientKey, "TELEMETRY_CLIENT_KEY", "the PEM key of the client certificate"),
        ]
        for case let (path?, variable, what) in files {
            if let problem = unreadable(path) {
                throw configuration("\(variable) is \(path), which \(problem); point it at \(what)")
            }
        }
    }

    /// Why the file at `path` cannot be read, or nil when it can.
    private static func unreadable(_ path: String) -> String? {
        if path.isEmpty { return "is empty" }
        var info = stat()
        guard stat(path, &info) == 0 else { return "cannot be opened: \(String(cString: strerror(errno)))" }
        if (info.st_mode & S_IFMT) == S_IFDIR { return "is a directory" }
        guard access(path, R_OK) == 0 else { return "cannot be read: \(String(cString: strerror(errno)))" }
        return nil
    }

    private static func configure(_ handle: UnsafeMutableRawPointer, settings: HTTPSettings,
                                  errorBuffer: UnsafeMutablePointer<CChar>,
                                  collector: ResponseCollector) throws(HTTPFailure) {
        func check(_ code: CURLcode, _ what: String) throws(HTTPFailure) {
            guard code == CURLE_OK else {
                throw HTTPFailure(kind: .configuration,
                                  message: "libcurl refused \(what): \(curlMessage(code)) (\(CurlSession.libcurlVersion))",
                                  curlCode: Int32(code.rawValue))
            }
        }
        let context = Unmanaged.passUnretained(collector).toOpaque()
        try check(telemetry_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
        try check(telemetry_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "CURLOPT_ERRORBUFFER")
        try check(telemetry_curl_setopt_write_function(handle) { data, size, count, context in
            CurlSession.receiveBody(data, size, count, context)
        }, "CURLOPT_WRITEFUNCTION")
        try check(telemetry_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context), "CURLOPT_WRITEDATA")
        try check(telemetry_curl_setopt_header_function(handle) { data, size, count, context in
            CurlSession.receiveHeader(data, size, count, context)
        }, "CURLOPT_HEADERFUNCTION")
        try check(telemetry_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context), "CURLOPT_HEADERDATA")
        try check(telemetry_curl_setopt_long(handle, CURLOPT_POST, 1), "CURLOPT_POST")
        try check(telemetry_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "CURLOPT_FOLLOWLOCATION")
        try check(telemetry_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"), "CURLOPT_PROTOCOLS_STR")
        try check(telemetry_curl_setopt_long(handle, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1),
                  "CURLOPT_SUPPRESS_CONNECT_HEADERS")

        try check(telemetry_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1), "CURLOPT_SSL_VERIFYPEER")
        try check(telemetry_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2), "CURLOPT_SSL_VERIFYHOST")
        if let caFile = settings.caFile {
            try check(telemetry_curl_setopt_string(handle, CURLOPT_CAINFO, caFile), "the CA file (CURLOPT_CAINFO)")
        }
        if let certificate = settings.clientCertificate {
            try check(telemetry_curl_setopt_string(handle, CURLOPT_SSLCERT, certificate),
                      "the client certificate (CURLOPT_SSLCERT)")
            try check(telemetry_curl_setopt_string(handle, CURLOPT_SSLCERTTYPE, "PEM"), "CURLOPT_SSLCERTTYPE")
        }
        if let key = settings.clientKey {
            try check(telemetry_curl_setopt_string(handle, CURLOPT_SSLKEY, key), "the client key (CURLOPT_SSLKEY)")
            try check(telemetry_curl_setopt_string(handle, CURLOPT_SSLKEYTYPE, "PEM"), "CURLOPT_SSLKEYTYPE")
        }
        // Only a libcurl without HTTP/2 refuses this; it then speaks HTTP/1.1, which is fine.
        _ = telemetry_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))

        try check(telemetry_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS,
                                             milliseconds(settings.connectTimeoutSeconds)), "CURLOPT_CONNECTTIMEOUT_MS")
        try check(telemetry_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS,
                                             milliseconds(settings.requestTimeoutSeconds)), "CURLOPT_TIMEOUT_MS")
        // Notice a kept connection that died while idle (NAT or load balancer timeouts) before reusing it.
        _ = telemetry_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        _ = telemetry_curl_setopt_long(handle, CURLOPT_TCP_KEEPIDLE, 30)
        _ = telemetry_curl_setopt_long(handle, CURLOPT_TCP_KEEPINTVL, 15)
        try check(telemetry_curl_setopt_string(handle, CURLOPT_USERAGENT, settings.userAgent), "CURLOPT_USERAGENT")
    }

    private static func milliseconds(_ seconds: Double) -> Int {
        max(1, Int(min(seconds * 1000, Double(Int32.max)).rounded()))
    }

    // MARK: callbacks (C function pointers: no captures; the collector comes through the context pointer)

    private static func receiveBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                    _ context: UnsafeMutableRawPointer?) -> Int {
        let total = size * count
        guard let data, let context else { return total }
        let collector = Unmanaged<ResponseCollector>.fromOpaque(context).takeUnretainedValue()
        let room = responseBodyLimit - collector.body.count
        if room > 0 {
            collector.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: min(room, total)))
        }
        return total  // everything "taken": the rest is read and dropped, keeping the connection reusable
    }

    private static func receiveHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                      _ context: UnsafeMutableRawPointer?) -> Int {
        let total = size * count
        guard let data, let context else { return total }
        let collector = Unmanaged<ResponseCollector>.fromOpaque(context).takeUnretainedValue()
        collector.headerLine(UnsafeRawBufferPointer(start: data, count: total))
        return total
    }

    // MARK: info

    private func getLong(_ info: CURLINFO) -> Int {
        var value = 0
        return telemetry_curl_getinfo_long(handle, info, &value) == CURLE_OK ? value : 0
    }

    private func getDouble(_ info: CURLINFO) -> Double {
        var value = 0.0
        return telemetry_curl_getinfo_double(handle, info, &value) == CURLE_OK ? value : 0
    }

    private func timing() -> HTTPTiming {
        HTTPTiming(nameLookup: getDouble(CURLINFO_NAMELOOKUP_TIME), connect: getDouble(CURLINFO_CONNECT_TIME),
                   tlsHandshake: getDouble(CURLINFO_APPCONNECT_TIME), total: getDouble(CURLINFO_TOTAL_TIME))
    }

    /// libcurl's detailed message for the last failure (the error buffer), or the generic one for `code`.
    private func errorMessage(_ code: CURLcode) -> String {
        let detailed = String(cString: errorBuffer).curlTrimmed
        return detailed.isEmpty ? Self.curlMessage(code) : detailed
    }

    static func curlMessage(_ code: CURLcode) -> String {
        String(cString: telemetry_curl_easy_strerror(code))
    }

    static func versionName(_ version: Int) -> String {
        switch version {
        case Int(CURL_HTTP_VERSION_1_0): return "1.0"
        case Int(CURL_HTTP_VERSION_1_1): return "1.1"
        case Int(CURL_HTTP_VERSION_2_0): return "2"
        case Int(CURL_HTTP_VERSION_3): return "3"
        default: return "unknown"
        }
    }

    // MARK: secrets

    /// Header values other than a few plainly harmless ones, the bearer token alone, and the URL's password,
    /// user and query values: none of these may appear in a message.
    static func secrets(of request: HTTPRequest) -> [String] {
        let harmless: Set<String> = ["content-type", "content-encoding", "content-length", "accept", "expect",
                                     "user-agent", "accept-encoding", "connection"]
        var secrets: [String] = []
        for header in request.headers where !harmless.contains(header.name.curlTrimmed.lowercased()) {
            let value = header.value.curlTrimmed
            secrets.append(value)
            if let space = value.firstIndex(of: " ") {  // "Bearer <token>", "Basic <credentials>"
                secrets.append(String(value[value.index(after: space)...]).curlTrimmed)
            }
        }
        secrets.append(contentsOf: CurlTarget.secretParts(of: request.url))
        // Longest first, so that a value containing another is replaced whole; very short values would
        // only mangle messages.
        return secrets.filter { $0.utf8.count >= 4 }.sorted { $0.utf8.count > $1.utf8.count }
    }

    static func redact(_ message: String, _ secrets: [String]) -> String {
        var message = message
        for secret in secrets where message.contains(secret) {
            message = message.replacing(secret, with: "<redacted>")
        }
        return message
    }

    // MARK: header checks

    /// An HTTP header name: RFC 9110 token characters.
    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }

    /// A name shown in a message: printable ASCII only, at most 40 characters.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(40).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }
}

/// Where the response goes while libcurl runs: body (bounded) and headers of the final answer.
final class ResponseCollector {
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    private var lastName: String?

    func reset() {
        body.removeAll(keepingCapacity: true)
        headers.removeAll(keepingCapacity: true)
        lastName = nil
    }

    func headerLine(_ bytes: UnsafeRawBufferPointer) {
        var line = String(decoding: bytes, as: UTF8.self)
        while let last = line.last, last.isNewline { line.removeLast() }
        if line.hasPrefix("HTTP/") {
            // A new status line: a 100 Continue, a proxy's reply or a redirect came first. Keep the last.
            headers.removeAll(keepingCapacity: true)
            lastName = nil
            return
        }
        if line.isEmpty { return }
        if let first = line.first, first == " " || first == "\t" {
            // An obsolete folded continuation of the previous header's value.
            if let name = lastName { headers[name, default: ""] += " " + line.curlTrimmed }
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].curlTrimmed.lowercased()
        headers[name] = line[line.index(after: colon)...].curlTrimmed
        lastName = name
    }
}

/// Loading libcurl (on first use, see CCurl.h) and curl_global_init, once per process: a Swift `static let` is
/// initialised exactly once, thread-safely (swift_once), before any easy handle is made.
enum CurlGlobal {
    private static let loadError: String? = telemetry_curl_load_error().map { String(cString: $0) }
    private static let result: UInt32 = loadError == nil
        ? telemetry_curl_global_init(telemetry_curl_global_default()).rawValue : CURLE_FAILED_INIT.rawValue

    static func initialize() throws(HTTPFailure) {
        if let loadError {
            throw HTTPFailure(kind: .other, message: loadError, curlCode: Int32(CURLE_FAILED_INIT.rawValue))
        }
        guard result == CURLE_OK.rawValue else {
            throw HTTPFailure(kind: .other,
                              message: "libcurl could not initialise (curl_global_init: \(CurlSession.curlMessage(CURLcode(rawValue: result))))",
                              curlCode: Int32(bitPattern: result))
        }
    }
}

extension StringProtocol {
    var curlTrimmed: String {
        // Character.isWhitespace: "\r\n" is one Character, equal to neither "\r" nor "\n".
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[start...end])
    }
}
