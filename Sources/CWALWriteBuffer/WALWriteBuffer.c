#include "CWALWriteBuffer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// See CWALWriteBuffer.h for what this is and why.

enum {
    bufferCapacity = 256 * 1024,
    walFrameHeaderSize = 24,  // https://sqlite.org/fileformat2.html#walformat
};

typedef struct BufferedFile BufferedFile;

struct BufferedFile {
    sqlite3_file base;        // must come first: SQLite sees this
    sqlite3_file *real;       // the default VFS's file, allocated right after this struct
    int isWAL;
    int descriptor;           // a WAL's own descriptor for the gathered writes, or -1 (see vfsOpen)
    BufferedFile *wal;        // for a database file: its open WAL, if any (for xShmBarrier and file controls)
    BufferedFile *database;   // for a WAL: its database file
    unsigned char *buffer;    // gathered bytes for file offsets [bufferOffset, bufferOffset + bufferLength)
    sqlite3_int64 bufferOffset;
    int bufferLength;
    sqlite3_int64 previousWriteEnd;  // the file offset after the previous write (-1 before the first)
    int commitPageNext;       // the last write was a commit frame's header: its page ends the transaction
    int failedWrite;          // SQLite error of a failed flush in this write transaction, or SQLITE_OK
    struct telemetry_wal_write_buffer_stats stats;
};

static sqlite3_vfs *defaultVFS;
static sqlite3_vfs bufferVFS;

// MARK: The WAL's buffer

static int writeThrough(BufferedFile *file, const void *data, int amount, sqlite3_int64 offset) {
    file->stats.fileWrites += 1;
    return file->real->pMethods->xWrite(file->real, data, amount, offset);
}

/// Writes the gathered bytes. The buffer is empty afterwards, also when the write failed. A failure is then
/// returned by every later write and sync of the transaction (until the write lock is released): frames of it
/// are missing from the file, so nothing of it may commit, even if SQLite rolled back only the statement that
/// met the error and the caller went on. (Reads still work: a rollback reloads committed pages.)
static int flushBuffer(BufferedFile *file) {
    if (file->bufferLength == 0) return SQLITE_OK;
    const unsigned char *data = file->buffer;
    size_t length = (size_t)file->bufferLength;
    off_t offset = (off_t)file->bufferOffset;
    file->bufferLength = 0;
    file->stats.fileWrites += 1;
    while (length > 0) {
        ssize_t wrote = pwrite(file->descriptor, data, length, offset);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0) {
            // A write that makes no progress is a full disk, as SQLite's own unixWrite reads it.
            file->failedWrite = wrote == 0 || errno == ENOSPC || errno == EDQUOT ? SQLITE_FULL : SQLITE_IOERR_WRITE;
            return file->failedWrite;
        }
        data += wrote;
        length -= (size_t)wrote;
        offset += wrote;
    }
    return SQLITE_OK;
}

/// For SQLite's publication of a commit (xShmBarrier), which cannot fail: gathered bytes still waiting there
/// belong to the commit being published (the commit-frame rule in walWrite normally wrote them already). If
/// they cannot be written, readers and the checkpointer would read whatever the file held at those offsets
/// (after a WAL restart, pages of an older generation) as committed data. Stopping the process instead leaves
/// a WAL whose recovery drops the commit by its checksums, as after a crash during the write; the commit was
/// never reported as done.
static void writeOrAbort(BufferedFile *file) {
    int rc = flushBuffer(file);
    if (rc == SQLITE_OK) return;
    fprintf(stderr, "telemetryd: could not write the WAL frames of a commit SQLite is publishing (SQLite error "
                    "%d); stopping so that recovery drops that commit\n", rc);
    abort();
}

/// Drops gathered bytes that no commit will publish: what a write transaction leaves when it ends without
/// committing (a rollback after its pages spilled from the cache). Written later, outside the write lock, they
/// could land on frames another connection has committed since at the same offsets.
static void discardBuffer(BufferedFile *file) {
    file->stats.discardedBytes += file->bufferLength;
    file->bufferLength = 0;
    file->previousWriteEnd = -1;
    file->commitPageNext = 0;
    file->failedWrite = SQLITE_OK;
}

static int isCommitFrameHeader(const void *data, int amount) {
    if (amount != walFrameHeaderSize) return 0;
    const unsigned char *header = data;
    // Bytes 4-7: for a commit frame, the database size in pages after the commit; zero otherwise.
    return (header[4] | header[5] | header[6] | header[7]) != 0;
}

