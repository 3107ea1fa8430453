/*
 * telegram.c - Telegram Bot API transport.  See telegram.h for the
 * protocol; ../shared/PROTOCOLS.md section 1 for the sources.
 *
 * Three independent activities share the loop, each restartable from the
 * database alone: polling (getUpdates -> inbox + offset), processing
 * (inbox -> outbox + ledger) and sending (outbox -> sendMessage).
 */
#define _POSIX_C_SOURCE 200809L
#include "telegram.h"
#include "config.h"
#include "log.h"
#include "markup.h"
#include "metrics.h"
#include "sender.h"
#include "service.h"
#include "strmap.h"
#include "text.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define T "telegram"
#define MAX_PART_UNITS 4000      /* Telegram allows 4096 UTF-16 units a message */
#define CALLBACK_MAX_AGE_MS 15000 /* answerCallbackQuery is useless after this */
#define POLL_SLACK_MS 15000      /* curl timeout = long-poll timeout + this */
#define POLL_LIMIT 100           /* getUpdates batch size, the API's maximum */

/* start-up steps before the skeleton runs the transport */
enum step { ST_GETME, ST_WEBHOOK, ST_DELETE_WEBHOOK };

struct bucket {
	double tokens;
	int64_t last;
};

struct tg {
	struct tg_options o;
	char *token, *api_url;
	struct bot *bot;
	struct store *store;
	struct http *http;
	struct transport *t;     /* the skeleton this runs on */
	enum step step;

	int64_t offset;          /* next getUpdates offset, -1 = none yet */
	int poll_limit;          /* getUpdates limit now: POLL_LIMIT, less after an oversized answer */
	int poll_big;            /* limit 1 still too big: the single update gets HTTP_SINGLE_MAX_BODY */
	unsigned skip_fail;      /* failed tries to skip an unreadable update */
	int64_t started_at;

	int64_t bot_id;
	char *username;
	char *first_name;        /* the bot's display name (getMe), cut from "Name: question" */

	struct bucket global;
	struct strmap *chat_bucket; /* chat -> index in buckets */
	struct bucket *buckets;
	size_t n_buckets, buckets_alloc;
};

/* ==== Requests ==== */

static void api_url(struct tg *tg, const char *method, struct strbuf *url)
{
	strbuf_addf(url, "%s/bot%s/%s", tg->api_url, tg->token, method);
}

/* Starts a Bot API call whose answer may be max_body bytes (0: the default
 * cap). */
static int call_capped(struct tg *tg, const char *method, const char *body, long timeout_ms,
		       size_t max_body, http_done_fn done, void *arg)
{
	struct strbuf url = STRBUF_INIT;
	api_url(tg, method, &url);
	struct http_req req = { "POST", url.buf, body ? body : "{}", body ? strlen(body) : 2, NULL,
				timeout_ms, max_body, done, arg };
	char err[256];
	int rc = http_start(tg->http, &req, err, sizeof(err));
	if (rc < 0) {
		struct strbuf shown = STRBUF_INIT;
		http_redact(url.buf, &shown); /* the token is in the path */
		log_error("http_error", "transport=" T " method=%s url=%s error=%s", method, log_q(shown.buf),
			  log_q(err));
		strbuf_release(&shown);
	}
	strbuf_release(&url);
	return rc;
}

static int call(struct tg *tg, const char *method, const char *body, long timeout_ms,
		http_done_fn done, void *arg)
{
	return call_capped(tg, method, body, timeout_ms, 0, done, arg);
}

/* Parses a Bot API reply.  Returns the root object (caller decrefs) with
 * *ok set, or NULL when the body is not a Bot API reply at all. */
static json_t *parse_reply(const struct http_response *r, int *ok, long *code, const char **desc)
{
	*ok = 0;
	*code = r->status;
	*desc = r->error ? r->error : "no response";
	if (r->curl_code || !r->body.len)
		return NULL;
	json_t *root = json_loadb(r->body.buf, r->body.len, 0, NULL);
	if (!json_is_object(root) || !json_is_boolean(json_object_get(root, "ok"))) {
		json_decref(root);
		*desc = "the server's answer is not a Bot API reply";
		return NULL;
	}
	*ok = json_is_true(json_object_get(root, "ok"));
	json_t *ec = json_object_get(root, "error_code");
	if (json_is_integer(ec))
		*code = (long)json_integer_value(ec);
	const char *d = json_string_value(json_object_get(root, "description"));
	*desc = d ? d : (*ok ? "ok" : "error");
	return root;
}

/* The server's wait in seconds, -1 when it gave none; the caller clamps it
 * (http_clamp_wait_ms): it is the server's number, not ours. */
static long retry_after(json_t *root, const struct http_response *r)
{
	json_t *p = json_object_get(json_object_get(root, "parameters"), "retry_after");
	if (json_is_integer(p) && json_integer_value(p) >= 0)
		return json_integer_value(p) > 86400 ? 86400 : (long)json_integer_value(p);
	return r->retry_after_s;
}

static void fail(struct tg *tg, const char *why)
{
	transport_fail(tg->t, why);
}

static void token_refused(struct tg *tg)
{
	fail(tg, "the Telegram token was refused (401 Unauthorized): check telegram_token");
}

/* ==== Start: getMe, getWebhookInfo, deleteWebhook, setMyCommands ==== */

static void start_retry(struct tg *tg, const char *method, long code, const char *desc)
{
	transport_start_retry(tg->t, method, code, desc);
}

