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
/// like socket input and attributed to the file's owner (`st_uid`); the file is deleted once the writer has
/// committed its lines. A crash between commit and delete replays the file: lines of executions that closed
/// meanwhile are then refused as `execution_closed`, the rest is applied again (at least once).
final class SpoolIngester: @unchecked Sendable {
    struct Report: Sendable {
        var files = 0
        var lines = 0
        var rejected = 0
        var busy = 0
    }

    /// Spool files larger than this are not client-written (the client caps its file at 64 MiB): refused.
    static let maxFileBytes = (64 << 20) + 65_536

    private let directory: String
    private let writer: IngestWriter
    private let counters: DaemonCounters
    private let logger: Logger
    private let maxLineBytes: Int
    private let running = NIOLockedValueBox(false)

    init(directory: String, writer: IngestWriter, counters: DaemonCounters, logger: Logger, maxLineBytes: Int) {
        self.directory = directory
        self.writer = writer
        self.counters = counters
        self.logger = logger
        self.maxLineBytes = maxLineBytes
    }

    /// Creates the spool directory when missing: sticky and writable by all, listable by none but the daemon,
    /// so any local user can leave lines but nobody can read or remove another user's file.
    func prepareDirectory() {
        guard access(directory, F_OK) != 0 else { return }
        let previous = umask(0)
        defer { umask(previous) }
        if mkdir(directory, 0o1733) != 0 && errno != EEXIST {
            logger.warning("cannot create the spool directory; clients cannot spool while the daemon is away",
                           metadata: ["path": "\(directory)", "error": "\(errnoText())"])
        }
    }

    /// Ingests every finished spool file. Blocking: run it off the event loops. Concurrent calls are skipped.
    @discardableResult
    func ingestAvailable() -> Report {
        guard running.withLockedValue({ running in
            defer { running = true }
            return !running
        }) else { return Report() }
        defer { running.withLockedValue { $0 = false } }
        var report = Report()
        for name in fileNames() {
            ingest(file: name, report: &report)
        }
        if report.files > 0 {
            logger.notice("took in spooled lines", metadata: ["files": "\(report.files)", "lines": "\(report.lines)",
                                                            "rejected": "\(report.rejected)", "directory": "\(directory)"])
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

    private func ingest(file name: String, report: inout Report) {
        let path = directory + "/" + name
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            logger.error("cannot open a spool file; lines in it wait", metadata: ["path": "\(path)", "error": "\(errnoText())"])
            return
        }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            report.busy += 1
            return
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) <= Self.maxFileBytes else {
            logger.error("refusing a spool file that is not a regular file of at most 64 MiB; remove it",
                         metadata: ["path": "\(path)"])
            return
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            filled += count
        }
        let sender = SenderIdentity(uid: info.st_uid, pid: -1)
        var framer = LineFramer(maxLineBytes: maxLineBytes)
        var batch = IngestBatch()
        var rejects: [RejectReason: Int] = [:]
        let receivedAt = Timestamp.now()
        bytes.withUnsafeBytes { raw in
            framer.push(UnsafeRawBufferPointer(rebasing: raw[..<filled])) { framed in
                handle(framed, sender: sender, receivedAt: receivedAt, batch: &batch, rejects: &rejects)
                if batch.journal.count >= 1 << 20 {
                    submitWaiting(batch)
                    batch = IngestBatch()
                }
            }
            framer.finish { framed in
                handle(framed, sender: sender, receivedAt: receivedAt, batch: &batch, rejects: &rejects)
            }
        }
        let lines = batch.records.count
        if !batch.isEmpty { submitWaiting(batch) }
        let rejected = rejects.values.reduce(0, +)
        if rejected > 0 {
            counters.update { snapshot in
                for (reason, count) in rejects { snapshot.rejected[reason, default: 0] += count }
            }
        }
        guard case .success = flushWaiting() else {
            logger.error("could not commit spooled lines; the file is kept for the next attempt", metadata: ["path": "\(path)"])
            return
        }
        unlink(path)
        report.files += 1
        report.lines += lines
        report.rejected += rejected
    }

    private func handle(_ framed: FramedLine, sender: SenderIdentity, receivedAt: Timestamp,
                        batch: inout IngestBatch, rejects: inout [RejectReason: Int]) {
        switch framed {
        case .tooLong:
            rejects[.tooLong, default: 0] += 1
        case .line(let bytes):
            do {
                if case .record(let record) = try WireParser.parse(bytes, maxLineBytes: maxLineBytes) {
                    batch.append(record, json: bytes, sender: sender, receivedAt: receivedAt)
                }
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
