/*
 * Unit tests for Matrix end-to-end encryption (src/mx_crypto.c).
 *
 * The bot uses mx_crypto; the "human" on the other side is written here
 * with libolm directly, the way a client would, so the two meet only on the
 * wire formats: a signed one-time key, an Olm pre-key message carrying an
 * m.room_key, Megolm room events, and the bot's encrypted reply.
 */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olm/inbound_group_session.h>
#include <olm/olm.h>
#include <olm/outbound_group_session.h>

#include "mx_crypto.h"

#define BOT "@faqbot:localhost"
#define BOTDEV "BOTDEV"
#define HUMAN "@human:localhost"
#define HUMANDEV "HUMANDEV"
#define ROOM "!room:localhost"
static const char KEY[] = "pickle key one";
static const char WRONG_KEY[] = "pickle key two";

/* ==== The human: libolm by hand ==== */

static void fill_random(void *p, size_t n)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(rand() & 0xff);
}

struct human {
	OlmAccount *acct;
	char curve[64], ed[64];
	OlmSession *to_bot;       /* outbound Olm session, opened with the bot's one-time key */
	OlmOutboundGroupSession *room_out;
	OlmInboundGroupSession *bot_in; /* the bot's room session, once shared */
};

static void human_init(struct human *h)
{
	memset(h, 0, sizeof(*h));
	h->acct = olm_account(malloc(olm_account_size()));
	size_t n = olm_create_account_random_length(h->acct);
	void *r = malloc(n);
	fill_random(r, n);
	assert_int_not_equal(olm_create_account(h->acct, r, n), olm_error());
	free(r);
	char ids[256];
	size_t len = olm_account_identity_keys(h->acct, ids, sizeof(ids));
	assert_int_not_equal(len, olm_error());
	json_t *j = json_loadb(ids, len, 0, NULL);
	snprintf(h->curve, sizeof(h->curve), "%s", json_string_value(json_object_get(j, "curve25519")));
	snprintf(h->ed, sizeof(h->ed), "%s", json_string_value(json_object_get(j, "ed25519")));
	json_decref(j);
	h->room_out = olm_outbound_group_session(malloc(olm_outbound_group_session_size()));
	n = olm_init_outbound_group_session_random_length(h->room_out);
	r = malloc(n);
	fill_random(r, n);
	assert_int_not_equal(olm_init_outbound_group_session(h->room_out, r, n), olm_error());
	free(r);
}

static void human_release(struct human *h)
{
	olm_clear_account(h->acct);
	free(h->acct);
	if (h->to_bot) {
		olm_clear_session(h->to_bot);
		free(h->to_bot);
	}
	olm_clear_outbound_group_session(h->room_out);
	free(h->room_out);
	if (h->bot_in) {
		olm_clear_inbound_group_session(h->bot_in);
		free(h->bot_in);
	}
}

/* Verifies sig over msg with ed (base64) the way a client does. */
static int ed25519_ok(const char *ed, const char *msg, const char *sig)
{
	void *mem = malloc(olm_utility_size());
	OlmUtility *u = olm_utility(mem);
	char *s = strdup(sig);
	size_t r = olm_ed25519_verify(u, ed, strlen(ed), msg, strlen(msg), s, strlen(s));
	free(s);
	olm_clear_utility(u);
	free(mem);
	return r != olm_error();
}

/* The human opens an Olm session with the bot's one-time key otk_key. */
static void human_open_session(struct human *h, const char *bot_curve, const char *otk_key)
{
	h->to_bot = olm_session(malloc(olm_session_size()));
	size_t n = olm_create_outbound_session_random_length(h->to_bot);
	void *r = malloc(n);
	fill_random(r, n);
	assert_int_not_equal(olm_create_outbound_session(h->to_bot, h->acct, bot_curve, strlen(bot_curve),
							 otk_key, strlen(otk_key), r, n),
			     olm_error());
	free(r);
}

/* A to-device m.room.encrypted event from the human carrying {type, content}
 * with the given recipient fields (so tests can lie). */
static json_t *human_to_device(struct human *h, const char *bot_curve, const char *recipient,
			       const char *recipient_ed, const char *sender, const char *type,
			       json_t *content)
{
	json_t *p = json_pack("{s:s, s:o, s:s, s:s, s:{s:s}, s:{s:s}}", "type", type, "content",
			      content, "sender", sender, "recipient", recipient, "recipient_keys",
			      "ed25519", recipient_ed, "keys", "ed25519", h->ed);
	char *plain = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	size_t mtype = olm_encrypt_message_type(h->to_bot);
	size_t rn = olm_encrypt_random_length(h->to_bot);
	size_t mlen = olm_encrypt_message_length(h->to_bot, strlen(plain));
	void *r = malloc(rn ? rn : 1);
	fill_random(r, rn);
	char *msg = malloc(mlen + 1);
	size_t len = olm_encrypt(h->to_bot, plain, strlen(plain), r, rn, msg, mlen);
	assert_int_not_equal(len, olm_error());
	msg[len] = '\0';
	free(r);
	free(plain);
	json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:{s:I, s:s}}}}", "type", "m.room.encrypted",
			       "sender", HUMAN, "content", "algorithm", MX_ALG_OLM, "sender_key",
			       h->curve, "ciphertext", bot_curve, "type", (json_int_t)mtype, "body", msg);
	free(msg);
	return ev;
}

/* The m.room_key content for the human's room session. */
static json_t *human_room_key(struct human *h)
{
	char id[128], key[512];
	size_t idn = olm_outbound_group_session_id(h->room_out, (uint8_t *)id, sizeof(id));
	size_t kn = olm_outbound_group_session_key(h->room_out, (uint8_t *)key, sizeof(key));
	assert_int_not_equal(idn, olm_error());
	assert_int_not_equal(kn, olm_error());
	return json_pack("{s:s, s:s, s:s%, s:s%}", "algorithm", MX_ALG_MEGOLM, "room_id", ROOM,
			 "session_id", id, idn, "session_key", key, kn);
}

