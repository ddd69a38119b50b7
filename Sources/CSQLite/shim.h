#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
static inline void (*telemetry_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }

/// No up-front page-cache block per connection. SQLite otherwise allocates room for
/// SQLITE_DEFAULT_PCACHE_INITSZ (20) pages when a connection first reads — 320 KiB with 16 KiB pages —
/// and writes a header into every slot, so each connection keeps ~80 KiB resident even when idle, and its
/// pages can never be returned (sqlite3_db_release_memory only frees pages allocated one by one). Must run
/// before SQLite initializes; returns SQLITE_MISUSE (harmless) afterwards.
static inline int telemetry_sqlite_no_bulk_page_cache(void) {
    return sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 0, 0);
}

#include <malloc.h>

/// Returns free heap memory to the kernel (malloc_trim): 64 KiB cache pages freed in the middle of the heap
/// would otherwise stay resident until reused.
static inline void telemetry_trim_heap(void) { malloc_trim(0); }
