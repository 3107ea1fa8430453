/* Unit tests for the transport skeleton (src/transport.c) with a fake
 * transport of a dozen lines: what a new transport writes is its hooks; the
 * skeleton carries a question from the inbox through the service and the
 * sender to a send and its outcome.  Real store, no network. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "metrics.h"
#include "transport.h"
#include "util.h"

static char dir[256];

struct fake {
	struct transport *t;
	int starts, polls;
	struct send_ctx *in_flight;
	struct send_ctx *all[8]; /* every send in flight, in start order */
	int n_all;
	http_done_fn done;
	char sent[4][200];
	int n_sent;
	int freed;
};

static int fake_start(void *self)
{
	((struct fake *)self)->starts++;
	return 1;
}

static int fake_poll(void *self)
{
	((struct fake *)self)->polls++;
	return 0;
}

/* An inbox row is "<chat>|<user>|<text>". */
static int fake_row(void *self, const struct inbox_row *row)
{
	struct fake *f = self;
	char chat[32], user[32];
	const char *text = row->payload;
	if (sscanf(row->payload, "%31[^|]|%31[^|]|", chat, user) != 2)
		return 0;
	text = strchr(strchr(text, '|') + 1, '|') + 1;
	char trigger[64];
	snprintf(trigger, sizeof(trigger), "m:%s", row->uid);
	struct service_msg m = { { text, strlen(text), CHAT_PRIVATE, 1, chat, '/' }, user, trigger, 0, text,
				 NULL, NULL, NULL };
	return service_handle(transport_service(f->t), &m, wall_ms());
}

static int fake_queue(void *self, const struct service_msg *m, const struct reply *r, const char *reply_to)
{
	struct fake *f = self;
	(void)reply_to;
	struct outbox_row row = { 0 };
	row.transport = "fake";
	row.chat = (char *)m->in.chat;
	row.trigger = (char *)m->trigger;
	row.method = "say";
	row.body = r->text;
	row.created_at = row.next_at = wall_ms();
	return store_outbox_add(transport_store(f->t), &row) < 0 ? -1 : 0;
}

static int fake_send(void *self, struct send_ctx *x, http_done_fn done)
{
	struct fake *f = self;
	f->in_flight = x;
	f->done = done;
	if (f->n_all < 8)
		f->all[f->n_all++] = x;
	return 0;
}

static int fake_sent(void *self, struct outbox_row *row, const struct http_response *r, int txn)
{
	struct fake *f = self;
	if (r->status == 200) {
		row->state = OUT_SENT;
		snprintf(f->sent[f->n_sent++ % 4], sizeof(f->sent[0]), "%s %s", row->chat, row->body);
	} else {
		sender_retry_later(row, wall_ms(), 1000);
	}
	return txn;
}

static void fake_free(void *self)
{
	((struct fake *)self)->freed = 1;
}

static const struct transport_ops ops = { fake_start, fake_poll, fake_row, fake_queue, fake_send, fake_sent,
					  NULL, fake_free };

struct world {
	struct store *store;
	struct bot *bot;
	struct fake f;
};

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/faqbot-transport-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char err[512];
	struct world *w = calloc(1, sizeof(*w));
	w->store = store_open(dir, err, sizeof(err));
	w->bot = bot_new(index_from_json(FR_FAQ), NULL);
	metrics_reset();
	struct transport_config c = { "fake", "poll", 1, 1, "admin-room", { "fake", 0, 0, 0, 0, 30, 300 } };
	w->f.t = transport_new(&c, &ops, &w->f, w->bot, w->store, NULL);
	*state = w;
	return w->store && w->bot ? 0 : -1;
}

