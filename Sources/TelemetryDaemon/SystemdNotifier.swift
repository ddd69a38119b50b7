import CSystemd

/// Talks to the service manager through sd_notify(3): READY, STATUS, STOPPING (and, later, WATCHDOG).
/// Without NOTIFY_SOCKET (started by hand) every call is a cheap no-op.
struct SystemdNotifier: Sendable {
    func notify(_ state: String) {
        _ = telemetry_sd_notify(state)
    }

    func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    func status(_ text: String) { notify("STATUS=\(text)") }
    func stopping(status: String) { notify("STOPPING=1\nSTATUS=\(status)") }
}
