/*
 * loop.h - the single-threaded event loop serving every transport.
 *
 * One iteration: tick every transport (they start requests), sleep until
 * network activity, a registered descriptor, the earliest wake-up or a
 * signal, then run the ready descriptors' callbacks and the finished
 * requests' callbacks.
 *
 * The poll set is the loop's: a module that has sockets of its own (the
 * metrics server; the signal pipe and the FAQ watch are the loop's own)
 * registers each with loop_add_fd(fd, events, cb, data), ae.c-style, and
 * its deadline with loop_set_timer.  libcurl keeps its own sockets; rather
 * than mirroring them (CURLMOPT_SOCKETFUNCTION, a second source of truth
 * for what curl waits on), the loop hands its descriptors to
 * curl_multi_poll through http_wait, the one call that sleeps, reads the
 * ready events back, dispatches them, then lets http_perform run the
 * transfers.  So http.c only drives curl and knows no descriptor but
 * curl's; loop.c knows no protocol.  Signal handlers only
 * write a byte to a self-pipe (which wakes the poll) and set flags:
 *   SIGTERM, SIGINT  stop polling, finish the sends in flight (at most
 *                    LOOP_STOP_GRACE_MS), exit 0;
 *   SIGHUP           reload the FAQ; an invalid file keeps the old one.
 * The FAQ file's directory is watched (inotify): a save, including the
 * write-a-new-file-and-rename-it way many editors save, reloads the FAQ
 * LOOP_RELOAD_DELAY_MS after the last change.
 */
#ifndef FAQBOT_LOOP_H
#define FAQBOT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "bot.h"
#include "http.h"
#include "store.h"
#include "transport.h"

#define LOOP_STOP_GRACE_MS 4500
#define LOOP_RELOAD_DELAY_MS 300
#define LOOP_RETAIN_EVERY_MS 60000
#define LOOP_RETAIN_AGAIN_MS 1000 /* when a run left rows (store_retain_more) */

struct loop_ctx {
	struct bot *bot;
	const char *faq_path;
	const char *state_dir;   /* where the heartbeat goes */
	struct http *http;
	struct transport **tr;
	size_t n_tr;
	struct store *store;     /* retention runs every LOOP_RETAIN_EVERY_MS, or NULL */
	struct store_retention retention;
	struct feedback *feedback; /* borrowed, or NULL: told of every FAQ reloaded (live learning) */
};

#define LOOP_MAX_FDS HTTP_MAX_EXTRA_FDS /* descriptors registered at once */

/* Called with the events that happened (POLLIN, POLLOUT, POLLERR, POLLHUP). */
typedef void (*loop_fd_fn)(void *data, int fd, short revents);
/* Watches fd for events (POLLIN and/or POLLOUT) and calls cb when one
 * happens; registering an fd again changes its events, callback and data.
 * 0, or -1 when LOOP_MAX_FDS are registered already. */
int loop_add_fd(int fd, short events, loop_fd_fn cb, void *data);
/* Stops watching fd (before closing it); unknown fds are ignored. */
void loop_del_fd(int fd);
/* cb(data, now) runs once the wall clock reaches at_ms; one timer per cb
 * (setting it again moves it), at_ms < 0 cancels it. */
typedef void (*loop_timer_fn)(void *data, int64_t now);
void loop_set_timer(loop_timer_fn cb, void *data, int64_t at_ms);

/* Runs until a stop signal (returns 0) or a fatal transport error (1). */
int loop_run(struct loop_ctx *ctx);
/* Loads and indexes path; on success swaps it into bot and returns 0; on
 * failure logs every problem (and appends them to problems, if not NULL)
 * and keeps the FAQ in service (-1). */
int loop_reload(struct bot *bot, const char *path, struct strbuf *problems);

#endif
