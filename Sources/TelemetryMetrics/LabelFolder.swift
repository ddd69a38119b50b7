import TelemetryCore

/// Which label a value was folded for, as in `telemetryd_metrics_folded_total{label=…}`.
public enum FoldedLabel: String, Sendable, CaseIterable {
    case script, environment, name
}

/// Decides the label values of script series under the caps: a value seen before keeps its series; a new
/// value gets one while the cap allows, else it is folded into `other`. Admission is first come, first
/// served, and never revoked (a Prometheus series must not vanish while the process lives). Pure state.
struct LabelFolder {
    /// The value that every value over a cap is folded into.
    static let overflow = "other"
    /// The value used for an empty script name or environment (an empty label is no label to Prometheus).
    static let unknown = "unknown"

    let limits: MetricLabelLimits
    private(set) var scripts: Set<String> = []
    private(set) var environments: Set<String> = []
    private var metricNames: Set<MetricKey> = []

    private struct MetricKey: Hashable {
        var script: String
        var name: String
    }

    init(limits: MetricLabelLimits) {
        self.limits = limits
    }

    var metricNameCount: Int { metricNames.count }

    /// The `script` label for `raw`, and whether it was folded.
    mutating func script(_ raw: String) -> (value: String, folded: Bool) {
        Self.admit(raw.isEmpty ? Self.unknown : raw, into: &scripts, limit: limits.maxScripts)
    }

    /// The `environment` label for `raw`, and whether it was folded.
    mutating func environment(_ raw: String) -> (value: String, folded: Bool) {
        Self.admit(raw.isEmpty ? Self.unknown : raw, into: &environments, limit: limits.maxEnvironments)
    }

    /// The `name` label of metric `raw` of the script labelled `script`, and whether it was folded.
    mutating func metricName(_ raw: String, script: String) -> (value: String, folded: Bool) {
        let key = MetricKey(script: script, name: raw)
        if metricNames.contains(key) { return (raw, false) }
        guard metricNames.count < limits.maxMetricNames else { return (Self.overflow, true) }
        metricNames.insert(key)
        return (raw, false)
    }

    private static func admit(_ value: String, into set: inout Set<String>, limit: Int) -> (value: String, folded: Bool) {
        if set.contains(value) { return (value, false) }
        guard set.count < limit else { return (overflow, true) }
        set.insert(value)
        return (value, false)
    }
}