static void commands_done(void *arg, struct http_response *r)
{
	(void)arg;
	int ok;
	long code;
	const char *desc;
	json_t *root = parse_reply(r, &ok, &code, &desc);
	if (!ok)
		log_warn("set_commands_failed", "transport=" T " status=%ld error=%s", code, log_q(desc));
	json_decref(root);
}

static void enter_run(struct tg *tg)
{
	/* the menu is the bot's command table, in the FAQ's language */
	size_t nc;
	const struct bot_command *cmds = bot_commands(tg->bot, &nc);
	json_t *list = json_array();
	for (size_t i = 0; i < nc; i++)
		json_array_append_new(list, json_pack("{s:s, s:s}", "command", cmds[i].name, "description",
						      cmds[i].description));
	json_t *body = json_pack("{s:o}", "commands", list);
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s)
		call(tg, "setMyCommands", s, tg->o.send_timeout_s * 1000, commands_done, tg);
	free(s);
	transport_running(tg->t);
	if (transport_running_now(tg->t))
		log_info("started", "transport=" T " bot=%s", log_q(tg->username));
}

static void getme_done(void *arg, struct http_response *r)
{
	struct tg *tg = arg;
	int ok;
	long code;
	const char *desc;
	json_t *root = parse_reply(r, &ok, &code, &desc);
	json_t *res = json_object_get(root, "result");
	if (ok && json_is_integer(json_object_get(res, "id")) &&
	    json_is_string(json_object_get(res, "username"))) {
		tg->bot_id = json_integer_value(json_object_get(res, "id"));
		free(tg->username);
		tg->username = xstrdup(json_string_value(json_object_get(res, "username")));
		free(tg->first_name);
		tg->first_name = json_is_string(json_object_get(res, "first_name"))
				 ? xstrdup(json_string_value(json_object_get(res, "first_name"))) : NULL;
		if (!json_is_true(json_object_get(res, "can_read_all_group_messages")))
			log_info("privacy_mode", "transport=" T " bot=%s note=%s", log_q(tg->username),
				 log_q("in groups the bot only sees commands, replies to it and mentions"));
		tg->step = ST_WEBHOOK;
		transport_start_next(tg->t);
	} else if (code == 401 || code == 404) {
		token_refused(tg);
	} else {
		start_retry(tg, "getMe", code, desc);
	}
	json_decref(root);
}

static void delete_webhook_done(void *arg, struct http_response *r)
{
	struct tg *tg = arg;
	int ok;
	long code;
	const char *desc;
	json_t *root = parse_reply(r, &ok, &code, &desc);
	if (ok) {
		log_warn("webhook_deleted", "transport=" T " note=%s",
			 log_q("the webhook was removed; pending updates were kept"));
		enter_run(tg);
	} else if (code == 401) {
		token_refused(tg);
	} else {
		start_retry(tg, "deleteWebhook", code, desc);
	}
	json_decref(root);
}

static void webhook_done(void *arg, struct http_response *r)
{
	struct tg *tg = arg;
	int ok;
	long code;
	const char *desc;
	json_t *root = parse_reply(r, &ok, &code, &desc);
	const char *url = json_string_value(json_object_get(json_object_get(root, "result"), "url"));
	if (ok && url && *url) {
		if (tg->o.delete_webhook) {
			tg->step = ST_DELETE_WEBHOOK;
			transport_start_next(tg->t);
		} else {
			fail(tg, "a webhook is set on this bot, so it cannot poll for updates; remove it, or "
				 "set telegram_delete_webhook = true to let faqbot remove it (pending "
				 "updates are kept)");
		}
	} else if (ok) {
		enter_run(tg);
	} else if (code == 401) {
		token_refused(tg);
	} else {
		start_retry(tg, "getWebhookInfo", code, desc);
	}
	json_decref(root);
}

/* The skeleton's start hook: the request of the current step. */
static int tg_start(void *self)
{
	struct tg *tg = self;
	int rc = 0;
	if (tg->step == ST_GETME)
		rc = call(tg, "getMe", NULL, tg->o.send_timeout_s * 1000, getme_done, tg);
	else if (tg->step == ST_WEBHOOK)
		rc = call(tg, "getWebhookInfo", NULL, tg->o.send_timeout_s * 1000, webhook_done, tg);
	else
		rc = call(tg, "deleteWebhook", "{\"drop_pending_updates\":false}", tg->o.send_timeout_s * 1000,
			  delete_webhook_done, tg);
	if (rc == 0)
		return 1;
	fail(tg, "cannot reach the Telegram API (see the http_error line)");
	return 0;
}

/* ==== Processing: inbox -> outbox ==== */

/* Byte offset in s of UTF-16 unit offset u (Telegram entity offsets). */
static size_t utf16_to_byte(const char *s, size_t len, size_t u)
{
	size_t i = 0, units = 0;
	while (i < len && units < u) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		units += n == 4 ? 2 : 1;
		i += n;
	}
	return i < len ? i : len;
}

static void chat_key(json_int_t id, char *out, size_t n)
{
	snprintf(out, n, "%lld", (long long)id);
}

/* body with its top-level "chat_id" set to chat (a number when it reads as
 * one): a queued request following a group that became a supergroup.
 * Caller frees. */
static char *body_move_chat(const char *body, const char *chat)
{
	json_t *j = json_loads(body, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return xstrdup(body);
	}
	char *end;
	long long v = strtoll(chat, &end, 10);
	json_object_set_new(j, "chat_id", *end ? json_string(chat) : json_integer(v));
	char *out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	char *copy = xstrdup(out ? out : body);
	free(out);
	return copy;
}

/* Appends a sendMessage body for one part: text is already HTML when
 * html is 1 (parse_mode HTML), plain text otherwise. */
