import Testing
import TelemetryStore

@Suite("SQLiteDatabase")
struct SQLiteDatabaseTests {
    @Test func bindsAndReadsEveryType() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteDatabase(path: directory + "/t.db")
            try db.execute("CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n)")
            let insert = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")
            try insert.bind(1, Int64.max)
            try insert.bind(2, 2.5)
            try insert.bind(3, "héllo\u{0}wörld")  // embedded NUL survives: lengths, not C strings
            try insert.bind(4, [0, 1, 2, 255] as [UInt8])
            try insert.bind(5, nil)
            #expect(try insert.step() == false)
            #expect(db.changes == 1)
            #expect(db.lastInsertRowID == 1)

            insert.reset()
            try insert.bind(1, -1 as Int64)
            try insert.bind(2, 0.0)
            try insert.bind(3, "")
            try insert.bind(4, [] as [UInt8])
            try insert.bindNull(5)
            #expect(try insert.step() == false)
            #expect(db.lastInsertRowID == 2)

            let query = try db.prepare("SELECT i, d, s, b, n, typeof(s), typeof(b) FROM t ORDER BY rowid")
            #expect(query.columnCount == 7)
            #expect(try query.step())
            #expect(query.int64(0) == Int64.max)
            #expect(query.double(1) == 2.5)
            #expect(query.text(2) == "héllo\u{0}wörld")
            #expect(query.blob(3) == [0, 1, 2, 255])
            #expect(query.isNull(4))
            #expect(!query.isNull(3))
            #expect(try query.step())
            #expect(query.int64(0) == -1)
            #expect(query.text(2) == "")
            #expect(query.blob(3) == [])
            #expect(query.text(5) == "text", "an empty string binds as text, not NULL")
            #expect(query.text(6) == "blob", "an empty array binds as an empty blob, not NULL")
            #expect(try query.step() == false)
        }
    }

    @Test func transactionCommitsOrRollsBack() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteDatabase(path: directory + "/t.db")
            try db.execute("CREATE TABLE t(x)")
            let value = try db.transaction { () throws -> Int in
                try db.execute("INSERT INTO t VALUES (1)")
                return 42
            }
            #expect(value == 42)
            #expect(db.isAutocommit)

            struct Boom: Error {}
            #expect(throws: Boom.self) {
                try db.transaction {
                    try db.execute("INSERT INTO t VALUES (2)")
                    throw Boom()
                }
            }
            #expect(db.isAutocommit, "the transaction is closed after a failure")
            #expect(try scalar(db, "SELECT count(*) FROM t") == 1)
            #expect(try scalar(db, "SELECT max(x) FROM t") == 1)
        }
    }

    @Test func syntaxErrorsNameTheSQLAndThePath() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/t.db"
            let db = try SQLiteDatabase(path: path)
            let error = try #require(throws: SQLiteError.self) { _ = try db.prepare("SELEC 1") }
            #expect(error.code == 1)
            #expect(error.message.contains("syntax error"))
            #expect(error.description.contains("SELEC 1"))
            #expect(error.description.hasSuffix(" " + path))
            #expect(error.description.hasPrefix("SQLite error 1 ("))
        }
    }

    @Test func prepareRefusesSeveralStatementsButAllowsTrailingComments() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteDatabase(path: directory + "/t.db")
            let error = try #require(throws: SQLiteError.self) { _ = try db.prepare("SELECT 1; SELECT 2") }
            #expect(error.code == 21)
            #expect(error.message.contains("more than one statement"))
            let statement = try db.prepare("SELECT 7; -- a comment\n ;")
            #expect(try statement.step())
            #expect(statement.int64(0) == 7)
            #expect(throws: SQLiteError.self) { _ = try db.prepare("  -- nothing\n") }
        }
    }

    @Test func constraintViolationsCarryExtendedCodes() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteDatabase(path: directory + "/t.db")
            try db.execute("CREATE TABLE t(x UNIQUE)")
            try db.execute("INSERT INTO t VALUES (1)")
            let insert = try db.prepare("INSERT INTO t VALUES (?)")
            try insert.bind(1, 1 as Int64)
            let error = try #require(throws: SQLiteError.self) { _ = try insert.step() }
            #expect(error.code == 19)  // SQLITE_CONSTRAINT
            #expect(error.extendedCode == 2067)  // SQLITE_CONSTRAINT_UNIQUE
            #expect(error.message.contains("UNIQUE constraint failed: t.x"))
            #expect(error.description.contains("extended code 2067"))
            #expect(error.description.contains("executing `INSERT INTO t VALUES (?)` on"))
            insert.reset()
            try insert.bind(1, 2 as Int64)
            #expect(try insert.step() == false, "the statement is usable after reset")
        }
    }

    @Test func bindingAnUnknownParameterFails() throws {
        try withTemporaryDirectory { directory in
            let db = try SQLiteDatabase(path: directory + "/t.db")
            let statement = try db.prepare("SELECT ?")
            let error = try #require(throws: SQLiteError.self) { try statement.bind(2, 1 as Int64) }
            #expect(error.code == 25)  // SQLITE_RANGE
            #expect(error.description.contains("binding parameter 2"))
        }
    }

    @Test func openingInAMissingDirectoryExplainsWhy() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/missing/t.db"
            let error = try #require(throws: SQLiteError.self) { _ = try SQLiteDatabase(path: path) }
            #expect(error.code == 14)  // SQLITE_CANTOPEN
            #expect(error.description.contains("while opening " + path))
            #expect(error.description.contains("No such file or directory"))
        }
    }

    @Test func errorDescriptionReadsLikeASentence() {
        let error = SQLiteError(code: 13, message: "database or disk is full", operation: "committing to",
                                path: "/var/lib/telemetryd/telemetry.db")
        #expect(error.description
            == "SQLite error 13 (database or disk is full) while committing to /var/lib/telemetryd/telemetry.db")
        #expect(error.isDiskFull)
        #expect(!error.isBusy && !error.isReadOnly && !error.isCorrupt)
        #expect(SQLiteError(code: 5, message: "", operation: "", path: "").isBusy)
        #expect(SQLiteError(code: 6, message: "", operation: "", path: "").isBusy)
        #expect(SQLiteError(code: 8, message: "", operation: "", path: "").isReadOnly)
        #expect(SQLiteError(code: 11, message: "", operation: "", path: "").isCorrupt)
        #expect(SQLiteError(code: 26, message: "", operation: "", path: "").isCorrupt)
    }
}
