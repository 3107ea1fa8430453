/* Unit tests for the Matrix transport's encryption glue (src/mx_e2ee.c):
 * the account kept in the store under the pickle key, rooms marked
 * encrypted, and an encrypted message that arrives before its room key:
 * kept waiting with one key request, back in the inbox when the key comes
 * over Olm, then decrypted.  The other side is a peer made with mx_crypto
 * directly; no network (the upload's request is captured, never sent). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "mx_crypto.h"
#include "mx_e2ee.h"
#include "store.h"

#include "store_fixture.h"

#define BOT "@faqbot:localhost"
#define ALICE "@alice:localhost"
#define ROOM "!r:localhost"
static const char key[] = "unit-pickle-key";

static json_t *uploaded;   /* the last /keys/upload body */

static int capture(void *arg, const char *method, const char *path, const char *body, http_done_fn done,
		   void *cb_arg)
{
	(void)arg;
	(void)done;
	(void)cb_arg;
	assert_string_equal(method, "POST");
	assert_string_equal(path, "/_matrix/client/v3/keys/upload");
	json_decref(uploaded);
	uploaded = json_loads(body, 0, NULL);
	return 0;
}

static struct mx_e2ee *bot_new(struct store *st, const char *pickle_key)
{
	char err[512];
	struct mx_e2ee *e = mx_e2ee_new(st, pickle_key, strlen(pickle_key), 1, capture, NULL);
	assert_int_equal(mx_e2ee_load(e, BOT, "BOTDEV", err, sizeof(err)), 0);
	return e;
}

static void account_is_kept_and_needs_its_key(void **state)
{
	struct store *st = *state;
	struct mx_e2ee *e = bot_new(st, key);
	assert_true(mx_e2ee_ready(e));
	assert_true(mx_e2ee_needs_upload(e));
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	const char *curve = json_string_value(json_object_get(json_object_get(json_object_get(uploaded,
						"device_keys"), "keys"), "curve25519:BOTDEV"));
	assert_non_null(curve);
	assert_int_equal(json_object_size(json_object_get(uploaded, "one_time_keys")), 50);
	assert_int_equal(json_object_size(json_object_get(uploaded, "fallback_keys")), 1);
	char *first = strdup(curve);
	mx_e2ee_free(e);
	/* a restart: the same identity from the store */
	e = bot_new(st, key);
	assert_int_equal(mx_e2ee_upload(e, 0, NULL, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(uploaded,
				"device_keys"), "keys"), "curve25519:BOTDEV")), first);
	mx_e2ee_free(e);
	/* another pickle key: refused with what to do, nothing overwritten */
	char err[512];
	e = mx_e2ee_new(st, "wrong", 5, 1, capture, NULL);
	assert_int_equal(mx_e2ee_load(e, BOT, "BOTDEV", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "matrix_pickle_key"));
	assert_non_null(strstr(err, "matrix-reset"));
	assert_null(strstr(err, key));
	assert_false(mx_e2ee_ready(e));
	mx_e2ee_free(e);
	e = bot_new(st, key);
	mx_e2ee_free(e);
	free(first);
}

static void rooms_turn_encrypted(void **state)
{
	struct store *st = *state;
	struct mx_e2ee *e = mx_e2ee_new(st, key, strlen(key), 0, capture, NULL); /* encryption off */
	json_t *enc = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:i}}", "type", "m.room.encryption",
				"state_key", "", "sender", ALICE, "event_id", "$s", "content", "algorithm",
				MX_ALG_MEGOLM, "rotation_period_msgs", 5);
	json_t *msg = json_pack("{s:s, s:s, s:s, s:{s:s}}", "type", "m.room.encrypted", "sender", ALICE,
				"event_id", "$m", "content", "algorithm", MX_ALG_MEGOLM);
	assert_int_equal(mx_e2ee_room_encrypted(e, ROOM), 0);
	assert_int_equal(mx_e2ee_room_event(e, ROOM, enc, BOT), 1);   /* turned encrypted now */
	assert_int_equal(mx_e2ee_room_event(e, ROOM, enc, BOT), 0);   /* already */
	assert_int_equal(mx_e2ee_room_encrypted(e, ROOM), 1);
	int64_t ms = 0, msgs = 0;
	assert_int_equal(store_mx_room_get(st, ROOM, &ms, &msgs), 1);
	assert_int_equal(msgs, 5);
	assert_int_equal(ms, MX_ROTATION_MS_DEFAULT);
	/* an encrypted message alone says so too (its state event was missed) */
	assert_int_equal(mx_e2ee_room_event(e, "!other:localhost", msg, BOT), 1);
	assert_int_equal(mx_e2ee_room_encrypted(e, "!other:localhost"), 1);
	/* encryption off: nothing is decrypted */
	json_t *out = NULL;
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, msg, "{}", &out, 1), MX_E2EE_OFF);
	assert_null(out);
	json_decref(enc);
	json_decref(msg);
	mx_e2ee_free(e);
}

