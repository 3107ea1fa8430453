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
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#include "store_fixture.h"

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

/* A transport's rewrite hook: this test's bodies name their chat first. */
static char *to_chat(const char *body, const char *chat)
{
	const char *rest = strchr(body, ',');
	size_t n = strlen(chat) + strlen(rest ? rest : "}") + 16;
	char *out = malloc(n);
	snprintf(out, n, "{\"chat_id\":%s%s", chat, rest ? rest : "}");
	return out;
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
	assert_int_equal(store_outbox_move_chat(s, "t", "C", "-100999", to_chat), 0);
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

/* ==== issue 10: statements, WAL, failed transactions, queue, retention ==== */

static long file_size(const char *name)
{
	char path[400];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* One question through the store as a transport handles it. */
static void one_question(struct store *s, int i)
{
	char uid[32], trigger[64], payload[600];
	snprintf(uid, sizeof(uid), "%d", i);
	snprintf(trigger, sizeof(trigger), "m:%d:%d", i % 50, i);
	snprintf(payload, sizeof(payload), "{\"message\":{\"text\":\"%0500d\"}}", i);
	struct strbuf v = STRBUF_INIT;
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_inbox_add(s, "t", uid, payload, i), 1);
	assert_true(store_kv_get(s, "telegram.offset", &v) >= 0);
	assert_int_equal(store_kv_set(s, "telegram.offset", uid), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_active_statements(s), 0);
	assert_int_equal(store_begin(s), 0);
	struct inbox_row row;
	assert_int_equal(store_inbox_next(s, "t", &row), 1);
	assert_int_equal(store_ledger_has(s, "t", trigger), 0);
	assert_int_equal(store_ledger_add(s, "t", trigger, i), 0);
	char chat[16];
	snprintf(chat, sizeof(chat), "%d", i % 50);
	struct outbox_row r = { 0 };
	r.transport = "t";
	r.chat = chat;
	r.trigger = trigger;
	r.method = "sendMessage";
	r.body = payload;
	r.created_at = i;
	assert_true(store_outbox_add(s, &r) > 0);
	assert_int_equal(store_inbox_done(s, row.id), 0);
	inbox_row_release(&row);
	struct outbox_row due[4];
	size_t n = store_outbox_due(s, "t", i, due, 4);
	for (size_t k = 0; k < n; k++) {
		due[k].state = OUT_SENT;
		free(due[k].result);
		due[k].result = strdup("5");
		assert_int_equal(store_outbox_set(s, &due[k]), 0);
		outbox_row_release(&due[k]);
	}
	assert_true(store_outbox_next_time(s, "t") >= -1);
	assert_true(store_inbox_pending(s, "t") >= 0);
	assert_true(store_outbox_has_result(s, "t", "5") >= 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_active_statements(s), 0);
	strbuf_release(&v);
}

static void wal_stays_bounded(void **state)
{
	struct store *s = *state;
	long max_wal = 0;
	for (int i = 1; i <= 6000; i++) {
		one_question(s, i);
		long w = file_size(STORE_FILE "-wal");
		if (w > max_wal)
			max_wal = w;
	}
	/* the automatic checkpoint ran: the WAL never grew past its size plus
	 * one transaction, and the database file holds the data */
	assert_true(max_wal <= STORE_WAL_CHECKPOINT_PAGES * 4096L + 256 * 1024);
	assert_true(file_size(STORE_FILE) > 100 * 1024);
	/* another connection can checkpoint every frame */
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	int log = -1, done = -1;
	assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done),
			 SQLITE_OK);
	assert_int_equal(log, done);
	sqlite3_close(db);
}

static void failed_statement_refuses_the_commit(void **state)
{
	struct store *s = *state;
	sqlite3 *db = store_sqlite_for_tests(s);
	assert_int_equal(store_kv_set(s, "k", "before"), 0);
	/* the disk is full: no page may be added */
	assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count=1", NULL, NULL, NULL), SQLITE_OK);
	static char big[200000];
	memset(big, 'x', sizeof(big) - 1);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_kv_set(s, "k", "during"), 0);       /* fits in its page */
	assert_int_equal(store_inbox_add(s, "t", "1", big, 1), -1); /* SQLITE_FULL */
	/* SQLite rolled the transaction back by itself and would run this one
	 * alone (autocommit); the store refuses it, and the commit */
	assert_int_equal(store_kv_set(s, "k2", "after"), -1);
	assert_int_equal(store_commit(s), -1);
	assert_int_equal(store_in_transaction(s), 0);
	assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count=1000000", NULL, NULL, NULL), SQLITE_OK);
	struct strbuf v = STRBUF_INIT;
	assert_int_equal(store_kv_get(s, "k", &v), 1);
	assert_string_equal(v.buf, "before");                     /* nothing of it was kept */
	assert_int_equal(store_kv_get(s, "k2", &v), 0);
	strbuf_release(&v);
	/* and the store works again */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_inbox_add(s, "t", "1", big, 1), 1);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_active_statements(s), 0);
}

static void lock_held_elsewhere_fails_begin(void **state)
{
	struct store *s = *state;
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(store_sqlite_for_tests(s), 50); /* not 5 s in a unit test */
	assert_int_equal(store_begin(s), -1);
	assert_int_equal(store_in_transaction(s), 0);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_kv_set(s, "k", "v"), 0);
	assert_int_equal(store_commit(s), 0);
}

