/*
 * mx_crypto.c - Matrix end-to-end encryption over libolm (see mx_crypto.h).
 *
 * The model (Client-Server API, "End-to-end encryption"):
 *   - the bot's device has an Olm account: a long-term curve25519 key (Olm
 *     key agreement) and ed25519 key (signatures), published by /keys/upload
 *     in a signed `device_keys`, plus one-time keys others claim to open an
 *     Olm session with it;
 *   - Olm sessions (a double ratchet between two devices) carry to-device
 *     messages: above all m.room_key, which hands over a Megolm session;
 *   - a room's messages are Megolm-encrypted: each sending device has an
 *     outbound session per room and shares its key with every device of the
 *     room's members; receivers hold one inbound session per (room, session
 *     id).  Sessions are replaced after rotation_period_ms /
 *     rotation_period_msgs and when a member leaves (so the leaver cannot
 *     read what follows).
 * Nothing here talks to the network or the store: callers pass JSON in,
 * get JSON and pickles out, and persist the pickles (mx_crypto.h says when).
 *
 * libolm's status, accurately: libolm (the C/C++ reference implementation,
 * Debian's libolm 3.2.x) was formally deprecated by the Matrix team in
 * August 2024 in favour of vodozemac (Rust), which maintains it no longer.
 * Its primitives were always documented as functionally correct but not
 * resistant to timing attacks, and three CVEs were registered after the
 * August 2024 disclosure by Soatok: CVE-2024-45191 (the AES implementation is
 * vulnerable to cache-timing attacks), CVE-2024-45192 (the base64 decoding
 * of sensitive data has a timing side channel), CVE-2024-45193 (Ed25519
 * signatures are malleable).  The Matrix team's assessment is that an attack
 * over the network is not feasible (short-lived keys, noisy multi-hop
 * timings, rate limits) while a local attacker might succeed; none of these
 * is fixed in libolm.  faqbot uses it because it is the E2EE library Debian 12
 * ships (vodozemac has no C package there); replacing it later only touches
 * this file.
 *
 * Pickles: libolm's pickle (encrypted with the caller's key) wrapped in a
 * small JSON object with the public metadata the caller needs to look a
 * session up again ({"v":1,"kind":...,"olm":"<libolm pickle>",...}).
 * Replay protection for Megolm keeps, per inbound session, the event id of
 * each message index seen (at most MX_REPLAY_MAX; older indexes are then
 * refused outright), inside that pickle.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, getrandom */
#include "mx_crypto.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <olm/inbound_group_session.h>
#include <olm/olm.h>
#include <olm/outbound_group_session.h>

#define MX_REPLAY_MAX 4096
#define MX_JSON_MAX_INT 9007199254740991LL /* 2^53 - 1 */

struct mx_account {
	OlmAccount *olm;
	void *mem;
	char *user_id;
	char *device_id;
	char *curve;
	char *ed;
};

struct mx_olm_session {
	OlmSession *olm;
	void *mem;
	char *id;
	char *peer_key;
};

struct replay_entry {
	uint32_t index;
	char *event_id;
};

struct mx_megolm_in {
	OlmInboundGroupSession *olm;
	void *mem;
	char *room_id;
	char *session_id;
	char *sender;
	char *sender_key;
	char *sender_ed;
	struct replay_entry *seen; /* sorted by index */
	size_t nseen, aseen;
	int64_t floor;             /* indexes <= floor were forgotten: refused; -1 none */
};

struct mx_megolm_out {
	OlmOutboundGroupSession *olm;
	void *mem;
	char *room_id;
	char *session_id;
	int64_t created_ms;
};

/* ==== Small helpers ==== */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
						      const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized): va_start is two lines up */
		va_end(ap);
	}
	return -1;
}