static void part_body(struct strbuf *b, const char *chat, const char *text, int html,
		      json_int_t reply_to, json_int_t thread, json_t *markup)
{
	json_t *j = json_object();
	char *end;
	long long cid = strtoll(chat, &end, 10);
	json_object_set_new(j, "chat_id", *end ? json_string(chat) : json_integer(cid));
	if (thread > 0)
		json_object_set_new(j, "message_thread_id", json_integer(thread));
	json_object_set_new(j, "text", json_string(text));
	if (html)
		json_object_set_new(j, "parse_mode", json_string("HTML"));
	json_object_set_new(j, "link_preview_options", json_pack("{s:b}", "is_disabled", 1));
	if (reply_to > 0)
		json_object_set_new(j, "reply_parameters",
				    json_pack("{s:I, s:b}", "message_id", (json_int_t)reply_to,
					      "allow_sending_without_reply", 1));
	if (markup)
		json_object_set(j, "reply_markup", markup);
	char *s = json_dumps(j, JSON_COMPACT);
	strbuf_addstr(b, s);
	free(s);
	json_decref(j);
}

/* The inline keyboard of a reply (👍/👎 under an answer in a private chat,
 * the choices, then the link), or NULL.  Votes are asked only in private
 * chats: in a group a row of buttons under every answer clutters the
 * conversation. */
static json_t *keyboard(const struct reply *r, int votes)
{
	votes = votes && r->kind == REPLY_ANSWER && r->entry_id;
	if (!r->n_choices && !r->link_url && !votes)
		return NULL;
	json_t *rows = json_array();
	if (votes)
		json_array_append_new(rows, json_pack("[{s:s, s:s}, {s:s, s:s}]", "text", "👍", "callback_data",
						       "v:1", "text", "👎", "callback_data", "v:-1"));
	for (size_t i = 0; i < r->n_choices; i++) {
		char data[80], label[200];
		snprintf(data, sizeof(data), "a:%s", r->choices[i].id);
		const char *text = r->choices[i].button ? r->choices[i].button : r->choices[i].label;
		size_t n = text_split_point(text, strlen(text), 60, 1);
		snprintf(label, sizeof(label), "%.*s%s", (int)n, text, n < strlen(text) ? "…" : "");
		json_array_append_new(rows, json_pack("[{s:s, s:s}]", "text", label, "callback_data", data));
	}
	if (r->link_url)
		json_array_append_new(rows, json_pack("[{s:s, s:s}]", "text",
						       r->link_label ? r->link_label : "Lien", "url",
						       r->link_url));
	return json_pack("{s:o}", "inline_keyboard", rows);
}

/* Commits the reply's parts as outbox rows (within the caller's
 * transaction); -1 when the store failed (the transaction is refused).
 * The reply goes as HTML (reply_render: the answer's markup formatted),
 * cut by markup_split so no part breaks a tag or an entity; each row's
 * alternative body is the part's plain text, sent when Telegram cannot
 * parse the HTML.  The link goes as a button, not in the text. */
static int queue_reply(struct tg *tg, const char *chat, const char *trigger, const struct reply *r,
			json_int_t reply_to, json_int_t thread, int votes)
{
	struct strbuf html = STRBUF_INIT, body = STRBUF_INIT, alt = STRBUF_INIT;
	struct reply shown = *r;
	shown.link_url = NULL;
	reply_render(&shown, REPLY_TELEGRAM, &html);
	size_t n_parts;
	char **parts = markup_split(html.buf ? html.buf : "", html.len, MAX_PART_UNITS, MARKUP_UTF16_TEXT,
				    &n_parts);
	json_t *markup = keyboard(r, votes);
	int rc = 0;
	int64_t now = wall_ms();
	for (size_t part = 0; part < n_parts; part++) {
		int last = part + 1 == n_parts;
		char *plain = markup_html_to_plain(parts[part], strlen(parts[part]));
		strbuf_reset(&body);
		strbuf_reset(&alt);
		part_body(&body, chat, parts[part], 1, part == 0 ? reply_to : 0, thread, last ? markup : NULL);
		part_body(&alt, chat, plain, 0, part == 0 ? reply_to : 0, thread, last ? markup : NULL);
		free(plain);
		struct outbox_row row = { 0 };
		row.transport = T;
		row.chat = (char *)chat;
		row.trigger = (char *)trigger;
		row.part = (int)part;
		row.method = "sendMessage";
		row.body = body.buf;
		row.alt_body = alt.buf;
		row.entry = r->entry_id;
		row.created_at = now;
		row.next_at = now;
		if (store_outbox_add(tg->store, &row) < 0) {
			log_error("store_error", "transport=" T " chat=%s trigger=%s", chat, trigger);
			rc = -1;
			break;
		}
	}
	markup_parts_free(parts, n_parts);
	json_decref(markup);
	strbuf_release(&html);
	strbuf_release(&body);
	strbuf_release(&alt);
	return rc;
}

/* The service's queue hook: the reply as sendMessage rows. */
static int tg_queue(void *arg, const struct service_msg *m, const struct reply *r, const char *reply_to)
{
	json_int_t to = reply_to ? strtoll(reply_to, NULL, 10) : 0;
	json_int_t thread = m->thread ? strtoll(m->thread, NULL, 10) : 0;
	return queue_reply(arg, m->in.chat, m->trigger, r, to > 0 ? to : 0, thread > 0 ? thread : 0,
			   m->user && m->in.kind == CHAT_PRIVATE &&
			   service_takes_votes(transport_service(((struct tg *)arg)->t)));
}

/* Is the message addressed to the bot; also cuts "@bot" out of text.
 * Returns -1 when it is a command for another bot (never answered). */
