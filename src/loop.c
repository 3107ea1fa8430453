/*
 * loop.c - the event loop.  See loop.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "loop.h"
#include "faqindex.h"
#include "feedback.h"
#include "health.h"
#include "index.h"
#include "lexfile.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag, reload_flag;
static int wake_pipe[2] = { -1, -1 };

/* ==== The poll set: descriptors and timers registered by the modules ==== */

static struct watched {
	int fd;
	short events;
	loop_fd_fn cb;
	void *data;
} watched[LOOP_MAX_FDS];
static size_t n_watched;

#define LOOP_MAX_TIMERS 8
static struct timer {
	loop_timer_fn cb;
	void *data;
	int64_t at;
} timers[LOOP_MAX_TIMERS];

int loop_add_fd(int fd, short events, loop_fd_fn cb, void *data)
{
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < n_watched; i++)
		if (watched[i].fd == fd) {
			watched[i] = (struct watched){ fd, events, cb, data };
			return 0;
		}
	if (n_watched == LOOP_MAX_FDS)
		return -1;
	watched[n_watched++] = (struct watched){ fd, events, cb, data };
	return 0;
}

void loop_del_fd(int fd)
{
	for (size_t i = 0; i < n_watched; i++)
		if (watched[i].fd == fd) {
			watched[i] = watched[--n_watched];
			return;
		}
}

void loop_set_timer(loop_timer_fn cb, void *data, int64_t at_ms)
{
	struct timer *free_slot = NULL;
	for (size_t i = 0; i < LOOP_MAX_TIMERS; i++) {
		if (timers[i].cb == cb) {
			timers[i].data = data;
			timers[i].at = at_ms;
			if (at_ms < 0)
				timers[i].cb = NULL;
			return;
		}
		if (!timers[i].cb && !free_slot)
			free_slot = &timers[i];
	}
	if (at_ms < 0)
		return;
	if (!free_slot) {
		log_error("fatal", "error=%s", log_q("more loop timers than LOOP_MAX_TIMERS (a bug)"));
		abort();
	}
	*free_slot = (struct timer){ cb, data, at_ms };
}

/* The earliest timer, or -1. */
static int64_t timers_next(void)
{
	int64_t w = -1;
	for (size_t i = 0; i < LOOP_MAX_TIMERS; i++)
		if (timers[i].cb && (w < 0 || timers[i].at < w))
			w = timers[i].at;
	return w;
}

static void timers_run(int64_t now)
{
	for (size_t i = 0; i < LOOP_MAX_TIMERS; i++)
		if (timers[i].cb && timers[i].at <= now) {
			loop_timer_fn cb = timers[i].cb;
			timers[i].cb = NULL; /* one shot: the callback sets it again if it wants */
			cb(timers[i].data, now);
		}
}

/* Sleeps in http_wait with every registered descriptor, then calls the
 * callbacks of those that are ready.  A callback may add or remove
 * descriptors: the snapshot is checked against the registry first. */
static void wait_and_dispatch(struct http *h, int timeout)
{
	struct pollfd fds[LOOP_MAX_FDS];
	size_t n = n_watched;
	for (size_t i = 0; i < n; i++)
		fds[i] = (struct pollfd){ watched[i].fd, watched[i].events, 0 };
	http_wait(h, timeout, fds, (int)n);
	for (size_t i = 0; i < n; i++) {
		if (!fds[i].revents)
			continue;
		for (size_t j = 0; j < n_watched; j++)
			if (watched[j].fd == fds[i].fd) {
				watched[j].cb(watched[j].data, fds[i].fd, fds[i].revents);
				break;
			}
	}
}

static void on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGHUP)
		reload_flag = 1;
	else
		stop_flag = 1;
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0)
		(void)0; /* the pipe is full: a wake-up is already pending */
	errno = saved;
}

