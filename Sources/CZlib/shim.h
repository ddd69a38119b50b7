#include <zlib.h>

/// deflateInit2 is a macro around deflateInit2_ (it passes the library version and stream size).
static inline int telemetry_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int telemetry_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