static int teardown(void **state)
{
	struct world *w = *state;
	transport_free(w->f.t);
	assert_true(w->f.freed);
	store_close(w->store);
	bot_free(w->bot);
	free(w);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void answer_ctx(struct world *w, struct send_ctx *x, int status)
{
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	r.retry_after_s = -1;
	strbuf_init(&r.body, 0);
	if (w->f.in_flight == x)
		w->f.in_flight = NULL;
	w->f.done(x, &r);
	strbuf_release(&r.body);
}

static void answer(struct world *w, int status)
{
	answer_ctx(w, w->f.in_flight, status);
}

static int commits;

static int count_commit(void *arg)
{
	(void)arg;
	commits++;
	return 0;
}

/* Group commit: questions from four chats go out at once (max_in_flight
 * 4); their four answers, arriving in one loop turn, are classified and
 * committed by the next tick in one transaction, not one commit each. */
static void answers_of_one_turn_are_committed_together(void **state)
{
	struct world *w = *state;
	transport_free(w->f.t);
	struct transport_config c = { "fake", "poll", 4, 1, NULL, { "fake", 0, 0, 0, 0, 30, 300 } };
	memset(&w->f, 0, sizeof(w->f));
	w->f.t = transport_new(&c, &ops, &w->f, w->bot, w->store, NULL);
	struct transport *t = w->f.t;
	transport_running(t);
	int64_t now = wall_ms();
	assert_int_equal(store_begin(w->store), 0);
	for (int i = 0; i < 4; i++) {
		char uid[16], payload[96];
		snprintf(uid, sizeof(uid), "u%d", i);
		snprintf(payload, sizeof(payload), "c%d|user%d|combien coûte la souscription", i, i);
		assert_int_equal(store_inbox_add(w->store, "fake", uid, payload, now), 1);
	}
	assert_int_equal(store_commit(w->store), 0);
	transport_poll_stored(t, 0.1);
	transport_tick(t, wall_ms() + 10);
	assert_int_equal(w->f.n_all, 4); /* four chats in parallel */
	assert_int_equal(transport_busy(t), 4);
	sqlite3_commit_hook(store_sqlite_for_tests(w->store), count_commit, NULL);
	commits = 0;
	for (int i = 0; i < 4; i++)
		answer_ctx(w, w->f.all[i], 200);
	assert_int_equal(commits, 0);    /* the callbacks only keep the answers */
	assert_int_equal(w->f.n_sent, 0);
	transport_tick(t, wall_ms());
	assert_int_equal(commits, 1);    /* one transaction for the four */
	assert_int_equal(w->f.n_sent, 4);
	sqlite3_commit_hook(store_sqlite_for_tests(w->store), NULL, NULL);
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_SENT), 4);
	assert_int_equal(transport_busy(t), 0);
}

/* Start-up, a poll, the question through the service, the send and its
 * outcome: every step the skeleton owns, for a transport that wrote only
 * hooks. */
static void a_question_goes_all_the_way(void **state)
{
	struct world *w = *state;
	struct transport *t = w->f.t;
	int64_t now = wall_ms();
	transport_tick(t, now);
	assert_int_equal(w->f.starts, 1);
	assert_int_equal(transport_next_wake(t, now), -1); /* the start request is in flight */
	transport_tick(t, now);
	assert_int_equal(w->f.starts, 1);
	transport_running(t);
	assert_true(transport_running_now(t));
	transport_tick(t, now);
	assert_int_equal(w->f.polls, 1);
	transport_tick(t, now);
	assert_int_equal(w->f.polls, 1); /* one poll at a time */

	assert_int_equal(store_begin(w->store), 0);
	assert_int_equal(store_inbox_add(w->store, "fake", "u1", "c1|alice|combien coûte la souscription", now), 1);
	assert_int_equal(store_commit(w->store), 0);
	transport_poll_stored(t, 0.25);
	assert_true(transport_last_poll(t) >= now);
	/* processed and queued in that pump; picked there too unless the
	 * clock moved past the pump's now meanwhile: the next tick then */
	transport_tick(t, wall_ms() + 10);
	assert_non_null(w->f.in_flight);
	assert_int_equal(transport_busy(t), 1);
	answer(w, 503);
	/* group commit: the answer is kept until the loop's next tick, which
	 * classifies it (the sent hook asks for a retry) and commits it */
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_SENDING), 1);
	assert_true(transport_next_wake(t, wall_ms()) <= wall_ms());
	transport_tick(t, wall_ms());
	assert_int_equal(w->f.n_sent, 0);
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_PENDING), 1);
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_SENDING), 0);
	assert_int_equal(transport_busy(t), 0);

	struct strbuf out = STRBUF_INIT;
	metrics_render(&out);
	assert_non_null(strstr(out.buf, "faqbot_polls_total{transport=\"fake\"} 1"));
	assert_non_null(strstr(out.buf, "faqbot_poll_seconds_total{transport=\"fake\"} 0.25"));
	assert_non_null(strstr(out.buf, "faqbot_replies_total{transport=\"fake\",kind=\"answer\"} 1"));
	strbuf_release(&out);
}

