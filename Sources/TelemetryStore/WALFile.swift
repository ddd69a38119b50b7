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

    public init(databasePath: String) {
        path = databasePath + "-wal"
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Writes every committed frame of the WAL to the disk. The file is looked up by path each time, and opened
    /// again if it is not the one held (SQLite deletes the WAL when its last connection closes and creates a new
    /// one when a connection opens), so a sync never goes to a file that is no longer the store's.
    public func sync() throws(SQLiteError) {
        var current = stat()
        guard stat(path, &current) == 0 else { throw failure("cannot find the WAL file", errno) }
        var held = stat()
        if descriptor < 0 || fstat(descriptor, &held) != 0 || held.st_ino != current.st_ino || held.st_dev != current.st_dev {
            if descriptor >= 0 { close(descriptor) }
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw failure("cannot open the WAL file", errno) }
        }
        while fdatasync(descriptor) != 0 {
            let code = errno
            if code == EINTR { continue }
            throw failure("fdatasync failed", code)
        }
    }

    private func failure(_ what: String, _ code: Int32) -> SQLiteError {
        SQLiteError(code: SQLITE_IOERR, extendedCode: SQLITE_IOERR | (4 << 8),  // SQLITE_IOERR_FSYNC (a macro Swift does not import)
                    message: what,  // the description adds the errno and its text
                    operation: "making commits durable in", path: path, systemErrno: code)
    }
}
