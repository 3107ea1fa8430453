/*
 * store.c - SQLite-backed durable state.  See store.h.
 *
 * Statements are prepared once and cached by their SQL text's address.
 * Every statement is reset as soon as its function is done with it (run()
 * and finish()): a statement left active holds a read snapshot, and while
 * one is held no checkpoint can copy the WAL back into the database, so
 * the WAL would grow without bound.
 *
 * The store owns the transaction state: store_begin opens it, any
 * statement that fails inside it marks it failed (SQLite leaves a
 * transaction in which a statement failed in an unknown state), and
 * store_commit then rolls back and says so instead of committing half a
 * step.  Callers group statements into one commit where the protocol needs
 * it (a polled batch with its cursor; outbox rows with their ledger entry).
 *
 * The send queue: table `queue` holds one row per chat with unfinished
 * outbox rows and the time its head row may go (NULL while it is in
 * flight).  Every function that changes a chat's outbox rows recomputes
 * that row (requeue), so "the first row that may be sent now" is one index
 * lookup, however long the queue.
 */
#define _POSIX_C_SOURCE 200809L
#include "store.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STMTS 160

struct store {
	sqlite3 *db;
	char *path;
	int lock_fd;
	int txn;          /* a transaction opened by store_begin is open */
	int txn_failed;   /* a statement failed inside it: commit refuses */
	int disk_full;    /* a statement failed with SQLITE_FULL since the last rollback */
	int retain_more;  /* the last store_retain left rows to prune */
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

/* v3: retention and the per-chat send queue.  Processed inbox rows are
 * deleted (they are no longer kept), finished outbox rows lose their
 * bodies, and every chat with unfinished rows gets its queue row. */
static const char *const schema_v3[] = {
	"DELETE FROM inbox WHERE done<>0",
	"DROP INDEX outbox_pending",
	"UPDATE outbox SET body='', alt_body=NULL WHERE state>=2",
	"CREATE INDEX outbox_final ON outbox(created_at) WHERE state>=2",
	"CREATE INDEX ledger_at ON ledger(handled_at)",
	"CREATE INDEX recent_at ON recent(at)",
	/* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one statement on two lines */
	"CREATE TABLE queue(transport TEXT NOT NULL, chat TEXT NOT NULL, due_at INTEGER,"
	" PRIMARY KEY(transport, chat)) WITHOUT ROWID",
	"CREATE INDEX queue_due ON queue(transport, due_at) WHERE due_at IS NOT NULL",
	"INSERT INTO queue(transport, chat, due_at)"
	" SELECT o.transport, o.chat, CASE WHEN o.state=1 THEN NULL"
	"  ELSE MAX(o.next_at, COALESCE(c.parked_until, 0)) END"
	" FROM (SELECT MIN(id) AS head FROM outbox WHERE state IN (0, 1) GROUP BY transport, chat) h"
	" JOIN outbox o ON o.id=h.head"
	" LEFT JOIN chats c ON c.transport=o.transport AND c.chat=o.chat",
	NULL
};

/* v4: feedback.  What each FAQ answer answered (answered, with the message
 * ids of its parts in answered_msg, filled as they are sent), the users'
 * votes on answers and their choices after a list (users and chats only as
 * keyed hashes). */
static const char *const schema_v4[] = {
	"CREATE TABLE answered(transport TEXT NOT NULL, trigger TEXT NOT NULL, entry TEXT NOT NULL,"
	" question TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(transport, trigger)) WITHOUT ROWID",
	"CREATE INDEX answered_at ON answered(at)",
	"CREATE TABLE answered_msg(transport TEXT NOT NULL, chat TEXT NOT NULL, message_id TEXT NOT NULL,"
	" trigger TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(transport, chat, message_id)) WITHOUT ROWID",
	"CREATE INDEX answered_msg_at ON answered_msg(at)",
	"CREATE TABLE votes(transport TEXT NOT NULL, trigger TEXT NOT NULL, user TEXT NOT NULL,"
	" message_id TEXT NOT NULL, entry TEXT NOT NULL, question TEXT NOT NULL,"
	" value INTEGER NOT NULL CHECK(value IN (-1, 1)), at INTEGER NOT NULL, reaction TEXT,"
	" PRIMARY KEY(transport, trigger, user)) WITHOUT ROWID",
	"CREATE INDEX votes_at ON votes(at)",
	"CREATE INDEX votes_reaction ON votes(transport, reaction) WHERE reaction IS NOT NULL",
	"CREATE TABLE choices(id INTEGER PRIMARY KEY, transport TEXT NOT NULL, chat TEXT NOT NULL,"
	" user TEXT NOT NULL, question TEXT NOT NULL, entry TEXT NOT NULL, at INTEGER NOT NULL,"
	" UNIQUE(transport, user, entry, question))",
	"CREATE INDEX choices_at ON choices(at)",
	NULL
};

/* v5: Matrix end-to-end encryption (libolm state, pickled with the pickle
 * key; see store.h's tour). */
static const char *const schema_v5[] = {
	"CREATE TABLE mx_account(id INTEGER PRIMARY KEY CHECK(id = 1), user_id TEXT NOT NULL,"
	" device_id TEXT NOT NULL, pickle TEXT NOT NULL, updated_at INTEGER NOT NULL)",
	"CREATE TABLE mx_olm(peer_key TEXT NOT NULL, session_id TEXT NOT NULL, pickle TEXT NOT NULL,"
	" used_at INTEGER NOT NULL, PRIMARY KEY(peer_key, session_id)) WITHOUT ROWID",
	"CREATE TABLE mx_megolm_in(room TEXT NOT NULL, session_id TEXT NOT NULL, sender_key TEXT NOT NULL,"
	" pickle TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(room, session_id)) WITHOUT ROWID",
	"CREATE TABLE mx_megolm_out(room TEXT PRIMARY KEY, session_id TEXT NOT NULL, pickle TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, member_left INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
	"CREATE TABLE mx_megolm_shared(room TEXT NOT NULL, session_id TEXT NOT NULL, user_id TEXT NOT NULL,"
	" device_id TEXT NOT NULL, PRIMARY KEY(room, session_id, user_id, device_id)) WITHOUT ROWID",
	"CREATE TABLE mx_users(user_id TEXT PRIMARY KEY, outdated INTEGER NOT NULL,"
	" generation INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
	"CREATE TABLE mx_devices(user_id TEXT NOT NULL, device_id TEXT NOT NULL, curve_key TEXT NOT NULL,"
	" ed_key TEXT NOT NULL, PRIMARY KEY(user_id, device_id)) WITHOUT ROWID",
	"CREATE TABLE mx_rooms(room TEXT PRIMARY KEY, algorithm TEXT NOT NULL, rotation_ms INTEGER NOT NULL,"
	" rotation_msgs INTEGER NOT NULL) WITHOUT ROWID",
	"CREATE TABLE mx_waiting(event_id TEXT PRIMARY KEY, room TEXT NOT NULL, session_id TEXT NOT NULL,"
	" payload TEXT NOT NULL, received_at INTEGER NOT NULL, give_up_at INTEGER NOT NULL) WITHOUT ROWID",
	"CREATE INDEX mx_waiting_session ON mx_waiting(room, session_id)",
	"CREATE INDEX mx_waiting_give_up ON mx_waiting(give_up_at)",
	"CREATE TABLE mx_key_requests(room TEXT NOT NULL, session_id TEXT NOT NULL, sent_at INTEGER NOT NULL,"
	" PRIMARY KEY(room, session_id)) WITHOUT ROWID",
	NULL
};

/* Migrations: migrations[v] upgrades a database from version v to v + 1. */
static const char *const *const migrations[] = { schema_v1, schema_v2, schema_v3, schema_v4, schema_v5 };

/* A sentence for the error of the last statement. */
static const char *why(struct store *s, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return "the disk is full (or the database reached its size limit)";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "the database is locked by another program";
	case SQLITE_IOERR:
		return "the disk could not be read or written";
	case SQLITE_READONLY:
		return "the database is read-only";
	default:
		return sqlite3_errmsg(s->db);
	}
}

