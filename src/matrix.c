/*
 * matrix.c - Matrix Client-Server API transport.  See matrix.h; the
 * protocol brief is ../shared/PROTOCOLS.md section 2.
 *
 * Like the Telegram transport, three activities share the loop and restart
 * from the database alone: syncing (/sync -> inbox + next_batch), processing
 * (inbox -> outbox + ledger) and sending (outbox -> PUT send/{txnId}, or
 * POST join for invites).
 */
#define _POSIX_C_SOURCE 200809L
#include "matrix.h"
#include "config.h"
#include "feedback.h"
#include "log.h"
#include "markup.h"
#include "metrics.h"
#include "mx_e2ee.h"
#include "sender.h"
#include "statedir.h"
#include "service.h"
#include "text.h"
#include "util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define T "matrix"
#define MAX_IN_FLIGHT 16         /* rooms served at once (one request per room) */
#define PART_BYTES 16000         /* events must stay under 65,536 bytes */
#define REQ_TIMEOUT_MS 30000
#define JOIN_TRIES 5             /* a 403 right after an invite can be a federation race */
#define TIMELINE_LIMIT 50        /* events per room in a /sync (the filter's room.timeline.limit) */
#define MESSAGES_LIMIT 100       /* events per /messages page while filling a gap */
#define GAP_MAX_BYTES (32u << 20) /* gap events held before one commit, at most */

/* start-up steps before the skeleton runs the transport */
enum step { PH_DISCOVER, PH_LOGIN, PH_WHOAMI, PH_FILTER, PH_KEYS };

struct gap {
	char *room, *from, *to;
};

struct mx {
	struct mx_options o;
	char *base, *token, *user, *password, *allow, *user_id, *localpart, *filter_id;
	char *display_name;      /* the bot's, from its own m.room.member event, or NULL */
	char *device_id;         /* from whoami, or the stored login's */
	struct mx_e2ee *e2ee;    /* encryption (mx_e2ee.h); rooms are tracked even when off */
	char *e2ee_error;        /* the pickle key could not be read: said at start */
	struct enc_check *checks; /* encryption state requests in flight (freed with the transport) */
	struct bot *bot;
	struct store *store;
	struct http *http;
	struct transport *t;     /* the skeleton this runs on */
	enum step phase;
	int gap_filling;         /* a /sync waits for /messages pages (mx_feed_sync: busy) */
	int keys_waiting;        /* ... or for the device lists of its Olm senders (mx_e2ee_prepare) */
	int feeding;             /* mx_feed_sync: no request is ever answered */

	/* a sync batch waiting for its gaps to be filled before the commit */
	json_t *batch;
	struct gap *gaps;
	size_t n_gaps, gap_next;
	json_t *gap_events;      /* room -> array of events, chronological */
	size_t gap_bytes;        /* answer bytes behind gap_events (bounded by GAP_MAX_BYTES) */

	/* answers over the body cap shrink the next request (see shrink) */
	int timeline_limit;      /* /sync room.timeline.limit now (TIMELINE_LIMIT, or less) */
	int messages_limit;      /* /messages limit now (MESSAGES_LIMIT, or less) */
	int sync_big, messages_big; /* limit 1 still too big: HTTP_SINGLE_MAX_BODY */

	int64_t limited_until;   /* a 429 holds every send of the account until then */
	int64_t key_notice_ms;   /* an event waiting this long for its key: the room is told */
	int64_t sync_started;    /* wall ms the running /sync was asked (poll seconds) */
	unsigned oversize_fail;  /* /sync answers too large even with one event a room */
};

/* ==== Requests ==== */

/* Starts a request whose answer may be max_body bytes (0: the default). */
static int request_capped(struct mx *m, const char *method, const char *path, const char *body,
			  long timeout_ms, size_t max_body, http_done_fn done, void *arg)
{
	struct strbuf url = STRBUF_INIT;
	strbuf_addf(&url, "%s%s", m->base, path);
	struct http_req req = { method, url.buf, body, body ? strlen(body) : 0, m->token,
				timeout_ms, max_body, done, arg };
	char err[256];
	int rc = http_start(m->http, &req, err, sizeof(err));
	if (rc < 0) {
		struct strbuf shown = STRBUF_INIT;
		http_redact(url.buf, &shown);
		log_error("http_error", "transport=" T " url=%s error=%s", log_q(shown.buf), log_q(err));
		strbuf_release(&shown);
	}
	strbuf_release(&url);
	return rc;
}

static int request(struct mx *m, const char *method, const char *path, const char *body,
		   long timeout_ms, http_done_fn done, void *arg)
{
	return request_capped(m, method, path, body, timeout_ms, 0, done, arg);
}

/* The sync filter, with timeline_limit events per room. */
static void filter_json(struct strbuf *out, int timeline_limit)
{
	strbuf_addf(out, "{\"presence\":{\"not_types\":[\"*\"]},\"account_data\":{\"not_types\":[\"*\"]},"
		    "\"room\":{\"ephemeral\":{\"not_types\":[\"*\"]},\"account_data\":{\"not_types\":[\"*\"]},"
		    "\"state\":{\"lazy_load_members\":true},\"timeline\":{\"limit\":%d}}}", timeline_limit);
}

/* Parses a reply: the JSON object (caller decrefs) or NULL; *errcode is the
 * Matrix errcode or "". */
static json_t *parse(const struct http_response *r, const char **errcode, const char **error)
{
	*errcode = "";
	*error = r->error ? r->error : "no response";
	if (r->curl_code || !r->body.len)
		return NULL;
	/* a string holding \u0000 is valid JSON: refusing the answer would
	 * refuse the same /sync forever */
	json_t *root = json_loadb(r->body.buf, r->body.len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		*error = "the server's answer is not JSON";
		return NULL;
	}
	const char *ec = json_string_value(json_object_get(root, "errcode"));
	const char *er = json_string_value(json_object_get(root, "error"));
	if (ec)
		*errcode = ec;
	if (er)
		*error = er;
	else if (r->status == 200)
		*error = "ok";
	return root;
}

/* The wait a 429 asks for (Retry-After header, else retry_after_ms),
 * clamped (http_clamp_wait_ms); -1 when the answer gives none. */
static int64_t server_wait_ms(const struct http_response *r, json_t *root)
{
	const char *ec = json_string_value(json_object_get(root, "errcode"));
	if (r->status != 429 && !(ec && !strcmp(ec, "M_LIMIT_EXCEEDED")))
		return -1;
	json_t *ms = json_object_get(root, "retry_after_ms");
	if (r->retry_after_s >= 0)
		return http_clamp_wait_ms(r->retry_after_s, 1000);
	if (json_is_integer(ms))
		return http_clamp_wait_ms(json_integer_value(ms), 1);
	return -1;
}

static void fail(struct mx *m, const char *why)
{
	transport_fail(m->t, why);
}

/* 401 M_UNKNOWN_TOKEN: log in again with the same device when a password
 * is configured, else stop.  Returns 1 when handled. */
static int token_lost(struct mx *m, const struct http_response *r, json_t *root, const char *errcode)
{
	if (r->status != 401 && strcmp(errcode, "M_UNKNOWN_TOKEN") && strcmp(errcode, "M_MISSING_TOKEN"))
		return 0;
	int soft = json_is_true(json_object_get(root, "soft_logout"));
	if (transport_failed(m->t))
		return 1;
	if (m->password) {
		log_warn("relogin", "transport=" T " soft_logout=%d note=%s", soft,
			 log_q("the access token was refused; logging in again with the same device"));
		if (store_kv_set(m->store, "matrix.access_token", "") < 0)
			log_warn("relogin", "transport=" T " note=%s",
				 log_q("the old token could not be cleared from the state database"));
		free(m->token);
		m->token = NULL;
		m->phase = PH_LOGIN;
		transport_restart(m->t);
	} else {
		fail(m, "the Matrix access token was refused (M_UNKNOWN_TOKEN) and no password is "
			"configured to log in again: set matrix_token to a valid token, or matrix_user "
			"and matrix_password");
	}
	return 1;
}

/* ==== Start: discovery, login, whoami, filter ==== */

static void start_retry(struct mx *m, const char *what, long status, const char *error)
{
	transport_start_retry(m->t, what, status, error);
}

static void discover_done(void *arg, struct http_response *r)
{
	struct mx *m = arg;
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	const char *url = json_string_value(json_object_get(json_object_get(root, "m.homeserver"), "base_url"));
	char why[256];
	if (r->status == 200 && url && http_url_allowed(url, why, sizeof(why)) == 0) {
		free(m->base);
		m->base = xstrdup(url);
		size_t n = strlen(m->base);
		while (n && m->base[n - 1] == '/')
			m->base[--n] = '\0';
		log_info("discovered", "transport=" T " homeserver=%s", log_q(m->base));
		m->phase = m->token ? PH_WHOAMI : PH_LOGIN;
		transport_start_next(m->t);
	} else if (r->status == 404) {
		fail(m, "the server name has no /.well-known/matrix/client: set matrix_homeserver to the "
			"homeserver's URL (https://...)");
	} else {
		start_retry(m, "discover", r->status, er);
	}
	json_decref(root);
}

