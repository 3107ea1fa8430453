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
	/* what another program reading the database sees when a send starts */
	sqlite3 *reader;
	int checked, not_marked, earlier_unfinished;
	int64_t order[64];  /* row ids in the order they went out */
	/* the outcome hook */
	struct store *store;
	int outcomes, fail_next_outcome;
};

static int64_t read_int(sqlite3 *db, const char *sql, int64_t id)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int fake_send(void *arg, struct send_ctx *x)
{
	struct fake *f = arg;
	f->order[f->n_sent] = x->row.id;
	f->sent[f->n_sent++] = x;
	if (f->reader) {
		/* committed, as a crash now would leave it: this row is marked
		 * sending, and every earlier row of its chat is finished */
		f->checked++;
		f->not_marked += read_int(f->reader, "SELECT state FROM outbox WHERE id=?1", x->row.id) != OUT_SENDING;
		f->earlier_unfinished += read_int(f->reader, "SELECT COUNT(*) FROM outbox o WHERE o.state IN (0, 1)"
					       " AND o.id<?1 AND o.chat=(SELECT chat FROM outbox WHERE id=?1)",
					       x->row.id) != 0;
	}
	return 0;
}

/* The outcome hook: 200 is sent, anything else is tried again later.
 * fail_next_outcome: its own write fails (the disk is full). */
static int fake_outcome(void *arg, struct send_ctx *x)
{
	struct fake *f = arg;
	f->outcomes++;
	if (x->resp.status == 200)
		x->row.state = OUT_SENT;
	else
		sender_retry_later(&x->row, x->row.next_at, 1000);
	if (!f->fail_next_outcome)
		return 0;
	f->fail_next_outcome = 0;
	sqlite3 *db = store_sqlite_for_tests(f->store);
	assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count=1", NULL, NULL, NULL), SQLITE_OK);
	static char big[200000];
	memset(big, 'x', sizeof(big) - 1);
	int rc = store_inbox_add(f->store, "t", "big", big, 1);
	assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count=1000000", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(rc, -1);
	return -1;
}

static void answer(struct sender *snd, struct send_ctx *x, long status)
{
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	r.retry_after_s = -1;
	strbuf_init(&r.body, 0);
	assert_int_equal(strbuf_addstr(&r.body, "{\"ok\":true}"), 0);
	sender_answered(snd, x, &r);
	strbuf_release(&r.body); /* the sender keeps its own copy */
}

static int commits;

static int count_commit(void *arg)
{
	(void)arg;
	commits++;
	return 0;
}

static sqlite3 *open_reader(void)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	return db;
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
	struct sender_ops ops = { fake_send, fake_throttle, NULL };
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
	struct sender_ops ops = { fake_send, NULL, NULL };
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

/* Group commit: the answers that arrive in one loop turn are classified
 * and written in one transaction, which also marks the next sends; a
 * chat's next row goes out only once its previous outcome is committed. */
static void answers_of_one_turn_share_one_commit(void **state)
{
	struct store *s = *state;
	struct fake f = { .throttled = "", .store = s };
	struct sender_ops ops = { fake_send, NULL, fake_outcome };
	struct sender *snd = sender_new(s, "t", 4, &ops, &f);
	queue(s, "A", "a1", 1);
	queue(s, "B", "b1", 1);
	queue(s, "C", "c1", 1);
	queue(s, "D", "d1", 1);
	queue(s, "A", "a2", 1);
	f.reader = open_reader();
	pump(s, snd, 10);
	assert_int_equal(f.n_sent, 4); /* four chats at once; a2 waits for a1 */
	for (int i = 0; i < 4; i++)
		assert_string_not_equal(f.sent[i]->row.trigger, "a2");
	for (int i = 0; i < 4; i++)
		answer(snd, f.sent[i], 200);
	assert_int_equal(f.outcomes, 0);                             /* kept for the pump */
	assert_int_equal(store_outbox_count(s, "t", OUT_SENDING), 4); /* not yet committed */
	sqlite3_commit_hook(store_sqlite_for_tests(s), count_commit, NULL);
	commits = 0;
	pump(s, snd, 20);
	sqlite3_commit_hook(store_sqlite_for_tests(s), NULL, NULL);
	assert_int_equal(commits, 1);  /* four outcomes and the next send: one commit */
	assert_int_equal(f.outcomes, 4);
	assert_int_equal(store_outbox_count(s, "t", OUT_SENT), 4);
	assert_int_equal(f.n_sent, 5);
	assert_string_equal(f.sent[4]->row.trigger, "a2");
	assert_int_equal(f.checked, 5);
	assert_int_equal(f.not_marked, 0);         /* each send was marked before it left */
	assert_int_equal(f.earlier_unfinished, 0); /* a1's outcome was durable before a2 left */
	sqlite3_close(f.reader);
	sender_free(snd);
}

