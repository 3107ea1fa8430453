/*
 * store.c - SQLite-backed durable state.  See store.h.
 *
 * Statements are prepared once and cached by their SQL text's address.
 * Every function is a single statement, so callers group them into one
 * commit with store_begin/store_commit where the protocol needs it (a
 * polled batch with its cursor; outbox rows with their ledger entry).
 */
#define _POSIX_C_SOURCE 200809L
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STMTS 64

struct store {
	sqlite3 *db;
	char *path;
	int lock_fd;
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[MAX_STMTS];
	size_t n_cache;
};

static const char *const schema_v1[] = {
	"CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	"CREATE TABLE inbox(id INTEGER PRIMARY KEY, transport TEXT NOT NULL, uid TEXT NOT NULL,"
	" payload TEXT NOT NULL, received_at INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(transport, uid))",
	"CREATE INDEX inbox_pending ON inbox(transport, done, id)",
	"CREATE TABLE ledger(transport TEXT NOT NULL, trigger TEXT NOT NULL, handled_at INTEGER NOT NULL,"
	" PRIMARY KEY(transport, trigger)) WITHOUT ROWID",
	"CREATE TABLE outbox(id INTEGER PRIMARY KEY, transport TEXT NOT NULL, chat TEXT NOT NULL,"
	" trigger TEXT NOT NULL, part INTEGER NOT NULL, method TEXT NOT NULL, body TEXT NOT NULL,"
	" alt_body TEXT, txn TEXT, entry TEXT, state INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0, ambiguous INTEGER NOT NULL DEFAULT 0,"
	" use_alt INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL, result TEXT, UNIQUE(transport, trigger, part))",
	"CREATE INDEX outbox_open ON outbox(transport, chat, id) WHERE state IN (0, 1)",
	"CREATE INDEX outbox_pending ON outbox(transport, id) WHERE state = 0",
	"CREATE INDEX outbox_txn ON outbox(transport, txn) WHERE txn IS NOT NULL",
	"CREATE INDEX outbox_result ON outbox(transport, result) WHERE result IS NOT NULL",
	"CREATE TABLE chats(transport TEXT NOT NULL, chat TEXT NOT NULL,"
	" parked_until INTEGER NOT NULL DEFAULT 0, migrated_to TEXT, disabled INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(transport, chat)) WITHOUT ROWID",
	"CREATE TABLE recent(transport TEXT NOT NULL, chat TEXT NOT NULL, entry TEXT NOT NULL,"
	" at INTEGER NOT NULL, message_id TEXT NOT NULL DEFAULT '',"
	" PRIMARY KEY(transport, chat, entry)) WITHOUT ROWID",
	NULL
};

/* v2: questions the FAQ could not answer well, for `faqbot report`. */
static const char *const schema_v2[] = {
	"CREATE TABLE unanswered(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, transport TEXT NOT NULL,"
	" chat TEXT NOT NULL, text TEXT NOT NULL, best TEXT, confidence REAL NOT NULL)",
	"CREATE INDEX unanswered_at ON unanswered(at)",
	NULL
};

/* Migrations: migrations[v] upgrades a database from version v to v + 1. */
static const char *const *const migrations[] = { schema_v1, schema_v2 };

static sqlite3_stmt *stmt(struct store *s, const char *sql)
{
	for (size_t i = 0; i < s->n_cache; i++)
		if (s->cache[i].sql == sql) {
			sqlite3_reset(s->cache[i].st);
			sqlite3_clear_bindings(s->cache[i].st);
			return s->cache[i].st;
		}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "faqbot: fatal: %s: bad statement: %s\n", s->path, sqlite3_errmsg(s->db));
		abort();
	}
	if (s->n_cache < MAX_STMTS) {
		s->cache[s->n_cache].sql = sql;
		s->cache[s->n_cache++].st = st;
	}
	return st;
}

static int exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "faqbot: %s: %s (%s)\n", s->path, msg ? msg : "error", sql);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int step_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		fprintf(stderr, "faqbot: %s: %s\n", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

static int lock_dir(struct store *s, const char *dir, char *err, size_t errlen)
{
	char lock[4096];
	snprintf(lock, sizeof(lock), "%s/faqbot.lock", dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		snprintf(err, errlen, "%s: cannot create the lock file: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen, "another faqbot%s%s%s is already using the state directory %s; "
			 "stop it first (two bots would answer every question twice)",
			 *pid ? " (pid " : "", pid, *pid ? ")" : "", dir);
		close(s->lock_fd);
		s->lock_fd = -1;
		return -1;
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) == 0 && pwrite(s->lock_fd, buf, (size_t)len, 0) < 0)
		(void)0; /* the pid is a courtesy for the message above */
	return 0;
}