static void login_done(void *arg, struct http_response *r)
{
	struct mx *m = arg;
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	const char *tok = json_string_value(json_object_get(root, "access_token"));
	const char *dev = json_string_value(json_object_get(root, "device_id"));
	if (r->status == 200 && tok && dev) {
		free(m->token);
		m->token = xstrdup(tok);
		log_add_secret(tok);
		if (store_begin(m->store) < 0 || store_kv_set(m->store, "matrix.access_token", tok) < 0 ||
		    store_kv_set(m->store, "matrix.device_id", dev) < 0 || store_commit(m->store) < 0) {
			store_rollback(m->store);
			log_warn("store_error", "transport=" T " note=%s",
				 log_q("the new login could not be saved; faqbot logs in again after a restart"));
		}
		log_info("logged_in", "transport=" T " device=%s", log_q(dev));
		m->phase = PH_WHOAMI;
		transport_start_next(m->t);
	} else if (r->status == 403 || r->status == 400) {
		char why[512];
		snprintf(why, sizeof(why), "the homeserver refused the login of %s (%s: %s): check "
			 "matrix_user and matrix_password", m->user, *ec ? ec : "error", er);
		fail(m, why);
	} else {
		start_retry(m, "login", r->status, er);
	}
	json_decref(root);
}

static void whoami_done(void *arg, struct http_response *r)
{
	struct mx *m = arg;
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	const char *uid = json_string_value(json_object_get(root, "user_id"));
	if (r->status == 200 && uid && uid[0] == '@') {
		free(m->user_id);
		m->user_id = xstrdup(uid);
		free(m->localpart);
		m->localpart = xstrndup(uid + 1, strcspn(uid + 1, ":"));
		const char *dev = json_string_value(json_object_get(root, "device_id"));
		free(m->device_id);
		m->device_id = dev ? xstrdup(dev) : NULL;
		m->phase = PH_FILTER;
		transport_start_next(m->t);
	} else if (!token_lost(m, r, root, ec)) {
		start_retry(m, "whoami", r->status, er);
	}
	json_decref(root);
}

/* Sends cut short by a crash go again with the same txnId: the homeserver
 * returns the original event instead of posting twice. */
static void enter_run(struct mx *m)
{
	transport_running(m->t);
	if (transport_running_now(m->t))
		log_info("started", "transport=" T " user=%s encryption=%s", log_q(m->user_id),
			 mx_e2ee_ready(m->e2ee) ? "on" : "off");
}

/* After the filter: the encryption keys, when encryption is on. */
static void keys_phase(struct mx *m)
{
	if (!m->o.encryption) {
		enter_run(m);
		return;
	}
	m->phase = PH_KEYS;
	transport_start_next(m->t);
}

static void keys_uploaded(void *arg, int ok, long status, const char *error)
{
	struct mx *m = arg;
	if (ok)
		enter_run(m);
	else
		transport_start_retry(m->t, "keys_upload", status, error);
}

/* PH_KEYS: the device's encryption account (from the store, or new), its
 * keys uploaded once.  1 when a request is in flight, 0 when done. */
static int keys_start(struct mx *m)
{
	char err[768];
	if (m->e2ee_error) {
		fail(m, m->e2ee_error);
		return 0;
	}
	struct strbuf v = STRBUF_INIT;
	const char *dev = m->device_id;
	if (!dev && store_kv_get(m->store, "matrix.device_id", &v) == 1 && v.len)
		dev = v.buf;
	if (!dev) {
		log_warn("encryption_off", "transport=" T " note=%s",
			 log_q("the homeserver did not say which device the access token belongs to "
			       "(whoami without device_id): encrypted rooms stay silent"));
		strbuf_release(&v);
		enter_run(m);
		return 0;
	}
	int rc = mx_e2ee_load(m->e2ee, m->user_id, dev, err, sizeof(err));
	strbuf_release(&v);
	if (rc < 0) {
		fail(m, err);
		return 0;
	}
	if (!mx_e2ee_needs_upload(m->e2ee)) {
		enter_run(m);
		return 0;
	}
	if (mx_e2ee_upload(m->e2ee, 1, keys_uploaded, m) < 0) {
		transport_start_retry(m->t, "keys_upload", 0, "the keys could not be prepared (see the log)");
		return 0;
	}
	return 1;
}

static void filter_done(void *arg, struct http_response *r)
{
	struct mx *m = arg;
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	const char *id = json_string_value(json_object_get(root, "filter_id"));
	if (r->status == 200 && id) {
		free(m->filter_id);
		m->filter_id = xstrdup(id);
		if (store_begin(m->store) < 0 || store_kv_set(m->store, "matrix.filter_id", id) < 0 ||
		    store_kv_set(m->store, "matrix.filter_user", m->user_id) < 0 || store_commit(m->store) < 0) {
			store_rollback(m->store);
			start_retry(m, "filter", 0, "the state database cannot be written (see store_error)");
		} else {
			keys_phase(m);
		}
	} else if (!token_lost(m, r, root, ec)) {
		start_retry(m, "filter", r->status, er);
	}
	json_decref(root);
}

/* The skeleton's start hook: the request of the current step (1), or the
 * step done at once from the store (0). */
static int mx_start(void *self)
{
	struct mx *m = self;
	int rc = 0, issued = 0;
	struct strbuf path = STRBUF_INIT, v = STRBUF_INIT;
	switch (m->phase) {
	case PH_DISCOVER:
		issued = 1;
		rc = request(m, "GET", "/.well-known/matrix/client", NULL, REQ_TIMEOUT_MS, discover_done, m);
		break;
	case PH_LOGIN: {
		if (!m->token && store_kv_get(m->store, "matrix.access_token", &v) == 1 && v.len) {
			m->token = xstrdup(v.buf); /* from an earlier login */
			log_add_secret(m->token);
			m->phase = PH_WHOAMI;
			break;
		}
		if (!m->user || !m->password) {
			fail(m, "no Matrix access token: set matrix_token, or matrix_user and matrix_password");
			break;
		}
		json_t *b = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s}", "type", "m.login.password",
				      "identifier", "type", "m.id.user", "user", m->user, "password",
				      m->password, "initial_device_display_name", "faqbot");
		if (store_kv_get(m->store, "matrix.device_id", &v) == 1 && v.len)
			json_object_set_new(b, "device_id", json_string(v.buf)); /* keep one device */
		char *s = json_dumps(b, JSON_COMPACT);
		json_decref(b);
		issued = 1;
		rc = request(m, "POST", "/_matrix/client/v3/login", s, REQ_TIMEOUT_MS, login_done, m);
		free(s);
		break;
	}
	case PH_WHOAMI:
		issued = 1;
		rc = request(m, "GET", "/_matrix/client/v3/account/whoami", NULL, REQ_TIMEOUT_MS,
			     whoami_done, m);
		break;
	case PH_FILTER: {
		struct strbuf fu = STRBUF_INIT;
		if (store_kv_get(m->store, "matrix.filter_id", &v) == 1 &&
		    store_kv_get(m->store, "matrix.filter_user", &fu) == 1 && !strcmp(fu.buf, m->user_id)) {
			free(m->filter_id);
			m->filter_id = xstrdup(v.buf);
			strbuf_release(&fu);
			keys_phase(m);
			break;
		}
		strbuf_release(&fu);
		strbuf_addstr(&path, "/_matrix/client/v3/user/");
		strbuf_add_path_escaped(&path, m->user_id);
		strbuf_addstr(&path, "/filter");
		issued = 1;
		struct strbuf f = STRBUF_INIT;
		filter_json(&f, TIMELINE_LIMIT);
		rc = request(m, "POST", path.buf, f.buf, REQ_TIMEOUT_MS, filter_done, m);
		strbuf_release(&f);
		break;
	}
	case PH_KEYS:
		issued = keys_start(m);
		break;
	default:
		break;
	}
	if (issued && rc < 0)
		fail(m, "cannot reach the Matrix homeserver (see the http_error line)");
	strbuf_release(&path);
	strbuf_release(&v);
	return issued && rc == 0 ? 1 : 0;
}

/* ==== Replies ==== */

/* Idempotency key of part `part` of the reply to trigger: stable across
 * retries and restarts, URL-safe, one per part. */
static void txn_id(const char *kind, const char *trigger, int part, char *out, size_t n)
{
	/* two independent 64-bit hashes: 128 bits, collisions out of reach */
	uint64_t a = hash_bytes(trigger, strlen(trigger)), b = 0x9E3779B97F4A7C15ULL;
	for (const char *p = trigger; *p; p++)
		b = ((b ^ (unsigned char)*p) * 0xff51afd7ed558ccdULL) ^ (b >> 29);
	snprintf(out, n, "%s.%016llx%016llx.%d", kind, (unsigned long long)a, (unsigned long long)b,
		 part);
}

