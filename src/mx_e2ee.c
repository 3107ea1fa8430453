/*
 * mx_e2ee.c - end-to-end encryption of the Matrix transport.  See
 * mx_e2ee.h.
 *
 * Nothing is cached in memory but the account and the rooms' member lists:
 * sessions are unpickled from the store when used and pickled back in the
 * same step, so a crash loses at most the step that was not committed.
 * Everything runs on the one loop thread, and no step yields between
 * loading a session and storing it back, so two sends never use the same
 * ratchet state.
 */
#define _POSIX_C_SOURCE 200809L
#include "mx_e2ee.h"
#include "log.h"
#include "metrics.h"
#include "mx_crypto.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T "matrix"
#define OTK_ALG "signed_curve25519"
#define KEY_QUERY_TIMEOUT_MS 10000
/* Bounds against a member's device that sends made-up keys or a flood of
 * messages under made-up sessions: inbound sessions kept per room and
 * sender device (the least recently used go first), events of one room
 * waiting for a key (past that an event is given up, recorded). */
#define MX_SESSIONS_PER_SENDER 100
#define MX_WAITING_PER_ROOM 1000
/* Key requests go in their own queue, "keyreq:" and the room: a flood of
 * them never holds up the room's replies. */
#define KEYREQ_QUEUE "keyreq:"
#define OLM_MEND_EVERY_MS (3600LL * 1000) /* a new Olm session per peer device at most hourly */

struct chain;

struct mx_e2ee {
	struct store *st;
	uint8_t key[256];
	size_t keylen;
	int enabled;
	mx_e2ee_request_fn request;
	void *arg;
	int64_t key_wait_ms;

	struct mx_account *acct;
	int acct_unsure;          /* the account changed in memory in a transaction that may
				   * have rolled back: read it again from the store before use */
	char *user_id, *device_id;
	json_t *members;          /* room -> [user ids], dropped when membership changes */
	long long otk_count;      /* the server's signed_curve25519 count (-1: unknown) */
	int fallback_missing;     /* /sync: no unused fallback key */
	struct upload *upload;    /* the /keys/upload in flight, or NULL */
	struct chain *chains;     /* sends in flight */
	int starting;             /* inside mx_e2ee_send: a failure is its return value */
	int start_failed;
};

struct upload {
	struct mx_e2ee *e;
	int with_device_keys, with_fallback;
	void (*done)(void *arg, int ok, long status, const char *error);
	void *arg;
};

/* ==== Helpers ==== */

/* Opens a transaction unless one is open (then the caller's holds the
 * writes); *own says which. */
static int txn_begin(struct mx_e2ee *e, int *own)
{
	*own = !store_in_transaction(e->st);
	return *own ? store_begin(e->st) : 0;
}

static int txn_end(struct mx_e2ee *e, int own, int ok)
{
	if (!own)
		return ok ? 0 : -1;
	if (!ok) {
		store_rollback(e->st);
		e->acct_unsure = 1;
		return -1;
	}
	if (store_commit(e->st) < 0) {
		e->acct_unsure = 1;
		return -1;
	}
	return 0;
}

static void count_error(const char *kind)
{
	char labels[96];
	snprintf(labels, sizeof(labels), "transport=\"" T "\",kind=\"%s\"", kind);
	metrics_inc("faqbot_errors_total", labels);
}

static int save_account(struct mx_e2ee *e)
{
	char err[256];
	char *p = mx_account_pickle(e->acct, e->key, e->keylen, err, sizeof(err));
	int rc = p ? store_mx_account_set(e->st, e->user_id, e->device_id, p, wall_ms()) : -1;
	if (!p)
		log_error("e2ee_error", "transport=" T " error=%s", log_q(err));
	free(p);
	return rc;
}

static int save_olm(struct mx_e2ee *e, struct mx_olm_session *s, int64_t now)
{
	char err[256];
	char *p = mx_olm_session_pickle(s, e->key, e->keylen, err, sizeof(err));
	int rc = p ? store_mx_olm_set(e->st, mx_olm_session_peer_key(s), mx_olm_session_id(s), p, now) : -1;
	free(p);
	return rc;
}

static int save_megolm_in(struct mx_e2ee *e, struct mx_megolm_in *s, int64_t now)
{
	char err[256];
	char *p = mx_megolm_in_pickle(s, e->key, e->keylen, err, sizeof(err));
	int rc = p ? store_mx_megolm_in_set(e->st, mx_megolm_in_room_id(s), mx_megolm_in_session_id(s),
					    mx_megolm_in_sender_key(s), p, now) : -1;
	free(p);
	return rc;
}

static int save_megolm_out(struct mx_e2ee *e, struct mx_megolm_out *s, int64_t now)
{
	char err[256];
	char *p = mx_megolm_out_pickle(s, e->key, e->keylen, err, sizeof(err));
	int rc = p ? store_mx_megolm_out_set(e->st, mx_megolm_out_room_id(s), mx_megolm_out_session_id(s),
					     p, now) : -1;
	free(p);
	return rc;
}

/* The account as the store has it, when a step that changed it in memory
 * may have been rolled back since (a sync batch that failed to commit
 * after a pre-key message spent a one-time key: without this, the same
 * message, fetched again, no longer decrypts).  Inside a transaction the
 * store shows its own writes, so this is right whether the step committed
 * or not.  Keeps the account in memory when the store cannot be read. */
static void account_fresh(struct mx_e2ee *e)
{
	if (!e->acct || !e->acct_unsure)
		return;
	struct strbuf u = STRBUF_INIT, d = STRBUF_INIT, p = STRBUF_INIT;
	char err[256] = "";
	struct mx_account *a = NULL;
	if (store_mx_account_get(e->st, &u, &d, &p) == 1 && !strcmp(u.buf, e->user_id) &&
	    !strcmp(d.buf, e->device_id))
		a = mx_account_unpickle(p.buf, e->key, e->keylen, err, sizeof(err));
	if (a) {
		mx_account_free(e->acct);
		e->acct = a;
		e->acct_unsure = 0;
	} else {
		log_warn("e2ee_error", "transport=" T " error=%s", log_q(err[0] ? err : "the stored account "
			 "cannot be read again; the one in memory is kept"));
	}
	strbuf_release(&u);
	strbuf_release(&d);
	strbuf_release(&p);
}

/* The Olm sessions stored for a peer key, unpickled. */
struct olm_list {
	struct mx_e2ee *e;
	struct mx_olm_session **s;
	size_t n;
};

static void olm_add(void *arg, const char *pickle)
{
	struct olm_list *l = arg;
	char err[256];
	struct mx_olm_session *s = mx_olm_session_unpickle(pickle, l->e->key, l->e->keylen, err, sizeof(err));
	if (!s) {
		log_warn("e2ee_error", "transport=" T " error=%s", log_q(err));
		return;
	}
	l->s = xrealloc(l->s, (l->n + 1) * sizeof(struct mx_olm_session *));
	l->s[l->n++] = s;
}

static int olm_load(struct mx_e2ee *e, const char *peer_key, struct olm_list *l)
{
	memset(l, 0, sizeof(*l));
	l->e = e;
	return store_mx_olm_each(e->st, peer_key, olm_add, l) < 0 ? -1 : 0;
}

static void olm_release(struct olm_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		mx_olm_session_free(l->s[i]);
	free(l->s);
	l->s = NULL;
	l->n = 0;
}

/* ==== Life ==== */

struct mx_e2ee *mx_e2ee_new(struct store *st, const void *key, size_t keylen, int enabled,
			    mx_e2ee_request_fn request, void *arg)
{
	struct mx_e2ee *e = xcalloc(1, sizeof(*e));
	e->st = st;
	e->keylen = keylen < sizeof(e->key) ? keylen : sizeof(e->key);
	if (key)
		memcpy(e->key, key, e->keylen);
	e->enabled = enabled;
	e->request = request;
	e->arg = arg;
	e->key_wait_ms = MX_KEY_WAIT_MS;
	e->members = json_object();
	e->otk_count = -1;
	return e;
}

/* A chain of requests: CHAIN_ROOM_KEY shares a room's key then sends a
 * reply (mx_e2ee_send); CHAIN_MEND makes a new Olm session with one device
 * and sends it an m.dummy (mx_e2ee_mend; room is then the peer's user id);
 * CHAIN_QUERY only refreshes device lists before a sync batch is stored
 * (mx_e2ee_prepare). */
enum { CHAIN_ROOM_KEY, CHAIN_MEND, CHAIN_QUERY };