/* Fills buf with n random bytes from the kernel.  0 / -1. */
static int random_fill(void *buf, size_t n, char *err, size_t errlen)
{
	unsigned char *p = buf;
	while (n) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return fail(err, errlen, "the system gave no random bytes for a new key (%s)",
				    strerror(errno));
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A malloc'd random buffer of n bytes (n may be 0: returns a 1-byte one). */
static unsigned char *random_new(size_t n, char *err, size_t errlen)
{
	unsigned char *r = xmalloc(n ? n : 1);
	if (random_fill(r, n, err, errlen) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void wipe_free(void *p, size_t n)
{
	if (p) {
		explicit_bzero(p, n);
		free(p);
	}
}

/* The string member k of o, or NULL. */
static const char *str_of(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *pickle_wrap(json_t *env, const char *olm_pickle, size_t n)
{
	json_object_set_new(env, "v", json_integer(1));
	json_object_set_new(env, "olm", json_stringn(olm_pickle, n));
	char *s = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(env);
	if (!s)
		abort(); /* only out of memory: all strings are ASCII or checked UTF-8 */
	return s;
}

/* Parses a pickle envelope of the given kind; *olm gets a malloc'd copy
 * of the libolm pickle (libolm overwrites its input). */
static json_t *pickle_open(const char *pickle, const char *kind, char **olm, size_t *olmlen,
			   char *err, size_t errlen)
{
	json_t *env = pickle ? json_loads(pickle, 0, NULL) : NULL;
	const char *p = str_of(env, "olm");
	if (!env || json_integer_value(json_object_get(env, "v")) != 1 || !p ||
	    !str_of(env, "kind") || strcmp(str_of(env, "kind"), kind) != 0) {
		json_decref(env);
		fail(err, errlen, "the stored %s is not a faqbot encryption pickle", kind);
		return NULL;
	}
	*olmlen = json_string_length(json_object_get(env, "olm"));
	*olm = xstrndup(p, *olmlen);
	return env;
}

static const char *unpickle_error(const char *olm_err)
{
	if (strcmp(olm_err, "BAD_ACCOUNT_KEY") == 0)
		return "wrong pickle key (the encryption key setting changed?)";
	return olm_err;
}

const char *mx_crypto_olm_version(void)
{
	static char v[32];
	if (!v[0]) {
		uint8_t a, b, c;
		olm_get_library_version(&a, &b, &c);
		snprintf(v, sizeof(v), "%u.%u.%u", a, b, c);
	}
	return v;
}

/* ==== Canonical JSON and signatures ==== */

static int canonical_ok(const json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_REAL:
		return 0;
	case JSON_INTEGER:
		return json_integer_value(v) <= MX_JSON_MAX_INT &&
		       json_integer_value(v) >= -MX_JSON_MAX_INT;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, x)
			if (!canonical_ok(x))
				return 0;
		return 1;
	case JSON_ARRAY:
		json_array_foreach(v, i, x)
			if (!canonical_ok(x))
				return 0;
		return 1;
	default:
		return 1;
	}
}

char *mx_canonical_json(const json_t *obj, char *err, size_t errlen)
{
	if (!json_is_object(obj)) {
		fail(err, errlen, "only a JSON object can be signed");
		return NULL;
	}
	if (!canonical_ok(obj)) {
		fail(err, errlen, "the object holds a fractional or too large number, "
				  "which canonical JSON cannot carry");
		return NULL;
	}
	json_t *c = json_copy((json_t *)obj);
	json_object_del(c, "signatures");
	json_object_del(c, "unsigned");
	/* Sorted keys (strcmp on UTF-8 = code point order), compact
	 * separators, UTF-8 left unescaped: canonical JSON. */
	char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	if (!s)
		fail(err, errlen, "the object could not be written as JSON");
	return s;
}

int mx_verify_signature(const json_t *obj, const char *user_id, const char *key_id,
			const char *ed25519_key, char *err, size_t errlen)
{
	char kid[256];
	snprintf(kid, sizeof(kid), "ed25519:%s", key_id ? key_id : "");
	const char *sig = str_of(json_object_get(json_object_get(obj, "signatures"), user_id), kid);
	if (!sig)
		return fail(err, errlen, "no ed25519 signature by %s's key %s", user_id, key_id);
	if (!ed25519_key)
		return fail(err, errlen, "no ed25519 key to check the signature with");
	char *canon = mx_canonical_json(obj, err, errlen);
	if (!canon)
		return -1;
	void *mem = xmalloc(olm_utility_size());
	OlmUtility *u = olm_utility(mem);
	char *sigcopy = xstrdup(sig); /* libolm may overwrite its inputs */
	size_t r = olm_ed25519_verify(u, ed25519_key, strlen(ed25519_key), canon, strlen(canon),
				      sigcopy, strlen(sigcopy));
	int rc = 0;
	if (r == olm_error())
		rc = fail(err, errlen, "the signature by %s's key %s does not verify (%s)", user_id,
			  key_id, olm_utility_last_error(u));
	olm_clear_utility(u);
	free(mem);
	free(sigcopy);
	free(canon);
	return rc;
}

static int has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
		if (json_is_string(x) && strcmp(json_string_value(x), s) == 0)
			return 1;
	return 0;
}

int mx_device_keys_check(const json_t *obj, const char *user_id, const char *device_id,
			 const char **curve, const char **ed, char *err, size_t errlen)
{
	char k[256];
	if (!json_is_object(obj) || !str_of(obj, "user_id") || !str_of(obj, "device_id") ||
	    strcmp(str_of(obj, "user_id"), user_id) != 0 ||
	    strcmp(str_of(obj, "device_id"), device_id) != 0)
		return fail(err, errlen, "the keys listed for %s's device %s name another device",
			    user_id, device_id);
	json_t *algs = json_object_get(obj, "algorithms");
	if (!has_string(algs, MX_ALG_OLM) || !has_string(algs, MX_ALG_MEGOLM))
		return fail(err, errlen, "%s's device %s does not support Olm and Megolm", user_id,
			    device_id);
	json_t *keys = json_object_get(obj, "keys");
	snprintf(k, sizeof(k), "curve25519:%s", device_id);
	const char *c = str_of(keys, k);
	snprintf(k, sizeof(k), "ed25519:%s", device_id);
	const char *e = str_of(keys, k);
	if (!c || !e)
		return fail(err, errlen, "%s's device %s lists no curve25519 or ed25519 key",
			    user_id, device_id);
	if (mx_verify_signature(obj, user_id, device_id, e, err, errlen) < 0)
		return -1;
	if (curve)
		*curve = c;
	if (ed)
		*ed = e;
	return 0;
}

/* ==== Account ==== */

static struct mx_account *account_alloc(const char *user_id, const char *device_id)
{
	struct mx_account *a = xcalloc(1, sizeof(*a));
	a->mem = xmalloc(olm_account_size());
	a->olm = olm_account(a->mem);
	a->user_id = xstrdup(user_id);
	a->device_id = xstrdup(device_id);
	return a;
}

/* Reads the identity keys into a->curve / a->ed. */
static int account_load_ids(struct mx_account *a, char *err, size_t errlen)
{
	size_t n = olm_account_identity_keys_length(a->olm);
	char *buf = xmalloc(n + 1);
	if (olm_account_identity_keys(a->olm, buf, n) == olm_error()) {
		free(buf);
		return fail(err, errlen, "libolm gave no identity keys (%s)",
			    olm_account_last_error(a->olm));
	}
	buf[n] = '\0';
	json_t *ids = json_loads(buf, 0, NULL);
	free(buf);
	if (!str_of(ids, "curve25519") || !str_of(ids, "ed25519")) {
		json_decref(ids);
		return fail(err, errlen, "libolm's identity keys are not as expected");
	}
	a->curve = xstrdup(str_of(ids, "curve25519"));
	a->ed = xstrdup(str_of(ids, "ed25519"));
	json_decref(ids);
	return 0;
}

struct mx_account *mx_account_new(const char *user_id, const char *device_id, char *err,
				  size_t errlen)
{
	if (!user_id || !device_id) {
		fail(err, errlen, "an encryption account needs a user id and a device id");
		return NULL;
	}
	struct mx_account *a = account_alloc(user_id, device_id);
	size_t n = olm_create_account_random_length(a->olm);
	unsigned char *rnd = random_new(n, err, errlen);
	if (!rnd) {
		mx_account_free(a);
		return NULL;
	}
	size_t r = olm_create_account(a->olm, rnd, n);
	wipe_free(rnd, n);
	if (r == olm_error()) {
		fail(err, errlen, "libolm could not create the device keys (%s)",
		     olm_account_last_error(a->olm));
		mx_account_free(a);
		return NULL;
	}
	if (account_load_ids(a, err, errlen) < 0) {
		mx_account_free(a);
		return NULL;
	}
	return a;
}

char *mx_account_pickle(struct mx_account *a, const void *key, size_t keylen, char *err,
			size_t errlen)
{
	size_t n = olm_pickle_account_length(a->olm);
	char *buf = xmalloc(n + 1);
	if (olm_pickle_account(a->olm, key, keylen, buf, n) == olm_error()) {
		fail(err, errlen, "libolm could not save the account (%s)",
		     olm_account_last_error(a->olm));
		free(buf);
		return NULL;
	}
	json_t *env = json_pack("{s:s, s:s, s:s}", "kind", "account", "user_id", a->user_id,
				"device_id", a->device_id);
	char *s = env ? pickle_wrap(env, buf, n) : NULL;
	free(buf);
	if (!s)
		fail(err, errlen, "the user or device id is not valid UTF-8");
	return s;
}

struct mx_account *mx_account_unpickle(const char *pickle, const void *key, size_t keylen,
				       char *err, size_t errlen)
{
	char *olm;
	size_t n;
	json_t *env = pickle_open(pickle, "account", &olm, &n, err, errlen);
	if (!env)
		return NULL;
	const char *u = str_of(env, "user_id"), *d = str_of(env, "device_id");
	struct mx_account *a = NULL;
	if (!u || !d) {
		fail(err, errlen, "the stored account names no user or device");
	} else {
		a = account_alloc(u, d);
		if (olm_unpickle_account(a->olm, key, keylen, olm, n) == olm_error()) {
			fail(err, errlen, "the stored account could not be read: %s",
			     unpickle_error(olm_account_last_error(a->olm)));
			mx_account_free(a);
			a = NULL;
		} else if (account_load_ids(a, err, errlen) < 0) {
			mx_account_free(a);
			a = NULL;
		}
	}
	free(olm);
	json_decref(env);
	return a;
}

void mx_account_free(struct mx_account *a)
{
	if (!a)
		return;
	olm_clear_account(a->olm);
	free(a->mem);
	free(a->user_id);
	free(a->device_id);
	free(a->curve);
	free(a->ed);
	free(a);
}

const char *mx_account_user_id(const struct mx_account *a) { return a->user_id; }
const char *mx_account_device_id(const struct mx_account *a) { return a->device_id; }
const char *mx_account_curve25519(const struct mx_account *a) { return a->curve; }
const char *mx_account_ed25519(const struct mx_account *a) { return a->ed; }

int mx_account_sign_json(struct mx_account *a, json_t *obj, char *err, size_t errlen)
{
	char *canon = mx_canonical_json(obj, err, errlen);
	if (!canon)
		return -1;
	size_t n = olm_account_signature_length(a->olm);
	char *sig = xmalloc(n + 1);
	size_t r = olm_account_sign(a->olm, canon, strlen(canon), sig, n);
	free(canon);
	if (r == olm_error()) {
		free(sig);
		return fail(err, errlen, "libolm could not sign (%s)", olm_account_last_error(a->olm));
	}
	sig[n] = '\0';
	json_t *sigs = json_object_get(obj, "signatures");
	if (!json_is_object(sigs)) {
		sigs = json_object();
		json_object_set_new(obj, "signatures", sigs);
	}
	json_t *mine = json_object_get(sigs, a->user_id);
	if (!json_is_object(mine)) {
		mine = json_object();
		json_object_set_new(sigs, a->user_id, mine);
	}
	char kid[256];
	snprintf(kid, sizeof(kid), "ed25519:%s", a->device_id);
	json_object_set_new(mine, kid, json_string(sig));
	free(sig);
	return 0;
}

json_t *mx_account_device_keys(struct mx_account *a, char *err, size_t errlen)
{
	char kc[256], ke[256];
	snprintf(kc, sizeof(kc), "curve25519:%s", a->device_id);
	snprintf(ke, sizeof(ke), "ed25519:%s", a->device_id);
	json_t *dk = json_pack("{s:s, s:s, s:[s, s], s:{s:s, s:s}}", "user_id", a->user_id,
			       "device_id", a->device_id, "algorithms", MX_ALG_OLM, MX_ALG_MEGOLM,
			       "keys", kc, a->curve, ke, a->ed);
	if (!dk) {
		fail(err, errlen, "the user or device id is not valid UTF-8");
		return NULL;
	}
	if (mx_account_sign_json(a, dk, err, errlen) < 0) {
		json_decref(dk);
		return NULL;
	}
	return dk;
}

/* The unpublished one-time keys: {"curve25519": {"AAAAAQ": "key", ...}}. */
static json_t *account_otks(struct mx_account *a)
{
	size_t n = olm_account_one_time_keys_length(a->olm);
	char *buf = xmalloc(n + 1);
	json_t *o = NULL;
	if (olm_account_one_time_keys(a->olm, buf, n) != olm_error()) {
		buf[n] = '\0';
		o = json_loads(buf, 0, NULL);
	}
	free(buf);
	return o;
}

size_t mx_account_otk_wanted(const struct mx_account *a, long long server_count)
{
	long long target = (long long)olm_account_max_number_of_one_time_keys(a->olm) / 2;
	json_t *o = account_otks((struct mx_account *)a);
	long long unpublished = (long long)json_object_size(json_object_get(o, "curve25519"));
	json_decref(o);
	if (server_count < 0)
		server_count = 0;
	long long want = target - server_count - unpublished;
	return want > 0 ? (size_t)want : 0;
}

/* {"signed_curve25519:ID": {"key", ["fallback": true,] "signatures"}} for
 * each {"ID": "key"} of curve. */
static json_t *signed_keys(struct mx_account *a, const json_t *curve, int fallback, char *err,
			   size_t errlen)
{
	json_t *out = json_object();
	const char *id;
	json_t *k;
	json_object_foreach((json_t *)curve, id, k) {
		json_t *signed_key = json_pack("{s:O}", "key", k);
		char name[128];
		if (signed_key && fallback)
			json_object_set_new(signed_key, "fallback", json_true());
		if (!signed_key || mx_account_sign_json(a, signed_key, err, errlen) < 0) {
			json_decref(signed_key);
			json_decref(out);
			return NULL;
		}
		snprintf(name, sizeof(name), "signed_curve25519:%s", id);
		json_object_set_new(out, name, signed_key);
	}
	return out;
}

json_t *mx_account_keys_upload_body(struct mx_account *a, int with_device_keys,
				    long long server_count, char *err, size_t errlen)
{
	size_t want = mx_account_otk_wanted(a, server_count);
	if (want) {
		size_t n = olm_account_generate_one_time_keys_random_length(a->olm, want);
		unsigned char *rnd = random_new(n, err, errlen);
		if (!rnd)
			return NULL;
		size_t r = olm_account_generate_one_time_keys(a->olm, want, rnd, n);
		wipe_free(rnd, n);
		if (r == olm_error()) {
			fail(err, errlen, "libolm could not make one-time keys (%s)",
			     olm_account_last_error(a->olm));
			return NULL;
		}
	}
	json_t *body = json_object();
	if (with_device_keys) {
		json_t *dk = mx_account_device_keys(a, err, errlen);
		if (!dk) {
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "device_keys", dk);
	}
	json_t *o = account_otks(a);
	json_t *curve = json_object_get(o, "curve25519");
	if (json_object_size(curve)) {
		json_t *out = signed_keys(a, curve, 0, err, errlen);
		if (!out) {
			json_decref(o);
			json_decref(body);
			return NULL;
		}
		json_object_set_new(body, "one_time_keys", out);
	}
	json_decref(o);
	return body;
}

json_t *mx_account_fallback_keys(struct mx_account *a, char *err, size_t errlen)
{
	size_t n = olm_account_generate_fallback_key_random_length(a->olm);
	unsigned char *rnd = random_new(n, err, errlen);
	if (!rnd)
		return NULL;
	size_t r = olm_account_generate_fallback_key(a->olm, rnd, n);
	wipe_free(rnd, n);
	if (r == olm_error()) {
		fail(err, errlen, "libolm could not make a fallback key (%s)",
		     olm_account_last_error(a->olm));
		return NULL;
	}
	n = olm_account_unpublished_fallback_key_length(a->olm);
	char *buf = xmalloc(n + 1);
	json_t *o = NULL;
	if (olm_account_unpublished_fallback_key(a->olm, buf, n) != olm_error()) {
		buf[n] = '\0';
		o = json_loads(buf, 0, NULL);
	}
	free(buf);
	json_t *curve = json_object_get(o, "curve25519");
	json_t *out = json_object_size(curve) ? signed_keys(a, curve, 1, err, errlen) : NULL;
	if (!out && json_object_size(curve) == 0)
		fail(err, errlen, "libolm gave no fallback key");
	json_decref(o);
	return out;
}

void mx_account_forget_old_fallback_key(struct mx_account *a)
{
	olm_account_forget_old_fallback_key(a->olm);
}

void mx_account_mark_published(struct mx_account *a)
{
	olm_account_mark_keys_as_published(a->olm);
}

/* ==== Olm sessions ==== */

static struct mx_olm_session *olm_session_alloc(const char *peer_key)
{
	struct mx_olm_session *s = xcalloc(1, sizeof(*s));
	s->mem = xmalloc(olm_session_size());
	s->olm = olm_session(s->mem);
	s->peer_key = xstrdup(peer_key);
	return s;
}

static int olm_session_load_id(struct mx_olm_session *s, char *err, size_t errlen)
{
	size_t n = olm_session_id_length(s->olm);
	char *id = xmalloc(n + 1);
	if (olm_session_id(s->olm, id, n) == olm_error()) {
		free(id);
		return fail(err, errlen, "libolm gave no session id (%s)",
			    olm_session_last_error(s->olm));
	}
	id[n] = '\0';
	free(s->id);
	s->id = id;
	return 0;
}

const char *mx_olm_session_id(const struct mx_olm_session *s) { return s->id; }
const char *mx_olm_session_peer_key(const struct mx_olm_session *s) { return s->peer_key; }

char *mx_olm_session_pickle(struct mx_olm_session *s, const void *key, size_t keylen,
			    char *err, size_t errlen)
{
	size_t n = olm_pickle_session_length(s->olm);
	char *buf = xmalloc(n + 1);
	if (olm_pickle_session(s->olm, key, keylen, buf, n) == olm_error()) {
		fail(err, errlen, "libolm could not save an Olm session (%s)",
		     olm_session_last_error(s->olm));
		free(buf);
		return NULL;
	}
	json_t *env = json_pack("{s:s, s:s}", "kind", "olm_session", "peer_key", s->peer_key);
	char *r = env ? pickle_wrap(env, buf, n) : NULL;
	free(buf);
	return r;
}

struct mx_olm_session *mx_olm_session_unpickle(const char *pickle, const void *key,
					       size_t keylen, char *err, size_t errlen)
{
	char *olm;
	size_t n;
	json_t *env = pickle_open(pickle, "olm_session", &olm, &n, err, errlen);
	if (!env)
		return NULL;
	struct mx_olm_session *s = NULL;
	if (!str_of(env, "peer_key")) {
		fail(err, errlen, "the stored Olm session names no peer");
	} else {
		s = olm_session_alloc(str_of(env, "peer_key"));
		if (olm_unpickle_session(s->olm, key, keylen, olm, n) == olm_error()) {
			fail(err, errlen, "a stored Olm session could not be read: %s",
			     unpickle_error(olm_session_last_error(s->olm)));
			mx_olm_session_free(s);
			s = NULL;
		} else if (olm_session_load_id(s, err, errlen) < 0) {
			mx_olm_session_free(s);
			s = NULL;
		}
	}
	free(olm);
	json_decref(env);
	return s;
}

void mx_olm_session_free(struct mx_olm_session *s)
{
	if (!s)
		return;
	olm_clear_session(s->olm);
	free(s->mem);
	free(s->id);
	free(s->peer_key);
	free(s);
}

void mx_olm_decrypted_release(struct mx_olm_decrypted *d)
{
	if (!d)
		return;
	json_decref(d->payload);
	free(d->sender);
	free(d->sender_key);
	free(d->sender_ed25519);
	mx_olm_session_free(d->new_session);
	memset(d, 0, sizeof(*d));
	d->session_index = -1;
}

/* Decrypts body (type) with s; the plaintext (malloc'd, NUL-terminated,
 * caller wipes and frees) or NULL.  body is copied: libolm destroys it. */
static char *olm_try_decrypt(struct mx_olm_session *s, size_t type, const char *body,
			     size_t *plen, const char **why)
{
	size_t blen = strlen(body);
	char *tmp = xstrndup(body, blen);
	size_t max = olm_decrypt_max_plaintext_length(s->olm, type, tmp, blen);
	free(tmp);
	if (max == olm_error()) {
		*why = olm_session_last_error(s->olm);
		return NULL;
	}
	tmp = xstrndup(body, blen);
	char *plain = xmalloc(max + 1);
	size_t n = olm_decrypt(s->olm, type, tmp, blen, plain, max);
	free(tmp);
	if (n == olm_error()) {
		*why = olm_session_last_error(s->olm);
		wipe_free(plain, max + 1);
		return NULL;
	}
	plain[n] = '\0';
	*plen = n;
	return plain;
}

/* Checks the decrypted payload's sender / recipient / keys fields. */
static int olm_check_payload(struct mx_account *a, const json_t *p, const char *sender,
			     char *err, size_t errlen)
{
	if (!json_is_object(p) || !str_of(p, "type") || !json_is_object(json_object_get(p, "content")))
		return fail(err, errlen, "the decrypted to-device message is not an event");
	if (!str_of(p, "sender") || strcmp(str_of(p, "sender"), sender) != 0)
		return fail(err, errlen, "the decrypted to-device message names another sender "
					 "than %s", sender);
	if (!str_of(p, "recipient") || strcmp(str_of(p, "recipient"), a->user_id) != 0)
		return fail(err, errlen, "the to-device message from %s was meant for another user",
			    sender);
	const char *rk = str_of(json_object_get(p, "recipient_keys"), "ed25519");
	if (!rk || strcmp(rk, a->ed) != 0)
		return fail(err, errlen, "the to-device message from %s was meant for another "
					 "device", sender);
	if (!str_of(json_object_get(p, "keys"), "ed25519"))
		return fail(err, errlen, "the to-device message from %s does not name its "
					 "sender's signing key", sender);
	return 0;
}

int mx_olm_decrypt(struct mx_account *a, struct mx_olm_session **sessions, size_t n,
		   const json_t *event, struct mx_olm_decrypted *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->session_index = -1;
	json_t *content = json_object_get(event, "content");
	const char *sender = str_of(event, "sender");
	const char *alg = str_of(content, "algorithm");
	const char *sender_key = str_of(content, "sender_key");
	if (!sender || !alg || !sender_key)
		return fail(err, errlen, "the encrypted to-device message lacks sender, algorithm "
					 "or sender_key");
	if (strcmp(alg, MX_ALG_OLM) != 0)
		return fail(err, errlen, "a to-device message from %s uses an unsupported "
					 "algorithm", sender);
	json_t *mine = json_object_get(json_object_get(content, "ciphertext"), a->curve);
	const char *body = str_of(mine, "body");
	json_t *jtype = json_object_get(mine, "type");
	if (!body || !json_is_integer(jtype) ||
	    (json_integer_value(jtype) != 0 && json_integer_value(jtype) != 1))
		return fail(err, errlen, "the to-device message from %s holds no ciphertext for "
					 "this device", sender);
	size_t type = (size_t)json_integer_value(jtype);
	size_t blen = strlen(body);
	const char *why = "no session";
	char *plain = NULL;
	size_t plen = 0;
	int matched = 0;

	for (size_t i = 0; i < n && !plain; i++) {
		if (!sessions[i] || strcmp(sessions[i]->peer_key, sender_key) != 0)
			continue;
		if (type == OLM_MESSAGE_TYPE_PRE_KEY) {
			char *tmp = xstrndup(body, blen);
			size_t m = olm_matches_inbound_session_from(sessions[i]->olm, sender_key,
								    strlen(sender_key), tmp, blen);
			free(tmp);
			if (m != 1)
				continue;
			matched = 1;
		}
		plain = olm_try_decrypt(sessions[i], type, body, &plen, &why);
		if (plain)
			out->session_index = (int)i;
	}
	/* A pre-key message its own session cannot decrypt is a replay (or a
	 * forgery): opening a second session from it would accept it again
	 * when its one-time key is the fallback key, which is never used up. */
	if (!plain && type == OLM_MESSAGE_TYPE_PRE_KEY && !matched) {
		/* Not olm_create_inbound_session_from: in libolm 3.2.x it reads
		 * the message's identity key without checking it is there, and
		 * a pre-key message without one crashes it (found by
		 * fuzz_mx_crypto).  The plain call refuses such a message; the
		 * sender is then checked with olm_matches_inbound_session_from,
		 * which does check. */
		struct mx_olm_session *s = olm_session_alloc(sender_key);
		char *tmp = xstrndup(body, blen);
		size_t r = olm_create_inbound_session(s->olm, a->olm, tmp, blen);
		free(tmp);
		size_t same = 0;
		if (r != olm_error()) {
			tmp = xstrndup(body, blen);
			same = olm_matches_inbound_session_from(s->olm, sender_key, strlen(sender_key),
								tmp, blen);
			free(tmp);
		}
		if (r == olm_error() || same != 1) {
			why = r == olm_error() ? olm_session_last_error(s->olm)
					       : "the message comes from another device than it says";
			mx_olm_session_free(s);
		} else {
			/* The one-time key is spent only once the message decrypts:
			 * a forged pre-key message must not burn it. */
			plain = olm_try_decrypt(s, type, body, &plen, &why);
			if (plain && olm_session_load_id(s, err, errlen) == 0 &&
			    olm_remove_one_time_keys(a->olm, s->olm) != olm_error()) {
				out->new_session = s;
				out->account_changed = 1;
			} else {
				mx_olm_session_free(s);
				if (plain) {
					wipe_free(plain, plen + 1);
					return fail(err, errlen, "the Olm session from %s could not "
								 "be set up", sender);
				}
			}
		}
	}
	if (!plain)
		return fail(err, errlen, "a to-device message from %s could not be decrypted (%s)",
			    sender, why);
	json_t *p = json_loadb(plain, plen, 0, NULL);
	wipe_free(plain, plen + 1);
	if (olm_check_payload(a, p, sender, err, errlen) < 0) {
		json_decref(p);
		return -1;
	}
	out->payload = p;
	out->type = str_of(p, "type");
	out->content = json_object_get(p, "content");
	out->sender = xstrdup(sender);
	out->sender_key = xstrdup(sender_key);
	out->sender_ed25519 = xstrdup(str_of(json_object_get(p, "keys"), "ed25519"));
	return 0;
}

struct mx_olm_session *mx_olm_session_new_outbound(struct mx_account *a, const char *peer_user,
						   const char *peer_device,
						   const char *peer_curve25519,
						   const char *peer_ed25519, const json_t *otk,
						   char *err, size_t errlen)
{
	const char *name;
	json_t *k, *found = NULL;
	json_object_foreach((json_t *)otk, name, k)
		if (strncmp(name, "signed_curve25519:", 18) == 0)
			found = k;
	const char *key = str_of(found, "key");
	if (!key || !peer_curve25519) {
		fail(err, errlen, "%s's device %s offered no signed one-time key", peer_user,
		     peer_device);
		return NULL;
	}
	if (mx_verify_signature(found, peer_user, peer_device, peer_ed25519, err, errlen) < 0)
		return NULL;
	struct mx_olm_session *s = olm_session_alloc(peer_curve25519);
	size_t n = olm_create_outbound_session_random_length(s->olm);
	unsigned char *rnd = random_new(n, err, errlen);
	if (!rnd) {
		mx_olm_session_free(s);
		return NULL;
	}
	size_t r = olm_create_outbound_session(s->olm, a->olm, peer_curve25519,
					       strlen(peer_curve25519), key, strlen(key), rnd, n);
	wipe_free(rnd, n);
	if (r == olm_error()) {
		fail(err, errlen, "no Olm session could be opened with %s's device %s (%s)",
		     peer_user, peer_device, olm_session_last_error(s->olm));
		mx_olm_session_free(s);
		return NULL;
	}
	if (olm_session_load_id(s, err, errlen) < 0) {
		mx_olm_session_free(s);
		return NULL;
	}
	return s;
}

json_t *mx_olm_encrypt(struct mx_account *a, struct mx_olm_session *s, const char *recipient,
		       const char *recipient_ed25519, const char *type, const json_t *content,
		       char *err, size_t errlen)
{
	json_t *p = json_pack("{s:s, s:O, s:s, s:s, s:{s:s}, s:{s:s}}", "type", type, "content",
			      content, "sender", a->user_id, "recipient", recipient,
			      "recipient_keys", "ed25519", recipient_ed25519, "keys", "ed25519",
			      a->ed);
	char *plain = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (!plain) {
		fail(err, errlen, "the to-device message could not be built (a missing or "
				  "non-UTF-8 field)");
		return NULL;
	}
	size_t plen = strlen(plain);
	size_t mtype = olm_encrypt_message_type(s->olm);
	size_t rn = olm_encrypt_random_length(s->olm);
	size_t mlen = olm_encrypt_message_length(s->olm, plen);
	unsigned char *rnd = random_new(rn, err, errlen);
	if (!rnd || mtype == olm_error()) {
		wipe_free(plain, plen);
		free(rnd);
		if (mtype == olm_error())
			fail(err, errlen, "libolm refused the session (%s)",
			     olm_session_last_error(s->olm));
		return NULL;
	}
	char *msg = xmalloc(mlen + 1);
	size_t r = olm_encrypt(s->olm, plain, plen, rnd, rn, msg, mlen);
	wipe_free(rnd, rn);
	wipe_free(plain, plen);
	if (r == olm_error()) {
		fail(err, errlen, "libolm could not encrypt (%s)", olm_session_last_error(s->olm));
		free(msg);
		return NULL;
	}
	msg[r] = '\0';
	json_t *out = json_pack("{s:s, s:s, s:{s:{s:I, s:s}}}", "algorithm", MX_ALG_OLM,
				"sender_key", a->curve, "ciphertext", s->peer_key, "type",
				(json_int_t)mtype, "body", msg);
	free(msg);
	return out;
}

/* ==== Megolm inbound ==== */

static struct mx_megolm_in *megolm_in_alloc(void)
{
	struct mx_megolm_in *s = xcalloc(1, sizeof(*s));
	s->mem = xmalloc(olm_inbound_group_session_size());
	s->olm = olm_inbound_group_session(s->mem);
	s->floor = -1;
	return s;
}

static char *megolm_in_id(struct mx_megolm_in *s)
{
	size_t n = olm_inbound_group_session_id_length(s->olm);
	char *id = xmalloc(n + 1);
	if (olm_inbound_group_session_id(s->olm, (uint8_t *)id, n) == olm_error()) {
		free(id);
		return NULL;
	}
	id[n] = '\0';
	return id;
}

struct mx_megolm_in *mx_megolm_in_new(const json_t *room_key, const char *sender,
				      const char *sender_key, const char *sender_ed25519,
				      char *err, size_t errlen)
{
	const char *alg = str_of(room_key, "algorithm"), *room = str_of(room_key, "room_id");
	const char *sid = str_of(room_key, "session_id"), *key = str_of(room_key, "session_key");
	if (!alg || strcmp(alg, MX_ALG_MEGOLM) != 0) {
		fail(err, errlen, "a room key uses an unsupported algorithm");
		return NULL;
	}
	if (!room || !sid || !key || !sender || !sender_key || !sender_ed25519) {
		fail(err, errlen, "a room key lacks its room, session or sender");
		return NULL;
	}
	struct mx_megolm_in *s = megolm_in_alloc();
	size_t klen = strlen(key);
	char *tmp = xstrndup(key, klen);
	size_t r = olm_init_inbound_group_session(s->olm, (const uint8_t *)tmp, klen);
	wipe_free(tmp, klen);
	if (r == olm_error()) {
		fail(err, errlen, "the room key for %s is not valid (%s)", room,
		     olm_inbound_group_session_last_error(s->olm));
		mx_megolm_in_free(s);
		return NULL;
	}
	s->session_id = megolm_in_id(s);
	if (!s->session_id || strcmp(s->session_id, sid) != 0) {
		fail(err, errlen, "a room key for %s does not match the session it names", room);
		mx_megolm_in_free(s);
		return NULL;
	}
	s->room_id = xstrdup(room);
	s->sender = xstrdup(sender);
	s->sender_key = xstrdup(sender_key);
	s->sender_ed = xstrdup(sender_ed25519);
	return s;
}

struct mx_megolm_in *mx_megolm_in_from_forwarded(const json_t *fwd, const char *sender,
						const char *sender_key, char *err, size_t errlen)
{
	const char *alg = str_of(fwd, "algorithm"), *room = str_of(fwd, "room_id");
	const char *sid = str_of(fwd, "session_id"), *key = str_of(fwd, "session_key");
	const char *orig = str_of(fwd, "sender_key");
	const char *ed = str_of(fwd, "sender_claimed_ed25519_key");
	json_t *chain = json_object_get(fwd, "forwarding_curve25519_key_chain");
	if (!alg || strcmp(alg, MX_ALG_MEGOLM) != 0) {
		fail(err, errlen, "a forwarded room key uses an unsupported algorithm");
		return NULL;
	}
	if (!room || !sid || !key || !orig || !ed || !sender || !sender_key) {
		fail(err, errlen, "a forwarded room key lacks its room, session or sender");
		return NULL;
	}
	/* Trust: only the device that made the session may hand it over again
	 * (faqbot verifies no one, so a key relayed by a third device could be
	 * anyone's). */
	if (strcmp(orig, sender_key) != 0 || json_array_size(chain) != 0) {
		fail(err, errlen, "a room key for %s was forwarded by another device than the one "
				  "that made it: refused", room);
		return NULL;
	}
	struct mx_megolm_in *s = megolm_in_alloc();
	size_t klen = strlen(key);
	char *tmp = xstrndup(key, klen);
	size_t r = olm_import_inbound_group_session(s->olm, (const uint8_t *)tmp, klen);
	wipe_free(tmp, klen);
	if (r == olm_error()) {
		fail(err, errlen, "the forwarded room key for %s is not valid (%s)", room,
		     olm_inbound_group_session_last_error(s->olm));
		mx_megolm_in_free(s);
		return NULL;
	}
	s->session_id = megolm_in_id(s);
	if (!s->session_id || strcmp(s->session_id, sid) != 0) {
		fail(err, errlen, "a forwarded room key for %s does not match the session it names",
		     room);
		mx_megolm_in_free(s);
		return NULL;
	}
	s->room_id = xstrdup(room);
	s->sender = xstrdup(sender);
	s->sender_key = xstrdup(orig);
	s->sender_ed = xstrdup(ed);
	return s;
}

json_t *mx_room_key_request(const char *action, const char *room_id, const char *session_id,
			    const char *sender_key, const char *request_id,
			    const char *requesting_device_id)
{
	if (strcmp(action, "request_cancellation") == 0)
		return json_pack("{s:s, s:s, s:s}", "action", action, "request_id", request_id,
				 "requesting_device_id", requesting_device_id);
	return json_pack("{s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s}", "action", "request", "body",
			 "algorithm", MX_ALG_MEGOLM, "room_id", room_id, "session_id", session_id,
			 "sender_key", sender_key, "request_id", request_id,
			 "requesting_device_id", requesting_device_id);
}

const char *mx_megolm_in_room_id(const struct mx_megolm_in *s) { return s->room_id; }
const char *mx_megolm_in_session_id(const struct mx_megolm_in *s) { return s->session_id; }
const char *mx_megolm_in_sender_key(const struct mx_megolm_in *s) { return s->sender_key; }

uint32_t mx_megolm_in_first_index(const struct mx_megolm_in *s)
{
	return olm_inbound_group_session_first_known_index(s->olm);
}

char *mx_megolm_in_pickle(struct mx_megolm_in *s, const void *key, size_t keylen, char *err,
			  size_t errlen)
{
	size_t n = olm_pickle_inbound_group_session_length(s->olm);
	char *buf = xmalloc(n + 1);
	if (olm_pickle_inbound_group_session(s->olm, key, keylen, buf, n) == olm_error()) {
		fail(err, errlen, "libolm could not save a room session (%s)",
		     olm_inbound_group_session_last_error(s->olm));
		free(buf);
		return NULL;
	}
	json_t *seen = json_array();
	for (size_t i = 0; i < s->nseen; i++)
		json_array_append_new(seen, json_pack("[I, s]", (json_int_t)s->seen[i].index,
						      s->seen[i].event_id));
	json_t *env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "kind", "megolm_in",
				"room_id", s->room_id, "session_id", s->session_id, "sender",
				s->sender, "sender_key", s->sender_key, "sender_ed25519",
				s->sender_ed, "seen", seen, "floor", (json_int_t)s->floor);
	char *r = env ? pickle_wrap(env, buf, n) : NULL;
	free(buf);
	if (!r)
		fail(err, errlen, "a room session could not be saved (non-UTF-8 field)");
	return r;
}

