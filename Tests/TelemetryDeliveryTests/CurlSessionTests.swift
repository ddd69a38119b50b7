import Foundation
import Testing
@testable import TelemetryDelivery

#if canImport(Glibc)
import Glibc
#endif

// CurlSession against tests/receiver/receiver.py on 127.0.0.1 (see ReceiverSupport.swift). The suite is
// serialized: its tests block their thread in libcurl (up to a few seconds for the timeout ones), and one
// of them sets proxy variables in the process environment.

private let secret = "s3cr3t-token-9f8e7d6c5b4a"

private func authorizedHeaders(_ extra: [(String, String)] = []) -> [(name: String, value: String)] {
    ([("Content-Type", "application/json"), ("Authorization", "Bearer \(secret)")] + extra)
        .map { (name: $0.0, value: $0.1) }
}

private func session(_ receiver: TestReceiver? = nil, ca: Bool = true, clientCertificate: Bool = false,
                     connectTimeout: Double = 5, requestTimeout: Double = 10) throws -> CurlSession {
    try CurlSession(settings: HTTPSettings(
        caFile: ca ? receiver?.caFile : nil,
        clientCertificate: clientCertificate ? receiver?.clientCertificate : nil,
        clientKey: clientCertificate ? receiver?.clientKey : nil,
        connectTimeoutSeconds: connectTimeout, requestTimeoutSeconds: requestTimeout, userAgent: "telemetryd/test"))
}

private func post(_ session: CurlSession, _ url: String, _ body: [UInt8] = Array("{\"n\":1}".utf8),
                  headers: [(name: String, value: String)] = authorizedHeaders(),
                  timeout: Double? = nil) -> Result<HTTPResponse, HTTPFailure> {
    session.post(HTTPRequest(url: url, body: body, headers: headers, timeoutSeconds: timeout))
}

/// The failure of `result`, recording an issue when it succeeded. Also checks the secret never shows.
private func expectFailure(_ result: Result<HTTPResponse, HTTPFailure>, _ kind: HTTPFailure.Kind,
                           sourceLocation: SourceLocation = #_sourceLocation) -> HTTPFailure? {
    switch result {
    case .success(let response):
        Issue.record("expected a \(kind) failure, got HTTP \(response.status)", sourceLocation: sourceLocation)
        return nil
    case .failure(let failure):
        if getenv("TELEMETRY_TEST_VERBOSE") != nil { print("[\(failure.curlCode)] \(failure)") }
        #expect(failure.kind == kind, "\(failure)", sourceLocation: sourceLocation)
        #expect(!failure.message.contains(secret) && !failure.description.contains(secret), sourceLocation: sourceLocation)
        return failure
    }
}

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite("CurlSession against a local HTTPS receiver", .serialized)
struct CurlSessionTests {
    // MARK: answers

    @Test("200: status, lowercased headers, body and timings captured; the gzip body arrives intact")
    func postsGzip() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        let plain = typicalExecutionBatch(approximateBytes: 50_000)
        let body = try PayloadCompressor.compress(plain, .gzip)
        let response = try post(session, receiver.url(), body,
                                headers: authorizedHeaders([("Content-Encoding", "gzip")])).get()
        #expect(response.status == 200)
        #expect(response.headers["x-receiver"] == "telemetry-test")
        #expect(response.headers["content-type"] == "application/json")
        #expect(response.headers["content-length"] == String(response.body.count))
        #expect(text(response.body).contains("\"accepted\": true"))
        #expect(response.httpVersion == "1.1")  // the receiver offers only http/1.1 in ALPN
        let timing = response.timing
        #expect(timing.total > 0 && timing.tlsHandshake > 0)
        #expect(timing.nameLookup <= timing.connect && timing.connect <= timing.tlsHandshake && timing.tlsHandshake <= timing.total)
        #expect(session.lastNewConnectionCount == 1)

