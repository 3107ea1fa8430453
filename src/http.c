/*
 * http.c - asynchronous HTTP over libcurl's multi interface.  See http.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "http.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct xfer {
	CURL *easy;
	CURLU *url;
	struct curl_slist *headers;
	char *body;
	size_t body_len;
	http_done_fn done;
	void *arg;
	uint64_t started;
	struct http_response resp;
	struct xfer *next;
};

struct http {
	CURLM *multi;
	char *ca_bundle;
	struct xfer *xfers;
	size_t active;
};

struct http *http_new(const char *ca_bundle)
{
	static int global_done;
	if (!global_done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		global_done = 1;
	}
	struct http *h = xcalloc(1, sizeof(*h));
	h->multi = curl_multi_init();
	if (!h->multi) {
		log_error("fatal", "error=%s", log_q("libcurl could not start"));
		abort();
	}
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);
	if (ca_bundle && *ca_bundle)
		h->ca_bundle = xstrdup(ca_bundle);
	return h;
}

static void xfer_free(struct http *h, struct xfer *x)
{
	curl_multi_remove_handle(h->multi, x->easy);
	curl_easy_cleanup(x->easy);
	curl_url_cleanup(x->url);
	curl_slist_free_all(x->headers);
	free(x->body);
	strbuf_release(&x->resp.body);
	free(x);
}

void http_free(struct http *h)
{
	if (!h)
		return;
	while (h->xfers) {
		struct xfer *x = h->xfers;
		h->xfers = x->next;
		xfer_free(h, x);
	}
	curl_multi_cleanup(h->multi);
	free(h->ca_bundle);
	free(h);
}

size_t http_active(const struct http *h)
{
	return h->active;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	if (strbuf_add(&x->resp.body, data, size * n) < 0) {
		x->resp.truncated = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		char v[128];
		size_t k = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
		memcpy(v, data + 12, k);
		v[k] = '\0';
		char *p = v;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, "\r\n")] = '\0';
		char *end;
		long secs = strtol(p, &end, 10); /* LONG_MAX on overflow: clamped by the user */
		if (end != p && !*end && secs >= 0) {
			x->resp.retry_after_s = secs;
		} else {
			time_t when = curl_getdate(p, NULL); /* an HTTP date */
			if (when > 0) {
				long d = (long)(when - time(NULL));
				x->resp.retry_after_s = d > 0 ? d : 0;
			}
		}
	}
	return len;
}

/* Is host (as libcurl's URL parser returns it) this machine: exactly
 * "localhost", an IPv4 literal in 127.0.0.0/8 or [::1].  inet_pton is
 * strict: "127.1", "127.0.0.01" or "127.evil.example" are not literals. */
static int host_is_loopback(const char *host)
{
	if (!strcasecmp(host, "localhost"))
		return 1;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	size_t n = strlen(host);
	if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
		char v6[64];
		struct in6_addr a6;
		if (n - 2 >= sizeof(v6))
			return 0;
		memcpy(v6, host + 1, n - 2);
		v6[n - 2] = '\0';
		return inet_pton(AF_INET6, v6, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return 0;
}

/* Parses url with libcurl's own URL parser (the one that will connect):
 * a text check and the connection could read "http://localhost:1@host/"
 * differently.  Returns the handle (caller frees with curl_url_cleanup)
 * or NULL with a sentence in why. */
static CURLU *url_check(const char *url, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL;
	CURLU *ok = NULL;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "this is not a valid address (expected https://host/...)");
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
	if (user || password) {
		snprintf(why, whylen, "the address must not contain a user name or password (user@host)");
		goto out;
	}
	int https = !strcasecmp(scheme, "https"), http = !strcasecmp(scheme, "http");
	if (https || (http && host_is_loopback(host)))
		ok = u;
	else if (!http)
		snprintf(why, whylen, "the address must start with https:// (or http:// on this machine)");
	else
		snprintf(why, whylen, "plain http:// is only allowed to this machine (localhost, "
			 "127.0.0.1 or [::1]); use https://");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(password);
	if (!ok)
		curl_url_cleanup(u);
	return ok;
}

int http_url_allowed(const char *url, char *why, size_t whylen)
{
	CURLU *u = url_check(url, why, whylen);
	curl_url_cleanup(u);
	return u ? 0 : -1;
}

int64_t http_clamp_wait_ms(long long value, long long unit_ms)
{
	if (value < 0 || unit_ms <= 0)
		return HTTP_WAIT_MIN_MS;
	if (value > HTTP_WAIT_MAX_MS / unit_ms)
		return HTTP_WAIT_MAX_MS;
	long long ms = value * unit_ms;
	return ms < HTTP_WAIT_MIN_MS ? HTTP_WAIT_MIN_MS : ms;
}