static int addressed(struct tg *tg, json_t *msg, struct strbuf *text)
{
	int yes = 0;
	json_t *ents = json_object_get(msg, "entities");
	/* cut mentions back to front so earlier offsets stay valid */
	for (size_t i = json_array_size(ents); i-- > 0;) {
		json_t *e = json_array_get(ents, i);
		const char *type = json_string_value(json_object_get(e, "type"));
		json_int_t off = json_integer_value(json_object_get(e, "offset"));
		json_int_t len = json_integer_value(json_object_get(e, "length"));
		if (!type || off < 0 || len <= 0)
			continue;
		size_t b0 = utf16_to_byte(text->buf, text->len, (size_t)off);
		size_t b1 = utf16_to_byte(text->buf, text->len, (size_t)(off + len));
		if (!strcmp(type, "bot_command") && off == 0) {
			const char *at = memchr(text->buf, '@', b1);
			if (at) {
				size_t ul = b1 - (size_t)(at + 1 - text->buf);
				if (!tg->username || strlen(tg->username) != ul ||
				    strncasecmp(at + 1, tg->username, ul))
					return -1; /* /cmd@otherbot */
				memmove((char *)at, text->buf + b1, text->len - b1 + 1);
				text->len -= b1 - (size_t)(at - text->buf);
			}
			yes = 1;
		} else if (!strcmp(type, "mention") && tg->username && b1 - b0 == strlen(tg->username) + 1 &&
			   !strncasecmp(text->buf + b0 + 1, tg->username, b1 - b0 - 1)) {
			memmove(text->buf + b0, text->buf + b1, text->len - b1 + 1);
			text->len -= b1 - b0;
			yes = 1;
		} else if (!strcmp(type, "text_mention") &&
			   json_integer_value(json_object_get(json_object_get(e, "user"), "id")) == tg->bot_id) {
			yes = 1;
		}
	}
	json_t *rt = json_object_get(msg, "reply_to_message");
	if (rt && json_integer_value(json_object_get(json_object_get(rt, "from"), "id")) == tg->bot_id)
		yes = 1;
	return yes;
}

static void handle_message(struct tg *tg, json_t *msg, int64_t now)
{
	json_t *chatj = json_object_get(msg, "chat");
	json_int_t chat_id = json_integer_value(json_object_get(chatj, "id"));
	json_int_t msg_id = json_integer_value(json_object_get(msg, "message_id"));
	const char *ctype = json_string_value(json_object_get(chatj, "type"));
	char chat[32], trigger[80];
	chat_key(chat_id, chat, sizeof(chat));
	json_t *mig = json_object_get(msg, "migrate_to_chat_id");
	if (json_is_integer(mig)) {
		char to[32];
		chat_key(json_integer_value(mig), to, sizeof(to));
		if (store_chat_set_migrated(tg->store, T, chat, to) < 0 ||
		    store_outbox_move_chat(tg->store, T, chat, to, body_move_chat) < 0)
			return; /* the transaction is refused and replayed */
		log_info("chat_migrated", "transport=" T " chat=%s to=%s", chat, to);
		return;
	}
	json_t *from = json_object_get(msg, "from");
	const char *raw = json_string_value(json_object_get(msg, "text"));
	if (!ctype || !chat_id || !msg_id || !from || json_is_true(json_object_get(from, "is_bot")) ||
	    !raw || !strcmp(ctype, "channel"))
		return; /* bots (ourselves included), channels, non-text messages */
	snprintf(trigger, sizeof(trigger), "m:%s:%lld", chat, (long long)msg_id);
	if (store_ledger_has(tg->store, T, trigger) != 0 || store_ledger_add(tg->store, T, trigger, now) < 0)
		return; /* handled already, or the store failed (the transaction is refused) */
	json_int_t date = json_integer_value(json_object_get(msg, "date"));
	if (tg->o.backlog_skip && date * 1000 < tg->started_at - tg->o.backlog_minutes * 60000) {
		log_info("backlog_skipped", "transport=" T " chat=%s message=%lld", chat, (long long)msg_id);
		return;
	}
	if (store_chat_set_disabled(tg->store, T, chat, 0) < 0)
		return;
	if (!bot_listed(tg->o.allowed_chats, chat, 0)) {
		log_debug("chat_not_allowed", "transport=" T " chat=%s", chat);
		return;
	}
	int group = strcmp(ctype, "private") != 0;
	struct strbuf text = STRBUF_INIT;
	strbuf_addstr(&text, raw);
	int addr = addressed(tg, msg, &text);
	if (addr < 0) {
		strbuf_release(&text);
		return;
	}
	/* the question without the bot's name around it ("FAQ: …", "… @faqbot") */
	struct bot_identity me = { tg->first_name, NULL, tg->username };
	size_t q0, qn = bot_strip_mention(text.buf, text.len, &me, &q0);
	char user[32], reply_to[32], thread[32];
	chat_key(json_integer_value(json_object_get(from, "id")), user, sizeof(user));
	chat_key(msg_id, reply_to, sizeof(reply_to));
	chat_key(json_integer_value(json_object_get(msg, "message_thread_id")), thread, sizeof(thread));
	struct service_msg m = { { text.buf + q0, qn, group ? CHAT_GROUP : CHAT_PRIVATE,
				   addr || tg->o.group_all, chat, '/' },
				 user, trigger, date > 0 && date < INT64_MAX / 1000 ? date * 1000 : 0, raw,
				 group ? reply_to : NULL,
				 json_is_true(json_object_get(msg, "is_topic_message")) ? thread : NULL, NULL };
	(void)service_handle(transport_service(tg->t), &m, now); /* a store failure refuses the transaction */
	strbuf_release(&text);
}

