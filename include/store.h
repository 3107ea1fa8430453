/*
 * store.h - faqbot's durable state: one SQLite database in the state
 * directory (WAL, synchronous=FULL), shared by every transport.
 *
 *   kv       cursors and small facts (Telegram offset, Matrix next_batch, bot id,
 *            per-room member counts and notices, forgotten when the room is left)
 *   inbox    received updates/events not yet handled, stored with the cursor
 *            in one commit; a row is deleted in the transaction that handles it
 *   ledger   triggers already handled (chat:message, event id), so a replay
 *            after a crash never answers twice
 *   outbox   replies with their exact request bytes, idempotency key and
 *            delivery state; retries resend the stored bytes
 *   queue    per chat with unfinished outbox rows: when its head row may go
 *            (the sender's index: the first sendable row is one lookup)
 *   chats    per chat: parked-until (429), migrated-to, disabled (403)
 *   recent   last answer of an entry per chat (the group cooldown)
 *   unanswered  questions answered badly, for `faqbot report` (chat hashed)
 *   answered  what each FAQ answer answered: (transport, trigger) -> entry id
 *            and the question's text, recorded with the reply
 *   answered_msg  the message ids of an answer's parts (transport, chat,
 *            message_id: Telegram's ids are per chat) -> trigger; filled by
 *            the store itself when an outbox row of a recorded answer is
 *            marked sent
 *            (store_outbox_set, store_outbox_mark_sent)
 *   votes    one row per (transport, answer trigger, user pseudonym): entry,
 *            question, the message voted on, value +1 / -1, time, and the
 *            Matrix reaction event that cast it (its redaction withdraws
 *            the vote; NULL for a Telegram button); a new
 *            vote of the same user on the same answer replaces the old one
 *            (every part of a split answer is the same answer), so 100
 *            reactions from one user count once
 *   choices  (transport, chat pseudonym, user pseudonym, question, chosen
 *            entry, time): a user picked an entry from the list the bot
 *            offered for that question; one row per user, question and entry
 *            (a repeat only refreshes the time)
 * Users and chats of votes and choices are stored as pseudonyms: 16 hex
 * digits of hash_private(id) (util.h), never the id itself.
 *
 * Matrix end-to-end encryption (mx_e2ee.h; every pickle is libolm state
 * encrypted with the pickle key, never stored in clear):
 *   mx_account     the device's Olm account (identity and one-time keys),
 *                  with the user and device it belongs to
 *   mx_olm         Olm sessions by the peer device's curve25519 key
 *   mx_megolm_in   inbound Megolm sessions (room, session id): decrypt others
 *   mx_megolm_out  the outbound Megolm session of each room (replies), with
 *                  member_left (a member left since: rotate before the next
 *                  message); mx_megolm_shared: the devices (user, device)
 *                  it was shared with
 *   mx_users, mx_devices  the device list cache: each tracked user's
 *                  devices with their curve25519 / ed25519 keys, outdated
 *                  when /sync's device_lists says they changed (generation
 *                  counts those changes: a query answer older than the
 *                  last change leaves the list outdated)
 *   mx_rooms       rooms that are encrypted (m.room.encryption: algorithm,
 *                  rotation period and message count)
 *   mx_waiting     encrypted events whose key has not arrived, stored as
 *                  inbox payloads until the key comes (then back in the
 *                  inbox) or give_up_at (recorded as lost); the room is
 *                  told once when one has waited MX_KEY_NOTICE_MS
 *   mx_key_requests  key requests sent (room, session id): one per session
 * New pickles are written in the transaction of the outcome they belong to
 * (the sync batch that carried a key, the inbox row that was decrypted);
 * an outbound session's pickle is committed before its ciphertext leaves.
 *
 * Retention (store_retain, run every minute by the loop, and the inbox as
 * said above): nothing grows with traffic beyond these windows.
 *   ledger    rows older than the de-duplication window (dedup_ms, 48 h by
 *             default): neither API redelivers an update that late (Telegram
 *             keeps updates 24 h and the offset is committed with the batch;
 *             a Matrix since token never replays older events)
 *   outbox    a finished row (sent, failed, dropped) loses its bodies at once
 *             and is deleted after the same window (Matrix uses the event ids
 *             of sent rows to see replies to the bot)
 *   recent    after a day (the longest cooldown)
 *   chats     rows that no longer say anything (not parked, migrated or
 *             disabled, nothing queued)
 *   unanswered  after unanswered_retention_days
 *   votes, choices  after feedback_retention_days (feedback_ms)
 *   mx_key_requests, kv's matrix.olm_mend.* (when a lost Olm session was
 *             last mended)  after the de-duplication window; mx_waiting rows at
 *             their give_up_at (the Matrix transport, MX_KEY_WAIT_MS);
 *             mx_megolm_in sessions unused for STORE_MX_SESSION_MS
 *             (30 days), mx_olm ones too unless the latest of their peer
 *             device (kept, it may still send over it); mx_megolm_shared rows when
 *             their room's session is replaced
 *   answered, answered_msg  after STORE_ANSWERED_MS (a week), or
 *             feedback_ms when shorter.  The outbox keeps a sent reply only
 *             48 h, so a vote is matched through answered_msg instead: a
 *             vote on an answer older than that (or one sent before faqbot
 *             recorded feedback, or a reply that was no FAQ answer) finds
 *             no row and is ignored; votes already cast stay.
 * Because handled inbox rows are gone, a reused update id (Telegram restarts
 * them after a week without updates) is a new update; the ledger, keyed by
 * chat and message id, still drops a real replay.
 *
 * Errors: every function that touches the database returns a result that
 * must be checked (STORE_MUST_CHECK).  A statement that fails inside a
 * transaction marks it: later statements in it return -1 without running
 * (SQLite may already have rolled it back, and they would commit alone),
 * and store_commit rolls back and returns -1.  Every
 * statement is reset when its function returns, so no read snapshot stays
 * open and the automatic checkpoint keeps the WAL under
 * STORE_WAL_CHECKPOINT_PAGES pages (plus at most one transaction).
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

#define STORE_SCHEMA_VERSION 5
#define STORE_FILE "faqbot.db"
#define STORE_WAL_CHECKPOINT_PAGES 1000     /* 4 MB of 4 KB pages */
#define STORE_BUSY_MS 200                   /* longest wait for another program's lock while serving */
#define STORE_DEDUP_MS (48LL * 3600 * 1000)  /* ledger and finished outbox rows */
#define STORE_RECENT_MS (24LL * 3600 * 1000) /* the longest group cooldown */
#define STORE_ANSWERED_MS (7LL * 24 * 3600 * 1000) /* answers that may still get votes */
#define STORE_MX_SESSION_MS (30LL * 24 * 3600 * 1000) /* Olm / inbound Megolm sessions unused */

