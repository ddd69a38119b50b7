import CSystemd
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Talks to the service manager through sd_notify(3): READY, STATUS, WATCHDOG, RELOADING, STOPPING.
/// Without NOTIFY_SOCKET (started by hand) every call is a cheap no-op.
struct SystemdNotifier: Sendable {
    func notify(_ state: String) {
        _ = telemetry_sd_notify(state)
    }

    func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    func status(_ text: String) { notify("STATUS=\(text)") }
    func stopping(status: String) { notify("STOPPING=1\nSTATUS=\(status)") }
    func watchdog() { notify("WATCHDOG=1") }

    /// RELOADING=1 with the CLOCK_MONOTONIC time systemd uses to order it against the READY=1 that follows.
    func reloading(status: String) {
        notify("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())\nSTATUS=\(status)")
    }

    /// The watchdog interval systemd expects pets within (WatchdogSec=), nil when it is off. The variables are
    /// removed so nothing the daemon starts inherits them.
    static func watchdogInterval() -> Double? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(1, &microseconds) > 0, microseconds > 0 else { return nil }
        return Double(microseconds) / 1_000_000
    }
}