/* A Megolm room event from the human (as /sync gives it: no room_id). */
static json_t *human_room_event(struct human *h, const char *event_id, const char *body,
				const char *room_in_plaintext)
{
	json_t *p = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "m.room.message", "content",
			      "msgtype", "m.text", "body", body, "room_id", room_in_plaintext);
	char *plain = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	size_t mlen = olm_group_encrypt_message_length(h->room_out, strlen(plain));
	char *msg = malloc(mlen + 1);
	size_t len = olm_group_encrypt(h->room_out, (uint8_t *)plain, strlen(plain), (uint8_t *)msg, mlen);
	assert_int_not_equal(len, olm_error());
	msg[len] = '\0';
	free(plain);
	char id[128];
	size_t idn = olm_outbound_group_session_id(h->room_out, (uint8_t *)id, sizeof(id));
	json_t *ev = json_pack("{s:s, s:s, s:s, s:I, s:{s:s, s:s, s:s%, s:s, s:s, s:{s:{s:s}}}}",
			       "event_id", event_id, "type", "m.room.encrypted", "sender", HUMAN,
			       "origin_server_ts", (json_int_t)1700000000000, "content", "algorithm",
			       MX_ALG_MEGOLM, "ciphertext", msg, "session_id", id, idn, "sender_key",
			       h->curve, "device_id", HUMANDEV, "m.relates_to", "m.in_reply_to",
			       "event_id", "$root");
	free(msg);
	return ev;
}

/* ==== Fixture: a bot that received the human's room key ==== */

struct fx {
	struct human h;
	struct mx_account *bot;
	struct mx_olm_session *olm_in; /* made by the human's pre-key message */
	struct mx_megolm_in *room_in;
};

/* The first signed one-time key of an upload body: its id and key. */
static json_t *first_otk(json_t *body, const char **name)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(body, "one_time_keys"), k, v) {
		*name = k;
		return v;
	}
	return NULL;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	srand(42);
	human_init(&f->h);
	f->bot = mx_account_new(BOT, BOTDEV, err, sizeof(err));
	assert_non_null(f->bot);
	json_t *body = mx_account_keys_upload_body(f->bot, 1, 0, err, sizeof(err));
	assert_non_null(body);
	const char *name;
	json_t *otk = first_otk(body, &name);
	assert_non_null(otk);
	human_open_session(&f->h, mx_account_curve25519(f->bot),
			   json_string_value(json_object_get(otk, "key")));
	json_decref(body);
	mx_account_mark_published(f->bot);

	json_t *ev = human_to_device(&f->h, mx_account_curve25519(f->bot), BOT,
				     mx_account_ed25519(f->bot), HUMAN, "m.room_key",
				     human_room_key(&f->h));
	struct mx_olm_decrypted d;
	int rc = mx_olm_decrypt(f->bot, NULL, 0, ev, &d, err, sizeof(err));
	if (rc)
		printf("  %s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(d.type, "m.room_key");
	assert_non_null(d.new_session);
	assert_true(d.account_changed);
	assert_string_equal(d.sender_key, f->h.curve);
	assert_string_equal(d.sender_ed25519, f->h.ed);
	f->room_in = mx_megolm_in_new(d.content, d.sender, d.sender_key, d.sender_ed25519, err,
				      sizeof(err));
	assert_non_null(f->room_in);
	assert_string_equal(mx_megolm_in_room_id(f->room_in), ROOM);
	f->olm_in = d.new_session;
	d.new_session = NULL;
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	mx_megolm_in_free(f->room_in);
	mx_olm_session_free(f->olm_in);
	mx_account_free(f->bot);
	human_release(&f->h);
	free(f);
	return 0;
}

/* ==== Tests ==== */

static void canonical_json_and_device_key_signature(void **state)
{
	(void)state;
	char err[256];
	json_t *o = json_loads("{\"b\": 1, \"a\": {\"d\": \"\xc3\xa9t\xc3\xa9\", \"c\": [2, 1]},"
			       " \"signatures\": {\"x\": 1}, \"unsigned\": {\"y\": 2}}", 0, NULL);
	char *c = mx_canonical_json(o, err, sizeof(err));
	assert_string_equal(c, "{\"a\":{\"c\":[2,1],\"d\":\"\xc3\xa9t\xc3\xa9\"},\"b\":1}");
	free(c);
	json_decref(o);
	o = json_loads("{\"a\": 1.5}", 0, NULL);
	assert_null(mx_canonical_json(o, err, sizeof(err)));
	json_decref(o);

	struct mx_account *a = mx_account_new(BOT, BOTDEV, err, sizeof(err));
	json_t *dk = mx_account_device_keys(a, err, sizeof(err));
	char expect[1024];
	snprintf(expect, sizeof(expect),
		 "{\"algorithms\":[\"%s\",\"%s\"],\"device_id\":\"%s\",\"keys\":{\"curve25519:%s\":\"%s\","
		 "\"ed25519:%s\":\"%s\"},\"user_id\":\"%s\"}",
		 MX_ALG_OLM, MX_ALG_MEGOLM, BOTDEV, BOTDEV, mx_account_curve25519(a), BOTDEV,
		 mx_account_ed25519(a), BOT);
	const char *sig = json_string_value(
		json_object_get(json_object_get(json_object_get(dk, "signatures"), BOT), "ed25519:" BOTDEV));
	assert_non_null(sig);
	assert_true(ed25519_ok(mx_account_ed25519(a), expect, sig));
	assert_false(ed25519_ok(mx_account_ed25519(a), "{\"tampered\":1}", sig));
	const char *curve, *ed;
	assert_int_equal(mx_device_keys_check(dk, BOT, BOTDEV, &curve, &ed, err, sizeof(err)), 0);
	assert_string_equal(curve, mx_account_curve25519(a));
	/* a device answering for another id, or a changed key, is refused */
	assert_int_equal(mx_device_keys_check(dk, BOT, "OTHER", NULL, NULL, err, sizeof(err)), -1);
	json_object_set_new(json_object_get(dk, "keys"), "curve25519:" BOTDEV, json_string("AAAA"));
	assert_int_equal(mx_device_keys_check(dk, BOT, BOTDEV, NULL, NULL, err, sizeof(err)), -1);
	json_decref(dk);

	/* one-time keys: 50 made, each signed over {"key": ...} */
	assert_int_equal(mx_account_otk_wanted(a, 0), 50);
	json_t *body = mx_account_keys_upload_body(a, 0, 0, err, sizeof(err));
	assert_null(json_object_get(body, "device_keys"));
	assert_int_equal(json_object_size(json_object_get(body, "one_time_keys")), 50);
	const char *name;
	json_t *otk = first_otk(body, &name);
	assert_int_equal(strncmp(name, "signed_curve25519:", 18), 0);
	snprintf(expect, sizeof(expect), "{\"key\":\"%s\"}", json_string_value(json_object_get(otk, "key")));
	sig = json_string_value(
		json_object_get(json_object_get(json_object_get(otk, "signatures"), BOT), "ed25519:" BOTDEV));
	assert_true(ed25519_ok(mx_account_ed25519(a), expect, sig));
	json_decref(body);
	assert_int_equal(mx_account_otk_wanted(a, 0), 0); /* made, not yet published */
	body = mx_account_keys_upload_body(a, 0, 0, err, sizeof(err)); /* a retry: same keys */
	assert_int_equal(json_object_size(json_object_get(body, "one_time_keys")), 50);
	json_decref(body);
	mx_account_mark_published(a);
	assert_int_equal(mx_account_otk_wanted(a, 50), 0);
	assert_int_equal(mx_account_otk_wanted(a, 10), 40);
	body = mx_account_keys_upload_body(a, 0, 50, err, sizeof(err));
	assert_null(json_object_get(body, "one_time_keys"));
	json_decref(body);
	mx_account_free(a);
}

