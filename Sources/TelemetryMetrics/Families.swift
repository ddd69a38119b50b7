import Prometheus

/// Every metric family the daemon exports, with its help text: the one place their names are spelled
/// (docs/metrics.md describes each one; a test checks that the two agree).
enum Families {
    private static func family(_ name: String, _ help: String) -> Family {
        Family(name: name, help: help)
    }

    // Scripts
    static let executionsTotal = family("script_executions_total",
        "Completed script executions, by status (success: exit code 0; failure: non-zero; incomplete: no end line before TELEMETRY_EXECUTION_TIMEOUT).")
    static let failuresTotal = family("script_failures_total",
        "Completed script executions that did not succeed (status failure or incomplete).")
    static let executionTime = family("script_execution_time_seconds",
        "Duration of the last completed execution, in seconds.")
    static let executionDuration = family("script_execution_duration_seconds",
        "Durations of completed executions, in seconds.")
    static let lastCompletion = family("script_last_execution_timestamp_seconds",
        "When the last execution completed (its end line or timeout was processed), in seconds since the Unix epoch.")
    static let metric = family("script_metric",
        "Last value of each metric recorded with telemetry_record_metric, in the unit the script used.")

    // Label caps
    static let foldedTotal = family("telemetryd_metrics_folded_total",
        "Label values folded into \"other\" because a TELEMETRY_METRICS_MAX_* cap was reached (per execution for script and environment, per value for name).")
    static let labelValues = family("telemetryd_metrics_label_values",
        "Distinct label values admitted so far, per capped label (name counts script and name pairs).")

    // Intake
    static let buildInfo = family("telemetryd_build_info", "The running telemetryd version; always 1.")
    static let collectionEnabled = family("telemetryd_collection_enabled",
        "1 when the daemon stores what scripts send; 0 when TELEMETRY_ENABLED=false discards it (host-wide opt-out).")
    static let eventsReceived = family("telemetryd_events_received_total",
        "Protocol lines received from clients and spool files, accepted or rejected.")
    static let eventsRejected = family("telemetryd_events_rejected_total",
        "Lines rejected, by reason (the protocol's reject reasons, execution_closed, disabled, not_permitted, store_full).")
    static let eventsDropped = family("telemetryd_events_dropped_total",
        "Events beyond TELEMETRY_MAX_EVENTS_PER_EXECUTION: counted in their document, not kept.")
    static let receivedBytes = family("telemetryd_received_bytes_total", "Bytes read from client connections.")
    static let connections = family("telemetryd_connections", "Client connections open now.")
    static let connectionsTotal = family("telemetryd_connections_total", "Client connections accepted.")
    static let connectionsRefused = family("telemetryd_connections_refused_total",
        "Client connections closed at once because TELEMETRY_MAX_CONNECTIONS were open.")
    static let openExecutions = family("telemetryd_open_executions", "Executions started and not yet completed.")

    // Store
    static let documentsStored = family("telemetryd_documents_stored_total", "Execution documents committed to the store.")
    static let commits = family("telemetryd_store_commits_total", "Successful store commits.")
    static let commitFailures = family("telemetryd_store_commit_failures_total",
        "Store commits that failed (the data is kept in memory and retried).")
    static let storeFailing = family("telemetryd_store_failing",
        "1 while the store cannot take or confirm data: commits fail now, or an fsync failed (until a restart).")
    static let storeUsed = family("telemetryd_store_used_bytes",
        "Bytes of the store's pages in use, the figure TELEMETRY_SPOOL_MAX_MB caps.")
    static let storeLimit = family("telemetryd_store_limit_bytes", "TELEMETRY_SPOOL_MAX_MB in bytes; 0 when there is no cap.")
    static let storeFile = family("telemetryd_store_file_bytes", "Size of the store's database and WAL files on disk.")
    static let storeDocuments = family("telemetryd_store_documents", "Execution documents in the store.")
    static let storeJournal = family("telemetryd_store_journal_bytes", "Bytes of journal kept for open executions.")
    static let fsyncDuration = family("telemetryd_store_fsync_duration_seconds",
        "Time the WAL fsync after a commit took (TELEMETRY_STORE_SYNC=full), in seconds.")
    static let retention = family("telemetryd_store_retention_seconds",
        "TELEMETRY_RETENTION_DAYS in seconds: documents older than this are deleted; 0 keeps them forever.")