static void callback_answered(void *arg, struct http_response *r)
{
	(void)arg;
	if (r->status != 200)
		log_warn("callback_answer_failed", "transport=" T " status=%ld", r->status);
}

static void handle_callback(struct tg *tg, json_t *cq, int64_t received, int64_t now)
{
	const char *id = json_string_value(json_object_get(cq, "id"));
	const char *data = json_string_value(json_object_get(cq, "data"));
	json_t *from = json_object_get(cq, "from");
	if (!id || !from)
		return;
	char trigger[200];
	snprintf(trigger, sizeof(trigger), "c:%.180s", id);
	if (store_ledger_has(tg->store, T, trigger) != 0 || store_ledger_add(tg->store, T, trigger, now) < 0)
		return;
	if (now - received < CALLBACK_MAX_AGE_MS) {
		json_t *b = json_pack("{s:s}", "callback_query_id", id);
		char *s = json_dumps(b, JSON_COMPACT);
		call(tg, "answerCallbackQuery", s, tg->o.send_timeout_s * 1000, callback_answered, tg);
		free(s);
		json_decref(b);
	}
	if (!data || (strncmp(data, "a:", 2) && strncmp(data, "v:", 2)))
		return;
	json_t *msg = json_object_get(cq, "message");
	json_t *chatj = json_object_get(msg, "chat");
	json_int_t chat_id = json_is_integer(json_object_get(chatj, "id"))
			     ? json_integer_value(json_object_get(chatj, "id"))
			     : json_integer_value(json_object_get(from, "id"));
	char chat[32];
	chat_key(chat_id, chat, sizeof(chat));
	if (!bot_listed(tg->o.allowed_chats, chat, 0))
		return;
	const char *ctype = json_string_value(json_object_get(chatj, "type"));
	int group = ctype && strcmp(ctype, "private");
	char user[32], reply_to[32], thread[32];
	chat_key(json_integer_value(json_object_get(from, "id")), user, sizeof(user));
	chat_key(json_integer_value(json_object_get(msg, "message_id")), reply_to, sizeof(reply_to));
	chat_key(json_integer_value(json_object_get(msg, "message_thread_id")), thread, sizeof(thread));
	if (data[0] == 'v') {
		/* 👍/👎 under an answer: the vote is on that message */
		int value = atoi(data + 2);
		if (value < -1 || value > 1)
			return;
		(void)service_vote(transport_service(tg->t), chat, reply_to, user, value, NULL,
				   now); /* a store failure refuses the transaction */
		return;
	}
	struct service_msg m = { { "", 0, group ? CHAT_GROUP : CHAT_PRIVATE, 1, chat, '/' },
				 user, trigger, 0, NULL, group ? reply_to : NULL,
				 json_is_true(json_object_get(msg, "is_topic_message")) ? thread : NULL,
				 data + 2 };
	(void)service_handle(transport_service(tg->t), &m, now);
}

static void handle_member(struct tg *tg, json_t *m)
{
	json_int_t chat_id = json_integer_value(json_object_get(json_object_get(m, "chat"), "id"));
	const char *status = json_string_value(
		json_object_get(json_object_get(m, "new_chat_member"), "status"));
	if (!chat_id || !status)
		return;
	char chat[32];
	chat_key(chat_id, chat, sizeof(chat));
	if (!strcmp(status, "kicked") || !strcmp(status, "left")) {
		int n = store_outbox_drop_chat(tg->store, T, chat);
		if (n < 0 || store_chat_set_disabled(tg->store, T, chat, 1) < 0)
			return;
		log_info("chat_left", "transport=" T " chat=%s status=%s dropped=%d", chat, log_q(status), n);
	} else {
		if (store_chat_set_disabled(tg->store, T, chat, 0) < 0)
			return;
		log_info("chat_joined", "transport=" T " chat=%s status=%s", chat, log_q(status));
	}
}

/* The skeleton's row hook: one stored update (inside the open
 * transaction; the skeleton deletes the row).  A store failure refuses the
 * transaction, so the whole batch is handled again. */
static int tg_row(void *self, const struct inbox_row *row)
{
	struct tg *tg = self;
	int64_t now = wall_ms();
	json_t *u = json_loads(row->payload, 0, NULL);
	if (json_is_object(json_object_get(u, "message")))
		handle_message(tg, json_object_get(u, "message"), now);
	else if (json_is_object(json_object_get(u, "callback_query")))
		handle_callback(tg, json_object_get(u, "callback_query"), row->received_at, now);
	else if (json_is_object(json_object_get(u, "my_chat_member")))
		handle_member(tg, json_object_get(u, "my_chat_member"));
	json_decref(u);
	return 0;
}

/* ==== Polling ==== */

/* The update_id of the first update in a (truncated) getUpdates answer,
 * or -1: Telegram writes it first in each update. */
static int64_t first_update_id(const struct strbuf *body)
{
	const char *p = body->buf ? strstr(body->buf, "\"update_id\":") : NULL;
	if (!p)
		return -1;
	p += 12;
	while (*p == ' ')
		p++;
	char *end;
	long long id = strtoll(p, &end, 10);
	return end != p && id >= 0 && id < INT64_MAX ? (int64_t)id : -1;
}

/* A getUpdates answer over the body cap: asking again for the same batch
 * would fail the same way forever, so ask for fewer updates (halving the
 * limit down to 1), then for the single update with a larger cap, and only
 * then skip that one update, with an error line and a counted loss. */