static int migrate(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s was written by a newer faqbot (schema %d, this one knows %d); "
			 "upgrade faqbot or use another state directory", s->path, version,
			 STORE_SCHEMA_VERSION);
		return -1;
	}
	for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
		if (exec(s, "BEGIN IMMEDIATE") < 0)
			goto fail;
		for (const char *const *sql = migrations[v]; *sql; sql++)
			if (exec(s, *sql) < 0) {
				exec(s, "ROLLBACK");
				goto fail;
			}
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", v + 1);
		if (exec(s, pragma) < 0 || exec(s, "COMMIT") < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: cannot set up the database: %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

struct store *store_open(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: cannot create the state directory: %s", dir, strerror(errno));
		return NULL;
	}
	struct store *s = xcalloc(1, sizeof(*s));
	s->lock_fd = -1;
	size_t n = strlen(dir) + strlen(STORE_FILE) + 2;
	s->path = xmalloc(n);
	snprintf(s->path, n, "%s/%s", dir, STORE_FILE);
	if (lock_dir(s, dir, err, errlen) < 0) {
		free(s->path);
		free(s);
		return NULL;
	}
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open the database: %s", s->path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_close(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
		 sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	/* FULL: a commit is on disk when COMMIT returns.  A larger automatic
	 * checkpoint spreads the checkpoints' own fsyncs over more commits. */
	if (!ok || exec(s, "PRAGMA synchronous=FULL") < 0 || exec(s, "PRAGMA foreign_keys=ON") < 0 ||
	    exec(s, "PRAGMA wal_autocheckpoint=8000") < 0 || exec(s, "PRAGMA cache_size=-512") < 0) {
		snprintf(err, errlen, "%s: cannot open the database: %s (is it an SQLite file?)", s->path,
			 sqlite3_errmsg(s->db));
		store_close(s);
		return NULL;
	}
	if (migrate(s, err, errlen) < 0) {
		store_close(s);
		return NULL;
	}
	return s;
}

struct store *store_open_reader(const char *dir, char *err, size_t errlen)
{
	struct store *s = xcalloc(1, sizeof(*s));
	s->lock_fd = -1;
	size_t n = strlen(dir) + strlen(STORE_FILE) + 2;
	s->path = xmalloc(n);
	snprintf(s->path, n, "%s/%s", dir, STORE_FILE);
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open the database: %s (has faqbot run with this "
			 "state_dir?)", s->path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_close(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 5000);
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_cache; i++)
		sqlite3_finalize(s->cache[i].st);
	if (s->db)
		sqlite3_close(s->db);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->path);
	free(s);
}

const char *store_path(const struct store *s)
{
	return s->path;
}

int store_begin(struct store *s)
{
	return exec(s, "BEGIN IMMEDIATE");
}

int store_in_transaction(struct store *s)
{
	return !sqlite3_get_autocommit(s->db);
}

int store_commit(struct store *s)
{
	return exec(s, "COMMIT");
}

void store_rollback(struct store *s)
{
	exec(s, "ROLLBACK");
}

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* ==== kv ==== */

int store_kv_get(struct store *s, const char *key, struct strbuf *out)
{
	static const char sql[] = "SELECT value FROM kv WHERE key=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, key);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		strbuf_reset(out);
		strbuf_addstr(out, (const char *)sqlite3_column_text(st, 0));
		return 1;
	}
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_kv_set(struct store *s, const char *key, const char *value)
{
	static const char sql[] = "INSERT INTO kv(key, value) VALUES(?1, ?2) "
				  "ON CONFLICT(key) DO UPDATE SET value=excluded.value";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, key);
	bind_str(st, 2, value);
	return step_done(s, st);
}

/* ==== inbox and ledger ==== */