/* A statement failed: say so, and poison the open transaction. */
static void failed(struct store *s, int rc)
{
	if (s->txn)
		s->txn_failed = 1;
	if ((rc & 0xff) == SQLITE_FULL)
		s->disk_full = 1;
	log_error("store_error", "file=%s error=%s detail=%s", log_q(s->path), log_q(why(s, rc)),
		  log_q(sqlite3_errmsg(s->db)));
}

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
		log_error("fatal", "file=%s error=%s detail=%s", log_q(s->path), log_q("bad SQL statement (a bug)"),
			  log_q(sqlite3_errmsg(s->db)));
		abort();
	}
	if (s->n_cache >= MAX_STMTS) {
		log_error("fatal", "file=%s error=%s", log_q(s->path),
			  log_q("more SQL statements than the cache holds (a bug: raise MAX_STMTS)"));
		abort();
	}
	s->cache[s->n_cache].sql = sql;
	s->cache[s->n_cache++].st = st;
	return st;
}

/* One step: SQLITE_ROW, SQLITE_DONE, or the error (already reported).
 * Nothing runs in a failed transaction: SQLite may have rolled it back
 * already (SQLITE_FULL, SQLITE_IOERR), and a statement run now would
 * commit on its own, outside the step it belongs to. */
static int step(struct store *s, sqlite3_stmt *st)
{
	if (s->txn && (s->txn_failed || sqlite3_get_autocommit(s->db))) {
		s->txn_failed = 1;
		return SQLITE_ABORT;
	}
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		failed(s, rc);
	return rc;
}

/* The statement is done: reset it (releasing its read snapshot), return rc. */
static int finish(sqlite3_stmt *st, int rc)
{
	sqlite3_reset(st);
	return rc;
}