/// SQLite's writes to a WAL are of three kinds: appends (the WAL header at offset 0, then each frame's header and
/// page at the end), pages overwritten in place (a page written twice in one transaction that spilled from the
/// cache), and frame headers rewritten with new checksums at the commit of such a transaction. Only appends
/// are gathered: a write that does not continue the previous one (nor starts a WAL at offset 0) is a rewrite,
/// and goes to the file at once, after what was gathered. So a rewritten commit-frame header, which no page
/// follows, never waits in the buffer; and the page after a commit-frame header writes everything. (The first
/// write of a connection that found frames in the WAL does not continue a previous write either: it goes
/// straight to the file, and the writes after it are gathered.)
static int walWrite(BufferedFile *file, const void *data, int amount, sqlite3_int64 offset) {
    if (file->failedWrite != SQLITE_OK) return file->failedWrite;
    file->stats.writes += 1;
    file->stats.bytes += amount;
    int appends = offset == file->previousWriteEnd || (offset == 0 && file->bufferLength == 0);
    int endsTransaction = file->commitPageNext;
    file->commitPageNext = isCommitFrameHeader(data, amount);
    file->previousWriteEnd = offset + amount;

    int rc;
    if (file->bufferLength > 0 && (!appends || file->bufferLength + amount > bufferCapacity)) {
        if ((rc = flushBuffer(file)) != SQLITE_OK) return rc;
    }
    if (!appends || file->descriptor < 0 || amount >= bufferCapacity) {
        return writeThrough(file, data, amount, offset);
    }
    if (file->buffer == NULL) {
        file->buffer = malloc(bufferCapacity);
        file->stats.bufferAllocated = file->buffer != NULL;
        if (file->buffer == NULL) return writeThrough(file, data, amount, offset);
    }
    if (file->bufferLength == 0) file->bufferOffset = offset;
    memcpy(file->buffer + file->bufferLength, data, (size_t)amount);
    file->bufferLength += amount;
    return endsTransaction ? flushBuffer(file) : SQLITE_OK;
}

/// Frees the buffer. Called when it holds nothing a commit needs: at xClose, and for the RELEASE file control
/// between transactions (which refuses while bytes are gathered).
static void releaseBuffer(BufferedFile *file) {
    discardBuffer(file);
    free(file->buffer);
    file->buffer = NULL;
    file->stats.bufferAllocated = 0;
}

// MARK: I/O methods (every file opened through the VFS; only a WAL gathers writes)

/// Before anything but an append reaches a WAL: what was gathered goes first, so the file is as SQLite wrote it.
static int flushIfWAL(BufferedFile *file) {
    return file->isWAL ? flushBuffer(file) : SQLITE_OK;
}

static int fileClose(sqlite3_file *base) {
    BufferedFile *file = (BufferedFile *)base;
    if (file->isWAL) {
        releaseBuffer(file);
        if (file->descriptor >= 0) close(file->descriptor);
        file->descriptor = -1;
        if (file->database != NULL && file->database->wal == file) file->database->wal = NULL;
    } else if (file->wal != NULL) {
        file->wal->database = NULL;
    }
    int rc = file->real->pMethods ? file->real->pMethods->xClose(file->real) : SQLITE_OK;
    file->real->pMethods = NULL;
    return rc;
}

static int fileRead(sqlite3_file *base, void *data, int amount, sqlite3_int64 offset) {
    BufferedFile *file = (BufferedFile *)base;
    int rc = flushIfWAL(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xRead(file->real, data, amount, offset);
}

static int fileWrite(sqlite3_file *base, const void *data, int amount, sqlite3_int64 offset) {
    BufferedFile *file = (BufferedFile *)base;
    if (file->isWAL) return walWrite(file, data, amount, offset);
    return file->real->pMethods->xWrite(file->real, data, amount, offset);
}

static int fileTruncate(sqlite3_file *base, sqlite3_int64 size) {
    BufferedFile *file = (BufferedFile *)base;
    int rc = flushIfWAL(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xTruncate(file->real, size);
}

static int fileSync(sqlite3_file *base, int flags) {
    BufferedFile *file = (BufferedFile *)base;
    if (file->isWAL && file->failedWrite != SQLITE_OK) return file->failedWrite;
    int rc = flushIfWAL(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xSync(file->real, flags);
}

static int fileSize(sqlite3_file *base, sqlite3_int64 *size) {
    BufferedFile *file = (BufferedFile *)base;
    int rc = flushIfWAL(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xFileSize(file->real, size);
}

static int fileLock(sqlite3_file *base, int level) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xLock(file->real, level);
}

static int fileUnlock(sqlite3_file *base, int level) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xUnlock(file->real, level);
}

static int fileCheckReservedLock(sqlite3_file *base, int *reserved) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xCheckReservedLock(file->real, reserved);
}

static int fileControl(sqlite3_file *base, int op, void *arg) {
    BufferedFile *file = (BufferedFile *)base;
    BufferedFile *wal = file->isWAL ? file : file->wal;
    switch (op) {
    case TELEMETRY_WAL_WRITE_BUFFER_RELEASE:
        if (wal != NULL && wal->bufferLength > 0) return SQLITE_MISUSE;  // inside a write transaction
        if (wal != NULL) releaseBuffer(wal);
        return SQLITE_OK;
    case TELEMETRY_WAL_WRITE_BUFFER_STATS:
        if (wal == NULL) return SQLITE_NOTFOUND;
        *(struct telemetry_wal_write_buffer_stats *)arg = wal->stats;
        return SQLITE_OK;
    default: {
        int rc = flushIfWAL(file);
        if (rc != SQLITE_OK) return rc;
        return file->real->pMethods->xFileControl(file->real, op, arg);
    }
    }
}

static int fileSectorSize(sqlite3_file *base) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xSectorSize(file->real);
}