static void poll_oversized(struct tg *tg, const struct http_response *r, int64_t now)
{
	metrics_inc("faqbot_errors_total", "transport=\"" T "\",kind=\"oversized\"");
	transport_poll_again(tg->t, now);
	if (tg->poll_limit > 1) {
		tg->poll_limit /= 2;
		log_warn("poll_oversized", "transport=" T " error=%s body_limit=%u next_limit=%d note=%s",
			 log_q("the response was larger than the limit"), HTTP_DEFAULT_MAX_BODY,
			 tg->poll_limit, log_q("asking for fewer updates at once"));
		return;
	}
	if (!tg->poll_big) {
		tg->poll_big = 1;
		log_warn("poll_oversized", "transport=" T " error=%s next_limit=1 body_limit=%u note=%s",
			 log_q("the response was larger than the limit"), HTTP_SINGLE_MAX_BODY,
			 log_q("one update is larger than the usual limit"));
		return;
	}
	int64_t id = first_update_id(&r->body);
	if (id < 0 || id < tg->offset) {
		transport_poll_again(tg->t, now + (int64_t)http_backoff_ms(tg->skip_fail++));
		log_error("poll_failed", "transport=" T " error=%s", log_q("one update is larger than "
			  "16 MB and its id cannot be read; retrying later"));
		return;
	}
	char off[32];
	chat_key((json_int_t)id + 1, off, sizeof(off));
	if (store_begin(tg->store) < 0 || store_kv_set(tg->store, "telegram.offset", off) < 0 ||
	    store_commit(tg->store) < 0) {
		transport_poll_store_failed(tg->t, "could not skip the update; will retry");
		return;
	}
	tg->offset = id + 1;
	tg->poll_big = 0;
	tg->skip_fail = 0;
	metrics_inc("faqbot_updates_lost_total", "transport=\"" T "\",reason=\"too_large\"");
	log_error("update_skipped", "transport=" T " update_id=%lld reason=%s", (long long)id,
		  log_q("a single update is larger than 16 MB; it cannot be read and is skipped"));
}

static void poll_done(void *arg, struct http_response *r)
{
	struct tg *tg = arg;
	if (r->truncated) {
		poll_oversized(tg, r, wall_ms());
		return;
	}
	int ok;
	long code;
	const char *desc;
	json_t *root = parse_reply(r, &ok, &code, &desc);
	json_t *res = json_object_get(root, "result");
	int64_t now = wall_ms();
	if (ok && json_is_array(res)) {
		size_t i, added = 0;
		json_t *u;
		json_int_t max = -1;
		int stored = store_begin(tg->store) == 0;
		json_array_foreach(res, i, u) {
			if (!stored)
				break;
			json_t *idj = json_object_get(u, "update_id");
			if (!json_is_integer(idj)) {
				log_warn("bad_update", "transport=" T " note=%s", log_q("update without update_id"));
				continue;
			}
			json_int_t id = json_integer_value(idj);
			char uid[32];
			chat_key(id, uid, sizeof(uid));
			char *payload = json_dumps(u, JSON_COMPACT);
			int rc = payload ? store_inbox_add(tg->store, T, uid, payload, now) : 0;
			free(payload);
			if (rc < 0)
				stored = 0;
			added += rc == 1;
			if (id > max)
				max = id; /* ids can restart lower: the batch decides, not the old offset */
		}
		char off[32];
		chat_key(max + 1, off, sizeof(off));
		if (stored && max >= 0 && store_kv_set(tg->store, "telegram.offset", off) < 0)
			stored = 0;
		/* the batch and its offset commit together, before anything else;
		 * the offset in memory (what the next getUpdates confirms to
		 * Telegram) moves only once they did.  Otherwise the batch is
		 * asked for again. */
		if (stored && store_commit(tg->store) < 0)
			stored = 0;
		if (!stored) {
			transport_poll_store_failed(tg->t, "the updates could not be stored; they will be fetched again");
			json_decref(root);
			return;
		}
		if (max >= 0)
			tg->offset = max + 1;
		tg->poll_big = 0;
		if (json_array_size(res) < (size_t)tg->poll_limit)
			tg->poll_limit = POLL_LIMIT; /* the backlog is read: full batches again */
		if (added)
			log_debug("polled", "transport=" T " updates=%zu", added);
		transport_poll_stored(tg->t, (double)r->elapsed_ms / 1000.0);
	} else if (code == 401) {
		token_refused(tg);
	} else if (code == 409 && strstr(desc, "webhook")) {
		if (tg->o.delete_webhook) {
			tg->step = ST_DELETE_WEBHOOK;
			transport_poll_over(tg->t);
			transport_restart(tg->t);
		} else
			fail(tg, "a webhook was set on this bot while faqbot was polling; remove it or set "
				 "telegram_delete_webhook = true");
	} else if (code == 409) {
		fail(tg, "another program is reading this bot's updates (409 terminated by other "
			 "getUpdates request); run only one faqbot per bot token");
	} else {
		long ra = code == 429 ? retry_after(root, r) : -1;
		transport_poll_failed(tg->t, code, NULL, desc, ra >= 0 ? http_clamp_wait_ms(ra, 1000) : -1);
	}
	json_decref(root);
}