/* Queues one m.notice (split in parts when long) answering trigger: the
 * reply laid out by reply_render (formatted_body, the answer's markup
 * formatted), or text when r is NULL; cut by markup_split so no part
 * breaks a tag, each part with its plain body beside it. */
static int queue_notice(struct mx *m, const char *room, const char *trigger, const char *kind,
			 const struct reply *r, const char *text, const char *asker,
			 const char *reply_to, const char *thread_root)
{
	/* never clear text into an encrypted room (mx_send checks again, for
	 * a room that turns encrypted while the reply waits) */
	int enc = mx_e2ee_room_encrypted(m->e2ee, room);
	if (enc < 0)
		return -1;
	if (enc && !mx_e2ee_ready(m->e2ee)) {
		log_info("encrypted_room_silent", "transport=" T " room=%s trigger=%s note=%s", log_q(room),
			 log_q(trigger), log_q("encryption is off: nothing is posted in an encrypted room"));
		return 0;
	}
	struct strbuf all = STRBUF_INIT;
	if (r)
		reply_render(r, REPLY_MATRIX, &all);
	else
		markup_add_text(&all, text, strlen(text), MARKUP_MATRIX);
	size_t n_parts;
	char **parts = markup_split(all.buf ? all.buf : "", all.len, PART_BYTES, MARKUP_BYTES, &n_parts);
	int rc = 0;
	int64_t now = wall_ms();
	for (size_t part = 0; part < n_parts && rc == 0; part++) {
		char *body = markup_html_to_plain(parts[part], strlen(parts[part]));
		json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "msgtype", "m.notice", "body", body,
				      "format", "org.matrix.custom.html", "formatted_body", parts[part]);
		json_t *mentions = json_object();
		if (asker && part == 0)
			json_object_set_new(mentions, "user_ids", json_pack("[s]", asker));
		json_object_set_new(c, "m.mentions", mentions);
		if (thread_root)
			json_object_set_new(c, "m.relates_to",
					    json_pack("{s:s, s:s, s:b, s:{s:s}}", "rel_type", "m.thread",
						      "event_id", thread_root, "is_falling_back", part > 0,
						      "m.in_reply_to", "event_id", reply_to));
		else if (reply_to && part == 0)
			json_object_set_new(c, "m.relates_to",
					    json_pack("{s:{s:s}}", "m.in_reply_to", "event_id", reply_to));
		char *s = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		char txn[128];
		txn_id(kind, trigger, (int)part, txn, sizeof(txn));
		struct outbox_row row = { 0 };
		row.transport = T;
		row.chat = (char *)room;
		row.trigger = (char *)trigger;
		row.part = (int)part;
		row.method = "m.room.message";
		row.body = s;
		row.txn = txn;
		row.entry = r ? r->entry_id : NULL;
		row.created_at = row.next_at = now;
		if (store_outbox_add(m->store, &row) < 0) {
			log_error("store_error", "transport=" T " room=%s trigger=%s", log_q(room), log_q(trigger));
			rc = -1;
		}
		free(s);
		free(body);
	}
	markup_parts_free(parts, n_parts);
	strbuf_release(&all);
	return rc;
}

/* ==== Processing: inbox -> outbox ==== */

static int handle_invite(struct mx *m, const char *room, const char *sender, const char *trigger)
{
	/* invitations: from listed users or users of listed servers */
	if (!bot_listed(m->allow, sender ? sender : "", 1) || !bot_listed(m->o.allowed_rooms, room, 1)) {
		log_info("invite_declined", "transport=" T " room=%s sender=%s", log_q(room),
			 log_q(sender ? sender : "?"));
		return 0;
	}
	int64_t now = wall_ms();
	struct outbox_row row = { 0 };
	char txn[128];
	txn_id("join", trigger, 0, txn, sizeof(txn));
	row.transport = T;
	row.chat = (char *)room;
	row.trigger = (char *)trigger;
	row.method = "join";
	row.body = "{}";
	row.txn = txn;
	row.created_at = row.next_at = now;
	if (store_outbox_add(m->store, &row) < 0)
		return -1;
	/* the hello waits for the first sync that shows the room joined: its
	 * state says whether the room is encrypted (then the hello is too) */
	char hello_trigger[700], key[600];
	snprintf(hello_trigger, sizeof(hello_trigger), "hello:%.600s", trigger);
	snprintf(key, sizeof(key), "matrix.hello.%.500s", room);
	int rc = store_kv_set(m->store, key, hello_trigger);
	if (rc == 0)
		log_info("invited", "transport=" T " room=%s sender=%s", log_q(room), log_q(sender ? sender : "?"));
	return rc;
}

/* Removes leading "> " reply-fallback lines (and the blank line after). */
static void strip_fallback(struct strbuf *b)
{
	size_t i = 0;
	while (i < b->len && b->buf[i] == '>') {
		const char *nl = memchr(b->buf + i, '\n', b->len - i);
		i = nl ? (size_t)(nl - b->buf) + 1 : b->len;
	}
	if (i && i < b->len && b->buf[i] == '\n')
		i++;
	if (i) {
		memmove(b->buf, b->buf + i, b->len - i + 1);
		b->len -= i;
	}
}

/* Finds (case-insensitively) the bot's name as a word in body; cuts it out. */
static int cut_name(struct strbuf *b, const char *name)
{
	size_t n = strlen(name);
	if (!n)
		return 0;
	for (size_t i = 0; i + n <= b->len; i++) {
		if (strncasecmp(b->buf + i, name, n))
			continue;
		char before = i ? b->buf[i - 1] : ' ';
		char after = i + n < b->len ? b->buf[i + n] : ' ';
		if (isalnum((unsigned char)before) || isalnum((unsigned char)after) || after == '_')
			continue;
		size_t end = i + n;
		while (end < b->len && (b->buf[end] == ':' || b->buf[end] == ','))
			end++;
		memmove(b->buf + i, b->buf + end, b->len - end + 1);
		b->len -= end - i;
		return 1;
	}
	return 0;
}

/* The text of a mention pill of user_id in formatted_body
 * (<a href="https://matrix.to/#/@bot:server">Name</a>, the user id raw or
 * percent-encoded), as a new string, or NULL when there is none.  Older
 * clients mention this way without m.mentions, with the display name the
 * user saw as the link's text. */
static char *pill_text(const char *html, const char *user_id)
{
	static const char *const prefix = "https://matrix.to/#/";
	size_t pl = strlen(prefix);
	for (const char *p = html ? strstr(html, prefix) : NULL; p; p = strstr(p + 1, prefix)) {
		const char *u = p + pl, *id = user_id;
		while (*id) {
			const char *enc = *id == '@' ? "%40" : *id == ':' ? "%3A" : NULL;
			if (*u == *id)
				u++;
			else if (enc && !strncasecmp(u, enc, 3))
				u += 3;
			else
				break;
			id++;
		}
		if (*id || (*u != '"' && *u != '\'' && *u != '?'))
			continue;
		const char *gt = strchr(u, '>');
		const char *end = gt ? strstr(gt, "</a>") : NULL;
		if (!end || end == gt + 1)
			continue;
		return xstrndup(gt + 1, (size_t)(end - gt - 1));
	}
	return NULL;
}

/* A 👍/👎 m.reaction on one of the bot's replies is a vote (another key is
 * ignored); a redaction withdraws the vote of the reaction it removes.
 * 0, or -1 when the store failed. */
static int handle_vote(struct mx *m, const char *room, json_t *ev, int64_t now)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *sender = json_string_value(json_object_get(ev, "sender"));
	const char *event_id = json_string_value(json_object_get(ev, "event_id"));
	json_t *content = json_object_get(ev, "content");
	struct service *sv = transport_service(m->t);
	if (!strcmp(type, "m.room.redaction")) {
		/* "redacts" at the top (room versions 1-10) or in content (11) */
		const char *r = json_string_value(json_object_get(content, "redacts"));
		if (!r)
			r = json_string_value(json_object_get(ev, "redacts"));
		return r && service_unreact(sv, r) < 0 ? -1 : 0;
	}
	json_t *rel = json_object_get(content, "m.relates_to");
	const char *rel_type = json_string_value(json_object_get(rel, "rel_type"));
	const char *target = json_string_value(json_object_get(rel, "event_id"));
	int value = feedback_vote_value(json_string_value(json_object_get(rel, "key")));
	if (!rel_type || strcmp(rel_type, "m.annotation") || !target || !value)
		return 0;
	return service_vote(sv, room, target, sender, value, event_id, now) < 0 ? -1 : 0;
}

/* Says once per room (remembered across restarts, encrypted like every
 * message there) that some messages could not be decrypted. */