/* Remembers index -> event_id, keeping the list sorted and capped. */
static void seen_add(struct mx_megolm_in *s, uint32_t index, const char *event_id)
{
	if (s->nseen == MX_REPLAY_MAX) {
		s->floor = s->seen[0].index;
		free(s->seen[0].event_id);
		memmove(s->seen, s->seen + 1, (s->nseen - 1) * sizeof(*s->seen));
		s->nseen--;
	}
	xgrow(&s->seen, &s->aseen, s->nseen + 1, sizeof(*s->seen));
	size_t i = s->nseen;
	while (i > 0 && s->seen[i - 1].index > index)
		i--;
	memmove(s->seen + i + 1, s->seen + i, (s->nseen - i) * sizeof(*s->seen));
	s->seen[i].index = index;
	s->seen[i].event_id = xstrdup(event_id);
	s->nseen++;
}

static const char *seen_find(const struct mx_megolm_in *s, uint32_t index)
{
	size_t lo = 0, hi = s->nseen;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->seen[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nseen && s->seen[lo].index == index ? s->seen[lo].event_id : NULL;
}

struct mx_megolm_in *mx_megolm_in_unpickle(const char *pickle, const void *key, size_t keylen,
					   char *err, size_t errlen)
{
	char *olm;
	size_t n;
	json_t *env = pickle_open(pickle, "megolm_in", &olm, &n, err, errlen);
	if (!env)
		return NULL;
	struct mx_megolm_in *s = NULL;
	const char *room = str_of(env, "room_id"), *sid = str_of(env, "session_id");
	const char *snd = str_of(env, "sender"), *sk = str_of(env, "sender_key");
	const char *se = str_of(env, "sender_ed25519");
	json_t *seen = json_object_get(env, "seen");
	if (!room || !sid || !snd || !sk || !se || !json_is_array(seen)) {
		fail(err, errlen, "a stored room session lacks its room, session or sender");
		goto out;
	}
	s = megolm_in_alloc();
	if (olm_unpickle_inbound_group_session(s->olm, key, keylen, olm, n) == olm_error()) {
		fail(err, errlen, "a stored room session could not be read: %s",
		     unpickle_error(olm_inbound_group_session_last_error(s->olm)));
		mx_megolm_in_free(s);
		s = NULL;
		goto out;
	}
	s->room_id = xstrdup(room);
	s->session_id = xstrdup(sid);
	s->sender = xstrdup(snd);
	s->sender_key = xstrdup(sk);
	s->sender_ed = xstrdup(se);
	s->floor = json_integer_value(json_object_get(env, "floor"));
	if (!json_is_integer(json_object_get(env, "floor")))
		s->floor = -1;
	size_t i;
	json_t *e;
	json_array_foreach(seen, i, e) {
		json_t *ix = json_array_get(e, 0);
		const char *ev = json_string_value(json_array_get(e, 1));
		if (json_is_integer(ix) && ev && json_integer_value(ix) >= 0 &&
		    json_integer_value(ix) <= UINT32_MAX)
			seen_add(s, (uint32_t)json_integer_value(ix), ev);
	}
out:
	free(olm);
	json_decref(env);
	return s;
}

void mx_megolm_in_free(struct mx_megolm_in *s)
{
	if (!s)
		return;
	olm_clear_inbound_group_session(s->olm);
	free(s->mem);
	free(s->room_id);
	free(s->session_id);
	free(s->sender);
	free(s->sender_key);
	free(s->sender_ed);
	for (size_t i = 0; i < s->nseen; i++)
		free(s->seen[i].event_id);
	free(s->seen);
	free(s);
}

const char *mx_megolm_event_session_id(const json_t *event)
{
	json_t *c = json_object_get(event, "content");
	const char *alg = str_of(c, "algorithm");
	if (!alg || strcmp(alg, MX_ALG_MEGOLM) != 0)
		return NULL;
	return str_of(c, "session_id");
}

void mx_megolm_decrypted_release(struct mx_megolm_decrypted *d)
{
	if (!d)
		return;
	json_decref(d->event);
	memset(d, 0, sizeof(*d));
}

int mx_megolm_decrypt(struct mx_megolm_in *s, const char *room_id, const json_t *event,
		      struct mx_megolm_decrypted *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	json_t *content = json_object_get(event, "content");
	const char *event_id = str_of(event, "event_id"), *sender = str_of(event, "sender");
	const char *ct = str_of(content, "ciphertext");
	const char *sid = mx_megolm_event_session_id(event);
	if (!event_id || !sender || !ct || !sid || !room_id)
		return fail(err, errlen, "the encrypted room event lacks its id, sender, "
					 "ciphertext or session");
	if (strcmp(sid, s->session_id) != 0 || strcmp(room_id, s->room_id) != 0)
		return fail(err, errlen, "event %s was given the wrong room session", event_id);
	if (strcmp(sender, s->sender) != 0)
		return fail(err, errlen, "event %s claims %s as sender, but its session belongs "
					 "to %s", event_id, sender, s->sender);
	size_t clen = strlen(ct);
	char *tmp = xstrndup(ct, clen);
	size_t max = olm_group_decrypt_max_plaintext_length(s->olm, (uint8_t *)tmp, clen);
	free(tmp);
	if (max == olm_error())
		return fail(err, errlen, "event %s could not be decrypted (%s)", event_id,
			    olm_inbound_group_session_last_error(s->olm));
	tmp = xstrndup(ct, clen);
	uint8_t *plain = xmalloc(max + 1);
	uint32_t index = 0;
	size_t n = olm_group_decrypt(s->olm, (uint8_t *)tmp, clen, plain, max, &index);
	free(tmp);
	if (n == olm_error()) {
		wipe_free(plain, max + 1);
		return fail(err, errlen, "event %s could not be decrypted (%s)", event_id,
			    olm_inbound_group_session_last_error(s->olm));
	}
	json_t *p = json_loadb((const char *)plain, n, 0, NULL);
	wipe_free(plain, max + 1);
	const char *seen = seen_find(s, index);
	int rc = 0;
	if (seen && strcmp(seen, event_id) != 0)
		rc = fail(err, errlen, "event %s replays message %u of its session (first seen "
				       "as %s): refused", event_id, (unsigned)index, seen);
	else if (!seen && (int64_t)index <= s->floor)
		rc = fail(err, errlen, "event %s uses message %u of its session, too old to "
				       "check for a replay: refused", event_id, (unsigned)index);
	else if (!json_is_object(p) || !str_of(p, "type") ||
		 !json_is_object(json_object_get(p, "content")))
		rc = fail(err, errlen, "event %s decrypted to something that is not an event",
			  event_id);
	else if (!str_of(p, "room_id") || strcmp(str_of(p, "room_id"), room_id) != 0)
		rc = fail(err, errlen, "event %s was encrypted for another room: refused",
			  event_id);
	if (rc < 0) {
		json_decref(p);
		return -1;
	}
	if (!seen) {
		seen_add(s, index, event_id);
		out->session_changed = 1;
	}
	json_t *ev = json_deep_copy(event);
	json_t *dc = json_deep_copy(json_object_get(p, "content"));
	json_t *rel = json_object_get(content, "m.relates_to");
	if (rel && !json_object_get(dc, "m.relates_to"))
		json_object_set(dc, "m.relates_to", rel);
	json_object_set_new(ev, "type", json_string(str_of(p, "type")));
	json_object_set_new(ev, "content", dc);
	json_decref(p);
	out->event = ev;
	out->message_index = index;
	return 0;
}

/* ==== Megolm outbound ==== */

struct mx_megolm_out *mx_megolm_out_new(const char *room_id, int64_t now_ms, char *err,
					size_t errlen)
{
	struct mx_megolm_out *s = xcalloc(1, sizeof(*s));
	s->mem = xmalloc(olm_outbound_group_session_size());
	s->olm = olm_outbound_group_session(s->mem);
	s->room_id = xstrdup(room_id);
	s->created_ms = now_ms;
	size_t n = olm_init_outbound_group_session_random_length(s->olm);
	unsigned char *rnd = random_new(n, err, errlen);
	size_t r = rnd ? olm_init_outbound_group_session(s->olm, rnd, n) : olm_error();
	wipe_free(rnd, n);
	if (r == olm_error()) {
		if (rnd)
			fail(err, errlen, "libolm could not start a room session (%s)",
			     olm_outbound_group_session_last_error(s->olm));
		mx_megolm_out_free(s);
		return NULL;
	}
	size_t idn = olm_outbound_group_session_id_length(s->olm);
	s->session_id = xmalloc(idn + 1);
	olm_outbound_group_session_id(s->olm, (uint8_t *)s->session_id, idn);
	s->session_id[idn] = '\0';
	return s;
}

const char *mx_megolm_out_room_id(const struct mx_megolm_out *s) { return s->room_id; }
const char *mx_megolm_out_session_id(const struct mx_megolm_out *s) { return s->session_id; }

uint32_t mx_megolm_out_message_count(const struct mx_megolm_out *s)
{
	return olm_outbound_group_session_message_index(s->olm);
}

char *mx_megolm_out_pickle(struct mx_megolm_out *s, const void *key, size_t keylen, char *err,
			   size_t errlen)
{
	size_t n = olm_pickle_outbound_group_session_length(s->olm);
	char *buf = xmalloc(n + 1);
	if (olm_pickle_outbound_group_session(s->olm, key, keylen, buf, n) == olm_error()) {
		fail(err, errlen, "libolm could not save the room's session (%s)",
		     olm_outbound_group_session_last_error(s->olm));
		free(buf);
		return NULL;
	}
	json_t *env = json_pack("{s:s, s:s, s:I}", "kind", "megolm_out", "room_id", s->room_id,
				"created_ms", (json_int_t)s->created_ms);
	char *r = env ? pickle_wrap(env, buf, n) : NULL;
	free(buf);
	if (!r)
		fail(err, errlen, "the room id is not valid UTF-8");
	return r;
}

struct mx_megolm_out *mx_megolm_out_unpickle(const char *pickle, const void *key, size_t keylen,
					     char *err, size_t errlen)
{
	char *olm;
	size_t n;
	json_t *env = pickle_open(pickle, "megolm_out", &olm, &n, err, errlen);
	if (!env)
		return NULL;
	struct mx_megolm_out *s = NULL;
	if (!str_of(env, "room_id") || !json_is_integer(json_object_get(env, "created_ms"))) {
		fail(err, errlen, "the stored room session names no room");
		goto out;
	}
	s = xcalloc(1, sizeof(*s));
	s->mem = xmalloc(olm_outbound_group_session_size());
	s->olm = olm_outbound_group_session(s->mem);
	s->room_id = xstrdup(str_of(env, "room_id"));
	s->created_ms = json_integer_value(json_object_get(env, "created_ms"));
	if (olm_unpickle_outbound_group_session(s->olm, key, keylen, olm, n) == olm_error()) {
		fail(err, errlen, "the stored room session could not be read: %s",
		     unpickle_error(olm_outbound_group_session_last_error(s->olm)));
		mx_megolm_out_free(s);
		s = NULL;
		goto out;
	}
	size_t idn = olm_outbound_group_session_id_length(s->olm);
	s->session_id = xmalloc(idn + 1);
	olm_outbound_group_session_id(s->olm, (uint8_t *)s->session_id, idn);
	s->session_id[idn] = '\0';
out:
	free(olm);
	json_decref(env);
	return s;
}

void mx_megolm_out_free(struct mx_megolm_out *s)
{
	if (!s)
		return;
	olm_clear_outbound_group_session(s->olm);
	free(s->mem);
	free(s->room_id);
	free(s->session_id);
	free(s);
}

json_t *mx_megolm_out_room_key(struct mx_megolm_out *s, char *err, size_t errlen)
{
	size_t n = olm_outbound_group_session_key_length(s->olm);
	char *key = xmalloc(n + 1);
	if (olm_outbound_group_session_key(s->olm, (uint8_t *)key, n) == olm_error()) {
		fail(err, errlen, "libolm gave no key for the room's session (%s)",
		     olm_outbound_group_session_last_error(s->olm));
		free(key);
		return NULL;
	}
	key[n] = '\0';
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "algorithm", MX_ALG_MEGOLM, "room_id",
			      s->room_id, "session_id", s->session_id, "session_key", key);
	wipe_free(key, n + 1);
	if (!o)
		fail(err, errlen, "the room id is not valid UTF-8");
	return o;
}