/* Runs a statement that returns no row to the caller: 0 or -1. */
static int run(struct store *s, sqlite3_stmt *st)
{
	int rc = step(s, st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int exec(struct store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		if ((rc & 0xff) == SQLITE_FULL)
			s->disk_full = 1;
		log_error("store_error", "file=%s error=%s detail=%s", log_q(s->path), log_q(why(s, rc)),
			  log_q(msg ? msg : "error"));
		sqlite3_free(msg);
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

/* auto_vacuum=INCREMENTAL, so that store_retain can hand freed pages back
 * (vacuum_some).  A new database gets it before its first page is written
 * (store_open); one made by an older faqbot is converted once by VACUUM, which needs about its
 * size again in free disk space: when that fails the database works as
 * before (its size then stays at its largest) and the next start tries
 * again. */
static void auto_vacuum_on(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int mode = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA auto_vacuum", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		mode = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (mode == 2)
		return;
	log_info("store_vacuum", "file=%s note=%s", log_q(s->path),
		 log_q("converting the database to incremental vacuum, once"));
	if (exec(s, "VACUUM") < 0)
		log_warn("store_vacuum_failed", "file=%s note=%s", log_q(s->path),
			 log_q("the database works as before; the conversion is tried at the next start"));
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
	/* before anything is written, so that a new database is made with it */
	int ok = exec(s, "PRAGMA auto_vacuum=INCREMENTAL") == 0;
	ok = ok && sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) == SQLITE_OK &&
		 sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	/* FULL: a commit is on disk when COMMIT returns.  The automatic
	 * checkpoint runs when the WAL reaches STORE_WAL_CHECKPOINT_PAGES
	 * (it can, since no statement stays active); journal_size_limit
	 * truncates a WAL that one large transaction grew past that size. */
	char pragmas[256];
	snprintf(pragmas, sizeof(pragmas), "PRAGMA wal_autocheckpoint=%d; PRAGMA journal_size_limit=%lld",
		 STORE_WAL_CHECKPOINT_PAGES, (long long)STORE_WAL_CHECKPOINT_PAGES * 4096);
	if (!ok || exec(s, "PRAGMA synchronous=FULL") < 0 || exec(s, "PRAGMA foreign_keys=ON") < 0 ||
	    exec(s, pragmas) < 0 || exec(s, "PRAGMA cache_size=-512") < 0) {
		snprintf(err, errlen, "%s: cannot open the database: %s (is it an SQLite file?)", s->path,
			 sqlite3_errmsg(s->db));
		store_close(s);
		return NULL;
	}
	if (migrate(s, err, errlen) < 0) {
		store_close(s);
		return NULL;
	}
	auto_vacuum_on(s);
	/* Opening may wait for a lock (5 s above); serving may not: the loop
	 * is single-threaded, and a 5 s wait froze every request in flight,
	 * long enough for a send's own timeout to expire after the server
	 * had taken it (then resent: a duplicate, seen in the 30-minute soak).
	 * A step that finds the database locked fails at once and is done
	 * again a second later (transport.c, STORE_RETRY_MS). */
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
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

int store_schema_version(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

const char *store_path(const struct store *s)
{
	return s->path;
}

/* ==== Transactions ==== */

int store_begin(struct store *s)
{
	if (s->txn) {
		log_error("store_error", "file=%s error=%s", log_q(s->path),
			  log_q("a transaction is already open (a bug: it is rolled back)"));
		store_rollback(s);
		return -1;
	}
	if (exec(s, "BEGIN IMMEDIATE") < 0)
		return -1;
	s->txn = 1;
	s->txn_failed = 0;
	return 0;
}

int store_in_transaction(struct store *s)
{
	return s->txn;
}

int store_commit(struct store *s)
{
	if (!s->txn)
		return -1;
	if (s->txn_failed) {
		log_error("store_error", "file=%s error=%s", log_q(s->path),
			  log_q("a statement failed in this transaction, so it was rolled back "
				"instead of committed; it will be tried again"));
		store_rollback(s);
		return -1;
	}
	if (exec(s, "COMMIT") < 0) {
		store_rollback(s); /* a failed COMMIT can leave the transaction open */
		return -1;
	}
	s->txn = 0;
	return 0;
}

/*
 * After a disk-full error, give the WAL's space back: on a small disk the
 * WAL itself can be what fills it (it only shrinks after a checkpoint, and
 * the automatic one waits for STORE_WAL_CHECKPOINT_PAGES), and then every
 * later transaction fails too, even once the disk has room again.  A
 * TRUNCATE checkpoint copies the committed pages into the database and
 * empties the WAL; when it cannot run yet, the next failure tries again.
 */
static void store_reclaim(struct store *s)
{
	int frames = 0, copied = 0;
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &frames, &copied);
	if (rc == SQLITE_OK) {
		s->disk_full = 0;
		log_info("store_checkpoint", "file=%s reason=%s frames=%d", log_q(s->path),
			 log_q("the disk was full: the WAL was copied into the database and emptied"),
			 copied);
	} else {
		log_warn("store_checkpoint_failed", "file=%s error=%s detail=%s", log_q(s->path),
			 log_q(why(s, rc)), log_q(sqlite3_errmsg(s->db)));
	}
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		exec(s, "ROLLBACK");
	s->txn = 0;
	s->txn_failed = 0;
	if (s->disk_full)
		store_reclaim(s);
}

int store_active_statements(struct store *s)
{
	int n = 0;
	for (sqlite3_stmt *st = sqlite3_next_stmt(s->db, NULL); st; st = sqlite3_next_stmt(s->db, st))
		n += sqlite3_stmt_busy(st) != 0;
	return n;
}

void *store_sqlite_for_tests(struct store *s)
{
	return s->db;
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
	int rc = step(s, st);
	if (rc == SQLITE_ROW) {
		strbuf_reset(out);
		strbuf_addstr(out, (const char *)sqlite3_column_text(st, 0));
		return finish(st, 1);
	}
	return finish(st, rc == SQLITE_DONE ? 0 : -1);
}

int store_kv_set(struct store *s, const char *key, const char *value)
{
	static const char sql[] = "INSERT INTO kv(key, value) VALUES(?1, ?2) "
				  "ON CONFLICT(key) DO UPDATE SET value=excluded.value";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, key);
	bind_str(st, 2, value);
	return run(s, st);
}

int store_kv_del(struct store *s, const char *key)
{
	static const char sql[] = "DELETE FROM kv WHERE key=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, key);
	return run(s, st);
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
	if (run(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

int store_inbox_next(struct store *s, const char *transport, struct inbox_row *row)
{
	static const char sql[] = "SELECT id, uid, payload, received_at FROM inbox "
				  "WHERE transport=?1 AND done=0 ORDER BY id LIMIT 1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	int rc = step(s, st);
	if (rc != SQLITE_ROW)
		return finish(st, rc == SQLITE_DONE ? 0 : -1);
	row->id = sqlite3_column_int64(st, 0);
	row->uid = col_str(st, 1);
	row->payload = col_str(st, 2);
	row->received_at = sqlite3_column_int64(st, 3);
	return finish(st, 1);
}

int store_inbox_done(struct store *s, int64_t id)
{
	/* retention: a handled update is not kept (the ledger remembers the
	 * trigger); its uid may come again and is then a new update */
	static const char sql[] = "DELETE FROM inbox WHERE id=?1";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, id);
	return run(s, st);
}

int store_inbox_pending(struct store *s, const char *transport)
{
	static const char sql[] = "SELECT EXISTS(SELECT 1 FROM inbox WHERE transport=?1 AND done=0)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	int rc = step(s, st);
	return finish(st, rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : rc == SQLITE_DONE ? 0 : -1);
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
	int rc = step(s, st);
	return finish(st, rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1);
}

int store_ledger_add(struct store *s, const char *transport, const char *trigger, int64_t now)
{
	static const char sql[] = "INSERT OR IGNORE INTO ledger(transport, trigger, handled_at) "
				  "VALUES(?1, ?2, ?3)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger);
	sqlite3_bind_int64(st, 3, now);
	return run(s, st);
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

/* Recomputes chat's queue row from its head (oldest unfinished) row:
 * none when the chat has no unfinished row, due_at NULL while the head is
 * in flight, else when both the row and the chat (429) allow it. */
static int requeue(struct store *s, const char *transport, const char *chat)
{
	static const char del[] = "DELETE FROM queue WHERE transport=?1 AND chat=?2";
	static const char ins[] =
		"INSERT INTO queue(transport, chat, due_at)"
		" SELECT o.transport, o.chat, CASE WHEN o.state=1 THEN NULL"
		"  ELSE MAX(o.next_at, COALESCE((SELECT c.parked_until FROM chats c"
		"   WHERE c.transport=?1 AND c.chat=?2), 0)) END"
		" FROM outbox o WHERE o.transport=?1 AND o.chat=?2 AND o.state IN (0, 1)"
		" ORDER BY o.id LIMIT 1";
	sqlite3_stmt *st = stmt(s, del);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	if (run(s, st) < 0)
		return -1;
	st = stmt(s, ins);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	return run(s, st);
}

int64_t store_outbox_add(struct store *s, const struct outbox_row *r)
{
	/* the same trigger and part again (a replay) is not an error: the
	 * first row stands, and the transaction stays good */
	static const char sql[] =
		"INSERT INTO outbox(transport, chat, trigger, part, method, body, alt_body, txn, entry,"
		" next_at, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
		" ON CONFLICT(transport, trigger, part) DO NOTHING";
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
	if (run(s, st) < 0)
		return -1;
	if (sqlite3_changes(s->db) == 0)
		return 0;
	int64_t id = sqlite3_last_insert_rowid(s->db);
	return requeue(s, r->transport, r->chat) < 0 ? -1 : id;
}

static int outbox_head(struct store *s, const char *transport, const char *chat, struct outbox_row *row)
{
	static const char sql[] = "SELECT " OUT_COLS " FROM outbox o WHERE o.transport=?1 AND o.chat=?2"
				  " AND o.state IN (0, 1) ORDER BY o.id LIMIT 1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	int rc = step(s, st);
	if (rc == SQLITE_ROW)
		read_row(st, row);
	return finish(st, rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1);
}

size_t store_outbox_due(struct store *s, const char *transport, int64_t now,
			struct outbox_row *rows, size_t max)
{
	/* the chats whose head may go now, earliest first: one range of the
	 * queue_due index, whatever the number of rows queued */
	static const char sql[] = "SELECT chat FROM queue WHERE transport=?1 AND due_at IS NOT NULL"
				  " AND due_at<=?2 ORDER BY due_at LIMIT ?3";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	char **chats = xcalloc(max ? max : 1, sizeof(*chats));
	size_t n = 0, out = 0;
	while (n < max && step(s, st) == SQLITE_ROW)
		chats[n++] = col_str(st, 0);
	sqlite3_reset(st);
	for (size_t i = 0; i < n; i++) {
		if (outbox_head(s, transport, chats[i], &rows[out]) == 1) {
			if (rows[out].state == OUT_PENDING)
				out++;
			else
				outbox_row_release(&rows[out]);
		}
		free(chats[i]);
	}
	free(chats);
	return out;
}

int store_outbox_defer_chat(struct store *s, const char *transport, const char *chat, int64_t until)
{
	static const char sql[] = "UPDATE queue SET due_at=MAX(due_at, ?3) WHERE transport=?1 AND chat=?2"
				  " AND due_at IS NOT NULL";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	sqlite3_bind_int64(st, 3, until);
	return run(s, st);
}

int64_t store_outbox_next_time(struct store *s, const char *transport)
{
	static const char sql[] = "SELECT MIN(due_at) FROM queue WHERE transport=?1 AND due_at IS NOT NULL";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	int rc = step(s, st);
	if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL)
		return finish(st, -1);
	int64_t at = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return at;
}

/* The chat a row is filed under now (it moves when a group migrates). */
static char *row_chat(struct store *s, int64_t id)
{
	static const char sql[] = "SELECT chat FROM outbox WHERE id=?1";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, id);
	char *chat = step(s, st) == SQLITE_ROW ? col_str(st, 0) : NULL;
	sqlite3_reset(st);
	return chat;
}

int store_outbox_set(struct store *s, const struct outbox_row *r)
{
	/* a finished row keeps only what de-duplication needs: no bodies; and
	 * a finished row stays finished: a Matrix echo can mark a row sent (and
	 * empty its body) while a retry of it is in flight, and that retry's
	 * late failure must not put the row, bodiless, back in the queue */
	static const char sql[] = "UPDATE outbox SET state=?2, attempts=?3, ambiguous=?4, use_alt=?5,"
				  " next_at=?6, result=?7, chat=?8,"
				  " body=CASE WHEN ?2>=2 THEN '' ELSE body END,"
				  " alt_body=CASE WHEN ?2>=2 THEN NULL ELSE alt_body END"
				  " WHERE id=?1 AND state<2";
	char *old = row_chat(s, r->id);
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_int(st, 2, r->state);
	sqlite3_bind_int(st, 3, r->attempts);
	sqlite3_bind_int(st, 4, r->ambiguous);
	sqlite3_bind_int(st, 5, r->use_alt);
	sqlite3_bind_int64(st, 6, r->next_at);
	bind_str(st, 7, r->result);
	bind_str(st, 8, r->chat);
	int rc = run(s, st);
	if (rc == 0 && r->state == OUT_SENT && r->result && r->trigger)
		rc = store_answered_sent(s, r->transport, r->chat, r->trigger, r->result);
	if (rc == 0 && old && strcmp(old, r->chat))
		rc = requeue(s, r->transport, old);
	if (rc == 0)
		rc = requeue(s, r->transport, r->chat);
	free(old);
	return rc;
}

/* Rebuilds the whole queue of a transport (after a bulk change). */
static int requeue_all(struct store *s, const char *transport)
{
	static const char del[] = "DELETE FROM queue WHERE transport=?1";
	static const char ins[] =
		"INSERT INTO queue(transport, chat, due_at)"
		" SELECT o.transport, o.chat, CASE WHEN o.state=1 THEN NULL"
		"  ELSE MAX(o.next_at, COALESCE(c.parked_until, 0)) END"
		" FROM (SELECT MIN(id) AS head FROM outbox WHERE transport=?1 AND state IN (0, 1)"
		"  GROUP BY chat) h"
		" JOIN outbox o ON o.id=h.head"
		" LEFT JOIN chats c ON c.transport=o.transport AND c.chat=o.chat";
	sqlite3_stmt *st = stmt(s, del);
	bind_str(st, 1, transport);
	if (run(s, st) < 0)
		return -1;
	st = stmt(s, ins);
	bind_str(st, 1, transport);
	return run(s, st);
}

int store_outbox_recover(struct store *s, const char *transport)
{
	static const char sql[] = "UPDATE outbox SET state=0, ambiguous=ambiguous+1"
				  " WHERE transport=?1 AND state=1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	if (run(s, st) < 0)
		return -1;
	int n = sqlite3_changes(s->db);
	return requeue_all(s, transport) < 0 ? -1 : n;
}

int store_outbox_drop_chat(struct store *s, const char *transport, const char *chat)
{
	static const char sql[] = "UPDATE outbox SET state=4, body='', alt_body=NULL"
				  " WHERE transport=?1 AND chat=?2 AND state IN (0, 1)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	if (run(s, st) < 0)
		return -1;
	int n = sqlite3_changes(s->db);
	return requeue(s, transport, chat) < 0 ? -1 : n;
}

int store_outbox_move_chat(struct store *s, const char *transport, const char *chat,
			   const char *new_chat, store_rewrite_fn rewrite)
{
	static const char sel[] = "SELECT id, body, alt_body FROM outbox WHERE transport=?1 AND chat=?2"
				  " AND state IN (0, 1)";
	static const char upd[] = "UPDATE outbox SET chat=?2, body=?3, alt_body=?4 WHERE id=?1";
	sqlite3_stmt *st = stmt(s, sel);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	struct { int64_t id; char *body, *alt; } *rows = NULL;
	size_t n = 0, alloc = 0;
	int rc;
	while ((rc = step(s, st)) == SQLITE_ROW) {
		xgrow(&rows, &alloc, n + 1, sizeof(*rows));
		rows[n].id = sqlite3_column_int64(st, 0);
		rows[n].body = col_str(st, 1);
		rows[n].alt = col_str(st, 2);
		n++;
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		char *b = rewrite ? rewrite(rows[i].body, new_chat) : xstrdup(rows[i].body);
		char *a = !rows[i].alt ? NULL : rewrite ? rewrite(rows[i].alt, new_chat) : xstrdup(rows[i].alt);
		sqlite3_stmt *u = stmt(s, upd);
		sqlite3_bind_int64(u, 1, rows[i].id);
		bind_str(u, 2, new_chat);
		bind_str(u, 3, b);
		bind_str(u, 4, a);
		if (run(s, u) < 0)
			rc = -1;
		free(b);
		free(a);
		free(rows[i].body);
		free(rows[i].alt);
	}
	free(rows);
	if (rc == 0 && (requeue(s, transport, chat) < 0 || requeue(s, transport, new_chat) < 0))
		rc = -1;
	return rc;
}

int64_t store_outbox_count(struct store *s, const char *transport, int state)
{
	static const char sql[] = "SELECT COUNT(*) FROM outbox WHERE transport=?1 AND state=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	sqlite3_bind_int(st, 2, state);
	int rc = step(s, st);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

int store_outbox_mark_sent(struct store *s, const char *transport, const char *txn,
			   const char *result)
{
	static const char sel[] = "SELECT chat, trigger FROM outbox WHERE transport=?1 AND txn=?2"
				  " AND state IN (0, 1)";
	static const char sql[] = "UPDATE outbox SET state=2, result=COALESCE(result, ?3), body='',"
				  " alt_body=NULL WHERE transport=?1 AND txn=?2 AND state IN (0, 1)";
	sqlite3_stmt *st = stmt(s, sel);
	bind_str(st, 1, transport);
	bind_str(st, 2, txn);
	int rc = step(s, st);
	char *chat = rc == SQLITE_ROW ? col_str(st, 0) : NULL;
	char *trigger = rc == SQLITE_ROW ? col_str(st, 1) : NULL;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -1;
	st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, txn);
	bind_str(st, 3, result);
	rc = run(s, st);
	int changed = rc == 0 && sqlite3_changes(s->db) > 0;
	if (rc == 0 && result && trigger)
		rc = store_answered_sent(s, transport, chat, trigger, result);
	if (rc == 0)
		rc = requeue(s, transport, chat);
	free(chat);
	free(trigger);
	return rc < 0 ? -1 : changed;
}

int store_outbox_has_result(struct store *s, const char *transport, const char *result)
{
	static const char sql[] = "SELECT 1 FROM outbox WHERE transport=?1 AND result=?2 LIMIT 1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, result);
	int rc = step(s, st);
	return finish(st, rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1);
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
	return run(s, st);
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
	return run(s, st);
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
	while ((rc = step(s, st)) == SQLITE_ROW)
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
	int rc = step(s, st);
	int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(st);
	return v;
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
	if (run(s, st) < 0)
		return -1;
	return requeue(s, transport, chat);
}

int store_chat_migrated(struct store *s, const char *transport, const char *chat, struct strbuf *out)
{
	static const char sql[] = "SELECT migrated_to FROM chats WHERE transport=?1 AND chat=?2"
				  " AND migrated_to IS NOT NULL";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	int rc = step(s, st);
	if (rc != SQLITE_ROW)
		return finish(st, rc == SQLITE_DONE ? 0 : -1);
	strbuf_reset(out);
	strbuf_addstr(out, (const char *)sqlite3_column_text(st, 0));
	return finish(st, 1);
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
	return run(s, st);
}

int store_chat_disabled(struct store *s, const char *transport, const char *chat)
{
	static const char sql[] = "SELECT disabled FROM chats WHERE transport=?1 AND chat=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	int rc = step(s, st);
	return finish(st, rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : rc == SQLITE_DONE ? 0 : -1);
}

int store_chat_set_disabled(struct store *s, const char *transport, const char *chat, int disabled)
{
	static const char sql[] = "UPDATE chats SET disabled=?3 WHERE transport=?1 AND chat=?2";
	if (!disabled) {
		/* enabling a chat never seen needs no row */
		static const char clear[] = "UPDATE chats SET disabled=0 WHERE transport=?1 AND chat=?2"
					    " AND disabled<>0";
		sqlite3_stmt *st = stmt(s, clear);
		bind_str(st, 1, transport);
		bind_str(st, 2, chat);
		return run(s, st);
	}
	if (chat_upsert(s, transport, chat) < 0)
		return -1;
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, chat);
	sqlite3_bind_int(st, 3, disabled);
	return run(s, st);
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
	int rc = step(s, st);
	if (rc != SQLITE_ROW)
		return finish(st, rc == SQLITE_DONE ? 0 : -1);
	*at = sqlite3_column_int64(st, 0);
	strbuf_reset(message_id);
	strbuf_addstr(message_id, (const char *)sqlite3_column_text(st, 1));
	return finish(st, 1);
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
	return run(s, st);
}

/* ==== Feedback: answers, votes, choices ==== */

/* The keyed hash of a user or chat id, as stored (never the id itself). */
static void pseudonym(const char *id, char out[24])
{
	snprintf(out, 24, "%016llx", (unsigned long long)hash_private(id, strlen(id)));
}

int store_answered_add(struct store *s, const char *transport, const char *trigger, const char *entry,
		       const char *question, int64_t now)
{
	static const char sql[] = "INSERT INTO answered(transport, trigger, entry, question, at)"
				  " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(transport, trigger) DO NOTHING";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger);
	bind_str(st, 3, entry);
	bind_str(st, 4, question);
	sqlite3_bind_int64(st, 5, now);
	return run(s, st);
}

int store_answered_sent(struct store *s, const char *transport, const char *chat, const char *trigger,
			const char *message_id)
{
	static const char sql[] = "INSERT OR IGNORE INTO answered_msg(transport, chat, message_id, trigger, at)"
				  " SELECT transport, ?4, ?3, trigger, at FROM answered"
				  " WHERE transport=?1 AND trigger=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger);
	bind_str(st, 3, message_id);
	bind_str(st, 4, chat);
	return run(s, st);
}

int store_answered_get(struct store *s, const char *transport, const char *chat, const char *message_id,
		       struct strbuf *trigger, struct strbuf *entry, struct strbuf *question)
{
	static const char sql[] = "SELECT a.trigger, a.entry, a.question FROM answered_msg m"
				  " JOIN answered a ON a.transport=m.transport AND a.trigger=m.trigger"
				  " WHERE m.transport=?1 AND m.chat=?3 AND m.message_id=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, message_id);
	bind_str(st, 3, chat);
	int rc = step(s, st);
	if (rc != SQLITE_ROW)
		return finish(st, rc == SQLITE_DONE ? 0 : -1);
	struct strbuf *out[3] = { trigger, entry, question };
	for (int i = 0; i < 3; i++)
		if (out[i]) {
			strbuf_reset(out[i]);
			strbuf_addstr(out[i], (const char *)sqlite3_column_text(st, i));
		}
	return finish(st, 1);
}

int store_vote_set(struct store *s, const char *transport, const char *chat, const char *message_id,
		   const char *user, int value, const char *reaction, int64_t now)
{
	static const char cur[] = "SELECT value FROM votes WHERE transport=?1 AND trigger=?2 AND user=?3";
	static const char del[] = "DELETE FROM votes WHERE transport=?1 AND trigger=?2 AND user=?3";
	static const char set[] =
		"INSERT INTO votes(transport, trigger, user, message_id, entry, question, value, at, reaction)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(transport, trigger, user)"
		" DO UPDATE SET message_id=excluded.message_id, value=excluded.value, at=excluded.at,"
		" reaction=excluded.reaction";
	static const char react[] = "UPDATE votes SET reaction=?4 WHERE transport=?1 AND trigger=?2"
				    " AND user=?3";
	if (value < -1 || value > 1)
		return -1;
	struct strbuf trigger = STRBUF_INIT, entry = STRBUF_INIT, question = STRBUF_INIT;
	int rc = store_answered_get(s, transport, chat, message_id, &trigger, &entry, &question);
	if (rc <= 0)
		goto out;
	char who[24];
	pseudonym(user, who);
	sqlite3_stmt *st = stmt(s, cur);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger.buf);
	bind_str(st, 3, who);
	rc = step(s, st);
	int old = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = -1;
		goto out;
	}
	if (old == value) {
		/* the same vote again (a second 👍 reaction): it is now the one
		 * whose withdrawal counts */
		rc = STORE_VOTE_SAME;
		if (value && reaction) {
			st = stmt(s, react);
			bind_str(st, 1, transport);
			bind_str(st, 2, trigger.buf);
			bind_str(st, 3, who);
			bind_str(st, 4, reaction);
			if (run(s, st) < 0)
				rc = -1;
		}
		goto out;
	}
	st = stmt(s, value ? set : del);
	bind_str(st, 1, transport);
	bind_str(st, 2, trigger.buf);
	bind_str(st, 3, who);
	if (value) {
		bind_str(st, 4, message_id);
		bind_str(st, 5, entry.buf);
		bind_str(st, 6, question.buf);
		sqlite3_bind_int(st, 7, value);
		sqlite3_bind_int64(st, 8, now);
		bind_str(st, 9, reaction);
	}
	rc = run(s, st) < 0 ? -1 : STORE_VOTE_CHANGED;
