import Testing
import TelemetryCore

#if canImport(Glibc)
import Glibc
#endif

private func configuration(_ assignments: [String: String]) -> DaemonConfiguration {
    ConfigurationLoader.load(flags: assignments, environment: [:], file: nil).configuration
}

@Suite("Reload plan")
struct ReloadPlanTests {
    @Test("delivery and logging keys apply live; intake and store keys wait for a restart")
    func splitsKeys() {
        let old = configuration(["TELEMETRY_ENDPOINT": "https://a.example.com/v1"])
        let new = configuration(["TELEMETRY_ENDPOINT": "https://b.example.com/v1", "TELEMETRY_BATCH_SIZE": "7",
                                 "TELEMETRY_LOG_LEVEL": "debug", "TELEMETRY_MAX_LINE_BYTES": "4096",
                                 "TELEMETRY_STATE_DIR": "/srv/telemetry", "TELEMETRY_API_KEY": "k2"])
        let plan = ReloadPlan(from: old, to: new)
        #expect(plan.appliedLive == ["TELEMETRY_ENDPOINT", "TELEMETRY_API_KEY", "TELEMETRY_BATCH_SIZE", "TELEMETRY_LOG_LEVEL"])
        #expect(plan.needRestart == ["TELEMETRY_MAX_LINE_BYTES", "TELEMETRY_STATE_DIR"])
    }

    @Test("turning forwarding on or off needs a restart; nothing changed is an empty plan")
    func forwardingSwitch() {
        let local = configuration([:])
        let forwarding = configuration(["TELEMETRY_ENDPOINT": "https://a.example.com/v1"])
        #expect(ReloadPlan(from: local, to: forwarding).needRestart == ["TELEMETRY_ENDPOINT"])
        #expect(ReloadPlan(from: forwarding, to: local).needRestart == ["TELEMETRY_ENDPOINT"])
        #expect(ReloadPlan(from: forwarding, to: forwarding).isEmpty)
    }

    @Test("a rotated key file counts as a change of TELEMETRY_API_KEY_FILE")
    func rotatedKeyFile() {
        let same = configuration(["TELEMETRY_API_KEY_FILE": "/run/credentials/telemetryd.service/api-key"])
        #expect(ReloadPlan(from: same, to: same, apiKeyContentChanged: true).appliedLive == ["TELEMETRY_API_KEY_FILE"])
    }
}

@Suite("Configuration source")
struct ConfigurationSourceTests {
    private func temporaryFile(_ contents: String) -> String {
        var template = Array("/tmp/telemetryd-conf-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let path = String(cString: template)
        _ = contents.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
        return path
    }

    private func rewrite(_ path: String, _ contents: String) {
        let descriptor = open(path, O_WRONLY | O_TRUNC)
        _ = contents.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
    }

    @Test("on reload the file's new values win over the copy EnvironmentFile= left in the environment; real overrides still win")
    func environmentFileCopy() {
        let path = temporaryFile("TELEMETRY_BATCH_SIZE=5\nTELEMETRY_FLUSH_INTERVAL=30\n")
        defer { unlink(path) }
        // systemd copied the file into the environment at start; TELEMETRY_RETRY_ATTEMPTS is a genuine override.
        let source = ConfigurationSource(flags: [:], environment: ["TELEMETRY_BATCH_SIZE": "5", "TELEMETRY_FLUSH_INTERVAL": "30",
                                                                   "TELEMETRY_RETRY_ATTEMPTS": "9"],
                                         filePath: path, filePathIsExplicit: true)
        let first = source.load()
        #expect(first.result.configuration.batchSize == 5)
        rewrite(path, "TELEMETRY_BATCH_SIZE=7\nTELEMETRY_RETRY_ATTEMPTS=1\n")
        let second = source.load(previous: first.file)
        #expect(second.result.isValid, "\(second.result.problems)")
        #expect(second.result.configuration.batchSize == 7)
        #expect(second.result.configuration.flushIntervalSeconds == 60, "removed from the file: back to the default")
        #expect(second.result.configuration.retryAttempts == 9, "an environment override that never came from the file stays")
    }

    @Test("a missing --config file is an error; a missing default file is not")
    func missingFile() {
        let explicit = ConfigurationSource(flags: [:], environment: [:], filePath: "/nonexistent/t.conf", filePathIsExplicit: true)
        #expect(!explicit.load().result.isValid)
        let implicit = ConfigurationSource(flags: [:], environment: [:], filePath: "/nonexistent/t.conf", filePathIsExplicit: false)
        #expect(implicit.load().result.isValid)
        #expect(implicit.load().file == nil)
    }
}