/* Virtual machine steps run by the store's statements since the last call. */
static long vm_steps(struct store *s)
{
	long n = 0;
	sqlite3 *db = store_sqlite_for_tests(s);
	for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st))
		n += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
	return n;
}

static void due_lookup_does_not_scan_the_queue(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_begin(s), 0);
	char trigger[32];
	for (int i = 0; i < 20000; i++) { /* one chat with a long queue, its head in flight */
		snprintf(trigger, sizeof(trigger), "q%d", i);
		assert_true(add(s, "A", trigger, 0) > 0);
	}
	struct outbox_row rows[4];
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 1), 1);
	rows[0].state = OUT_SENDING;
	assert_int_equal(store_outbox_set(s, &rows[0]), 0);
	outbox_row_release(&rows[0]);
	assert_true(add(s, "B", "b1", 0) > 0);
	assert_int_equal(store_commit(s), 0);
	vm_steps(s);
	size_t n = store_outbox_due(s, "t", 10, rows, 4);
	int64_t next = store_outbox_next_time(s, "t");
	long steps = vm_steps(s);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].chat, "B");
	assert_int_equal(next, 0);
	outbox_row_release(&rows[0]);
	assert_true(steps < 2000); /* the old query walked A's 20,000 rows */
}

static void deferred_chat_lets_the_next_one_go(void **state)
{
	struct store *s = *state;
	assert_true(add(s, "A", "a1", 0) > 0);
	assert_true(add(s, "B", "b1", 0) > 0);
	struct outbox_row rows[4];
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 1), 1);
	assert_string_equal(rows[0].chat, "A");
	assert_int_equal(store_outbox_defer_chat(s, "t", "A", 500), 0); /* A's rate limit */
	outbox_row_release(&rows[0]);
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 1), 1);
	assert_string_equal(rows[0].chat, "B");
	outbox_row_release(&rows[0]);
	assert_int_equal(store_outbox_due(s, "t", 500, rows, 4), 2);
	outbox_row_release(&rows[0]);
	outbox_row_release(&rows[1]);
}

static void handled_update_id_may_come_again(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_inbox_add(s, "t", "1000", "{\"a\":1}", 1), 1);
	assert_int_equal(store_inbox_add(s, "t", "1000", "{\"a\":1}", 1), 0); /* in flight: a duplicate */
	struct inbox_row row;
	assert_int_equal(store_inbox_next(s, "t", &row), 1);
	assert_int_equal(store_inbox_done(s, row.id), 0);
	inbox_row_release(&row);
	/* Telegram restarted its ids: 1000 is a new update now */
	assert_int_equal(store_inbox_add(s, "t", "1000", "{\"b\":2}", 2), 1);
	assert_int_equal(store_inbox_next(s, "t", &row), 1);
	assert_string_equal(row.payload, "{\"b\":2}");
	inbox_row_release(&row);
	/* an outbox row for a replayed trigger is not an error */
	assert_true(add(s, "A", "m:1:1", 0) > 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(add(s, "A", "m:1:1", 0), 0);
	assert_int_equal(store_commit(s), 0);
}

/* The first column of sql's first row, read through another connection. */
static long count_sql(const char *sql)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	sqlite3_stmt *st;
	long n = -1;
	if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

static long count(const char *table)
{
	char sql[200];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
	return count_sql(sql);
}

static void retention_keeps_only_what_dedup_needs(void **state)
{
	struct store *s = *state;
	const int64_t day = 86400000;
	assert_int_equal(store_ledger_add(s, "t", "old", 1), 0);
	assert_int_equal(store_ledger_add(s, "t", "new", 3 * day), 0);
	assert_true(add(s, "A", "old", 0) > 0);   /* created_at 1 */
	struct outbox_row rows[4];
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 4), 1);
	rows[0].state = OUT_SENT;
	assert_int_equal(store_outbox_set(s, &rows[0]), 0);
	outbox_row_release(&rows[0]);
	assert_true(add(s, "B", "pending", 0) > 0); /* unfinished: kept whatever its age */
	assert_int_equal(store_chat_park(s, "t", "C", 10), 0);
	assert_int_equal(store_chat_set_migrated(s, "t", "D", "E"), 0);
	assert_int_equal(store_recent_set(s, "t", "A", "cout", 1, ""), 0);
	assert_int_equal(store_unanswered_add(s, "t", "A", "q", NULL, 0.1, 1), 0);
	assert_int_equal(store_unanswered_add(s, "t", "A", "q", NULL, 0.1, 3 * day), 0);
	struct store_retention keep = { 2 * day, day, 30 * day, 30 * day };
	assert_int_equal(store_retain(s, 3 * day, &keep), 4);
	assert_int_equal(count("ledger"), 1);
	assert_int_equal(count("outbox"), 1);
	assert_int_equal(count("recent"), 0);
	assert_int_equal(count("chats"), 1);  /* C's park ended; D's migration stays */
	assert_int_equal(count("unanswered"), 2);
	keep.unanswered_ms = day;
	assert_int_equal(store_retain(s, 3 * day, &keep), 1);
	assert_int_equal(store_ledger_has(s, "t", "new"), 1);
	assert_int_equal(store_active_statements(s), 0);
}