json_t *mx_megolm_out_encrypt(struct mx_megolm_out *s, struct mx_account *a, const char *type,
			      const json_t *content, char *err, size_t errlen)
{
	if (!json_is_object(content)) {
		fail(err, errlen, "only an event content object can be encrypted");
		return NULL;
	}
	json_t *c = json_deep_copy(content);
	json_t *rel = json_object_get(c, "m.relates_to");
	json_incref(rel);
	json_object_del(c, "m.relates_to");
	json_t *p = json_pack("{s:s, s:o, s:s}", "type", type, "content", c, "room_id", s->room_id);
	char *plain = p ? json_dumps(p, JSON_COMPACT) : NULL;
	json_decref(p);
	if (!plain) {
		json_decref(rel);
		fail(err, errlen, "the message could not be built for encryption");
		return NULL;
	}
	size_t plen = strlen(plain);
	size_t mlen = olm_group_encrypt_message_length(s->olm, plen);
	char *msg = xmalloc(mlen + 1);
	size_t r = olm_group_encrypt(s->olm, (const uint8_t *)plain, plen, (uint8_t *)msg, mlen);
	wipe_free(plain, plen);
	if (r == olm_error()) {
		fail(err, errlen, "libolm could not encrypt the message (%s)",
		     olm_outbound_group_session_last_error(s->olm));
		free(msg);
		json_decref(rel);
		return NULL;
	}
	msg[r] = '\0';
	json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "algorithm", MX_ALG_MEGOLM,
				"ciphertext", msg, "session_id", s->session_id, "sender_key",
				a->curve, "device_id", a->device_id);
	free(msg);
	if (out && rel)
		json_object_set(out, "m.relates_to", rel);
	json_decref(rel);
	return out;
}

int mx_megolm_out_needs_rotation(const struct mx_megolm_out *s, int64_t now_ms,
				 int64_t rotation_ms, int64_t rotation_msgs, int member_left)
{
	if (rotation_ms <= 0)
		rotation_ms = MX_ROTATION_MS_DEFAULT;
	if (rotation_msgs <= 0)
		rotation_msgs = MX_ROTATION_MSGS_DEFAULT;
	if (member_left)
		return 1;
	if (now_ms - s->created_ms >= rotation_ms)
		return 1;
	return (int64_t)olm_outbound_group_session_message_index(s->olm) >= rotation_msgs;
}