struct chain {
	struct mx_e2ee *e;
	struct chain *next, *prev;
	int kind;
	struct send_ctx *x;
	http_done_fn done;
	char *room;
	char *peer_curve;         /* CHAIN_MEND: the device's curve25519 key */
	char *mend_sid;           /* CHAIN_MEND: the session claim_done made */
	json_t *users;            /* CHAIN_QUERY: the users asked for */
	void (*ready)(void *arg); /* CHAIN_QUERY: called once, answered or not */
	void *ready_arg;
	struct mx_megolm_out *out;
	json_t *targets;          /* [{user, device, curve, ed}] that need the room key */
	json_t *shared;           /* the targets the /sendToDevice in flight carries */
	int queried;              /* /keys/query answered in this send */
	json_t *members;          /* the member list this send uses (its own reference: a member
				   * event may drop the room's cached list while a request is out) */
	int member_fetches;       /* joined_members asked in this send */
	json_t *generations;      /* user -> device list generation when the query was sent */
};

static void chain_free(struct chain *c)
{
	mx_megolm_out_free(c->out);
	json_decref(c->targets);
	json_decref(c->shared);
	json_decref(c->members);
	json_decref(c->generations);
	json_decref(c->users);
	free(c->room);
	free(c->peer_curve);
	free(c->mend_sid);
	free(c);
}

void mx_e2ee_free(struct mx_e2ee *e)
{
	if (!e)
		return;
	while (e->chains) {
		struct chain *c = e->chains;
		e->chains = c->next;
		chain_free(c);
	}
	free(e->upload);
	mx_account_free(e->acct);
	json_decref(e->members);
	free(e->user_id);
	free(e->device_id);
	memset(e->key, 0, sizeof(e->key));
	free(e);
}

int mx_e2ee_ready(const struct mx_e2ee *e)
{
	return e && e->enabled && e->acct;
}

void mx_e2ee_set_key_wait(struct mx_e2ee *e, int64_t ms)
{
	e->key_wait_ms = ms;
}

/* ==== Start ==== */

static int waiting_reset(void *arg, const char *event_id, const char *room, const char *payload)
{
	struct store *st = arg;
	(void)payload;
	char trigger[600];
	snprintf(trigger, sizeof(trigger), "e:%.500s", event_id);
	metrics_inc("faqbot_events_lost_total", "transport=\"" T "\",reason=\"undecryptable\"");
	log_error("undecryptable_given_up", "transport=" T " room=%s event=%s reason=%s", log_q(room),
		  log_q(event_id), log_q("the device was reset: the key it waited for can no longer come"));
	return store_ledger_add(st, T, trigger, wall_ms()) < 0 ? -1 : 0;
}

int mx_e2ee_give_up_waiting(struct store *st)
{
	int n, total = 0;
	while ((n = store_mx_waiting_expired(st, INT64_MAX, waiting_reset, st)) > 0)
		total += n;
	return n < 0 ? -1 : total;
}

int mx_e2ee_load(struct mx_e2ee *e, const char *user_id, const char *device_id, char *err,
		 size_t errlen)
{
	if (!e->enabled)
		return 0;
	if (e->acct && !strcmp(e->user_id, user_id) && !strcmp(e->device_id, device_id))
		return 0; /* a new login of the same device */
	mx_account_free(e->acct);
	e->acct = NULL;
	free(e->user_id);
	free(e->device_id);
	e->user_id = xstrdup(user_id);
	e->device_id = xstrdup(device_id);
	struct strbuf u = STRBUF_INIT, d = STRBUF_INIT, p = STRBUF_INIT;
	int rc = store_mx_account_get(e->st, &u, &d, &p);
	char why[256] = "";
	if (rc < 0) {
		snprintf(err, errlen, "the Matrix encryption keys cannot be read from the state database "
			 "(see store_error)");
	} else if (rc == 1 && !strcmp(u.buf, user_id) && !strcmp(d.buf, device_id)) {
		e->acct = mx_account_unpickle(p.buf, e->key, e->keylen, why, sizeof(why));
		if (!e->acct) {
			log_debug("e2ee_error", "transport=" T " error=%s", log_q(why));
			snprintf(err, errlen, "the Matrix encryption keys cannot be opened with this pickle "
				 "key: set matrix_pickle_key (or pickle.key) back to the one they were saved "
				 "with, or run 'faqbot matrix-reset' for a new device");
		}
	} else {
		int own;
		if (rc == 1)
			log_warn("e2ee_new_device", "transport=" T " old_device=%s device=%s note=%s",
				 log_q(d.buf), log_q(device_id),
				 log_q("another device than the stored keys: starting with new keys"));
		e->acct = mx_account_new(user_id, device_id, why, sizeof(why));
		if (!e->acct) {
			snprintf(err, errlen, "cannot create the Matrix encryption keys: %s", why);
		} else if (txn_begin(e, &own) < 0 || txn_end(e, own, (rc == 0 || (mx_e2ee_give_up_waiting(e->st) >= 0 &&
								       store_mx_reset(e->st) >= 0)) &&
							  store_kv_del(e->st, "matrix.e2ee_published") == 0 &&
							  save_account(e) == 0) < 0) {
			snprintf(err, errlen, "the new Matrix encryption keys cannot be saved (see store_error)");
			mx_account_free(e->acct);
			e->acct = NULL;
		} else {
			log_info("e2ee_account_created", "transport=" T " device=%s curve25519=%s", log_q(device_id),
				 log_q(mx_account_curve25519(e->acct)));
		}
	}
	strbuf_release(&u);
	strbuf_release(&d);
	strbuf_release(&p);
	return e->acct ? 0 : -1;
}

int mx_e2ee_needs_upload(struct mx_e2ee *e)
{
	if (!mx_e2ee_ready(e))
		return 0;
	struct strbuf v = STRBUF_INIT;
	int rc = store_kv_get(e->st, "matrix.e2ee_published", &v);
	int needs = rc != 1 || strcmp(v.buf, e->device_id);
	strbuf_release(&v);
	return needs;
}

static void upload_done(void *arg, struct http_response *r)
{
	struct upload *u = arg;
	struct mx_e2ee *e = u->e;
	e->upload = NULL;
	json_t *root = r->body.len ? json_loadb(r->body.buf, r->body.len, 0, NULL) : NULL;
	int ok = r->status == 200 && json_is_object(root);
	if (ok) {
		mx_account_mark_published(e->acct);
		json_t *n = json_object_get(json_object_get(root, "one_time_key_counts"), OTK_ALG);
		if (json_is_integer(n))
			e->otk_count = json_integer_value(n);
		if (u->with_fallback)
			e->fallback_missing = 0;
		int own;
		if (txn_begin(e, &own) < 0 ||
		    txn_end(e, own, save_account(e) == 0 &&
				    (!u->with_device_keys ||
				     store_kv_set(e->st, "matrix.e2ee_published", e->device_id) == 0)) < 0)
			log_warn("store_error", "transport=" T " note=%s",
				 log_q("the uploaded keys could not be marked published; they go again"));
		log_info("keys_uploaded", "transport=" T " device_keys=%d fallback=%d one_time_keys=%lld",
			 u->with_device_keys, u->with_fallback, e->otk_count);
	} else {
		count_error("keys_upload");
		log_warn("keys_upload_failed", "transport=" T " status=%ld error=%s", r->status,
			 log_q(r->error ? r->error : "the server refused the keys"));
	}
	json_decref(root);
	if (u->done)
		u->done(u->arg, ok, r->status, ok ? "ok" : r->error ? r->error : "refused");
	free(u);
}

int mx_e2ee_upload(struct mx_e2ee *e, int with_fallback,
		   void (*done)(void *arg, int ok, long status, const char *error), void *arg)
{
	if (!mx_e2ee_ready(e) || e->upload)
		return -1;
	account_fresh(e);
	int with_device_keys = mx_e2ee_needs_upload(e);
	if (with_device_keys)
		with_fallback = 1;
	char err[256];
	json_t *body = mx_account_keys_upload_body(e->acct, with_device_keys, e->otk_count, err, sizeof(err));
	if (body && with_fallback) {
		json_t *fb = mx_account_fallback_keys(e->acct, err, sizeof(err));
		if (fb)
			json_object_set_new(body, "fallback_keys", fb);
		else
			json_decref(body), body = NULL;
	}
	if (!body) {
		log_error("e2ee_error", "transport=" T " error=%s", log_q(err));
		return -1;
	}
	/* the private halves of the new keys are on disk before the public
	 * halves leave: a crash cannot leave keys on the server we cannot use */
	int own;
	if (txn_begin(e, &own) < 0 || txn_end(e, own, save_account(e) == 0) < 0) {
		json_decref(body);
		return -1;
	}
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct upload *u = xcalloc(1, sizeof(*u));
	*u = (struct upload){ e, with_device_keys, with_fallback, done, arg };
	e->upload = u;
	int rc = e->request(e->arg, "POST", "/_matrix/client/v3/keys/upload", s, upload_done, u);
	free(s);
	if (rc < 0) {
		e->upload = NULL;
		free(u);
	}
	return rc;
}