static void version_2_database_is_migrated(void **state)
{
	store_close(*state);
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	assert_int_equal(unlink(path), 0);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	static const char v2[] =
		"CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		"CREATE TABLE inbox(id INTEGER PRIMARY KEY, transport TEXT NOT NULL, uid TEXT NOT NULL,"
		" payload TEXT NOT NULL, received_at INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,"
		" UNIQUE(transport, uid));"
		"CREATE INDEX inbox_pending ON inbox(transport, done, id);"
		"CREATE TABLE ledger(transport TEXT NOT NULL, trigger TEXT NOT NULL, handled_at INTEGER NOT NULL,"
		" PRIMARY KEY(transport, trigger)) WITHOUT ROWID;"
		"CREATE TABLE outbox(id INTEGER PRIMARY KEY, transport TEXT NOT NULL, chat TEXT NOT NULL,"
		" trigger TEXT NOT NULL, part INTEGER NOT NULL, method TEXT NOT NULL, body TEXT NOT NULL,"
		" alt_body TEXT, txn TEXT, entry TEXT, state INTEGER NOT NULL DEFAULT 0,"
		" attempts INTEGER NOT NULL DEFAULT 0, ambiguous INTEGER NOT NULL DEFAULT 0,"
		" use_alt INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,"
		" created_at INTEGER NOT NULL, result TEXT, UNIQUE(transport, trigger, part));"
		"CREATE INDEX outbox_open ON outbox(transport, chat, id) WHERE state IN (0, 1);"
		"CREATE INDEX outbox_pending ON outbox(transport, id) WHERE state = 0;"
		"CREATE INDEX outbox_txn ON outbox(transport, txn) WHERE txn IS NOT NULL;"
		"CREATE INDEX outbox_result ON outbox(transport, result) WHERE result IS NOT NULL;"
		"CREATE TABLE chats(transport TEXT NOT NULL, chat TEXT NOT NULL,"
		" parked_until INTEGER NOT NULL DEFAULT 0, migrated_to TEXT, disabled INTEGER NOT NULL DEFAULT 0,"
		" PRIMARY KEY(transport, chat)) WITHOUT ROWID;"
		"CREATE TABLE recent(transport TEXT NOT NULL, chat TEXT NOT NULL, entry TEXT NOT NULL,"
		" at INTEGER NOT NULL, message_id TEXT NOT NULL DEFAULT '',"
		" PRIMARY KEY(transport, chat, entry)) WITHOUT ROWID;"
		"CREATE TABLE unanswered(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, transport TEXT NOT NULL,"
		" chat TEXT NOT NULL, text TEXT NOT NULL, best TEXT, confidence REAL NOT NULL);"
		"CREATE INDEX unanswered_at ON unanswered(at);"
		"INSERT INTO inbox(transport, uid, payload, received_at, done) VALUES"
		" ('t', '1', '{\"old\":1}', 1, 1), ('t', '2', '{\"new\":2}', 1, 0);"
		"INSERT INTO outbox(transport, chat, trigger, part, method, body, state, created_at) VALUES"
		" ('t', 'A', 'a', 0, 'm', 'x', 2, 1), ('t', 'A', 'b', 0, 'm', 'y', 1, 1),"
		" ('t', 'B', 'c', 0, 'm', 'z', 0, 1), ('t', 'B', 'd', 0, 'm', 'w', 0, 1);"
		"INSERT INTO chats(transport, chat, parked_until) VALUES ('t', 'B', 50);"
		"PRAGMA user_version=2;";
	assert_int_equal(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[512];
	struct store *s = store_open(dir, err, sizeof(err));
	assert_non_null(s);
	*state = s;
	assert_int_equal(count("inbox"), 1); /* the handled row is gone */
	assert_int_equal(count_sql("PRAGMA auto_vacuum"), 2); /* converted once (incremental) */
	struct outbox_row rows[4];
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 4), 0);   /* A in flight, B parked */
	assert_int_equal(store_outbox_next_time(s, "t"), 50);
	assert_int_equal(store_outbox_due(s, "t", 60, rows, 4), 1);
	assert_string_equal(rows[0].trigger, "c");
	outbox_row_release(&rows[0]);
	assert_int_equal(store_outbox_recover(s, "t"), 1);
	assert_int_equal(store_outbox_due(s, "t", 60, rows, 4), 2);
	outbox_row_release(&rows[0]);
	outbox_row_release(&rows[1]);
}

/* The file's size follows what retention keeps, not the traffic it saw: a
 * burst of 12,000 rows is pruned in batches (store_retain_more says when
 * more are left) and the freed pages go back to the file system (it kept
 * its largest size before auto_vacuum=INCREMENTAL). */
