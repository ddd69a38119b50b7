import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// The endpoint as the messages name it: scheme and host:port, never the user, password, path or query.
struct CurlTarget: Equatable {
    var scheme: String
    var host: String
    var port: Int

    var isHTTPS: Bool { scheme == "https" }
    /// "host:port" ("[::1]:443" for IPv6).
    var authority: String { (host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) + ":\(port)" }

    struct Problem: Error {
        var message: String
        var code: CURLcode
    }

    static let urlHint = "TELEMETRY_ENDPOINT must look like https://collector.example.com/v1/executions"

    /// The URL parsed by libcurl's own parser (the one the request uses), or why it cannot be used. The
    /// URL itself is not echoed: it may carry a key.
    static func parse(_ url: String) -> Result<CurlTarget, Problem> {
        guard let handle = telemetry_curl_url() else {
            return .failure(Problem(message: "out of memory parsing the endpoint URL", code: CURLE_OUT_OF_MEMORY))
        }
        defer { telemetry_curl_url_cleanup(handle) }
        let code = telemetry_curl_url_set(handle, CURLUPART_URL, url, 0)
        guard code == CURLUE_OK else {
            let reason = String(cString: telemetry_curl_url_strerror(code))
            return .failure(Problem(message: "the endpoint URL is not valid (\(reason)); \(urlHint)",
                                    code: CURLE_URL_MALFORMAT))
        }
        let scheme = (part(handle, CURLUPART_SCHEME) ?? "").lowercased()
        guard scheme == "https" || scheme == "http" else {
            return .failure(Problem(
                message: "the endpoint URL must start with https:// (or http:// on a trusted network), not \(scheme)://; \(urlHint)",
                code: CURLE_UNSUPPORTED_PROTOCOL))
        }
        guard let host = part(handle, CURLUPART_HOST), !host.isEmpty else {
            return .failure(Problem(message: "the endpoint URL has no host name; \(urlHint)", code: CURLE_URL_MALFORMAT))
        }
        let port = part(handle, CURLUPART_PORT, flags: UInt32(CURLU_DEFAULT_PORT)).flatMap { Int($0) } ?? 0
        return .success(CurlTarget(scheme: scheme, host: host.trimmingBrackets, port: port))
    }

    /// The URL's user, password, query and its values: what must never reach a message.
    static func secretParts(of url: String) -> [String] {
        guard let handle = telemetry_curl_url() else { return [] }
        defer { telemetry_curl_url_cleanup(handle) }
        guard telemetry_curl_url_set(handle, CURLUPART_URL, url, 0) == CURLUE_OK else { return [] }
        var parts: [String] = []
        for what in [CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS] {
            if let value = part(handle, what) { parts.append(value) }
        }
        if let query = part(handle, CURLUPART_QUERY) {
            parts.append(query)
            for pair in query.split(separator: "&") {
                if let equals = pair.firstIndex(of: "=") { parts.append(String(pair[pair.index(after: equals)...])) }
            }
        }
        return parts
    }

    private static func part(_ handle: OpaquePointer, _ what: CURLUPart, flags: UInt32 = 0) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard telemetry_curl_url_get(handle, what, &value, flags) == CURLUE_OK, let value else { return nil }
        defer { telemetry_curl_free(value) }
        return String(cString: value)
    }
}

private extension String {
    var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}

/// Everything known about a failed perform, turned into a kind and a message an operator can act on.
struct CurlFailureContext {
    var code: CURLcode
    /// libcurl's error buffer (or curl_easy_strerror when it is empty).
    var curlText: String
    /// CURLINFO_SSL_VERIFYRESULT: OpenSSL's X509_V_* verification result (0: the chain verified).
    var verifyResult: Int
    /// CURLINFO_OS_ERRNO: the errno of the last failed system call (connect's ECONNREFUSED, say).
    var osErrno: Int
    var target: CurlTarget
    var settings: HTTPSettings
    var timing: HTTPTiming
    /// CURLINFO_NUM_CONNECTS of the failed request: 1 when it opened a connection (even one that failed).
    var newConnections: Int
    /// Whether any byte of an answer arrived (CURLINFO_HEADER_SIZE > 0).
    var answerStarted: Bool

    static let clientCertificateHint =
        "the server requires a client certificate: set TELEMETRY_CLIENT_CERT and TELEMETRY_CLIENT_KEY (PEM)"
    static let proxyHint = "if a proxy is meant to be used, check https_proxy/HTTPS_PROXY (and no_proxy/NO_PROXY)"

