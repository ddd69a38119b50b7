import Logging
import NIOConcurrencyHelpers
import TelemetryCore
import TelemetryWire

#if canImport(Glibc)
import Glibc
#endif

/// Takes in the lines clients spooled while the daemon was unreachable (see `SpoolWriter` in the client).
///
/// Only finished files are read: a client holds an exclusive `flock` while it writes. Lines are validated
/// like socket input and attributed to the file's owner (`st_uid`), who must be allowed to write to the
/// daemon's socket. A file is read in bounded chunks and deleted once the writer has committed its lines.
/// If that commit fails, the lines stay with the writer (which retries) and the file is not read again by
/// this process; a crash before the commit replays it at the next start (at least once).
final class SpoolIngester: @unchecked Sendable {
    struct Report: Sendable {
        var files = 0
        var lines = 0
        var rejected = 0
        var discarded = 0
    }

    /// Spool files larger than this are not client-written (the client caps its file at 64 MiB): refused.
    static let maxFileBytes = (64 << 20) + 65_536
    static let readChunkBytes = 1 << 20

    private let directory: String
    private let socketPath: String
    private let enabled: Bool
    private let writer: IngestWriter
    private let counters: DaemonCounters
    private let logger: Logger
    private let maxLineBytes: Int
    private let state = NIOLockedValueBox(State())

    private struct State {
        var running = false
        /// Files whose lines the writer holds but has not committed yet: never read twice.
        var handedOver: Set<String> = []
    }

    init(directory: String, socketPath: String, enabled: Bool, writer: IngestWriter, counters: DaemonCounters,
         logger: Logger, maxLineBytes: Int) {
        self.directory = directory
        self.socketPath = socketPath
        self.enabled = enabled
        self.writer = writer
        self.counters = counters
        self.logger = logger
        self.maxLineBytes = maxLineBytes
    }

    /// Creates the spool directory when missing: sticky and writable by all, listable by none but the daemon,
    /// so a local user can leave lines but not read or remove another user's file. Whether the lines are
    /// taken follows the socket's permissions (`SocketAccess`). A packaged install creates it with a group.
    func prepareDirectory() {
        guard access(directory, F_OK) != 0 else { return }
        let previous = umask(0)
        defer { umask(previous) }
        if mkdir(directory, 0o1733) != 0 && errno != EEXIST {
            let code = errno
            logger.warning("cannot create the spool directory; clients cannot spool while the daemon is away",
                           metadata: ["path": "\(directory)", "error": "\(errnoText())", "errno": "\(code)"])
        }
    }

    /// Ingests every finished spool file. Blocking: run it off the event loops. Concurrent calls are skipped.
    @discardableResult
    func ingestAvailable() -> Report {
        guard state.withLockedValue({ state in
            defer { state.running = true }
            return !state.running
        }) else { return Report() }
        defer { state.withLockedValue { $0.running = false } }
        var report = Report()
        // While the store refuses commits there is no point in handing it more.
        if counters.snapshot.storeError != nil { return report }
        let access = SocketAccess(socketPath: socketPath)
        let handedOver = state.withLockedValue { $0.handedOver }
        for name in fileNames() where !handedOver.contains(name) {
            ingest(file: name, access: access, report: &report)
        }
        if report.files > 0 {
            logger.notice("took in spooled lines", metadata: [
                "files": "\(report.files)", "lines": "\(report.lines)", "rejected": "\(report.rejected)",
                "discarded": "\(report.discarded)", "directory": "\(directory)"])
        }
        return report
    }

