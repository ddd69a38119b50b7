#if canImport(Glibc)
import Glibc
#endif

/// The daemon's own long-lived threads (the writer, the checkpointer) are plain pthreads: each blocks on
/// its own condition or on the disk, which must not tie up an event loop or a shared pool.
enum DaemonThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread; join it with `pthread_join`.
    static func start(_ body: @escaping () -> Void) -> pthread_t {
        let unmanaged = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue().run()
            return nil
        }, unmanaged.toOpaque())
        return thread
    }

    /// Waits for `thread` to end, if it was started, and forgets it (so a second stop does nothing).
    static func join(_ thread: inout pthread_t?) {
        guard let running = thread else { return }
        pthread_join(running, nil)
        thread = nil
    }
}