/* ==== Sync ==== */

static void members_stale(struct mx_e2ee *e, const char *room)
{
	json_object_del(e->members, room);
}

int mx_e2ee_room_event(struct mx_e2ee *e, const char *room, const json_t *ev, const char *own_user)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *sk = json_string_value(json_object_get(ev, "state_key"));
	json_t *content = json_object_get(ev, "content");
	if (type && !sk && !strcmp(type, "m.room.encrypted")) {
		/* an encrypted message says the room is encrypted, even when its
		 * m.room.encryption state was not in the sync (a gap, a server
		 * that sent no state): never answer it in clear */
		int was = store_mx_room_get(e->st, room, NULL, NULL);
		if (was < 0 || (!was && store_mx_room_set(e->st, room, MX_ALG_MEGOLM, MX_ROTATION_MS_DEFAULT,
							   MX_ROTATION_MSGS_DEFAULT) < 0))
			return -1;
		if (!was)
			log_info("room_encrypted", "transport=" T " room=%s algorithm=%s note=%s", log_q(room),
				 log_q(MX_ALG_MEGOLM), log_q("seen from an encrypted message"));
		return !was;
	}
	if (!type || !sk || !json_is_object(content))
		return 0;
	if (!strcmp(type, "m.room.encryption") && !*sk) {
		const char *alg = json_string_value(json_object_get(content, "algorithm"));
		if (!alg)
			return 0;
		json_t *ms = json_object_get(content, "rotation_period_ms");
		json_t *msgs = json_object_get(content, "rotation_period_msgs");
		int64_t rot_ms = json_is_integer(ms) && json_integer_value(ms) > 0 ? json_integer_value(ms)
										   : MX_ROTATION_MS_DEFAULT;
		int64_t rot_msgs = json_is_integer(msgs) && json_integer_value(msgs) > 0
				   ? json_integer_value(msgs) : MX_ROTATION_MSGS_DEFAULT;
		int was = store_mx_room_get(e->st, room, NULL, NULL);
		if (was < 0 || store_mx_room_set(e->st, room, alg, rot_ms, rot_msgs) < 0)
			return -1;
		if (!was)
			log_info("room_encrypted", "transport=" T " room=%s algorithm=%s", log_q(room), log_q(alg));
		return !was;
	}
	if (!strcmp(type, "m.room.member") && (!own_user || strcmp(sk, own_user))) {
		const char *ms = json_string_value(json_object_get(content, "membership"));
		members_stale(e, room);
		if (ms && (!strcmp(ms, "leave") || !strcmp(ms, "ban")))
			return store_mx_megolm_out_member_left(e->st, room) < 0 ? -1 : 0;
	}
	return 0;
}

static int requeue_waiting(void *arg, const char *event_id, const char *room, const char *payload)
{
	struct mx_e2ee *e = arg;
	log_info("key_arrived", "transport=" T " room=%s event=%s", log_q(room), log_q(event_id));
	return store_inbox_add(e->st, T, event_id, payload, wall_ms()) < 0 ? -1 : 0;
}

/* Keeps inbound session s (taken), unless a copy from the same device that
 * starts earlier is stored; a copy from another device is an impostor.
 * Events waiting for it go back to the inbox.  0 or -1 (store). */
static int queue_key_request(struct mx_e2ee *e, const char *action, const char *room, const char *sid,
			     const char *sender_key, const char *user, int64_t now);

/* Stores an inbound session that sender's device shared (kept when it
 * starts earlier than the copy held); events waiting for it go back to the
 * inbox, and a key request made for it is cancelled. */
static int add_inbound(struct mx_e2ee *e, struct mx_megolm_in *s, const char *sender, int64_t now)
{
	const char *room = mx_megolm_in_room_id(s), *sid = mx_megolm_in_session_id(s);
	struct strbuf p = STRBUF_INIT;
	int rc = store_mx_megolm_in_get(e->st, room, sid, &p);
	int keep = rc == 0;
	if (rc == 1) {
		char err[256];
		struct mx_megolm_in *old = mx_megolm_in_unpickle(p.buf, e->key, e->keylen, err, sizeof(err));
		if (!old)
			keep = 1;
		else if (strcmp(mx_megolm_in_sender_key(old), mx_megolm_in_sender_key(s)))
			log_warn("room_key_refused", "transport=" T " room=%s session=%s reason=%s", log_q(room),
				 log_q(sid), log_q("another device already shared this session"));
		else
			keep = mx_megolm_in_first_index(s) < mx_megolm_in_first_index(old);
		mx_megolm_in_free(old);
	}
	strbuf_release(&p);
	if (rc < 0 || (keep && save_megolm_in(e, s, now) < 0)) {
		mx_megolm_in_free(s);
		return -1;
	}
	if (keep)
		log_info("room_key", "transport=" T " room=%s session=%s first_index=%u", log_q(room), log_q(sid),
			 (unsigned)mx_megolm_in_first_index(s));
	int trimmed = keep ? store_mx_megolm_in_trim(e->st, room, mx_megolm_in_sender_key(s),
						     MX_SESSIONS_PER_SENDER) : 0;
	if (trimmed < 0) {
		mx_megolm_in_free(s);
		return -1;
	}
	if (trimmed > 0)
		log_warn("room_keys_trimmed", "transport=" T " room=%s sender_key=%s dropped=%d note=%s", log_q(room),
			 log_q(mx_megolm_in_sender_key(s)), trimmed,
			 log_q("a device shared more sessions in this room than are kept: the least recently used "
			       "were dropped"));
	int n = store_mx_waiting_take(e->st, room, sid, requeue_waiting, e);
	int asked = n < 0 || !keep ? 0 : store_mx_key_request_done(e->st, room, sid);
	if (asked == 1) /* the spec: cancel a request once its key came */
		asked = queue_key_request(e, "request_cancellation", room, sid, mx_megolm_in_sender_key(s), sender,
					  now);
	mx_megolm_in_free(s);
	return n < 0 || asked < 0 ? -1 : 0;
}

/* An Olm message from the device sender_key of sender could not be
 * decrypted: its session with us is lost or broken.  The spec ("Recovering
 * from undecryptable messages") has the receiver make a new session and
 * send an m.dummy over it, so the sender uses that one from then on.  An
 * outbox row (chat: the sender's user id, method "olm_mend") does it after
 * the commit, with retries; at most one per device per OLM_MEND_EVERY_MS,
 * remembered in the kv table in this same transaction (so it survives a
 * restart and rolls back with the batch).  0 or -1 (store). */
static int mend_request(struct mx_e2ee *e, const char *sender, const char *sender_key, int64_t now)
{
	char key[200];
	snprintf(key, sizeof(key), "matrix.olm_mend.%.150s", sender_key);
	struct strbuf v = STRBUF_INIT;
	int rc = store_kv_get(e->st, key, &v);
	int64_t last = rc == 1 ? strtoll(v.buf, NULL, 10) : 0;
	strbuf_release(&v);
	if (rc < 0)
		return -1;
	if (rc == 1 && now >= last && now - last < OLM_MEND_EVERY_MS)
		return 0;
	json_t *body = json_pack("{s:s, s:s}", "user", sender, "curve", sender_key);
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!s)
		return 0; /* not UTF-8: no such device to mend */
	char trigger[300], txn[96], at[32];
	uint64_t h = hash_bytes(sender_key, strlen(sender_key));
	snprintf(trigger, sizeof(trigger), "olmmend:%.150s:%lld", sender_key, (long long)now);
	snprintf(txn, sizeof(txn), "mend.%016llx.%lld", (unsigned long long)h, (long long)now);
	snprintf(at, sizeof(at), "%lld", (long long)now);
	struct outbox_row row = { 0 };
	row.transport = T;
	row.chat = (char *)sender;
	row.trigger = trigger;
	row.method = "olm_mend";
	row.body = s;
	row.txn = txn;
	row.created_at = row.next_at = now;
	int ok = store_outbox_add(e->st, &row) >= 0 && store_kv_set(e->st, key, at) == 0;
	free(s);
	if (ok)
		log_info("olm_mend_queued", "transport=" T " user=%s curve25519=%s", log_q(sender),
			 log_q(sender_key));
	return ok ? 0 : -1;
}

