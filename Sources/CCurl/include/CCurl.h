#ifndef TELEMETRY_CCURL_H
#define TELEMETRY_CCURL_H

// libcurl, loaded when the first function below is called (dlopen of libcurl.so.4), not when telemetryd
// starts: a daemon without TELEMETRY_ENDPOINT never maps libcurl and the TLS, HTTP/2, SSH, LDAP and Kerberos
// libraries it pulls in (about 5.5 MiB of resident memory). Only curl's types and constants come from the
// header; every call goes through a pointer that loader.c resolves.

#include <curl/curl.h>
#include <stddef.h>

/// NULL once libcurl is loaded; else why it could not be (dlopen's message). Loads it on first call.
const char *telemetry_curl_load_error(void);

CURLcode telemetry_curl_global_init(long flags);
const char *telemetry_curl_version(void);
CURL *telemetry_curl_easy_init(void);
void telemetry_curl_easy_cleanup(CURL *handle);
CURLcode telemetry_curl_easy_perform(CURL *handle);
const char *telemetry_curl_easy_strerror(CURLcode code);
struct curl_slist *telemetry_curl_slist_append(struct curl_slist *list, const char *string);
void telemetry_curl_slist_free_all(struct curl_slist *list);
CURLU *telemetry_curl_url(void);
void telemetry_curl_url_cleanup(CURLU *handle);
CURLUcode telemetry_curl_url_set(CURLU *handle, CURLUPart part, const char *content, unsigned int flags);
CURLUcode telemetry_curl_url_get(const CURLU *handle, CURLUPart part, char **content, unsigned int flags);
const char *telemetry_curl_url_strerror(CURLUcode code);
void telemetry_curl_free(void *pointer);

/// curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them, so each argument type
/// gets a typed wrapper.
CURLcode telemetry_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode telemetry_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode telemetry_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode telemetry_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode telemetry_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode telemetry_curl_setopt_write_function(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
CURLcode telemetry_curl_setopt_header_function(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
/// CURLOPT_POSTFIELDS takes the caller's bytes without copying: they must stay valid until curl_easy_perform
/// returns (CurlSession sets it inside withUnsafeBytes, around the perform).
CURLcode telemetry_curl_setopt_postfields(CURL *handle, const void *bytes, curl_off_t length);
CURLcode telemetry_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode telemetry_curl_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode telemetry_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

/// The values of CURL_GLOBAL_DEFAULT and CURL_ERROR_SIZE, which are macros Swift may not import.
static inline long telemetry_curl_global_default(void) { return CURL_GLOBAL_DEFAULT; }
static inline int telemetry_curl_error_size(void) { return CURL_ERROR_SIZE; }

#endif