out:
	strbuf_release(&trigger);
	strbuf_release(&entry);
	strbuf_release(&question);
	return rc;
}

int store_vote_unreact(struct store *s, const char *transport, const char *reaction)
{
	static const char sql[] = "DELETE FROM votes WHERE transport=?1 AND reaction=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, transport);
	bind_str(st, 2, reaction);
	if (run(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

int store_votes_each(struct store *s, int64_t since,
		     void (*fn)(void *arg, const char *entry, const char *question, const char *user,
				int value, int64_t at),
		     void *arg)
{
	static const char sql[] = "SELECT entry, question, user, value, at FROM votes WHERE at>=?1"
				  " ORDER BY at";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, since);
	int rc;
	while ((rc = step(s, st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
		   sqlite3_column_int64(st, 4));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_choice_add(struct store *s, const char *transport, const char *chat, const char *user,
		     const char *question, const char *entry, int64_t now)
{
	static const char ins[] = "INSERT INTO choices(transport, chat, user, question, entry, at)"
				  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
				  " ON CONFLICT(transport, user, entry, question) DO NOTHING";
	static const char upd[] = "UPDATE choices SET chat=?2, at=?6 WHERE transport=?1 AND user=?3"
				  " AND question=?4 AND entry=?5";
	char who[24], where[24];
	pseudonym(user, who);
	pseudonym(chat, where);
	for (int pass = 0; pass < 2; pass++) {
		sqlite3_stmt *st = stmt(s, pass ? upd : ins);
		bind_str(st, 1, transport);
		bind_str(st, 2, where);
		bind_str(st, 3, who);
		bind_str(st, 4, question);
		bind_str(st, 5, entry);
		sqlite3_bind_int64(st, 6, now);
		if (run(s, st) < 0)
			return -1;
		if (!pass && sqlite3_changes(s->db) > 0)
			return 1;
	}
	return 0;
}

int store_choices_each(struct store *s, int64_t since,
		       void (*fn)(void *arg, const char *entry, const char *question, const char *user,
				  int64_t at),
		       void *arg)
{
	static const char sql[] = "SELECT entry, question, user, at FROM choices WHERE at>=?1 ORDER BY at, id";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, since);
	int rc;
	while ((rc = step(s, st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ==== Retention ==== */

/* Gives the pages that pruning freed back to the file system, keeping
 * STORE_FREE_SLACK_PAGES free for the next rows (auto_vacuum=INCREMENTAL,
 * set at open): the file's size follows what retention keeps, and a burst of
 * traffic does not leave a large file behind once its rows are pruned. */
static int vacuum_some(struct store *s)
{
	sqlite3_stmt *st = stmt(s, "PRAGMA freelist_count");
	int rc = step(s, st);
	long long free_pages = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return -1;
	if (free_pages <= STORE_FREE_SLACK_PAGES)
		return 0;
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", free_pages - STORE_FREE_SLACK_PAGES);
	return exec(s, sql);
}

/* Each DELETE of store_retain removes at most RETAIN_BATCH rows, so one run
 * never makes a huge transaction; when one removed that many, more are left
 * and store_retain_more says so (the loop runs again soon, so retention
 * keeps pace with any traffic). */
#define RETAIN_BATCH 5000
#define RETAIN_BATCH_SQL "5000"

/* Runs a DELETE bound to one time; adds the rows it removed to *n. */
static int prune(struct store *s, const char *sql, int64_t before, int64_t now, int *n)
{
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int64(st, 2, now);
	if (run(s, st) < 0)
		return -1;
	int k = sqlite3_changes(s->db);
	if (k >= RETAIN_BATCH)
		s->retain_more = 1;
	*n += k;
	return 0;
}

int store_retain(struct store *s, int64_t now, const struct store_retention *r)
{
	static const char ledger[] =
		"DELETE FROM ledger WHERE (transport, trigger) IN (SELECT transport, trigger FROM ledger"
		" WHERE handled_at<?1 LIMIT " RETAIN_BATCH_SQL ")";
	static const char outbox[] =
		"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state>=2 AND created_at<?1"
		" LIMIT " RETAIN_BATCH_SQL ")";
	static const char recent[] =
		"DELETE FROM recent WHERE (transport, chat, entry) IN (SELECT transport, chat, entry"
		" FROM recent WHERE at<?1 LIMIT " RETAIN_BATCH_SQL ")";
	static const char chats[] =
		"DELETE FROM chats WHERE parked_until<?2 AND migrated_to IS NULL AND disabled=0"
		" AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.transport=chats.transport"
		"  AND q.chat=chats.chat) AND ?1=?1";
	static const char unanswered[] =
		"DELETE FROM unanswered WHERE id IN (SELECT id FROM unanswered WHERE at<?1"
		" LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	int n = 0;
	s->retain_more = 0;
	if (prune(s, ledger, now - r->dedup_ms, now, &n) < 0 ||
	    prune(s, outbox, now - r->dedup_ms, now, &n) < 0 ||
	    prune(s, recent, now - r->recent_ms, now, &n) < 0 ||
	    prune(s, chats, 0, now, &n) < 0)
		return -1;
	static const char answered[] =
		"DELETE FROM answered WHERE (transport, trigger) IN (SELECT transport, trigger"
		" FROM answered WHERE at<?1 LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	static const char answered_msg[] =
		"DELETE FROM answered_msg WHERE (transport, chat, message_id) IN (SELECT transport, chat, message_id"
		" FROM answered_msg WHERE at<?1 LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	static const char votes[] =
		"DELETE FROM votes WHERE (transport, trigger, user) IN (SELECT transport, trigger, user"
		" FROM votes WHERE at<?1 LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	static const char choices[] =
		"DELETE FROM choices WHERE id IN (SELECT id FROM choices WHERE at<?1"
		" LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	/* votes come soon after an answer: its record is kept a week at most */
	int64_t answered_ms = r->feedback_ms < STORE_ANSWERED_MS ? r->feedback_ms : STORE_ANSWERED_MS;
	static const char key_requests[] =
		"DELETE FROM mx_key_requests WHERE (room, session_id) IN (SELECT room, session_id"
		" FROM mx_key_requests WHERE sent_at<?1 LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	/* Olm sessions unused for a month when their peer has a newer one:
	 * each peer's latest is kept whatever its age, since a client goes on
	 * sending room keys over the session it has (one asked once a month
	 * would otherwise find the bot unable to read its key) */
	static const char olm[] =
		"DELETE FROM mx_olm WHERE (peer_key, session_id) IN (SELECT o.peer_key, o.session_id"
		" FROM mx_olm o WHERE o.used_at<?1 AND EXISTS (SELECT 1 FROM mx_olm n"
		"  WHERE n.peer_key=o.peer_key AND n.used_at>o.used_at) LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	static const char megolm_in[] =
		"DELETE FROM mx_megolm_in WHERE (room, session_id) IN (SELECT room, session_id"
		" FROM mx_megolm_in WHERE at<?1 LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	/* the last time a lost Olm session was mended, per peer device
	 * (mx_e2ee.c: at most hourly) */
	static const char olm_mend[] =
		"DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE key LIKE 'matrix.olm\\_mend.%' ESCAPE '\\'"
		" AND CAST(value AS INTEGER)<?1 LIMIT " RETAIN_BATCH_SQL ") AND ?2=?2";
	if (prune(s, olm_mend, now - r->dedup_ms, now, &n) < 0 ||
	    prune(s, key_requests, now - r->dedup_ms, now, &n) < 0 ||
	    prune(s, olm, now - STORE_MX_SESSION_MS, now, &n) < 0 ||
	    prune(s, megolm_in, now - STORE_MX_SESSION_MS, now, &n) < 0)
		return -1;
	if (prune(s, unanswered, now - r->unanswered_ms, now, &n) < 0 ||
	    prune(s, answered, now - answered_ms, now, &n) < 0 ||
	    prune(s, answered_msg, now - answered_ms, now, &n) < 0 ||
	    prune(s, votes, now - r->feedback_ms, now, &n) < 0 ||
	    prune(s, choices, now - r->feedback_ms, now, &n) < 0)
		return -1;
	return vacuum_some(s) < 0 ? -1 : n;
}

int store_retain_more(const struct store *s)
{
	return s->retain_more;
}

/* ==== Matrix end-to-end encryption ==== */

/* One text column of the first row of st (bound by the caller) into out:
 * 1 found, 0 none, -1 error. */
static int get_text(struct store *s, sqlite3_stmt *st, struct strbuf *out)
{
	int rc = step(s, st);
	if (rc == SQLITE_ROW) {
		strbuf_reset(out);
		const unsigned char *t = sqlite3_column_text(st, 0);
		strbuf_addstr(out, t ? (const char *)t : "");
		return finish(st, 1);
	}
	return finish(st, rc == SQLITE_DONE ? 0 : -1);
}

int store_mx_account_get(struct store *s, struct strbuf *user_id, struct strbuf *device_id,
			 struct strbuf *pickle)
{
	static const char sql[] = "SELECT user_id, device_id, pickle FROM mx_account WHERE id=1";
	sqlite3_stmt *st = stmt(s, sql);
	int rc = step(s, st);
	if (rc == SQLITE_ROW) {
		strbuf_reset(user_id);
		strbuf_reset(device_id);
		strbuf_reset(pickle);
		strbuf_addstr(user_id, (const char *)sqlite3_column_text(st, 0));
		strbuf_addstr(device_id, (const char *)sqlite3_column_text(st, 1));
		strbuf_addstr(pickle, (const char *)sqlite3_column_text(st, 2));
		return finish(st, 1);
	}
	return finish(st, rc == SQLITE_DONE ? 0 : -1);
}

int store_mx_account_set(struct store *s, const char *user_id, const char *device_id,
			 const char *pickle, int64_t now)
{
	static const char sql[] = "INSERT INTO mx_account(id, user_id, device_id, pickle, updated_at)"
				  " VALUES(1, ?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET"
				  " user_id=excluded.user_id, device_id=excluded.device_id,"
				  " pickle=excluded.pickle, updated_at=excluded.updated_at";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, user_id);
	bind_str(st, 2, device_id);
	bind_str(st, 3, pickle);
	sqlite3_bind_int64(st, 4, now);
	return run(s, st);
}

int store_mx_reset(struct store *s)
{
	static const char *const sql[] = {
		"DELETE FROM mx_account", "DELETE FROM mx_olm", "DELETE FROM mx_megolm_in",
		"DELETE FROM mx_megolm_out", "DELETE FROM mx_megolm_shared", "DELETE FROM mx_users",
		"DELETE FROM mx_devices", "DELETE FROM mx_waiting", "DELETE FROM mx_key_requests"
	};
	int n = 0;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (run(s, stmt(s, sql[i])) < 0)
			return -1;
		n += sqlite3_changes(s->db);
	}
	return n;
}

int store_mx_olm_each(struct store *s, const char *peer_key,
		      void (*fn)(void *arg, const char *pickle), void *arg)
{
	static const char sql[] = "SELECT pickle FROM mx_olm WHERE peer_key=?1 ORDER BY used_at DESC";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, peer_key);
	int rc, n = 0;
	while ((rc = step(s, st)) == SQLITE_ROW) {
		fn(arg, (const char *)sqlite3_column_text(st, 0));
		n++;
	}
	return finish(st, rc == SQLITE_DONE ? n : -1);
}

int store_mx_olm_set(struct store *s, const char *peer_key, const char *session_id, const char *pickle,
		     int64_t now)
{
	static const char sql[] = "INSERT INTO mx_olm(peer_key, session_id, pickle, used_at)"
				  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(peer_key, session_id) DO UPDATE SET"
				  " pickle=excluded.pickle, used_at=excluded.used_at";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, peer_key);
	bind_str(st, 2, session_id);
	bind_str(st, 3, pickle);
	sqlite3_bind_int64(st, 4, now);
	return run(s, st);
}

int store_mx_megolm_in_get(struct store *s, const char *room, const char *session_id,
			   struct strbuf *pickle)
{
	static const char sql[] = "SELECT pickle FROM mx_megolm_in WHERE room=?1 AND session_id=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	return get_text(s, st, pickle);
}

int store_mx_megolm_in_set(struct store *s, const char *room, const char *session_id,
			   const char *sender_key, const char *pickle, int64_t now)
{
	static const char sql[] = "INSERT INTO mx_megolm_in(room, session_id, sender_key, pickle, at)"
				  " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(room, session_id) DO UPDATE SET"
				  " pickle=excluded.pickle, at=excluded.at";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	bind_str(st, 3, sender_key);
	bind_str(st, 4, pickle);
	sqlite3_bind_int64(st, 5, now);
	return run(s, st);
}

int store_mx_megolm_in_trim(struct store *s, const char *room, const char *sender_key, int keep)
{
	static const char sql[] = "DELETE FROM mx_megolm_in WHERE room=?1 AND sender_key=?2 AND session_id NOT IN"
				  " (SELECT session_id FROM mx_megolm_in WHERE room=?1 AND sender_key=?2"
				  " ORDER BY at DESC, session_id LIMIT ?3)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, sender_key);
	sqlite3_bind_int(st, 3, keep);
	return run(s, st) < 0 ? -1 : sqlite3_changes(s->db);
}

int store_mx_megolm_out_get(struct store *s, const char *room, struct strbuf *pickle, int *member_left)
{
	static const char sql[] = "SELECT pickle, member_left FROM mx_megolm_out WHERE room=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	int rc = step(s, st);
	if (rc == SQLITE_ROW) {
		strbuf_reset(pickle);
		strbuf_addstr(pickle, (const char *)sqlite3_column_text(st, 0));
		*member_left = sqlite3_column_int(st, 1);
		return finish(st, 1);
	}
	return finish(st, rc == SQLITE_DONE ? 0 : -1);
}

int store_mx_megolm_out_set(struct store *s, const char *room, const char *session_id, const char *pickle,
			    int64_t now)
{
	/* a new session starts unshared, with no departure since */
	static const char del[] = "DELETE FROM mx_megolm_shared WHERE room=?1 AND session_id<>?2";
	static const char sql[] = "INSERT INTO mx_megolm_out(room, session_id, pickle, created_at)"
				  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(room) DO UPDATE SET"
				  " pickle=excluded.pickle, member_left=CASE WHEN session_id=excluded.session_id"
				  " THEN member_left ELSE 0 END, created_at=CASE WHEN"
				  " session_id=excluded.session_id THEN created_at ELSE excluded.created_at END,"
				  " session_id=excluded.session_id";
	sqlite3_stmt *st = stmt(s, del);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	if (run(s, st) < 0)
		return -1;
	st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	bind_str(st, 3, pickle);
	sqlite3_bind_int64(st, 4, now);
	return run(s, st);
}

int store_mx_megolm_out_member_left(struct store *s, const char *room)
{
	static const char sql[] = "UPDATE mx_megolm_out SET member_left=1 WHERE room=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	return run(s, st);
}

int store_mx_shared_has(struct store *s, const char *room, const char *session_id, const char *user_id,
			const char *device_id)
{
	static const char sql[] = "SELECT 1 FROM mx_megolm_shared WHERE room=?1 AND session_id=?2"
				  " AND user_id=?3 AND device_id=?4";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	bind_str(st, 3, user_id);
	bind_str(st, 4, device_id);
	int rc = step(s, st);
	return finish(st, rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1);
}

int store_mx_shared_add(struct store *s, const char *room, const char *session_id, const char *user_id,
			const char *device_id)
{
	static const char sql[] = "INSERT OR IGNORE INTO mx_megolm_shared(room, session_id, user_id, device_id)"
				  " VALUES(?1, ?2, ?3, ?4)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	bind_str(st, 3, user_id);
	bind_str(st, 4, device_id);
	return run(s, st);
}

int store_mx_devices_get(struct store *s, const char *user_id,
			 void (*fn)(void *arg, const char *device_id, const char *curve, const char *ed),
			 void *arg)
{
	static const char fresh[] = "SELECT outdated FROM mx_users WHERE user_id=?1";
	static const char sql[] = "SELECT device_id, curve_key, ed_key FROM mx_devices WHERE user_id=?1"
				  " ORDER BY device_id";
	sqlite3_stmt *st = stmt(s, fresh);
	bind_str(st, 1, user_id);
	int rc = step(s, st);
	int known = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0;
	finish(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	st = stmt(s, sql);
	bind_str(st, 1, user_id);
	while ((rc = step(s, st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		   (const char *)sqlite3_column_text(st, 2));
	return finish(st, rc == SQLITE_DONE ? known : -1);
}

int store_mx_devices_generation(struct store *s, const char *user_id, int64_t *generation)
{
	static const char sql[] = "SELECT generation FROM mx_users WHERE user_id=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, user_id);
	int rc = step(s, st);
	*generation = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	return finish(st, rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1);
}

int store_mx_devices_clear(struct store *s, const char *user_id, int64_t generation)
{
	static const char del[] = "DELETE FROM mx_devices WHERE user_id=?1";
	static const char sql[] = "INSERT INTO mx_users(user_id, outdated, generation) VALUES(?1, 0, ?2)"
				  " ON CONFLICT(user_id) DO UPDATE SET outdated=(generation <> ?2)";
	sqlite3_stmt *st = stmt(s, del);
	bind_str(st, 1, user_id);
	if (run(s, st) < 0)
		return -1;
	st = stmt(s, sql);
	bind_str(st, 1, user_id);
	sqlite3_bind_int64(st, 2, generation);
	return run(s, st);
}

int store_mx_device_add(struct store *s, const char *user_id, const char *device_id, const char *curve,
			const char *ed)
{
	static const char sql[] = "INSERT OR REPLACE INTO mx_devices(user_id, device_id, curve_key, ed_key)"
				  " VALUES(?1, ?2, ?3, ?4)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, user_id);
	bind_str(st, 2, device_id);
	bind_str(st, 3, curve);
	bind_str(st, 4, ed);
	return run(s, st);
}

int store_mx_devices_outdated(struct store *s, const char *user_id)
{
	static const char sql[] = "INSERT INTO mx_users(user_id, outdated, generation) VALUES(?1, 1, 1)"
				  " ON CONFLICT(user_id) DO UPDATE SET outdated=1, generation=generation+1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, user_id);
	return run(s, st);
}

int store_mx_room_get(struct store *s, const char *room, int64_t *rotation_ms, int64_t *rotation_msgs)
{
	static const char sql[] = "SELECT rotation_ms, rotation_msgs FROM mx_rooms WHERE room=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	int rc = step(s, st);
	if (rc == SQLITE_ROW) {
		if (rotation_ms)
			*rotation_ms = sqlite3_column_int64(st, 0);
		if (rotation_msgs)
			*rotation_msgs = sqlite3_column_int64(st, 1);
		return finish(st, 1);
	}
	return finish(st, rc == SQLITE_DONE ? 0 : -1);
}

int store_mx_room_set(struct store *s, const char *room, const char *algorithm, int64_t rotation_ms,
		      int64_t rotation_msgs)
{
	static const char sql[] = "INSERT INTO mx_rooms(room, algorithm, rotation_ms, rotation_msgs)"
				  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(room) DO UPDATE SET"
				  " algorithm=excluded.algorithm, rotation_ms=excluded.rotation_ms,"
				  " rotation_msgs=excluded.rotation_msgs";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, algorithm);
	sqlite3_bind_int64(st, 3, rotation_ms);
	sqlite3_bind_int64(st, 4, rotation_msgs);
	return run(s, st);
}

int store_mx_room_forget(struct store *s, const char *room)
{
	/* the room's encryption is a fact of the room and stays (a rejoin is
	 * still encrypted); what the bot shared there goes */
	static const char out[] = "DELETE FROM mx_megolm_out WHERE room=?1";
	static const char shared[] = "DELETE FROM mx_megolm_shared WHERE room=?1";
	static const char waiting[] = "DELETE FROM mx_waiting WHERE room=?1";
	const char *const sql[] = { out, shared, waiting };
	for (size_t i = 0; i < 3; i++) {
		sqlite3_stmt *st = stmt(s, sql[i]);
		bind_str(st, 1, room);
		if (run(s, st) < 0)
			return -1;
	}
	return 0;
}

int store_mx_waiting_add(struct store *s, const char *event_id, const char *room, const char *session_id,
			 const char *payload, int64_t now, int64_t give_up_at)
{
	static const char sql[] = "INSERT OR IGNORE INTO mx_waiting(event_id, room, session_id, payload,"
				  " received_at, give_up_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, event_id);
	bind_str(st, 2, room);
	bind_str(st, 3, session_id);
	bind_str(st, 4, payload);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, give_up_at);
	if (run(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

/* Calls fn for the rows st selects (event_id, room, payload), then deletes
 * them with del (bound to the same event ids).  Returns how many, or -1. */
static int waiting_take(struct store *s, sqlite3_stmt *st,
			int (*fn)(void *arg, const char *event_id, const char *room, const char *payload),
			void *arg)
{
	static const char del[] = "DELETE FROM mx_waiting WHERE event_id=?1";
	char **ids = NULL, **rooms = NULL, **payloads = NULL;
	size_t n = 0;
	int rc;
	while ((rc = step(s, st)) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof(*ids));
		rooms = xrealloc(rooms, (n + 1) * sizeof(*rooms));
		payloads = xrealloc(payloads, (n + 1) * sizeof(*payloads));
		ids[n] = col_str(st, 0);
		rooms[n] = col_str(st, 1);
		payloads[n] = col_str(st, 2);
		n++;
	}
	int out = finish(st, rc == SQLITE_DONE ? 0 : -1);
	for (size_t i = 0; i < n && out == 0; i++) {
		sqlite3_stmt *d = stmt(s, del);
		bind_str(d, 1, ids[i]);
		if (run(s, d) < 0 || fn(arg, ids[i], rooms[i], payloads[i]) < 0)
			out = -1;
	}
	for (size_t i = 0; i < n; i++) {
		free(ids[i]);
		free(rooms[i]);
		free(payloads[i]);
	}
	free(ids);
	free(rooms);
	free(payloads);
	return out < 0 ? -1 : (int)n;
}

int store_mx_waiting_take(struct store *s, const char *room, const char *session_id,
			  int (*fn)(void *arg, const char *event_id, const char *room, const char *payload),
			  void *arg)
{
	static const char sql[] = "SELECT event_id, room, payload FROM mx_waiting WHERE room=?1"
				  " AND session_id=?2 ORDER BY received_at LIMIT 1000";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	return waiting_take(s, st, fn, arg);
}

int store_mx_waiting_expired(struct store *s, int64_t now,
			     int (*fn)(void *arg, const char *event_id, const char *room, const char *payload),
			     void *arg)
{
	static const char sql[] = "SELECT event_id, room, payload FROM mx_waiting WHERE give_up_at<=?1"
				  " ORDER BY give_up_at LIMIT 1000";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, now);
	return waiting_take(s, st, fn, arg);
}

int store_mx_waiting_rooms(struct store *s, int64_t received_before,
			   int (*fn)(void *arg, const char *room), void *arg)
{
	static const char sql[] = "SELECT DISTINCT room FROM mx_waiting WHERE received_at<=?1 LIMIT 1000";
	sqlite3_stmt *st = stmt(s, sql);
	sqlite3_bind_int64(st, 1, received_before);
	char **rooms = NULL;
	size_t n = 0;
	int rc;
	while ((rc = step(s, st)) == SQLITE_ROW) {
		rooms = xrealloc(rooms, (n + 1) * sizeof(*rooms));
		rooms[n++] = col_str(st, 0);
	}
	int out = finish(st, rc == SQLITE_DONE ? 0 : -1);
	for (size_t i = 0; i < n; i++) {
		if (out == 0 && fn(arg, rooms[i]) < 0)
			out = -1;
		free(rooms[i]);
	}
	free(rooms);
	return out < 0 ? -1 : (int)n;
}

int64_t store_mx_waiting_room_count(struct store *s, const char *room)
{
	static const char sql[] = "SELECT count(*) FROM mx_waiting WHERE room=?1";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	int64_t n = step(s, st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

int64_t store_mx_waiting_count(struct store *s)
{
	static const char sql[] = "SELECT count(*) FROM mx_waiting";
	sqlite3_stmt *st = stmt(s, sql);
	int64_t n = step(s, st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

int store_mx_key_request_done(struct store *s, const char *room, const char *session_id)
{
	static const char sql[] = "DELETE FROM mx_key_requests WHERE room=?1 AND session_id=?2";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	if (run(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}

int store_mx_key_request_add(struct store *s, const char *room, const char *session_id, int64_t now)
{
	static const char sql[] = "INSERT OR IGNORE INTO mx_key_requests(room, session_id, sent_at)"
				  " VALUES(?1, ?2, ?3)";
	sqlite3_stmt *st = stmt(s, sql);
	bind_str(st, 1, room);
	bind_str(st, 2, session_id);
	sqlite3_bind_int64(st, 3, now);
	if (run(s, st) < 0)
		return -1;
	return sqlite3_changes(s->db) > 0;
}
