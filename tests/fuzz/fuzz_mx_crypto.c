/* Fuzz target: the Matrix decryption paths (src/mx_crypto.c) on hostile
 * input.  The first byte picks what the rest is:
 *   0  a whole to-device event (JSON) for mx_olm_decrypt
 *   1  a whole room event (JSON) for mx_megolm_decrypt
 *   2  an m.room_key or m.forwarded_room_key content (JSON) for
 *      mx_megolm_in_new and mx_megolm_in_from_forwarded
 *   3  a stored pickle (any kind) for the four unpickle functions
 *   4  raw bytes as a Megolm ciphertext in a well-formed event
 *   5  raw bytes as an Olm pre-key body (type 0), 6 as a normal body (type 1)
 *   7  raw bytes as the session_key of a well-formed m.room_key and of a
 *      well-formed m.forwarded_room_key
 *   8  (offset, xor) byte pairs applied to a real Megolm ciphertext
 *   9  (offset, xor) byte pairs applied to a real Olm pre-key message
 * Keys are made once per process: a bot account, a peer account with an
 * outbound Olm session to it, and a Megolm session shared with the bot. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mx_crypto.h"

#define ROOM "!fuzz:localhost"
#define PEER "@peer:localhost"
static const char KEY[] = "fuzz pickle key";

static struct {
	struct mx_account *bot, *peer;
	struct mx_olm_session *bot_in;  /* none until a pre-key message lands */
	struct mx_megolm_in *room_in;
	char *megolm_ct;                /* a valid Megolm ciphertext */
	char *olm_body;                 /* a valid Olm pre-key body */
	char *session_id;
} g;

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_mx_crypto: %s: %s\n", what, err);
	abort();
}

static void setup(void)
{
	char err[256];
	g.bot = mx_account_new("@bot:localhost", "BOT", err, sizeof(err));
	g.peer = mx_account_new(PEER, "PEER", err, sizeof(err));
	if (!g.bot || !g.peer)
		die("accounts", err);
	json_t *up = mx_account_keys_upload_body(g.bot, 0, 0, err, sizeof(err));
	const char *name;
	json_t *otk, *one = NULL;
	json_object_foreach(json_object_get(up, "one_time_keys"), name, otk) {
		one = json_pack("{s:O}", name, otk);
		break;
	}
	struct mx_olm_session *out = mx_olm_session_new_outbound(
		g.peer, "@bot:localhost", "BOT", mx_account_curve25519(g.bot),
		mx_account_ed25519(g.bot), one, err, sizeof(err));
	if (!out)
		die("olm session", err);
	json_decref(one);
	json_decref(up);
	mx_account_mark_published(g.bot);

	struct mx_megolm_out *mo = mx_megolm_out_new(ROOM, 0, err, sizeof(err));
	json_t *rk = mx_megolm_out_room_key(mo, err, sizeof(err));
	g.room_in = mx_megolm_in_new(rk, PEER, mx_account_curve25519(g.peer),
				     mx_account_ed25519(g.peer), err, sizeof(err));
	if (!g.room_in)
		die("megolm session", err);
	json_t *td = mx_olm_encrypt(g.peer, out, "@bot:localhost", mx_account_ed25519(g.bot),
				    "m.room_key", rk, err, sizeof(err));
	g.olm_body = strdup(json_string_value(json_object_get(
		json_object_get(json_object_get(td, "ciphertext"), mx_account_curve25519(g.bot)),
		"body")));
	json_decref(td);
	json_decref(rk);
	json_t *c = json_pack("{s:s, s:s}", "msgtype", "m.text", "body", "question");
	json_t *enc = mx_megolm_out_encrypt(mo, g.peer, "m.room.message", c, err, sizeof(err));
	g.megolm_ct = strdup(json_string_value(json_object_get(enc, "ciphertext")));
	g.session_id = strdup(mx_megolm_out_session_id(mo));
	json_decref(enc);
	json_decref(c);
	mx_megolm_out_free(mo);
	mx_olm_session_free(out);
}

static void try_olm(const json_t *ev)
{
	char err[256];
	struct mx_olm_decrypted d;
	struct mx_olm_session *ss[1] = { g.bot_in };
	if (mx_olm_decrypt(g.bot, ss, g.bot_in ? 1 : 0, ev, &d, err, sizeof(err)) == 0 &&
	    d.type && strcmp(d.type, "m.room_key") == 0)
		mx_megolm_in_free(mx_megolm_in_new(d.content, d.sender, d.sender_key,
						   d.sender_ed25519, err, sizeof(err)));
	mx_olm_decrypted_release(&d);
}