/* A store result that is ignored is a lost error: the compiler refuses it. */
#define STORE_MUST_CHECK __attribute__((warn_unused_result))

struct store_retention {
	int64_t dedup_ms;       /* ledger, finished outbox rows */
	int64_t recent_ms;      /* group cooldown records */
	int64_t unanswered_ms;  /* unanswered questions */
	int64_t feedback_ms;    /* answered, answered_msg, votes, choices (0: kept none) */
};

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
/* The database's schema version (a reader may open an older one), or -1. */
int store_schema_version(struct store *s);

/* Opens a transaction: 0, or -1 (logged) when the database cannot be
 * written now (locked over the busy timeout, disk error). */
STORE_MUST_CHECK int store_begin(struct store *s);
/* 1 while a transaction opened by store_begin is not yet committed. */
int store_in_transaction(struct store *s);
/* Commits: 0; -1 when it could not, or when a statement in it failed: the
 * transaction is then rolled back (logged) and nothing of it is kept. */
STORE_MUST_CHECK int store_commit(struct store *s);
void store_rollback(struct store *s);
/* Statements still active (holding a read snapshot); 0 between calls. */
int store_active_statements(struct store *s);
/* The sqlite3 handle, for tests that inject faults (max_page_count). */
void *store_sqlite_for_tests(struct store *s);
/* Applies the retention policy above; rows deleted, or -1.  At most a
 * batch of rows per table and per call; then gives freed pages back to the
 * file system beyond STORE_FREE_SLACK_PAGES. */