static int tell_undecryptable(struct mx *m, const char *room)
{
	char key[600];
	snprintf(key, sizeof(key), "matrix.undecryptable_notice.%.500s", room);
	struct strbuf v = STRBUF_INIT;
	int rc = m->o.encrypted_notice ? store_kv_get(m->store, key, &v) : 1;
	if (rc == 0) {
		char trigger[600];
		snprintf(trigger, sizeof(trigger), "undecryptable:%.500s", room);
		char *text = bot_text(m->bot, "undecryptable", m->o.prefix);
		rc = store_kv_set(m->store, key, "1") < 0 ||
		     queue_notice(m, room, trigger, "e2ee", NULL, text, NULL, NULL, NULL) < 0 ? -1 : 0;
		free(text);
	}
	strbuf_release(&v);
	return rc < 0 ? -1 : 0;
}

/* An encrypted event that will not be decrypted: recorded (ledger, log,
 * faqbot_events_lost_total) and the room told once.  Never silent. */
static int undecryptable(struct mx *m, const char *room, const char *event_id, const char *why, int64_t now)
{
	char trigger[600];
	snprintf(trigger, sizeof(trigger), "e:%.500s", event_id);
	metrics_inc("faqbot_events_lost_total", "transport=\"" T "\",reason=\"undecryptable\"");
	log_error("undecryptable_given_up", "transport=" T " room=%s event=%s reason=%s", log_q(room),
		  log_q(event_id), log_q(why));
	if (store_ledger_add(m->store, T, trigger, now) < 0)
		return -1;
	return tell_undecryptable(m, room);
}

static int handle_event(struct mx *m, const char *room, json_t *ev, long members, const char *payload);

/* An m.room.encrypted event: decrypted, it goes the way of every event;
 * else it waits for its key (mx_e2ee), or is given up.  With encryption
 * off nothing is posted in the room (it would be clear text): logged once. */
static int handle_encrypted(struct mx *m, const char *room, json_t *ev, long members, const char *payload,
			    const char *trigger, int64_t now)
{
	const char *event_id = json_string_value(json_object_get(ev, "event_id"));
	if (json_object_get(json_object_get(ev, "unsigned"), "redacted_because")) {
		/* redacted: its ciphertext is gone on purpose, nothing was lost */
		log_debug("redacted_skipped", "transport=" T " room=%s event=%s", log_q(room), log_q(event_id));
		return store_ledger_add(m->store, T, trigger, now) < 0 ? -1 : 0;
	}
	json_t *plain = NULL;
	int rc = mx_e2ee_decrypt(m->e2ee, room, ev, payload, &plain, now);
	if (rc == MX_DECRYPTED) {
		const char *type = json_string_value(json_object_get(plain, "type"));
		if (type && !strcmp(type, "m.room.encrypted"))
			rc = undecryptable(m, room, event_id, "an encrypted event inside an encrypted event", now);
		else
			rc = handle_event(m, room, plain, members, payload);
		json_decref(plain);
		return rc;
	}
	if (rc == MX_WAITING || rc == MX_STORE_FAILED)
		return rc == MX_WAITING ? 0 : -1;
	if (rc == MX_UNDECRYPTABLE)
		return undecryptable(m, room, event_id, "bad ciphertext or session (see undecryptable)", now);
	if (store_ledger_add(m->store, T, trigger, now) < 0)
		return -1;
	char key[600];
	snprintf(key, sizeof(key), "matrix.e2ee_notice.%.500s", room);
	struct strbuf v = STRBUF_INIT;
	rc = store_kv_get(m->store, key, &v);
	if (rc == 0) {
		rc = store_kv_set(m->store, key, "1");
		log_warn("encrypted_room", "transport=" T " room=%s note=%s", log_q(room),
			 log_q("encrypted messages are not read (matrix_encryption is off, or the device "
			       "has no keys); nothing is posted in this room"));
	}
	strbuf_release(&v);
	return rc < 0 ? -1 : 0;
}

/* Handles one event (inside the caller's transaction); -1 when the store
 * failed (the transaction is then refused and the event handled again).
 * payload: the inbox row's (kept when an encrypted event waits for its key). */
static int handle_event(struct mx *m, const char *room, json_t *ev, long members, const char *payload)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *sender = json_string_value(json_object_get(ev, "sender"));
	const char *event_id = json_string_value(json_object_get(ev, "event_id"));
	json_t *content = json_object_get(ev, "content");
	if (!type || !sender || !event_id)
		return 0;
	const char *state_key = json_string_value(json_object_get(ev, "state_key"));
	const char *dn = json_string_value(json_object_get(content, "displayname"));
	if (!strcmp(type, "m.room.member") && state_key && !strcmp(state_key, m->user_id) && dn && *dn &&
	    (!m->display_name || strcmp(m->display_name, dn))) {
		free(m->display_name); /* the name users see, and type before a question */
		m->display_name = xstrdup(dn);
	}
	if (!strcmp(sender, m->user_id)) {
		/* our own echo: proof that a send went through even if its answer was lost */
		const char *txn = json_string_value(json_object_get(json_object_get(ev, "unsigned"),
								   "transaction_id"));
		int rc = txn ? store_outbox_mark_sent(m->store, T, txn, event_id) : 0;
		if (rc == 1)
			log_info("echo_confirmed", "transport=" T " room=%s txn=%s", log_q(room), log_q(txn));
		return rc < 0 ? -1 : 0;
	}
	if (json_object_get(ev, "state_key"))
		return 0; /* state events */
	if (!bot_listed(m->o.allowed_rooms, room, 1))
		return 0;
	char trigger[600];
	snprintf(trigger, sizeof(trigger), "e:%.500s", event_id);
	int seen = store_ledger_has(m->store, T, trigger);
	if (seen)
		return seen < 0 ? -1 : 0;
	int64_t now = wall_ms();
	if (!strcmp(type, "m.room.encrypted"))
		return handle_encrypted(m, room, ev, members, payload, trigger, now);
	if (!strcmp(type, "m.reaction") || !strcmp(type, "m.room.redaction"))
		return store_ledger_add(m->store, T, trigger, now) < 0 ? -1 : handle_vote(m, room, ev, now);
	if (strcmp(type, "m.room.message"))
		return 0;
	const char *msgtype = json_string_value(json_object_get(content, "msgtype"));
	const char *body = json_string_value(json_object_get(content, "body"));
	json_t *rel = json_object_get(content, "m.relates_to");
	const char *rel_type = json_string_value(json_object_get(rel, "rel_type"));
	if (!msgtype || strcmp(msgtype, "m.text") || !body || !*body ||
	    json_object_get(json_object_get(ev, "unsigned"), "redacted_because") ||
	    (rel_type && !strcmp(rel_type, "m.replace")))
		return 0; /* notices (bots), edits, redactions, non-text */
	if (store_ledger_add(m->store, T, trigger, now) < 0)
		return -1;
	struct strbuf text = STRBUF_INIT;
	strbuf_addstr(&text, body);
	strip_fallback(&text);
	int direct = members == 2;
	int addressed = direct;
	/* the bot's name around the question ("Assistant FAQ: …"): a pill names
	 * the bot whatever its display name, and is a mention without m.mentions */
	char *pill = pill_text(json_string_value(json_object_get(content, "formatted_body")), m->user_id);
	struct bot_identity me = { pill ? pill : m->display_name, m->user_id, m->localpart };
	size_t q0, qn = bot_strip_mention(text.buf, text.len, &me, &q0);
	if (q0 || qn != text.len) {
		memmove(text.buf, text.buf + q0, qn);
		text.len = qn;
		text.buf[qn] = 0;
		addressed = 1;
	}
	if (pill)
		addressed = 1;
	free(pill);
	json_t *uids = json_object_get(json_object_get(content, "m.mentions"), "user_ids");
	size_t i;
	json_t *u;
	json_array_foreach(uids, i, u) {
		if (json_is_string(u) && !strcmp(json_string_value(u), m->user_id))
			addressed = 1;
	}
	if (cut_name(&text, m->user_id) || cut_name(&text, m->localpart))
		addressed = 1;
	const char *in_reply = json_string_value(json_object_get(json_object_get(rel, "m.in_reply_to"),
								 "event_id"));
	if (in_reply && store_outbox_has_result(m->store, T, in_reply) == 1)
		addressed = 1;
	while (text.len && text.buf[0] == ' ')
		memmove(text.buf, text.buf + 1, text.len--);
	if (bot_is_command(text.buf, text.len, m->o.prefix) || bot_picks_choice(m->bot, room, text.buf, text.len))
		addressed = 1;
	const char *root = rel_type && !strcmp(rel_type, "m.thread")
			   ? json_string_value(json_object_get(rel, "event_id")) : NULL;
	struct service_msg sm = { { text.buf, text.len, direct ? CHAT_PRIVATE : CHAT_GROUP, addressed, room,
				    m->o.prefix },
				  sender, trigger, (int64_t)json_integer_value(json_object_get(ev, "origin_server_ts")),
				  body, event_id, root, NULL };
	int rc = service_handle(transport_service(m->t), &sm, now);
	strbuf_release(&text);
	return rc;
}

