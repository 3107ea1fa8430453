/*
 * store.h - faqbot's durable state: one SQLite database in the state
 * directory (WAL, synchronous=FULL), shared by every transport.
 *
 *   kv       cursors and small facts (Telegram offset, Matrix next_batch, bot id)
 *   inbox    received updates/events, stored with the cursor in one commit
 *   ledger   triggers already handled (chat:message, event id), so a replay
 *            after a crash never answers twice
 *   outbox   replies with their exact request bytes, idempotency key and
 *            delivery state; retries resend the stored bytes
 *   chats    per chat: parked-until (429), migrated-to, disabled (403)
 *   recent   last answer of an entry per chat (the group cooldown)
 *
 * The state directory is locked (flock) for the life of the store: a second
 * faqbot on the same directory fails to open it with a clear message.  A
 * database from a newer faqbot is refused, never reset; older schemas are
 * migrated in place.
 *
 * Ownership: store_open returns a handle closed with store_close.  Strings
 * in the row structs filled by the store are owned by the row: release
 * with outbox_row_release / inbox_row_release.
 */
#ifndef FAQBOT_STORE_H
#define FAQBOT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_FILE "faqbot.db"

enum outbox_state { OUT_PENDING = 0, OUT_SENDING = 1, OUT_SENT = 2, OUT_FAILED = 3, OUT_DROPPED = 4 };

struct outbox_row {
	int64_t id;
	char *transport, *chat, *trigger;
	int part;
	char *method;      /* API method or path */
	char *body;        /* the exact request body */
	char *alt_body;    /* fallback body (plain text), or NULL */
	char *txn;         /* idempotency key, or NULL */
	char *entry;       /* FAQ entry answered, or NULL */
	int state, attempts, ambiguous, use_alt;
	int64_t next_at, created_at;
	char *result;      /* message id / event id once sent */
};

struct inbox_row {
	int64_t id;
	char *uid;
	char *payload;
	int64_t received_at;
};

struct store;

/* Opens (creating) dir/faqbot.db; -1 with a sentence naming the file. */
struct store *store_open(const char *dir, char *err, size_t errlen);
/* Opens an existing database to read it while faqbot runs (no lock, no
 * migration); NULL with a sentence when it cannot. */
struct store *store_open_reader(const char *dir, char *err, size_t errlen);
void store_close(struct store *s);
const char *store_path(const struct store *s);

int store_begin(struct store *s);
/* 1 while a transaction opened by store_begin is not yet committed. */
int store_in_transaction(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* 1 and the value in out when present, 0 when absent, -1 on error. */
int store_kv_get(struct store *s, const char *key, struct strbuf *out);
int store_kv_set(struct store *s, const char *key, const char *value);

/* 1 when added, 0 when that uid is already in the inbox, -1 on error. */
int store_inbox_add(struct store *s, const char *transport, const char *uid, const char *payload,
		    int64_t now);
/* The oldest unprocessed row: 1 found, 0 none, -1 error. */
int store_inbox_next(struct store *s, const char *transport, struct inbox_row *row);
int store_inbox_done(struct store *s, int64_t id);
void inbox_row_release(struct inbox_row *row);
/* 1 when the transport has unprocessed inbox rows. */
size_t store_inbox_pending(struct store *s, const char *transport);

int store_ledger_has(struct store *s, const char *transport, const char *trigger);
int store_ledger_add(struct store *s, const char *transport, const char *trigger, int64_t now);

/* Adds a row (state pending); returns its id or -1. */
int64_t store_outbox_add(struct store *s, const struct outbox_row *row);
/* Rows ready to send: per chat only the oldest unfinished row (parts are
 * never reordered), not parked, next_at <= now; oldest first, at most max.
 * Returns how many were written to rows. */
size_t store_outbox_due(struct store *s, const char *transport, int64_t now,
			struct outbox_row *rows, size_t max);
/* Earliest next_at (or parked-until) of any unfinished row, or -1. */
int64_t store_outbox_next_time(struct store *s, const char *transport);
int store_outbox_set(struct store *s, const struct outbox_row *row);
/* Rows left in state sending by a crash become pending again with
 * ambiguous+1; returns how many. */
int store_outbox_recover(struct store *s, const char *transport);
/* Drops every unfinished row of a chat (403); returns how many. */
int store_outbox_drop_chat(struct store *s, const char *transport, const char *chat);
/* Moves a chat's unfinished rows to new_chat, rewriting "chat_id" in bodies. */
int store_outbox_move_chat(struct store *s, const char *transport, const char *chat,
			   const char *new_chat);
size_t store_outbox_count(struct store *s, const char *transport, int state);
/* Marks the unfinished row with this idempotency key sent (a Matrix echo);
 * returns 1 when a row changed. */
int store_outbox_mark_sent(struct store *s, const char *transport, const char *txn,
			   const char *result);
/* 1 when a sent row has this result (is this event one of ours?). */
int store_outbox_has_result(struct store *s, const char *transport, const char *result);
void outbox_row_release(struct outbox_row *row);

/* Records a question the FAQ did not answer well; the chat is stored
 * hashed, never in clear. */
int store_unanswered_add(struct store *s, const char *transport, const char *chat,
			 const char *text, const char *best, double confidence, int64_t now);
/* Deletes records older than before (ms); returns how many. */
int store_unanswered_prune(struct store *s, int64_t before);
/* Calls fn for each record since `since` (ms), oldest first. */
int store_unanswered_each(struct store *s, int64_t since,
			  void (*fn)(void *arg, int64_t at, const char *transport, const char *text,
				     const char *best, double confidence),
			  void *arg);

int64_t store_chat_parked(struct store *s, const char *transport, const char *chat);
int store_chat_park(struct store *s, const char *transport, const char *chat, int64_t until);
/* 1 and the new id in out when chat migrated. */
int store_chat_migrated(struct store *s, const char *transport, const char *chat, struct strbuf *out);
int store_chat_set_migrated(struct store *s, const char *transport, const char *chat,
			    const char *to);
int store_chat_disabled(struct store *s, const char *transport, const char *chat);
int store_chat_set_disabled(struct store *s, const char *transport, const char *chat, int disabled);

/* The group cooldown: when chat got entry (and the message id, may be ""). */
int store_recent_get(struct store *s, const char *transport, const char *chat, const char *entry,
		     int64_t *at, struct strbuf *message_id);
int store_recent_set(struct store *s, const char *transport, const char *chat, const char *entry,
		     int64_t at, const char *message_id);

#endif
