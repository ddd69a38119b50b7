import CSQLite

/// The `nil` literal as a bindable value: `statement.bind(3, nil)` binds SQL NULL.
public struct SQLiteNull: ExpressibleByNilLiteral, Sendable {
    public init(nilLiteral: ()) {}
}

/// A compiled statement. Parameter indexes start at 1, column indexes at 0 (as in the C API).
///
/// Keeps its connection alive and, like it, must be used by one thread at a time. After stepping, call `reset()`
/// (or let the statement go) so that it releases its read snapshot: an unreset statement that returned a row keeps a
/// read transaction open, which stops WAL checkpoints from completing.
public final class SQLiteStatement {
    public let database: SQLiteDatabase
    /// The raw `sqlite3_stmt *` handle.
    public let handle: OpaquePointer
    public let sql: String

    init(database: SQLiteDatabase, handle: OpaquePointer, sql: String) {
        self.database = database
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    // MARK: Binding

    public func bind(_ index: Int32, _ value: Int64) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, value), index)
    }

    public func bind(_ index: Int32, _ value: Int) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, Int64(value)), index)
    }

    public func bind(_ index: Int32, _ value: Double) throws(SQLiteError) {
        try check(sqlite3_bind_double(handle, index, value), index)
    }

    /// Binds UTF-8 text (SQLite copies it).
    public func bind(_ index: Int32, _ value: String) throws(SQLiteError) {
        var value = value
        let rc = value.withUTF8 { utf8 in
            // An empty buffer may have no address; "" must still bind as text, not NULL.
            let base = utf8.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(("" as StaticString).utf8Start)
            return sqlite3_bind_text64(handle, index, base.assumingMemoryBound(to: CChar.self), UInt64(utf8.count),
                                       telemetry_sqlite_transient(), UInt8(SQLITE_UTF8))
        }
        try check(rc, index)
    }

    /// Binds a BLOB (SQLite copies it). An empty array binds an empty BLOB, not NULL.
    public func bind(_ index: Int32, _ value: [UInt8]) throws(SQLiteError) {
        let rc = value.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else {
                return sqlite3_bind_zeroblob(handle, index, 0)
            }
            return sqlite3_bind_blob64(handle, index, base, UInt64(bytes.count), telemetry_sqlite_transient())
        }
        try check(rc, index)
    }

    /// Binds a BLOB that SQLite reads in place, without a copy (SQLITE_STATIC). The bytes must stay valid and
    /// unchanged until the statement is reset after its last step *and* the parameter is rebound or cleared
    /// (`clearBindings()`); typically: bind, step, clear, all inside `withUnsafeBytes`.
    /// Binds `bytes` at `index` without copying them (multi-MiB journal chunks, documents), steps once, and
    /// resets the statement and clears its bindings while the bytes are still borrowed: SQLite must not keep
    /// a pointer to them.
    func stepBorrowing(_ bytes: [UInt8], at index: Int32) throws(SQLiteError) {
        let failure: SQLiteError? = bytes.withUnsafeBytes { raw in
            defer { reset(); clearBindings() }
            do throws(SQLiteError) {
                try bind(index, unsafeBorrowing: raw)
                _ = try step()
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    func bind(_ index: Int32, unsafeBorrowing bytes: UnsafeRawBufferPointer) throws(SQLiteError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            try check(sqlite3_bind_zeroblob(handle, index, 0), index)
            return
        }
        try check(sqlite3_bind_blob64(handle, index, base, UInt64(bytes.count), nil), index)
    }

    /// Binds NULL: `bind(index, nil)`.
    public func bind(_ index: Int32, _ value: SQLiteNull) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, index), index)
    }

    /// Binds NULL.
    public func bindNull(_ index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, index), index)
    }

    /// Sets every parameter back to NULL (and releases SQLite's copies of bound text and blobs).
    public func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    // MARK: Execution

    /// Advances to the next row: true when a row is available, false when the statement is done.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error(rc, "executing `\(SQLiteDatabase.abbreviate(sql))` on")
        }
    }

    /// Rewinds the statement so it can run again, keeping its bindings. Releases its read snapshot.
    public func reset() {
        sqlite3_reset(handle)
    }

    // MARK: Columns (valid after `step()` returned true)

    public var columnCount: Int32 { sqlite3_column_count(handle) }

    public func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    public func double(_ column: Int32) -> Double {
        sqlite3_column_double(handle, column)
    }

    /// The column as UTF-8 text ("" for NULL).
    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))  // after column_text, as SQLite requires
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// The column as bytes ([] for NULL or an empty BLOB).
    public func blob(_ column: Int32) -> [UInt8] {
        guard let pointer = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))  // after column_blob, as SQLite requires
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The column's size in bytes (as text or blob).
    public func byteCount(_ column: Int32) -> Int {
        Int(sqlite3_column_bytes(handle, column))
    }

    public func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    // MARK: Helpers

    private func check(_ rc: Int32, _ index: Int32) throws(SQLiteError) {
        guard rc == SQLITE_OK else {
            throw database.error(rc, "binding parameter \(index) of `\(SQLiteDatabase.abbreviate(sql))` on")
        }
    }
}