/* The first one-time key of the captured upload body, as /keys/claim
 * gives it: {"signed_curve25519:ID": {...}} (a new reference). */
static json_t *claimed_key(void)
{
	const char *id;
	json_t *k;
	json_object_foreach(json_object_get(uploaded, "one_time_keys"), id, k) {
		json_t *one = json_object();
		json_object_set(one, id, k);
		return one;
	}
	return NULL;
}

static void message_waits_for_its_key_then_decrypts(void **state)
{
	struct store *st = *state;
	char err[512];
	struct mx_e2ee *e = bot_new(st, key);
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	json_t *dk = json_object_get(uploaded, "device_keys");
	const char *bot_curve, *bot_ed;
	assert_int_equal(mx_device_keys_check(dk, BOT, "BOTDEV", &bot_curve, &bot_ed, err, sizeof(err)), 0);
	/* alice: her account, her room session, a question encrypted with it */
	struct mx_account *alice = mx_account_new(ALICE, "ALICEDEV", err, sizeof(err));
	struct mx_megolm_out *out = mx_megolm_out_new(ROOM, 1, err, sizeof(err));
	json_t *rk = mx_megolm_out_room_key(out, err, sizeof(err)); /* from message 0 on */
	json_t *q = json_pack("{s:s, s:s}", "msgtype", "m.text", "body", "combien ça coûte ?");
	json_t *qc = mx_megolm_out_encrypt(out, alice, "m.room.message", q, err, sizeof(err));
	assert_non_null(qc);
	json_t *ev = json_pack("{s:s, s:s, s:s, s:i, s:O}", "type", "m.room.encrypted", "event_id", "$q1",
			       "sender", ALICE, "origin_server_ts", 1234, "content", qc);
	json_t *payload = json_pack("{s:s, s:s, s:O, s:i}", "kind", "event", "room", ROOM, "event", ev,
				    "members", 2);
	char *p = json_dumps(payload, JSON_COMPACT);
	/* the bot gets the question first: it waits, and asks for the key once */
	json_t *plain = NULL;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, ev, p, &plain, 100), MX_WAITING);
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, ev, p, &plain, 101), MX_WAITING);
	assert_int_equal(store_commit(st), 0);
	assert_null(plain);
	assert_int_equal(store_mx_waiting_count(st), 1);
	assert_int_equal(store_outbox_count(st, "matrix", OUT_PENDING), 1);
	struct outbox_row rows[2];
	assert_int_equal(store_outbox_due(st, "matrix", 200, rows, 2), 1);
	assert_string_equal(rows[0].method, "m.room_key_request");
	json_t *kr = json_loads(rows[0].body, 0, NULL);
	json_t *req = json_object_get(json_object_get(json_object_get(kr, "messages"), ALICE), "*");
	assert_string_equal(json_string_value(json_object_get(req, "action")), "request");
	assert_string_equal(json_string_value(json_object_get(req, "requesting_device_id")), "BOTDEV");
	char request_id[64];
	snprintf(request_id, sizeof(request_id), "%s", json_string_value(json_object_get(req, "request_id")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(req, "body"), "session_id")),
			    mx_megolm_out_session_id(out));
	json_decref(kr);
	outbox_row_release(&rows[0]);
	/* then the room key, over Olm: the question goes back to the inbox */
	json_t *otk = claimed_key();
	struct mx_olm_session *olm = mx_olm_session_new_outbound(alice, BOT, "BOTDEV", bot_curve, bot_ed, otk,
								 err, sizeof(err));
	assert_non_null(olm);
	json_t *td = mx_olm_encrypt(alice, olm, BOT, bot_ed, "m.room_key", rk, err, sizeof(err));
	assert_non_null(td);
	json_t *batch = json_pack("{s:{s:[{s:s, s:s, s:O}]}, s:{s:i}}", "to_device", "events", "type",
				  "m.room.encrypted", "sender", ALICE, "content", td,
				  "device_one_time_keys_count", "signed_curve25519", 49);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 300), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_mx_waiting_count(st), 0);
	/* the key came: the request is cancelled, with the same request id */
	assert_int_equal(store_outbox_count(st, "matrix", OUT_PENDING), 2);
	assert_int_equal(store_outbox_due(st, "matrix", 400, rows, 2), 1); /* one queue: in order */
	rows[0].state = OUT_SENT;
	assert_int_equal(store_outbox_set(st, &rows[0]), 0);
	outbox_row_release(&rows[0]);
	assert_int_equal(store_outbox_due(st, "matrix", 400, rows, 2), 1);
	kr = json_loads(rows[0].body, 0, NULL);
	json_t *cancel = json_object_get(json_object_get(json_object_get(kr, "messages"), ALICE), "*");
	assert_string_equal(json_string_value(json_object_get(cancel, "action")), "request_cancellation");
	assert_string_equal(json_string_value(json_object_get(cancel, "request_id")), request_id);
	json_decref(kr);
	outbox_row_release(&rows[0]);
	struct inbox_row in;
	assert_int_equal(store_inbox_next(st, "matrix", &in), 1);
	assert_string_equal(in.uid, "$q1");
	assert_string_equal(in.payload, p);
	inbox_row_release(&in);
	/* decrypted: the plain event keeps its id, sender and time */
	mx_e2ee_free(e);
	e = bot_new(st, key); /* from the store alone */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, ev, p, &plain, 400), MX_DECRYPTED);
	assert_int_equal(store_commit(st), 0);
	assert_string_equal(json_string_value(json_object_get(plain, "type")), "m.room.message");
	assert_string_equal(json_string_value(json_object_get(plain, "event_id")), "$q1");
	assert_string_equal(json_string_value(json_object_get(plain, "sender")), ALICE);
	assert_int_equal(json_integer_value(json_object_get(plain, "origin_server_ts")), 1234);
	assert_string_equal(json_string_value(json_object_get(json_object_get(plain, "content"), "body")),
			    "combien ça coûte ?");
	json_decref(plain);
	/* the same ciphertext under another event id is a replay: refused */
	json_t *replay = json_deep_copy(ev);
	json_object_set_new(replay, "event_id", json_string("$q2"));
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, replay, p, &plain, 500), MX_UNDECRYPTABLE);
	/* bad ciphertext: refused, never a crash */
	json_object_set_new(json_object_get(replay, "content"), "ciphertext", json_string("!!not base64!!"));
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, replay, p, &plain, 500), MX_UNDECRYPTABLE);
	assert_int_equal(store_commit(st), 0);
	assert_null(plain);
	json_decref(replay);
	json_decref(batch);
	json_decref(td);
	json_decref(rk);
	mx_olm_session_free(olm);
	json_decref(otk);
	free(p);
	json_decref(payload);
	json_decref(ev);
	json_decref(qc);
	json_decref(q);
	mx_megolm_out_free(out);
	mx_account_free(alice);
	mx_e2ee_free(e);
}