        let seen = try receiver.requests()
        try #require(seen.count == 1)
        #expect(seen[0].method == "POST" && seen[0].path == "/v1/executions")
        #expect(seen[0].contentEncoding == "gzip" && seen[0].decodeError == nil)
        #expect(seen[0].rawSize == body.count)
        #expect(seen[0].body == plain)
        #expect(seen[0].headers["authorization"] == "Bearer \(secret)")
        #expect(seen[0].headers["user-agent"] == "telemetryd/test")
        #expect(seen[0].headers["content-type"] == "application/json")
        #expect(seen[0].headers["expect"] == nil)
    }

    @Test("zstd bodies arrive intact too; an empty body is a POST with Content-Length 0")
    func postsZstdAndEmpty() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        let plain = typicalExecutionBatch(approximateBytes: 20_000)
        let body = try PayloadCompressor.compress(plain, .zstd)
        #expect(try post(session, receiver.url(), body, headers: authorizedHeaders([("Content-Encoding", "zstd")])).get().status == 200)
        #expect(try post(session, receiver.url("/empty"), [], headers: []).get().status == 200)

        let seen = try receiver.requests()
        try #require(seen.count == 2)
        #expect(seen[0].contentEncoding == "zstd" && seen[0].decodeError == nil && seen[0].body == plain)
        #expect(seen[1].method == "POST" && seen[1].rawSize == 0 && seen[1].headers["content-length"] == "0")
        // Without a Content-Type from the caller, libcurl's form default is not sent either.
        #expect(seen[1].headers["content-type"] == nil)
    }

    @Test("one connection for consecutive requests (CURLINFO_NUM_CONNECTS 1, then 0)")
    func reusesTheConnection() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        #expect(try post(session, receiver.url()).get().status == 200)
        #expect(session.lastNewConnectionCount == 1)
        let second = try post(session, receiver.url()).get()
        #expect(second.status == 200)
        #expect(session.lastNewConnectionCount == 0)
        #expect(second.timing.tlsHandshake == 0 || second.timing.tlsHandshake < 0.01)
        let seen = try receiver.requests()
        try #require(seen.count == 2)
        #expect(seen[0].connection == seen[1].connection && seen[0].clientPort == seen[1].clientPort)
    }

    @Test("only the first 64 KiB of a large answer are kept, and the connection stays usable")
    func boundsTheResponseBody() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        try receiver.control(["mode": "status", "status": 200, "body_size": 200_000])
        let big = try post(session, receiver.url()).get()
        #expect(big.status == 200 && big.headers["content-length"] == "200000")
        #expect(big.body.count == CurlSession.responseBodyLimit)
        #expect(big.body.allSatisfy { $0 == UInt8(ascii: "x") })
        #expect(try post(session, receiver.url()).get().status == 200)
        #expect(session.lastNewConnectionCount == 0)
    }

    @Test("a 3 MiB body goes out at once (no Expect: 100-continue wait)")
    func largeBody() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        let body = typicalExecutionBatch(approximateBytes: 3 << 20)
        #expect(try post(session, receiver.url(), body).get().status == 200)
        // With "Expect: 100-continue" libcurl would wait for the server's go-ahead (up to 1 s) first.
        let seen = try receiver.requests()
        #expect(seen.first?.body == body && seen.first?.headers["expect"] == nil)
    }

    @Test("503 twice with Retry-After captured, then 200; a 400's body is captured for the log")
    func errorStatuses() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        try receiver.control(["mode": "status", "status": 503, "count": 2, "retry_after": "1"])
        for _ in 0..<2 {
            let response = try post(session, receiver.url()).get()
            #expect(response.status == 503)
            #expect(response.headers["retry-after"] == "1")
        }
        #expect(try post(session, receiver.url()).get().status == 200)
        #expect(session.lastNewConnectionCount == 0)  // error answers keep the connection

        try receiver.control(["mode": "status", "status": 400, "body": "bad schema"])
        let rejected = try post(session, receiver.url()).get()
        #expect(rejected.status == 400 && text(rejected.body) == "bad schema")
    }

    @Test("a slow answer within the timeout is an answer")
    func slowAnswer() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver, requestTimeout: 5)
        try receiver.control(["mode": "slow", "seconds": 1])
        let response = try post(session, receiver.url()).get()
        #expect(response.status == 200 && response.timing.total >= 1)
    }

    @Test("plain HTTP on loopback works (http:// URL)")
    func plainHTTP() throws {
        let receiver = try TestReceiver(.http)
        let session = try session(receiver)
        let response = try post(session, receiver.url()).get()
        #expect(response.status == 200 && response.httpVersion == "1.1" && response.timing.tlsHandshake == 0)
    }

    // MARK: TLS

    @Test("untrusted certificate (no CA file: the system's CAs) → tlsVerification, saying to set TELEMETRY_CA_FILE")
    func untrustedCertificate() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver, ca: false)
        let failure = try #require(expectFailure(post(session, receiver.url()), .tlsVerification))
        #expect(failure.curlCode == 60)
        #expect(failure.message.hasPrefix("the server's certificate is not trusted: "))
        #expect(failure.message.contains("unable to get local issuer certificate"))
        #expect(failure.message.contains("(X509 verify result 20: unable to get local issuer certificate)"))
        #expect(failure.message.hasSuffix("set TELEMETRY_CA_FILE to the CA that signed it"))
        #expect(try receiver.requests().isEmpty)
    }

    @Test("a CA file that did not sign the server's certificate → tlsVerification naming the file")
    func wrongCAFile() throws {
        let receiver = try TestReceiver()
        let session = try CurlSession(settings: HTTPSettings(caFile: receiver.clientCA, userAgent: "t"))
        let failure = try #require(expectFailure(post(session, receiver.url()), .tlsVerification))
        #expect(failure.message.contains("TELEMETRY_CA_FILE (\(receiver.clientCA)) does not hold the CA that signed it"))
    }

    @Test("certificate for another host name (example.invalid, reached as 127.0.0.1) → tlsVerification")
    func wrongHostName() throws {
        let receiver = try TestReceiver(serverNames: ["example.invalid"])
        let session = try session(receiver)
        let failure = try #require(expectFailure(post(session, receiver.url()), .tlsVerification))
        #expect(failure.curlCode == 60)
        #expect(failure.message.hasPrefix("the server's certificate is not valid for 127.0.0.1: "))
        #expect(failure.message.contains("no alternative certificate subject name matches target host name '127.0.0.1'"))
    }

    @Test("mTLS: without a client certificate → tls (the TLS 1.3 alert arrives as a receive error); with it → 200")
    func mutualTLS() throws {
        let receiver = try TestReceiver(.requireClientCert)
        let without = try session(receiver)
        let failure = try #require(expectFailure(post(without, receiver.url()), .tls))
        // OpenSSL 3 + TLS 1.3: the client finishes its handshake before the server checks for a certificate,
        // so libcurl sees the server's "certificate required" alert on its first read: CURLE_RECV_ERROR (56).
        #expect(failure.curlCode == 56)
        #expect(failure.message.contains("certificate required"))
        #expect(failure.message.hasSuffix(CurlFailureContext.clientCertificateHint))
        // The receiver logs the refused handshake from its own thread: give it a moment under load.
        var logged = false
        for _ in 0..<40 where !logged {
            logged = receiver.tlsErrors().contains { $0.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") }
            if !logged { usleep(50_000) }
        }
        #expect(logged, "the receiver saw no handshake without a client certificate")

        let with = try session(receiver, clientCertificate: true)
        #expect(try post(with, receiver.url()).get().status == 200)
        let seen = try receiver.requests()
        #expect(seen.count == 1 && seen.first?.clientCertSubject == "commonName=telemetryd test client")
    }

    @Test("mTLS with a client certificate the server does not trust → tls, saying so")
    func untrustedClientCertificate() throws {
        let receiver = try TestReceiver(.requireClientCert)
        let other = try TestReceiver()  // its client certificate comes from another client CA
        let session = try CurlSession(settings: HTTPSettings(caFile: receiver.caFile, clientCertificate: other.clientCertificate,
                                                             clientKey: other.clientKey, userAgent: "t"))
        let failure = try #require(expectFailure(post(session, receiver.url()), .tls))
        #expect(failure.curlCode == 56 && failure.message.contains("alert unknown ca"))
        #expect(failure.message.contains("did not accept our client certificate"))
    }

    @Test("https:// to a plain HTTP port → tls, saying the port may not speak TLS")
    func httpsToPlainPort() throws {
        let receiver = try TestReceiver(.http)
        let session = try session(receiver)
        let failure = try #require(expectFailure(post(session, "https://127.0.0.1:\(receiver.port)/"), .tls))
        #expect(failure.curlCode == 35)
        #expect(failure.message.contains("the port may not speak TLS"))
    }

    // MARK: connection failures

    @Test("connection refused (closed port) → connect")
    func connectionRefused() throws {
        let port = try closedLoopbackPort()
        let failure = try #require(expectFailure(post(try session(), "https://127.0.0.1:\(port)/v1"), .connect))
        #expect(failure.curlCode == 7)
        #expect(failure.message.hasPrefix("could not connect to 127.0.0.1:\(port) ("))
        #expect(failure.message.contains("Connection refused"))
    }

    @Test("a host name that does not resolve (.invalid) → nameResolution")
    func nameResolution() throws {
        let failure = try #require(expectFailure(post(try session(), "https://nonexistent.invalid/"), .nameResolution))
        #expect(failure.curlCode == 6)
        #expect(failure.message.contains("could not resolve the host name nonexistent.invalid"))
    }

    @Test("no answer within the request timeout (1 s) → timeout after about 1 s, saying it was the request")
    func requestTimeout() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver, requestTimeout: 1)
        try receiver.control(["mode": "hang", "seconds": 5])
        let start = receiverClock()
        let failure = try #require(expectFailure(post(session, receiver.url()), .timeout))
        let elapsed = receiverClock() - start
        #expect(elapsed >= 0.9 && elapsed < 2.5, "\(elapsed) s")
        #expect(failure.curlCode == 28)
        #expect(failure.message.hasPrefix("127.0.0.1:\(receiver.port) did not answer within the request timeout of 1 s"))
        #expect(failure.timing.total >= 0.9)
    }

    @Test("a request's own shorter timeout wins over the session's")
    func perRequestTimeout() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver, requestTimeout: 30)
        try receiver.control(["mode": "hang", "seconds": 5])
        let start = receiverClock()
        let failure = try #require(expectFailure(post(session, receiver.url(), timeout: 1), .timeout))
        #expect(receiverClock() - start < 2.5)
        #expect(failure.message.contains("within the request timeout of 1 s"))
        // The next request has the session's bound again (and a new connection: the timed-out one is closed).
        #expect(try post(session, receiver.url()).get().status == 200)
    }

    @Test("a TLS handshake that never completes → timeout after the connect timeout, saying so")
    func handshakeTimeout() throws {
        let listener = try SilentListener()
        let session = try session(connectTimeout: 1, requestTimeout: 10)
        let start = receiverClock()
        let failure = try #require(expectFailure(post(session, "https://127.0.0.1:\(listener.port)/"), .timeout))
        let elapsed = receiverClock() - start
        #expect(elapsed >= 0.9 && elapsed < 2.5, "\(elapsed) s")
        #expect(failure.message.hasPrefix("the TLS handshake with 127.0.0.1:\(listener.port) timed out (connect timeout 1 s"))
    }

    @Test("the server resets the connection → connectionLost")
    func reset() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        try receiver.control(["mode": "reset"])
        let failure = try #require(expectFailure(post(session, receiver.url()), .connectionLost))
        #expect(failure.curlCode == 56)
        #expect(failure.message.contains("Connection reset by peer"))
        #expect(try post(session, receiver.url()).get().status == 200)  // and the session goes on
        #expect(try receiver.requests().map(\.action) == ["reset", "normal"])
    }

    @Test("a reset while the body is still being sent → connectionLost, and no SIGPIPE kills the process")
    func resetDuringUpload() throws {
        // Whether this process ignores SIGPIPE (the daemon does; the test runner may not): SigIgn in
        // /proc/self/status is a hex mask, SIGPIPE is signal 13.
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let ignored = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }
            .flatMap { UInt64($0.dropFirst("SigIgn:".count).curlTrimmed, radix: 16) }
            .map { $0 & (1 << (13 - 1)) != 0 }
        if getenv("TELEMETRY_TEST_VERBOSE") != nil { print("SIGPIPE ignored by the test process: \(String(describing: ignored))") }

        let receiver = try TestReceiver()
        let session = try session(receiver)
        try receiver.control(["mode": "reset_before_body"])
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 32 << 20)
        let failure = try #require(expectFailure(post(session, receiver.url(), body), .connectionLost))
        // libcurl sends with MSG_NOSIGNAL (OpenSSL's writes go through it too): EPIPE/ECONNRESET is an error.
        #expect(failure.curlCode == 55 || failure.curlCode == 56)
        #expect(try post(session, receiver.url()).get().status == 200)
    }

    @Test("the server closes without answering → connectionLost (empty reply) on a new connection")
    func closedWithoutAnswer() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        try receiver.control(["mode": "close"])
        let failure = try #require(expectFailure(post(session, receiver.url()), .connectionLost))
        #expect(failure.curlCode == 52)
        #expect(failure.message.hasPrefix("127.0.0.1:\(receiver.port) closed the connection without answering"))
    }

    @Test("a kept connection closed without an answer: libcurl itself sends the request again on a new one")
    func closedKeptConnectionIsRetriedByLibcurl() throws {
        let receiver = try TestReceiver()
        let session = try session(receiver)
        #expect(try post(session, receiver.url()).get().status == 200)
        try receiver.control(["mode": "close"])
        // libcurl treats "nothing at all came back on a reused connection" as a stale keep-alive connection
        // and retries once, transparently: the server got the request twice.
        #expect(try post(session, receiver.url()).get().status == 200)
        #expect(session.lastNewConnectionCount == 1)
        #expect(try receiver.requests().map(\.action) == ["normal", "close", "normal"])
    }

    // MARK: configuration

    @Test("unusable settings fail at init with configuration, naming the variable")
    func badSettings() throws {
        func initFailure(_ settings: HTTPSettings) -> HTTPFailure? {
            do {
                _ = try CurlSession(settings: settings)
                return nil
            } catch {
                return error
            }
        }
        let missing = try #require(initFailure(HTTPSettings(caFile: "/nonexistent/ca.pem", userAgent: "t")))
        #expect(missing.kind == .configuration)
        #expect(missing.message.hasPrefix("TELEMETRY_CA_FILE is /nonexistent/ca.pem, which cannot be opened: No such file or directory"))
        let directory = try #require(initFailure(HTTPSettings(caFile: "/tmp", userAgent: "t")))
        #expect(directory.message.contains("which is a directory"))
        let keyOnly = try #require(initFailure(HTTPSettings(clientKey: "/etc/hostname", userAgent: "t")))
        #expect(keyOnly.kind == .configuration && keyOnly.message.contains("TELEMETRY_CLIENT_CERT is not"))
        let zero = try #require(initFailure(HTTPSettings(requestTimeoutSeconds: 0, userAgent: "t")))
        #expect(zero.kind == .configuration && zero.message.contains("request timeout"))
    }

    @Test("unusable URLs, headers and certificate files fail the request with configuration")
    func badRequests() throws {
        let session = try session()
        let malformed = try #require(expectFailure(post(session, "https://exa mple.com/?key=\(secret)"), .configuration))
        #expect(malformed.message.contains("the endpoint URL is not valid"))
        let noScheme = try #require(expectFailure(post(session, "collector.example.com/v1"), .configuration))
        #expect(noScheme.message.contains("TELEMETRY_ENDPOINT must look like https://"))
        let ftp = try #require(expectFailure(post(session, "ftp://127.0.0.1/upload"), .configuration))
        #expect(ftp.curlCode == 1 && ftp.message.contains("must start with https://"))
        let file = try #require(expectFailure(post(session, "file:///etc/passwd"), .configuration))
        #expect(file.curlCode == 1)
        let badName = try #require(expectFailure(post(session, "https://127.0.0.1:1/", headers: [(name: "Bad Name", value: "x")]),
                                                 .configuration))
        #expect(badName.message.contains("header name is not valid"))
        let injected = try #require(expectFailure(
            post(session, "https://127.0.0.1:1/", headers: [(name: "Authorization", value: "Bearer \(secret)\r\nX-Evil: 1")]),
            .configuration))
        #expect(injected.message == "the value of request header Authorization contains a line break or NUL; it was not sent")

        // Files that exist but are not PEM: libcurl's CURLE_SSL_CACERT_BADFILE (77) and CURLE_SSL_CERTPROBLEM (58).
        let receiver = try TestReceiver()
        let garbage = receiver.directory + "/garbage.pem"
        try Data("not a certificate\n".utf8).write(to: URL(fileURLWithPath: garbage))
        let badCA = try CurlSession(settings: HTTPSettings(caFile: garbage, userAgent: "t"))
        let ca = try #require(expectFailure(post(badCA, receiver.url()), .configuration))
        #expect(ca.curlCode == 77 && ca.message.contains("set TELEMETRY_CA_FILE to a PEM file"))
        let badCert = try CurlSession(settings: HTTPSettings(caFile: receiver.caFile, clientCertificate: garbage,
                                                             clientKey: receiver.clientKey, userAgent: "t"))
        let cert = try #require(expectFailure(post(badCert, receiver.url()), .configuration))
        #expect(cert.curlCode == 58 && cert.message.contains("TELEMETRY_CLIENT_CERT and TELEMETRY_CLIENT_KEY"))
    }

    // MARK: secrets

    @Test("the Authorization value, URL passwords and query values never appear in a failure")
    func noSecretsInFailures() throws {
        let receiver = try TestReceiver()
        let closed = try closedLoopbackPort()
        let trusting = try session(receiver, requestTimeout: 1)
        let untrusting = try session(receiver, ca: false)
        let urlSecret = "pw-\(secret)"
        var failures: [HTTPFailure] = []
        func collect(_ result: Result<HTTPResponse, HTTPFailure>) {
            if case .failure(let failure) = result { failures.append(failure) } else { Issue.record("expected a failure") }
        }
        collect(post(untrusting, receiver.url()))
        collect(post(trusting, "https://user:\(urlSecret)@127.0.0.1:\(closed)/v1?api_key=\(urlSecret)"))
        collect(post(trusting, "https://user:\(urlSecret)@nonexistent.invalid/v1"))
        try receiver.control(["mode": "reset"])
        collect(post(trusting, receiver.url("/v1?token=\(urlSecret)")))
        try receiver.control(["mode": "hang", "seconds": 3])
        collect(post(trusting, receiver.url()))
        collect(post(trusting, "https://127.0.0.1:\(receiver.port)/\u{0}?key=\(urlSecret)"))
        collect(post(trusting, receiver.url(), headers: [(name: "X-Api-Key", value: "\(secret)\n")]))
        #expect(failures.count == 7)
        for failure in failures {
            #expect(!failure.message.contains(secret) && !failure.description.contains(secret), "\(failure)")
        }
        // The safety net under that: libcurl's own text passes through `redact` before it reaches a message.
        let request = HTTPRequest(url: "https://u:\(urlSecret)@h/?k=\(urlSecret)", body: [],
                                  headers: [(name: "Authorization", value: "Bearer \(secret)")])
        let redacted = CurlSession.redact("sent Bearer \(secret) and \(urlSecret)", CurlSession.secrets(of: request))
        #expect(redacted == "sent <redacted> and <redacted>")
    }

    // MARK: proxy

    @Test("HTTPS_PROXY and NO_PROXY from the environment are honoured (CONNECT tunnel, end-to-end TLS)")
    func proxyFromEnvironment() throws {
        // The target's certificate also names proxied.invalid, a name only the proxy "resolves" (it tunnels
        // every CONNECT to the target): so a request to it can only succeed through the proxy.
        let target = try TestReceiver(serverNames: ["127.0.0.1", "localhost", "proxied.invalid"])
        let proxy = try TestReceiver(.http, tunnelTo: "127.0.0.1:\(target.port)")
        let names = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"]
        let saved = names.map { ($0, getenv($0).map { String(cString: $0) }) }
        defer {
            for (name, value) in saved {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        for name in names { unsetenv(name) }
        setenv("HTTPS_PROXY", "http://127.0.0.1:\(proxy.port)", 1)
        // Loopback stays direct, so other tests that run meanwhile are not affected.
        setenv("NO_PROXY", "127.0.0.1,localhost", 1)

        let session = try session(target)
        let proxied = try post(session, "https://proxied.invalid:\(target.port)/v1/executions").get()
        #expect(proxied.status == 200)
        #expect(proxied.headers["x-receiver"] == "telemetry-test")  // the target's headers, not the proxy's
        let tunnels = try proxy.requests()
        #expect(tunnels.map(\.method) == ["CONNECT"] && tunnels.first?.path == "proxied.invalid:\(target.port)")

        #expect(try post(session, target.url()).get().status == 200)
        #expect(try proxy.requests().count == 1)  // 127.0.0.1 is in NO_PROXY: straight to the target
        #expect(try target.requests().map(\.headers["host"]) == ["proxied.invalid:\(target.port)", "127.0.0.1:\(target.port)"])
    }
}