static void pruned_pages_are_given_back(void **state)
{
	struct store *s = *state;
	sqlite3 *db = store_sqlite_for_tests(s);
	assert_int_equal(count_sql("PRAGMA auto_vacuum"), 2); /* a new database: incremental */
	const int64_t day = 86400000;
	char text[400];
	memset(text, 'q', sizeof(text) - 1);
	text[sizeof(text) - 1] = 0;
	assert_int_equal(store_begin(s), 0);
	for (int i = 0; i < 12000; i++)
		assert_int_equal(store_unanswered_add(s, "t", "A", text, NULL, 0.1, 1), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
	long full = file_size(STORE_FILE);
	assert_true(full > 4000000);
	struct store_retention keep = { 2 * day, day, day, day };
	int runs = 0, pruned = 0, n;
	do {
		assert_int_equal(store_begin(s), 0);
		n = store_retain(s, 3 * day, &keep);
		assert_true(n >= 0);
		assert_int_equal(store_commit(s), 0);
		pruned += n;
		runs++;
	} while (store_retain_more(s) && runs < 10);
	assert_int_equal(pruned, 12000);
	assert_int_equal(runs, 3); /* 5,000 + 5,000 + 2,000 */
	assert_int_equal(count("unanswered"), 0);
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
	long after = file_size(STORE_FILE);
	assert_true(after < full / 4);
	assert_true(after <= (STORE_FREE_SLACK_PAGES + 64) * 4096L);
	assert_int_equal(store_active_statements(s), 0);
}

/* Sends the reply of trigger as message id msg, as the sender does. */
static void send_as(struct store *s, const char *chat, const char *trigger, const char *msg)
{
	assert_true(add(s, chat, trigger, 0) > 0);
	struct outbox_row rows[4];
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 4), 1);
	rows[0].state = OUT_SENT;
	rows[0].result = strdup(msg);
	assert_int_equal(store_outbox_set(s, &rows[0]), 0);
	outbox_row_release(&rows[0]);
}

/* A row the echo marked sent while its retry was in flight stays sent
 * when the retry then fails (it was re-sent with an empty body before). */
static void finished_row_stays_finished(void **state)
{
	struct store *s = *state;
	struct outbox_row r = { 0 };
	r.transport = "t";
	r.chat = "A";
	r.trigger = "A:9";
	r.method = "send";
	r.body = "{\"body\":\"x\"}";
	r.txn = "tx9";
	r.created_at = 1;
	int64_t id = store_outbox_add(s, &r);
	assert_true(id > 0);
	struct outbox_row rows[4];
	assert_int_equal(store_outbox_due(s, "t", 10, rows, 4), 1);
	rows[0].state = OUT_SENDING;
	assert_int_equal(store_outbox_set(s, &rows[0]), 0);
	assert_int_equal(store_outbox_mark_sent(s, "t", "tx9", "$ev"), 1); /* the echo */
	rows[0].state = OUT_PENDING;                                          /* the retry failed */
	rows[0].next_at = 5;
	assert_int_equal(store_outbox_set(s, &rows[0]), 0);
	assert_int_equal(store_outbox_due(s, "t", 100, rows + 1, 3), 0);       /* nothing to send */
	outbox_row_release(&rows[0]);
}

static void votes_count_once_per_user_and_answer(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_answered_add(s, "t", "A:1", "cout", "combien ça coûte", 100), 0);
	assert_int_equal(store_answered_add(s, "t", "A:1", "autre", "replay", 101), 0); /* first stands */
	send_as(s, "A", "A:1", "m1");
	send_as(s, "A", "A:2", "m2");             /* not a recorded answer (help text, say) */
	struct strbuf e = STRBUF_INIT, q = STRBUF_INIT;
	assert_int_equal(store_answered_get(s, "t", "A", "m1", NULL, &e, &q), 1);
	assert_string_equal(e.buf, "cout");
	assert_string_equal(q.buf, "combien ça coûte");
	assert_int_equal(store_answered_get(s, "t", "A", "m2", NULL, &e, &q), 0);
	assert_int_equal(store_vote_set(s, "t", "A", "m2", "alice", 1, NULL, 200), STORE_VOTE_UNKNOWN);
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "alice", 1, NULL, 200), STORE_VOTE_CHANGED);
	for (int i = 0; i < 100; i++)
		assert_int_equal(store_vote_set(s, "t", "A", "m1", "alice", 1, NULL, 201 + i), STORE_VOTE_SAME);
	assert_int_equal(count("votes"), 1);
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "alice", -1, NULL, 400), STORE_VOTE_CHANGED);
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "bob", -1, NULL, 400), STORE_VOTE_CHANGED);
	assert_int_equal(count("votes"), 2);
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "bob", 0, NULL, 401), STORE_VOTE_CHANGED); /* withdrawn */
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "bob", 0, NULL, 402), STORE_VOTE_SAME);
	assert_int_equal(count("votes"), 1);
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "bob", 2, NULL, 402), -1);
	/* a second part of the same answer (a Matrix echo) is the same answer */
	struct outbox_row r = { 0 };
	r.transport = "t";
	r.chat = "A";
	r.trigger = "A:1";
	r.part = 1;
	r.method = "m";
	r.body = "{}";
	r.txn = "txn1";
	r.created_at = 1;
	assert_true(store_outbox_add(s, &r) > 0);
	assert_int_equal(store_outbox_mark_sent(s, "t", "txn1", "m1b"), 1);
	assert_int_equal(store_vote_set(s, "t", "A", "m1b", "alice", -1, NULL, 500), STORE_VOTE_SAME);
	assert_int_equal(count("votes"), 1);
	/* Telegram's message ids are per chat: the same id in another chat is
	 * another message */
	assert_int_equal(store_answered_get(s, "t", "B", "m1", NULL, &e, &q), 0);
	assert_int_equal(store_vote_set(s, "t", "B", "m1", "carol", 1, NULL, 500), STORE_VOTE_UNKNOWN);
	assert_int_equal(store_answered_add(s, "t", "B:1", "plh", "plh ?", 100), 0);
	assert_int_equal(store_answered_sent(s, "t", "B", "B:1", "m1"), 0);
	assert_int_equal(store_answered_get(s, "t", "B", "m1", NULL, &e, &q), 1);
	assert_string_equal(e.buf, "plh");
	assert_int_equal(store_answered_get(s, "t", "A", "m1", NULL, &e, &q), 1);
	assert_string_equal(e.buf, "cout");
	/* users are stored as pseudonyms only */
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT user, value FROM votes", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(strlen((const char *)sqlite3_column_text(st, 0)), 16);
	assert_null(strstr((const char *)sqlite3_column_text(st, 0), "alice"));
	assert_int_equal(sqlite3_column_int(st, 1), -1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	strbuf_release(&e);
	strbuf_release(&q);
	assert_int_equal(store_active_statements(s), 0);
}

