#if canImport(Glibc)
import Glibc
#endif

/// Who may send to the daemon: exactly the users the socket file's permissions let connect. The spool is a
/// second way in, so lines found there are held to the same rule (by the spool file's owner).
struct SocketAccess {
    let ownerUID: UInt32
    let groupID: UInt32
    let mode: UInt32

    init?(socketPath: String) {
        var info = stat()
        guard stat(socketPath, &info) == 0 else { return nil }
        ownerUID = info.st_uid
        groupID = info.st_gid
        mode = info.st_mode & 0o777
    }

    /// Whether `uid` could connect (write permission on the socket), by owner, group membership or others.
    func permits(uid: UInt32) -> Bool {
        if uid == 0 || mode & 0o002 != 0 { return true }
        if uid == ownerUID { return mode & 0o200 != 0 }
        guard mode & 0o020 != 0 else { return false }
        return Self.groups(of: uid).contains(groupID)
    }

    static func groups(of uid: UInt32) -> [UInt32] {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return [] }
        let primary = entry.pointee.pw_gid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primary, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, primary, &groups, &count) >= 0 else { return [primary] }
        }
        return Array(groups.prefix(Int(count)))
    }
}