static void room_key_then_megolm_messages_decrypt(void **state)
{
	struct fx *f = *state;
	char err[256];
	json_t *ev = human_room_event(&f->h, "$q1", "combien ça coûte ?", ROOM);
	assert_string_equal(mx_megolm_event_session_id(ev), mx_megolm_in_session_id(f->room_in));
	struct mx_megolm_decrypted d;
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(d.event, "type")), "m.room.message");
	json_t *c = json_object_get(d.event, "content");
	assert_string_equal(json_string_value(json_object_get(c, "body")), "combien ça coûte ?");
	assert_string_equal(json_string_value(json_object_get(d.event, "event_id")), "$q1");
	/* the relation sent in clear is kept */
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(json_object_get(c, "m.relates_to"), "m.in_reply_to"), "event_id")), "$root");
	assert_int_equal(d.message_index, 0);
	assert_true(d.session_changed);
	mx_megolm_decrypted_release(&d);
	/* the same event again (a re-sync after a crash) decrypts */
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), 0);
	assert_false(d.session_changed);
	mx_megolm_decrypted_release(&d);
	json_decref(ev);

	ev = human_room_event(&f->h, "$q2", "second", ROOM);
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), 0);
	assert_int_equal(d.message_index, 1);
	mx_megolm_decrypted_release(&d);
	json_decref(ev);
}

static void replayed_index_with_other_event_id_is_refused(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct mx_megolm_decrypted d;
	json_t *ev = human_room_event(&f->h, "$orig", "hello", ROOM);
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), 0);
	mx_megolm_decrypted_release(&d);
	json_object_set_new(ev, "event_id", json_string("$replay"));
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "replay"));
	assert_null(d.event);

	/* the memory of indexes survives a pickle round trip */
	char *p = mx_megolm_in_pickle(f->room_in, KEY, sizeof(KEY), err, sizeof(err));
	struct mx_megolm_in *again = mx_megolm_in_unpickle(p, KEY, sizeof(KEY), err, sizeof(err));
	assert_non_null(again);
	assert_int_equal(mx_megolm_decrypt(again, ROOM, ev, &d, err, sizeof(err)), -1);
	json_object_set_new(ev, "event_id", json_string("$orig"));
	assert_int_equal(mx_megolm_decrypt(again, ROOM, ev, &d, err, sizeof(err)), 0);
	mx_megolm_decrypted_release(&d);
	mx_megolm_in_free(again);
	free(p);
	json_decref(ev);
}

static void event_for_another_room_or_sender_is_refused(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct mx_megolm_decrypted d;
	/* the plaintext names another room than the one it arrived in */
	json_t *ev = human_room_event(&f->h, "$x", "moved", "!other:localhost");
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another room"));
	json_decref(ev);
	/* someone else claims the human's session */
	ev = human_room_event(&f->h, "$y", "impostor", ROOM);
	json_object_set_new(ev, "sender", json_string("@mallory:localhost"));
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), -1);
	/* the session asked for a room it does not belong to */
	json_object_set_new(ev, "sender", json_string(HUMAN));
	assert_int_equal(mx_megolm_decrypt(f->room_in, "!other:localhost", ev, &d, err, sizeof(err)), -1);
	json_decref(ev);
}