static void drain(void *data, int fd, short revents)
{
	(void)data;
	(void)revents;
	char buf[64];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int setup_signals(void)
{
	if (pipe(wake_pipe) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		fcntl(wake_pipe[i], F_SETFL, fcntl(wake_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN); /* cannot fail for a valid signal */
	return 0;
}

int loop_reload(struct bot *bot, const char *path, struct strbuf *problems)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct index *idx = faqindex_load(path, &d);
	if (!idx) {
		for (size_t i = 0; i < d.n; i++)
			if (d.items[i].level == FAQ_ERROR) {
				log_error("reload_failed", "problem=%s", log_q(d.items[i].text));
				if (problems)
					strbuf_addf(problems, "%s\n", d.items[i].text);
			}
		log_error("reload_failed", "faq=%s note=%s", log_q(path),
			  log_q("the previous FAQ stays in service"));
		faq_diags_release(&d);
		metrics_inc("faqbot_reloads_total", "result=\"failed\"");
		return -1;
	}
	faq_diags_release(&d);
	index_free(bot_swap_index(bot, idx));
	log_info("reloaded", "faq=%s entries=%zu", log_q(path), index_faq(idx)->n_entries);
	metrics_inc("faqbot_reloads_total", "result=\"ok\"");
	return 0;
}

/* Reloads, and tells the admin chats when the new FAQ is refused. */
static void reload(struct loop_ctx *ctx)
{
	struct strbuf problems = STRBUF_INIT;
	int rc = loop_reload(ctx->bot, ctx->faq_path, &problems);
	/* learned phrasings join the new FAQ at once, not at the next choice */
	if (rc == 0 && ctx->feedback && feedback_faq_loaded(ctx->feedback, wall_ms()) < 0)
		log_warn("learn_failed", "note=%s",
			 log_q("learned phrasings could not be read; the FAQ answers as written"));
	if (rc < 0) {
		struct strbuf msg = STRBUF_INIT;
		char *head = bot_text(ctx->bot, "faq_refused", '/');
		strbuf_addf(&msg, "%s\n%s\n%s", head, ctx->faq_path, problems.buf);
		free(head);
		for (size_t i = 0; i < ctx->n_tr; i++)
			transport_notify_admin(ctx->tr[i], msg.buf);
		strbuf_release(&msg);
	}
	strbuf_release(&problems);
	mem_trim();	/* the old index, or the refused one, and the parse */
	lexfile_release(); /* the table pages the build looked up */
}

/* Watches the directory of path (not the file: an editor that renames a
 * new file over the old one replaces the inode).  Returns the fd or -1. */
static int watch_faq(const char *path, char **base)
{
	char *d = xstrdup(path), *b = xstrdup(path);
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd >= 0 && inotify_add_watch(fd, dirname(d), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
					 IN_ATTRIB) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		log_warn("faq_watch_failed", "faq=%s note=%s", log_q(path),
			 log_q("edits are picked up on SIGHUP only"));
	*base = xstrdup(basename(b));
	free(d);
	free(b);
	return fd;
}

/* Reads pending inotify events; 1 when one concerns the FAQ file. */
static int faq_changed(int fd, const char *base)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int hit = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && !strcmp(ev->name, base))
				hit = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

struct faq_watch {
	char *base;               /* the FAQ file's name in the watched directory */
	int64_t reload_at;        /* 0, or when to reload (the editor has finished) */
};

static void on_faq_watch(void *data, int fd, short revents)
{
	(void)revents;
	struct faq_watch *w = data;
	if (faq_changed(fd, w->base))
		w->reload_at = wall_ms() + LOOP_RELOAD_DELAY_MS; /* let the editor finish writing */
}

/* Applies the store's retention policy as the bot runs (store.h). */
static void retain(struct loop_ctx *ctx, int64_t now)
{
	if (!ctx->store || store_in_transaction(ctx->store))
		return;
	int n = -1;
	if (store_begin(ctx->store) == 0) {
		n = store_retain(ctx->store, now, &ctx->retention);
		if (store_commit(ctx->store) < 0)
			n = -1;
	}
	if (n < 0)
		log_warn("retention_failed", "note=%s", log_q("old rows are pruned at the next try"));
	else if (n > 0)
		log_debug("retention", "rows=%d", n);
}

int loop_run(struct loop_ctx *ctx)
{
	if (setup_signals() < 0) {
		log_error("fatal", "error=%s", log_q("cannot set up signal handling"));
		return 1;
	}
	int64_t stop_deadline = 0, beat_at = 0, retain_at = 0;
	int rc = 0;
	struct faq_watch fw = { NULL, 0 };
	int watch = watch_faq(ctx->faq_path, &fw.base);
	loop_add_fd(wake_pipe[0], POLLIN, drain, NULL);
	if (watch >= 0)
		loop_add_fd(watch, POLLIN, on_faq_watch, &fw);
	for (;;) {
		int64_t now = wall_ms();
		if (reload_flag || (fw.reload_at && now >= fw.reload_at)) {
			reload_flag = 0;
			fw.reload_at = 0;
			reload(ctx);
		}
		if (stop_flag && !stop_deadline) {
			log_info("stopping", "note=%s", log_q("finishing the replies in flight"));
			for (size_t i = 0; i < ctx->n_tr; i++)
				transport_stop(ctx->tr[i]);
			stop_deadline = now + LOOP_STOP_GRACE_MS;
		}
		int busy = 0;
		for (size_t i = 0; i < ctx->n_tr; i++) {
			struct transport *t = ctx->tr[i];
			if (transport_failed(t)) {
				rc = 1;
				goto out;
			}
			if (!stop_deadline)
				transport_tick(t, now);
			busy += transport_busy(t);
		}
		if (stop_deadline && (!busy || now >= stop_deadline))
			break;
		if (now >= beat_at) {
			health_write(ctx->state_dir, ctx->tr, ctx->n_tr);
			mem_trim();	/* a burst (a big sync, many replies) leaves free heap behind */
			beat_at = now + HEALTH_EVERY_MS;
		}
		if (now >= retain_at && !stop_deadline) {
			retain(ctx, now);
			/* every minute, or twice per window when it is shorter (tests) */
			int64_t every = ctx->retention.dedup_ms / 2;
			retain_at = now + (every > 0 && every < LOOP_RETAIN_EVERY_MS ? every : LOOP_RETAIN_EVERY_MS);
			if (ctx->store && store_retain_more(ctx->store))
				retain_at = now + LOOP_RETAIN_AGAIN_MS; /* more rows than a batch: keep pace */
		}
		int64_t wake = stop_deadline ? now + 100 : now + 1000;
		if (fw.reload_at && fw.reload_at < wake)
			wake = fw.reload_at;
		int64_t tw = timers_next();
		if (tw >= 0 && tw < wake)
			wake = tw;
		for (size_t i = 0; i < ctx->n_tr && !stop_deadline; i++) {
			int64_t w = transport_next_wake(ctx->tr[i], now);
			if (w >= 0 && w < wake)
				wake = w;
		}
		wait_and_dispatch(ctx->http, wake > now ? (int)(wake - now) : 0);
		http_perform(ctx->http);
		timers_run(wall_ms());
	}
out:
	loop_del_fd(wake_pipe[0]);
	if (watch >= 0) {
		loop_del_fd(watch);
		close(watch);
	}
	free(fw.base);
	log_info("stopped", "status=%d", rc);
	return rc;
}
