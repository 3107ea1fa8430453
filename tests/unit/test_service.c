/* Unit tests for the message seam (src/service.c): the policy around
 * bot_handle is the same for every transport, counted under one table of
 * kinds, over a real store. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot.h"
#include "helpers.h"
#include "metrics.h"
#include "service.h"
#include "store.h"

static char dir[256];

struct world {
	struct store *store;
	struct bot *bot;
	char queued[16][200]; /* "kind reply_to text-start" per queued reply */
	int n;
};

static int fake_queue(void *arg, const struct service_msg *m, const struct reply *r, const char *reply_to)
{
	struct world *w = arg;
	(void)m;
	if (w->n < 16)
		snprintf(w->queued[w->n++], sizeof(w->queued[0]), "%d %s %.40s", (int)r->kind,
			 reply_to ? reply_to : "-", r->text);
	return 0;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/faqbot-service-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char err[512];
	struct world *w = calloc(1, sizeof(*w));
	w->store = store_open(dir, err, sizeof(err));
	w->bot = bot_new(index_from_json(FR_FAQ), NULL);
	metrics_reset();
	*state = w;
	return w->store && w->bot ? 0 : -1;
}

static int teardown(void **state)
{
	struct world *w = *state;
	store_close(w->store);
	bot_free(w->bot);
	free(w);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct service_msg msg(const char *text, enum chat_kind kind, const char *trigger, int64_t at)
{
	struct service_msg m = { { text, strlen(text), kind, 1, "-100", '/' }, "7", trigger, at, text, "42",
				 NULL, NULL };
	return m;
}

static int has(const char *text, const char *needle)
{
	return strstr(text, needle) != NULL;
}

/* The flood notice is counted and logged as kind "flood" (the Matrix copy
 * counted it as "other", the Telegram copy as "help"), with the same labels
 * whatever the transport. */
static void flood_notice_is_its_own_kind(void **state)
{
	struct world *w = *state;
	static const struct service_ops ops = { fake_queue };
	struct service_options o = { "x", 0, 0, 0, 2, 60, 300 };
	struct service *sv = service_new(w->bot, w->store, &o, &ops, w);
	char trig[32];
	assert_int_equal(store_begin(w->store), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(trig, sizeof(trig), "m:%d", i);
		struct service_msg m = msg("combien coûte la souscription", CHAT_PRIVATE, trig, 1000);
		assert_int_equal(service_handle(sv, &m, 2000), 0);
	}
	assert_int_equal(store_commit(w->store), 0);
	assert_int_equal(w->n, 3); /* two answers, one notice, then silence */
	struct strbuf out = STRBUF_INIT;
	metrics_render(&out);
	assert_true(has(out.buf, "faqbot_replies_total{transport=\"x\",kind=\"answer\"} 2"));
	assert_true(has(out.buf, "faqbot_replies_total{transport=\"x\",kind=\"flood\"} 1"));
	assert_true(has(out.buf, "faqbot_questions_total{transport=\"x\"} 3"));
	strbuf_release(&out);
	service_free(sv);
}

/* In a group the same answer within cooldown_s becomes a pointer replying
 * to the earlier answer's message (service_answer_sent); for every
 * transport that sets a cooldown, not only Telegram. */
static void cooldown_points_at_the_earlier_answer(void **state)
{
	struct world *w = *state;
	static const struct service_ops ops = { fake_queue };
	struct service_options o = { "x", 600, 0, 0, 0, 60, 300 };
	struct service *sv = service_new(w->bot, w->store, &o, &ops, w);
	assert_int_equal(store_begin(w->store), 0);
	struct service_msg m = msg("combien coûte la souscription", CHAT_GROUP, "m:1", 0);
	assert_int_equal(service_handle(sv, &m, 10000), 0);
	assert_int_equal(service_answer_sent(sv, "-100", "cout", "555"), 0);
	m = msg("quel est le prix", CHAT_GROUP, "m:2", 0);
	assert_int_equal(service_handle(sv, &m, 20000), 0);
	m = msg("combien coûte la souscription", CHAT_PRIVATE, "m:3", 0);
	assert_int_equal(service_handle(sv, &m, 20000), 0); /* private chats: no cooldown */
	assert_int_equal(store_commit(w->store), 0);
	assert_int_equal(w->n, 3);
	assert_true(has(w->queued[0], "1 42 "));
	assert_true(has(w->queued[1], "1 555 J'ai répondu"));
	assert_false(has(w->queued[2], "J'ai répondu"));
	struct strbuf out = STRBUF_INIT;
	metrics_render(&out);
	assert_true(has(out.buf, "faqbot_replies_total{transport=\"x\",kind=\"cooldown\"} 1"));
	strbuf_release(&out);
	service_free(sv);
}

struct seen {
	int n;
	char text[100];
};

static void collect(void *arg, int64_t at, const char *transport, const char *text, const char *best,
		    double confidence)
{
	struct seen *q = arg;
	(void)at;
	(void)transport;
	(void)best;
	(void)confidence;
	q->n++;
	snprintf(q->text, sizeof(q->text), "%s", text);
}

/* Unanswered questions are recorded as written (not the stripped text),
 * and only when the option says so. */
static void unanswered_is_recorded_once_for_all(void **state)
{
	struct world *w = *state;
	static const struct service_ops ops = { fake_queue };
	struct service_options o = { "x", 0, 1, 0, 0, 60, 300 };
	struct service *sv = service_new(w->bot, w->store, &o, &ops, w);
	assert_int_equal(store_begin(w->store), 0);
	struct service_msg m = msg("zzz inconnu blorp", CHAT_PRIVATE, "m:9", 0);
	m.question = "@faqbot zzz inconnu blorp";
	assert_int_equal(service_handle(sv, &m, 10000), 0);
	assert_int_equal(store_commit(w->store), 0);
	struct seen q = { 0, "" };
	assert_int_equal(store_unanswered_each(w->store, 0, collect, &q), 0);
	assert_int_equal(q.n, 1);
	assert_string_equal(q.text, "@faqbot zzz inconnu blorp");
	service_free(sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(flood_notice_is_its_own_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(cooldown_points_at_the_earlier_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(unanswered_is_recorded_once_for_all, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