    // Delivery
    static let deliveryEnabled = family("telemetryd_delivery_enabled", "1 when documents are forwarded to TELEMETRY_ENDPOINT.")
    static let deliveryState = family("telemetryd_delivery_state",
        "The forwarder's state: 1 for the current one of idle, delivering, retrying, outage.")
    static let pendingDocuments = family("telemetryd_delivery_pending_documents",
        "Stored documents waiting for delivery (dead letters excluded).")
    static let batchesSent = family("telemetryd_delivery_batches_sent_total", "Batches the endpoint accepted (2xx).")
    static let documentsSent = family("telemetryd_delivery_documents_sent_total", "Documents in batches the endpoint accepted.")
    static let deliveryFailures = family("telemetryd_delivery_failures_total",
        "Failed delivery attempts, by reason (http_<status>, connect, timeout, tls_verification, ...).")
    static let retries = family("telemetryd_delivery_retries_total", "Delivery attempts repeated after a failure.")
    static let deadLettered = family("telemetryd_delivery_dead_lettered_batches_total",
        "Batches the endpoint refused and that were set aside as dead letters.")
    static let deadLetterBatches = family("telemetryd_dead_letter_batches",
        "Dead-letter batches in the store, waiting for `telemetry deadletter replay` or `purge`.")
    static let deadLetterDocuments = family("telemetryd_dead_letter_documents", "Documents in dead-letter batches.")
    static let lastSuccess = family("telemetryd_delivery_last_success_timestamp_seconds",
        "When a batch was last delivered, in seconds since the Unix epoch; 0 before the first delivery of this process.")
    static let deliveryDuration = family("telemetryd_delivery_duration_seconds",
        "Time from sending a batch to its 2xx answer, in seconds.")

    // The process (the names every Prometheus client library uses)
    static let cpuSeconds = family("process_cpu_seconds_total", "User and system CPU time spent, in seconds.")
    static let residentMemory = family("process_resident_memory_bytes", "Resident memory size, in bytes.")
    static let virtualMemory = family("process_virtual_memory_bytes", "Virtual memory size, in bytes.")
    static let openFDs = family("process_open_fds", "Open file descriptors.")
    static let maxFDs = family("process_max_fds", "Limit on open file descriptors.")
    static let startTime = family("process_start_time_seconds", "When the process started, in seconds since the Unix epoch.")

    /// Upper bounds of `telemetryd_delivery_duration_seconds`.
    static let deliveryBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// From a fast SSD's cache flush to a disk in trouble (the buckets etcd uses for its WAL fsync).
    static let fsyncBuckets: [Double] = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
                                         2.048, 4.096, 8.192]
}

/// A family's name and help text.
struct Family: Sendable, Hashable {
    var name: String
    var help: String

    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }
}

extension PrometheusCollectorRegistry {
    func makeCounter(_ family: Family, labels: [(String, String)] = []) -> Counter {
        labels.isEmpty ? makeCounter(descriptor: family.descriptor) : makeCounter(descriptor: family.descriptor, labels: labels)
    }

    func makeGauge(_ family: Family, labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty ? makeGauge(descriptor: family.descriptor) : makeGauge(descriptor: family.descriptor, labels: labels)
    }

    func makeValueHistogram(_ family: Family, labels: [(String, String)] = [], buckets: [Double]) -> ValueHistogram {
        labels.isEmpty ? makeValueHistogram(descriptor: family.descriptor, buckets: buckets)
            : makeValueHistogram(descriptor: family.descriptor, labels: labels, buckets: buckets)
    }
}
