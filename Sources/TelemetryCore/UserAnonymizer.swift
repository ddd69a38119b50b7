#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns the sender's uid (from SO_PEERCRED) into the document's `user_id`.
///
/// `user_id` = `"u_"` + the first 16 bytes of HMAC-SHA-256(installation key, `"telemetryd-user-v1:<uid>"`)
/// in lowercase hex (34 characters). It is stable for one user on one installation, differs between hosts
/// (each has its own key, see `AnonymizationKey`), and reveals neither the uid nor the user name: without
/// the key the small uid space cannot be enumerated. Nothing is cached here; the daemon keeps its own cache.
public struct UserAnonymizer: Sendable {
    /// Prefix of every user id, so an anonymized id is recognizable in a document or a log.
    public static let idPrefix = "u_"
    /// Domain separation: bump the version if the derivation ever changes, so old and new ids never collide.
    static let messagePrefix = "telemetryd-user-v1:"

    private let key: [UInt8]

    /// `key` should be the 32-byte installation key from `AnonymizationKey.loadOrCreate(atPath:)`.
    public init(key: [UInt8]) {
        self.key = key
    }

    public func userID(forUID uid: UInt32) -> String {
        let message = Array((Self.messagePrefix + String(uid)).utf8)
        let mac = HMACSHA256.authenticationCode(key: key, message: message)
        return Self.idPrefix + SHA256.lowercaseHex(mac.prefix(16))
    }
}

extension SHA256 {
    /// Lowercase hexadecimal text of `bytes`.
    static func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Why the installation key could not be loaded or created.
public struct AnonymizationKeyError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A system call failed (`operation` names it, e.g. "open", "rename"); `errno` says why.
        case systemCall(operation: String)
        /// The file is accessible by group or others; `mode` holds its permission bits.
        case insecurePermissions(mode: UInt32)
        /// The file does not hold exactly `AnonymizationKey.byteCount` bytes.
        case wrongSize(byteCount: Int)
        /// The path exists but is not a regular file.
        case notRegularFile
    }

    public var kind: Kind
    /// The key file (or, for a failed directory fsync, its directory).
    public var path: String
    /// The errno of a failed system call, 0 otherwise.
    public var errno: Int32

    public init(kind: Kind, path: String, errno: Int32 = 0) {
        self.kind = kind
        self.path = path
        self.errno = errno
    }

    /// `strerror(errno)`, or nil when no system call failed.
    public var errnoText: String? {
        errno == 0 ? nil : String(cString: strerror(errno))
    }

    public var description: String {
        let consequence = "(deleting it generates a new key: every user_id on this host changes)"
        switch kind {
        case .systemCall(let operation):
            return "anonymization key \(path): \(operation) failed: \(errnoText ?? "unknown error")"
        case .insecurePermissions(let mode):
            return "anonymization key \(path) is accessible by group or others (mode \(octal(mode))); "
                + "run 'chmod 600 \(path)', or delete it to generate a new one \(consequence)"
        case .wrongSize(let byteCount):
            return "anonymization key \(path) holds \(byteCount) bytes, expected exactly \(AnonymizationKey.byteCount); "
                + "restore the original file, or delete it to generate a new one \(consequence)"
        case .notRegularFile:
            return "anonymization key \(path) is not a regular file; remove it so that a key file can be created"
        }
    }
}