STORE_MUST_CHECK int store_retain(struct store *s, int64_t now, const struct store_retention *r);
/* 1 when the last store_retain stopped at a batch's end: call it again soon. */
int store_retain_more(const struct store *s);
#define STORE_FREE_SLACK_PAGES 256 /* 1 MB of free pages kept for new rows */

/* 1 and the value in out when present, 0 when absent, -1 on error. */
STORE_MUST_CHECK int store_kv_get(struct store *s, const char *key, struct strbuf *out);
STORE_MUST_CHECK int store_kv_set(struct store *s, const char *key, const char *value);
STORE_MUST_CHECK int store_kv_del(struct store *s, const char *key);

/* 1 when added, 0 when that uid is already in the inbox, -1 on error. */
STORE_MUST_CHECK int store_inbox_add(struct store *s, const char *transport, const char *uid, const char *payload,
		    int64_t now);
/* The oldest unprocessed row: 1 found, 0 none, -1 error. */
STORE_MUST_CHECK int store_inbox_next(struct store *s, const char *transport, struct inbox_row *row);
STORE_MUST_CHECK int store_inbox_done(struct store *s, int64_t id);
void inbox_row_release(struct inbox_row *row);
/* 1 when the transport has unprocessed inbox rows, 0 none, -1 error. */
STORE_MUST_CHECK int store_inbox_pending(struct store *s, const char *transport);

STORE_MUST_CHECK int store_ledger_has(struct store *s, const char *transport, const char *trigger);
STORE_MUST_CHECK int store_ledger_add(struct store *s, const char *transport, const char *trigger, int64_t now);

/* Adds a row (state pending); returns its id, 0 when that trigger and
 * part are already queued (a replay: the first row stands), or -1. */
STORE_MUST_CHECK int64_t store_outbox_add(struct store *s, const struct outbox_row *row);
/* Rows ready to send: per chat only the oldest unfinished row (parts are
 * never reordered), not parked, not deferred, next_at <= now; earliest due
 * first, at most max.  One index range, whatever the queue's length.
 * Returns how many were written to rows (0 on error, logged). */
STORE_MUST_CHECK size_t store_outbox_due(struct store *s, const char *transport, int64_t now,
			struct outbox_row *rows, size_t max);
/* Chat may not send before until (the bot's own rate limit): its head
 * row is skipped by store_outbox_due until then. */
STORE_MUST_CHECK int store_outbox_defer_chat(struct store *s, const char *transport, const char *chat,
					     int64_t until);
/* Earliest time a chat's head row may go, or -1 (none, or error). */
STORE_MUST_CHECK int64_t store_outbox_next_time(struct store *s, const char *transport);
STORE_MUST_CHECK int store_outbox_set(struct store *s, const struct outbox_row *row);
/* Rows left in state sending by a crash become pending again with
 * ambiguous+1; returns how many. */
STORE_MUST_CHECK int store_outbox_recover(struct store *s, const char *transport);
/* Drops every unfinished row of a chat (403); returns how many. */
STORE_MUST_CHECK int store_outbox_drop_chat(struct store *s, const char *transport, const char *chat);
/* The request bytes of body addressed to new_chat instead (the transport
 * knows its format); a new string the caller frees. */
typedef char *(*store_rewrite_fn)(const char *body, const char *new_chat);
/* Moves a chat's unfinished rows to new_chat, their bodies passed through
 * rewrite (NULL: kept as they are). */
STORE_MUST_CHECK int store_outbox_move_chat(struct store *s, const char *transport, const char *chat,
			   const char *new_chat, store_rewrite_fn rewrite);
