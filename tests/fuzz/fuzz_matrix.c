/* Fuzz target: arbitrary bytes as a Matrix /sync answer, handled by the
 * real transport on a temporary state directory (twice: the first sync
 * answers no history, the next ones do), encryption on: to_device events
 * go through Olm decryption, m.room.encrypted events through Megolm.
 *
 * So that mutations reach the code after a successful decryption, the
 * state holds a real inbound Megolm session of room !e2ee:localhost, and
 * the placeholders @SID@ and @CT@ in an input are replaced by its session
 * id and by a real ciphertext of a question (see the corpus). */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bot.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "matrix.h"
#include "mx_crypto.h"
#include "store.h"
#include "util.h"

#define ROOM "!e2ee:localhost"
static const char pickle_key[] = "fuzz-pickle-key";

static char *session_id, *ciphertext;

/* Once: a session of @alice:localhost in ROOM, stored as the transport
 * would have stored it from her m.room_key, and one message of it. */
static void make_session(struct store *st)
{
	char err[256];
	struct mx_account *alice = mx_account_new("@alice:localhost", "ALICE", err, sizeof(err));
	struct mx_megolm_out *out = mx_megolm_out_new(ROOM, wall_ms(), err, sizeof(err));
	json_t *rk = out ? mx_megolm_out_room_key(out, err, sizeof(err)) : NULL;
	struct mx_megolm_in *in = rk && alice ? mx_megolm_in_new(rk, "@alice:localhost", mx_account_curve25519(alice),
								 mx_account_ed25519(alice), err, sizeof(err)) : NULL;
	char *p = in ? mx_megolm_in_pickle(in, pickle_key, strlen(pickle_key), err, sizeof(err)) : NULL;
	json_t *q = json_pack("{s:s, s:s}", "msgtype", "m.text", "body", "combien ça coûte ?");
	json_t *enc = p ? mx_megolm_out_encrypt(out, alice, "m.room.message", q, err, sizeof(err)) : NULL;
	if (!enc || store_mx_megolm_in_set(st, ROOM, mx_megolm_in_session_id(in), mx_account_curve25519(alice),
					   p, 0) < 0 ||
	    store_mx_room_set(st, ROOM, MX_ALG_MEGOLM, MX_ROTATION_MS_DEFAULT, MX_ROTATION_MSGS_DEFAULT) < 0) {
		fprintf(stderr, "fuzz: cannot make the Megolm session: %s\n", err);
		abort();
	}
	session_id = xstrdup(mx_megolm_in_session_id(in));
	ciphertext = xstrdup(json_string_value(json_object_get(enc, "ciphertext")));
	json_decref(enc);
	json_decref(q);
	free(p);
	mx_megolm_in_free(in);
	json_decref(rk);
	mx_megolm_out_free(out);
	mx_account_free(alice);
}

/* data with @SID@ and @CT@ replaced (a new string). */
static char *fill(const uint8_t *data, size_t size, size_t *len)
{
	struct strbuf b = STRBUF_INIT;
	for (size_t i = 0; i < size; i++) {
		if (size - i >= 5 && !memcmp(data + i, "@SID@", 5)) {
			strbuf_addstr(&b, session_id);
			i += 4;
		} else if (size - i >= 4 && !memcmp(data + i, "@CT@", 4)) {
			strbuf_addstr(&b, ciphertext);
			i += 3;
		} else {
			strbuf_addch(&b, (char)data[i]);
		}
	}
	*len = b.len;
	return strbuf_detach(&b, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *st;
	struct bot *b;
	fuzz_state("mx", &st, &b);
	struct strbuf v = STRBUF_INIT;
	if (store_kv_get(st, "matrix.next_batch", &v) != 1 && /* histories are answered */
	    store_kv_set(st, "matrix.next_batch", "s0") < 0)
		abort();
	strbuf_release(&v);
	if (!session_id)
		make_session(st);
	struct http *h = http_new(NULL);
	struct mx_options o = { "http://127.0.0.1:9", "tok", NULL, NULL, '!', NULL, 1, 30, 1, 0, NULL,
				NULL, 10, 30, 300, 1, pickle_key, strlen(pickle_key) };
	struct transport *t = mx_new(&o, b, st, h);
	size_t len;
	char *body = fill(data, size, &len);
	mx_feed_sync(t, body, len);
	free(body);
	http_free(h);
	transport_free(t);
	log_clear_secrets();
	return 0;
}
