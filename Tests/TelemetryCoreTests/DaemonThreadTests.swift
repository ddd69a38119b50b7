import Synchronization
import Testing
import TelemetryCore

#if canImport(Glibc)
import Glibc
#endif

@Suite("The daemon's own threads")
struct DaemonThreadTests {
    /// What `top -H`, `ps -L` and `perf` show for the calling thread.
    private static func currentThreadName() -> String {
        let descriptor = open("/proc/thread-self/comm", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return "" }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        let name = buffer.prefix(max(0, count)).prefix { $0 != UInt8(ascii: "\n") }
        return String(decoding: name, as: UTF8.self)
    }

    @Test("a thread runs its body under its name, cut to the kernel's 15 bytes, and join waits for it")
    func namesAndJoins() {
        let seen = Mutex<[String]>([])
        var short: pthread_t? = DaemonThread.start(name: "writer") {
            seen.withLock { $0.append(Self.currentThreadName()) }
        }
        var long: pthread_t? = DaemonThread.start(name: "a-name-longer-than-fifteen") {
            seen.withLock { $0.append(Self.currentThreadName()) }
        }
        DaemonThread.join(&short)
        DaemonThread.join(&long)
        #expect(short == nil && long == nil)
        #expect(seen.withLock { $0.sorted() } == ["a-name-longer-t", "writer"])
        DaemonThread.join(&short)  // a second join does nothing
    }
}