static void malformed_input_is_an_error_not_a_crash(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct mx_megolm_decrypted d;
	json_t *ev = human_room_event(&f->h, "$m", "x", ROOM);
	json_t *c = json_object_get(ev, "content");
	const char *bad[] = { "", "!!!not base64!!!", "AAAA", "AwgAEhAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object_set_new(c, "ciphertext", json_string(bad[i]));
		assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), -1);
		assert_null(d.event);
	}
	/* a flipped byte in a real ciphertext: MAC or signature fails */
	json_t *good = human_room_event(&f->h, "$n", "y", ROOM);
	char *ct = strdup(json_string_value(json_object_get(json_object_get(good, "content"), "ciphertext")));
	ct[20] = ct[20] == 'A' ? 'B' : 'A';
	json_object_set_new(json_object_get(good, "content"), "ciphertext", json_string(ct));
	free(ct);
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, good, &d, err, sizeof(err)), -1);
	json_decref(good);
	/* wrong session for the event */
	json_object_set_new(c, "session_id", json_string("not-this-session"));
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), -1);
	json_object_del(c, "ciphertext");
	assert_int_equal(mx_megolm_decrypt(f->room_in, ROOM, ev, &d, err, sizeof(err)), -1);
	json_decref(ev);

	/* room keys: bad algorithm, bad key, id that does not match the key */
	json_t *rk = human_room_key(&f->h);
	json_object_set_new(rk, "session_key", json_string("garbage"));
	assert_null(mx_megolm_in_new(rk, HUMAN, f->h.curve, f->h.ed, err, sizeof(err)));
	json_decref(rk);
	rk = human_room_key(&f->h);
	json_object_set_new(rk, "session_id", json_string("another"));
	assert_null(mx_megolm_in_new(rk, HUMAN, f->h.curve, f->h.ed, err, sizeof(err)));
	json_object_set_new(rk, "algorithm", json_string("m.megolm.v2"));
	assert_null(mx_megolm_in_new(rk, HUMAN, f->h.curve, f->h.ed, err, sizeof(err)));
	json_decref(rk);
	assert_null(mx_megolm_in_new(NULL, HUMAN, f->h.curve, f->h.ed, err, sizeof(err)));

	/* Olm: garbage bodies of both types, missing fields, foreign algorithm */
	for (int type = 0; type <= 1; type++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:{s:i, s:s}}}}", "type",
					      "m.room.encrypted", "sender", HUMAN, "content", "algorithm",
					      MX_ALG_OLM, "sender_key", f->h.curve, "ciphertext",
					      mx_account_curve25519(f->bot), "type", type, "body", bad[i]);
			struct mx_olm_decrypted od;
			struct mx_olm_session *ss[1] = { f->olm_in };
			assert_int_equal(mx_olm_decrypt(f->bot, ss, 1, o, &od, err, sizeof(err)), -1);
			assert_null(od.payload);
			assert_null(od.new_session);
			mx_olm_decrypted_release(&od);
			json_decref(o);
		}
	}
	struct mx_olm_decrypted od;
	json_t *o = json_loads("{\"sender\": \"@a:b\", \"content\": {\"algorithm\": \"m.olm.v1.curve25519-aes-sha2\","
			       " \"sender_key\": \"k\", \"ciphertext\": {\"other-device\": {\"type\": 0, \"body\": \"x\"}}}}",
			       0, NULL);
	assert_int_equal(mx_olm_decrypt(f->bot, NULL, 0, o, &od, err, sizeof(err)), -1);
	mx_olm_decrypted_release(&od);
	json_decref(o);
	assert_int_equal(mx_olm_decrypt(f->bot, NULL, 0, NULL, &od, err, sizeof(err)), -1);
	mx_olm_decrypted_release(&od);
}

/* Base64 character 92 of a pre-key message holds the top bits of byte 69,
 * the tag of its identity-key field (after the version byte and the two
 * 34-byte key fields); 'W' turns it into an unknown field, so the message
 * has no identity key.  libolm's olm_create_inbound_session_from crashed on
 * that (a NULL read); it must be an error. */
static void prekey_message_without_identity_key_is_refused(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct mx_olm_decrypted d;
	/* a fresh human, whose first message is a pre-key message for a new session */
	struct human h2;
	human_init(&h2);
	json_t *body = mx_account_keys_upload_body(f->bot, 0, 0, err, sizeof(err));
	const char *name;
	json_t *otk = first_otk(body, &name);
	human_open_session(&h2, mx_account_curve25519(f->bot), json_string_value(json_object_get(otk, "key")));
	json_decref(body);
	mx_account_mark_published(f->bot);
	json_t *ev = human_to_device(&h2, mx_account_curve25519(f->bot), BOT, mx_account_ed25519(f->bot),
				     HUMAN, "m.dummy", json_object());
	json_object_set_new(json_object_get(ev, "content"), "sender_key", json_string(h2.curve));
	json_t *mine = json_object_get(json_object_get(json_object_get(ev, "content"), "ciphertext"),
				       mx_account_curve25519(f->bot));
	char *b = strdup(json_string_value(json_object_get(mine, "body")));
	assert_true(strlen(b) > 100);
	b[92] = 'W';
	json_object_set_new(mine, "body", json_string(b));
	free(b);
	assert_int_equal(mx_olm_decrypt(f->bot, NULL, 0, ev, &d, err, sizeof(err)), -1);
	assert_null(d.new_session);
	mx_olm_decrypted_release(&d);
	/* a pre-key message naming another sender key than its own is refused */
	json_object_set_new(mine, "body", json_string("x"));
	json_decref(ev);
	ev = human_to_device(&h2, mx_account_curve25519(f->bot), BOT, mx_account_ed25519(f->bot), HUMAN,
			     "m.dummy", json_object());
	json_object_set_new(json_object_get(ev, "content"), "sender_key", json_string(f->h.curve));
	assert_int_equal(mx_olm_decrypt(f->bot, NULL, 0, ev, &d, err, sizeof(err)), -1);
	mx_olm_decrypted_release(&d);
	/* and the genuine one still opens a session */
	json_object_set_new(json_object_get(ev, "content"), "sender_key", json_string(h2.curve));
	assert_int_equal(mx_olm_decrypt(f->bot, NULL, 0, ev, &d, err, sizeof(err)), 0);
	assert_non_null(d.new_session);
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	human_release(&h2);
}

/* A human opens a session with key and sends one pre-key message: does it
 * decrypt on the bot? */
static int prekey_from_new_human_decrypts(struct mx_account *bot, const char *key)
{
	char err[256];
	struct human h;
	human_init(&h);
	human_open_session(&h, mx_account_curve25519(bot), key);
	json_t *ev = human_to_device(&h, mx_account_curve25519(bot), BOT, mx_account_ed25519(bot), HUMAN,
				     "m.dummy", json_object());
	struct mx_olm_decrypted d;
	int rc = mx_olm_decrypt(bot, NULL, 0, ev, &d, err, sizeof(err));
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	human_release(&h);
	return rc == 0;
}

