import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Default spool directory, shared by the client (writer) and the daemon (reader); TELEMETRY_SPOOL_DIR overrides.
public let defaultSpoolDirectory = "/var/spool/telemetryd"

/// Largest spool file one client process writes; beyond it lines are counted as dropped.
public let maxSpoolFileBytes = 64 << 20

/// A client's fallback when the daemon is unreachable or stalled: protocol lines appended to a private file in
/// the spool directory, which the daemon takes in when it is back.
///
/// The file is created exclusively (`<uid>.<pid>.<random>.jsonl`, mode 0640) and held under an exclusive
/// `flock` while this process writes it, so the daemon only ingests finished files. The daemon attributes
/// the lines to the file's owner (`st_uid`), the kernel's word like SO_PEERCRED, never to anything inside.
public final class SpoolWriter {
    public let path: String
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    public private(set) var bytesWritten = 0
    /// Lines lost because the spool could not be written (disk full, I/O error).
    public private(set) var droppedLines = 0

    public init(directory: String) throws(ConnectionError) {
        var random = UInt64(monotonicMicroseconds())
        let entropy = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if entropy >= 0 {
            _ = withUnsafeMutableBytes(of: &random) { read(entropy, $0.baseAddress, $0.count) }
            close(entropy)
        }
        let name = "\(getuid()).\(getpid()).\(String(random, radix: 16)).jsonl"
        path = directory + "/" + name
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard descriptor >= 0 else {
            throw ConnectionError(kind: .other, description: "cannot spool to \(directory): \(errnoText()) (set TELEMETRY_SPOOL_DIR to a directory the daemon reads)")
        }
        flock(descriptor, LOCK_EX)
        self.descriptor = descriptor
    }

    deinit {
        _ = try? sync()
        close(descriptor)
    }

    /// Whether `count` more bytes fit under the per-file cap.
    public func hasRoom(for count: Int) -> Bool {
        bytesWritten + buffer.count + count <= maxSpoolFileBytes
    }

    public func append(_ bytes: some Collection<UInt8>) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 65_536 { try? writeBuffer() }
    }

    /// Writes what is buffered and fsyncs: after this returns the lines survive a crash or power loss.
    public func sync() throws(ConnectionError) {
        try writeBuffer()
        if fsync(descriptor) != 0 {
            throw ConnectionError(kind: .other, description: "cannot fsync the spool file \(path): \(errnoText())")
        }
    }

    private func writeBuffer() throws(ConnectionError) {
        var failure: Int32 = 0
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure != 0 {
            droppedLines += buffer.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            buffer.removeAll()
            throw ConnectionError(kind: .other, description: "cannot write the spool file \(path): \(errnoText(failure))")
        }
        bytesWritten += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }
}
