/* Unit tests for the send queue (src/sender.c) over a real store. */
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

#include "sender.h"
#include "store.h"

#include "store_fixture.h"

struct fake {
	struct send_ctx *sent[64];
	int n_sent;
	char throttled[16]; /* a chat the rate limiter holds back */
};

static int fake_send(void *arg, struct send_ctx *x)
{
	struct fake *f = arg;
	f->sent[f->n_sent++] = x;
	return 0;
}

static int64_t fake_throttle(void *arg, const char *chat, int64_t now)
{
	(void)now;
	return strcmp(((struct fake *)arg)->throttled, chat) ? 0 : 3000;
}

static void queue(struct store *s, const char *chat, const char *trigger, int64_t at)
{
	struct outbox_row r = { 0 };
	r.transport = "t";
	r.chat = (char *)chat;
	r.trigger = (char *)trigger;
	r.method = "sendMessage";
	r.body = "{}";
	r.created_at = r.next_at = at;
	assert_true(store_outbox_add(s, &r) > 0);
}

/* One pump: pick inside a transaction, commit, start (as the transports do). */
static void pump(struct store *s, struct sender *snd, int64_t now)
{
	if (store_begin(s) < 0) {
		sender_start(snd, now, 1);
		return;
	}
	sender_pick(snd, now);
	sender_start(snd, now, store_commit(s) < 0);
}

static void throttled_chat_does_not_block_the_others(void **state)
{
	struct store *s = *state;
	struct fake f = { .throttled = "G" };
	struct sender_ops ops = { fake_send, fake_throttle };
	struct sender *snd = sender_new(s, "t", 1, &ops, &f);
	for (int i = 0; i < 5; i++) {
		char trig[16];
		snprintf(trig, sizeof(trig), "g%d", i);
		queue(s, "G", trig, 1); /* the busy group's rows come first */
	}
	queue(s, "P", "p1", 2);
	pump(s, snd, 10);
	assert_int_equal(f.n_sent, 1);
	assert_string_equal(f.sent[0]->row.chat, "P"); /* not stuck behind G */
	f.sent[0]->row.state = OUT_SENT;
	sender_done(snd, f.sent[0]);
	pump(s, snd, 20);
	assert_int_equal(f.n_sent, 1);                  /* G still held back */
	assert_int_equal(sender_wake(snd), 10 + 3000); /* and woken when it may go */
	sender_free(snd);
}

static void outcome_that_cannot_be_committed_is_kept_not_resent(void **state)
{
	struct store *s = *state;
	struct fake f = { .throttled = "" };
	struct sender_ops ops = { fake_send, NULL };
	struct sender *snd = sender_new(s, "t", 4, &ops, &f);
	queue(s, "A", "a1", 1);
	pump(s, snd, 10);
	assert_int_equal(f.n_sent, 1);
	/* the reply went out; now another program holds the database */
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(store_sqlite_for_tests(s), 20);
	f.sent[0]->row.state = OUT_SENT;
	sender_done(snd, f.sent[0]);
	pump(s, snd, 20);
	pump(s, snd, 1100);
	assert_int_equal(sender_unrecorded(snd), 1); /* kept in memory */
	assert_true(sender_ready(snd, 2200));        /* and tried again */
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	pump(s, snd, 2200);
	assert_int_equal(sender_unrecorded(snd), 0);
	assert_int_equal(store_outbox_count(s, "t", OUT_SENT), 1);
	assert_int_equal(store_outbox_count(s, "t", OUT_SENDING), 0);
	pump(s, snd, 3300);
	assert_int_equal(f.n_sent, 1); /* never sent twice */
	sender_free(snd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(throttled_chat_does_not_block_the_others, setup, teardown),
		cmocka_unit_test_setup_teardown(outcome_that_cannot_be_committed_is_kept_not_resent, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
