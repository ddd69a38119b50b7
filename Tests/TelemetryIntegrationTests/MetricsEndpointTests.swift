// The metrics listener's configuration and start-up errors, against the real daemon. What it serves is
// checked with a real Prometheus in tests/prometheus/prometheus.bats.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Metrics listener")
struct MetricsEndpointTests {
    @Test("a bad TELEMETRY_METRICS_LISTEN is a configuration error that names the key, the value and the fix")
    func badListenValue() async throws {
        let dir = try TempDir("mbad")
        defer { dir.remove() }
        for value in ["9469", "example.com:9469", "127.0.0.1:70000", "::1:9469", "127.0.0.1:"] {
            let result = try await telemetryd(["--socket", dir.file("s.sock"), "--state-dir", dir.file("state")],
                                              environment: ["TELEMETRY_METRICS_LISTEN": value])
            #expect(result.status == 1, "\(value): \(result)")
            #expect(result.stderr.contains("TELEMETRY_METRICS_LISTEN"), "\(value): \(result)")
            #expect(result.stderr.contains("\"\(value)\""), "the value is quoted: \(result)")
            #expect(result.stderr.contains("such as 127.0.0.1:9469"), "\(value): \(result)")
        }
        let check = try await telemetryd(["--check-config"], environment: ["TELEMETRY_METRICS_LISTEN": "[::1]:9469"])
        #expect(check.status == 0, "\(check)")
        #expect(check.stdout.contains("TELEMETRY_METRICS_LISTEN=[::1]:9469"), "\(check)")
    }

    @Test("an address in use stops the start with an error that names TELEMETRY_METRICS_LISTEN")
    func addressInUse() async throws {
        // Hold a port, then ask the daemon for it.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) == 0 && listen(holder, 1) == 0
                && getsockname(holder, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))

        let dir = try TempDir("muse")
        defer { dir.remove() }
        let result = try await telemetryd(["--socket", dir.file("s.sock"), "--state-dir", dir.file("state")],
                                          environment: ["TELEMETRY_METRICS_LISTEN": "127.0.0.1:\(port)"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("cannot serve metrics on TELEMETRY_METRICS_LISTEN=127.0.0.1:\(port)"), "\(result)")
        #expect(result.stderr.contains("TELEMETRY_METRICS_LISTEN=off"), "says how to switch it off: \(result)")
        #expect(access(dir.file("s.sock"), F_OK) != 0 || !RawClient.canConnect(dir.file("s.sock")), "no socket accepts")
    }

    @Test("port 0 picks a free port, which the ready line shows; off shows off")
    func ephemeralPortAndOff() async throws {
        try await withDaemon(environment: ["TELEMETRY_METRICS_LISTEN": "127.0.0.1:0"], tag: "meph") { daemon in
            let line = try #require(daemon.stderr.split(separator: "\n").first { $0.contains(" ready") })
            #expect(line.contains("metrics=http://127.0.0.1:"), "\(line)")
            #expect(!line.contains("metrics=http://127.0.0.1:0/"), "\(line)")
        }
        try await withDaemon(tag: "moff") { daemon in
            #expect(daemon.stderr.contains("metrics=off"), "\(daemon.stderr)")
        }
    }
}