int store_inbox_add(struct store *s, const char *transport, const char *uid, const char *payload,
		    int64_t now)
{
	static const char sql[] = "INSERT OR IGNORE INTO inbox(transport, uid, payload, received_at) "
				  "VALUES(?1, ?2, ?3, ?4)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, uid);
	bind_str(st, 3, payload);
	sqlite3_bind_int64(st, 4, now);
	if (step_done(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

int store_inbox_next(struct store *s, const char *transport, struct inbox_row *row)
{
	static const char sql[] = "SELECT id, uid, payload, received_at FROM inbox "
				  "WHERE transport=?1 AND done=0 ORDER BY id LIMIT 1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -1;
	row->id = sqlite3_column_int64(st, 0);
	row->uid = col_str(st, 1);
	row->payload = col_str(st, 2);
	row->received_at = sqlite3_column_int64(st, 3);
	return 1;
}

int store_inbox_done(struct store *s, int64_t id)
{
	static const char sql[] = "UPDATE inbox SET done=1 WHERE id=?1";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, id);
	return step_done(s, st);
}

size_t store_inbox_pending(struct store *s, const char *transport)
{
	static const char sql[] = "SELECT EXISTS(SELECT 1 FROM inbox WHERE transport=?1 AND done=0)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	return sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
}

void inbox_row_release(struct inbox_row *row)
{
	free(row->uid);
	free(row->payload);
	memset(row, 0, sizeof(*row));
}

int store_ledger_has(struct store *s, const char *transport, const char *trigger)
{
	static const char sql[] = "SELECT 1 FROM ledger WHERE transport=?1 AND trigger=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger);
	int rc = sqlite3_step(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_ledger_add(struct store *s, const char *transport, const char *trigger, int64_t now)
{
	static const char sql[] = "INSERT OR IGNORE INTO ledger(transport, trigger, handled_at) "
				  "VALUES(?1, ?2, ?3)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger);
	sqlite3_bind_int64(st, 3, now);
	return step_done(s, st);
}

/* ==== outbox ==== */

#define OUT_COLS "o.id, o.transport, o.chat, o.trigger, o.part, o.method, o.body, o.alt_body, " \
		 "o.txn, o.entry, o.state, o.attempts, o.ambiguous, o.use_alt, o.next_at, " \
		 "o.created_at, o.result"

static void read_row(sqlite3_stmt *st, struct outbox_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->transport = col_str(st, 1);
	r->chat = col_str(st, 2);
	r->trigger = col_str(st, 3);
	r->part = sqlite3_column_int(st, 4);
	r->method = col_str(st, 5);
	r->body = col_str(st, 6);
	r->alt_body = col_str(st, 7);
	r->txn = col_str(st, 8);
	r->entry = col_str(st, 9);
	r->state = sqlite3_column_int(st, 10);
	r->attempts = sqlite3_column_int(st, 11);
	r->ambiguous = sqlite3_column_int(st, 12);
	r->use_alt = sqlite3_column_int(st, 13);
	r->next_at = sqlite3_column_int64(st, 14);
	r->created_at = sqlite3_column_int64(st, 15);
	r->result = col_str(st, 16);
}

int64_t store_outbox_add(struct store *s, const struct outbox_row *r)
{
	static const char sql[] =
		"INSERT INTO outbox(transport, chat, trigger, part, method, body, alt_body, txn, entry,"
		" next_at, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, r->transport);
	bind_str(st, 2, r->chat);
	bind_str(st, 3, r->trigger);
	sqlite3_bind_int(st, 4, r->part);
	bind_str(st, 5, r->method);
	bind_str(st, 6, r->body);
	bind_str(st, 7, r->alt_body);
	bind_str(st, 8, r->txn);
	bind_str(st, 9, r->entry);
	sqlite3_bind_int64(st, 10, r->next_at);
	sqlite3_bind_int64(st, 11, r->created_at);
	if (step_done(s, st) < 0)
		return -1;
	return sqlite3_last_insert_rowid(s->db);
}

size_t store_outbox_due(struct store *s, const char *transport, int64_t now,
			struct outbox_row *rows, size_t max)
{
	static const char sql[] =
		/* oldest first, stopping at the first heads found: O(1) when
		 * the queue flows, whatever its length */
		"SELECT " OUT_COLS " FROM outbox o INDEXED BY outbox_pending"
		" WHERE o.transport=?1 AND o.state=0 AND o.next_at<=?2"
		" AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.transport=?1 AND p.chat=o.chat"
		"           AND p.state IN (0, 1) AND p.id<o.id)"
		" AND NOT EXISTS (SELECT 1 FROM chats c WHERE c.transport=o.transport AND c.chat=o.chat"
		"           AND c.parked_until>?2)"
		" ORDER BY o.id LIMIT ?3";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	size_t n = 0;
	while (n < max && sqlite3_step(st) == SQLITE_ROW)
		read_row(st, &rows[n++]);
	sqlite3_reset(st);
	return n;
}

int64_t store_outbox_next_time(struct store *s, const char *transport)
{
	static const char sql[] =
		"SELECT MIN(MAX(o.next_at, COALESCE(c.parked_until, 0))) FROM (SELECT MIN(id) AS head"
		"   FROM outbox WHERE transport=?1 AND state IN (0, 1) GROUP BY chat) h"
		" JOIN outbox o ON o.id=h.head"
		" LEFT JOIN chats c ON c.transport=o.transport AND c.chat=o.chat"
		" WHERE o.state=0";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL)
		return -1;
	return sqlite3_column_int64(st, 0);
}

int store_outbox_set(struct store *s, const struct outbox_row *r)
{
	static const char sql[] = "UPDATE outbox SET state=?2, attempts=?3, ambiguous=?4, use_alt=?5,"
				  " next_at=?6, result=?7, chat=?8 WHERE id=?1";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int(st, 2, r->state);
	sqlite3_bind_int(st, 3, r->attempts);
	sqlite3_bind_int(st, 4, r->ambiguous);
	sqlite3_bind_int(st, 5, r->use_alt);
	sqlite3_bind_int64(st, 6, r->next_at);
	bind_str(st, 7, r->result);
	bind_str(st, 8, r->chat);
	return step_done(s, st);
}

int store_outbox_recover(struct store *s, const char *transport)
{
	static const char sql[] = "UPDATE outbox SET state=0, ambiguous=ambiguous+1"
				  " WHERE transport=?1 AND state=1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	if (step_done(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db);
}

int store_outbox_drop_chat(struct store *s, const char *transport, const char *chat)
{
	static const char sql[] = "UPDATE outbox SET state=4 WHERE transport=?1 AND chat=?2"
				  " AND state IN (0, 1)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	if (step_done(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db);
}

/* body with its top-level "chat_id" set to chat (a number when it reads as one). */
static char *rewrite_chat(const char *body, const char *chat)
{
	json_t *j = json_loads(body, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return xstrdup(body);
	}
	char *end;
	long long v = strtoll(chat, &end, 10);
	json_object_set_new(j, "chat_id", *end ? json_string(chat) : json_integer(v));
	char *out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	char *copy = xstrdup(out ? out : body);
	free(out);
	return copy;
}

int store_outbox_move_chat(struct store *s, const char *transport, const char *chat,
			   const char *new_chat)
{
	static const char sel[] = "SELECT id, body, alt_body FROM outbox WHERE transport=?1 AND chat=?2"
				  " AND state IN (0, 1)";
	static const char upd[] = "UPDATE outbox SET chat=?2, body=?3, alt_body=?4 WHERE id=?1";
	sqlite3_stmt *st = stmt(s, sel);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	struct { int64_t id; char *body, *alt; } *rows = NULL;
	size_t n = 0, alloc = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		xgrow(&rows, &alloc, n + 1, sizeof(*rows));
		rows[n].id = sqlite3_column_int64(st, 0);
		rows[n].body = col_str(st, 1);
		rows[n].alt = col_str(st, 2);
		n++;
	}
	sqlite3_reset(st);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char *b = rewrite_chat(rows[i].body, new_chat);
		char *a = rows[i].alt ? rewrite_chat(rows[i].alt, new_chat) : NULL;
		sqlite3_stmt *u = stmt(s, upd);
		sqlite3_bind_int64(u, 1, rows[i].id);
		bind_str(u, 2, new_chat);
		bind_str(u, 3, b);
		bind_str(u, 4, a);
		if (step_done(s, u) < 0)
			rc = -1;
		free(b);
		free(a);
		free(rows[i].body);
		free(rows[i].alt);
	}
	free(rows);
	return rc;
}

size_t store_outbox_count(struct store *s, const char *transport, int state)
{
	static const char sql[] = "SELECT COUNT(*) FROM outbox WHERE transport=?1 AND state=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	sqlite3_bind_int(st, 2, state);
	return sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
}

int store_outbox_mark_sent(struct store *s, const char *transport, const char *txn,
			   const char *result)
{
	static const char sql[] = "UPDATE outbox SET state=2, result=COALESCE(result, ?3)"
				  " WHERE transport=?1 AND txn=?2 AND state IN (0, 1)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, txn);
	bind_str(st, 3, result);
	if (step_done(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

int store_outbox_has_result(struct store *s, const char *transport, const char *result)
{
	static const char sql[] = "SELECT 1 FROM outbox WHERE transport=?1 AND result=?2 LIMIT 1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, result);
	return sqlite3_step(st) == SQLITE_ROW;
}

void outbox_row_release(struct outbox_row *r)
{
	free(r->transport);
	free(r->chat);
	free(r->trigger);
	free(r->method);
	free(r->body);
	free(r->alt_body);
	free(r->txn);
	free(r->entry);
	free(r->result);
	memset(r, 0, sizeof(*r));
}

/* ==== chats and recent answers ==== */

static int chat_upsert(struct store *s, const char *transport, const char *chat)
{
	static const char sql[] = "INSERT OR IGNORE INTO chats(transport, chat) VALUES(?1, ?2)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	return step_done(s, st);
}

int store_unanswered_add(struct store *s, const char *transport, const char *chat,
			 const char *text, const char *best, double confidence, int64_t now)
{
	static const char sql[] = "INSERT INTO unanswered(at, transport, chat, text, best, confidence)"
				  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
	char hashed[24];
	snprintf(hashed, sizeof(hashed), "%016llx", (unsigned long long)hash_private(chat, strlen(chat)));
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, now);
	bind_str(st, 2, transport);
	bind_str(st, 3, hashed);
	bind_str(st, 4, text);
	bind_str(st, 5, best);
	sqlite3_bind_double(st, 6, confidence);
	return step_done(s, st);
}

int store_unanswered_prune(struct store *s, int64_t before)
{
	static const char sql[] = "DELETE FROM unanswered WHERE at<?1";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, before);
	if (step_done(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db);
}

int store_unanswered_each(struct store *s, int64_t since,
			  void (*fn)(void *arg, int64_t at, const char *transport, const char *text,
				     const char *best, double confidence),
			  void *arg)
{
	static const char sql[] = "SELECT at, transport, text, best, confidence FROM unanswered"
				  " WHERE at>=?1 ORDER BY at";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, since);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
		   sqlite3_column_double(st, 4));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int64_t store_chat_parked(struct store *s, const char *transport, const char *chat)
{
	static const char sql[] = "SELECT parked_until FROM chats WHERE transport=?1 AND chat=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

int store_chat_park(struct store *s, const char *transport, const char *chat, int64_t until)
{
	static const char sql[] = "UPDATE chats SET parked_until=?3 WHERE transport=?1 AND chat=?2";
	if (chat_upsert(s, transport, chat) < 0)
		return -1;
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	sqlite3_bind_int64(st, 3, until);
	return step_done(s, st);
}

int store_chat_migrated(struct store *s, const char *transport, const char *chat, struct strbuf *out)
{
	static const char sql[] = "SELECT migrated_to FROM chats WHERE transport=?1 AND chat=?2"
				  " AND migrated_to IS NOT NULL";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	if (sqlite3_step(st) != SQLITE_ROW)
		return 0;
	strbuf_reset(out);
	strbuf_addstr(out, (const char *)sqlite3_column_text(st, 0));
	return 1;
}

int store_chat_set_migrated(struct store *s, const char *transport, const char *chat,
			    const char *to)
{
	static const char sql[] = "UPDATE chats SET migrated_to=?3 WHERE transport=?1 AND chat=?2";
	if (chat_upsert(s, transport, chat) < 0)
		return -1;
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	bind_str(st, 3, to);
	return step_done(s, st);
}

int store_chat_disabled(struct store *s, const char *transport, const char *chat)
{
	static const char sql[] = "SELECT disabled FROM chats WHERE transport=?1 AND chat=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
}

int store_chat_set_disabled(struct store *s, const char *transport, const char *chat, int disabled)
{
	static const char sql[] = "UPDATE chats SET disabled=?3 WHERE transport=?1 AND chat=?2";
	if (chat_upsert(s, transport, chat) < 0)
		return -1;
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	sqlite3_bind_int(st, 3, disabled);
	return step_done(s, st);
}

int store_recent_get(struct store *s, const char *transport, const char *chat, const char *entry,
		     int64_t *at, struct strbuf *message_id)
{
	static const char sql[] = "SELECT at, message_id FROM recent WHERE transport=?1 AND chat=?2"
				  " AND entry=?3";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	bind_str(st, 3, entry);
	if (sqlite3_step(st) != SQLITE_ROW)
		return 0;
	*at = sqlite3_column_int64(st, 0);
	strbuf_reset(message_id);
	strbuf_addstr(message_id, (const char *)sqlite3_column_text(st, 1));
	return 1;
}

int store_recent_set(struct store *s, const char *transport, const char *chat, const char *entry,
		     int64_t at, const char *message_id)
{
	static const char sql[] = "INSERT INTO recent(transport, chat, entry, at, message_id)"
				  " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(transport, chat, entry)"
				  " DO UPDATE SET at=excluded.at, message_id=excluded.message_id";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	bind_str(st, 3, entry);
	sqlite3_bind_int64(st, 4, at);
	bind_str(st, 5, message_id);
	return step_done(s, st);
}