/* The service's queue hook: the reply as m.notice rows. */
static int mx_queue(void *arg, const struct service_msg *sm, const struct reply *r, const char *reply_to)
{
	return queue_notice(arg, sm->in.chat, sm->trigger, "q", r, r->text, sm->user, reply_to, sm->thread);
}

/* The hello of a room the bot was invited to, once a sync shows it
 * joined (after the room's state was read).  0, or -1 (store). */
static int hello_due(struct mx *m, const char *room)
{
	char key[600];
	snprintf(key, sizeof(key), "matrix.hello.%.500s", room);
	struct strbuf v = STRBUF_INIT;
	int rc = store_kv_get(m->store, key, &v);
	if (rc == 1) {
		char *hello = bot_text(m->bot, "hello", m->o.prefix);
		rc = queue_notice(m, room, v.buf, "hello", NULL, hello, NULL, NULL, NULL) < 0 ||
		     store_kv_del(m->store, key) < 0 ? -1 : 0;
		free(hello);
	}
	strbuf_release(&v);
	return rc < 0 ? -1 : 0;
}

/* Forgets what the store keeps per room once the bot left it. */
static int forget_room(struct mx *m, const char *room)
{
	char key[600];
	snprintf(key, sizeof(key), "matrix.hello.%.500s", room);
	if (store_kv_del(m->store, key) < 0)
		return -1;
	snprintf(key, sizeof(key), "matrix.members.%.500s", room);
	if (store_kv_del(m->store, key) < 0)
		return -1;
	snprintf(key, sizeof(key), "matrix.e2ee_notice.%.500s", room);
	if (store_kv_del(m->store, key) < 0)
		return -1;
	snprintf(key, sizeof(key), "matrix.undecryptable_notice.%.500s", room);
	if (store_kv_del(m->store, key) < 0)
		return -1;
	return mx_e2ee_room_left(m->e2ee, room);
}

/* Handles one inbox row and deletes it (inside the caller's transaction);
 * -1 when the store failed. */
static int mx_row(void *self, const struct inbox_row *row)
{
	struct mx *m = self;
	json_t *p = json_loads(row->payload, JSON_ALLOW_NUL, NULL);
	const char *kind = json_string_value(json_object_get(p, "kind"));
	const char *room = json_string_value(json_object_get(p, "room"));
	int rc = 0;
	if (kind && room) {
		if (!strcmp(kind, "event")) {
			rc = handle_event(m, room, json_object_get(p, "event"),
					  (long)json_integer_value(json_object_get(p, "members")), row->payload);
		} else if (!strcmp(kind, "invite")) {
			rc = handle_invite(m, room, json_string_value(json_object_get(p, "sender")), row->uid);
		} else if (!strcmp(kind, "leave")) {
			int n = store_outbox_drop_chat(m->store, T, room);
			rc = n < 0 ? -1 : forget_room(m, room);
			if (rc == 0)
				log_info("room_left", "transport=" T " room=%s dropped=%d", log_q(room), n);
		}
	}
	json_decref(p);
	return rc < 0 ? -1 : 0;
}

/* ==== Sync ==== */

static int add_inbox(struct mx *m, const char *uid, json_t *payload, int64_t now)
{
	char *s = json_dumps(payload, JSON_COMPACT);
	int rc = s ? store_inbox_add(m->store, T, uid, s, now) : 0;
	free(s);
	return rc < 0 ? -1 : 0;
}

static long room_members(struct mx *m, const char *room, json_t *jr)
{
	char key[600];
	snprintf(key, sizeof(key), "matrix.members.%.500s", room);
	json_t *cnt = json_object_get(json_object_get(jr, "summary"), "m.joined_member_count");
	if (json_is_integer(cnt)) {
		char v[32];
		snprintf(v, sizeof(v), "%lld", (long long)json_integer_value(cnt));
		if (store_kv_set(m->store, key, v) < 0)
			return -1;
		return (long)json_integer_value(cnt);
	}
	struct strbuf v = STRBUF_INIT;
	int rc = store_kv_get(m->store, key, &v);
	long n = rc == 1 ? strtol(v.buf, NULL, 10) : rc == 0 ? 0 : -1;
	strbuf_release(&v);
	return n;
}

/* Drops the batch waiting for its gaps, the gap events and the gaps: after
 * a commit, and when a sync fails half-way (the whole sync is then asked
 * again: next_batch was not stored). */
static void gap_reset(struct mx *m)
{
	m->keys_waiting = 0;
	json_decref(m->batch);
	m->batch = NULL;
	json_decref(m->gap_events);
	m->gap_events = NULL;
	for (size_t i = 0; i < m->n_gaps; i++) {
		free(m->gaps[i].room);
		free(m->gaps[i].from);
		free(m->gaps[i].to);
	}
	free(m->gaps);
	m->gaps = NULL;
	m->n_gaps = m->gap_next = 0;
	m->gap_bytes = 0;
}

/* The events of a room that say it is encrypted or who its members are
 * (state, gap and timeline, the first sync too).  A room that turns
 * encrypted while encryption is off loses its queued replies (they would
 * go in clear).  0, or -1 when the store failed. */
static int room_state(struct mx *m, const char *room, json_t *events)
{
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		int rc = mx_e2ee_room_event(m->e2ee, room, ev, m->user_id);
		if (rc < 0)
			return -1;
		if (rc == 1 && !mx_e2ee_ready(m->e2ee)) {
			int n = store_outbox_drop_chat(m->store, T, room);
			if (n < 0)
				return -1;
			if (n > 0)
				log_warn("encrypted_room_dropped", "transport=" T " room=%s dropped=%d note=%s",
					 log_q(room), n, log_q("the room turned encrypted and encryption is off: "
							       "its queued replies are not sent in clear"));
		}
	}
	return 0;
}

static int gave_up(void *arg, const char *event_id, const char *room, const char *payload)
{
	(void)payload;
	return undecryptable(arg, room, event_id, "its key did not come in time", wall_ms());
}

static int still_waiting(void *arg, const char *room)
{
	return tell_undecryptable(arg, room);
}

/* The bot's own message echo with its transaction id: marks that reply
 * sent at once, in the batch's commit (it would only do that from the
 * inbox).  1 handled, 0 not an own message echo, -1 store error. */
static int own_echo(struct mx *m, const char *room, json_t *ev)
{
	const char *sender = json_string_value(json_object_get(ev, "sender"));
	const char *txn = json_string_value(json_object_get(json_object_get(ev, "unsigned"), "transaction_id"));
	const char *event_id = json_string_value(json_object_get(ev, "event_id"));
	if (!sender || !m->user_id || strcmp(sender, m->user_id) || !txn || !event_id ||
	    json_object_get(ev, "state_key"))
		return 0;
	int rc = store_outbox_mark_sent(m->store, T, txn, event_id);
	if (rc == 1)
		log_info("echo_confirmed", "transport=" T " room=%s txn=%s", log_q(room), log_q(txn));
	return rc < 0 ? -1 : 1;
}

/* Stores the batch (with gap events filled in) and next_batch in one
 * commit, then pumps.  When the store fails, nothing of it is kept and the
 * same sync is made again. */
