/*
 * http.h - the one libcurl layer: asynchronous requests on a curl multi
 * handle, driven by the single-threaded event loop.
 *
 * Every request has a total timeout, a connect timeout and a cap on the
 * response body (a larger body fails the request with truncated = 1, it
 * never grows memory).  TLS verification is always on; redirects are never
 * followed (a token in a URL must not travel to another host); only http
 * and https are spoken, and plain http only to loopback addresses.
 *
 * URLs are printed only through http_redact, which hides any
 * access_token parameter and the path segments a transport registered
 * with http_redact_segment (Telegram: "/bot<token>/").
 *
 * Ownership: http_new returns a handle freed with http_free (which aborts
 * requests still in flight without calling their callbacks).  http_start
 * copies everything it is given.  The response passed to a callback is
 * borrowed for the duration of the call.
 */
#ifndef FAQBOT_HTTP_H
#define FAQBOT_HTTP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define HTTP_DEFAULT_MAX_BODY (4u << 20)
/* The cap for a request already shrunk to one item (one update, one
 * event) that still did not fit the default cap. */
#define HTTP_SINGLE_MAX_BODY (16u << 20)
/* Waits a server asks for (Retry-After, retry_after, retry_after_ms) are
 * clamped to this range: a negative or zero wait would poll in a hot loop,
 * a huge one would park a chat past the 24 h give-up (or overflow). */
#define HTTP_WAIT_MIN_MS 1000LL
#define HTTP_WAIT_MAX_MS 3600000LL
#define HTTP_MAX_EXTRA_FDS 40

struct http_response {
	long status;           /* HTTP status; 0 when no response came */
	int curl_code;         /* CURLcode; 0 = the transfer completed */
	const char *error;     /* what went wrong, a sentence, or NULL */
	int body_sent;         /* the whole request body went out */
	int truncated;         /* the response passed max_body */
	long retry_after_s;    /* Retry-After header in seconds, -1 when absent */
	uint64_t elapsed_ms;
	struct strbuf body;
};

typedef void (*http_done_fn)(void *arg, struct http_response *resp);

struct http_req {
	const char *method;    /* "GET", "POST", "PUT" */
	const char *url;
	const char *body;      /* may be NULL */
	size_t body_len;
	const char *bearer;    /* Authorization: Bearer <bearer>, or NULL */
	long timeout_ms;       /* whole request; 0 = 30 s */
	size_t max_body;       /* 0 = HTTP_DEFAULT_MAX_BODY */
	http_done_fn done;
	void *arg;
};

struct http;

struct http *http_new(const char *ca_bundle);
void http_free(struct http *h);
/* Starts a request; returns 0, or -1 with a sentence in err. */
int http_start(struct http *h, const struct http_req *req, char *err, size_t errlen);
/* Sleeps up to timeout_ms in curl_multi_poll, until network activity or
 * one of fds[0..nfds) is ready for its events (POLLIN, POLLOUT; at most
 * HTTP_MAX_EXTRA_FDS are watched); sets each fds[i].revents. */
void http_wait(struct http *h, int timeout_ms, struct pollfd *fds, int nfds);
/* Runs the transfers that can go on and calls the callbacks of those that
 * finished.  Returns the number finished. */
int http_perform(struct http *h);
size_t http_active(const struct http *h);

/* Appends url with secrets hidden. */
void http_redact(const char *url, struct strbuf *out);
/* From now on http_redact hides what follows prefix in a URL's path, up
 * to the next '/' ("/bot" hides "/bot<token>/").  Process-wide. */
void http_redact_segment(const char *prefix);
/* 0 when faqbot may talk to this base URL, as libcurl's URL parser reads
 * it: https, or http whose host is exactly localhost, an IPv4 literal in
 * 127.0.0.0/8 or [::1]; never a URL with a user name or password.  -1 with
 * a sentence in why.  http_start applies the same rule to every request. */
int http_url_allowed(const char *url, char *why, size_t whylen);
/* A server-given wait of value * unit_ms (unit_ms 1000 for seconds, 1 for
 * milliseconds) clamped to [HTTP_WAIT_MIN_MS, HTTP_WAIT_MAX_MS] without
 * overflow; a negative value gives the minimum. */
int64_t http_clamp_wait_ms(long long value, long long unit_ms);
/* Exponential backoff with jitter: ~1 s, 2 s, 4 s ... capped at 60 s. */
uint64_t http_backoff_ms(unsigned attempt);

#endif
