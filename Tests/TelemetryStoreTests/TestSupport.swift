import TelemetryStore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fresh directory under the system temp directory, removed (recursively) after `body`.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let directory = try makeTemporaryDirectory()
    defer { removeRecursively(directory) }
    return try body(directory)
}

/// A fresh directory under the system temp directory; the caller removes it.
func makeTemporaryDirectory() throws -> String {
    let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    var template = Array((base + "/telemetry-store-test.XXXXXX").utf8CString)
    guard let created = mkdtemp(&template) else {
        throw TestFailure("mkdtemp failed: errno \(errno)")
    }
    return String(cString: created)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func removeRecursively(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if (info.st_mode & S_IFMT) == S_IFDIR {
        if let dir = opendir(path) {
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafePointer(to: &entry.pointee.d_name) {
                    String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { removeRecursively(path + "/" + name) }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

func fileExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0
}

func fileMode(_ path: String) -> UInt32? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return UInt32(info.st_mode) & 0o7777
}

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let file = fopen(path, "wb") else { throw TestFailure("cannot create \(path)") }
    defer { fclose(file) }
    guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw TestFailure("cannot write \(path)") }
}

/// The first column of the first row of `sql`, as an integer.
func scalar(_ database: SQLiteDatabase, _ sql: String) throws -> Int64 {
    let statement = try database.prepare(sql)
    guard try statement.step() else { throw TestFailure("no row for \(sql)") }
    return statement.int64(0)
}

func text(_ database: SQLiteDatabase, _ sql: String) throws -> String {
    let statement = try database.prepare(sql)
    guard try statement.step() else { throw TestFailure("no row for \(sql)") }
    return statement.text(0)
}

func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// A deterministic, UUID-shaped execution id.
func executionID(_ n: Int) -> String {
    let hex = String(n, radix: 16)
    return "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
}

func document(_ n: Int, script: String = "backup.sh", status: String = "success", completedAt: Int64? = nil,
              body: String? = nil) -> StoredDocument {
    StoredDocument(executionID: executionID(n), scriptName: script, status: status,
                   startedAt: 1_700_000_000_000_000 + Int64(n) * 1_000_000,
                   completedAt: completedAt ?? 1_700_000_000_000_000 + Int64(n) * 1_000_000 + 500_000,
                   body: bytes(body ?? #"{"execution_id":"\#(executionID(n))","n":\#(n)}"#))
}

/// All journal chunks, in the order `forEachJournalChunk` yields them.
func journal(_ store: TelemetryStore) throws -> [(Int64, [UInt8])] {
    var chunks: [(Int64, [UInt8])] = []
    try store.forEachJournalChunk { chunks.append(($0, $1)) }
    return chunks
}
