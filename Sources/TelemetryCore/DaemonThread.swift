#if canImport(Glibc)
import Glibc
#endif

/// The daemon's own long-lived threads (the writer, the checkpointer, the forwarder) are plain pthreads: each
/// blocks on its own condition, on the disk or on the network, which must not tie up an event loop or a shared pool.
public enum DaemonThread {
    private final class Body {
        let name: String
        let run: () -> Void
        init(_ name: String, _ run: @escaping () -> Void) {
            self.name = name
            self.run = run
        }

        func main() {
            DaemonThread.nameCurrentThread(name)
            run()
        }
    }

    /// Names the calling thread. `pthread_setname_np` is not visible from Swift's Glibc module; this is what it
    /// does for another thread. A failure only leaves the process's name, so it is ignored.
    fileprivate static func nameCurrentThread(_ name: String) {
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes: what `top -H`, `ps -L` and `perf` show,
    /// so an operator can tell the writer from the checkpointer); join it with `join`.
    public static func start(name: String, _ body: @escaping () -> Void) -> pthread_t {
        let unmanaged = Unmanaged.passRetained(Body(name, body))
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue().main()
            return nil
        }, unmanaged.toOpaque())
        return thread
    }

    /// Waits for `thread` to end, if it was started, and forgets it (so a second stop does nothing).
    public static func join(_ thread: inout pthread_t?) {
        guard let running = thread else { return }
        pthread_join(running, nil)
        thread = nil
    }
}
