// sd-daemon.h includes <sys/socket.h>: once another file of this module imports CSystemd, the socket
// constants (SOCK_STREAM, SOCK_CLOEXEC) resolve through it, so this file imports it too.
import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Why the daemon cannot take its socket path; each message says what to do.
public struct SocketPathError: Error, CustomStringConvertible {
    public var description: String
}

/// Prepares the listening socket's path: creates the parent directory, removes a stale socket left by a
/// crash, and refuses to start when another daemon is alive behind the path or the path is not a socket.
enum SocketPath {
    static func prepare(_ path: String) throws(SocketPathError) {
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !parent.isEmpty, access(parent, F_OK) != 0 {
            var prefix = ""
            for component in parent.split(separator: "/") {
                prefix += "/" + component
                if access(prefix, F_OK) != 0, mkdir(prefix, 0o755) != 0, errno != EEXIST {
                    throw SocketPathError(description: "cannot create the socket directory \(prefix): \(errnoText()); create it or set TELEMETRY_SOCKET to a writable location")
                }
            }
        }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw SocketPathError(description: "cannot inspect \(path): \(errnoText())")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw SocketPathError(description: "\(path) exists and is not a socket; refusing to replace it. Remove it or set TELEMETRY_SOCKET to another path")
        }
        switch probe(path) {
        case .live:
            throw SocketPathError(description: "another telemetryd is already listening on \(path); stop it first (`systemctl stop telemetryd`) or set TELEMETRY_SOCKET to another path")
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw SocketPathError(description: "cannot remove the stale socket \(path): \(errnoText())")
            }
        case .unknown(let message):
            throw SocketPathError(description: "cannot tell whether \(path) is in use: \(message)")
        }
    }

    enum ProbeResult { case live, stale, unknown(String) }

    /// Connects to the path: a refused connection means nobody listens any more.
    static func probe(_ path: String) -> ProbeResult {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return .unknown(errnoText()) }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            return .unknown("path longer than \(MemoryLayout.size(ofValue: address.sun_path) - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result == 0 { return .live }
        if errno == ECONNREFUSED || errno == ENOENT { return .stale }
        return .unknown(errnoText())
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}