/* Several chats in flight: however answers interleave with pumps, the rows
 * "sending" in the database (what a crash leaves ambiguous) never exceed
 * max_in_flight, each chat's rows go in order, one at a time, and every row
 * goes exactly once. */
static void sending_rows_never_exceed_max_in_flight(void **state)
{
	struct store *s = *state;
	struct fake f = { .throttled = "", .store = s };
	struct sender_ops ops = { fake_send, NULL, fake_outcome };
	struct sender *snd = sender_new(s, "t", 3, &ops, &f);
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 10; c++) {
			char chat[16], trig[32];
			snprintf(chat, sizeof(chat), "c%d", c);
			snprintf(trig, sizeof(trig), "c%d-%d", c, r);
			queue(s, chat, trig, 1);
		}
	f.reader = open_reader();
	struct send_ctx *live[64];
	int n_live = 0, done = 0, seen = 0;
	unsigned rnd = 7;
	for (int step = 0; step < 200 && done < 20; step++) {
		pump(s, snd, 10 + step);
		for (; seen < f.n_sent; seen++)
			live[n_live++] = f.sent[seen];
		assert_true(sender_in_flight(snd) <= 3);
		assert_true(store_outbox_count(s, "t", OUT_SENDING) <= 3);
		/* some of the sends in flight answer before the next pump */
		for (int i = 0; i < n_live;) {
			rnd = rnd * 1103515245u + 12345u;
			if ((rnd >> 16) % 2) {
				answer(snd, live[i], 200);
				live[i] = live[--n_live];
				done++;
			} else {
				i++;
			}
		}
		assert_true(store_outbox_count(s, "t", OUT_SENDING) <= 3);
	}
	pump(s, snd, 1000);
	assert_int_equal(f.n_sent, 20); /* each row once */
	assert_int_equal(store_outbox_count(s, "t", OUT_SENT), 20);
	assert_int_equal(f.not_marked, 0);
	assert_int_equal(f.earlier_unfinished, 0);
	/* per chat, the first row went before the second (ids: all first rows
	 * were queued before any second row) */
	for (int c = 0; c < 10; c++) {
		int64_t first = c + 1, second = c + 11;
		int at_first = -1, at_second = -1;
		for (int i = 0; i < f.n_sent; i++) {
			if (f.order[i] == first)
				at_first = i;
			if (f.order[i] == second)
				at_second = i;
		}
		assert_true(at_first >= 0 && at_second > at_first);
	}
	sqlite3_close(f.reader);
	sender_free(snd);
}

/* The outcome hook's own write fails (disk full): the transaction is
 * refused, the outcome stays in memory, is classified once only, and the
 * next pump writes it; the reply is never sent again. */
static void outcome_hook_failure_keeps_the_outcome(void **state)
{
	struct store *s = *state;
	struct fake f = { .throttled = "", .store = s };
	struct sender_ops ops = { fake_send, NULL, fake_outcome };
	struct sender *snd = sender_new(s, "t", 2, &ops, &f);
	queue(s, "A", "a1", 1);
	queue(s, "A", "a2", 1);
	pump(s, snd, 10);
	assert_int_equal(f.n_sent, 1);
	answer(snd, f.sent[0], 200);
	f.fail_next_outcome = 1;
	pump(s, snd, 20);                            /* refused */
	assert_int_equal(f.outcomes, 1);
	assert_int_equal(f.n_sent, 1);               /* a2 waits: a1's outcome is not durable */
	assert_int_equal(sender_unrecorded(snd), 1);
	assert_int_equal(store_outbox_count(s, "t", OUT_SENDING), 1);
	assert_true(sender_ready(snd, 1020));
	pump(s, snd, 1020);
	assert_int_equal(f.outcomes, 1);             /* not classified twice */
	assert_int_equal(sender_unrecorded(snd), 0);
	assert_int_equal(store_outbox_count(s, "t", OUT_SENT), 1);
	assert_int_equal(f.n_sent, 2);
	assert_string_equal(f.sent[1]->row.trigger, "a2");
	sender_free(snd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(throttled_chat_does_not_block_the_others, setup, teardown),
		cmocka_unit_test_setup_teardown(outcome_that_cannot_be_committed_is_kept_not_resent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(answers_of_one_turn_share_one_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(sending_rows_never_exceed_max_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(outcome_hook_failure_keeps_the_outcome, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