static void fallback_key_is_signed_and_serves_several_sessions(void **state)
{
	(void)state;
	char err[256];
	struct mx_account *a = mx_account_new(BOT, BOTDEV, err, sizeof(err));
	json_t *fb = mx_account_fallback_keys(a, err, sizeof(err));
	assert_non_null(fb);
	assert_int_equal(json_object_size(fb), 1);
	const char *name;
	json_t *k;
	char old_key[64] = "";
	json_object_foreach(fb, name, k) {
		assert_int_equal(strncmp(name, "signed_curve25519:", 18), 0);
		assert_true(json_is_true(json_object_get(k, "fallback")));
		char canon[256];
		snprintf(canon, sizeof(canon), "{\"fallback\":true,\"key\":\"%s\"}",
			 json_string_value(json_object_get(k, "key")));
		const char *sig = json_string_value(json_object_get(
			json_object_get(json_object_get(k, "signatures"), BOT), "ed25519:" BOTDEV));
		assert_true(ed25519_ok(mx_account_ed25519(a), canon, sig));
		snprintf(old_key, sizeof(old_key), "%s", json_string_value(json_object_get(k, "key")));
	}
	json_decref(fb);
	mx_account_mark_published(a);
	/* the fallback key is not used up: two devices open sessions with it */
	assert_true(prekey_from_new_human_decrypts(a, old_key));
	assert_true(prekey_from_new_human_decrypts(a, old_key));
	/* replaced: the previous one still works until it is forgotten */
	json_decref(mx_account_fallback_keys(a, err, sizeof(err)));
	mx_account_mark_published(a);
	assert_true(prekey_from_new_human_decrypts(a, old_key));
	mx_account_forget_old_fallback_key(a);
	assert_false(prekey_from_new_human_decrypts(a, old_key));
	mx_account_free(a);
}

/* A pre-key message made with the fallback key (which is not used up) and
 * replayed: the session it opened matches it but cannot decrypt it again;
 * the bot must not open a second session from the same message. */
static void replayed_prekey_message_on_fallback_key_is_refused(void **state)
{
	(void)state;
	char err[256];
	struct mx_account *a = mx_account_new(BOT, BOTDEV, err, sizeof(err));
	json_t *fb = mx_account_fallback_keys(a, err, sizeof(err));
	const char *name;
	json_t *k;
	struct human h;
	human_init(&h);
	json_object_foreach(fb, name, k)
		human_open_session(&h, mx_account_curve25519(a), json_string_value(json_object_get(k, "key")));
	json_decref(fb);
	mx_account_mark_published(a);
	json_t *ev = human_to_device(&h, mx_account_curve25519(a), BOT, mx_account_ed25519(a), HUMAN,
				     "m.room_key", json_pack("{s:s}", "x", "first"));
	struct mx_olm_decrypted d;
	assert_int_equal(mx_olm_decrypt(a, NULL, 0, ev, &d, err, sizeof(err)), 0);
	struct mx_olm_session *s = d.new_session;
	d.new_session = NULL;
	mx_olm_decrypted_release(&d);
	assert_int_equal(mx_olm_decrypt(a, &s, 1, ev, &d, err, sizeof(err)), -1);
	assert_null(d.new_session);
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	mx_olm_session_free(s);
	human_release(&h);
	mx_account_free(a);
}

/* The answer to a key request: the human's device forwards its session from
 * message 2 on (as m.forwarded_room_key content). */
static void forwarded_room_key_from_its_maker_only(void **state)
{
	struct fx *f = *state;
	char err[256];
	json_t *ev0 = human_room_event(&f->h, "$m0", "before", ROOM); /* index 0 */
	json_t *ev1 = human_room_event(&f->h, "$m1", "after", ROOM);  /* index 1 */
	json_t *rk = human_room_key(&f->h); /* the ratchet now: index 2 */
	/* the human's device: its own inbound copy, exported from index 2 */
	OlmInboundGroupSession *in = olm_inbound_group_session(malloc(olm_inbound_group_session_size()));
	struct mx_megolm_decrypted d;
	const char *sk = json_string_value(json_object_get(rk, "session_key"));
	assert_int_not_equal(olm_init_inbound_group_session(in, (const uint8_t *)sk, strlen(sk)), olm_error());
	char exported[512];
	size_t n = olm_export_inbound_group_session(in, (uint8_t *)exported, sizeof(exported), 2);
	assert_int_not_equal(n, olm_error());
	exported[n] = '\0';
	json_t *fwd = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[]}", "algorithm", MX_ALG_MEGOLM,
				"room_id", ROOM, "session_id",
				json_string_value(json_object_get(rk, "session_id")), "session_key", exported,
				"sender_key", f->h.curve, "sender_claimed_ed25519_key", f->h.ed,
				"forwarding_curve25519_key_chain");
	/* relayed by another device: refused */
	assert_null(mx_megolm_in_from_forwarded(fwd, HUMAN, "someone-elses-curve-key", err, sizeof(err)));
	assert_non_null(strstr(err, "forwarded by another device"));
	struct mx_megolm_in *s = mx_megolm_in_from_forwarded(fwd, HUMAN, f->h.curve, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(mx_megolm_in_first_index(s), 2);
	/* messages before the exported index cannot be read, later ones can */
	assert_int_equal(mx_megolm_decrypt(s, ROOM, ev1, &d, err, sizeof(err)), -1);
	json_t *ev2 = human_room_event(&f->h, "$m2", "later", ROOM);
	assert_int_equal(mx_megolm_decrypt(s, ROOM, ev2, &d, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(d.event, "content"), "body")), "later");
	mx_megolm_decrypted_release(&d);
	/* a bad exported key is an error */
	json_object_set_new(fwd, "session_key", json_string("AQAA"));
	assert_null(mx_megolm_in_from_forwarded(fwd, HUMAN, f->h.curve, err, sizeof(err)));
	mx_megolm_in_free(s);
	json_decref(fwd);
	json_decref(ev0);
	json_decref(ev1);
	json_decref(ev2);
	json_decref(rk);
	olm_clear_inbound_group_session(in);
	free(in);

	json_t *req = mx_room_key_request("request", ROOM, "sess", f->h.curve, "req1", BOTDEV);
	assert_string_equal(json_string_value(json_object_get(req, "action")), "request");
	assert_string_equal(json_string_value(json_object_get(json_object_get(req, "body"), "session_id")), "sess");
	assert_string_equal(json_string_value(json_object_get(json_object_get(req, "body"), "algorithm")), MX_ALG_MEGOLM);
	assert_string_equal(json_string_value(json_object_get(req, "requesting_device_id")), BOTDEV);
	json_decref(req);
	req = mx_room_key_request("request_cancellation", NULL, NULL, NULL, "req1", BOTDEV);
	assert_null(json_object_get(req, "body"));
	json_decref(req);
}