struct device_find {
	const char *curve;
	char *ed;                 /* the listed ed25519 key of the device with curve */
};

static void device_find_fn(void *arg, const char *device, const char *curve, const char *ed)
{
	struct device_find *f = arg;
	(void)device;
	if (!f->ed && !strcmp(curve, f->curve))
		f->ed = xstrdup(ed);
}

/* The device of user whose curve25519 key is curve, in the cached device
 * list: 1 and *ed (caller frees), 0 listed but not there, 2 the list is
 * unknown or outdated, -1 store error. */
static int device_find(struct mx_e2ee *e, const char *user, const char *curve, char **ed)
{
	struct device_find f = { curve, NULL };
	int rc = store_mx_devices_get(e->st, user, device_find_fn, &f);
	*ed = f.ed;
	return rc < 0 ? -1 : rc == 0 ? 2 : f.ed ? 1 : 0;
}

/* The spec (m.olm.v1.curve25519-aes-sha2): the payload's keys.ed25519
 * must be the ed25519 key /keys/query gave for the device whose curve25519
 * key is the sender_key.  mx_e2ee_prepare queried the sender's devices
 * before this batch: a device the server does not list, or another key, is
 * refused.  When the list could not be had (the query failed), the key is
 * taken on the payload's word, as before (logged).  1 accept, 0 refuse
 * (logged, counted), -1 store error. */
static int sender_device_check(struct mx_e2ee *e, const struct mx_olm_decrypted *d)
{
	char *ed = NULL;
	int rc = device_find(e, d->sender, d->sender_key, &ed);
	const char *why = NULL;
	if (rc == 0)
		why = "the sending device is not among the devices the server lists for its user";
	else if (rc == 1 && (!d->sender_ed25519 || strcmp(ed, d->sender_ed25519)))
		why = "the payload's ed25519 key is not the one the server lists for the sending device";
	else if (rc == 2)
		log_info("sender_device_unknown", "transport=" T " sender=%s curve25519=%s note=%s",
			 log_q(d->sender), log_q(d->sender_key),
			 log_q("its device list could not be had: its keys are taken as sent"));
	free(ed);
	if (rc < 0)
		return -1;
	if (why) {
		count_error("room_key_refused");
		log_warn("room_key_refused", "transport=" T " sender=%s type=%s curve25519=%s error=%s",
			 log_q(d->sender), log_q(d->type), log_q(d->sender_key), log_q(why));
	}
	return why ? 0 : 1;
}

/* One to-device event: 0 (handled or skipped, logged), -1 store error. */
static int to_device(struct mx_e2ee *e, const json_t *ev, int64_t now)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *content = json_object_get(ev, "content");
	if (!type || strcmp(type, "m.room.encrypted"))
		return 0; /* key requests from others, m.dummy, room keys in clear: ignored */
	const char *alg = json_string_value(json_object_get(content, "algorithm"));
	const char *sender_key = json_string_value(json_object_get(content, "sender_key"));
	if (!alg || strcmp(alg, MX_ALG_OLM) || !sender_key) {
		count_error("undecryptable_to_device");
		log_warn("to_device_refused", "transport=" T " reason=%s", log_q("not an Olm message"));
		return 0;
	}
	struct olm_list l;
	if (olm_load(e, sender_key, &l) < 0)
		return -1;
	struct mx_olm_decrypted d;
	char err[256];
	int rc = mx_olm_decrypt(e->acct, l.s, l.n, ev, &d, err, sizeof(err));
	int out = 0;
	if (rc < 0) {
		count_error("undecryptable_to_device");
		const char *sender = json_string_value(json_object_get(ev, "sender"));
		log_warn("to_device_undecryptable", "transport=" T " sender=%s error=%s",
			 log_q(sender ? sender : "?"), log_q(err));
		if (sender)
			out = mend_request(e, sender, sender_key, now);
	} else {
		if (d.new_session)
			out = save_olm(e, d.new_session, now);
		else if (d.session_index >= 0 && (size_t)d.session_index < l.n)
			out = save_olm(e, l.s[d.session_index], now);
		if (out == 0 && d.account_changed) {
			/* the batch's transaction may still roll back */
			e->acct_unsure = 1;
			out = save_account(e);
		}
		int keys_ok = out == 0 && (!strcmp(d.type, "m.room_key") || !strcmp(d.type, "m.forwarded_room_key"))
			      ? sender_device_check(e, &d) : 1;
		if (keys_ok < 0)
			out = -1;
		struct mx_megolm_in *in = NULL;
		if (out == 0 && keys_ok == 1 && !strcmp(d.type, "m.room_key"))
			in = mx_megolm_in_new(d.content, d.sender, d.sender_key, d.sender_ed25519, err, sizeof(err));
		else if (out == 0 && keys_ok == 1 && !strcmp(d.type, "m.forwarded_room_key"))
			in = mx_megolm_in_from_forwarded(d.content, d.sender, d.sender_key, err, sizeof(err));
		else
			err[0] = '\0'; /* refused (logged), a store error, or another encrypted
					  * to-device message (m.dummy): nothing more to do */
		if (in)
			out = add_inbound(e, in, d.sender, now);
		else if (out == 0 && err[0]) {
			count_error("room_key_refused");
			log_warn("room_key_refused", "transport=" T " sender=%s type=%s error=%s", log_q(d.sender),
				 log_q(d.type), log_q(err));
		}
	}
	mx_olm_decrypted_release(&d);
	olm_release(&l);
	return out;
}

int mx_e2ee_sync(struct mx_e2ee *e, const json_t *batch, int64_t now)
{
	size_t i;
	json_t *v;
	/* to_device first: mx_e2ee_prepare refreshed its senders' device
	 * lists, which this batch's device_lists may mark outdated next */
	if (mx_e2ee_ready(e)) {
		account_fresh(e);
		json_array_foreach(json_object_get(json_object_get(batch, "to_device"), "events"), i, v)
			if (to_device(e, v, now) < 0)
				return -1;
	}
	json_t *lists = json_object_get(batch, "device_lists");
	const char *const which[] = { "changed", "left" };
	for (size_t k = 0; k < 2; k++)
		json_array_foreach(json_object_get(lists, which[k]), i, v)
			if (json_is_string(v) && store_mx_devices_outdated(e->st, json_string_value(v)) < 0)
				return -1;
	if (!mx_e2ee_ready(e))
		return 0;
	json_t *counts = json_object_get(batch, "device_one_time_keys_count");
	if (json_is_object(counts)) {
		json_t *n = json_object_get(counts, OTK_ALG);
		e->otk_count = json_is_integer(n) ? json_integer_value(n) : 0;
	}
	json_t *unused = json_object_get(batch, "device_unused_fallback_key_types");
	if (json_is_array(unused)) {
		int found = 0;
		json_array_foreach(unused, i, v)
			found |= json_is_string(v) && !strcmp(json_string_value(v), OTK_ALG);
		e->fallback_missing = !found;
	}
	return 0;
}

void mx_e2ee_after_sync(struct mx_e2ee *e)
{
	if (!mx_e2ee_ready(e) || e->upload || e->otk_count < 0)
		return;
	if (mx_account_otk_wanted(e->acct, e->otk_count) > 0 || e->fallback_missing)
		(void)mx_e2ee_upload(e, e->fallback_missing, NULL, NULL);
}

int mx_e2ee_room_left(struct mx_e2ee *e, const char *room)
{
	members_stale(e, room);
	return store_mx_room_forget(e->st, room);
}

int mx_e2ee_room_encrypted(struct mx_e2ee *e, const char *room)
{
	return store_mx_room_get(e->st, room, NULL, NULL);
}

/* ==== Inbox ==== */

/* Queues an m.room_key_request to-device message (action "request" or
 * "request_cancellation") for the session (room, sid) to every device of
 * user: an outbox row in the room's key-request queue (sent in clear: it
 * names the session, never a key).  The request id is the same for both,
 * as the spec asks.  0, or -1 when the store failed. */
