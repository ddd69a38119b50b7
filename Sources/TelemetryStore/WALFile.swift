import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// The store's write-ahead log, opened on a descriptor of its own so that another thread can make commits
/// durable (`fdatasync`) while the writing connection goes on.
///
/// Why: a commit with `synchronous=FULL` waits for its fsync on the thread that every accepted line goes
/// through, and while it waits nothing is aggregated; the queue fills, the event loops stop reading and the
/// clients stop sending (measured: about a fifth of an ingest burst with both cores idle). The writing
/// connection therefore commits with `synchronous=NORMAL`, which SQLite keeps consistent across a power loss
/// (a transaction is there whole or not at all), and a sync thread calls `sync()` after each commit. A flush
/// is answered only after a `sync()` that began after its commit, so what a client was told is durable is on
/// disk exactly as with `FULL`; commits that come in during one `fdatasync` share the next.
public final class WALFile: @unchecked Sendable {
    /// `<database>-wal`.
    public let path: String
    /// Only the sync thread uses it.
    private var descriptor: Int32 = -1
    /// The WAL's device and inode when it was first opened.
    private var identity: (device: UInt, inode: UInt)?

    public init(databasePath: String) {
        path = databasePath + "-wal"
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Writes every committed frame of the WAL to the disk.
    ///
    /// The file is opened on the first call, and its directory entry is synced once then, since SQLite
    /// creates the WAL when its first connection opens and, with `synchronous=NORMAL`, would sync the
    /// directory only at a checkpoint. While the daemon's connections are open SQLite never replaces the WAL,
    /// so a file at the path that is not the one opened was replaced by someone else: that is an error (an
    /// fsync of the new file would say nothing about the commits), not a reason to open it again.
    public func sync() throws(SQLiteError) {
        var current = stat()
        guard stat(path, &current) == 0 else { throw failure("cannot find the WAL file", errno) }
        if let identity {
            guard identity.device == UInt(current.st_dev), identity.inode == UInt(current.st_ino) else {
                throw failure("the WAL file was replaced or removed behind the store's back", ESTALE)
            }
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw failure("cannot open the WAL file", errno) }
            var opened = stat()
            guard fstat(descriptor, &opened) == 0 else { throw failure("cannot read the WAL file's identity", errno) }
            identity = (UInt(opened.st_dev), UInt(opened.st_ino))
            try syncDirectory()
        }
        while fdatasync(descriptor) != 0 {
            let code = errno
            if code == EINTR { continue }
            throw failure("fdatasync failed", code)
        }
    }

    private func syncDirectory() throws(SQLiteError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let handle = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard handle >= 0 else { throw failure("cannot open the state directory to sync it", errno) }
        defer { close(handle) }
        while fsync(handle) != 0 {
            let code = errno
            if code == EINTR { continue }
            throw failure("fsync of the state directory failed", code)
        }
    }

    private func failure(_ what: String, _ code: Int32) -> SQLiteError {
        SQLiteError(code: SQLITE_IOERR, extendedCode: SQLITE_IOERR | (4 << 8),  // SQLITE_IOERR_FSYNC (a macro Swift does not import)
                    message: what,  // the description adds the errno and its text
                    operation: "making commits durable in", path: path, systemErrno: code)
    }
}
