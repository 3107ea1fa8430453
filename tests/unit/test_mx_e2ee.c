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

static int teardown_all(void **state)
{
	json_decref(uploaded);
	uploaded = NULL;
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
	};
	return cmocka_run_group_tests_name("mx_e2ee", tests, NULL, NULL);
}