struct seen {
	int n, sum;
	char last[64];
};

static void on_choice(void *arg, const char *entry, const char *question, const char *user, int64_t at)
{
	(void)question;
	(void)user;
	(void)at;
	struct seen *c = arg;
	c->n++;
	snprintf(c->last, sizeof(c->last), "%s", entry);
}

static void on_vote(void *arg, const char *entry, const char *question, const char *user, int value,
		    int64_t at)
{
	(void)entry;
	(void)question;
	(void)user;
	(void)at;
	struct seen *c = arg;
	c->n++;
	c->sum += value;
}

static void choices_once_per_user_question_and_entry(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_choice_add(s, "t", "G", "alice", "prix ?", "cout", 10), 1);
	assert_int_equal(store_choice_add(s, "t", "G", "alice", "prix ?", "cout", 20), 0);
	assert_int_equal(store_choice_add(s, "t", "G", "bob", "prix ?", "cout", 30), 1);
	assert_int_equal(store_choice_add(s, "t", "G", "bob", "prix ?", "plh", 40), 1);
	struct seen c = { 0 };
	assert_int_equal(store_choices_each(s, 0, on_choice, &c), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.last, "plh");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_choices_each(s, 25, on_choice, &c), 0);
	assert_int_equal(c.n, 2);                 /* alice's refreshed time is 20 */
	assert_int_equal(store_active_statements(s), 0);
}

static void feedback_is_pruned_after_its_window(void **state)
{
	struct store *s = *state;
	const int64_t day = 86400000;
	assert_int_equal(store_answered_add(s, "t", "A:1", "cout", "prix", 1), 0);
	send_as(s, "A", "A:1", "m1");
	assert_int_equal(store_answered_add(s, "t", "A:2", "cout", "prix", 9 * day), 0);
	assert_int_equal(store_answered_sent(s, "t", "A", "A:2", "m2"), 0);
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "alice", -1, NULL, 2), STORE_VOTE_CHANGED);
	assert_int_equal(store_vote_set(s, "t", "A", "m2", "alice", 1, NULL, 9 * day), STORE_VOTE_CHANGED);
	assert_int_equal(store_choice_add(s, "t", "A", "alice", "prix", "cout", 3), 1);
	assert_int_equal(store_choice_add(s, "t", "A", "bob", "prix", "cout", 9 * day), 1);
	struct store_retention keep = { 100 * day, 100 * day, 100 * day, 5 * day };
	assert_int_equal(store_retain(s, 10 * day, &keep), 4); /* answered, its message, vote, choice */
	assert_int_equal(count("answered"), 1);
	assert_int_equal(count("answered_msg"), 1);
	struct seen c = { 0 };
	assert_int_equal(store_votes_each(s, 0, on_vote, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.sum, 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_choices_each(s, 0, on_choice, &c), 0);
	assert_int_equal(c.n, 1);
	/* a vote on the pruned answer is ignored */
	assert_int_equal(store_vote_set(s, "t", "A", "m1", "bob", -1, NULL, 10 * day), STORE_VOTE_UNKNOWN);
	/* an answer's record lasts a week even when votes are kept longer */
	keep.feedback_ms = 100 * day;
	assert_int_equal(store_retain(s, 16 * day + 1, &keep), 2);
	assert_int_equal(count("answered"), 0);
	assert_int_equal(count("answered_msg"), 0);
	assert_int_equal(count("votes"), 1);
	keep.feedback_ms = 0; /* recording off: nothing kept */
	assert_int_equal(store_retain(s, 10 * day, &keep), 2);
	assert_int_equal(count("choices"), 0);
	assert_int_equal(count("votes"), 0);
}

#define DROP_V5 " DROP TABLE mx_account; DROP TABLE mx_olm; DROP TABLE mx_megolm_in;" \
	" DROP TABLE mx_megolm_out; DROP TABLE mx_megolm_shared; DROP TABLE mx_users;" \
	" DROP TABLE mx_devices; DROP TABLE mx_rooms; DROP TABLE mx_waiting; DROP TABLE mx_key_requests;"

