#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

/// sd_notify itself is not variadic, but sd_notifyf is; Swift formats the string and calls this.
static inline int telemetry_sd_notify(const char *state) { return sd_notify(0, state); }

#include <stdint.h>

/// Layout of Linux's `struct ucred` (SO_PEERCRED), which glibc only declares under _GNU_SOURCE.
typedef struct {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} telemetry_peer_credentials;

#include <malloc.h>

/// One malloc arena for the whole daemon: its threads hand buffers to each other (event loop → writer), and
/// per-thread arenas each keep their own high-water mark. Measured with 1M lines from 4 clients: peak RSS
/// 74 MiB with glibc's default, 66 MiB with one arena, same throughput.
static inline void telemetry_limit_malloc_arenas(void) { mallopt(M_ARENA_MAX, 1); }