static void commit_batch(struct mx *m)
{
	json_t *b = m->batch;
	int64_t now = wall_ms();
	struct strbuf since = STRBUF_INIT;
	int got = store_kv_get(m->store, "matrix.next_batch", &since);
	int first = got == 0;
	int ok = got >= 0 && store_begin(m->store) == 0;
	/* keys first: their events waiting in the store go back to the inbox */
	if (ok && (mx_e2ee_sync(m->e2ee, b, now) < 0 || store_mx_waiting_expired(m->store, now, gave_up, m) < 0 ||
		   store_mx_waiting_rooms(m->store, now - m->key_notice_ms, still_waiting, m) < 0))
		ok = 0;
	const char *room;
	json_t *jr;
	json_object_foreach(json_object_get(json_object_get(b, "rooms"), "join"), room, jr) {
		if (!ok)
			break;
		long members = room_members(m, room, jr);
		if (members < 0)
			ok = 0;
		if (ok && (room_state(m, room, json_object_get(json_object_get(jr, "state"), "events")) < 0 ||
			   room_state(m, room, json_object_get(m->gap_events, room)) < 0 ||
			   room_state(m, room, json_object_get(json_object_get(jr, "timeline"), "events")) < 0 ||
			   hello_due(m, room) < 0))
			ok = 0;
		if (first || !ok)
			continue; /* the first sync answers no history */
		json_t *all = json_array();
		json_array_extend(all, json_object_get(m->gap_events, room));
		json_array_extend(all, json_object_get(json_object_get(jr, "timeline"), "events"));
		size_t i;
		json_t *ev;
		json_array_foreach(all, i, ev) {
			const char *id = json_string_value(json_object_get(ev, "event_id"));
			if (!id)
				continue;
			int own = own_echo(m, room, ev);
			if (own != 0) {
				if (own < 0)
					ok = 0;
				continue;
			}
			json_t *p = json_pack("{s:s, s:s, s:O, s:I}", "kind", "event", "room", room, "event", ev,
					      "members", (json_int_t)members);
			if (add_inbox(m, id, p, now) < 0)
				ok = 0;
			json_decref(p);
		}
		json_decref(all);
	}
	const char *next = json_string_value(json_object_get(b, "next_batch"));
	json_object_foreach(json_object_get(json_object_get(b, "rooms"), "invite"), room, jr) {
		const char *sender = NULL;
		size_t i;
		json_t *ev;
		/* the invite's stripped state says whether the room is encrypted
		 * before the hello goes */
		if (ok && room_state(m, room, json_object_get(json_object_get(jr, "invite_state"), "events")) < 0)
			ok = 0;
		json_array_foreach(json_object_get(json_object_get(jr, "invite_state"), "events"), i, ev) {
			const char *t = json_string_value(json_object_get(ev, "type"));
			const char *sk = json_string_value(json_object_get(ev, "state_key"));
			if (t && sk && !strcmp(t, "m.room.member") && m->user_id && !strcmp(sk, m->user_id))
				sender = json_string_value(json_object_get(ev, "sender"));
		}
		char uid[700];
		snprintf(uid, sizeof(uid), "invite:%.500s:%.100s", room, next ? next : "");
		json_t *p = json_pack("{s:s, s:s, s:s?}", "kind", "invite", "room", room, "sender", sender);
		if (ok && add_inbox(m, uid, p, now) < 0)
			ok = 0;
		json_decref(p);
	}
	json_object_foreach(json_object_get(json_object_get(b, "rooms"), "leave"), room, jr) {
		char uid[700];
		snprintf(uid, sizeof(uid), "leave:%.500s:%.100s", room, next ? next : "");
		json_t *p = json_pack("{s:s, s:s}", "kind", "leave", "room", room);
		if (ok && add_inbox(m, uid, p, now) < 0)
			ok = 0;
		json_decref(p);
	}
	if (ok && (store_kv_set(m->store, "matrix.next_batch", next) < 0 || store_commit(m->store) < 0))
		ok = 0;
	if (!ok)
		transport_poll_store_failed(m->t, "the sync could not be stored; it will be made again");
	if (ok && first)
		log_info("first_sync", "transport=" T " note=%s", log_q("history before now is not answered"));
	strbuf_release(&since);
	gap_reset(m);
	if (!ok)
		return;
	/* a sync went through: the next one asks for full batches again */
	m->timeline_limit = TIMELINE_LIMIT;
	m->messages_limit = MESSAGES_LIMIT;
	m->sync_big = m->messages_big = 0;
	transport_poll_stored(m->t, (double)(now - m->sync_started) / 1000.0);
	mx_e2ee_after_sync(m->e2ee);
}

static void sync_error(struct mx *m, const struct http_response *r, json_t *root, const char *ec,
		       const char *er)
{
	m->gap_filling = 0;
	transport_poll_over(m->t); /* this sync is over, whatever comes next */
	if (token_lost(m, r, root, ec))
		return;
	transport_poll_failed(m->t, r->status, ec, r->truncated ? "the response was larger than the limit" : er,
			      server_wait_ms(r, root));
}

static void fill_next_gap(struct mx *m);

/* An answer over the body cap (a /sync or a /messages page): the same
 * request would fail the same way forever, so the next one asks for less:
 * the limit halves down to 1, then one item gets HTTP_SINGLE_MAX_BODY.
 * Returns 1 when a smaller request is worth trying, 0 when even that
 * failed. */
static int shrink(int *limit, int *big, const char *what)
{
	metrics_inc("faqbot_errors_total", "transport=\"" T "\",kind=\"oversized\"");
	if (*limit > 1) {
		*limit /= 2;
		log_warn("oversized", "transport=" T " request=%s error=%s body_limit=%u next_limit=%d note=%s",
			 what, log_q("the response was larger than the limit"), HTTP_DEFAULT_MAX_BODY, *limit,
			 log_q("asking for fewer events at once"));
		return 1;
	}
	if (!*big) {
		*big = 1;
		log_warn("oversized", "transport=" T " request=%s error=%s next_limit=1 body_limit=%u note=%s",
			 what, log_q("the response was larger than the limit"), HTTP_SINGLE_MAX_BODY,
			 log_q("one event is larger than the usual limit"));
		return 1;
	}
	return 0;
}

/* Gives up filling the current gap: its older events are lost (logged and
 * counted), the newer ones already fetched are kept. */
static void gap_give_up(struct mx *m, const char *why)
{
	struct gap *g = &m->gaps[m->gap_next];
	metrics_inc("faqbot_events_lost_total", "transport=\"" T "\"");
	log_error("gap_truncated", "transport=" T " room=%s reason=%s note=%s", log_q(g->room), log_q(why),
		  log_q("the oldest events of this gap are not answered"));
	m->gap_next++;
	m->messages_limit = MESSAGES_LIMIT;
	m->messages_big = 0;
}

static void messages_done(void *arg, struct http_response *r)
{
	struct mx *m = arg;
	if (!m->gap_filling || m->gap_next >= m->n_gaps)
		return; /* its sync was dropped meanwhile (an error, a restart) */
	if (r->truncated) {
		if (!shrink(&m->messages_limit, &m->messages_big, "messages"))
			gap_give_up(m, "one event is larger than 16 MB");
		fill_next_gap(m);
		return;
	}
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	struct gap *g = &m->gaps[m->gap_next];
	json_t *chunk = json_object_get(root, "chunk");
	if (r->status != 200 || !json_is_array(chunk)) {
		gap_reset(m); /* the whole sync is retried: next_batch was not stored */
		sync_error(m, r, root, ec, er);
		json_decref(root);
		return;
	}
	json_t *evs = json_object_get(m->gap_events, g->room);
	if (!evs) {
		evs = json_array();
		json_object_set_new(m->gap_events, g->room, evs);
	}
	size_t i;
	json_t *ev;
	json_array_foreach(chunk, i, ev) /* chunk is newest first */
		json_array_insert(evs, 0, ev);
	m->gap_bytes += r->body.len;
	const char *end = json_string_value(json_object_get(root, "end"));
	if (end && json_array_size(chunk) && strcmp(end, g->to)) {
		free(g->from);
		g->from = xstrdup(end);
		if (m->gap_bytes > GAP_MAX_BYTES)
			gap_give_up(m, "the gap holds more than 32 MB of events");
	} else {
		m->gap_next++;
	}
	json_decref(root);
	fill_next_gap(m);
}

/* The device lists mx_e2ee_prepare asked for came (or failed): the batch
 * goes on, unless it was dropped meanwhile. */
static void batch_keys_ready(void *arg)
{
	struct mx *m = arg;
	if (!m->keys_waiting || !m->batch)
		return;
	m->keys_waiting = 0;
	m->gap_filling = 0;
	commit_batch(m);
}

static void fill_next_gap(struct mx *m)
{
	if (m->gap_next >= m->n_gaps) {
		/* the senders of its Olm messages must have known devices (their
		 * keys are checked against them): queried first when not */
		if (!m->feeding && !m->keys_waiting && mx_e2ee_prepare(m->e2ee, m->batch, batch_keys_ready, m) == 0) {
			m->keys_waiting = 1;
			return;
		}
		m->gap_filling = 0;
		commit_batch(m);
		return;
	}
	struct gap *g = &m->gaps[m->gap_next];
	struct strbuf path = STRBUF_INIT;
	strbuf_addstr(&path, "/_matrix/client/v3/rooms/");
	strbuf_add_path_escaped(&path, g->room);
	strbuf_addf(&path, "/messages?dir=b&limit=%d&from=", m->messages_limit);
	strbuf_add_path_escaped(&path, g->from);
	strbuf_addstr(&path, "&to=");
	strbuf_add_path_escaped(&path, g->to);
	size_t cap = m->messages_limit == 1 && m->messages_big ? HTTP_SINGLE_MAX_BODY : 0;
	if (request_capped(m, "GET", path.buf, NULL, REQ_TIMEOUT_MS, cap, messages_done, m) < 0) {
		m->gap_filling = 0;
		gap_reset(m);
		transport_poll_failed(m->t, 0, NULL, "cannot start a /messages request", -1);
	}
	strbuf_release(&path);
}