static void version_3_database_gets_the_feedback_tables(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_kv_set(s, "offset", "42"), 0);
	store_close(s);
	*state = NULL;
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE answered; DROP TABLE answered_msg; DROP TABLE votes;"
				      " DROP TABLE choices;" DROP_V5 " PRAGMA user_version=3;", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	char err[512];
	s = store_open(dir, err, sizeof(err));
	assert_non_null(s);
	*state = s;
	struct strbuf v = STRBUF_INIT;
	assert_int_equal(store_kv_get(s, "offset", &v), 1);  /* the data stays */
	assert_string_equal(v.buf, "42");
	strbuf_release(&v);
	assert_int_equal(store_choice_add(s, "t", "A", "alice", "prix", "cout", 3), 1);
	assert_int_equal(count("choices"), 1);
}

static void version_4_database_gets_the_encryption_tables(void **state)
{
	struct store *s = *state;
	assert_int_equal(store_kv_set(s, "matrix.device_id", "DEV"), 0);
	store_close(s);
	*state = NULL;
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, DROP_V5 " PRAGMA user_version=4;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char err[512];
	s = store_open(dir, err, sizeof(err));
	assert_non_null(s);
	*state = s;
	assert_int_equal(store_schema_version(s), 5);
	struct strbuf v = STRBUF_INIT;
	assert_int_equal(store_kv_get(s, "matrix.device_id", &v), 1); /* the device stays */
	assert_string_equal(v.buf, "DEV");
	strbuf_release(&v);
	assert_int_equal(store_mx_room_set(s, "!r", "m.megolm.v1.aes-sha2", 1000, 10), 0);
	assert_int_equal(store_mx_room_get(s, "!r", NULL, NULL), 1);
}

static void add_pickle(void *arg, const char *pickle)
{
	struct strbuf *b = arg;
	strbuf_addf(b, "%s;", pickle);
}

static void add_device(void *arg, const char *device, const char *curve, const char *ed)
{
	struct strbuf *b = arg;
	strbuf_addf(b, "%s=%s/%s;", device, curve, ed);
}

static int add_waiting(void *arg, const char *event_id, const char *room, const char *payload)
{
	struct strbuf *b = arg;
	strbuf_addf(b, "%s@%s:%s;", event_id, room, payload);
	return 0;
}

static int add_room(void *arg, const char *room)
{
	strbuf_addf(arg, "%s;", room);
	return 0;
}