private func octal(_ mode: UInt32) -> String {
    let digits = String(mode & 0o7777, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// The per-installation secret behind `UserAnonymizer`, kept in the state directory (by default
/// `/var/lib/telemetryd/anonymization.key`).
public enum AnonymizationKey {
    /// Size of the key in bytes.
    public static let byteCount = 32
    /// File name of the key inside TELEMETRY_STATE_DIR.
    public static let fileName = "anonymization.key"

    /// Reads the key at `path`, or creates it if there is no file there.
    ///
    /// An existing file must be a regular file of exactly 32 bytes with no permission bits for group or
    /// others; anything else is refused with an error that says how to fix it (never silently replaced:
    /// a new key changes every user id). A new key is 32 bytes from `getrandom()`, written atomically:
    /// `<path>.tmp` is created with O_CREAT|O_EXCL and mode 0600, written, fsynced and renamed over `path`,
    /// then the directory is fsynced. A `.tmp` left behind by a crash is removed first. The directory must
    /// exist. Only one process may create the key at a time (the daemon is a single instance).
    public static func loadOrCreate(atPath path: String) throws(AnonymizationKeyError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            return try readKey(fd: fd, path: path)
        }
        let openErrno = errno
        guard openErrno == ENOENT else {
            throw AnonymizationKeyError(kind: .systemCall(operation: "open"), path: path, errno: openErrno)
        }
        return try create(atPath: path)
    }

    private static func readKey(fd: Int32, path: String) throws(AnonymizationKeyError) -> [UInt8] {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw AnonymizationKeyError(kind: .systemCall(operation: "fstat"), path: path, errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw AnonymizationKeyError(kind: .notRegularFile, path: path)
        }
        let mode = UInt32(info.st_mode) & 0o7777
        guard mode & 0o077 == 0 else {
            throw AnonymizationKeyError(kind: .insecurePermissions(mode: mode), path: path)
        }
        guard info.st_size == byteCount else {
            throw AnonymizationKeyError(kind: .wrongSize(byteCount: Int(info.st_size)), path: path)
        }
        var key = [UInt8](repeating: 0, count: byteCount + 1)  // one extra byte to notice a file that grew
        var filled = 0
        while filled < key.count {
            let count = key.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw AnonymizationKeyError(kind: .systemCall(operation: "read"), path: path, errno: errno)
            }
            if count == 0 { break }
            filled += count
        }
        guard filled == byteCount else {
            throw AnonymizationKeyError(kind: .wrongSize(byteCount: filled), path: path)
        }
        key.removeLast()
        return key
    }

    private static func create(atPath path: String) throws(AnonymizationKeyError) -> [UInt8] {
        let key = try randomBytes(count: byteCount, path: path)
        let temporaryPath = path + ".tmp"

        var fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == EEXIST {
            // Left behind by a crash between create and rename: it never became the key, so drop it.
            _ = unlink(temporaryPath)
            fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else {
            throw AnonymizationKeyError(kind: .systemCall(operation: "create"), path: temporaryPath, errno: errno)
        }
        do throws(AnonymizationKeyError) {
            defer { close(fd) }
            // The umask can only remove bits; make the mode exactly 0600 whatever it is.
            guard fchmod(fd, 0o600) == 0 else {
                throw AnonymizationKeyError(kind: .systemCall(operation: "fchmod"), path: temporaryPath, errno: errno)
            }
            var written = 0
            while written < key.count {
                let count = key.withUnsafeBytes { buffer in
                    write(fd, buffer.baseAddress! + written, buffer.count - written)
                }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw AnonymizationKeyError(kind: .systemCall(operation: "write"), path: temporaryPath, errno: errno)
                }
                written += count
            }
            guard fsync(fd) == 0 else {
                throw AnonymizationKeyError(kind: .systemCall(operation: "fsync"), path: temporaryPath, errno: errno)
            }
        } catch {
            _ = unlink(temporaryPath)
            throw error
        }
        guard rename(temporaryPath, path) == 0 else {
            let renameErrno = errno
            _ = unlink(temporaryPath)
            throw AnonymizationKeyError(kind: .systemCall(operation: "rename"), path: path, errno: renameErrno)
        }
        let directory = parentDirectory(of: path)
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else {
            throw AnonymizationKeyError(kind: .systemCall(operation: "open directory"), path: directory, errno: errno)
        }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else {
            throw AnonymizationKeyError(kind: .systemCall(operation: "fsync directory"), path: directory, errno: errno)
        }
        return key
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == path.utf8.startIndex { return "/" }
        return String(path[..<slash])
    }

    private typealias GetRandomFunction = @convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> Int

    /// `count` bytes from the kernel CSPRNG: getrandom(2) (looked up at run time, as the Glibc module does
    /// not export it), or /dev/urandom where the C library lacks it.
    static func randomBytes(count: Int, path: String) throws(AnonymizationKeyError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        if let symbol = dlsym(nil, "getrandom") {
            let getrandom = unsafeBitCast(symbol, to: GetRandomFunction.self)
            while filled < count {
                let got = bytes.withUnsafeMutableBytes { buffer in
                    getrandom(buffer.baseAddress! + filled, buffer.count - filled, 0)
                }
                if got < 0 {
                    if errno == EINTR { continue }
                    if errno == ENOSYS { break }
                    throw AnonymizationKeyError(kind: .systemCall(operation: "getrandom"), path: path, errno: errno)
                }
                filled += got
            }
            if filled == count { return bytes }
        }
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw AnonymizationKeyError(kind: .systemCall(operation: "open /dev/urandom"), path: path, errno: errno)
        }
        defer { close(fd) }
        filled = 0
        while filled < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw AnonymizationKeyError(kind: .systemCall(operation: "read /dev/urandom"), path: path, errno: errno)
            }
            filled += got
        }
        return bytes
    }
}
