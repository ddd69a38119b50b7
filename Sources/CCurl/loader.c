#include "CCurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

// The libcurl functions telemetryd uses, resolved once by load().
static struct {
    CURLcode (*global_init)(long);
    char *(*version)(void);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *);
    CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
    CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
    const char *(*url_strerror)(CURLUcode);
    void (*free)(void *);
} curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];
static int loaded;

static void load(void) {
    // The soname of libcurl 7.x and 8.x; the package is libcurl4 (OpenSSL) on Debian and Ubuntu.
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(load_error, sizeof load_error, "cannot load libcurl (%s); install libcurl4 (apt-get install libcurl4)",
                 dlerror());
        return;
    }
    struct { const char *name; void **slot; } symbols[] = {
        {"curl_global_init", (void **)&curl.global_init},
        {"curl_version", (void **)&curl.version},
        {"curl_easy_init", (void **)&curl.easy_init},
        {"curl_easy_cleanup", (void **)&curl.easy_cleanup},
        {"curl_easy_perform", (void **)&curl.easy_perform},
        {"curl_easy_strerror", (void **)&curl.easy_strerror},
        {"curl_easy_setopt", (void **)&curl.easy_setopt},
        {"curl_easy_getinfo", (void **)&curl.easy_getinfo},
        {"curl_slist_append", (void **)&curl.slist_append},
        {"curl_slist_free_all", (void **)&curl.slist_free_all},
        {"curl_url", (void **)&curl.url},
        {"curl_url_cleanup", (void **)&curl.url_cleanup},
        {"curl_url_set", (void **)&curl.url_set},
        {"curl_url_get", (void **)&curl.url_get},
        {"curl_url_strerror", (void **)&curl.url_strerror},
        {"curl_free", (void **)&curl.free},
    };
    for (size_t index = 0; index < sizeof symbols / sizeof symbols[0]; index++) {
        *symbols[index].slot = dlsym(library, symbols[index].name);
        if (*symbols[index].slot == NULL) {
            snprintf(load_error, sizeof load_error,
                     "libcurl.so.4 has no %s: it is older than 7.80; install a newer libcurl4", symbols[index].name);
            return;
        }
    }
    loaded = 1;
}

const char *telemetry_curl_load_error(void) {
    pthread_once(&once, load);
    return loaded ? NULL : load_error;
}

#define READY_OR(fallback) do { if (telemetry_curl_load_error() != NULL) return fallback; } while (0)
#define READY_OR_VOID() do { if (telemetry_curl_load_error() != NULL) return; } while (0)

CURLcode telemetry_curl_global_init(long flags) { READY_OR(CURLE_FAILED_INIT); return curl.global_init(flags); }
const char *telemetry_curl_version(void) { READY_OR(load_error); return curl.version(); }
CURL *telemetry_curl_easy_init(void) { READY_OR(NULL); return curl.easy_init(); }
void telemetry_curl_easy_cleanup(CURL *handle) { READY_OR_VOID(); curl.easy_cleanup(handle); }
CURLcode telemetry_curl_easy_perform(CURL *handle) { READY_OR(CURLE_FAILED_INIT); return curl.easy_perform(handle); }
const char *telemetry_curl_easy_strerror(CURLcode code) { READY_OR(load_error); return curl.easy_strerror(code); }
struct curl_slist *telemetry_curl_slist_append(struct curl_slist *list, const char *string) {
    READY_OR(NULL);
    return curl.slist_append(list, string);
}
void telemetry_curl_slist_free_all(struct curl_slist *list) { READY_OR_VOID(); curl.slist_free_all(list); }
CURLU *telemetry_curl_url(void) { READY_OR(NULL); return curl.url(); }
void telemetry_curl_url_cleanup(CURLU *handle) { READY_OR_VOID(); curl.url_cleanup(handle); }
CURLUcode telemetry_curl_url_set(CURLU *handle, CURLUPart part, const char *content, unsigned int flags) {
    READY_OR(CURLUE_OUT_OF_MEMORY);
    return curl.url_set(handle, part, content, flags);
}
CURLUcode telemetry_curl_url_get(const CURLU *handle, CURLUPart part, char **content, unsigned int flags) {
    READY_OR(CURLUE_OUT_OF_MEMORY);
    return curl.url_get(handle, part, content, flags);
}
const char *telemetry_curl_url_strerror(CURLUcode code) { READY_OR(load_error); return curl.url_strerror(code); }
void telemetry_curl_free(void *pointer) { READY_OR_VOID(); curl.free(pointer); }

CURLcode telemetry_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, option, value);
}
CURLcode telemetry_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, option, value);
}
CURLcode telemetry_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, option, value);
}
CURLcode telemetry_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, option, value);
}
CURLcode telemetry_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, option, value);
}
CURLcode telemetry_curl_setopt_write_function(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *)) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}
CURLcode telemetry_curl_setopt_header_function(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *)) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}
CURLcode telemetry_curl_setopt_postfields(CURL *handle, const void *bytes, curl_off_t length) {
    READY_OR(CURLE_FAILED_INIT);
    CURLcode code = curl.easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, length);
    if (code != CURLE_OK) return code;
    return curl.easy_setopt(handle, CURLOPT_POSTFIELDS, bytes);
}
CURLcode telemetry_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_getinfo(handle, info, value);
}
CURLcode telemetry_curl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_getinfo(handle, info, value);
}
CURLcode telemetry_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    READY_OR(CURLE_FAILED_INIT);
    return curl.easy_getinfo(handle, info, value);
}
