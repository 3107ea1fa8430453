/*
 * metrics.c - counters and their HTTP endpoint.  See metrics.h.
 */
#define _GNU_SOURCE /* accept4 */
#include "metrics.h"
#include "loop.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SERIES 128

static struct {
	char name[64];
	char labels[128];
	double value;
} series[MAX_SERIES];
static size_t n_series;

void metrics_add(const char *name, const char *labels, double v)
{
	labels = labels ? labels : "";
	for (size_t i = 0; i < n_series; i++)
		if (!strcmp(series[i].name, name) && !strcmp(series[i].labels, labels)) {
			series[i].value += v;
			return;
		}
	if (n_series == MAX_SERIES)
		return;
	snprintf(series[n_series].name, sizeof(series[n_series].name), "%s", name);
	snprintf(series[n_series].labels, sizeof(series[n_series].labels), "%s", labels);
	series[n_series++].value = v;
}

void metrics_reset(void)
{
	n_series = 0;
}

void metrics_render(struct strbuf *out)
{
	for (size_t i = 0; i < n_series; i++) {
		int first = 1;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(series[k].name, series[i].name))
				first = 0;
		if (first)
			strbuf_addf(out, "# TYPE %s %s\n", series[i].name,
				    strstr(series[i].name, "_total") ? "counter" : "gauge");
		for (size_t k = i; k < n_series && first; k++) {
			if (strcmp(series[k].name, series[i].name))
				continue;
			strbuf_addf(out, "%s%s%s%s %.17g\n", series[k].name, *series[k].labels ? "{" : "",
				    series[k].labels, *series[k].labels ? "}" : "", series[k].value);
		}
	}
}

/* ==== The HTTP endpoint ====
 *
 * Non-blocking and driven by the event loop: the loop polls the listening
 * socket and each client (metrics_pollfds), then metrics_serve accepts,
 * reads and writes only what is ready.  A client gets METRICS_CONN_MS to
 * send its request and read the answer; at most METRICS_MAX_CONNS are open
 * (more are accepted and closed at once), so neither a slow client nor a
 * pile of idle ones can hold up a reply to a chat. */

struct conn {
	int fd;
	int64_t deadline;
	char req[1024];
	size_t got;
	struct strbuf out;   /* the answer, once the request is in */
	size_t sent;
};

static int listen_fd = -1;
static struct conn conns[METRICS_MAX_CONNS];

static void on_listen(void *data, int lfd, short revents);
static void sweep(void *data, int64_t now);
static size_t n_conns;

int metrics_address_parse(const char *address, struct sockaddr_storage *sa, socklen_t *salen,
			  char *err, size_t errlen)
{
	const char *colon = strrchr(address, ':');
	if (!colon || colon == address || !colon[1]) {
		snprintf(err, errlen, "\"%s\" is not host:port (e.g. 127.0.0.1:9464)", address);
		return -1;
	}
	long port = 0;
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535) {
			snprintf(err, errlen, "\"%s\" has no valid port (digits only, 1 to 65535)", address);
			return -1;
		}
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "\"%s\" has no valid port (digits only, 1 to 65535)", address);
		return -1;
	}
	char host[64];
	size_t hl = (size_t)(colon - address);
	if (hl >= sizeof(host))
		hl = sizeof(host) - 1;
	memcpy(host, address, hl);
	host[hl] = '\0';
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(sa, 0, sizeof(*sa));
	struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
	if (!strcmp(host, "localhost")) {
		a4->sin_family = AF_INET;
		a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
	} else {
		snprintf(err, errlen, "\"%s\" is not a loopback address: use 127.0.0.1:PORT, [::1]:PORT "
			 "or localhost:PORT (IPv4 in full, four numbers without leading zeros)", address);
		return -1;
	}
	int loopback = a4->sin_family == AF_INET ? (ntohl(a4->sin_addr.s_addr) >> 24) == 127
						 : IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
	if (!loopback) {
		snprintf(err, errlen, "metrics are only served on this machine: use 127.0.0.1:PORT or "
			 "[::1]:PORT, not \"%s\"", address);
		return -1;
	}
	if (a4->sin_family == AF_INET) {
		a4->sin_port = htons((uint16_t)port);
		*salen = sizeof(*a4);
	} else {
		a6->sin6_port = htons((uint16_t)port);
		*salen = sizeof(*a6);
	}
	return 0;
}