/* A sync batch that carried a pre-key message (alice's first Olm message,
 * on one of the bot's one-time keys) and then failed to commit: the same
 * batch, fetched again, still decrypts (the rolled-back step spent the
 * one-time key in memory only). */
static void pre_key_message_decrypts_after_a_rolled_back_batch(void **state)
{
	struct store *st = *state;
	char err[512];
	struct mx_e2ee *e = bot_new(st, key);
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	const char *bot_curve, *bot_ed;
	assert_int_equal(mx_device_keys_check(json_object_get(uploaded, "device_keys"), BOT, "BOTDEV",
					      &bot_curve, &bot_ed, err, sizeof(err)), 0);
	struct mx_account *alice = mx_account_new(ALICE, "ALICEDEV", err, sizeof(err));
	struct mx_megolm_out *out = mx_megolm_out_new(ROOM, 1, err, sizeof(err));
	json_t *rk = mx_megolm_out_room_key(out, err, sizeof(err));
	json_t *otk = claimed_key();
	struct mx_olm_session *olm = mx_olm_session_new_outbound(alice, BOT, "BOTDEV", bot_curve, bot_ed, otk,
								 err, sizeof(err));
	assert_non_null(olm);
	json_t *td = mx_olm_encrypt(alice, olm, BOT, bot_ed, "m.room_key", rk, err, sizeof(err));
	assert_non_null(td);
	json_t *batch = json_pack("{s:{s:[{s:s, s:s, s:O}]}}", "to_device", "events", "type",
				  "m.room.encrypted", "sender", ALICE, "content", td);
	struct strbuf p = STRBUF_INIT;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 300), 0);
	assert_int_equal(store_mx_megolm_in_get(st, ROOM, mx_megolm_out_session_id(out), &p), 1);
	store_rollback(st); /* another write of the batch failed */
	assert_int_equal(store_mx_megolm_in_get(st, ROOM, mx_megolm_out_session_id(out), &p), 0);
	/* the batch again */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 400), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_mx_megolm_in_get(st, ROOM, mx_megolm_out_session_id(out), &p), 1);
	strbuf_release(&p);
	json_decref(batch);
	json_decref(td);
	json_decref(rk);
	json_decref(otk);
	mx_olm_session_free(olm);
	mx_megolm_out_free(out);
	mx_account_free(alice);
	mx_e2ee_free(e);
}

