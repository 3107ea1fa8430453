/*
 * loop.h - the single-threaded event loop serving every transport.
 *
 * One iteration: tick every transport (they start requests), sleep in
 * http_run until network activity, the earliest transport wake-up or a
 * signal, then run the finished requests' callbacks.  Signal handlers only
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

#include "bot.h"
#include "http.h"
#include "store.h"
#include "transport.h"

#define LOOP_STOP_GRACE_MS 4500
#define LOOP_RELOAD_DELAY_MS 300
#define LOOP_RETAIN_EVERY_MS 60000

struct loop_ctx {
	struct bot *bot;
	const char *faq_path;
	const char *state_dir;   /* where the heartbeat goes */
	struct http *http;
	struct transport **tr;
	size_t n_tr;
	struct store *store;     /* retention runs every LOOP_RETAIN_EVERY_MS, or NULL */
	struct store_retention retention;
};

/* Runs until a stop signal (returns 0) or a fatal transport error (1). */
int loop_run(struct loop_ctx *ctx);
/* Loads and indexes path; on success swaps it into bot and returns 0; on
 * failure logs every problem (and appends them to problems, if not NULL)
 * and keeps the FAQ in service (-1). */
int loop_reload(struct bot *bot, const char *path, struct strbuf *problems);

#endif
