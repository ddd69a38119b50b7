import CSQLite
import CWALWriteBuffer

/// Process-wide SQLite settings, applied once before the first connection opens (SQLite reads them when it
/// initializes): page-cache pages are allocated one by one as needed, with no up-front block per connection
/// (see `telemetry_sqlite_no_bulk_page_cache`), so that `releaseMemory()` can give them back.
private let sqliteProcessConfiguration: Void = {
    _ = telemetry_sqlite_no_bulk_page_cache()
}()

/// One SQLite connection.
///
/// Opened with `SQLITE_OPEN_NOMUTEX`: SQLite does not serialize calls on it, so a connection (and its statements)
/// must be used by one thread at a time. It is deliberately not `Sendable`.
public final class SQLiteDatabase {
    /// The raw `sqlite3 *` handle (valid until the connection is deinitialized).
    public let handle: OpaquePointer
    public let path: String
    public let isReadOnly: Bool

    // Transaction control statements, prepared once (they run on every commit). Raw handles rather than
    // `SQLiteStatement`s, because statements keep their connection alive and these live inside it.
    private var beginImmediate: OpaquePointer?
    private var beginDeferred: OpaquePointer?
    private var commitStatement: OpaquePointer?
    private var rollbackStatement: OpaquePointer?

    /// Default busy timeout: how long a call waits for another connection's lock before failing with SQLITE_BUSY.
    public static let defaultBusyTimeoutMilliseconds: Int32 = 5_000

    /// Whether this connection's WAL writes are gathered into 256 KiB writes (`CWALWriteBuffer.h` says why).
    public let buffersWALWrites: Bool

