import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// The listening socket systemd passes to a socket-activated daemon (telemetryd.socket), if any.
enum SocketActivation {
    struct Passed {
        /// SD_LISTEN_FDS_START: the descriptor to serve.
        var descriptor: CInt
        /// The socket's path as the kernel reports it (the unit's ListenStream=).
        var path: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The passed socket, nil when the daemon was not socket-activated (LISTEN_FDS unset or for another
    /// process). The LISTEN_* variables are removed, so nothing the daemon starts inherits them.
    static func passedSocket() throws -> Passed? {
        let count = sd_listen_fds(1)
        if count < 0 {
            throw Failure(description: "cannot read the sockets passed by systemd (LISTEN_FDS): \(String(cString: strerror(-count)))")
        }
        if count == 0 { return nil }
        let descriptor = SD_LISTEN_FDS_START
        if count > 1 {
            // Only one is served; close the others so their connections fail instead of hanging.
            for extra in (descriptor + 1)..<(descriptor + count) { close(extra) }
            throw Failure(description: "systemd passed \(count) sockets; telemetryd serves exactly one: give telemetryd.socket a single ListenStream=")
        }
        guard sd_is_socket_unix(descriptor, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw Failure(description: "the socket systemd passed (fd \(descriptor)) is not a listening Unix stream socket: telemetryd.socket needs ListenStream=/path/to/socket and Accept=no")
        }
        return Passed(descriptor: descriptor, path: socketPath(of: descriptor) ?? "")
    }

    private static func socketPath(of descriptor: CInt) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return nil }
        return withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