/* Encrypted messages under made-up sessions: each waits (with one key
 * request) up to 1000 in a room, past that it is given up; the key
 * requests have their own queue, so a reply to the room is not held up
 * behind them. */
static void key_requests_do_not_hold_up_replies(void **state)
{
	struct store *st = *state;
	struct mx_e2ee *e = bot_new(st, key);
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	json_t *plain = NULL;
	assert_int_equal(store_begin(st), 0);
	for (int i = 0; i <= 1000; i++) {
		char sid[32], id[32];
		snprintf(sid, sizeof(sid), "made-up-%d", i);
		snprintf(id, sizeof(id), "$f%d", i);
		json_t *ev = json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:s, s:s, s:s, s:s}}", "type",
				       "m.room.encrypted", "event_id", id, "sender", ALICE, "origin_server_ts", 1,
				       "content", "algorithm", MX_ALG_MEGOLM, "ciphertext", "AAAA", "session_id", sid,
				       "sender_key", "x", "device_id", "ALICEDEV");
		assert_int_equal(mx_e2ee_decrypt(e, ROOM, ev, "{}", &plain, 100),
				 i < 1000 ? MX_WAITING : MX_UNDECRYPTABLE);
		json_decref(ev);
	}
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_mx_waiting_count(st), 1000);
	/* a reply to the room, queued after the 1000 key requests */
	struct outbox_row row = { 0 };
	row.transport = "matrix";
	row.chat = ROOM;
	row.trigger = "e:$real";
	row.method = "m.room.message";
	row.body = "{}";
	row.txn = "t1";
	row.created_at = row.next_at = 200;
	assert_true(store_outbox_add(st, &row) > 0);
	struct outbox_row due[4];
	int n = store_outbox_due(st, "matrix", 300, due, 4);
	int reply_due = 0;
	for (int i = 0; i < n; i++) {
		reply_due |= !strcmp(due[i].method, "m.room.message") && !strcmp(due[i].chat, ROOM);
		outbox_row_release(&due[i]);
	}
	assert_true(reply_due);
	mx_e2ee_free(e);
}