static void olm_payload_for_someone_else_is_refused_and_sessions_are_reused(void **state)
{
	struct fx *f = *state;
	char err[256];
	const char *bc = mx_account_curve25519(f->bot), *be = mx_account_ed25519(f->bot);
	struct mx_olm_session *ss[1] = { f->olm_in };
	struct mx_olm_decrypted d;
	/* still a pre-key message on the same session: matched, not a new session */
	json_t *ev = human_to_device(&f->h, bc, "@someone:localhost", be, HUMAN, "m.dummy", json_object());
	assert_int_equal(mx_olm_decrypt(f->bot, ss, 1, ev, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another user"));
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	ev = human_to_device(&f->h, bc, BOT, f->h.ed, HUMAN, "m.dummy", json_object());
	assert_int_equal(mx_olm_decrypt(f->bot, ss, 1, ev, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another device"));
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	ev = human_to_device(&f->h, bc, BOT, be, "@mallory:localhost", "m.dummy", json_object());
	assert_int_equal(mx_olm_decrypt(f->bot, ss, 1, ev, &d, err, sizeof(err)), -1);
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	ev = human_to_device(&f->h, bc, BOT, be, HUMAN, "m.dummy", json_object());
	assert_int_equal(mx_olm_decrypt(f->bot, ss, 1, ev, &d, err, sizeof(err)), 0);
	assert_null(d.new_session);
	assert_int_equal(d.session_index, 0);
	assert_false(d.account_changed);
	mx_olm_decrypted_release(&d);
	json_decref(ev);

	/* the bot answers on that session (type 1 once it has received), and
	 * the human's next message is a normal (type 1) message */
	json_t *empty = json_object();
	json_t *c = mx_olm_encrypt(f->bot, f->olm_in, HUMAN, f->h.ed, "m.dummy", empty, err, sizeof(err));
	json_decref(empty);
	assert_non_null(c);
	json_t *mine = json_object_get(json_object_get(c, "ciphertext"), f->h.curve);
	assert_int_equal(json_integer_value(json_object_get(mine, "type")), 1);
	char *body = strdup(json_string_value(json_object_get(mine, "body")));
	char plain[2048];
	size_t n = olm_decrypt(f->h.to_bot, 1, body, strlen(body), plain, sizeof(plain));
	assert_int_not_equal(n, olm_error());
	free(body);
	json_decref(c);
	ev = human_to_device(&f->h, bc, BOT, be, HUMAN, "m.dummy", json_object());
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(
		json_object_get(ev, "content"), "ciphertext"), bc), "type")), 1);
	assert_int_equal(mx_olm_decrypt(f->bot, ss, 1, ev, &d, err, sizeof(err)), 0);
	assert_int_equal(d.session_index, 0);
	mx_olm_decrypted_release(&d);
	/* without the session, a normal message cannot be decrypted */
	assert_int_equal(mx_olm_decrypt(f->bot, NULL, 0, ev, &d, err, sizeof(err)), -1);
	mx_olm_decrypted_release(&d);
	json_decref(ev);
}

/* A signed one-time key of the human, as /keys/claim returns it. */
static json_t *human_claimed_otk(struct human *h, int tamper)
{
	size_t n = olm_account_generate_one_time_keys_random_length(h->acct, 1);
	void *r = malloc(n);
	fill_random(r, n);
	olm_account_generate_one_time_keys(h->acct, 1, r, n);
	free(r);
	char buf[512];
	size_t len = olm_account_one_time_keys(h->acct, buf, sizeof(buf));
	json_t *root = json_loadb(buf, len, 0, NULL);
	json_t *keys = json_object_get(root, "curve25519");
	const char *id;
	json_t *k, *out = NULL;
	json_object_foreach(keys, id, k) {
		char canon[256], sig[128], name[64];
		snprintf(canon, sizeof(canon), "{\"key\":\"%s\"}", json_string_value(k));
		size_t sn = olm_account_sign(h->acct, canon, strlen(canon), sig, sizeof(sig));
		sig[sn] = '\0';
		if (tamper)
			sig[3] = sig[3] == 'A' ? 'B' : 'A';
		snprintf(name, sizeof(name), "signed_curve25519:%s", id);
		out = json_pack("{s:{s:O, s:{s:{s:s}}}}", name, "key", k, "signatures", HUMAN,
				"ed25519:" HUMANDEV, sig);
	}
	olm_account_mark_keys_as_published(h->acct);
	json_decref(root);
	return out;
}