    /// Opens (or, unless `readOnly`, creates) the database at `path`. With `buffersWALWrites`, the connection
    /// uses the WAL write-buffer VFS: for the one connection that commits a lot (the ingest writer).
    public init(path: String, readOnly: Bool = false, buffersWALWrites: Bool = false) throws(SQLiteError) {
        _ = sqliteProcessConfiguration  // before anything initializes SQLite, the VFS registration included
        if buffersWALWrites {
            let rc = telemetry_wal_write_buffer_register()
            guard rc == SQLITE_OK else {
                throw SQLiteError(resultCode: rc, db: nil, operation: "registering the WAL write-buffer VFS for",
                                  path: path)
            }
        }
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, buffersWALWrites ? TELEMETRY_WAL_WRITE_BUFFER_VFS : nil)
        guard rc == SQLITE_OK, let db else {
            let error = SQLiteError(resultCode: rc, db: db, operation: "opening", path: path)
            sqlite3_close_v2(db)  // a handle is usually allocated even when opening fails
            throw error
        }
        self.handle = db
        self.path = path
        self.isReadOnly = readOnly
        self.buffersWALWrites = buffersWALWrites
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, Self.defaultBusyTimeoutMilliseconds)
    }

    deinit {
        for statement in [beginImmediate, beginDeferred, commitStatement, rollbackStatement] {
            sqlite3_finalize(statement)
        }
        // Every SQLiteStatement retains its connection, so none is left unfinalized here; close_v2 is still the
        // safe variant should a raw statement have leaked.
        sqlite3_close_v2(handle)
    }

    /// Frees the page cache's unused pages (those no statement holds); they are read again, from the OS page
    /// cache, when next needed. With `trimHeap`, the freed heap goes back to the kernel too (malloc_trim,
    /// which walks the whole heap: not for every transaction).
    public func releaseMemory(trimHeap: Bool = true) {
        sqlite3_db_release_memory(handle)
        if buffersWALWrites {  // the WAL's 256 KiB buffer, empty between transactions
            sqlite3_file_control(handle, "main", Int32(TELEMETRY_WAL_WRITE_BUFFER_RELEASE), nil)
        }
        if trimHeap { telemetry_trim_heap() }
    }

    /// Runs one or more SQL statements that return no rows of interest (DDL, PRAGMA assignments, …).
    public func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else {
            throw error(rc, "executing `\(Self.abbreviate(sql))` on")
        }
    }

    /// Compiles one SQL statement. `persistent` hints SQLite that the statement will be kept and reused.
    public func prepare(_ sql: String, persistent: Bool = false) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        var moreThanOne = false
        let flags: UInt32 = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let rc = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(handle, text, -1, flags, &statement, &tail)
            // Honest about multi-statement strings: only the first would run, so refuse them. A tail of only
            // whitespace, comments or semicolons compiles to no statement.
            var rest = tail
            while rc == SQLITE_OK, let current = rest, current.pointee != 0 {
                var extra: OpaquePointer?
                var next: UnsafePointer<CChar>?
                let tailRC = sqlite3_prepare_v3(handle, current, -1, 0, &extra, &next)
                if tailRC != SQLITE_OK || extra != nil {
                    moreThanOne = true
                    sqlite3_finalize(extra)
                    sqlite3_finalize(statement)
                    statement = nil
                    break
                }
                if next == current { break }
                rest = next
            }
            return rc
        }
        let operation = "preparing `\(Self.abbreviate(sql))` on"
        guard rc == SQLITE_OK else { throw error(rc, operation) }
        if moreThanOne {
            throw SQLiteError(code: SQLITE_MISUSE, message: "the SQL holds more than one statement",
                              operation: operation, path: path)
        }
        guard let statement else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "the SQL holds no statement", operation: operation,
                              path: path)
        }
        return SQLiteStatement(database: self, handle: statement, sql: sql)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: commits when it returns, rolls back when it (or the commit)
    /// throws. Not reentrant: SQLite has no nested transactions (use SAVEPOINT for that).
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try begin(immediate: true)
        let result: T
        do {
            result = try body()
        } catch {
            rollback()
            throw error
        }
        try commit()
        return result
    }

    /// How the WAL write buffer has served this connection (nil without `buffersWALWrites`, or before the WAL
    /// is open): for tests and diagnostics.
    public var walWriteBufferStatistics: telemetry_wal_write_buffer_stats? {
        guard buffersWALWrites else { return nil }
        var statistics = telemetry_wal_write_buffer_stats()
        let rc = sqlite3_file_control(handle, "main", Int32(TELEMETRY_WAL_WRITE_BUFFER_STATS), &statistics)
        return rc == SQLITE_OK ? statistics : nil
    }

    /// The rowid of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE on this connection.
    public var changes: Int { Int(sqlite3_changes64(handle)) }

    /// False while a transaction is open on this connection.
    public var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    /// Sets how long calls wait for another connection's lock before failing with SQLITE_BUSY.
    public func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    // MARK: Transaction primitives (cached statements)

    /// `BEGIN IMMEDIATE` (takes the write lock now) or `BEGIN` (deferred: a read snapshot on first read).
    public func begin(immediate: Bool) throws(SQLiteError) {
        if immediate {
            try run(&beginImmediate, "BEGIN IMMEDIATE", operation: "beginning a write transaction on")
        } else {
            try run(&beginDeferred, "BEGIN", operation: "beginning a transaction on")
        }
    }

    /// `COMMIT`. On failure the transaction is rolled back (SQLite may leave it open after a failed COMMIT).
    public func commit() throws(SQLiteError) {
        do {
            try run(&commitStatement, "COMMIT", operation: "committing to")
        } catch {
            rollback()
            throw error
        }
    }

    /// `ROLLBACK` if a transaction is open. Never throws: it is used on paths that already report an error, and
    /// SQLite rolls back by itself after errors such as SQLITE_FULL, leaving nothing to roll back.
    public func rollback() {
        guard !isAutocommit else { return }
        try? run(&rollbackStatement, "ROLLBACK", operation: "rolling back on")
    }

    private func run(_ cached: inout OpaquePointer?, _ sql: String, operation: String) throws(SQLiteError) {
        if cached == nil {
            let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &cached, nil)
            guard rc == SQLITE_OK else { throw error(rc, operation) }
        }
        let rc = sqlite3_step(cached)
        let failure = rc == SQLITE_DONE ? nil : error(rc, operation)  // read errmsg before reset
        sqlite3_reset(cached)
        if let failure { throw failure }
    }

    // MARK: Helpers

    func error(_ rc: Int32, _ operation: String) -> SQLiteError {
        SQLiteError(resultCode: rc, db: handle, operation: operation, path: path)
    }

    /// The SQL as it reads in an error message: whitespace collapsed, at most ~80 characters.
    static func abbreviate(_ sql: String) -> String {
        let words = sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
        let text = words.joined(separator: " ")
        return text.count <= 80 ? text : String(text.prefix(77)) + "…"
    }
}
