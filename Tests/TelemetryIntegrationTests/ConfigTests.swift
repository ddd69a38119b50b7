// Configuration: `telemetryd --check-config` and a daemon refusing a bad configuration.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Configuration")
struct ConfigTests {
    @Test("the command line: --help and --version exit 0; an unknown option or a missing value is a usage error (exit 2) that says which")
    func commandLine() async throws {
        let help = try await telemetryd(["--help"])
        #expect(help.status == 0 && help.stdout.contains("--check-config") && help.stdout.contains("--state-dir"), "\(help)")
        let version = try await telemetryd(["--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("telemetryd "), "\(version)")
        let unknown = try await telemetryd(["--sokcet", "/tmp/x.sock"])
        #expect(unknown.status == 2 && unknown.stderr.contains("unknown option '--sokcet'"), "\(unknown)")
        let missing = try await telemetryd(["--state-dir"])
        #expect(missing.status == 2 && missing.stderr.contains("--state-dir needs a value"), "\(missing)")
        let stray = try await telemetryd(["start"])
        #expect(stray.status == 2 && stray.stderr.contains("unexpected argument 'start'"), "\(stray)")
        let printed = try await telemetryd(["--print-default-config"])
        #expect(printed.status == 0 && printed.stdout.contains("#TELEMETRY_SOCKET=/run/telemetryd/telemetryd.sock"), "\(printed)")
    }

    @Test("--check-config reports FILE:LINE: KEY: for each bad line and exits non-zero")
    func badFile() async throws {
        let dir = try TempDir("cfgbad")
        defer { dir.remove() }
        let file = try dir.write("bad.conf", """
            # telemetryd test configuration
            TELEMETRY_MAX_LINE_BYTES=abc
            TELEMETRY_SOCKET=relative/path.sock

            TELEMETRY_STORE_SYNC=sometimes
            TELEMETRY_COMMIT_INTERVAL_MS=5
            TELEMETRY_SOCKT=/tmp/x.sock
            TELEMETRY_ENABLED=maybe
            noequals
            TELEMETRY_RETENTION_DAYS=-1

            """)
        let result = try await telemetryd(["--check-config", "--config", file])
        #expect(result.status != 0, "\(result)")
        let output = result.stdout + result.stderr
        let expected = [(2, "TELEMETRY_MAX_LINE_BYTES"), (3, "TELEMETRY_SOCKET"), (5, "TELEMETRY_STORE_SYNC"),
                        (7, "TELEMETRY_SOCKT"), (8, "TELEMETRY_ENABLED"), (10, "TELEMETRY_RETENTION_DAYS")]
        for (line, key) in expected {
            #expect(output.contains("\(file):\(line): \(key): "), "no problem reported for line \(line) (\(key)):\n\(output)")
        }
        #expect(output.contains("\(file):9: "), "the line without '=' is reported:\n\(output)")
        #expect(output.contains("did you mean TELEMETRY_SOCKET?"), "\(output)")
        #expect(output.contains("abc"), "the offending value is shown:\n\(output)")
        for line in [1, 4, 6] {
            #expect(!output.contains("\(file):\(line):"), "line \(line) is fine:\n\(output)")
        }
        let problemLines = output.split(separator: "\n").filter { $0.hasPrefix(file + ":") }
        #expect(problemLines.count == 7, "\(output)")
    }

    @Test("--check-config accepts a good file, exits 0 and shows the effective values with their precedence")
    func goodFile() async throws {
        let dir = try TempDir("cfgok")
        defer { dir.remove() }
        let file = try dir.write("good.conf", """
            # comment
            ; another comment
            TELEMETRY_MAX_LINE_BYTES=2048
            TELEMETRY_RETENTION_DAYS=3
            TELEMETRY_HOSTNAME="web-01"
            TELEMETRY_ENVIRONMENT=production

            """)
        let result = try await telemetryd(["--check-config", "--config", file, "--socket", dir.file("flag.sock")],
                                          environment: ["TELEMETRY_RETENTION_DAYS": "7"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("configuration OK"), "\(result)")
        #expect(result.stdout.contains("TELEMETRY_MAX_LINE_BYTES=2048"), "\(result)")
        #expect(result.stdout.contains("TELEMETRY_HOSTNAME=web-01"), "\(result)")
        #expect(result.stdout.contains("TELEMETRY_RETENTION_DAYS=7"), "the environment overrides the file: \(result)")
        #expect(result.stdout.contains("TELEMETRY_SOCKET=\(dir.file("flag.sock"))"), "a flag overrides everything: \(result)")
        #expect(!result.stderr.contains("error"), "\(result)")
        #expect(!RawClient.canConnect(dir.file("flag.sock")) && fileInfo(dir.file("flag.sock")) == nil,
                "--check-config does not start the daemon")
    }

    @Test("an unknown TELEMETRY_ key suggests the right one (a warning in the environment, an error in the file)")
    func unknownKeySuggestion() async throws {
        let dir = try TempDir("cfgkey")
        defer { dir.remove() }
        let good = try dir.write("good.conf", "TELEMETRY_MAX_LINE_BYTES=4096\n")
        let fromEnvironment = try await telemetryd(["--check-config", "--config", good],
                                                   environment: ["TELEMETRY_MAX_LINE_BYTE": "1024"])
        #expect(fromEnvironment.status == 0, "an unknown environment variable is only a warning: \(fromEnvironment)")
        #expect(fromEnvironment.stderr.contains("TELEMETRY_MAX_LINE_BYTE: "), "\(fromEnvironment)")
        #expect(fromEnvironment.stderr.contains("did you mean TELEMETRY_MAX_LINE_BYTES?"), "\(fromEnvironment)")

        let typo = try dir.write("typo.conf", "TELEMETRY_RETENTON_DAYS=5\n")
        let fromFile = try await telemetryd(["--check-config", "--config", typo])
        #expect(fromFile.status != 0, "\(fromFile)")
        #expect(fromFile.stderr.contains("\(typo):1: TELEMETRY_RETENTON_DAYS: "), "\(fromFile)")
        #expect(fromFile.stderr.contains("did you mean TELEMETRY_RETENTION_DAYS?"), "\(fromFile)")
    }

    @Test("a missing --config file is an error, for --check-config and for a start")
    func missingExplicitFile() async throws {
        let dir = try TempDir("cfgmis")
        defer { dir.remove() }
        let missing = dir.file("nope.conf")
        let check = try await telemetryd(["--check-config", "--config", missing])
        #expect(check.status != 0, "\(check)")
        #expect(check.stderr.contains(missing), "\(check)")

        let socket = dir.file("d.sock")
        let start = try await telemetryd(["--config", missing, "--socket", socket, "--state-dir", dir.file("state")])
        #expect(start.status != 0, "\(start)")
        #expect(start.stderr.contains(missing), "\(start)")
        #expect(fileInfo(socket) == nil, "a daemon with a bad configuration must not listen")
    }

    @Test("the daemon refuses to start with an invalid value and says how to check the configuration")
    func invalidValueStopsStart() async throws {
        let dir = try TempDir("cfgrun")
        defer { dir.remove() }
        let file = try dir.write("bad.conf", "TELEMETRY_COMMIT_INTERVAL_MS=0\n")
        let socket = dir.file("d.sock")
        let start = try await telemetryd(["--config", file, "--socket", socket, "--state-dir", dir.file("state")])
        #expect(start.status != 0, "\(start)")
        #expect(start.stderr.contains("\(file):1: TELEMETRY_COMMIT_INTERVAL_MS: "), "\(start)")
        #expect(start.stderr.contains("--check-config"), "\(start)")
        #expect(fileInfo(socket) == nil)

        let environment = try await telemetryd(["--config", try dir.write("ok.conf", ""), "--socket", socket,
                                                "--state-dir", dir.file("state")],
                                               environment: ["TELEMETRY_MAX_LINE_BYTES": "12"])
        #expect(environment.status != 0, "\(environment)")
        #expect(environment.stderr.contains("environment: TELEMETRY_MAX_LINE_BYTES: "), "\(environment)")
        #expect(fileInfo(socket) == nil)
    }
}
