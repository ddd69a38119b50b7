import Prometheus
import Synchronization
import TelemetryCore

/// The `script_*` families: completed executions aggregated per script and environment.
///
/// `record` runs on the ingest writer thread once per commit that stored documents, with the executions that
/// commit made durable; scrapes read the same registry concurrently (its counters and gauges are atomics).
/// The work per execution is a few dictionary lookups under one lock and atomic updates; a new series is
/// created only the first time a label value is seen.
final class ScriptMetrics: Sendable {
    /// Upper bounds of `script_execution_duration_seconds`: a second to two hours, with 300 s (the seed's
    /// ScriptExecutionTime threshold) as a boundary.
    static let durationBuckets: [Double] = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200]

    /// Metrics the bash library records at exit, exported as dedicated gauges in base units rather than as
    /// `script_metric` (where they would be a second copy in MB and %). `execution_time` is the duration.
    static let resourceMetrics: [(metric: String, family: String, toBaseUnit: @Sendable (Double) -> Double, help: String)] = [
        ("memory_usage", "script_memory_usage_bytes", mebibytesToBytes,
         "Peak memory of the last completed execution (memory_usage, sent in MiB), in bytes."),
        ("cpu_usage", "script_cpu_usage_ratio", { $0 / 100 },
         "CPU time of the last completed execution divided by its wall time (cpu_usage, sent in percent); 1 is one core."),
        ("disk_usage", "script_disk_io_bytes", mebibytesToBytes,
         "Bytes read and written on disk by the last completed execution (disk_usage, sent in MiB)."),
        ("network_usage", "script_network_io_bytes", mebibytesToBytes,
         "Bytes received and sent on the network namespace by the last completed execution (network_usage, sent in MiB)."),
    ]
    /// MiB (the library's "MB", 2^20 bytes, sent with one to three decimals) to whole bytes.
    static let mebibytesToBytes: @Sendable (Double) -> Double = { ($0 * 1_048_576).rounded() }
    static let durationMetric = "execution_time"

    private struct SeriesKey: Hashable {
        var script: String
        var environment: String
    }

    private struct MetricKey: Hashable {
        var series: SeriesKey
        var name: String
    }

    /// The series of one script in one environment. The counters and the histogram are created together on
    /// first sight, so that, for example, `script_failures_total` exists at 0 before the first failure (`rate()`
    /// then sees the first one). A last-value gauge appears with its first value: a value never reported is
    /// absent, not 0.
    private struct Series {
        var executions: [ExecutionStatus: Counter]
        var failures: Counter
        var duration: ValueHistogram
        var lastCompletion: Gauge
        var time: Gauge?
        var resources: [Gauge?]
    }

    private struct State: ~Copyable {
        var folder: LabelFolder
        var series: [SeriesKey: Series] = [:]
        var metricGauges: [MetricKey: Gauge] = [:]
    }

    private let registry: PrometheusCollectorRegistry
    private let state: Mutex<State>
    private let folded: [FoldedLabel: Counter]
    private let labelValues: [FoldedLabel: Gauge]

    init(registry: PrometheusCollectorRegistry, limits: MetricLabelLimits) {
        self.registry = registry
        self.state = Mutex(State(folder: LabelFolder(limits: limits)))
        var folded: [FoldedLabel: Counter] = [:]
        var labelValues: [FoldedLabel: Gauge] = [:]
        for label in FoldedLabel.allCases {
            folded[label] = registry.makeCounter(Families.foldedTotal, labels: [("label", label.rawValue)])
            labelValues[label] = registry.makeGauge(Families.labelValues, labels: [("label", label.rawValue)])
        }
        self.folded = folded
        self.labelValues = labelValues
    }

    func record(_ outcomes: some Sequence<ExecutionOutcome>) {
        state.withLock { state in
            for outcome in outcomes { record(outcome, in: &state) }
            labelValues[.script]?.set(Double(state.folder.scripts.count))
            labelValues[.environment]?.set(Double(state.folder.environments.count))
            labelValues[.name]?.set(Double(state.folder.metricNameCount))
        }
    }

    private func record(_ outcome: ExecutionOutcome, in state: inout State) {
        let script = state.folder.script(outcome.scriptName)
        let environment = state.folder.environment(outcome.environment)
        if script.folded { folded[.script]?.increment() }
        if environment.folded { folded[.environment]?.increment() }
        let key = SeriesKey(script: script.value, environment: environment.value)
        var series = state.series[key] ?? makeSeries(key)
        let labels = [("script", key.script), ("environment", key.environment)]

        series.executions[outcome.status]?.increment()
        if outcome.status != .success { series.failures.increment() }
        series.lastCompletion.set(outcome.completedAt.seconds)
        if let duration = outcome.durationSeconds, duration >= 0 {
            if series.time == nil { series.time = registry.makeGauge(Families.executionTime, labels: labels) }
            series.time?.set(duration)
            series.duration.record(duration)
        }
        for (index, resource) in Self.resourceMetrics.enumerated() {
            guard let value = outcome.metrics[resource.metric] else { continue }
            if series.resources[index] == nil {
                series.resources[index] = registry.makeGauge(Family(name: resource.family, help: resource.help), labels: labels)
            }
            series.resources[index]?.set(resource.toBaseUnit(value))
        }
        state.series[key] = series
        // Sorted, so that which names get in under the cap does not depend on dictionary order.
        for name in outcome.metrics.keys.sorted() where !Self.isDedicated(name) {
            let label = state.folder.metricName(name, script: key.script)
            if label.folded { folded[.name]?.increment() }
            let metricKey = MetricKey(series: key, name: label.value)
            let gauge = state.metricGauges[metricKey] ?? registry.makeGauge(
                Families.metric,
                labels: [("script", key.script), ("environment", key.environment), ("name", label.value)])
            state.metricGauges[metricKey] = gauge
            gauge.set(outcome.metrics[name] ?? 0)
        }
    }

    private static func isDedicated(_ name: String) -> Bool {
        name == durationMetric || resourceMetrics.contains { $0.metric == name }
    }

    private func makeSeries(_ key: SeriesKey) -> Series {
        let labels = [("script", key.script), ("environment", key.environment)]
        var executions: [ExecutionStatus: Counter] = [:]
        for status in [ExecutionStatus.success, .failure, .incomplete] {
            executions[status] = registry.makeCounter(Families.executionsTotal,
                                                      labels: labels + [("status", status.rawValue)])
        }
        return Series(
            executions: executions,
            failures: registry.makeCounter(Families.failuresTotal, labels: labels),
            duration: registry.makeValueHistogram(Families.executionDuration, labels: labels,
                                                  buckets: Self.durationBuckets),
            lastCompletion: registry.makeGauge(Families.lastCompletion, labels: labels),
            time: nil,
            resources: Array(repeating: nil, count: Self.resourceMetrics.count))
    }
}
