/*
 * metrics.h - Prometheus text metrics on a loopback HTTP address (optional).
 *
 * Counters are named series ("faqbot_replies_total", labels
 * "transport=\"telegram\",kind=\"answer\"") kept in a small table; the
 * event loop hands the listening socket's readiness to metrics_serve, which
 * answers one request per accepted connection (GET /metrics) and closes it.
 * Single-threaded, like the rest of faqbot.
 */
#ifndef FAQBOT_METRICS_H
#define FAQBOT_METRICS_H

#include "strbuf.h"

/* Adds v to a counter (created at 0 on first use). */
void metrics_add(const char *name, const char *labels, double v);
#define metrics_inc(name, labels) metrics_add(name, labels, 1)
/* Appends every series in Prometheus text format. */
void metrics_render(struct strbuf *out);
void metrics_reset(void);

/* Listens on "127.0.0.1:PORT" / "[::1]:PORT" / "localhost:PORT"; returns the
 * socket or -1 with a sentence in err (non-loopback addresses are refused). */
int metrics_listen(const char *address, char *err, size_t errlen);
/* Accepts and answers the pending connections on the listening socket. */
void metrics_serve(int listen_fd);

#endif