static void bot_reply_is_encrypted_and_human_decrypts_it(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct mx_megolm_out *out = mx_megolm_out_new(ROOM, 1000, err, sizeof(err));
	assert_non_null(out);
	json_t *rk = mx_megolm_out_room_key(out, err, sizeof(err));

	/* a one-time key whose signature does not verify is refused */
	json_t *bad = human_claimed_otk(&f->h, 1);
	assert_null(mx_olm_session_new_outbound(f->bot, HUMAN, HUMANDEV, f->h.curve, f->h.ed, bad, err,
						sizeof(err)));
	assert_non_null(strstr(err, "signature"));
	json_decref(bad);
	json_t *otk = human_claimed_otk(&f->h, 0);
	struct mx_olm_session *s = mx_olm_session_new_outbound(f->bot, HUMAN, HUMANDEV, f->h.curve,
								 f->h.ed, otk, err, sizeof(err));
	assert_non_null(s);
	json_decref(otk);
	json_t *td = mx_olm_encrypt(f->bot, s, HUMAN, f->h.ed, "m.room_key", rk, err, sizeof(err));
	assert_non_null(td);
	json_decref(rk);

	/* the human: a pre-key message -> new inbound session -> m.room_key */
	json_t *mine = json_object_get(json_object_get(td, "ciphertext"), f->h.curve);
	assert_int_equal(json_integer_value(json_object_get(mine, "type")), 0);
	assert_string_equal(json_string_value(json_object_get(td, "sender_key")),
			    mx_account_curve25519(f->bot));
	const char *b64 = json_string_value(json_object_get(mine, "body"));
	OlmSession *hs = olm_session(malloc(olm_session_size()));
	char *tmp = strdup(b64);
	const char *bc = mx_account_curve25519(f->bot);
	assert_int_not_equal(olm_create_inbound_session_from(hs, f->h.acct, bc, strlen(bc), tmp, strlen(tmp)),
			     olm_error());
	free(tmp);
	tmp = strdup(b64);
	char plain[4096];
	size_t n = olm_decrypt(hs, 0, tmp, strlen(tmp), plain, sizeof(plain));
	assert_int_not_equal(n, olm_error());
	free(tmp);
	json_t *p = json_loadb(plain, n, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(p, "sender")), BOT);
	assert_string_equal(json_string_value(json_object_get(p, "recipient")), HUMAN);
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "recipient_keys"), "ed25519")),
			    f->h.ed);
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "keys"), "ed25519")),
			    mx_account_ed25519(f->bot));
	json_t *key = json_object_get(p, "content");
	assert_string_equal(json_string_value(json_object_get(key, "session_id")), mx_megolm_out_session_id(out));
	const char *sk = json_string_value(json_object_get(key, "session_key"));
	f->h.bot_in = olm_inbound_group_session(malloc(olm_inbound_group_session_size()));
	assert_int_not_equal(olm_init_inbound_group_session(f->h.bot_in, (const uint8_t *)sk, strlen(sk)),
			     olm_error());
	json_decref(p);
	json_decref(td);
	olm_clear_session(hs);
	free(hs);

	/* the reply: relation in clear, body only inside */
	json_t *content = json_pack("{s:s, s:s, s:{s:{s:s}}, s:{}}", "msgtype", "m.notice", "body",
				    "Le ticket d'entrée est modeste.", "m.relates_to", "m.in_reply_to",
				    "event_id", "$q1", "m.mentions");
	json_t *enc = mx_megolm_out_encrypt(out, f->bot, "m.room.message", content, err, sizeof(err));
	assert_non_null(enc);
	assert_string_equal(json_string_value(json_object_get(enc, "algorithm")), MX_ALG_MEGOLM);
	assert_string_equal(json_string_value(json_object_get(enc, "session_id")), mx_megolm_out_session_id(out));
	assert_non_null(json_object_get(json_object_get(enc, "m.relates_to"), "m.in_reply_to"));
	assert_null(json_object_get(enc, "body"));
	tmp = strdup(json_string_value(json_object_get(enc, "ciphertext")));
	uint32_t index = 99;
	n = olm_group_decrypt(f->h.bot_in, (uint8_t *)tmp, strlen(tmp), (uint8_t *)plain, sizeof(plain), &index);
	assert_int_not_equal(n, olm_error());
	free(tmp);
	assert_int_equal(index, 0);
	p = json_loadb(plain, n, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(p, "type")), "m.room.message");
	assert_string_equal(json_string_value(json_object_get(p, "room_id")), ROOM);
	json_t *pc = json_object_get(p, "content");
	assert_string_equal(json_string_value(json_object_get(pc, "body")), "Le ticket d'entrée est modeste.");
	assert_null(json_object_get(pc, "m.relates_to"));
	assert_non_null(json_object_get(pc, "m.mentions"));
	/* the caller's content is left as it was */
	assert_non_null(json_object_get(content, "m.relates_to"));
	json_decref(p);
	json_decref(enc);
	json_decref(content);
	assert_int_equal(mx_megolm_out_message_count(out), 1);
	mx_olm_session_free(s);
	mx_megolm_out_free(out);
}