/* A device that shares more than 100 sessions in one room (made-up keys):
 * only the 100 most recently used of that device and room are kept. */
static void room_keys_are_capped_per_sender_device(void **state)
{
	struct store *st = *state;
	char err[512];
	struct mx_e2ee *e = bot_new(st, key);
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	const char *bot_curve, *bot_ed;
	assert_int_equal(mx_device_keys_check(json_object_get(uploaded, "device_keys"), BOT, "BOTDEV",
					      &bot_curve, &bot_ed, err, sizeof(err)), 0);
	struct mx_account *alice = mx_account_new(ALICE, "ALICEDEV", err, sizeof(err));
	json_t *otk = claimed_key();
	struct mx_olm_session *olm = mx_olm_session_new_outbound(alice, BOT, "BOTDEV", bot_curve, bot_ed, otk,
								 err, sizeof(err));
	assert_non_null(olm);
	json_t *events = json_array();
	for (int i = 0; i < 101; i++) {
		struct mx_megolm_out *out = mx_megolm_out_new(ROOM, 1, err, sizeof(err));
		json_t *rk = mx_megolm_out_room_key(out, err, sizeof(err));
		json_t *td = mx_olm_encrypt(alice, olm, BOT, bot_ed, "m.room_key", rk, err, sizeof(err));
		assert_non_null(td);
		json_array_append_new(events, json_pack("{s:s, s:s, s:o}", "type", "m.room.encrypted", "sender",
							ALICE, "content", td));
		json_decref(rk);
		mx_megolm_out_free(out);
	}
	json_t *batch = json_pack("{s:{s:o}}", "to_device", "events", events);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 300), 0);
	assert_int_equal(store_commit(st), 0);
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_prepare_v2(store_sqlite_for_tests(st), "SELECT count(*) FROM mx_megolm_in",
					    -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(q, 0), 100);
	sqlite3_finalize(q);
	json_decref(batch);
	json_decref(otk);
	mx_olm_session_free(olm);
	mx_account_free(alice);
	mx_e2ee_free(e);
}

/* The device is replaced (another device id: new keys, the encryption
 * state reset): an event that still waited for its key is recorded as
 * given up, not silently deleted. */
static void reset_records_waiting_events_as_given_up(void **state)
{
	struct store *st = *state;
	char err[512];
	struct mx_e2ee *e = bot_new(st, key);
	json_t *ev = json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:s, s:s, s:s, s:s}}", "type", "m.room.encrypted",
			       "event_id", "$w1", "sender", ALICE, "origin_server_ts", 1, "content", "algorithm",
			       MX_ALG_MEGOLM, "ciphertext", "AAAA", "session_id", "never-shared", "sender_key", "x",
			       "device_id", "ALICEDEV");
	json_t *plain = NULL;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_decrypt(e, ROOM, ev, "{}", &plain, 100), MX_WAITING);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_mx_waiting_count(st), 1);
	assert_int_equal(store_ledger_has(st, "matrix", "e:$w1"), 0);
	assert_int_equal(mx_e2ee_load(e, BOT, "NEWDEV", err, sizeof(err)), 0);
	assert_int_equal(store_mx_waiting_count(st), 0);
	assert_int_equal(store_ledger_has(st, "matrix", "e:$w1"), 1);
	json_decref(ev);
	mx_e2ee_free(e);
}

/* A scripted homeserver: the request in flight, answered by the test. */
static struct {
	char method[8], path[600];
	json_t *body;
	http_done_fn done;
	void *cb_arg;
	int n;
} req;

static int record(void *arg, const char *method, const char *path, const char *body, http_done_fn done,
		  void *cb_arg)
{
	(void)arg;
	if (!strcmp(path, "/_matrix/client/v3/keys/upload")) {
		json_decref(uploaded);
		uploaded = json_loads(body, 0, NULL);
		return 0;
	}
	snprintf(req.method, sizeof(req.method), "%s", method);
	snprintf(req.path, sizeof(req.path), "%s", path);
	json_decref(req.body);
	req.body = body ? json_loads(body, 0, NULL) : NULL;
	req.done = done;
	req.cb_arg = cb_arg;
	req.n++;
	return 0;
}