static int queue_key_request(struct mx_e2ee *e, const char *action, const char *room, const char *sid,
			     const char *sender_key, const char *user, int64_t now)
{
	int cancel = !strcmp(action, "request_cancellation");
	char id[64];
	uint64_t h = hash_bytes(sid, strlen(sid)) ^ hash_bytes(room, strlen(room));
	snprintf(id, sizeof(id), "kr%016llx", (unsigned long long)h);
	json_t *c = mx_room_key_request(action, room, sid, sender_key ? sender_key : "", id, e->device_id);
	if (!c || !user)
		return json_decref(c), 0;
	json_t *body = json_pack("{s:{s:{s:o}}}", "messages", user, "*", c);
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	char trigger[600], txn[96], queue[600];
	snprintf(trigger, sizeof(trigger), "%s:%.500s", cancel ? "keycancel" : "keyreq", sid);
	snprintf(queue, sizeof(queue), KEYREQ_QUEUE "%.500s", room);
	snprintf(txn, sizeof(txn), "%s.%s", cancel ? "keycancel" : "keyreq", id);
	struct outbox_row row = { 0 };
	row.transport = T;
	row.chat = queue;
	row.trigger = trigger;
	row.method = "m.room_key_request";
	row.body = s;
	row.txn = txn;
	row.created_at = row.next_at = now;
	int64_t added = s ? store_outbox_add(e->st, &row) : 0;
	free(s);
	if (added > 0)
		log_info(cancel ? "key_request_cancelled" : "key_requested",
			 "transport=" T " room=%s session=%s sender=%s", log_q(room), log_q(sid), log_q(user));
	return added < 0 ? -1 : 0;
}

/* Asks the devices of the event's sender for the session's key, once per
 * session. */
static int request_key(struct mx_e2ee *e, const char *room, const json_t *ev, const char *sid, int64_t now)
{
	int rc = store_mx_key_request_add(e->st, room, sid, now);
	if (rc <= 0)
		return rc;
	return queue_key_request(e, "request", room, sid,
				 json_string_value(json_object_get(json_object_get(ev, "content"), "sender_key")),
				 json_string_value(json_object_get(ev, "sender")), now);
}

int mx_e2ee_decrypt(struct mx_e2ee *e, const char *room, const json_t *ev, const char *payload,
		    json_t **out, int64_t now)
{
	*out = NULL;
	if (!mx_e2ee_ready(e))
		return MX_E2EE_OFF;
	const char *event_id = json_string_value(json_object_get(ev, "event_id"));
	const char *sid = mx_megolm_event_session_id(ev);
	if (!sid || !event_id) {
		count_error("undecryptable");
		log_warn("undecryptable", "transport=" T " room=%s event=%s error=%s", log_q(room),
			 log_q(event_id ? event_id : "?"), log_q("not a Megolm event"));
		return MX_UNDECRYPTABLE;
	}
	struct strbuf p = STRBUF_INIT;
	int rc = store_mx_megolm_in_get(e->st, room, sid, &p);
	if (rc <= 0) {
		strbuf_release(&p);
		if (rc < 0)
			return MX_STORE_FAILED;
		int64_t waiting = store_mx_waiting_room_count(e->st, room);
		if (waiting < 0)
			return MX_STORE_FAILED;
		if (waiting >= MX_WAITING_PER_ROOM) {
			count_error("undecryptable");
			log_warn("undecryptable", "transport=" T " room=%s event=%s error=%s", log_q(room),
				 log_q(event_id), log_q("too many messages of this room already wait for their key"));
			return MX_UNDECRYPTABLE;
		}
		int added = store_mx_waiting_add(e->st, event_id, room, sid, payload, now, now + e->key_wait_ms);
		if (added < 0 || request_key(e, room, ev, sid, now) < 0)
			return MX_STORE_FAILED;
		if (added)
			log_info("key_waiting", "transport=" T " room=%s event=%s session=%s wait_ms=%lld",
				 log_q(room), log_q(event_id), log_q(sid), (long long)e->key_wait_ms);
		return MX_WAITING;
	}
	char err[256];
	struct mx_megolm_in *s = mx_megolm_in_unpickle(p.buf, e->key, e->keylen, err, sizeof(err));
	strbuf_release(&p);
	struct mx_megolm_decrypted d;
	memset(&d, 0, sizeof(d));
	rc = s ? mx_megolm_decrypt(s, room, ev, &d, err, sizeof(err)) : -1;
	int res = MX_UNDECRYPTABLE;
	if (rc == 0) {
		res = d.session_changed && save_megolm_in(e, s, now) < 0 ? MX_STORE_FAILED : MX_DECRYPTED;
		if (res == MX_DECRYPTED)
			*out = json_incref(d.event);
	} else {
		count_error("undecryptable");
		log_warn("undecryptable", "transport=" T " room=%s event=%s error=%s", log_q(room),
			 log_q(event_id), log_q(err));
	}
	mx_megolm_decrypted_release(&d);
	mx_megolm_in_free(s);
	return res;
}

/* ==== Send: share the room key, then encrypt ==== */

static void query_finish(struct chain *c, int answered);

static void chain_unlink(struct chain *c)
{
	struct mx_e2ee *e = c->e;
	if (e->chains == c)
		e->chains = c->next;
	if (c->prev)
		c->prev->next = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

static void chain_end(struct chain *c, struct http_response *r, const char *why)
{
	struct mx_e2ee *e = c->e;
	if (why) {
		/* the skeleton classifies the outcome: a malformed answer or a
		 * store error is a retry, like a 5xx */
		if (r->status == 200 || r->status == 0)
			r->status = 502;
		r->error = why;
		log_warn("e2ee_send_failed", "transport=" T " room=%s trigger=%s error=%s", log_q(c->room),
			 log_q(c->x ? c->x->row.trigger : "-"), log_q(why));
	}
	chain_unlink(c);
	if (c->kind == CHAIN_QUERY) {
		query_finish(c, 0);
		return;
	}
	struct send_ctx *x = c->x;
	http_done_fn done = c->done;
	chain_free(c);
	if (e->starting)
		e->start_failed = 1; /* never call back into the sender from its own send */
	else
		done(x, r);
}

/* A failed request before the PUT: its answer is the row's outcome. */
static int chain_failed(struct chain *c, struct http_response *r, const char *step)
{
	if (r->status == 200)
		return 0;
	log_warn("e2ee_send_failed", "transport=" T " room=%s step=%s status=%ld error=%s", log_q(c->room),
		 step, r->status, log_q(r->error ? r->error : "-"));
	chain_end(c, r, NULL);
	return 1;
}

static void chain_members(struct chain *c);
static void chain_devices(struct chain *c);
static void chain_claim(struct chain *c);
static void chain_share(struct chain *c);
static void chain_encrypt(struct chain *c);

/* Starts a request of the chain; on failure ends it (a retry later). */
static void chain_request(struct chain *c, const char *method, const char *path, json_t *body,
			  http_done_fn done)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc = c->e->request(c->e->arg, method, path, s, done, c);
	free(s);
	if (rc < 0) {
		struct http_response r;
		memset(&r, 0, sizeof(r));
		r.status = 503;
		r.retry_after_s = -1;
		chain_end(c, &r, "cannot start a request");
	}
}

