import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed SQLite call (or a store-level refusal such as a schema that is too new), with enough context for an
/// operator: the result code, SQLite's own message, what was being done and to which database file.
///
///     SQLite error 13 (database or disk is full) while committing to /var/lib/telemetryd/telemetry.db
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The primary result code (`SQLITE_FULL` = 13, `SQLITE_BUSY` = 5, …).
    public var code: Int32
    /// The extended result code (`SQLITE_IOERR_FSYNC` = 1034, …); equal to `code` when there is none.
    public var extendedCode: Int32
    /// `sqlite3_errmsg` at the time of the failure, or the store's own explanation.
    public var message: String
    /// What was being done, phrased to be followed by the path: "committing to", "opening", "executing `…` on".
    public var operation: String
    /// The database file.
    public var path: String
    /// The operating system's errno behind an I/O or open failure (0 when none or not relevant).
    public var systemErrno: Int32

    public init(code: Int32, extendedCode: Int32? = nil, message: String, operation: String, path: String,
                systemErrno: Int32 = 0) {
        self.code = code
        self.extendedCode = extendedCode ?? code
        self.message = message
        self.operation = operation
        self.path = path
        self.systemErrno = systemErrno
    }

    /// The last error of `db` (read right after the failing call, on the thread that made it).
    init(resultCode: Int32, db: OpaquePointer?, operation: String, path: String) {
        let extended = db.map { sqlite3_extended_errcode($0) } ?? resultCode
        // Prefer the code the call returned; the connection's code can only be more specific.
        let primary = resultCode & 0xFF
        let message: String
        if let db, let text = sqlite3_errmsg(db) {
            message = String(cString: text)
        } else {
            message = String(cString: sqlite3_errstr(resultCode))
        }
        var osErrno: Int32 = 0
        if let db, [SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_FULL].contains(primary) {
            osErrno = sqlite3_system_errno(db)
        }
        self.init(code: primary, extendedCode: (extended & 0xFF) == primary ? extended : resultCode,
                  message: message, operation: operation, path: path, systemErrno: osErrno)
    }

    public var description: String {
        var detail = message
        if extendedCode != code { detail += "; extended code \(extendedCode)" }
        if systemErrno != 0, let text = strerror(systemErrno) {
            detail += "; errno \(systemErrno): \(String(cString: text))"
        }
        let target = path.isEmpty || path == ":memory:" ? "an in-memory database" : path
        return "SQLite error \(code) (\(detail)) while \(operation) \(target)"
    }

    /// SQLITE_FULL: the disk (or the configured max page count) is full.
    public var isDiskFull: Bool { code == SQLITE_FULL }
    /// SQLITE_BUSY or SQLITE_LOCKED: another connection held a lock beyond the busy timeout.
    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }
    /// SQLITE_READONLY: a write on a read-only connection, file or file system.
    public var isReadOnly: Bool { code == SQLITE_READONLY }
    /// SQLITE_CORRUPT or SQLITE_NOTADB: the file is damaged or is not an SQLite database at all.
    public var isCorrupt: Bool { code == SQLITE_CORRUPT || code == SQLITE_NOTADB }

    /// The same error, reworded as part of a larger operation (e.g. "committing … to").
    func during(_ operation: String) -> SQLiteError {
        var copy = self
        copy.operation = operation
        return copy
    }
}