/* The skeleton's poll hook: getUpdates from the stored offset. */
static int tg_poll(void *self)
{
	struct tg *tg = self;
	if (tg->offset < 0) {
		struct strbuf v = STRBUF_INIT;
		int rc = store_kv_get(tg->store, "telegram.offset", &v);
		tg->offset = rc == 1 ? strtoll(v.buf, NULL, 10) : 0;
		strbuf_release(&v);
		if (rc < 0) {
			tg->offset = -1;
			return -1;
		}
	}
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"offset\":%lld,\"limit\":%d,\"timeout\":%ld,"
		 "\"allowed_updates\":[\"message\",\"callback_query\",\"my_chat_member\"]}",
		 (long long)tg->offset, tg->poll_limit, tg->o.poll_timeout_s);
	size_t cap = tg->poll_limit == 1 && tg->poll_big ? HTTP_SINGLE_MAX_BODY : 0;
	return call_capped(tg, "getUpdates", body, tg->o.poll_timeout_s * 1000 + POLL_SLACK_MS, cap, poll_done,
			   tg);
}

/* ==== Sending ==== */

static struct bucket *chat_bucket(struct tg *tg, const char *chat, int64_t now)
{
	uint32_t idx;
	if (!strmap_get(tg->chat_bucket, chat, strlen(chat), &idx)) {
		if (tg->n_buckets > 50000) { /* forget idle chats now and then */
			strmap_free(tg->chat_bucket);
			tg->chat_bucket = strmap_new(1024);
			tg->n_buckets = 0;
		}
		idx = (uint32_t)tg->n_buckets;
		strmap_put(tg->chat_bucket, chat, strlen(chat), idx, NULL);
		xgrow(&tg->buckets, &tg->buckets_alloc, tg->n_buckets + 1, sizeof(struct bucket));
		tg->buckets[tg->n_buckets++] = (struct bucket){ 3, now };
	}
	return &tg->buckets[idx];
}

static void refill(struct bucket *b, int64_t now, double per_s, double burst)
{
	b->tokens += (double)(now - b->last) * per_s / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last = now;
}

/* Takes a send token for chat, or returns the ms to wait. */
static int64_t take_token(struct tg *tg, const char *chat, int64_t now)
{
	if (!tg->o.rate_limits)
		return 0;
	int group = chat[0] == '-';
	struct bucket *c = chat_bucket(tg, chat, now);
	refill(&tg->global, now, 25, 25);
	refill(c, now, group ? 20.0 / 60.0 : 1.0, 3);
	if (tg->global.tokens < 1)
		return (int64_t)((1 - tg->global.tokens) * 1000 / 25) + 1;
	if (c->tokens < 1)
		return (int64_t)((1 - c->tokens) * 1000 / (group ? 20.0 / 60.0 : 1.0)) + 1;
	tg->global.tokens -= 1;
	c->tokens -= 1;
	return 0;
}

/* The skeleton's sent hook: what a sendMessage answer means for its row
 * (see the delivery policy in telegram.h). */
static int tg_sent(void *self, struct outbox_row *row, const struct http_response *r, int txn)
{
	struct tg *tg = self;
	int ok;
	long code;
	const char *desc;
	json_t *root = parse_reply(r, &ok, &code, &desc);
	int64_t now = wall_ms();
	json_t *params = json_object_get(root, "parameters");
	if (ok) {
		json_t *mid = json_object_get(json_object_get(root, "result"), "message_id");
		char buf[32] = "";
		if (json_is_integer(mid))
			chat_key(json_integer_value(mid), buf, sizeof(buf));
		free(row->result);
		row->result = xstrdup(buf);
		row->state = OUT_SENT;
		if (row->ambiguous)
			log_warn("ambiguous_resend", "transport=" T " chat=%s trigger=%s part=%d note=%s",
				 row->chat, row->trigger, row->part,
				 log_q("delivered after an unknown outcome: the chat may see it twice"));
		/* a group's answer: what a cooldown pointer will reply to */
		if (txn && row->part == 0 && row->entry && row->chat[0] == '-' &&
		    service_answer_sent(transport_service(tg->t), row->chat, row->entry, buf) < 0)
			txn = 0;
		log_debug("sent", "transport=" T " chat=%s trigger=%s part=%d ms=%llu", row->chat,
			  row->trigger, row->part, (unsigned long long)r->elapsed_ms);
	} else if (!root && r->curl_code && !r->body_sent) {
		/* never reached the server: safe to send again */
		sender_retry_later(row, now, sender_backoff(row));
		log_warn("send_retry", "transport=" T " chat=%s error=%s", row->chat, log_q(desc));
	} else if (!root || code == 500 || code == 502 || code == 503 || code == 504) {
		/* the body went out and we do not know what happened */
		row->ambiguous++;
		sender_retry_later(row, now, sender_backoff(row));
		log_warn("ambiguous_resend", "transport=" T " chat=%s trigger=%s part=%d status=%ld error=%s",
			 row->chat, row->trigger, row->part, code, log_q(desc));
	} else if (code == 429) {
		long ra = retry_after(root, r);
		int64_t wait = ra >= 0 ? http_clamp_wait_ms(ra, 1000) : (int64_t)http_backoff_ms((unsigned)(row->attempts > 0 ? row->attempts - 1 : 0));
		if (txn && store_chat_park(tg->store, T, row->chat, now + wait) < 0)
			txn = 0;
		sender_retry_later(row, now, wait);
		log_warn("rate_limited", "transport=" T " chat=%s trigger=%s retry_after_s=%ld", row->chat,
			 log_q(row->trigger), ra);
	} else if (code == 400 && json_is_integer(json_object_get(params, "migrate_to_chat_id"))) {
		char to[32];
		chat_key(json_integer_value(json_object_get(params, "migrate_to_chat_id")), to, sizeof(to));
		if (txn && (store_chat_set_migrated(tg->store, T, row->chat, to) < 0 ||
			    store_outbox_move_chat(tg->store, T, row->chat, to, body_move_chat) < 0))
			txn = 0;
		log_info("chat_migrated", "transport=" T " chat=%s to=%s", row->chat, to);
		free(row->chat);
		row->chat = xstrdup(to);
		row->state = OUT_PENDING;
		row->next_at = now;
	} else if (code == 400 && strstr(desc, "can't parse entities") && !row->use_alt) {
		row->use_alt = 1;
		row->state = OUT_PENDING;
		row->next_at = now;
		log_warn("send_plain_text", "transport=" T " chat=%s error=%s", row->chat, log_q(desc));
	} else if (code == 401) {
		row->state = OUT_PENDING;
		row->attempts--;
		token_refused(tg);
	} else if (code == 403) {
		int n = txn ? store_outbox_drop_chat(tg->store, T, row->chat) : -1;
		if (txn && (n < 0 || store_chat_set_disabled(tg->store, T, row->chat, 1) < 0))
			txn = 0;
		row->state = OUT_DROPPED;
		log_warn("chat_forbidden", "transport=" T " chat=%s dropped=%d error=%s", row->chat, n,
			 log_q(desc));
	} else if (code >= 400 && code < 500) {
		row->state = OUT_FAILED;
		metrics_inc("faqbot_errors_total", "transport=\"" T "\",kind=\"send_failed\"");
		log_error("send_failed", "transport=" T " chat=%s trigger=%s part=%d status=%ld error=%s",
			  row->chat, row->trigger, row->part, code, log_q(desc));
	} else {
		sender_retry_later(row, now, sender_backoff(row));
		log_warn("send_retry", "transport=" T " chat=%s status=%ld error=%s", row->chat, code,
			 log_q(desc));
	}
	json_decref(root);
	return txn;
}