static void sync_done(void *arg, struct http_response *r)
{
	struct mx *m = arg;
	if (r->truncated) {
		if (shrink(&m->timeline_limit, &m->sync_big, "sync")) {
			transport_poll_again(m->t, wall_ms());
		} else {
			transport_poll_again(m->t, wall_ms() + (int64_t)http_backoff_ms(m->oversize_fail++));
			log_error("sync_failed", "transport=" T " error=%s", log_q("a /sync answer with one event "
				  "per room is still larger than 16 MB; retrying later"));
		}
		return;
	}
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	if (r->status != 200 || !root || !json_is_string(json_object_get(root, "next_batch"))) {
		if (r->status == 200)
			er = "the sync answer has no next_batch";
		sync_error(m, r, root, ec, er);
		json_decref(root);
		return;
	}
	/* limited timelines: fetch what the sync skipped before committing */
	gap_reset(m);
	struct strbuf since = STRBUF_INIT;
	int have_since = store_kv_get(m->store, "matrix.next_batch", &since) == 1; /* -1: as if none */
	m->batch = root;
	m->gap_events = json_object();
	const char *room;
	json_t *jr;
	json_object_foreach(json_object_get(json_object_get(root, "rooms"), "join"), room, jr) {
		json_t *tl = json_object_get(jr, "timeline");
		const char *prev = json_string_value(json_object_get(tl, "prev_batch"));
		if (have_since && json_is_true(json_object_get(tl, "limited")) && prev) {
			m->gaps = xrealloc(m->gaps, (m->n_gaps + 1) * sizeof(*m->gaps));
			m->gaps[m->n_gaps++] = (struct gap){ xstrdup(room), xstrdup(prev), xstrdup(since.buf) };
			log_info("sync_gap", "transport=" T " room=%s note=%s", log_q(room),
				 log_q("timeline limited: fetching the skipped events"));
		}
	}
	strbuf_release(&since);
	m->gap_filling = 1;
	fill_next_gap(m);
}

/* The skeleton's poll hook: /sync from the stored next_batch. */
static int mx_poll(void *self)
{
	struct mx *m = self;
	struct strbuf path = STRBUF_INIT, since = STRBUF_INIT;
	int have = store_kv_get(m->store, "matrix.next_batch", &since);
	if (have < 0) {
		strbuf_release(&since);
		return -1;
	}
	long timeout = have ? m->o.sync_timeout_s * 1000 : 0;
	strbuf_addf(&path, "/_matrix/client/v3/sync?timeout=%ld&set_presence=offline&filter=", timeout);
	if (m->timeline_limit < TIMELINE_LIMIT) {
		/* after an oversized answer: the same filter inline, fewer events a room */
		struct strbuf f = STRBUF_INIT;
		filter_json(&f, m->timeline_limit);
		strbuf_add_path_escaped(&path, f.buf);
		strbuf_release(&f);
	} else {
		strbuf_add_path_escaped(&path, m->filter_id);
	}
	if (have) {
		strbuf_addstr(&path, "&since=");
		strbuf_add_path_escaped(&path, since.buf);
	}
	size_t cap = m->timeline_limit == 1 && m->sync_big ? HTTP_SINGLE_MAX_BODY : 0;
	m->sync_started = wall_ms();
	int rc = request_capped(m, "GET", path.buf, NULL, timeout + 30000, cap, sync_done, m);
	strbuf_release(&path);
	strbuf_release(&since);
	return rc;
}

/* ==== Sending ==== */

/* The skeleton's sent hook: what the answer to a PUT send (or a join)
 * means for its row. */
static int mx_sent(void *self, struct outbox_row *row, const struct http_response *r, int txn)
{
	struct mx *m = self;
	const char *ec, *er;
	json_t *root = parse(r, &ec, &er);
	int64_t now = wall_ms();
	int join = !strcmp(row->method, "join");
	if (r->status == 200 && root) {
		const char *id = json_string_value(json_object_get(root, join ? "room_id" : "event_id"));
		free(row->result);
		row->result = xstrdup(id ? id : "");
		row->state = OUT_SENT;
		if (join)
			log_info("joined", "transport=" T " room=%s", log_q(row->chat));
	} else if (token_lost(m, r, root, ec)) {
		row->state = OUT_PENDING;
		row->attempts--;
		row->next_at = now + 1000;
	} else if (r->status == 429 || !strcmp(ec, "M_LIMIT_EXCEEDED")) {
		int64_t wait = server_wait_ms(r, root);
		if (wait < 0)
			wait = sender_backoff(row);
		/* Synapse limits sends per user, not per room: hold them all */
		if (now + wait > m->limited_until)
			m->limited_until = now + wait;
		sender_retry_later(row, now, wait);
		log_warn("rate_limited", "transport=" T " room=%s trigger=%s retry_in_ms=%lld", log_q(row->chat),
			 log_q(row->trigger), (long long)wait);
	} else if (join && r->status == 403 && row->attempts < JOIN_TRIES) {
		sender_retry_later(row, now, sender_backoff(row)); /* the invite may not have arrived yet */
		log_warn("join_retry", "transport=" T " room=%s error=%s", log_q(row->chat), log_q(er));
	} else if (r->status >= 400 && r->status < 500) {
		row->state = OUT_FAILED;
		metrics_inc("faqbot_errors_total", "transport=\"" T "\",kind=\"send_failed\"");
		log_error("send_failed", "transport=" T " room=%s trigger=%s status=%ld errcode=%s error=%s",
			  log_q(row->chat), log_q(row->trigger), r->status, log_q(*ec ? ec : "-"), log_q(er));
		char key[600];
		snprintf(key, sizeof(key), "matrix.hello.%.500s", row->chat);
		if (join && txn && (store_outbox_drop_chat(m->store, T, row->chat) < 0 || /* no hello without a join */
				    store_kv_del(m->store, key) < 0))
			txn = 0;
	} else {
		/* 5xx, network, garbage: the same txnId makes the retry safe */
		sender_retry_later(row, now, sender_backoff(row));
		log_warn("send_retry", "transport=" T " room=%s status=%ld error=%s", log_q(row->chat),
			 r->status, log_q(er));
	}
	json_decref(root);
	return txn;
}

static int mx_send(void *self, struct send_ctx *x, http_done_fn done);

/* A room whose m.room.encryption state the bot may never have seen (joined
 * by a version that did not track encryption, whose syncs since carried no
 * state): GET /rooms/{id}/state/m.room.encryption/ once before the first
 * send into it; 404 says not encrypted.  Recorded as matrix.enc_checked.*
 * so it is asked once per room. */
#define ENC_CHECKED "matrix.enc_checked."

struct enc_check {
	struct mx *m;
	struct enc_check *next, *prev;
	struct send_ctx *x;
	http_done_fn done;
};

static void enc_check_unlink(struct enc_check *k)
{
	if (k->m->checks == k)
		k->m->checks = k->next;
	if (k->prev)
		k->prev->next = k->next;
	if (k->next)
		k->next->prev = k->prev;
}

static int enc_checked(struct mx *m, const char *room)
{
	char key[600];
	snprintf(key, sizeof(key), ENC_CHECKED "%.500s", room);
	struct strbuf v = STRBUF_INIT;
	int rc = store_kv_get(m->store, key, &v);
	strbuf_release(&v);
	return rc;
}

static void enc_check_done(void *arg, struct http_response *r)
{
	struct enc_check *k = arg;
	struct mx *m = k->m;
	struct send_ctx *x = k->x;
	http_done_fn done = k->done;
	enc_check_unlink(k);
	free(k);
	const char *room = x->row.chat;
	json_t *content = r->status == 200 && r->body.len ? json_loadb(r->body.buf, r->body.len, 0, NULL) : NULL;
	if (r->status != 404 && !json_is_object(content)) {
		json_decref(content);
		if (r->status == 200)
			r->status = 502; /* a malformed answer: asked again later */
		log_warn("room_encryption_unknown", "transport=" T " room=%s status=%ld note=%s", log_q(room),
			 r->status, log_q("the room's encryption state could not be read; nothing is sent yet"));
		done(x, r);
		return;
	}
	char key[600];
	snprintf(key, sizeof(key), ENC_CHECKED "%.500s", room);
	json_t *ev = content ? json_pack("{s:s, s:s, s:O}", "type", "m.room.encryption", "state_key", "",
					 "content", content) : NULL;
	int ok = store_begin(m->store) == 0 && (!ev || mx_e2ee_room_event(m->e2ee, room, ev, m->user_id) >= 0) &&
		 store_kv_set(m->store, key, content ? "encrypted" : "plain") == 0 && store_commit(m->store) == 0;
	json_decref(ev);
	json_decref(content);
	if (!ok && store_in_transaction(m->store))
		store_rollback(m->store);
	if (ok)
		log_info("room_encryption_checked", "transport=" T " room=%s state=%s", log_q(room),
			 log_q(r->status == 404 ? "none" : "m.room.encryption"));
	if (!ok || mx_send(m, x, done) < 0) {
		struct http_response f;
		memset(&f, 0, sizeof(f));
		f.status = 503;
		f.retry_after_s = -1;
		f.error = "the room's encryption state could not be stored";
		done(x, &f);
	}
}

static int enc_check_start(struct mx *m, struct send_ctx *x, http_done_fn done)
{
	struct enc_check *k = xcalloc(1, sizeof(*k));
	*k = (struct enc_check){ m, m->checks, NULL, x, done };
	if (m->checks)
		m->checks->prev = k;
	m->checks = k;
	struct strbuf path = STRBUF_INIT;
	strbuf_addstr(&path, "/_matrix/client/v3/rooms/");
	strbuf_add_path_escaped(&path, x->row.chat);
	strbuf_addstr(&path, "/state/m.room.encryption/");
	int rc = request(m, "GET", path.buf, NULL, REQ_TIMEOUT_MS, enc_check_done, k);
	strbuf_release(&path);
	if (rc < 0) {
		enc_check_unlink(k);
		free(k);
	}
	return rc;
}