/* Rows in that state, or -1. */
STORE_MUST_CHECK int64_t store_outbox_count(struct store *s, const char *transport, int state);
/* Marks the unfinished row with this idempotency key sent (a Matrix echo);
 * returns 1 when a row changed. */
STORE_MUST_CHECK int store_outbox_mark_sent(struct store *s, const char *transport, const char *txn,
			   const char *result);
/* 1 when a sent row has this result (is this event one of ours?), 0, -1. */
STORE_MUST_CHECK int store_outbox_has_result(struct store *s, const char *transport, const char *result);
void outbox_row_release(struct outbox_row *row);

/* Records a question the FAQ did not answer well; the chat is stored
 * hashed, never in clear. */
STORE_MUST_CHECK int store_unanswered_add(struct store *s, const char *transport, const char *chat,
			 const char *text, const char *best, double confidence, int64_t now);
/* Calls fn for each record since `since` (ms), oldest first. */
STORE_MUST_CHECK int store_unanswered_each(struct store *s, int64_t since,
			  void (*fn)(void *arg, int64_t at, const char *transport, const char *text,
				     const char *best, double confidence),
			  void *arg);

/* ==== Feedback (votes and choices; see the tables above) ==== */

/* Records that the reply to trigger answered question with entry; a second
 * call for the same trigger (a replay) keeps the first.  Call it in the
 * transaction that adds the reply's outbox rows, with the same trigger. */
STORE_MUST_CHECK int store_answered_add(struct store *s, const char *transport, const char *trigger,
					const char *entry, const char *question, int64_t now);
/* Links message_id (one sent part) to the recorded answer of trigger;
 * nothing when trigger answered no FAQ question.  The store calls it when
 * an outbox row turns sent; a transport that learns a message id another
 * way may call it too. */
STORE_MUST_CHECK int store_answered_sent(struct store *s, const char *transport, const char *chat,
					 const char *trigger, const char *message_id);
/* 1 and the answer's trigger, entry and question (each may be NULL) when
 * message_id in chat is a part of a recorded answer; 0 when not (or too
 * old), -1.  chat and message_id as the outbox has them (row chat, result). */
STORE_MUST_CHECK int store_answered_get(struct store *s, const char *transport, const char *chat,
					const char *message_id, struct strbuf *trigger, struct strbuf *entry,
					struct strbuf *question);

#define STORE_VOTE_UNKNOWN 0  /* not a recorded answer: ignored */
#define STORE_VOTE_SAME 1     /* that user's vote on that answer was already this */
#define STORE_VOTE_CHANGED 2  /* recorded (new, changed or withdrawn) */
/* user (a raw id, stored as its pseudonym) votes value on the answer whose
 * part message_id in chat is: +1, -1, or 0 to withdraw the vote.
 * reaction: the id of the event that cast it (Matrix), or NULL.  Returns
 * one of the STORE_VOTE_* above, or -1. */
STORE_MUST_CHECK int store_vote_set(struct store *s, const char *transport, const char *chat,
				    const char *message_id, const char *user, int value,
				    const char *reaction, int64_t now);
/* The reaction event that cast a vote was redacted: the vote is withdrawn.
 * 1 when a vote went, 0 when that event cast none (or a later one
 * replaced it), -1. */
STORE_MUST_CHECK int store_vote_unreact(struct store *s, const char *transport, const char *reaction);
/* Calls fn for each vote since `since` (ms), oldest first. */
STORE_MUST_CHECK int store_votes_each(struct store *s, int64_t since,
				      void (*fn)(void *arg, const char *entry, const char *question,
						 const char *user, int value, int64_t at),
				      void *arg);
/* Records that user (raw id) in chat (raw id) chose entry from the list
 * offered for question: 1 when new, 0 when that user already made that
 * choice for that question (its time is refreshed), -1. */
STORE_MUST_CHECK int store_choice_add(struct store *s, const char *transport, const char *chat,
				      const char *user, const char *question, const char *entry,
				      int64_t now);