static json_t *answer(struct http_response *r)
{
	json_t *root = r->body.len ? json_loadb(r->body.buf, r->body.len, 0, NULL) : NULL;
	if (!json_is_object(root)) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static void members_done(void *arg, struct http_response *r)
{
	struct chain *c = arg;
	if (chain_failed(c, r, "joined_members"))
		return;
	json_t *root = answer(r);
	json_t *joined = json_object_get(root, "joined");
	if (!json_is_object(joined)) {
		json_decref(root);
		chain_end(c, r, "the joined_members answer has no joined map");
		return;
	}
	json_t *list = json_array();
	const char *u;
	json_t *v;
	json_object_foreach(joined, u, v)
		json_array_append_new(list, json_string(u));
	json_decref(c->members);
	c->members = json_incref(list);
	json_object_set_new(c->e->members, c->room, list);
	json_decref(root);
	chain_devices(c);
}

static void chain_members(struct chain *c)
{
	json_t *cached = json_object_get(c->e->members, c->room);
	if (cached) {
		json_decref(c->members);
		c->members = json_incref(cached);
		chain_devices(c);
		return;
	}
	c->member_fetches++;
	struct strbuf path = STRBUF_INIT;
	strbuf_addstr(&path, "/_matrix/client/v3/rooms/");
	strbuf_add_path_escaped(&path, c->room);
	strbuf_addstr(&path, "/joined_members");
	chain_request(c, "GET", path.buf, NULL, members_done);
	strbuf_release(&path);
}

struct targets {
	const char *user;
	json_t *list;
};

static void add_target(void *arg, const char *device, const char *curve, const char *ed)
{
	struct targets *t = arg;
	json_array_append_new(t->list, json_pack("{s:s, s:s, s:s, s:s}", "user", t->user, "device", device,
						 "curve", curve, "ed", ed));
}

/* Stores one device of a /keys/query answer.  A device already known
 * under the same id with other keys keeps its old keys: a device's keys
 * never change (the spec says a client should refuse such an update, as
 * matrix-sdk-crypto does), so new ones are a homeserver that lies or a
 * device id reused; logged and counted.  0 or -1 (store). */
static int device_keep(struct mx_e2ee *e, const char *user, const char *dev, const char *curve,
		       const char *ed, const json_t *known)
{
	size_t i;
	json_t *k;
	json_array_foreach(known, i, k) {
		if (strcmp(json_string_value(json_object_get(k, "device")), dev))
			continue;
		const char *old_curve = json_string_value(json_object_get(k, "curve"));
		const char *old_ed = json_string_value(json_object_get(k, "ed"));
		if (strcmp(old_curve, curve) || strcmp(old_ed, ed)) {
			count_error("device_key_changed");
			log_warn("mx_device_key_changed", "transport=" T " user=%s device=%s ed25519=%s "
				 "new_ed25519=%s note=%s", log_q(user), log_q(dev), log_q(old_ed), log_q(ed),
				 log_q("the device's keys changed: the new keys are ignored, the old kept"));
			curve = old_curve;
			ed = old_ed;
		}
		break;
	}
	return store_mx_device_add(e->st, user, dev, curve, ed);
}

static void query_done(void *arg, struct http_response *r)
{
	struct chain *c = arg;
	struct mx_e2ee *e = c->e;
	if (chain_failed(c, r, "keys_query"))
		return;
	json_t *root = answer(r);
	json_t *dk = json_object_get(root, "device_keys");
	if (!json_is_object(dk)) {
		json_decref(root);
		chain_end(c, r, "the /keys/query answer has no device_keys");
		return;
	}
	int own, ok = txn_begin(e, &own) == 0;
	const char *user;
	json_t *devs;
	json_object_foreach(dk, user, devs) {
		if (!ok || !json_is_object(devs))
			continue;
		/* a change synced while the query was out keeps the list
		 * outdated: the answer may predate a new device */
		json_t *gen = json_object_get(c->generations, user);
		struct targets known = { user, json_array() };
		ok = store_mx_devices_get(e->st, user, add_target, &known) >= 0 &&
		     store_mx_devices_clear(e->st, user, json_is_integer(gen) ? json_integer_value(gen) : 0) == 0;
		const char *dev;
		json_t *keys;
		json_object_foreach(devs, dev, keys) {
			const char *curve, *ed;
			char err[256];
			if (!ok)
				break;
			if (mx_device_keys_check(keys, user, dev, &curve, &ed, err, sizeof(err)) < 0) {
				count_error("device_keys_refused");
				log_warn("device_keys_refused", "transport=" T " user=%s device=%s error=%s",
					 log_q(user), log_q(dev), log_q(err));
				continue;
			}
			ok = device_keep(e, user, dev, curve, ed, known.list) == 0;
		}
		json_decref(known.list);
	}
	json_decref(root);
	if (txn_end(e, own, ok) < 0) {
		chain_end(c, r, "the device keys could not be stored");
		return;
	}
	/* users the server could not answer for stay unknown: skipped now */
	c->queried = 1;
	if (c->kind == CHAIN_ROOM_KEY && !json_object_get(e->members, c->room) && c->member_fetches < 2) {
		/* the membership changed while the query was out: the list is
		 * fetched again and its new members queried */
		c->queried = 0;
		chain_members(c);
		return;
	}
	chain_devices(c);
}


/* Every device of every member that lacks the session; users whose device
 * list is unknown or outdated are queried first (once: after that a user
 * the server could not answer for is skipped). */
static void chain_devices_step(struct chain *c, int may_query)
{
	struct mx_e2ee *e = c->e;
	json_t *members = c->members;
	if (!members) {
		chain_members(c);
		return;
	}
	json_t *query = json_object();
	json_t *all = json_array();
	json_decref(c->generations);
	c->generations = json_object();
	size_t i;
	json_t *u;
	int err = 0, unknown = 0;
	json_array_foreach(members, i, u) {
		const char *user = json_string_value(u);
		struct targets t = { user, json_array() };
		int rc = store_mx_devices_get(e->st, user, add_target, &t);
		int64_t gen = 0;
		if (rc < 0) {
			err = 1;
		} else if (rc == 0 && may_query) {
			if (store_mx_devices_generation(e->st, user, &gen) < 0)
				err = 1;
			json_object_set_new(query, user, json_array());
			json_object_set_new(c->generations, user, json_integer(gen));
		} else {
			/* fresh, or answered in this send and changed since (the
			 * next send asks again): the devices known now */
			json_array_extend(all, t.list);
			if (rc == 0 && !json_array_size(t.list) && user && strcmp(user, e->user_id))
				unknown++; /* the server did not answer for this member */
		}
		json_decref(t.list);
	}
	if (err) {
		json_decref(query);
		json_decref(all);
		struct http_response r;
		memset(&r, 0, sizeof(r));
		r.status = 503;
		r.retry_after_s = -1;
		chain_end(c, &r, "the device list cannot be read (see store_error)");
		return;
	}
	if (json_object_size(query) && may_query) {
		json_t *body = json_pack("{s:o, s:i}", "device_keys", query, "timeout", KEY_QUERY_TIMEOUT_MS);
		json_decref(all);
		chain_request(c, "POST", "/_matrix/client/v3/keys/query", body, query_done);
		json_decref(body);
		return;
	}
	json_decref(query);
	const char *sid = mx_megolm_out_session_id(c->out);
	c->targets = json_array();
	size_t others = 0;
	json_array_foreach(all, i, u) {
		const char *user = json_string_value(json_object_get(u, "user"));
		const char *dev = json_string_value(json_object_get(u, "device"));
		if (!strcmp(user, e->user_id) && !strcmp(dev, e->device_id))
			continue;
		others++;
		int rc = store_mx_shared_has(e->st, c->room, sid, user, dev);
		if (rc == 0)
			json_array_append(c->targets, u);
	}
	json_decref(all);
	if (!others && unknown) {
		/* never a reply that no member could read: asked again later */
		struct http_response r;
		memset(&r, 0, sizeof(r));
		r.status = 503;
		r.retry_after_s = -1;
		chain_end(c, &r, "no device of the room's other members is known yet (the homeserver did not "
			  "answer for them)");
		return;
	}
	if (json_array_size(c->targets))
		chain_claim(c);
	else
		chain_encrypt(c);
}

/* A permanent failure of a chain that is no reply: its row is dropped. */
static void chain_give_up(struct chain *c, const char *why)
{
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.status = 404;
	r.retry_after_s = -1;
	chain_end(c, &r, why);
}

/* Notes in c->generations the device-list generation of each user of
 * users (a JSON object or array of user ids) before a /keys/query is sent,
 * so that query_done keeps a list outdated that changed meanwhile.  0, or
 * -1 when the store failed. */
static int note_generations(struct chain *c, const json_t *users)
{
	json_decref(c->generations);
	c->generations = json_object();
	const char *user;
	json_t *v;
	size_t i;
	int64_t gen;
	if (json_is_object(users)) {
		json_object_foreach((json_t *)users, user, v) {
			if (store_mx_devices_generation(c->e->st, user, &gen) < 0)
				return -1;
			json_object_set_new(c->generations, user, json_integer(gen));
		}
	}
	json_array_foreach(users, i, v) {
		user = json_string_value(v);
		if (!user)
			continue;
		if (store_mx_devices_generation(c->e->st, user, &gen) < 0)
			return -1;
		json_object_set_new(c->generations, user, json_integer(gen));
	}
	return 0;
}

/* CHAIN_MEND: the peer device by its curve25519 key, from the device list
 * (queried once when unknown); then a one-time key is claimed whatever
 * sessions exist, since the ones we have are the ones that failed. */
static void mend_devices(struct chain *c)
{
	struct mx_e2ee *e = c->e;
	struct targets t = { c->room, json_array() };
	int rc = store_mx_devices_get(e->st, c->room, add_target, &t);
	if (rc == 0 && !c->queried) {
		json_decref(t.list);
		json_t *who = json_pack("[s]", c->room);
		int bad = note_generations(c, who);
		json_decref(who);
		if (bad) {
			struct http_response r;
			memset(&r, 0, sizeof(r));
			r.status = 503; /* a store error: the row is tried again */
			r.retry_after_s = -1;
			chain_end(c, &r, "the device list could not be read");
			return;
		}
		json_t *body = json_pack("{s:{s:[]}, s:i}", "device_keys", c->room, "timeout", KEY_QUERY_TIMEOUT_MS);
		chain_request(c, "POST", "/_matrix/client/v3/keys/query", body, query_done);
		json_decref(body);
		return;
	}
	size_t i;
	json_t *u;
	json_decref(c->targets);
	c->targets = json_array();
	json_array_foreach(t.list, i, u)
		if (!strcmp(json_string_value(json_object_get(u, "curve")), c->peer_curve))
			json_array_append(c->targets, u);
	json_decref(t.list);
	if (rc < 0) {
		struct http_response r;
		memset(&r, 0, sizeof(r));
		r.status = 503;
		r.retry_after_s = -1;
		chain_end(c, &r, "the device list cannot be read (see store_error)");
	} else if (!json_array_size(c->targets)) {
		chain_give_up(c, "the device is not among the ones the server lists for its user");
	} else {
		chain_claim(c);
	}
}

static void chain_devices(struct chain *c)
{
	if (c->kind == CHAIN_QUERY) {
		chain_unlink(c);
		query_finish(c, 1);
		return;
	}
	if (c->kind == CHAIN_MEND) {
		mend_devices(c);
		return;
	}
	/* after a query answered, do not query again in this send */
	chain_devices_step(c, !c->queried);
}

static void claim_done(void *arg, struct http_response *r)
{
	struct chain *c = arg;
	struct mx_e2ee *e = c->e;
	if (chain_failed(c, r, "keys_claim"))
		return;
	json_t *root = answer(r);
	json_t *otks = json_object_get(root, "one_time_keys");
	int64_t now = wall_ms();
	int own, ok = txn_begin(e, &own) == 0;
	size_t i;
	json_t *t;
	json_array_foreach(c->targets, i, t) {
		const char *user = json_string_value(json_object_get(t, "user"));
		const char *dev = json_string_value(json_object_get(t, "device"));
		json_t *otk = json_object_get(json_object_get(otks, user), dev);
		if (!ok || !json_is_object(otk))
			continue;
		char err[256];
		struct mx_olm_session *s = mx_olm_session_new_outbound(
			e->acct, user, dev, json_string_value(json_object_get(t, "curve")),
			json_string_value(json_object_get(t, "ed")), otk, err, sizeof(err));
		if (!s) {
			count_error("one_time_key_refused");
			log_warn("one_time_key_refused", "transport=" T " user=%s device=%s error=%s", log_q(user),
				 log_q(dev), log_q(err));
			continue;
		}
		ok = save_olm(e, s, now) == 0;
		if (c->kind == CHAIN_MEND) {
			free(c->mend_sid);
			c->mend_sid = xstrdup(mx_olm_session_id(s));
		}
		mx_olm_session_free(s);
	}
	json_decref(root);
	if (txn_end(e, own, ok) < 0) {
		chain_end(c, r, "the new Olm sessions could not be stored");
		return;
	}
	chain_share(c);
}

static void chain_claim(struct chain *c)
{
	struct mx_e2ee *e = c->e;
	json_t *want = json_object();
	size_t i;
	json_t *t;
	json_array_foreach(c->targets, i, t) {
		struct olm_list l;
		if (olm_load(e, json_string_value(json_object_get(t, "curve")), &l) < 0) {
			json_decref(want);
			struct http_response r;
			memset(&r, 0, sizeof(r));
			r.retry_after_s = -1;
			chain_end(c, &r, "the Olm sessions cannot be read (see store_error)");
			return;
		}
		if (!l.n || c->kind == CHAIN_MEND) {
			const char *user = json_string_value(json_object_get(t, "user"));
			json_t *per = json_object_get(want, user);
			if (!per) {
				per = json_object();
				json_object_set_new(want, user, per);
			}
			json_object_set_new(per, json_string_value(json_object_get(t, "device")), json_string(OTK_ALG));
		}
		olm_release(&l);
	}
	if (!json_object_size(want)) {
		json_decref(want);
		chain_share(c);
		return;
	}
	json_t *body = json_pack("{s:o, s:i}", "one_time_keys", want, "timeout", KEY_QUERY_TIMEOUT_MS);
	chain_request(c, "POST", "/_matrix/client/v3/keys/claim", body, claim_done);
	json_decref(body);
}

static void share_done(void *arg, struct http_response *r)
{
	struct chain *c = arg;
	struct mx_e2ee *e = c->e;
	if (chain_failed(c, r, "send_to_device"))
		return;
	if (c->kind == CHAIN_MEND) {
		log_info("olm_session_mended", "transport=" T " user=%s curve25519=%s session=%s", log_q(c->room),
			 log_q(c->peer_curve), log_q(c->mend_sid));
		chain_end(c, r, NULL);
		return;
	}
	const char *sid = mx_megolm_out_session_id(c->out);
	int own, ok = txn_begin(e, &own) == 0;
	size_t i;
	json_t *t;
	json_array_foreach(c->shared, i, t)
		if (ok)
			ok = store_mx_shared_add(e->st, c->room, sid, json_string_value(json_object_get(t, "user")),
						 json_string_value(json_object_get(t, "device"))) == 0;
	if (txn_end(e, own, ok) < 0) {
		chain_end(c, r, "the devices that got the room key could not be stored");
		return;
	}
	log_info("room_key_shared", "transport=" T " room=%s session=%s devices=%zu", log_q(c->room), log_q(sid),
		 json_array_size(c->shared));
	chain_encrypt(c);
}

static void chain_share(struct chain *c)
{
	struct mx_e2ee *e = c->e;
	char err[256];
	int mend = c->kind == CHAIN_MEND;
	json_t *key = mend ? json_object() : mx_megolm_out_room_key(c->out, err, sizeof(err));
	json_t *messages = json_object();
	struct strbuf ids = STRBUF_INIT;
	int64_t now = wall_ms();
	json_decref(c->shared);
	c->shared = json_array();
	int own = 0, ok = key && txn_begin(e, &own) == 0;
	size_t i;
	json_t *t;
	json_array_foreach(c->targets, i, t) {
		if (!ok)
			break;
		const char *user = json_string_value(json_object_get(t, "user"));
		const char *dev = json_string_value(json_object_get(t, "device"));
		struct olm_list l;
		if (olm_load(e, json_string_value(json_object_get(t, "curve")), &l) < 0) {
			ok = 0;
			break;
		}
		struct mx_olm_session *use = l.n && !mend ? l.s[0] : NULL;
		for (size_t k = 0; mend && c->mend_sid && k < l.n; k++)
			if (!strcmp(mx_olm_session_id(l.s[k]), c->mend_sid))
				use = l.s[k]; /* the new session, not the ones that failed */
		json_t *enc = use ? mx_olm_encrypt(e->acct, use, user, json_string_value(json_object_get(t, "ed")),
						   mend ? "m.dummy" : "m.room_key", key, err, sizeof(err)) : NULL;
		if (enc) {
			ok = save_olm(e, use, now) == 0;
			json_t *per = json_object_get(messages, user);
			if (!per) {
				per = json_object();
				json_object_set_new(messages, user, per);
			}
			json_object_set_new(per, dev, enc);
			json_array_append(c->shared, t);
			strbuf_addf(&ids, "%s|%s;", user, dev);
		} else {
			log_warn("room_key_not_shared", "transport=" T " room=%s user=%s device=%s reason=%s",
				 log_q(c->room), log_q(user), log_q(dev),
				 log_q(use ? err : "the device has no one-time key left"));
		}
		olm_release(&l);
	}
	json_decref(key);
	if (!key || txn_end(e, own, ok) < 0) {
		json_decref(messages);
		strbuf_release(&ids);
		struct http_response r;
		memset(&r, 0, sizeof(r));
		r.retry_after_s = -1;
		chain_end(c, &r, "the room key could not be prepared for the members' devices");
		return;
	}
	if (!json_array_size(c->shared)) {
		json_decref(messages);
		strbuf_release(&ids);
		if (mend)
			chain_give_up(c, "no new Olm session could be made with the device");
		else
			chain_encrypt(c);
		return;
	}
	/* the same session and devices give the same txnId: a retry after a
	 * lost answer is deduplicated by the server */
	const char *sid = mend ? "" : mx_megolm_out_session_id(c->out);
	strbuf_addstr(&ids, sid);
	uint64_t h = hash_bytes(ids.buf, ids.len), h2 = hash_bytes(sid, strlen(sid));
	struct strbuf path = STRBUF_INIT;
	if (mend) { /* the row's txnId: a retry is the same transaction */
		strbuf_addstr(&path, "/_matrix/client/v3/sendToDevice/m.room.encrypted/");
		strbuf_add_path_escaped(&path, c->x->row.txn ? c->x->row.txn : "");
	} else {
		strbuf_addf(&path, "/_matrix/client/v3/sendToDevice/m.room.encrypted/rk.%016llx%016llx",
			    (unsigned long long)h, (unsigned long long)h2);
	}
	json_t *body = json_pack("{s:o}", "messages", messages);
	chain_request(c, "PUT", path.buf, body, share_done);
	json_decref(body);
	strbuf_release(&path);
	strbuf_release(&ids);
}

static void put_done(void *arg, struct http_response *r)
{
	struct chain *c = arg;
	chain_end(c, r, NULL);
}

static void chain_encrypt(struct chain *c)
{
	struct mx_e2ee *e = c->e;
	char err[256];
	json_t *content = json_loads(c->x->row.body ? c->x->row.body : "", 0, NULL);
	json_t *enc = json_is_object(content) ? mx_megolm_out_encrypt(c->out, e->acct, "m.room.message", content,
								       err, sizeof(err)) : NULL;
	json_decref(content);
	/* the advanced ratchet is committed before the ciphertext leaves */
	int own;
	if (!enc || txn_begin(e, &own) < 0 || txn_end(e, own, save_megolm_out(e, c->out, wall_ms()) == 0) < 0) {
		json_decref(enc);
		struct http_response r;
		memset(&r, 0, sizeof(r));
		r.retry_after_s = -1;
		chain_end(c, &r, enc ? "the room's session could not be stored" : "the reply could not be encrypted");
		return;
	}
	struct strbuf path = STRBUF_INIT;
	strbuf_addstr(&path, "/_matrix/client/v3/rooms/");
	strbuf_add_path_escaped(&path, c->room);
	strbuf_addstr(&path, "/send/m.room.encrypted/");
	strbuf_add_path_escaped(&path, c->x->row.txn ? c->x->row.txn : "");
	chain_request(c, "PUT", path.buf, enc, put_done);
	json_decref(enc);
	strbuf_release(&path);
}

/* The room's outbound session: the stored one, or a new one (stored) when
 * there is none or it must rotate.  NULL on a store or libolm error. */
static struct mx_megolm_out *outbound(struct mx_e2ee *e, const char *room, int64_t now)
{
	int64_t rot_ms = 0, rot_msgs = 0;
	struct strbuf p = STRBUF_INIT;
	int left = 0;
	char err[256];
	struct mx_megolm_out *s = NULL;
	int rc = store_mx_room_get(e->st, room, &rot_ms, &rot_msgs);
	int have = rc >= 0 ? store_mx_megolm_out_get(e->st, room, &p, &left) : -1;
	if (have == 1) {
		s = mx_megolm_out_unpickle(p.buf, e->key, e->keylen, err, sizeof(err));
		if (s && mx_megolm_out_needs_rotation(s, now, rot_ms, rot_msgs, left)) {
			log_info("room_key_rotated", "transport=" T " room=%s messages=%u member_left=%d", log_q(room),
				 (unsigned)mx_megolm_out_message_count(s), left);
			mx_megolm_out_free(s);
			s = NULL;
		}
	}
	strbuf_release(&p);
	if (s || have < 0)
		return s;
	s = mx_megolm_out_new(room, now, err, sizeof(err));
	int own;
	if (!s || txn_begin(e, &own) < 0 || txn_end(e, own, save_megolm_out(e, s, now) == 0) < 0) {
		if (!s)
			log_error("e2ee_error", "transport=" T " error=%s", log_q(err));
		mx_megolm_out_free(s);
		return NULL;
	}
	return s;
}

/* CHAIN_QUERY's end (c unlinked): the users whose lists could not be had
 * are marked outdated (their devices count as unknown); then the batch
 * goes on, answered or not. */
static void query_finish(struct chain *c, int answered)
{
	struct mx_e2ee *e = c->e;
	if (!answered) {
		int own, ok = txn_begin(e, &own) == 0;
		size_t i;
		json_t *u;
		json_array_foreach(c->users, i, u)
			if (ok)
				ok = store_mx_devices_outdated(e->st, json_string_value(u)) == 0;
		(void)txn_end(e, own, ok);
	}
	void (*ready)(void *) = c->ready;
	void *arg = c->ready_arg;
	chain_free(c);
	if (e->starting)
		e->start_failed = 1; /* mx_e2ee_prepare returns 1: the caller goes on */
	else
		ready(arg);
}

static struct chain *chain_add(struct mx_e2ee *e, int kind, struct send_ctx *x, http_done_fn done,
			       const char *room)
{
	struct chain *c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->kind = kind;
	c->x = x;
	c->done = done;
	c->room = xstrdup(room);
	c->next = e->chains;
	if (e->chains)
		e->chains->prev = c;
	e->chains = c;
	return c;
}

int mx_e2ee_prepare(struct mx_e2ee *e, const json_t *batch, void (*ready)(void *arg), void *arg)
{
	if (!mx_e2ee_ready(e))
		return 1;
	json_t *changed = json_object_get(json_object_get(batch, "device_lists"), "changed");
	json_t *want = json_object();
	size_t i, k;
	json_t *v, *u;
	json_array_foreach(json_object_get(json_object_get(batch, "to_device"), "events"), i, v) {
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *sender = json_string_value(json_object_get(v, "sender"));
		json_t *content = json_object_get(v, "content");
		const char *alg = json_string_value(json_object_get(content, "algorithm"));
		const char *curve = json_string_value(json_object_get(content, "sender_key"));
		if (!type || strcmp(type, "m.room.encrypted") || !sender || !curve || !alg || strcmp(alg, MX_ALG_OLM) ||
		    json_object_get(want, sender))
			continue;
		int stale = 0;
		json_array_foreach(changed, k, u)
			stale |= json_is_string(u) && !strcmp(json_string_value(u), sender);
		char *ed = NULL;
		int rc = stale ? 2 : device_find(e, sender, curve, &ed);
		free(ed);
		if (rc != 1)  /* unknown, outdated, changed, or without that device: ask */
			json_object_set_new(want, sender, json_array());
	}
	if (!json_object_size(want)) {
		json_decref(want);
		return 1;
	}
	struct chain *c = chain_add(e, CHAIN_QUERY, NULL, NULL, "-");
	c->users = json_array();
	const char *user;
	json_object_foreach(want, user, u)
		json_array_append_new(c->users, json_string(user));
	c->ready = ready;
	c->ready_arg = arg;
	if (note_generations(c, want) < 0) { /* then the answer counts as of generation 0 */
		json_decref(c->generations);
		c->generations = NULL;
	}
	log_info("keys_query_first", "transport=" T " users=%zu note=%s", json_object_size(want),
		 log_q("device lists of Olm senders, before their keys are checked"));
	json_t *body = json_pack("{s:o, s:i}", "device_keys", want, "timeout", KEY_QUERY_TIMEOUT_MS);
	e->starting = 1;
	e->start_failed = 0;
	chain_request(c, "POST", "/_matrix/client/v3/keys/query", body, query_done);
	e->starting = 0;
	json_decref(body);
	return e->start_failed ? 1 : 0;
}

int mx_e2ee_mend(struct mx_e2ee *e, struct send_ctx *x, http_done_fn done)
{
	if (!mx_e2ee_ready(e))
		return -1;
	json_t *body = json_loads(x->row.body ? x->row.body : "", 0, NULL);
	const char *user = json_string_value(json_object_get(body, "user"));
	const char *curve = json_string_value(json_object_get(body, "curve"));
	if (!user || !curve) {
		json_decref(body);
		return -1;
	}
	struct chain *c = chain_add(e, CHAIN_MEND, x, done, user);
	c->peer_curve = xstrdup(curve);
	json_decref(body);
	e->starting = 1;
	e->start_failed = 0;
	chain_devices(c);
	e->starting = 0;
	return e->start_failed ? -1 : 0;
}

int mx_e2ee_send(struct mx_e2ee *e, struct send_ctx *x, http_done_fn done)
{
	if (!mx_e2ee_ready(e))
		return -1;
	account_fresh(e);
	struct mx_megolm_out *out = outbound(e, x->row.chat, wall_ms());
	if (!out)
		return -1;
	struct chain *c = chain_add(e, CHAIN_ROOM_KEY, x, done, x->row.chat);
	c->out = out;
	e->starting = 1;
	e->start_failed = 0;
	chain_members(c);
	e->starting = 0;
	return e->start_failed ? -1 : 0;
}