static void pickles_round_trip_and_refuse_a_wrong_key(void **state)
{
	struct fx *f = *state;
	char err[256];
	/* account */
	char *p = mx_account_pickle(f->bot, KEY, sizeof(KEY), err, sizeof(err));
	assert_non_null(p);
	assert_null(strstr(p, KEY));
	struct mx_account *a = mx_account_unpickle(p, KEY, sizeof(KEY), err, sizeof(err));
	assert_non_null(a);
	assert_string_equal(mx_account_curve25519(a), mx_account_curve25519(f->bot));
	assert_string_equal(mx_account_ed25519(a), mx_account_ed25519(f->bot));
	assert_string_equal(mx_account_device_id(a), BOTDEV);
	assert_string_equal(mx_account_user_id(a), BOT);
	mx_account_free(a);
	err[0] = '\0';
	assert_null(mx_account_unpickle(p, WRONG_KEY, sizeof(WRONG_KEY), err, sizeof(err)));
	assert_non_null(strstr(err, "wrong pickle key"));
	assert_null(mx_account_unpickle("{\"v\":1}", KEY, sizeof(KEY), err, sizeof(err)));
	assert_null(mx_account_unpickle("not json", KEY, sizeof(KEY), err, sizeof(err)));
	/* a pickle of another kind is refused */
	assert_null(mx_megolm_in_unpickle(p, KEY, sizeof(KEY), err, sizeof(err)));
	free(p);

	/* Olm session: the unpickled one still decrypts the human's next message */
	p = mx_olm_session_pickle(f->olm_in, KEY, sizeof(KEY), err, sizeof(err));
	assert_null(mx_olm_session_unpickle(p, WRONG_KEY, sizeof(WRONG_KEY), err, sizeof(err)));
	struct mx_olm_session *s = mx_olm_session_unpickle(p, KEY, sizeof(KEY), err, sizeof(err));
	free(p);
	assert_non_null(s);
	assert_string_equal(mx_olm_session_id(s), mx_olm_session_id(f->olm_in));
	assert_string_equal(mx_olm_session_peer_key(s), f->h.curve);
	json_t *ev = human_to_device(&f->h, mx_account_curve25519(f->bot), BOT, mx_account_ed25519(f->bot),
				     HUMAN, "m.dummy", json_object());
	struct mx_olm_decrypted d;
	assert_int_equal(mx_olm_decrypt(f->bot, &s, 1, ev, &d, err, sizeof(err)), 0);
	mx_olm_decrypted_release(&d);
	json_decref(ev);
	mx_olm_session_free(s);

	/* inbound Megolm */
	p = mx_megolm_in_pickle(f->room_in, KEY, sizeof(KEY), err, sizeof(err));
	assert_null(mx_megolm_in_unpickle(p, WRONG_KEY, sizeof(WRONG_KEY), err, sizeof(err)));
	assert_non_null(strstr(err, "wrong pickle key"));
	struct mx_megolm_in *in = mx_megolm_in_unpickle(p, KEY, sizeof(KEY), err, sizeof(err));
	free(p);
	assert_non_null(in);
	assert_string_equal(mx_megolm_in_session_id(in), mx_megolm_in_session_id(f->room_in));
	assert_string_equal(mx_megolm_in_sender_key(in), f->h.curve);
	assert_int_equal(mx_megolm_in_first_index(in), 0);
	ev = human_room_event(&f->h, "$after", "after restart", ROOM);
	struct mx_megolm_decrypted md;
	assert_int_equal(mx_megolm_decrypt(in, ROOM, ev, &md, err, sizeof(err)), 0);
	mx_megolm_decrypted_release(&md);
	json_decref(ev);
	mx_megolm_in_free(in);

	/* outbound Megolm: same session, same count, same creation time */
	struct mx_megolm_out *out = mx_megolm_out_new(ROOM, 5000, err, sizeof(err));
	json_t *c = json_pack("{s:s}", "body", "x");
	json_decref(mx_megolm_out_encrypt(out, f->bot, "m.room.message", c, err, sizeof(err)));
	p = mx_megolm_out_pickle(out, KEY, sizeof(KEY), err, sizeof(err));
	assert_null(mx_megolm_out_unpickle(p, WRONG_KEY, sizeof(WRONG_KEY), err, sizeof(err)));
	struct mx_megolm_out *o2 = mx_megolm_out_unpickle(p, KEY, sizeof(KEY), err, sizeof(err));
	free(p);
	assert_non_null(o2);
	assert_string_equal(mx_megolm_out_session_id(o2), mx_megolm_out_session_id(out));
	assert_string_equal(mx_megolm_out_room_id(o2), ROOM);
	assert_int_equal(mx_megolm_out_message_count(o2), 1);
	assert_false(mx_megolm_out_needs_rotation(o2, 5000 + 1000, 2000, 0, 0));
	assert_true(mx_megolm_out_needs_rotation(o2, 5000 + 2000, 2000, 0, 0));
	json_decref(c);
	mx_megolm_out_free(o2);
	mx_megolm_out_free(out);
}

static void rotation_by_age_count_and_departure(void **state)
{
	(void)state;
	char err[256];
	struct mx_account *a = mx_account_new(BOT, BOTDEV, err, sizeof(err));
	struct mx_megolm_out *s = mx_megolm_out_new(ROOM, 0, err, sizeof(err));
	assert_false(mx_megolm_out_needs_rotation(s, 1, 0, 0, 0));
	assert_true(mx_megolm_out_needs_rotation(s, 1, 0, 0, 1));               /* a member left */
	assert_false(mx_megolm_out_needs_rotation(s, MX_ROTATION_MS_DEFAULT - 1, 0, 0, 0));
	assert_true(mx_megolm_out_needs_rotation(s, MX_ROTATION_MS_DEFAULT, 0, 0, 0)); /* a week */
	json_t *c = json_pack("{s:s}", "body", "x");
	for (int i = 0; i < 3; i++) {
		assert_false(mx_megolm_out_needs_rotation(s, 1, 0, 3, 0));
		json_decref(mx_megolm_out_encrypt(s, a, "m.room.message", c, err, sizeof(err)));
	}
	assert_true(mx_megolm_out_needs_rotation(s, 1, 0, 3, 0));
	assert_false(mx_megolm_out_needs_rotation(s, 1, 0, 0, 0)); /* default: 100 */
	json_decref(c);
	mx_megolm_out_free(s);
	mx_account_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(canonical_json_and_device_key_signature),
		cmocka_unit_test_setup_teardown(room_key_then_megolm_messages_decrypt, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(replayed_index_with_other_event_id_is_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(event_for_another_room_or_sender_is_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(malformed_input_is_an_error_not_a_crash, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(prekey_message_without_identity_key_is_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(olm_payload_for_someone_else_is_refused_and_sessions_are_reused,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(bot_reply_is_encrypted_and_human_decrypts_it, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(pickles_round_trip_and_refuse_a_wrong_key, fx_setup, fx_teardown),
		cmocka_unit_test(rotation_by_age_count_and_departure),
		cmocka_unit_test(fallback_key_is_signed_and_serves_several_sessions),
		cmocka_unit_test(replayed_prekey_message_on_fallback_key_is_refused),
		cmocka_unit_test_setup_teardown(forwarded_room_key_from_its_maker_only, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests_name("mx_crypto", tests, NULL, NULL);
}