    func failure() -> (kind: HTTPFailure.Kind, message: String) {
        let host = target.authority
        let curl = curlText
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST:
            return (.nameResolution, "could not resolve the host name \(target.host) (\(curl)); check the host in "
                + "TELEMETRY_ENDPOINT and this machine's DNS settings (/etc/resolv.conf)")
        case CURLE_COULDNT_RESOLVE_PROXY:
            return (.nameResolution, "could not resolve the proxy's host name (\(curl)); check https_proxy/HTTPS_PROXY")

        case CURLE_COULDNT_CONNECT:
            // libcurl 7.88 says only "Couldn't connect to server": the errno says refused, unreachable...
            let reason = osErrno > 0 ? String(cString: strerror(Int32(osErrno))) : ""
            let detail = reason.isEmpty || curl.contains(reason) ? curl : "\(curl): \(reason)"
            return (.connect, "could not connect to \(host) (\(detail)); check that the endpoint is up and that "
                + "TELEMETRY_ENDPOINT has the right host and port; \(Self.proxyHint)")
        case CURLE_PROXY:
            return (.connect, "the proxy did not open a tunnel to \(host) (\(curl)); \(Self.proxyHint)")

        case CURLE_OPERATION_TIMEDOUT:
            return (.timeout, timeoutMessage())

        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS:
            return (.tlsVerification, verificationMessage())

        case CURLE_SSL_CACERT_BADFILE:
            return (.configuration, "the CA file could not be used (\(curl)); set TELEMETRY_CA_FILE to a PEM file "
                + "with the CA certificate(s) that signed the endpoint's certificate"
                + (settings.caFile.flatMap { curl.contains($0) ? nil : " (it is now \($0))" } ?? ""))
        case CURLE_SSL_CERTPROBLEM:
            return (.configuration, "the client certificate or its key could not be used (\(curl)); set "
                + "TELEMETRY_CLIENT_CERT and TELEMETRY_CLIENT_KEY to a matching PEM certificate and unencrypted key")
        case CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
             CURLE_SSL_ENGINE_INITFAILED:
            return (.configuration, "the TLS settings could not be used (\(curl))")

        case CURLE_SSL_CLIENTCERT:
            return (.tls, "the TLS handshake with \(host) failed (\(curl)); " + clientCertificateAdvice())
        case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CIPHER, CURLE_SSL_SHUTDOWN_FAILED, CURLE_USE_SSL_FAILED:
            return (.tls, "the TLS handshake with \(host) failed (\(curl)); " + tlsAdvice())

        case CURLE_SEND_ERROR, CURLE_RECV_ERROR:
            // With TLS 1.3 the server checks the client certificate after the client's side of the handshake
            // is done: its refusal arrives as an alert on the first read, a receive error, not a handshake one.
            if target.isHTTPS, isClientCertificateAlert {
                return (.tls, "the server refused the connection after the TLS handshake (\(curl)); "
                    + clientCertificateAdvice())
            }
            var message = lostMessage("the connection to \(host) broke")
            let rightAfterHandshake = code == CURLE_RECV_ERROR || curlText.contains("getpeername")
            if target.isHTTPS, newConnections > 0, !answerStarted, rightAfterHandshake {
                // A server that refuses the client certificate may reset the connection before its alert is
                // read: the same symptom as any reset, so only a hint.
                message += settings.clientCertificate == nil
                    ? "; if the endpoint requires client certificates (mTLS), set TELEMETRY_CLIENT_CERT and TELEMETRY_CLIENT_KEY"
                    : "; if the endpoint checks client certificates, check that it accepts TELEMETRY_CLIENT_CERT"
            }
            return (.connectionLost, message)
        case CURLE_GOT_NOTHING:
            return (.connectionLost, lostMessage("\(host) closed the connection without answering"))
        case CURLE_PARTIAL_FILE, CURLE_SEND_FAIL_REWIND, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return (.connectionLost, lostMessage("the connection to \(host) broke during the answer"))

        case CURLE_URL_MALFORMAT:
            return (.configuration, "the endpoint URL is not valid (\(curl)); \(CurlTarget.urlHint)")
        case CURLE_UNSUPPORTED_PROTOCOL:
            if curl.contains("HTTP/0.9") {
                return (.configuration, "\(host) did not answer in HTTP (\(curl)); if it speaks TLS on that port, "
                    + "TELEMETRY_ENDPOINT must start with https://")
            }
            return (.configuration, "the endpoint URL's protocol cannot be used (\(curl)); \(CurlTarget.urlHint)")
        case CURLE_NOT_BUILT_IN, CURLE_UNKNOWN_OPTION, CURLE_FAILED_INIT:
            return (.configuration, "this libcurl cannot do what the request needs (\(curl)); it is \(CurlSession.libcurlVersion)")
        case CURLE_WEIRD_SERVER_REPLY:
            return (.connectionLost, lostMessage("\(host) sent something that is not an HTTP answer"))

        default:
            return (.other, "the request to \(host) failed (\(curl); CURLcode \(code.rawValue))")
        }
    }

    // MARK: messages

    private func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// Whether the connection phase (resolve, TCP, TLS handshake) or the request after it ran out of time.
    private func timeoutMessage() -> String {
        let host = target.authority
        let connectLimit = seconds(min(settings.connectTimeoutSeconds, settings.requestTimeoutSeconds))
        let requestLimit = seconds(settings.requestTimeoutSeconds)
        if curlText.hasPrefix("Resolving timed out") {
            return "resolving the host name \(target.host) timed out (connect timeout \(connectLimit); \(curlText)); "
                + "check this machine's DNS settings"
        }
        // libcurl's own words tell the phase: "Connection timed out after N milliseconds" (TCP), "SSL
        // connection timeout" (TLS handshake), "Operation timed out after N milliseconds with ..." (the whole
        // request; still connecting when no connect time was recorded on a new connection).
        let stillConnecting = curlText.hasPrefix("Connection timed out")
            || curlText.hasPrefix("Operation timed out") && newConnections > 0 && timing.connect == 0
                && timing.tlsHandshake == 0
        if curlText.contains("SSL connection timeout") {
            return "the TLS handshake with \(host) timed out (connect timeout \(connectLimit); \(curlText)); the "
                + "port may not speak TLS, or the server is overloaded"
        }
        if stillConnecting {
            return "connecting to \(host) timed out (connect timeout \(connectLimit); \(curlText)); check that the "
                + "endpoint is reachable from here: a firewall may be dropping the packets; \(Self.proxyHint)"
        }
        return "\(host) did not answer within the request timeout of \(requestLimit) (\(curlText)); the endpoint "
            + "may be overloaded: the request is sent again later"
    }

    private func lostMessage(_ what: String) -> String {
        "\(what) (\(curlText)); the endpoint may or may not have the request: it is sent again later. If this "
            + "keeps happening, check the endpoint's logs and any proxy or load balancer in between"
    }

    private var isClientCertificateAlert: Bool {
        let text = curlText.lowercased()
        return ["certificate required", "alert unknown ca", "alert bad certificate", "alert certificate",
                "alert access denied", "alert handshake failure", "unsupported certificate"]
            .contains { text.contains($0) }
    }

    private func clientCertificateAdvice() -> String {
        if settings.clientCertificate == nil { return Self.clientCertificateHint }
        return "the server did not accept our client certificate (TELEMETRY_CLIENT_CERT): check that a CA the "
            + "server trusts signed it and that it has not expired"
    }

    private func tlsAdvice() -> String {
        let text = curlText.lowercased()
        if text.contains("wrong version number") || text.contains("packet length too long")
            || text.contains("record layer failure") || text.contains("http request") {
            return "the port may not speak TLS: check the port, or use http:// if the endpoint really is plain HTTP"
        }
        if isClientCertificateAlert { return clientCertificateAdvice() }
        return "check that the endpoint speaks HTTPS on this port with TLS 1.2 or later"
    }

    /// OpenSSL's reason for the common X509_V_ERR_* results (the error buffer usually has it too).
    private static let verifyReasons: [Int: String] = [
        2: "unable to get issuer certificate", 9: "certificate is not yet valid", 10: "certificate has expired",
        18: "self-signed certificate", 19: "self-signed certificate in certificate chain",
        20: "unable to get local issuer certificate", 21: "unable to verify the first certificate",
        23: "certificate revoked", 26: "unsupported certificate purpose", 62: "hostname mismatch",
    ]

    private func verificationMessage() -> String {
        let host = target.authority
        var reason = curlText
        for prefix in ["SSL certificate problem: ", "SSL: "] where reason.hasPrefix(prefix) {
            reason = String(reason.dropFirst(prefix.count))
        }
        // 1 (X509_V_ERR_UNSPECIFIED) is what a failed host name check leaves: libcurl's text says it better.
        if verifyResult > 1 {
            let known = Self.verifyReasons[verifyResult].map { ": \($0)" } ?? ""
            reason += " (X509 verify result \(verifyResult)\(known))"
        }
        let text = curlText.lowercased()
        if verifyResult == 62 || text.contains("subject name") || text.contains("does not match target host") {
            return "the server's certificate is not valid for \(target.host): \(reason); use a host name in "
                + "TELEMETRY_ENDPOINT that the certificate was issued for, or reissue the certificate to include "
                + "\(target.host)"
        }
        if verifyResult == 9 || verifyResult == 10 || text.contains("expired") || text.contains("not yet valid") {
            return "the server's certificate is expired or not yet valid: \(reason); renew it, or check this "
                + "machine's clock"
        }
        if code == CURLE_SSL_PINNEDPUBKEYNOTMATCH || code == CURLE_SSL_INVALIDCERTSTATUS {
            return "the server's certificate from \(host) was refused: \(reason)"
        }
        let caAdvice = settings.caFile.map {
            "; TELEMETRY_CA_FILE (\($0)) does not hold the CA that signed it: set it to that CA"
        } ?? "; set TELEMETRY_CA_FILE to the CA that signed it"
        return "the server's certificate is not trusted: \(reason)\(caAdvice)"
    }
}