int metrics_listen(const char *address, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	if (metrics_address_parse(address, &sa, &salen, err, errlen) < 0)
		return -1;
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", address, strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, salen) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", address, strerror(errno));
		close(fd);
		return -1;
	}
	metrics_close();
	listen_fd = fd;
	if (loop_add_fd(fd, POLLIN, on_listen, NULL) < 0) {
		snprintf(err, errlen, "cannot listen on %s: the event loop has no room for it", address);
		metrics_close();
		return -1;
	}
	return 0;
}

static void conn_close(size_t i)
{
	loop_del_fd(conns[i].fd);
	close(conns[i].fd);
	strbuf_release(&conns[i].out);
	conns[i] = conns[--n_conns];
}

void metrics_close(void)
{
	while (n_conns)
		conn_close(n_conns - 1);
	if (listen_fd >= 0) {
		loop_del_fd(listen_fd);
		close(listen_fd);
	}
	listen_fd = -1;
	loop_set_timer(sweep, NULL, -1);
}

/* The whole request is in: prepare the answer. */
static void respond(struct conn *c)
{
	struct strbuf body = STRBUF_INIT;
	int ok = !strncmp(c->req, "GET /metrics ", 13) || !strncmp(c->req, "GET / ", 6);
	if (ok)
		metrics_render(&body);
	else
		strbuf_addstr(&body, "not found: GET /metrics\n");
	strbuf_init(&c->out, 0);
	strbuf_addf(&c->out, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		    ok ? "200 OK" : "404 Not Found", body.len, body.buf);
	strbuf_release(&body);
}

/* Advances one client as far as it can go without waiting; 1 when done. */
static int conn_step(struct conn *c)
{
	if (!c->out.buf) {
		ssize_t n = recv(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return 1;
		if (n > 0)
			c->got += (size_t)n;
		c->req[c->got] = '\0';
		if (!strstr(c->req, "\r\n\r\n") && c->got < sizeof(c->req) - 1)
			return 0;
		respond(c); /* a complete request, or as much as we accept */
	}
	while (c->sent < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (n < 0)
			return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
		c->sent += (size_t)n;
	}
	return 1;
}

/* The loop's callback for a client: advance it; closed when done. */
static void on_client(void *data, int fd, short revents)
{
	(void)data;
	(void)revents;
	for (size_t i = 0; i < n_conns; i++) {
		if (conns[i].fd != fd)
			continue;
		if (conn_step(&conns[i]))
			conn_close(i);
		else if (conns[i].out.buf)
			loop_add_fd(fd, POLLOUT, on_client, NULL); /* the answer waits for room */
		return;
	}
}

/* Closes clients past their deadline; waits for the next one. */
static void sweep(void *data, int64_t now)
{
	(void)data;
	int64_t next = -1;
	for (size_t i = n_conns; i-- > 0;) {
		if (now >= conns[i].deadline)
			conn_close(i);
		else if (next < 0 || conns[i].deadline < next)
			next = conns[i].deadline;
	}
	loop_set_timer(sweep, NULL, next);
}

/* The loop's callback for the listener: accept what waits, serve it as
 * far as it goes without waiting. */
static void on_listen(void *data, int lfd, short revents)
{
	(void)data;
	(void)revents;
	int64_t now = wall_ms();
	for (int k = 0; k < 64; k++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		if (n_conns == METRICS_MAX_CONNS || loop_add_fd(fd, POLLIN, on_client, NULL) < 0) {
			close(fd); /* too many at once: this one is refused */
			metrics_inc("faqbot_metrics_refused_total", NULL);
			continue;
		}
		struct conn *c = &conns[n_conns++];
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->deadline = now + METRICS_CONN_MS;
		on_client(NULL, fd, POLLIN);
	}
	sweep(NULL, now);
}