static void try_megolm(const json_t *ev)
{
	char err[256];
	struct mx_megolm_decrypted d;
	mx_megolm_decrypt(g.room_in, ROOM, ev, &d, err, sizeof(err));
	mx_megolm_decrypted_release(&d);
}

static json_t *olm_event(json_t *body, int type)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:{s:i, s:o}}}}", "type", "m.room.encrypted",
			 "sender", PEER, "content", "algorithm", MX_ALG_OLM, "sender_key",
			 mx_account_curve25519(g.peer), "ciphertext", mx_account_curve25519(g.bot),
			 "type", type, "body", body);
}

static json_t *megolm_event(json_t *ct)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:o, s:s}}", "event_id", "$fuzz", "type",
			 "m.room.encrypted", "sender", PEER, "content", "algorithm", MX_ALG_MEGOLM,
			 "ciphertext", ct, "session_id", g.session_id);
}

/* A copy of s with data's (offset, xor) pairs applied. */
static json_t *flipped(const char *s, const uint8_t *data, size_t size)
{
	size_t n = strlen(s);
	char *c = strdup(s);
	for (size_t i = 0; i + 1 < size; i += 2)
		c[data[i] % n] ^= (char)data[i + 1];
	json_t *j = json_stringn_nocheck(c, n);
	free(c);
	return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (!g.bot)
		setup();
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 10;
	const char *text = (const char *)data + 1;
	size_t n = size - 1;
	json_t *j = NULL;
	switch (mode) {
	case 0:
	case 1:
	case 2:
		j = json_loadb(text, n, 0, NULL);
		if (mode == 0)
			try_olm(j);
		else if (mode == 1)
			try_megolm(j);
		else {
			mx_megolm_in_free(mx_megolm_in_new(j, PEER, "k", "e", err, sizeof(err)));
			mx_megolm_in_free(mx_megolm_in_from_forwarded(
				j, PEER, json_string_value(json_object_get(j, "sender_key")), err,
				sizeof(err)));
		}
		break;
	case 3: {
		/* not strndup: the input has no NUL, and ASan's strict string
		 * checks (run.sh) read past n looking for one */
		char *p = malloc(n + 1);
		if (!p)
			break;
		memcpy(p, text, n);
		p[n] = '\0';
		mx_account_free(mx_account_unpickle(p, KEY, sizeof(KEY), err, sizeof(err)));
		mx_olm_session_free(mx_olm_session_unpickle(p, KEY, sizeof(KEY), err, sizeof(err)));
		mx_megolm_in_free(mx_megolm_in_unpickle(p, KEY, sizeof(KEY), err, sizeof(err)));
		mx_megolm_out_free(mx_megolm_out_unpickle(p, KEY, sizeof(KEY), err, sizeof(err)));
		free(p);
		break;
	}
	case 4:
		j = megolm_event(json_stringn_nocheck(text, n));
		try_megolm(j);
		break;
	case 5:
	case 6:
		j = olm_event(json_stringn_nocheck(text, n), mode == 5 ? 0 : 1);
		try_olm(j);
		break;
	case 7:
		j = json_pack("{s:s, s:s, s:s, s:o}", "algorithm", MX_ALG_MEGOLM, "room_id", ROOM,
			      "session_id", g.session_id, "session_key", json_stringn_nocheck(text, n));
		mx_megolm_in_free(mx_megolm_in_new(j, PEER, "k", "e", err, sizeof(err)));
		json_object_set_new(j, "sender_key", json_string("k"));
		json_object_set_new(j, "sender_claimed_ed25519_key", json_string("e"));
		json_object_set_new(j, "forwarding_curve25519_key_chain", json_array());
		mx_megolm_in_free(mx_megolm_in_from_forwarded(j, PEER, "k", err, sizeof(err)));
		break;
	case 8:
		j = megolm_event(flipped(g.megolm_ct, data + 1, n));
		try_megolm(j);
		break;
	default:
		j = olm_event(flipped(g.olm_body, data + 1, n), 0);
		try_olm(j);
		break;
	}
	json_decref(j);
	return 0;
}
