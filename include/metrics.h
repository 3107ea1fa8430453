/*
 * metrics.h - Prometheus text metrics on a loopback HTTP address (optional).
 *
 * Counters are named series ("faqbot_replies_total", labels
 * "transport=\"telegram\",kind=\"answer\"") kept in a small table.  The
 * endpoint answers one request per connection (GET /metrics) and closes
 * it; its sockets are non-blocking and registered with the event loop
 * (loop_add_fd; a loop timer closes clients past their deadline), each
 * client bounded in time, their number capped.
 * Single-threaded, like the rest of faqbot.
 */
#ifndef FAQBOT_METRICS_H
#define FAQBOT_METRICS_H

#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include "strbuf.h"

/* Adds v to a counter (created at 0 on first use). */
void metrics_add(const char *name, const char *labels, double v);
#define metrics_inc(name, labels) metrics_add(name, labels, 1)
/* Appends every series in Prometheus text format. */
void metrics_render(struct strbuf *out);
void metrics_reset(void);

#define METRICS_MAX_CONNS 16   /* clients served at once; more are closed at once */
#define METRICS_CONN_MS 5000    /* time a client has to send its request and read the answer */

/* Checks a metrics_address: "127.0.0.1:PORT" (any IPv4 in 127.0.0.0/8,
 * written in full), "[::1]:PORT" or "localhost:PORT".  Fills the socket
 * address and returns 0, or -1 with a sentence in err. */
int metrics_address_parse(const char *address, struct sockaddr_storage *sa, socklen_t *salen,
			  char *err, size_t errlen);
/* Starts listening on address (see metrics_address_parse) and registers
 * the socket with the event loop (loop.h), which then serves clients as
 * they come; 0, or -1 with a sentence in err.  The socket belongs to this
 * module (metrics_close). */
int metrics_listen(const char *address, char *err, size_t errlen);
/* Closes the listener and every client. */
void metrics_close(void);

#endif
