/// The store's schema, versioned with `PRAGMA user_version`.
///
/// Design notes
/// - `journal`: accepted input lines, one row per commit (a chunk of ~1–4 MiB). Rows are deleted as soon as every
///   execution they hold is closed, so the table stays small; its pages are recycled through the freelist.
/// - `documents`: one row per closed execution. `sequence` is `AUTOINCREMENT`, so it is strictly increasing and
///   never reused, even after retention deleted the newest rows: the forwarder drains in sequence order.
/// - `delivery_queue` and `batches` (version 2): what waits for delivery, in which batch, and what was refused.
/// - `meta`: small key/value facts (`created_at`, the `heartbeat` of health checks, later a delivery watermark).
enum StoreSchema {
    /// The version this code writes. Databases with a higher `user_version` are refused.
    static let version: Int32 = 2

    /// `PRAGMA application_id` ("TLMY"), so that `file(1)`-style tools and this code can tell the file apart from
    /// other SQLite databases.
    static let applicationID: Int32 = 0x544C_4D59

    /// `migrations[n]` brings a database from version `n` to `n + 1`. Each runs, together with the `user_version`
    /// bump, in one transaction.
    static let migrations: [[String]] = [
        // 0 → 1: the initial schema.
        [
            """
            CREATE TABLE journal(
                sequence INTEGER PRIMARY KEY,
                bytes BLOB NOT NULL
            )
            """,
            """
            CREATE TABLE documents(
                sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                execution_id TEXT NOT NULL UNIQUE,
                script_name TEXT NOT NULL,
                status TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                completed_at INTEGER NOT NULL,
                body BLOB NOT NULL
            )
            """,
            // A rowid table's index entries end with the rowid, so this also serves
            // `WHERE script_name = ? ORDER BY sequence DESC`.
            "CREATE INDEX documents_by_script ON documents(script_name)",
            "CREATE INDEX documents_by_completion ON documents(completed_at)",
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value)",
        ],
        // 1 → 2: delivery. A document waits for delivery while it has a row in `delivery_queue` (rows are added
        // when the daemon forwards; a local-only store has none). Bookkeeping lives in that small table, never
        // in `documents`, so sending a batch never rewrites the documents' large rows. While being sent a
        // document belongs to a batch (`batch_id`), whose id is the request's Idempotency-Key, kept across
        // retries and restarts. A batch the endpoint refused for good is dead-lettered: its rows stay, marked,
        // until replay or purge.
        [
            """
            CREATE TABLE delivery_queue(
                sequence INTEGER PRIMARY KEY,
                batch_id TEXT,
                dead_lettered_at INTEGER
            )
            """,
            "CREATE INDEX delivery_queue_by_batch ON delivery_queue(batch_id) WHERE batch_id IS NOT NULL",
            """
            CREATE TABLE batches(
                id TEXT PRIMARY KEY,
                created_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_attempt_at INTEGER,
                last_error TEXT,
                dead_at INTEGER,
                dead_status INTEGER,
                dead_response TEXT
            )
            """,
        ],
    ]
}

/// Connection settings, chosen for the ingest workload: a commit of a 1–4 MiB journal chunk every ~10 ms from one
/// writer thread, with occasional readers in other processes. (Measured with 2 MiB chunks, synchronous=FULL: 64 KiB
/// pages commit about twice the bytes per second of 16 KiB pages and 3× those of the 4 KiB default; a 32 MiB
/// checkpoint interval is as fast as 64 MiB and much faster than the default ~4 MiB, because short-lived journal pages
/// are overwritten in the WAL several times before a checkpoint copies them once.)
enum StoreTuning {
    /// Page size of new databases (existing ones keep theirs; a WAL database cannot change it). A document larger
    /// than a page is stored as full overflow pages plus its remainder in a leaf page shared with other rows, so
    /// little space is wasted; a document smaller than a page is stored whole in a leaf. At 64 KiB, documents of
    /// 22–33 KiB (a script with about a hundred events) fit only two to a leaf and a third of every page written,
    /// to the WAL and again by the checkpoint, was empty. 16 KiB wrote 31 % fewer bytes and used about 10 % less
    /// CPU in the ingest benchmark, while keeping WAL frames and page-cache entries per journal chunk few.
    static let pageSize = 16_384
    /// Checkpoint the WAL into the database file once it holds this many bytes (converted to pages with the
    /// database's actual page size): every ~10 commits rather than on each one.
    static let walAutocheckpointBytes = 32 * 1024 * 1024
    /// After a checkpoint resets the WAL, truncate it back to this size, so that a WAL that grew (while a reader held
    /// an old snapshot) does not keep its disk space forever.
    static let journalSizeLimitBytes = 64 * 1024 * 1024
    /// Page cache of the writing connection, in KiB: a commit's journal chunk (lines of open executions only) and
    /// documents fit without spilling dirty pages to the WAL mid-transaction. 4 MiB ingests as fast as 8 MiB
    /// (bench/run.sh) and keeps the daemon's peak under its 64 MiB target with delivery running.
    static let cacheSizeKiB = 4 * 1024
    /// Page cache of read-only connections (control requests, the CLI): small, they read little.
    static let readerCacheSizeKiB = 1024
}
