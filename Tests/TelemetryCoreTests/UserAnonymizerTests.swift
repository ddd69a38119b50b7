#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

@testable import TelemetryCore

/// A fresh private directory under /tmp, removed (with its files) by `remove()`.
private struct KeyTestDirectory {
    let path: String

    init() {
        var template = Array("/tmp/telemetryd-core-test-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { _ = unlink(path + "/" + name) }
            }
            closedir(directory)
        }
        _ = rmdir(path)
    }
}

private func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    precondition(fd >= 0)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    _ = fchmod(fd, mode)
    close(fd)
}

private func fileMode(_ path: String) -> UInt32? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return UInt32(info.st_mode) & 0o7777
}

private func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

@Suite("UserAnonymizer")
struct UserAnonymizerTests {
    let key = (0..<32).map { UInt8($0) }

    @Test("known answer: u_ + first 16 bytes of HMAC-SHA-256(key, \"telemetryd-user-v1:<uid>\")")
    func knownAnswer() {
        let anonymizer = UserAnonymizer(key: key)
        #expect(anonymizer.userID(forUID: 1000) == "u_06bc9cc6ae46d78fe51805624038b334")
        #expect(anonymizer.userID(forUID: 0) == "u_6e38381128ee1e1a11632bd7caeca462")
    }

    @Test("stable: the same uid and key always give the same id")
    func stable() {
        let first = UserAnonymizer(key: key).userID(forUID: 1000)
        let second = UserAnonymizer(key: key).userID(forUID: 1000)
        #expect(first == second)
        #expect(UserAnonymizer(key: key).userID(forUID: 1000) == first)
    }

    @Test("different uids give different ids")
    func differentUIDs() {
        let anonymizer = UserAnonymizer(key: key)
        let uids: [UInt32] = [0, 1, 2, 10, 100, 999, 1000, 1001, 65_534, 65_535, UInt32.max]
        let ids = Set(uids.map { anonymizer.userID(forUID: $0) })
        #expect(ids.count == uids.count)
    }

    @Test("different keys (hosts) give different ids for the same uid")
    func differentKeys() {
        var otherKey = key
        otherKey[31] ^= 1
        #expect(UserAnonymizer(key: key).userID(forUID: 1000) != UserAnonymizer(key: otherKey).userID(forUID: 1000))
    }

    @Test("format: u_ and 32 lowercase hex digits, never the uid itself", arguments: [0, 7, 1000, 4_294_967_295] as [UInt32])
    func format(uid: UInt32) {
        let id = UserAnonymizer(key: key).userID(forUID: uid)
        #expect(id.hasPrefix("u_"))
        #expect(id.utf8.count == 34)
        let digits = id.dropFirst(2)
        #expect(digits.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
        #expect(id != "u_\(uid)")
    }
}

@Suite("AnonymizationKey")
struct AnonymizationKeyTests {
    @Test("creates a 32-byte key with mode 0600, then reloads the same key")
    func createAndReload() throws {
        let directory = KeyTestDirectory()
        defer { directory.remove() }
        let path = directory.path + "/" + AnonymizationKey.fileName

        let created = try AnonymizationKey.loadOrCreate(atPath: path)
        #expect(created.count == 32)
        #expect(created != [UInt8](repeating: 0, count: 32))
        #expect(fileMode(path) == 0o600)
        #expect(!fileExists(path + ".tmp"))

        let reloaded = try AnonymizationKey.loadOrCreate(atPath: path)
        #expect(reloaded == created)
    }

    @Test("two installations get different keys")
    func distinctKeys() throws {
        let directory = KeyTestDirectory()
        defer { directory.remove() }
        let first = try AnonymizationKey.loadOrCreate(atPath: directory.path + "/a.key")
        let second = try AnonymizationKey.loadOrCreate(atPath: directory.path + "/b.key")
        #expect(first != second)
    }

    @Test("a stale .tmp left by a crash does not block creation")
    func staleTemporaryFile() throws {
        let directory = KeyTestDirectory()
        defer { directory.remove() }
        let path = directory.path + "/anonymization.key"
        writeFile(path + ".tmp", [1, 2, 3], mode: 0o600)
        let key = try AnonymizationKey.loadOrCreate(atPath: path)
        #expect(key.count == 32)
        #expect(!fileExists(path + ".tmp"))
    }

    @Test("a key readable by group or others is refused, with chmod advice", arguments: [0o644, 0o640, 0o604, 0o660] as [mode_t])
    func insecureModeRefused(mode: mode_t) {
        let directory = KeyTestDirectory()
        defer { directory.remove() }
        let path = directory.path + "/anonymization.key"
        writeFile(path, [UInt8](repeating: 7, count: 32), mode: mode)
        #expect {
            _ = try AnonymizationKey.loadOrCreate(atPath: path)
        } throws: { error in
            guard let error = error as? AnonymizationKeyError else { return false }
            return error.kind == .insecurePermissions(mode: UInt32(mode)) && error.path == path
                && error.description.contains("chmod 600 \(path)") && error.description.contains("delete it")
        }
        // Refusing must not touch the file.
        #expect(fileMode(path) == UInt32(mode))
    }

    @Test("a key of the wrong size is refused", arguments: [0, 16, 31, 33, 64])
    func wrongSizeRefused(size: Int) {
        let directory = KeyTestDirectory()
        defer { directory.remove() }
        let path = directory.path + "/anonymization.key"
        writeFile(path, [UInt8](repeating: 7, count: size), mode: 0o600)
        #expect(throws: AnonymizationKeyError(kind: .wrongSize(byteCount: size), path: path)) {
            _ = try AnonymizationKey.loadOrCreate(atPath: path)
        }
    }

    @Test("a directory in place of the key is refused")
    func notARegularFile() {
        let directory = KeyTestDirectory()
        defer { directory.remove() }
        let path = directory.path + "/anonymization.key"
        #expect(mkdir(path, 0o700) == 0)
        defer { rmdir(path) }
        #expect(throws: AnonymizationKeyError(kind: .notRegularFile, path: path)) {
            _ = try AnonymizationKey.loadOrCreate(atPath: path)
        }
    }

    @Test("a missing directory gives an errno error naming the path")
    func missingDirectory() {
        let path = "/nonexistent-telemetryd-test-dir/anonymization.key"
        #expect {
            _ = try AnonymizationKey.loadOrCreate(atPath: path)
        } throws: { error in
            guard let error = error as? AnonymizationKeyError else { return false }
            return error.errno == ENOENT && error.description.contains(path + ".tmp")
                && error.description.contains("No such file or directory")
        }
    }

    @Test("parent directory of a key path")
    func parentDirectory() {
        #expect(AnonymizationKey.parentDirectory(of: "/var/lib/telemetryd/anonymization.key") == "/var/lib/telemetryd")
        #expect(AnonymizationKey.parentDirectory(of: "/key") == "/")
        #expect(AnonymizationKey.parentDirectory(of: "key") == ".")
    }
}
