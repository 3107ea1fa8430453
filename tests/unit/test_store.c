/* Unit tests for the durable state (src/store.c). */
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
#include <unistd.h>

#include "store.h"

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/faqbot-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char err[512];
	*state = store_open(dir, err, sizeof(err));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	store_close(*state);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int64_t add(struct store *s, const char *chat, const char *trigger, int part)
{
	struct outbox_row r = { 0 };
	r.transport = "t";
	r.chat = (char *)chat;
	r.trigger = (char *)trigger;
	r.part = part;
	r.method = "sendMessage";
	r.body = "{\"chat_id\":1,\"text\":\"x\"}";
	r.created_at = 1;
	return store_outbox_add(s, &r);
}

static void second_open_is_refused(void **state)
{
	(void)state;
	char err[512];
	struct store *again = store_open(dir, err, sizeof(err));
	assert_null(again);
	assert_non_null(strstr(err, "is already using the state directory"));
	assert_non_null(strstr(err, dir));
}

static void kv_inbox_ledger(void **state)
{
	struct store *s = *state;
	struct strbuf v = STRBUF_INIT;
	assert_int_equal(store_kv_get(s, "k", &v), 0);
	assert_int_equal(store_kv_set(s, "k", "1"), 0);
	assert_int_equal(store_kv_set(s, "k", "2"), 0);
	assert_int_equal(store_kv_get(s, "k", &v), 1);
	assert_string_equal(v.buf, "2");
	strbuf_release(&v);
	assert_int_equal(store_inbox_add(s, "t", "7", "{}", 5), 1);
	assert_int_equal(store_inbox_add(s, "t", "7", "{}", 5), 0); /* same update again */
	assert_int_equal(store_inbox_pending(s, "t"), 1);
	struct inbox_row row;
	assert_int_equal(store_inbox_next(s, "t", &row), 1);
	assert_string_equal(row.uid, "7");
	assert_int_equal(store_inbox_done(s, row.id), 0);
	inbox_row_release(&row);
	assert_int_equal(store_inbox_next(s, "t", &row), 0);
	assert_int_equal(store_ledger_has(s, "t", "m:1:2"), 0);
	assert_int_equal(store_ledger_add(s, "t", "m:1:2", 5), 0);
	assert_int_equal(store_ledger_has(s, "t", "m:1:2"), 1);
}

static void outbox_keeps_each_chat_in_order(void **state)
{
	struct store *s = *state;
	add(s, "A", "q1", 0);
	add(s, "A", "q1", 1);
	add(s, "B", "q2", 0);
	struct outbox_row rows[8];
	size_t n = store_outbox_due(s, "t", 10, rows, 8);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].chat, "A");
	assert_int_equal(rows[0].part, 0);
	assert_string_equal(rows[1].chat, "B");
	/* A's head in flight: A's second part must wait */
	rows[0].state = OUT_SENDING;
	assert_int_equal(store_outbox_set(s, &rows[0]), 0);
	struct outbox_row more[8];
	n = store_outbox_due(s, "t", 10, more, 8);
	assert_int_equal(n, 1);
	assert_string_equal(more[0].chat, "B");
	outbox_row_release(&more[0]);
	/* a crash now: the row in flight comes back, marked ambiguous */
	assert_int_equal(store_outbox_recover(s, "t"), 1);
	n = store_outbox_due(s, "t", 10, more, 8);
	assert_int_equal(n, 2);
	assert_int_equal(more[0].ambiguous, 1);
	more[0].state = OUT_SENT;
	assert_int_equal(store_outbox_set(s, &more[0]), 0);
	for (size_t i = 0; i < n; i++)
		outbox_row_release(&more[i]);
	n = store_outbox_due(s, "t", 10, more, 8);
	assert_int_equal(n, 2);
	assert_int_equal(more[0].part, 1);
	for (size_t i = 0; i < n; i++)
		outbox_row_release(&more[i]);
	outbox_row_release(&rows[0]);
	outbox_row_release(&rows[1]);
}

static void parked_dropped_and_moved_chats(void **state)
{
	struct store *s = *state;
	add(s, "A", "q1", 0);
	add(s, "B", "q2", 0);
	add(s, "C", "q3", 0);
	assert_int_equal(store_chat_park(s, "t", "A", 1000), 0);
	assert_int_equal(store_chat_parked(s, "t", "A"), 1000);
	struct outbox_row rows[8];
	size_t n = store_outbox_due(s, "t", 10, rows, 8);
	assert_int_equal(n, 2); /* A parked until 1000 */
	for (size_t i = 0; i < n; i++)
		outbox_row_release(&rows[i]);
	assert_int_equal(store_outbox_next_time(s, "t"), 0); /* B and C are due since 0 */
	assert_int_equal(store_outbox_drop_chat(s, "t", "B"), 1);
	assert_int_equal(store_outbox_move_chat(s, "t", "C", "-100999"), 0);
	n = store_outbox_due(s, "t", 2000, rows, 8);
	assert_int_equal(n, 2);
	/* earliest due first: the moved chat (due since 0) before A (parked until 1000) */
	assert_string_equal(rows[0].chat, "-100999");
	assert_non_null(strstr(rows[0].body, "\"chat_id\":-100999"));
	assert_string_equal(rows[1].chat, "A");
	for (size_t i = 0; i < n; i++)
		outbox_row_release(&rows[i]);
	struct strbuf to = STRBUF_INIT;
	assert_int_equal(store_chat_set_migrated(s, "t", "C", "-100999"), 0);
	assert_int_equal(store_chat_migrated(s, "t", "C", &to), 1);
	assert_string_equal(to.buf, "-100999");
	strbuf_release(&to);
}

static void newer_schema_is_refused_not_reset(void **state)
{
	struct store *s = *state;
	store_close(s);
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[512];
	assert_null(store_open(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "written by a newer faqbot"));
	assert_non_null(strstr(err, path));
	/* reopen a fresh one so teardown has something to close */
	assert_int_equal(unlink(path), 0);
	*state = store_open(dir, err, sizeof(err));
	assert_non_null(*state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(second_open_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(kv_inbox_ledger, setup, teardown),
		cmocka_unit_test_setup_teardown(outbox_keeps_each_chat_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(parked_dropped_and_moved_chats, setup, teardown),
		cmocka_unit_test_setup_teardown(newer_schema_is_refused_not_reset, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
