/*
 * metrics.c - counters and their HTTP endpoint.  See metrics.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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

int metrics_listen(const char *address, char *err, size_t errlen)
{
	const char *colon = strrchr(address, ':');
	if (!colon || !colon[1]) {
		snprintf(err, errlen, "\"%s\" is not host:port (e.g. 127.0.0.1:9464)", address);
		return -1;
	}
	char host[64];
	snprintf(host, sizeof(host), "%.*s", (int)(colon - address), address);
	long port = strtol(colon + 1, NULL, 10);
	int v6 = !strcmp(host, "[::1]") || !strcmp(host, "::1");
	if (!v6 && strcmp(host, "localhost") && strncmp(host, "127.", 4)) {
		snprintf(err, errlen, "metrics are only served on this machine: use 127.0.0.1:PORT or [::1]:PORT");
		return -1;
	}
	if (port <= 0 || port > 65535) {
		snprintf(err, errlen, "\"%s\" has no valid port", address);
		return -1;
	}
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int rc;
	if (v6) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
					  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &a.sin_addr);
		rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	}
	if (fd < 0 || rc < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", address, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

void metrics_serve(int listen_fd)
{
	int c;
	while ((c = accept(listen_fd, NULL, NULL)) >= 0) {
		/* a loopback client sends its request at once; wait at most 200 ms */
		char req[1024];
		size_t got = 0;
		struct pollfd p = { c, POLLIN, 0 };
		while (got < sizeof(req) - 1 && poll(&p, 1, 200) > 0) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		struct strbuf body = STRBUF_INIT, resp = STRBUF_INIT;
		int ok = !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET / ", 6);
		if (ok)
			metrics_render(&body);
		else
			strbuf_addstr(&body, "not found: GET /metrics\n");
		strbuf_addf(&resp, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			    ok ? "200 OK" : "404 Not Found", body.len, body.buf);
		if (write(c, resp.buf, resp.len) < 0)
			(void)0; /* the client went away */
		close(c);
		strbuf_release(&body);
		strbuf_release(&resp);
	}
}