    private func fileNames() -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".jsonl") && !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    private func ingest(file name: String, access: SocketAccess?, report: inout Report) {
        let path = directory + "/" + name
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            let code = errno
            logger.error("cannot open a spool file; its lines wait",
                         metadata: ["path": "\(path)", "error": "\(errnoText())", "errno": "\(code)"])
            return
        }
        defer { close(descriptor) }
        // A client still writing holds the lock: come back at the next scan.
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { return }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) <= Self.maxFileBytes else {
            logger.error("refusing a spool file that is not a regular file of at most 64 MiB; remove it",
                         metadata: ["path": "\(path)"])
            return
        }
        if !enabled || !(access?.permits(uid: info.st_uid) ?? true) {
            // Counted, not parsed: only how many lines are given up.
            let lines = countLines(descriptor)
            let reason: RejectReason = enabled ? .notPermitted : .disabled
            counters.reject(reason, count: lines)
            if enabled {
                logger.warning("discarded a spool file whose owner may not write to the socket",
                               metadata: ["path": "\(path)", "uid": "\(info.st_uid)", "lines": "\(lines)"])
            }
            unlink(path)
            report.files += 1
            report.discarded += lines
            return
        }

        let sender = SenderIdentity(uid: info.st_uid, pid: -1)
        var framer = LineFramer(maxLineBytes: maxLineBytes)
        var batch = IngestBatch()
        var rejects: [RejectReason: Int] = [:]
        var accepted = 0
        let receivedAt = Timestamp.now()
        var chunk = [UInt8](repeating: 0, count: Self.readChunkBytes)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            chunk.withUnsafeBytes { raw in
                framer.push(UnsafeRawBufferPointer(rebasing: raw[..<count])) { framed in
                    handle(framed, sender: sender, receivedAt: receivedAt, batch: &batch, rejects: &rejects)
                }
            }
            accepted += batch.lineCount
            if !batch.isEmpty { submitWaiting(batch) }
            batch = IngestBatch()
        }
        framer.finish { framed in handle(framed, sender: sender, receivedAt: receivedAt, batch: &batch, rejects: &rejects) }
        accepted += batch.lineCount
        if !batch.isEmpty { submitWaiting(batch) }
        let rejected = rejects.values.reduce(0, +)
        if rejected > 0 {
            counters.update { snapshot in
                for (reason, count) in rejects { snapshot.rejected[reason, default: 0] += count }
            }
        }
        report.lines += accepted
        report.rejected += rejected
        guard case .success = flushWaiting() else {
            _ = state.withLockedValue { $0.handedOver.insert(name) }
            logger.error("spooled lines are held in memory until the store accepts them; the file stays until then",
                         metadata: ["path": "\(path)"])
            return
        }
        unlink(path)
        report.files += 1
    }

    /// Deletes files whose lines have been committed since they were handed over. Called after each scan.
    func forgetCommitted() {
        guard counters.snapshot.storeError == nil else { return }
        let names = state.withLockedValue { state -> Set<String> in
            defer { state.handedOver = [] }
            return state.handedOver
        }
        guard !names.isEmpty, case .success = flushWaiting() else {
            state.withLockedValue { $0.handedOver.formUnion(names) }
            return
        }
        for name in names { unlink(directory + "/" + name) }
    }

    private func countLines(_ descriptor: Int32) -> Int {
        var lines = 0
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            for index in 0..<count where chunk[index] == UInt8(ascii: "\n") { lines += 1 }
        }
        return lines
    }

    private func handle(_ framed: FramedLine, sender: SenderIdentity, receivedAt: Timestamp,
                        batch: inout IngestBatch, rejects: inout [RejectReason: Int]) {
        switch framed {
        case .tooLong:
            rejects[.tooLong, default: 0] += 1
        case .line(let bytes):
            do {
                let parsed = try WireParser.parseLine(bytes, maxLineBytes: maxLineBytes)
                if case .control = parsed { return }
                batch.append(parsed, json: bytes, sender: sender, receivedAt: receivedAt)
            } catch {
                rejects[error.reason, default: 0] += 1
            }
        }
    }

    private func submitWaiting(_ batch: IngestBatch) {
        if writer.submit(batch) { return }
        let ready = ConditionLock(value: false)
        writer.whenCapacityAvailable {
            ready.lock()
            ready.unlock(withValue: true)
        }
        ready.lock(whenValue: true)
        ready.unlock()
    }

    private func flushWaiting() -> Result<Void, IngestWriter.FlushError> {
        let done = ConditionLock(value: false)
        let result = NIOLockedValueBox<Result<Void, IngestWriter.FlushError>>(.failure(.stopped))
        writer.flush { outcome in
            result.withLockedValue { $0 = outcome }
            done.lock()
            done.unlock(withValue: true)
        }
        done.lock(whenValue: true)
        done.unlock()
        return result.withLockedValue { $0 }
    }
}