int http_start(struct http *h, const struct http_req *req, char *err, size_t errlen)
{
	CURLU *u = url_check(req->url, err, errlen);
	if (!u)
		return -1;
	struct xfer *x = xcalloc(1, sizeof(*x));
	x->url = u;
	x->easy = curl_easy_init();
	if (!x->easy) {
		curl_url_cleanup(u);
		free(x);
		snprintf(err, errlen, "libcurl could not create a request");
		return -1;
	}
	strbuf_init(&x->resp.body, req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY);
	x->resp.retry_after_s = -1;
	x->done = req->done;
	x->arg = req->arg;
	x->started = now_ns();
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_CURLU, x->url); /* exactly what url_check saw */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_bundle)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_bundle);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "faqbot");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	x->headers = curl_slist_append(x->headers, "Accept: application/json");
	if (req->bearer) {
		struct strbuf a = STRBUF_INIT;
		strbuf_addf(&a, "Authorization: Bearer %s", req->bearer);
		x->headers = curl_slist_append(x->headers, a.buf);
		strbuf_release(&a);
	}
	if (req->body) {
		x->body = xmalloc(req->body_len + 1);
		memcpy(x->body, req->body, req->body_len);
		x->body_len = req->body_len;
		x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
		x->headers = curl_slist_append(x->headers, "Expect:");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
	}
	if (req->method && strcmp(req->method, req->body ? "POST" : "GET"))
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		xfer_free(h, x);
		snprintf(err, errlen, "libcurl could not start the request");
		return -1;
	}
	x->next = h->xfers;
	h->xfers = x;
	h->active++;
	return 0;
}

static void finish(struct http *h, CURL *easy, CURLcode code)
{
	struct xfer *x = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	struct xfer **pp = &h->xfers;
	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = x->next;
	h->active--;
	struct http_response *r = &x->resp;
	r->curl_code = (int)code;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_off_t up = 0;
	curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &up);
	r->body_sent = !x->body_len || (size_t)up >= x->body_len;
	r->elapsed_ms = (now_ns() - x->started) / 1000000;
	if (r->truncated)
		r->error = "the response was larger than the limit";
	else if (code != CURLE_OK)
		r->error = curl_easy_strerror(code);
	if (x->done)
		x->done(x->arg, r);
	xfer_free(h, x);
}

void http_wait(struct http *h, int timeout_ms, struct pollfd *fds, int nfds)
{
	struct curl_waitfd extra[HTTP_MAX_EXTRA_FDS];
	int n = nfds < HTTP_MAX_EXTRA_FDS ? nfds : HTTP_MAX_EXTRA_FDS, numfds = 0;
	for (int i = 0; i < n; i++) {
		short ev = (short)(((fds[i].events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
				   ((fds[i].events & POLLOUT) ? CURL_WAIT_POLLOUT : 0));
		extra[i] = (struct curl_waitfd){ fds[i].fd, ev, 0 };
	}
	if (curl_multi_poll(h->multi, n ? extra : NULL, (unsigned)n, timeout_ms < 0 ? 0 : timeout_ms,
			    &numfds) != CURLM_OK)
		numfds = 0;
	for (int i = 0; i < nfds; i++) {
		short re = i < n ? extra[i].revents : 0;
		fds[i].revents = (short)(((re & CURL_WAIT_POLLIN) ? POLLIN : 0) |
					 ((re & CURL_WAIT_POLLOUT) ? POLLOUT : 0) |
					 ((re & CURL_WAIT_POLLPRI) ? POLLPRI : 0));
	}
}

int http_perform(struct http *h)
{
	int running = 0, done = 0;
	curl_multi_perform(h->multi, &running);
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		finish(h, msg->easy_handle, msg->data.result);
		done++;
	}
	return done;
}

/* Path segments hidden by http_redact, registered by the transports that
 * put a secret in their paths (Telegram: "/bot").  Process-wide, few. */
static char *redacted_segments[4];

void http_redact_segment(const char *prefix)
{
	for (size_t i = 0; i < ARRAY_LEN(redacted_segments); i++) {
		if (redacted_segments[i] && !strcmp(redacted_segments[i], prefix))
			return;
		if (!redacted_segments[i]) {
			redacted_segments[i] = xstrdup(prefix);
			return;
		}
	}
	log_error("fatal", "error=%s", log_q("too many secret URL segments (a bug)"));
	abort();
}

void http_redact(const char *url, struct strbuf *out)
{
	for (size_t i = 0; i < ARRAY_LEN(redacted_segments) && redacted_segments[i]; i++) {
		const char *seg = strstr(url, redacted_segments[i]);
		if (!seg)
			continue;
		size_t n = strlen(redacted_segments[i]);
		const char *slash = strchr(seg + n, '/');
		strbuf_add(out, url, (size_t)(seg - url) + n);
		strbuf_addstr(out, "<redacted>");
		url = slash ? slash : seg + strlen(seg);
	}
	const char *tok = strstr(url, "access_token=");
	if (tok) {
		strbuf_add(out, url, (size_t)(tok - url) + 13);
		strbuf_addstr(out, "<redacted>");
		url = tok + 13 + strcspn(tok + 13, "&");
	}
	strbuf_addstr(out, url);
}

uint64_t http_backoff_ms(unsigned attempt)
{
	uint64_t base = 1000;
	for (unsigned i = 0; i < attempt && base < 60000; i++)
		base *= 2;
	if (base > 60000)
		base = 60000;
	/* full jitter on the upper half: [base/2, base) */
	uint64_t r = (uint64_t)rand() % (base / 2 + 1);
	return base / 2 + r;
}