/* Answers the request in flight with status and body (a JSON text). */
static void answer_req(long status, const char *body)
{
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.status = status;
	r.retry_after_s = -1;
	struct strbuf b = STRBUF_INIT;
	assert_int_equal(strbuf_addstr(&b, body), 0);
	r.body = b;
	http_done_fn done = req.done;
	req.done = NULL;
	done(req.cb_arg, &r);
	strbuf_release(&r.body);
}

static struct http_response sent;
static int sent_n;

static void row_done(void *arg, struct http_response *r)
{
	(void)arg;
	sent.status = r->status;
	sent_n++;
}

static void count_olm(void *arg, const char *pickle)
{
	(void)pickle;
	(*(int *)arg)++;
}

static void lost_olm_session_is_mended(void **state)
{
	struct store *st = *state;
	char err[512];
	struct mx_e2ee *e = mx_e2ee_new(st, key, strlen(key), 1, record, NULL);
	assert_int_equal(mx_e2ee_load(e, BOT, "BOTDEV", err, sizeof(err)), 0);
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	const char *bot_curve, *bot_ed;
	assert_int_equal(mx_device_keys_check(json_object_get(uploaded, "device_keys"), BOT, "BOTDEV", &bot_curve,
					      &bot_ed, err, sizeof(err)), 0);
	/* alice's device, known from an earlier /keys/query, with one-time keys */
	struct mx_account *alice = mx_account_new(ALICE, "ALICEDEV", err, sizeof(err));
	json_t *up = mx_account_keys_upload_body(alice, 1, 0, err, sizeof(err));
	const char *a_curve, *a_ed;
	assert_int_equal(mx_device_keys_check(json_object_get(up, "device_keys"), ALICE, "ALICEDEV", &a_curve, &a_ed,
					      err, sizeof(err)), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_mx_devices_clear(st, ALICE, 0), 0);
	assert_int_equal(store_mx_device_add(st, ALICE, "ALICEDEV", a_curve, a_ed), 0);
	assert_int_equal(store_commit(st), 0);
	/* two Olm messages over a session the bot does not have (type 1) */
	json_t *lost = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:{s:i, s:s}}}}", "type", "m.room.encrypted",
				 "sender", ALICE, "content", "algorithm", MX_ALG_OLM, "sender_key", a_curve,
				 "ciphertext", bot_curve, "type", 1, "body", "AwogAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	json_t *batch = json_pack("{s:{s:[O, O]}}", "to_device", "events", lost, lost);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 1000), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 2000), 0);          /* within the hour: no second */
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_outbox_count(st, "matrix", OUT_PENDING), 1);
	struct send_ctx x;
	memset(&x, 0, sizeof(x));
	assert_int_equal(store_outbox_due(st, "matrix", 3000, &x.row, 1), 1);
	assert_string_equal(x.row.method, "olm_mend");
	assert_string_equal(x.row.chat, ALICE);
	assert_non_null(x.row.txn);
	/* sent: a one-time key claimed for that device (sessions or not) ... */
	assert_int_equal(mx_e2ee_mend(e, &x, row_done), 0);
	assert_string_equal(req.path, "/_matrix/client/v3/keys/claim");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(req.body,
			    "one_time_keys"), ALICE), "ALICEDEV")), "signed_curve25519");
	const char *kid;
	json_t *k, *otk = json_object();
	json_object_foreach(json_object_get(up, "one_time_keys"), kid, k) {
		json_object_set(otk, kid, k);
		break;
	}
	json_t *claim = json_pack("{s:{s:{s:O}}}", "one_time_keys", ALICE, "ALICEDEV", otk);
	char *cs = json_dumps(claim, JSON_COMPACT);
	answer_req(200, cs);
	free(cs);
	/* ... the new session stored before anything leaves ... */
	int n = 0;
	assert_int_equal(store_mx_olm_each(st, a_curve, count_olm, &n), 1);
	/* ... and an m.dummy over it, a pre-key message, under the row's txnId */
	char want[700];
	snprintf(want, sizeof(want), "/_matrix/client/v3/sendToDevice/m.room.encrypted/%s", x.row.txn);
	assert_string_equal(req.method, "PUT");
	assert_string_equal(req.path, want);
	json_t *c = json_object_get(json_object_get(json_object_get(req.body, "messages"), ALICE), "ALICEDEV");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(c, "ciphertext"),
								    a_curve), "type")), 0);
	json_t *td = json_pack("{s:s, s:s, s:O}", "type", "m.room.encrypted", "sender", BOT, "content", c);
	struct mx_olm_decrypted d;
	assert_int_equal(mx_olm_decrypt(alice, NULL, 0, td, &d, err, sizeof(err)), 0);
	assert_string_equal(d.type, "m.dummy");
	mx_olm_decrypted_release(&d);
	assert_int_equal(sent_n, 0);
	answer_req(200, "{}");
	assert_int_equal(sent_n, 1);
	assert_int_equal(sent.status, 200);
	/* an hour later, another loss is mended again */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, 1000 + 3600 * 1000 + 1), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_outbox_count(st, "matrix", OUT_PENDING), 2);
	outbox_row_release(&x.row);
	json_decref(td);
	json_decref(claim);
	json_decref(otk);
	json_decref(batch);
	json_decref(lost);
	json_decref(up);
	mx_account_free(alice);
	mx_e2ee_free(e);
}