static void encryption_tables_keep_what_the_transport_needs(void **state)
{
	struct store *s = *state;
	struct strbuf u = STRBUF_INIT, d = STRBUF_INIT, p = STRBUF_INIT, b = STRBUF_INIT;
	/* the account: one row, replaced */
	assert_int_equal(store_mx_account_get(s, &u, &d, &p), 0);
	assert_int_equal(store_mx_account_set(s, "@bot:hs", "DEV", "P1", 1), 0);
	assert_int_equal(store_mx_account_set(s, "@bot:hs", "DEV", "P2", 2), 0);
	assert_int_equal(store_mx_account_get(s, &u, &d, &p), 1);
	assert_string_equal(u.buf, "@bot:hs");
	assert_string_equal(d.buf, "DEV");
	assert_string_equal(p.buf, "P2");
	/* Olm sessions by peer key, the most recently used first */
	assert_int_equal(store_mx_olm_set(s, "K", "s1", "o1", 1), 0);
	assert_int_equal(store_mx_olm_set(s, "K", "s2", "o2", 2), 0);
	assert_int_equal(store_mx_olm_set(s, "K", "s1", "o1b", 3), 0);
	assert_int_equal(store_mx_olm_set(s, "L", "s3", "o3", 3), 0);
	assert_int_equal(store_mx_olm_each(s, "K", add_pickle, &b), 2);
	assert_string_equal(b.buf, "o1b;o2;");
	/* inbound Megolm by (room, session) */
	assert_int_equal(store_mx_megolm_in_get(s, "!r", "m1", &p), 0);
	assert_int_equal(store_mx_megolm_in_set(s, "!r", "m1", "K", "i1", 1), 0);
	assert_int_equal(store_mx_megolm_in_set(s, "!r", "m1", "K", "i1b", 2), 0);
	assert_int_equal(store_mx_megolm_in_get(s, "!r", "m1", &p), 1);
	assert_string_equal(p.buf, "i1b");
	assert_int_equal(store_mx_megolm_in_get(s, "!other", "m1", &p), 0);
	/* outbound: shared set and member_left belong to one session */
	int left = -1;
	assert_int_equal(store_mx_megolm_out_get(s, "!r", &p, &left), 0);
	assert_int_equal(store_mx_megolm_out_set(s, "!r", "o1", "out1", 10), 0);
	assert_int_equal(store_mx_shared_add(s, "!r", "o1", "@a:hs", "A1"), 0);
	assert_int_equal(store_mx_shared_add(s, "!r", "o1", "@a:hs", "A1"), 0);
	assert_int_equal(store_mx_shared_has(s, "!r", "o1", "@a:hs", "A1"), 1);
	assert_int_equal(store_mx_shared_has(s, "!r", "o1", "@a:hs", "A2"), 0);
	assert_int_equal(store_mx_megolm_out_member_left(s, "!r"), 0);
	assert_int_equal(store_mx_megolm_out_set(s, "!r", "o1", "out1b", 11), 0); /* ratchet moved */
	assert_int_equal(store_mx_megolm_out_get(s, "!r", &p, &left), 1);
	assert_string_equal(p.buf, "out1b");
	assert_int_equal(left, 1);
	assert_int_equal(store_mx_shared_has(s, "!r", "o1", "@a:hs", "A1"), 1);
	assert_int_equal(store_mx_megolm_out_set(s, "!r", "o2", "out2", 12), 0); /* rotated */
	assert_int_equal(store_mx_megolm_out_get(s, "!r", &p, &left), 1);
	assert_int_equal(left, 0);
	assert_int_equal(store_mx_shared_has(s, "!r", "o1", "@a:hs", "A1"), 0);
	/* device lists: unknown, fresh, outdated */
	strbuf_reset(&b);
	assert_int_equal(store_mx_devices_get(s, "@a:hs", add_device, &b), 0);
	int64_t gen = -1;
	assert_int_equal(store_mx_devices_generation(s, "@a:hs", &gen), 0);
	assert_int_equal(gen, 0);
	assert_int_equal(store_mx_devices_clear(s, "@a:hs", gen), 0);
	assert_int_equal(store_mx_device_add(s, "@a:hs", "A1", "c1", "e1"), 0);
	assert_int_equal(store_mx_device_add(s, "@a:hs", "A2", "c2", "e2"), 0);
	assert_int_equal(store_mx_devices_get(s, "@a:hs", add_device, &b), 1);
	assert_string_equal(b.buf, "A1=c1/e1;A2=c2/e2;");
	assert_int_equal(store_mx_devices_outdated(s, "@a:hs"), 0);
	assert_int_equal(store_mx_devices_get(s, "@a:hs", add_device, &b), 0);
	assert_int_equal(store_mx_devices_generation(s, "@a:hs", &gen), 0);
	assert_int_equal(store_mx_devices_clear(s, "@a:hs", gen), 0); /* queried again: one device now */
	assert_int_equal(store_mx_device_add(s, "@a:hs", "A2", "c2", "e2"), 0);
	strbuf_reset(&b);
	assert_int_equal(store_mx_devices_get(s, "@a:hs", add_device, &b), 1);
	assert_string_equal(b.buf, "A2=c2/e2;");
	/* a change synced while a query is out: its answer leaves the list
	 * outdated (it may predate a new device) */
	assert_int_equal(store_mx_devices_generation(s, "@a:hs", &gen), 0);
	assert_int_equal(store_mx_devices_outdated(s, "@a:hs"), 0);
	assert_int_equal(store_mx_devices_clear(s, "@a:hs", gen), 0);
	assert_int_equal(store_mx_device_add(s, "@a:hs", "A2", "c2", "e2"), 0);
	assert_int_equal(store_mx_devices_get(s, "@a:hs", add_device, &b), 0);
	/* the same for a user never queried before (no row yet) */
	assert_int_equal(store_mx_devices_generation(s, "@n:hs", &gen), 0);
	assert_int_equal(store_mx_devices_outdated(s, "@n:hs"), 0);
	assert_int_equal(store_mx_devices_clear(s, "@n:hs", gen), 0);
	assert_int_equal(store_mx_devices_get(s, "@n:hs", add_device, &b), 0);
	/* inbound sessions of one sender device in a room: the least recently
	 * used beyond the cap go */
	assert_int_equal(store_mx_megolm_in_set(s, "!t", "t1", "skA", "p1", 1), 0);
	assert_int_equal(store_mx_megolm_in_set(s, "!t", "t2", "skA", "p2", 3), 0);
	assert_int_equal(store_mx_megolm_in_set(s, "!t", "t3", "skA", "p3", 2), 0);
	assert_int_equal(store_mx_megolm_in_set(s, "!t", "t4", "skB", "p4", 0), 0);
	assert_int_equal(store_mx_megolm_in_trim(s, "!t", "skA", 2), 1);
	assert_int_equal(store_mx_megolm_in_get(s, "!t", "t1", &p), 0);
	assert_int_equal(store_mx_megolm_in_get(s, "!t", "t2", &p), 1);
	assert_int_equal(store_mx_megolm_in_get(s, "!t", "t3", &p), 1);
	assert_int_equal(store_mx_megolm_in_get(s, "!t", "t4", &p), 1); /* another device's */
	assert_int_equal(store_mx_megolm_in_trim(s, "!t", "skA", 2), 0);
	assert_int_equal(store_mx_waiting_room_count(s, "!t"), 0);
	/* rooms */
	int64_t ms = 0, msgs = 0;
	assert_int_equal(store_mx_room_get(s, "!plain", &ms, &msgs), 0);
	assert_int_equal(store_mx_room_set(s, "!r", "m.megolm.v1.aes-sha2", 3600000, 5), 0);
	assert_int_equal(store_mx_room_get(s, "!r", &ms, &msgs), 1);
	assert_int_equal(ms, 3600000);
	assert_int_equal(msgs, 5);
	/* waiting events: back when their key comes, or given up */
	assert_int_equal(store_mx_waiting_add(s, "$1", "!r", "m9", "P1", 100, 200), 1);
	assert_int_equal(store_mx_waiting_add(s, "$1", "!r", "m9", "P1", 100, 200), 0);
	assert_int_equal(store_mx_waiting_add(s, "$2", "!r", "m8", "P2", 101, 300), 1);
	assert_int_equal(store_mx_waiting_add(s, "$3", "!q", "m9", "P3", 102, 300), 1);
	assert_int_equal(store_mx_waiting_count(s), 3);
	strbuf_reset(&b);
	assert_int_equal(store_mx_waiting_rooms(s, 101, add_room, &b), 1); /* waited long enough: !r only */
	assert_string_equal(b.buf, "!r;");
	strbuf_reset(&b);
	assert_int_equal(store_mx_waiting_take(s, "!r", "m9", add_waiting, &b), 1);
	assert_string_equal(b.buf, "$1@!r:P1;");
	strbuf_reset(&b);
	assert_int_equal(store_mx_waiting_expired(s, 299, add_waiting, &b), 0);
	assert_int_equal(store_mx_waiting_expired(s, 300, add_waiting, &b), 2);
	assert_string_equal(b.buf, "$2@!r:P2;$3@!q:P3;");
	assert_int_equal(store_mx_waiting_count(s), 0);
	/* key requests: once per session, pruned after the de-duplication window */
	assert_int_equal(store_mx_key_request_add(s, "!r", "m9", 100), 1);
	assert_int_equal(store_mx_key_request_add(s, "!r", "m9", 150), 0);
	assert_int_equal(store_kv_set(s, "matrix.olm_mend.K1", "100"), 0);  /* mended long ago */
	assert_int_equal(store_kv_set(s, "matrix.olm_mend.K2", "1500"), 0); /* recently */
	assert_int_equal(store_kv_set(s, "matrix.olmXmend.K3", "100"), 0);  /* not one ('_' is no wildcard) */
	struct store_retention keep = { 1000, 1000, 1000, 1000 };
	assert_true(store_retain(s, 2000, &keep) >= 2);
	struct strbuf kv = STRBUF_INIT;
	assert_int_equal(store_kv_get(s, "matrix.olm_mend.K1", &kv), 0);
	assert_int_equal(store_kv_get(s, "matrix.olm_mend.K2", &kv), 1);
	assert_int_equal(store_kv_get(s, "matrix.olmXmend.K3", &kv), 1);
	strbuf_release(&kv);
	assert_int_equal(store_mx_key_request_add(s, "!r", "m9", 2100), 1);
	/* sessions go after a month without use; a use keeps them */
	assert_int_equal(store_mx_megolm_in_set(s, "!r", "m1", "K", "i1c", STORE_MX_SESSION_MS), 0);
	assert_true(store_retain(s, STORE_MX_SESSION_MS + 100, &keep) >= 1); /* Olm K/s2 */
	assert_int_equal(store_mx_megolm_in_get(s, "!r", "m1", &p), 1);
	strbuf_reset(&b);
	/* each peer's latest session stays, however old: K/s1 (used at 3), L/s3 */
	assert_int_equal(store_mx_olm_each(s, "K", add_pickle, &b), 1);
	assert_string_equal(b.buf, "o1b;");
	strbuf_reset(&b);
	assert_int_equal(store_mx_olm_each(s, "L", add_pickle, &b), 1);
	strbuf_reset(&b);
	assert_true(store_retain(s, 2 * STORE_MX_SESSION_MS + 1, &keep) >= 1);
	assert_int_equal(store_mx_megolm_in_get(s, "!r", "m1", &p), 0);
	/* leaving a room forgets what was shared there; a reset forgets the device */
	assert_int_equal(store_mx_waiting_add(s, "$4", "!r", "m9", "P4", 100, 200), 1);
	assert_int_equal(store_mx_room_forget(s, "!r"), 0);
	assert_int_equal(store_mx_megolm_out_get(s, "!r", &p, &left), 0);
	assert_int_equal(store_mx_waiting_count(s), 0);
	assert_int_equal(store_mx_room_get(s, "!r", NULL, NULL), 1); /* still an encrypted room */
	assert_true(store_mx_reset(s) > 0);
	assert_int_equal(store_mx_account_get(s, &u, &d, &p), 0);
	strbuf_reset(&b);
	assert_int_equal(store_mx_olm_each(s, "K", add_pickle, &b), 0);
	assert_int_equal(store_mx_room_get(s, "!r", NULL, NULL), 1);
	strbuf_release(&u);
	strbuf_release(&d);
	strbuf_release(&p);
	strbuf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(second_open_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(kv_inbox_ledger, setup, teardown),
		cmocka_unit_test_setup_teardown(outbox_keeps_each_chat_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(parked_dropped_and_moved_chats, setup, teardown),
		cmocka_unit_test_setup_teardown(newer_schema_is_refused_not_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_stays_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_statement_refuses_the_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(lock_held_elsewhere_fails_begin, setup, teardown),
		cmocka_unit_test_setup_teardown(due_lookup_does_not_scan_the_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(deferred_chat_lets_the_next_one_go, setup, teardown),
		cmocka_unit_test_setup_teardown(handled_update_id_may_come_again, setup, teardown),
		cmocka_unit_test_setup_teardown(retention_keeps_only_what_dedup_needs, setup, teardown),
		cmocka_unit_test_setup_teardown(version_2_database_is_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(pruned_pages_are_given_back, setup, teardown),
		cmocka_unit_test_setup_teardown(votes_count_once_per_user_and_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(choices_once_per_user_question_and_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(finished_row_stays_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(feedback_is_pruned_after_its_window, setup, teardown),
		cmocka_unit_test_setup_teardown(version_3_database_gets_the_feedback_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(version_4_database_gets_the_encryption_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(encryption_tables_keep_what_the_transport_needs, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
