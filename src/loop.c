/*
 * loop.c - the event loop.  See loop.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "loop.h"
#include "faq.h"
#include "index.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag, reload_flag;
static int wake_pipe[2] = { -1, -1 };

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

static void drain(void)
{
	char buf[64];
	while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
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
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int loop_reload(struct bot *bot, const char *path)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_load_file(path, &d);
	struct index *idx = f ? index_build(f, &d) : NULL;
	if (!idx) {
		for (size_t i = 0; i < d.n; i++)
			if (d.items[i].level == FAQ_ERROR)
				log_error("reload_failed", "problem=%s", log_q(d.items[i].text));
		log_error("reload_failed", "faq=%s note=%s", log_q(path),
			  log_q("the previous FAQ stays in service"));
		faq_diags_release(&d);
		return -1;
	}
	faq_diags_release(&d);
	index_free(bot_swap_index(bot, idx));
	log_info("reloaded", "faq=%s entries=%zu", log_q(path), index_faq(idx)->n_entries);
	return 0;
}

int loop_run(struct loop_ctx *ctx)
{
	if (setup_signals() < 0) {
		log_error("fatal", "error=%s", log_q("cannot set up signal handling"));
		return 1;
	}
	int64_t stop_deadline = 0;
	int rc = 0;
	for (;;) {
		int64_t now = wall_ms();
		if (reload_flag) {
			reload_flag = 0;
			loop_reload(ctx->bot, ctx->faq_path);
		}
		if (stop_flag && !stop_deadline) {
			log_info("stopping", "note=%s", log_q("finishing the replies in flight"));
			for (size_t i = 0; i < ctx->n_tr; i++)
				ctx->tr[i]->stop(ctx->tr[i]->self);
			stop_deadline = now + LOOP_STOP_GRACE_MS;
		}
		int busy = 0;
		for (size_t i = 0; i < ctx->n_tr; i++) {
			struct transport *t = ctx->tr[i];
			if (t->failed(t->self)) {
				rc = 1;
				goto out;
			}
			if (!stop_deadline)
				t->tick(t->self, now);
			busy += t->busy(t->self);
		}
		if (stop_deadline && (!busy || now >= stop_deadline))
			break;
		int64_t wake = stop_deadline ? now + 100 : now + 1000;
		for (size_t i = 0; i < ctx->n_tr && !stop_deadline; i++) {
			int64_t w = ctx->tr[i]->next_wake(ctx->tr[i]->self, now);
			if (w >= 0 && w < wake)
				wake = w;
		}
		int timeout = wake > now ? (int)(wake - now) : 0;
		http_run(ctx->http, timeout, wake_pipe[0]);
		drain();
	}
out:
	log_info("stopped", "status=%d", rc);
	return rc;
}