static void set_flag(void *arg)
{
	(*(int *)arg)++;
}

/* A to-device batch with one m.room_key from alice's Olm session olm for
 * a new room session (its id in *sid, caller frees). */
static json_t *room_key_batch(struct mx_account *alice, struct mx_olm_session *olm, const char *bot_ed,
			      char **sid)
{
	char err[512];
	struct mx_megolm_out *out = mx_megolm_out_new(ROOM, 1, err, sizeof(err));
	json_t *rk = mx_megolm_out_room_key(out, err, sizeof(err));
	json_t *td = mx_olm_encrypt(alice, olm, BOT, bot_ed, "m.room_key", rk, err, sizeof(err));
	assert_non_null(td);
	json_t *b = json_pack("{s:{s:[{s:s, s:s, s:o}]}}", "to_device", "events", "type", "m.room.encrypted",
			      "sender", ALICE, "content", td);
	*sid = strdup(mx_megolm_out_session_id(out));
	json_decref(rk);
	mx_megolm_out_free(out);
	return b;
}

/* 1 when the bot stored the room session sid, 0 not. */
static int have_session(struct store *st, const char *sid)
{
	struct strbuf p = STRBUF_INIT;
	int rc = store_mx_megolm_in_get(st, ROOM, sid, &p);
	strbuf_release(&p);
	assert_true(rc >= 0);
	return rc;
}

static void sync_batch(struct store *st, struct mx_e2ee *e, json_t *batch, int64_t now)
{
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(mx_e2ee_sync(e, batch, now), 0);
	assert_int_equal(store_commit(st), 0);
}