static int tg_send(void *self, struct send_ctx *x, http_done_fn done)
{
	struct tg *tg = self;
	const char *body = x->row.use_alt && x->row.alt_body ? x->row.alt_body : x->row.body;
	return call(tg, x->row.method, body, tg->o.send_timeout_s * 1000, done, x);
}

static int64_t tg_throttle(void *arg, const char *chat, int64_t now)
{
	return take_token(arg, chat, now);
}

static void tg_free(void *self)
{
	struct tg *tg = self;
	free(tg->token);
	free(tg->api_url);
	free(tg->username);
	free(tg->first_name);
	strmap_free(tg->chat_bucket);
	free(tg->buckets);
	free(tg);
}

void tg_feed_updates(struct transport *t, const char *body, size_t len)
{
	struct tg *tg = transport_self(t);
	if (!transport_running_now(t)) {
		transport_running(t);
		tg->bot_id = 1;
		free(tg->username);
		tg->username = xstrdup("faqtestbot");
	}
	transport_feed(poll_done, tg, body, len);
}

struct transport *tg_new(const struct tg_options *o, struct bot *bot, struct store *store,
			 struct http *http)
{
	struct tg *tg = xcalloc(1, sizeof(*tg));
	tg->o = *o;
	tg->token = xstrdup(o->token);
	tg->api_url = xstrdup(o->api_url);
	size_t n = strlen(tg->api_url);
	while (n && tg->api_url[n - 1] == '/')
		tg->api_url[--n] = '\0';
	tg->o.token = tg->token;
	tg->o.api_url = tg->api_url;
	tg->bot = bot;
	tg->store = store;
	tg->http = http;
	tg->offset = -1;
	tg->poll_limit = POLL_LIMIT;
	tg->started_at = wall_ms();
	tg->global = (struct bucket){ 25, tg->started_at };
	tg->chat_bucket = strmap_new(1024);
	static const struct transport_ops ops = { tg_start, tg_poll, tg_row, tg_queue, tg_send, tg_sent,
						  tg_throttle, tg_free };
	/* several chats at once, one send at a time per chat (the sender);
	 * Telegram has no idempotency key: a crash may duplicate each send
	 * in flight, so their number is the operator's choice */
	int in_flight = o->parallel_sends > 0 ? (int)o->parallel_sends : TG_PARALLEL_SENDS;
	struct transport_config c = { T, "poll", in_flight, 0, o->admin_chat,
				      { T, o->cooldown_s, o->record_unanswered, o->log_questions, o->flood_max,
					o->flood_window_s, o->flood_pause_s } };
	tg->t = transport_new(&c, &ops, tg, bot, store, http);
	log_add_secret(o->token);
	http_redact_segment("/bot"); /* the token is in every API path */
	return tg->t;
}

/* ==== From the configuration ==== */

int tg_configured(const struct config *c)
{
	return c->telegram_token != NULL;
}

int tg_config_check(const struct config *c, struct strbuf *errors)
{
	char why[256];
	if (c->telegram_token && http_url_allowed(c->telegram_api_url, why, sizeof(why)) < 0) {
		strbuf_addf(errors, "telegram_api_url: %s\n", why);
		return -1;
	}
	return 0;
}

struct transport *tg_from_config(const struct config *c, struct bot *bot, struct store *store,
				 struct http *http)
{
	struct tg_options to = { c->telegram_token, c->telegram_api_url,
				 c->telegram_group_mode == CONFIG_GROUP_ALL,
				 c->telegram_backlog == CONFIG_BACKLOG_SKIP, c->telegram_backlog_minutes,
				 c->telegram_cooldown, c->telegram_delete_webhook,
				 c->telegram_poll_timeout, c->telegram_send_timeout,
				 c->telegram_rate_limits, c->unanswered_retention_days > 0,
				 c->log_questions, c->admin_telegram_chat,
				 c->telegram_allowed_chats, c->flood_max, c->flood_window,
				 c->flood_pause, c->telegram_parallel_sends };
	return tg_new(&to, bot, store, http);
}