/* Calls fn for each choice since `since` (ms), oldest first. */
STORE_MUST_CHECK int store_choices_each(struct store *s, int64_t since,
					void (*fn)(void *arg, const char *entry, const char *question,
						   const char *user, int64_t at),
					void *arg);

/* ==== Matrix end-to-end encryption (the mx_* tables above) ==== */

/* 1 and the account's user, device and pickle; 0 when none; -1. */
STORE_MUST_CHECK int store_mx_account_get(struct store *s, struct strbuf *user_id, struct strbuf *device_id,
					  struct strbuf *pickle);
STORE_MUST_CHECK int store_mx_account_set(struct store *s, const char *user_id, const char *device_id,
					  const char *pickle, int64_t now);
/* Deletes every mx_* row but mx_rooms (a new device starts afresh);
 * rows deleted, or -1. */
STORE_MUST_CHECK int store_mx_reset(struct store *s);
/* Calls fn with the pickle of each Olm session with peer_key, the most
 * recently used first; how many, or -1. */
STORE_MUST_CHECK int store_mx_olm_each(struct store *s, const char *peer_key,
				       void (*fn)(void *arg, const char *pickle), void *arg);
STORE_MUST_CHECK int store_mx_olm_set(struct store *s, const char *peer_key, const char *session_id,
				      const char *pickle, int64_t now);
/* 1 and the pickle, 0 none, -1. */
STORE_MUST_CHECK int store_mx_megolm_in_get(struct store *s, const char *room, const char *session_id,
					    struct strbuf *pickle);
STORE_MUST_CHECK int store_mx_megolm_in_set(struct store *s, const char *room, const char *session_id,
					    const char *sender_key, const char *pickle, int64_t now);
/* Keeps the keep most recently used inbound sessions of (room, sender_key)
 * and deletes the others: how many, or -1. */
STORE_MUST_CHECK int store_mx_megolm_in_trim(struct store *s, const char *room, const char *sender_key,
					     int keep);
/* 1 with the room's outbound session and whether a member left since it
 * was made, 0 none, -1. */
STORE_MUST_CHECK int store_mx_megolm_out_get(struct store *s, const char *room, struct strbuf *pickle,
					     int *member_left);
/* Stores the room's outbound session; a new session_id forgets whom the
 * previous one was shared with and the member_left mark. */
STORE_MUST_CHECK int store_mx_megolm_out_set(struct store *s, const char *room, const char *session_id,
					     const char *pickle, int64_t now);
STORE_MUST_CHECK int store_mx_megolm_out_member_left(struct store *s, const char *room);
/* 1 when session_id of room was shared with that device, 0, -1. */
STORE_MUST_CHECK int store_mx_shared_has(struct store *s, const char *room, const char *session_id,
					 const char *user_id, const char *device_id);
STORE_MUST_CHECK int store_mx_shared_add(struct store *s, const char *room, const char *session_id,
					 const char *user_id, const char *device_id);
/* fn for each cached device of user_id; 1 when the list is fresh, 0 when
 * it must be queried (unknown or outdated: fn saw the last answer's
 * devices, if any); -1. */
STORE_MUST_CHECK int store_mx_devices_get(struct store *s, const char *user_id,
					  void (*fn)(void *arg, const char *device_id, const char *curve,
						     const char *ed),
					  void *arg);
/* user_id's device list generation (0 when never outdated), bumped by
 * each store_mx_devices_outdated: read before a /keys/query is sent.
 * 0 or -1. */
STORE_MUST_CHECK int store_mx_devices_generation(struct store *s, const char *user_id, int64_t *generation);
/* A fresh device list for user_id follows (store_mx_device_add each),
 * answered to a query sent at generation: the list stays outdated when a
 * change was synced since (a device the answer may not have). */
STORE_MUST_CHECK int store_mx_devices_clear(struct store *s, const char *user_id, int64_t generation);
STORE_MUST_CHECK int store_mx_device_add(struct store *s, const char *user_id, const char *device_id,
					 const char *curve, const char *ed);