static int fileDeviceCharacteristics(sqlite3_file *base) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}

static int fileShmMap(sqlite3_file *base, int page, int pageSize, int extend, void volatile **memory) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xShmMap(file->real, page, pageSize, extend, memory);
}

/// The wal-index lock slot SQLite holds for a whole write transaction (WAL_WRITE_LOCK in wal.c). Every write
/// to the WAL happens while a connection holds it.
enum { walWriteLockSlot = 0 };

static int fileShmLock(sqlite3_file *base, int offset, int count, int flags) {
    BufferedFile *file = (BufferedFile *)base;
    int rc = file->real->pMethods->xShmLock(file->real, offset, count, flags);
    // The end of this connection's write transaction: a commit has written its frames by now, so anything
    // still gathered was rolled back.
    if (file->wal != NULL && flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE)
        && offset <= walWriteLockSlot && walWriteLockSlot < offset + count) {
        discardBuffer(file->wal);
    }
    return rc;
}

/// SQLite calls this on the database file while it publishes a commit in the wal-index, after the commit's
/// frames are written: the commit-frame rule in walWrite has written them already, so this normally finds an
/// empty buffer. (It also runs at the start of every transaction, when the buffer is empty: see fileShmLock.)
static void fileShmBarrier(sqlite3_file *base) {
    BufferedFile *file = (BufferedFile *)base;
    if (file->wal != NULL && file->wal->bufferLength > 0) {
        file->wal->stats.barrierFlushes += 1;
        writeOrAbort(file->wal);
    }
    file->real->pMethods->xShmBarrier(file->real);
}

static int fileShmUnmap(sqlite3_file *base, int deleteFlag) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xShmUnmap(file->real, deleteFlag);
}

static int fileFetch(sqlite3_file *base, sqlite3_int64 offset, int amount, void **pointer) {
    BufferedFile *file = (BufferedFile *)base;
    int rc = flushIfWAL(file);
    if (rc != SQLITE_OK) return rc;
    return file->real->pMethods->xFetch(file->real, offset, amount, pointer);
}

static int fileUnfetch(sqlite3_file *base, sqlite3_int64 offset, void *pointer) {
    BufferedFile *file = (BufferedFile *)base;
    return file->real->pMethods->xUnfetch(file->real, offset, pointer);
}

/// Version 3 methods; `open` hands out a copy trimmed to the real file's version.
static const sqlite3_io_methods fileMethods = {
    3,
    fileClose, fileRead, fileWrite, fileTruncate, fileSync, fileSize,
    fileLock, fileUnlock, fileCheckReservedLock, fileControl, fileSectorSize, fileDeviceCharacteristics,
    fileShmMap, fileShmLock, fileShmBarrier, fileShmUnmap,
    fileFetch, fileUnfetch,
};
static sqlite3_io_methods fileMethodsByVersion[4];

// MARK: The VFS (every call but xOpen goes to the default VFS)