/* A failed poll backs off and is counted under the transport's name; an
 * admin notice goes to the configured chat through the queue hook. */
static void failures_back_off_and_admins_are_told(void **state)
{
	struct world *w = *state;
	struct transport *t = w->f.t;
	int64_t now = wall_ms();
	transport_running(t);
	transport_tick(t, now);
	assert_int_equal(w->f.polls, 1);
	transport_poll_failed(t, 502, NULL, "bad gateway", 5000);
	int64_t wake = transport_next_wake(t, now);
	assert_true(wake >= now + 4000 && wake <= now + 6000);
	transport_tick(t, now);
	assert_int_equal(w->f.polls, 1); /* waits for the server's 5 s */
	struct strbuf out = STRBUF_INIT;
	metrics_render(&out);
	assert_non_null(strstr(out.buf, "faqbot_errors_total{transport=\"fake\",kind=\"poll\"} 1"));
	strbuf_release(&out);

	transport_notify_admin(t, "La FAQ a des erreurs.");
	transport_tick(t, wall_ms() + 10);
	assert_non_null(w->f.in_flight);
	answer(w, 200);
	transport_tick(t, wall_ms());
	assert_int_equal(w->f.n_sent, 1);
	assert_string_equal(w->f.sent[0], "admin-room La FAQ a des erreurs.");
	transport_stop(t);
	transport_tick(t, now + 10000);
	assert_int_equal(w->f.polls, 1); /* stopped: no new poll */
}

/* A transport that fails (the loop then stops at once), or is stopped (the
 * loop then ticks no more), writes the answers it kept for the next pump,
 * and starts no new send: a graceful stop leaves nothing "sending". */
static void stop_or_failure(void **state, int fail)
{
	struct world *w = *state;
	struct transport *t = w->f.t;
	transport_running(t);
	int64_t now = wall_ms();
	assert_int_equal(store_begin(w->store), 0);
	assert_int_equal(store_inbox_add(w->store, "fake", "u1", "c1|alice|combien coûte la souscription", now), 1);
	assert_int_equal(store_inbox_add(w->store, "fake", "u2", "c2|bob|combien coûte la souscription", now), 1);
	assert_int_equal(store_commit(w->store), 0);
	transport_poll_stored(t, 0.1);
	transport_tick(t, wall_ms() + 10);
	assert_int_equal(w->f.n_all, 1); /* max_in_flight 1 here */
	answer(w, 200);
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_SENT), 0);
	if (fail)
		transport_fail(t, "a test");
	else
		transport_stop(t);
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_SENT), 1);
	assert_int_equal(store_outbox_count(w->store, "fake", OUT_SENDING), 0);
	assert_int_equal(w->f.n_all, 1); /* nothing new went out */
	assert_int_equal(transport_busy(t), 0);
}

static void a_failure_writes_the_answers_kept(void **state)
{
	stop_or_failure(state, 1);
}

static void a_stop_writes_the_answers_kept(void **state)
{
	stop_or_failure(state, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_question_goes_all_the_way, setup, teardown),
		cmocka_unit_test_setup_teardown(failures_back_off_and_admins_are_told, setup, teardown),
		cmocka_unit_test_setup_teardown(answers_of_one_turn_are_committed_together, setup, teardown),
		cmocka_unit_test_setup_teardown(a_failure_writes_the_answers_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(a_stop_writes_the_answers_kept, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
