#ifndef TELEMETRY_CWALWRITEBUFFER_H
#define TELEMETRY_CWALWRITEBUFFER_H

// A SQLite VFS that gathers a connection's WAL writes into 256 KiB writes.
//
// Why: SQLite writes each WAL frame as two pwrite calls (a 24-byte header, then the page). The ingest writer
// commits about 3 MB of 16 KiB pages every 10 ms, and the kernel's cost per call of a buffered write to a
// growing ext4 file was the largest share of the one thread every accepted line goes through: 38 % of its
// CPU samples. Measured on this project's VM, writing 270 MB to a fresh file took 180-210 ms in frame-sized
// calls, 105-115 ms in 124 KiB calls and 55-90 ms in 1 MiB calls. In the daemon, 256 KiB was the best
// buffer: the writer thread's CPU for a million lines fell from 470-590 ms to 320-380 ms in most runs, the syncer's
// fdatasync from about 60 to 30 ms, and the ingest rate rose by about a third. (1 MiB measured worse than
// 256 KiB in the daemon, and unevenly: the copy into and out of a buffer that size competes for the cache.)
//
// What it keeps: the bytes reach the file in the same order and at the same offsets as without it, and a
// transaction's frames are all written before SQLite publishes the commit to readers (the wal-index header).
// - The VFS sees the commit frame's header (its "database size after commit" field is non-zero) and writes
//   everything gathered when the page that follows it arrives, inside SQLite's own xWrite call, so a failed
//   write (a full disk) fails the commit, as it would without the buffer.
// - Only appends are gathered. A rewrite (a page written twice in one transaction, a frame header
//   re-checksummed at commit) goes to the file at once, after what was gathered; so does everything gathered
//   before any read, truncate, sync, size query or file control on the WAL.
// - When the connection releases the WAL write lock, its transaction is over: a commit has written its
//   frames, so what is still gathered was rolled back, and is dropped. (Written later, it could overwrite
//   frames another connection has committed meanwhile at the same offsets.)
// - The database file's xShmBarrier, which SQLite calls while it publishes a commit, writes anything the
//   commit-frame rule missed (counted in barrierFlushes; none is expected), and stops the process if that
//   write fails, rather than let readers take whatever the file held at those offsets for the commit.
// - A failed write of gathered bytes fails every later write and sync of its transaction, so nothing of it
//   can commit even if SQLite rolled back only the statement that met the error.
// - A WAL whose database lacks SQLITE_IOCAP_POWERSAFE_OVERWRITE, where a synchronous=FULL commit pads and
//   splits its last frame around a sync, is not buffered at all.
//
// Only connections opened with the VFS name below use it (the daemon's ingest writer); every other file and
// connection goes straight to the default VFS.

#include <sqlite3.h>

/// The VFS name to pass to sqlite3_open_v2.
#define TELEMETRY_WAL_WRITE_BUFFER_VFS "telemetryd-wal-write-buffer"

/// File-control opcodes, for sqlite3_file_control(db, "main", op, arg) on a connection opened with the VFS.
/// Chosen far above SQLite's own opcodes; the default VFS answers them with SQLITE_NOTFOUND.
enum {
    /// Frees the WAL's buffer. arg: unused. Between transactions, on an idle connection (SQLITE_MISUSE inside
    /// a write transaction, while bytes are gathered).
    TELEMETRY_WAL_WRITE_BUFFER_RELEASE = 0x54570001,
    /// Copies the WAL's counters into arg, a `struct telemetry_wal_write_buffer_stats *`.
    TELEMETRY_WAL_WRITE_BUFFER_STATS = 0x54570002,
};

struct telemetry_wal_write_buffer_stats {
    /// xWrite calls SQLite made on the WAL.
    sqlite3_int64 writes;
    /// Writes that reached the file (gathered flushes plus writes passed straight through).
    sqlite3_int64 fileWrites;
    /// Bytes SQLite wrote to the WAL.
    sqlite3_int64 bytes;
    /// Commits whose last bytes were still gathered when SQLite published them (xShmBarrier), i.e. that the
    /// commit-frame rule missed. Zero unless SQLite's WAL writes change shape.
    sqlite3_int64 barrierFlushes;
    /// Gathered bytes dropped because their transaction ended without a commit (a rollback).
    sqlite3_int64 discardedBytes;
    /// Whether a buffer is allocated.
    int bufferAllocated;
};

/// Registers the VFS (once per process; later calls return the first result). Not the default VFS.
int telemetry_wal_write_buffer_register(void);

#endif