static int vfsOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *base, int flags, int *outFlags) {
    (void)vfs;
    BufferedFile *file = (BufferedFile *)base;
    memset(file, 0, sizeof *file);
    file->descriptor = -1;
    file->previousWriteEnd = -1;
    file->real = (sqlite3_file *)(file + 1);
    int rc = defaultVFS->xOpen(defaultVFS, name, file->real, flags, outFlags);
    if (rc != SQLITE_OK || file->real->pMethods == NULL) {
        file->base.pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    int version = file->real->pMethods->iVersion;
    if (version < 1) version = 1;
    if (version > 3) version = 3;
    file->base.pMethods = &fileMethodsByVersion[version];
    if ((flags & SQLITE_OPEN_WAL) != 0 && name != NULL) {
        file->isWAL = 1;
        // SQLite's own unixWrite writes at most 128 KiB per call (it masks the count to 17 bits), so the gathered
        // bytes go out through a descriptor of our own on the same file. SQLite opens a WAL while it holds a
        // shared lock on the database, and deletes it only with an exclusive one, so the path names the file
        // just opened. Without that descriptor, writes pass straight through: for a WAL opened read-only, and
        // for a file without SQLITE_IOCAP_POWERSAFE_OVERWRITE, where a commit with synchronous=FULL pads and
        // splits its last frame around a sync, which the commit-frame rule does not follow.
        int openedFlags = outFlags != NULL ? *outFlags : flags;
        // SQLite decides whether to pad from the database file's characteristics when it opens the WAL
        // (sqlite3WalOpen): ask the same file, at the same moment.
        sqlite3_file *database = sqlite3_database_file_object(name);
        sqlite3_file *decides = database != NULL && database->pMethods != NULL ? database : file->real;
        int powersafe = (decides->pMethods->xDeviceCharacteristics(decides) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
        if ((openedFlags & SQLITE_OPEN_READWRITE) != 0 && powersafe) {
            int descriptor = open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
            // Like SQLite's robust_open: never 0, 1 or 2, where a stray printf would land in the WAL.
            if (descriptor >= 0 && descriptor < 3) {
                int moved = fcntl(descriptor, F_DUPFD_CLOEXEC, 3);
                close(descriptor);
                descriptor = moved;
            }
            file->descriptor = descriptor;
        }
        // The database file of a WAL (same connection, so opened through this VFS too).
        if (database != NULL && database->pMethods != NULL && database->pMethods->xClose == fileClose) {
            file->database = (BufferedFile *)database;
            file->database->wal = file;
        }
    }
    return SQLITE_OK;
}

static int vfsDelete(sqlite3_vfs *vfs, const char *name, int syncDirectory) {
    (void)vfs;
    return defaultVFS->xDelete(defaultVFS, name, syncDirectory);
}

static int vfsAccess(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
    (void)vfs;
    return defaultVFS->xAccess(defaultVFS, name, flags, result);
}

static int vfsFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    return defaultVFS->xFullPathname(defaultVFS, name, size, out);
}

static void *vfsDlOpen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return defaultVFS->xDlOpen(defaultVFS, name);
}

static void vfsDlError(sqlite3_vfs *vfs, int size, char *message) {
    (void)vfs;
    defaultVFS->xDlError(defaultVFS, size, message);
}

static void (*vfsDlSym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
    (void)vfs;
    return defaultVFS->xDlSym(defaultVFS, handle, symbol);
}

static void vfsDlClose(sqlite3_vfs *vfs, void *handle) {
    (void)vfs;
    defaultVFS->xDlClose(defaultVFS, handle);
}

static int vfsRandomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return defaultVFS->xRandomness(defaultVFS, size, out);
}

static int vfsSleep(sqlite3_vfs *vfs, int microseconds) {
    (void)vfs;
    return defaultVFS->xSleep(defaultVFS, microseconds);
}

static int vfsCurrentTime(sqlite3_vfs *vfs, double *now) {
    (void)vfs;
    return defaultVFS->xCurrentTime(defaultVFS, now);
}

static int vfsGetLastError(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return defaultVFS->xGetLastError ? defaultVFS->xGetLastError(defaultVFS, size, out) : 0;
}

static int vfsCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *now) {
    (void)vfs;
    return defaultVFS->xCurrentTimeInt64(defaultVFS, now);
}

static pthread_once_t registration = PTHREAD_ONCE_INIT;
static int registrationResult = SQLITE_ERROR;

static void registerOnce(void) {
    defaultVFS = sqlite3_vfs_find(NULL);
    if (defaultVFS == NULL) {
        registrationResult = SQLITE_ERROR;
        return;
    }
    for (int version = 1; version <= 3; version++) {
        fileMethodsByVersion[version] = fileMethods;
        fileMethodsByVersion[version].iVersion = version;
    }
    bufferVFS = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(BufferedFile) + defaultVFS->szOsFile,
        .mxPathname = defaultVFS->mxPathname,
        .zName = TELEMETRY_WAL_WRITE_BUFFER_VFS,
        .xOpen = vfsOpen,
        .xDelete = vfsDelete,
        .xAccess = vfsAccess,
        .xFullPathname = vfsFullPathname,
        .xDlOpen = vfsDlOpen,
        .xDlError = vfsDlError,
        .xDlSym = vfsDlSym,
        .xDlClose = vfsDlClose,
        .xRandomness = vfsRandomness,
        .xSleep = vfsSleep,
        .xCurrentTime = vfsCurrentTime,
        .xGetLastError = vfsGetLastError,
        .xCurrentTimeInt64 = defaultVFS->iVersion >= 2 && defaultVFS->xCurrentTimeInt64 ? vfsCurrentTimeInt64 : NULL,
    };
    registrationResult = sqlite3_vfs_register(&bufferVFS, 0);
}

int telemetry_wal_write_buffer_register(void) {
    pthread_once(&registration, registerOnce);
    return registrationResult;
}
