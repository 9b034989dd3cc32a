/* curl_loop.h: libcurl's multi interface driven by the one libevent loop; shared by http checks and alert webhooks. */
#ifndef HEALTHD_CURL_LOOP_H
#define HEALTHD_CURL_LOOP_H

#include <curl/curl.h>
#include <stdbool.h>

struct event_base;

/* Runs once when a transfer ends: result is curl's code; read the status with CURLINFO_RESPONSE_CODE. The easy
 * handle has been removed from the multi handle and belongs to the caller again (it may clean it up, or start it
 * again). It runs from the loop, never inside libcurl: it may start or cancel any transfer. */
typedef void (*hd_curl_done_fn)(CURL *easy, CURLcode result, void *arg);

/* Starts a configured easy handle on the process's shared multi handle (created on first use for base).
 * Sets CURLOPT_NOSIGNAL, CURLOPT_QUICK_EXIT and CURLOPT_PRIVATE (which is therefore not the caller's to use);
 * the caller sets URL, timeouts, body and callbacks. done never runs before this returns.
 * Returns 0, or -1 if curl refused it (done is not called then). */
int hd_curl_start(struct event_base *base, CURL *easy, hd_curl_done_fn done, void *arg);
/* Stops a running transfer; done is not called. The easy handle is the caller's to clean up. Harmless on a handle
 * that is not running. Never call it from inside one of curl's own callbacks (write, header...): abort from
 * there by returning an error to curl instead. */
void hd_curl_cancel(CURL *easy);
/*
 * A URL as it may be shown (logs, /health, alerts): "scheme://host[:port]", then the path when with_path, never the
 * user info, query or fragment (which may hold a password or a token). With host_port: "host:port" with the
 * scheme's default port. NULL when curl cannot parse it, with *why (curl's reason, never the URL itself).
 */
char *hd_url_public(const char *url, bool with_path, char **host_port, const char **why);
/* Tears down the shared multi handle at exit (after every transfer was cancelled or finished). */
void hd_curl_shutdown(void);

#endif