static void room_key_must_name_the_sending_devices_key(void **state)
{
	struct store *st = *state;
	char err[512];
	struct mx_e2ee *e = mx_e2ee_new(st, key, strlen(key), 1, record, NULL);
	assert_int_equal(mx_e2ee_load(e, BOT, "BOTDEV", err, sizeof(err)), 0);
	assert_int_equal(mx_e2ee_upload(e, 1, NULL, NULL), 0);
	const char *bot_curve, *bot_ed;
	assert_int_equal(mx_device_keys_check(json_object_get(uploaded, "device_keys"), BOT, "BOTDEV", &bot_curve,
					      &bot_ed, err, sizeof(err)), 0);
	struct mx_account *alice = mx_account_new(ALICE, "ALICEDEV", err, sizeof(err));
	json_t *dk = mx_account_device_keys(alice, err, sizeof(err));
	const char *a_curve = mx_account_curve25519(alice);
	json_t *otk = claimed_key();
	struct mx_olm_session *olm = mx_olm_session_new_outbound(alice, BOT, "BOTDEV", bot_curve, bot_ed, otk,
								 err, sizeof(err));
	assert_non_null(olm);
	char *sid;
	int ready = 0;
	/* alice's devices are unknown: asked first, the batch waits for them */
	json_t *b = room_key_batch(alice, olm, bot_ed, &sid);
	assert_int_equal(mx_e2ee_prepare(e, b, set_flag, &ready), 0);
	assert_string_equal(req.path, "/_matrix/client/v3/keys/query");
	assert_non_null(json_object_get(json_object_get(req.body, "device_keys"), ALICE));
	json_t *ans = json_pack("{s:{s:{s:O}}}", "device_keys", ALICE, "ALICEDEV", dk);
	char *as = json_dumps(ans, JSON_COMPACT);
	answer_req(200, as);
	free(as);
	assert_int_equal(ready, 1);
	assert_int_equal(mx_e2ee_prepare(e, b, set_flag, &ready), 1); /* known now */
	sync_batch(st, e, b, 100);
	assert_int_equal(have_session(st, sid), 1);                 /* honest: kept */
	json_decref(b);
	free(sid);
	/* the server lists another ed25519 key for that curve25519 key: refused */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_mx_devices_clear(st, ALICE, 0), 0);
	assert_int_equal(store_mx_device_add(st, ALICE, "ALICEDEV", a_curve, "bm90IGFsaWNlJ3Mga2V5IGF0IGFsbCBubyBubw"),
			 0);
	assert_int_equal(store_commit(st), 0);
	b = room_key_batch(alice, olm, bot_ed, &sid);
	assert_int_equal(mx_e2ee_prepare(e, b, set_flag, &ready), 1);
	sync_batch(st, e, b, 200);
	assert_int_equal(have_session(st, sid), 0);
	json_decref(b);
	free(sid);
	/* a device the server does not list (asked again, still absent): refused */
	b = room_key_batch(alice, olm, bot_ed, &sid);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_mx_devices_clear(st, ALICE, 0), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(mx_e2ee_prepare(e, b, set_flag, &ready), 0);
	answer_req(200, "{\"device_keys\":{\"" ALICE "\":{}}}");
	assert_int_equal(ready, 2);
	sync_batch(st, e, b, 300);
	assert_int_equal(have_session(st, sid), 0);
	json_decref(b);
	free(sid);
	/* the query fails: the list stays unknown, the key is taken as sent */
	b = room_key_batch(alice, olm, bot_ed, &sid);
	assert_int_equal(mx_e2ee_prepare(e, b, set_flag, &ready), 0);
	answer_req(500, "{}");
	assert_int_equal(ready, 3);
	sync_batch(st, e, b, 400);
	assert_int_equal(have_session(st, sid), 1);
	json_decref(b);
	free(sid);
	json_decref(ans);
	json_decref(dk);
	json_decref(otk);
	mx_olm_session_free(olm);
	mx_account_free(alice);
	mx_e2ee_free(e);
}

static int teardown_all(void **state)
{
	json_decref(uploaded);
	uploaded = NULL;
	json_decref(req.body);
	memset(&req, 0, sizeof(req));
	return teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(account_is_kept_and_needs_its_key, setup, teardown_all),
		cmocka_unit_test_setup_teardown(rooms_turn_encrypted, setup, teardown_all),
		cmocka_unit_test_setup_teardown(message_waits_for_its_key_then_decrypts, setup, teardown_all),
		cmocka_unit_test_setup_teardown(pre_key_message_decrypts_after_a_rolled_back_batch, setup,
						teardown_all),
		cmocka_unit_test_setup_teardown(key_requests_do_not_hold_up_replies, setup, teardown_all),
		cmocka_unit_test_setup_teardown(room_keys_are_capped_per_sender_device, setup, teardown_all),
		cmocka_unit_test_setup_teardown(reset_records_waiting_events_as_given_up, setup, teardown_all),
		cmocka_unit_test_setup_teardown(lost_olm_session_is_mended, setup, teardown_all),
		cmocka_unit_test_setup_teardown(room_key_must_name_the_sending_devices_key, setup, teardown_all),
	};
	return cmocka_run_group_tests_name("mx_e2ee", tests, NULL, NULL);
}
