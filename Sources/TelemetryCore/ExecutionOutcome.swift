import TelemetryWire

/// What the metrics need to know about one completed execution: a small copy taken when its document is
/// made, so that nothing holds the execution's event bytes after its commit.
public struct ExecutionOutcome: Sendable, Equatable {
    public var scriptName: String
    public var environment: String
    public var status: ExecutionStatus
    /// The duration the script reported, else end minus start; nil when neither is known (an incomplete run).
    public var durationSeconds: Double?
    /// The last value of every metric the execution recorded (`telemetry_record_metric`).
    public var metrics: [String: Double]
    /// When the daemon closed the execution (its `end` line or the idle timeout).
    public var completedAt: Timestamp

    public init(scriptName: String, environment: String, status: ExecutionStatus, durationSeconds: Double?,
                metrics: [String: Double], completedAt: Timestamp) {
        self.scriptName = scriptName
        self.environment = environment
        self.status = status
        self.durationSeconds = durationSeconds
        self.metrics = metrics
        self.completedAt = completedAt
    }

    public init(_ execution: Execution, completedAt: Timestamp) {
        self.init(scriptName: execution.scriptName, environment: execution.environment, status: execution.status,
                  durationSeconds: execution.resolvedDurationSeconds, metrics: execution.metrics,
                  completedAt: completedAt)
    }
}