/* device_lists.changed / left: query the user's devices again before use. */
STORE_MUST_CHECK int store_mx_devices_outdated(struct store *s, const char *user_id);
/* 1 when room is encrypted (with its rotation settings), 0 not, -1. */
STORE_MUST_CHECK int store_mx_room_get(struct store *s, const char *room, int64_t *rotation_ms,
				       int64_t *rotation_msgs);
STORE_MUST_CHECK int store_mx_room_set(struct store *s, const char *room, const char *algorithm,
				       int64_t rotation_ms, int64_t rotation_msgs);
/* The bot left room: its outbound session and waiting events go. */
STORE_MUST_CHECK int store_mx_room_forget(struct store *s, const char *room);
/* Keeps an encrypted event (payload: its inbox payload) until its key
 * comes or give_up_at; 1 added, 0 already waiting, -1. */
STORE_MUST_CHECK int store_mx_waiting_add(struct store *s, const char *event_id, const char *room,
					  const char *session_id, const char *payload, int64_t now,
					  int64_t give_up_at);
/* Deletes the events waiting for (room, session_id), calling fn with each
 * (fn returns 0, or -1 to refuse the transaction); how many, or -1. */
STORE_MUST_CHECK int store_mx_waiting_take(struct store *s, const char *room, const char *session_id,
					   int (*fn)(void *arg, const char *event_id, const char *room,
						     const char *payload),
					   void *arg);
/* The same for the events whose give_up_at has come. */
STORE_MUST_CHECK int store_mx_waiting_expired(struct store *s, int64_t now,
					      int (*fn)(void *arg, const char *event_id, const char *room,
							const char *payload),
					      void *arg);
/* Calls fn with each room that has an event waiting since received_before
 * or earlier (fn: 0, or -1 to refuse the transaction); how many, or -1. */
STORE_MUST_CHECK int store_mx_waiting_rooms(struct store *s, int64_t received_before,
					    int (*fn)(void *arg, const char *room), void *arg);
/* Events waiting for a key, or -1. */
STORE_MUST_CHECK int64_t store_mx_waiting_count(struct store *s);
/* Events of room waiting for a key, or -1. */
STORE_MUST_CHECK int64_t store_mx_waiting_room_count(struct store *s, const char *room);
/* Forgets the key request for (room, session_id) once its key came: 1 when
 * there was one (its cancellation is due), 0 not, -1. */
STORE_MUST_CHECK int store_mx_key_request_done(struct store *s, const char *room, const char *session_id);
/* Records a key request for (room, session_id): 1 new, 0 already sent, -1. */
STORE_MUST_CHECK int store_mx_key_request_add(struct store *s, const char *room, const char *session_id,
					      int64_t now);

STORE_MUST_CHECK int64_t store_chat_parked(struct store *s, const char *transport, const char *chat);
STORE_MUST_CHECK int store_chat_park(struct store *s, const char *transport, const char *chat, int64_t until);
/* 1 and the new id in out when chat migrated. */
STORE_MUST_CHECK int store_chat_migrated(struct store *s, const char *transport, const char *chat, struct strbuf *out);
STORE_MUST_CHECK int store_chat_set_migrated(struct store *s, const char *transport, const char *chat,
			    const char *to);
STORE_MUST_CHECK int store_chat_disabled(struct store *s, const char *transport, const char *chat);
STORE_MUST_CHECK int store_chat_set_disabled(struct store *s, const char *transport, const char *chat, int disabled);

/* The group cooldown: when chat got entry (and the message id, may be ""). */
STORE_MUST_CHECK int store_recent_get(struct store *s, const char *transport, const char *chat, const char *entry,
		     int64_t *at, struct strbuf *message_id);
STORE_MUST_CHECK int store_recent_set(struct store *s, const char *transport, const char *chat, const char *entry,
		     int64_t at, const char *message_id);

#endif
