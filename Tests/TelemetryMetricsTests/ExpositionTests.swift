import Foundation
import Testing
import TelemetryCore
import TelemetryDelivery
@testable import TelemetryMetrics
import TelemetryWire

/// Seconds since the epoch as a Timestamp.
func at(_ seconds: Double) -> Timestamp { Timestamp(microseconds: Int64(seconds * 1_000_000)) }

func outcome(_ script: String, _ environment: String, _ status: ExecutionStatus, duration: Double?,
             metrics: [String: Double] = [:], completedAt: Double = 1_732_870_000) -> ExecutionOutcome {
    ExecutionOutcome(scriptName: script, environment: environment, status: status, durationSeconds: duration,
                     metrics: metrics, completedAt: at(completedAt))
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// The package's root directory (this file is Tests/TelemetryMetricsTests/…).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A daemon snapshot with a value in every field, so that the golden text shows where each one goes.
func knownSnapshot() -> CollectorSnapshot {
    var snapshot = CollectorSnapshot()
    snapshot.eventsAccepted = 40
    snapshot.eventsRejected = [.notJSON: 3, .storeFull: 1]
    snapshot.eventsDropped = 2
    snapshot.bytesReceived = 8_192
    snapshot.connectionsOpen = 1
    snapshot.connectionsTotal = 9
    snapshot.connectionsRefused = 0
    snapshot.openExecutions = 2
    snapshot.documentsStored = 4
    snapshot.commits = 7
    snapshot.commitFailures = 1
    snapshot.storeFailing = true
    snapshot.storeLimitBytes = 1 << 30
    snapshot.retentionSeconds = 30 * 86_400
    snapshot.store = StoreFigures(usedBytes: 65_536, fileBytes: 98_304, documents: 4, journalBytes: 512,
                                  deadLetterBatches: 1, deadLetterDocuments: 3)
    var delivery = DeliveryStatus()
    delivery.state = .retrying
    delivery.pendingDocuments = 5
    delivery.batchesDelivered = 2
    delivery.documentsDelivered = 6
    delivery.failedAttempts = ["http_503": 2, "timeout": 1]
    delivery.retries = 3
    delivery.batchesDeadLettered = 1
    delivery.lastSuccessAt = at(1_732_869_990.5)
    snapshot.delivery = delivery
    snapshot.process = ProcessFigures(cpuSeconds: 1.25, residentBytes: 12_582_912, virtualBytes: 104_857_600,
                                      openFileDescriptors: 11, maxFileDescriptors: 1_024,
                                      startTimeSeconds: 1_732_869_000)
    return snapshot
}

@Suite("Prometheus exposition")
struct ExpositionTests {
    @Test("known executions and daemon figures give exactly the golden exposition")
    func golden() throws {
        let exporter = MetricsExporter(version: "1.2.3", limits: MetricLabelLimits(maxScripts: 2, maxEnvironments: 2,
                                                                                   maxMetricNames: 3))
        exporter.record([
            // The seed's example execution: its library metrics become base-unit gauges, the rest script_metric.
            outcome("deploy-service", "production", .success, duration: 120.5, metrics: [
                "execution_time": 120.5, "memory_usage": 256.7, "cpu_usage": 45.2, "disk_usage": 1024,
                "network_usage": 0.5, "services_deployed": 5, "users_created": 100,
            ], completedAt: 1_732_870_000),
            // A later failure replaces the last-value gauges and adds to both counters and the histogram.
            outcome("deploy-service", "production", .failure, duration: 400, metrics: ["services_deployed": 3],
                    completedAt: 1_732_870_500),
            // No environment and no end line: environment "unknown", status incomplete, no duration.
            outcome("backup", "", .incomplete, duration: nil, metrics: ["rows": 7, "zz_extra": 1]),
            // Over the caps (2 scripts, 2 environments, 3 names): folded into "other", and counted.
            outcome("cleanup", "production", .success, duration: 0.25, metrics: ["files": 12]),
            outcome("backup", "staging", .success, duration: 3, completedAt: 1_732_870_100),
        ])
        exporter.observeDelivery(seconds: 0.2)
        exporter.observeDelivery(seconds: 1.5)
        exporter.observeFsync(seconds: 0.003)
        exporter.observeFsync(seconds: 0.3)
        let rendered = text(exporter.render(knownSnapshot()))

        let goldenURL = packageRoot.appendingPathComponent("Tests/TelemetryMetricsTests/Golden/exposition.prom")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try rendered.write(to: goldenURL, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOf: goldenURL, encoding: .utf8)
        #expect(rendered == golden, "the exposition changed; review the diff and run with UPDATE_GOLDEN=1 to accept it")
        if rendered != golden {
            let renderedLines = rendered.split(separator: "\n"), goldenLines = golden.split(separator: "\n")
            for (index, pair) in zip(renderedLines, goldenLines).enumerated() where pair.0 != pair.1 {
                Issue.record("first difference at line \(index + 1):\n  got:  \(pair.0)\n  want: \(pair.1)")
                break
            }
        }
    }

    @Test("the order is stable: two processes' registries (random dictionary order) render the same bytes")
    func stableOrder() {
        func render() -> [UInt8] {
            let exporter = MetricsExporter(version: "v", limits: MetricLabelLimits())
            for index in 0..<20 {
                exporter.record([outcome("script-\(index)", index.isMultiple(of: 2) ? "a" : "b", .success, duration: 1,
                                         metrics: ["m\(index)": Double(index)])])
            }
            return exporter.render(CollectorSnapshot())
        }
        let first = render()
        #expect(first == render())
        #expect(first == ExpositionOrder.sorted(first), "sorting is idempotent")
    }

    @Test("sorting keeps each histogram series together, buckets in order, and families behind their HELP and TYPE")
    func sortingKeepsHistograms() {
        let input = """
        # HELP z_total Z.
        # TYPE z_total counter
        z_total{a="2"} 1
        z_total{a="1"} 2
        # HELP h_seconds H.
        # TYPE h_seconds histogram
        h_seconds_bucket{s="b",le="1.0"} 1
        h_seconds_bucket{s="b",le="+Inf"} 1
        h_seconds_sum{s="b"} 0.5
        h_seconds_count{s="b"} 1
        h_seconds_bucket{s="a",le="1.0"} 0
        h_seconds_bucket{s="a",le="+Inf"} 2
        h_seconds_sum{s="a"} 4.0
        h_seconds_count{s="a"} 2

        """
        let expected = """
        # HELP h_seconds H.
        # TYPE h_seconds histogram
        h_seconds_bucket{s="a",le="1.0"} 0
        h_seconds_bucket{s="a",le="+Inf"} 2
        h_seconds_sum{s="a"} 4.0
        h_seconds_count{s="a"} 2
        h_seconds_bucket{s="b",le="1.0"} 1
        h_seconds_bucket{s="b",le="+Inf"} 1
        h_seconds_sum{s="b"} 0.5
        h_seconds_count{s="b"} 1
        # HELP z_total Z.
        # TYPE z_total counter
        z_total{a="1"} 2
        z_total{a="2"} 1

        """
        #expect(text(ExpositionOrder.sorted(Array(input.utf8))) == expected)
    }

    @Test("label values are escaped: backslash, double quote and line feed")
    func escaping() {
        let exporter = MetricsExporter(version: "v", limits: MetricLabelLimits())
        exporter.record([outcome("say \"hi\"\\\nnow", "prod", .success, duration: 1)])
        let output = text(exporter.render(CollectorSnapshot()))
        #expect(output.contains(#"script_failures_total{script="say \"hi\"\\\nnow",environment="prod"} 0"#), "\(output)")
    }

    @Test("counters copied from the daemon follow its counts, and the failure counter exists at 0 before a failure")
    func countersFollowTheDaemon() {
        let exporter = MetricsExporter(version: "v", limits: MetricLabelLimits())
        exporter.record([outcome("job", "prod", .success, duration: 1)])
        var snapshot = CollectorSnapshot()
        snapshot.eventsAccepted = 10
        snapshot.eventsRejected = [.tooLong: 1]
        var output = text(exporter.render(snapshot))
        #expect(output.contains("\nscript_failures_total{script=\"job\",environment=\"prod\"} 0\n"))
        #expect(output.contains("\ntelemetryd_events_received_total 11\n"))
        #expect(output.contains("\ntelemetryd_events_rejected_total{reason=\"too_long\"} 1\n"))
        #expect(output.contains("\ntelemetryd_events_rejected_total{reason=\"store_full\"} 0\n"), "every reason exists from the start")
        #expect(output.contains("\ntelemetryd_delivery_enabled 0.0\n"))
        #expect(output.contains("\ntelemetryd_delivery_state{state=\"idle\"} 0.0\n"), "no state is current without forwarding")

        exporter.record([outcome("job", "prod", .failure, duration: 2)])
        snapshot.eventsAccepted = 25
        output = text(exporter.render(snapshot))
        #expect(output.contains("\nscript_failures_total{script=\"job\",environment=\"prod\"} 1\n"))
        #expect(output.contains("\ntelemetryd_events_received_total 26\n"))
        #expect(output.contains("\nscript_execution_time_seconds{script=\"job\",environment=\"prod\"} 2.0\n"))
    }
}

@Suite("Label caps")
struct LabelFolderTests {
    @Test("values are admitted first come, first served, up to the cap; later ones fold into other")
    func caps() {
        var folder = LabelFolder(limits: MetricLabelLimits(maxScripts: 2, maxEnvironments: 1, maxMetricNames: 2))
        #expect(folder.script("a") == ("a", false))
        #expect(folder.script("b") == ("b", false))
        #expect(folder.script("c") == ("other", true))
        #expect(folder.script("a") == ("a", false), "an admitted value keeps its series")
        #expect(folder.script("") == ("other", true), "an empty name is \"unknown\", which needs room too")
        #expect(folder.environment("") == ("unknown", false))
        #expect(folder.environment("prod") == ("other", true))
        #expect(folder.metricName("x", script: "a") == ("x", false))
        #expect(folder.metricName("x", script: "b") == ("x", false), "the cap counts (script, name) pairs")
        #expect(folder.metricName("y", script: "a") == ("other", true))
        #expect(folder.metricName("x", script: "a") == ("x", false))
    }

    @Test("the caps bound the series however many scripts, environments and names arrive")
    func boundedSeries() {
        let exporter = MetricsExporter(version: "v", limits: MetricLabelLimits(maxScripts: 3, maxEnvironments: 2,
                                                                               maxMetricNames: 4))
        for index in 0..<200 {
            exporter.record([outcome("s\(index)", "e\(index % 7)", .success, duration: 1,
                                     metrics: ["n\(index)": 1, "k\(index % 3)": 2])])
        }
        let output = text(exporter.render(CollectorSnapshot()))
        let scriptLabels = Set(output.split(separator: "\n").compactMap { line -> Substring? in
            guard line.hasPrefix("script_executions_total{") else { return nil }
            return line.split(separator: ",").first
        })
        #expect(scriptLabels.count == 4, "3 admitted scripts and other: \(scriptLabels)")
        let metricSeries = output.split(separator: "\n").filter { $0.hasPrefix("script_metric{") }
        // At most 4 admitted pairs, plus one "other" series per (script, environment) series: (3 + 1) × (2 + 1).
        #expect(metricSeries.count <= 4 + 4 * 3, "\(metricSeries.count) script_metric series")
        #expect(output.contains("telemetryd_metrics_folded_total{label=\"script\"} 197"))
        #expect(output.contains("telemetryd_metrics_label_values{label=\"script\"} 3.0"))
        #expect(output.contains("telemetryd_metrics_label_values{label=\"name\"} 4.0"))
    }
}

@Suite("Metric documentation")
struct MetricDocumentationTests {
    @Test("docs/metrics.md describes every family the daemon exports, with its type")
    func documented() throws {
        let docs = try String(contentsOf: packageRoot.appendingPathComponent("docs/metrics.md"), encoding: .utf8)
        let exporter = MetricsExporter(version: "v", limits: MetricLabelLimits())
        exporter.record([outcome("job", "prod", .success, duration: 1, metrics: ["m": 1])])
        var snapshot = knownSnapshot()
        snapshot.delivery?.failedAttempts = ["connect": 1]
        let output = text(exporter.render(snapshot))
        var families = 0
        for line in output.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            let (name, type) = (parts[2], parts[3])
            families += 1
            #expect(docs.contains("| `\(name)` | \(type) |"), "docs/metrics.md has no row for \(name) (\(type))")
        }
        #expect(families > 40)
    }
}