static int mx_send(void *self, struct send_ctx *x, http_done_fn done)
{
	struct mx *m = self;
	struct strbuf path = STRBUF_INIT;
	int rc;
	if (!strcmp(x->row.method, "m.room_key_request")) {
		strbuf_addstr(&path, "/_matrix/client/v3/sendToDevice/m.room_key_request/");
		strbuf_add_path_escaped(&path, x->row.txn ? x->row.txn : "");
		rc = request(m, "PUT", path.buf, x->row.body, REQ_TIMEOUT_MS, done, x);
		strbuf_release(&path);
		return rc;
	}
	if (!strcmp(x->row.method, "olm_mend"))
		return mx_e2ee_mend(m->e2ee, x, done);
	if (strcmp(x->row.method, "join")) {
		/* decided now, not when queued: the room may have turned encrypted since */
		int enc = mx_e2ee_room_encrypted(m->e2ee, x->row.chat);
		if (enc)
			return enc < 0 ? -1 : mx_e2ee_send(m->e2ee, x, done); /* never in clear */
		int checked = enc_checked(m, x->row.chat);
		if (checked <= 0)
			return checked < 0 ? -1 : enc_check_start(m, x, done);
	}
	strbuf_addstr(&path, "/_matrix/client/v3/rooms/");
	strbuf_add_path_escaped(&path, x->row.chat);
	if (!strcmp(x->row.method, "join")) {
		strbuf_addstr(&path, "/join");
		rc = request(m, "POST", path.buf, "{}", REQ_TIMEOUT_MS, done, x);
	} else {
		strbuf_addstr(&path, "/send/m.room.message/");
		strbuf_add_path_escaped(&path, x->row.txn);
		rc = request(m, "PUT", path.buf, x->row.body, REQ_TIMEOUT_MS, done, x);
	}
	strbuf_release(&path);
	return rc;
}

/* The account-wide wait after a 429, for every room. */
static int64_t mx_throttle(void *arg, const char *room, int64_t now)
{
	(void)room;
	const struct mx *m = arg;
	return m->limited_until > now ? m->limited_until - now : 0;
}

static void mx_free(void *self)
{
	struct mx *m = self;
	gap_reset(m);
	while (m->checks) {
		struct enc_check *k = m->checks;
		m->checks = k->next;
		free(k);
	}
	mx_e2ee_free(m->e2ee);
	free(m->device_id);
	free(m->e2ee_error);
	free(m->base);
	free(m->token);
	free(m->user);
	free(m->password);
	free(m->allow);
	free(m->user_id);
	free(m->localpart);
	free(m->display_name);
	free(m->filter_id);
	free(m);
}

void mx_feed_sync(struct transport *t, const char *body, size_t len)
{
	struct mx *m = transport_self(t);
	m->feeding = 1;
	if (!transport_running_now(t)) {
		transport_running(t);
		free(m->user_id);
		m->user_id = xstrdup("@faqbot:localhost");
		free(m->localpart);
		m->localpart = xstrdup("faqbot");
		free(m->filter_id);
		m->filter_id = xstrdup("f1");
		char err[512];
		if (m->o.encryption && mx_e2ee_load(m->e2ee, m->user_id, "FEEDDEVICE", err, sizeof(err)) < 0)
			log_warn("e2ee_error", "transport=" T " error=%s", log_q(err));
	}
	if (m->gap_filling)
		return; /* a gap fill is waiting for /messages */
	transport_feed(sync_done, m, body, len);
}

/* mx_e2ee's way to the homeserver. */
static int e2ee_request(void *arg, const char *method, const char *path, const char *body, http_done_fn done,
			void *cb_arg)
{
	return request(arg, method, path, body, REQ_TIMEOUT_MS, done, cb_arg);
}

struct transport *mx_new(const struct mx_options *o, struct bot *bot, struct store *store,
			 struct http *http)
{
	struct mx *m = xcalloc(1, sizeof(*m));
	m->o = *o;
	m->bot = bot;
	m->store = store;
	m->http = http;
	const char *hs = o->homeserver;
	if (strstr(hs, "://")) {
		m->base = xstrdup(hs);
		m->phase = o->token ? PH_WHOAMI : PH_LOGIN;
	} else {
		size_t n = strlen(hs) + 9;
		m->base = xmalloc(n);
		snprintf(m->base, n, "https://%s", hs);
		m->phase = PH_DISCOVER;
	}
	size_t n = strlen(m->base);
	while (n && m->base[n - 1] == '/')
		m->base[--n] = '\0';
	m->token = o->token ? xstrdup(o->token) : NULL;
	m->user = o->user ? xstrdup(o->user) : NULL;
	m->password = o->password ? xstrdup(o->password) : NULL;
	m->allow = o->invite_allow ? xstrdup(o->invite_allow) : NULL;
	log_add_secret(o->token);
	log_add_secret(o->password);
	m->timeline_limit = TIMELINE_LIMIT;
	m->messages_limit = MESSAGES_LIMIT;
	static const struct transport_ops ops = { mx_start, mx_poll, mx_row, mx_queue, mx_send, mx_sent,
						  mx_throttle, mx_free };
	struct transport_config c = { T, "sync", MAX_IN_FLIGHT, 1, o->admin_room,
				      { T, 0, o->record_unanswered, o->log_questions, o->flood_max,
					o->flood_window_s, o->flood_pause_s } };
	m->t = transport_new(&c, &ops, m, bot, store, http);
	m->e2ee = mx_e2ee_new(store, o->pickle_key, o->pickle_key_len, o->encryption, e2ee_request, m);
	m->key_notice_ms = MX_KEY_NOTICE_MS;
	const char *w = getenv("FAQBOT_TEST_KEY_WAIT_S"); /* tests: a short wait for late keys */
	long ws = w ? strtol(w, NULL, 10) : 0;
	if (ws > 0 && ws < 86400) {
		mx_e2ee_set_key_wait(m->e2ee, ws * 1000LL);
		if (ws * 1000LL < m->key_notice_ms)
			m->key_notice_ms = ws * 1000LL;
		log_warn("test_setting", "name=FAQBOT_TEST_KEY_WAIT_S seconds=%ld msg=%s", ws,
			 log_q("undecryptable messages are given up early; never set it in production"));
	}
	return m->t;
}

/* ==== From the configuration ==== */

int mx_configured(const struct config *c)
{
	return c->matrix_homeserver != NULL;
}

int mx_config_check(const struct config *c, struct strbuf *errors)
{
	char why[256];
	int rc = 0;
	if (!c->matrix_homeserver)
		return 0;
	if (strstr(c->matrix_homeserver, "://") && http_url_allowed(c->matrix_homeserver, why, sizeof(why)) < 0) {
		strbuf_addf(errors, "matrix_homeserver: %s\n", why);
		rc = -1;
	}
	if (!c->matrix_token && !(c->matrix_user && c->matrix_password)) {
		strbuf_addstr(errors, "matrix_homeserver is set but there is no way to log in: "
			      "set matrix_token, or matrix_user and matrix_password\n");
		rc = -1;
	}
	if (!c->matrix_command_prefix || strlen(c->matrix_command_prefix) != 1) {
		strbuf_addstr(errors, "matrix_command_prefix must be one character, such as !\n");
		rc = -1;
	}
	return rc;
}

struct transport *mx_from_config(const struct config *c, struct bot *bot, struct store *store,
				 struct http *http)
{
	struct mx_options mo = { c->matrix_homeserver, c->matrix_token, c->matrix_user,
				 c->matrix_password, c->matrix_command_prefix[0],
				 c->matrix_invite_allow, c->matrix_encrypted_notice,
				 c->matrix_sync_timeout, c->unanswered_retention_days > 0,
				 c->log_questions, c->admin_matrix_room, c->matrix_allowed_rooms,
				 c->flood_max, c->flood_window, c->flood_pause, c->matrix_encryption, NULL, 0 };
	/* the pickle key: the secret setting, else <state_dir>/pickle.key */
	uint8_t key[STATEDIR_PICKLE_KEY_BYTES];
	char err[600] = "";
	if (c->matrix_encryption && c->matrix_pickle_key && *c->matrix_pickle_key) {
		mo.pickle_key = c->matrix_pickle_key;
		mo.pickle_key_len = strlen(c->matrix_pickle_key);
	} else if (c->matrix_encryption && statedir_pickle_key(c->state_dir, key, err, sizeof(err)) == 0) {
		mo.pickle_key = key;
		mo.pickle_key_len = sizeof(key);
	}
	struct transport *t = mx_new(&mo, bot, store, http);
	memset(key, 0, sizeof(key));
	if (err[0]) {
		struct mx *m = transport_self(t);
		m->e2ee_error = xstrdup(err);
	}
	return t;
}
