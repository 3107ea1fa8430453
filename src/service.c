/*
 * service.c - the policy around bot_handle, once for every transport.
 * See service.h for the order of the steps and why each is here.
 */
#define _POSIX_C_SOURCE 200809L
#include "service.h"
#include "flood.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct service {
	struct service_options o;
	char *transport;
	struct bot *bot;
	struct store *store;
	struct flood *flood;
	const struct service_ops *ops;
	void *arg;
	struct feedback *fb;     /* borrowed, or NULL */
};

const char *service_kind_name(enum service_kind k)
{
	static const char *const names[SK_N] = { "answer", "choose", "fallback", "welcome", "help",
						 "list", "subscribe", "empty", "flood", "cooldown" };
	return (unsigned)k < SK_N ? names[k] : "other";
}

static enum service_kind kind_of(enum reply_kind k)
{
	switch (k) {
	case REPLY_ANSWER: return SK_ANSWER;
	case REPLY_CHOOSE: return SK_CHOOSE;
	case REPLY_FALLBACK: return SK_FALLBACK;
	case REPLY_WELCOME: return SK_WELCOME;
	case REPLY_LIST: return SK_LIST;
	case REPLY_SUBSCRIBE: return SK_SUBSCRIBE;
	case REPLY_EMPTY: return SK_EMPTY;
	case REPLY_HELP:
	case REPLY_NONE:
	default: return SK_HELP;
	}
}

struct service *service_new(struct bot *bot, struct store *store, const struct service_options *o,
			    const struct service_ops *ops, void *arg)
{
	struct service *sv = xcalloc(1, sizeof(*sv));
	sv->o = *o;
	sv->transport = xstrdup(o->transport);
	sv->o.transport = sv->transport;
	sv->bot = bot;
	sv->store = store;
	sv->flood = flood_new(o->flood_max, o->flood_window_s, o->flood_pause_s);
	sv->ops = ops;
	sv->arg = arg;
	return sv;
}

void service_free(struct service *sv)
{
	if (!sv)
		return;
	flood_free(sv->flood);
	free(sv->transport);
	free(sv);
}

/* Step 2: the flood limit.  Returns the kind the reply now has (SK_FLOOD
 * for the notice) or -1 when the bot stays silent. */
static int flood_step(struct service *sv, const struct service_msg *m, int64_t now, struct reply *r)
{
	char key[700];
	snprintf(key, sizeof(key), "%.340s:%.340s", m->in.chat, m->user);
	/* counted at the time it was sent: a backlog is not a flood; button
	 * presses count too (a burst of presses must not fill the chat's queue) */
	int v = (int)flood_check_once(sv->flood, key, m->trigger, m->sent_ms, now);
	if (!v)
		return (int)kind_of(r->kind);
	log_warn("flood", "transport=%s chat=%s user=%s trigger=%s verdict=%s", sv->transport,
		 log_q(m->in.chat), log_q(m->user), log_q(m->trigger),
		 v == FLOOD_NOTICE ? "notice" : "ignored");
	bot_flood_reply(sv->bot, v, m->in.prefix, r);
	return r->kind == REPLY_NONE ? -1 : SK_FLOOD;
}

/* Step 3: a group asking again for the answer it just got.  Returns 1 when
 * r became the pointer (*reply_to then points at the earlier answer, caller
 * frees), 0 when not, -1 when the store failed. */
static int cooldown_step(struct service *sv, const struct service_msg *m, int64_t now, struct reply *r,
			 char **reply_to)
{
	if (m->in.kind != CHAT_GROUP || r->kind != REPLY_ANSWER || sv->o.cooldown_s <= 0 || !r->entry_id ||
	    m->choice)
		return 0;
	int64_t at;
	struct strbuf mid = STRBUF_INIT;
	int got = store_recent_get(sv->store, sv->transport, m->in.chat, r->entry_id, &at, &mid);
	int rc = 0;
	if (got == 1 && now - at < sv->o.cooldown_s * 1000) {
		free(r->text);
		r->text = bot_text(sv->bot, "cooldown", m->in.prefix);
		free(r->markup);
		r->markup = NULL;
		if (mid.len)
			*reply_to = strbuf_detach(&mid, NULL);
		rc = 1;
	} else if (got < 0 || store_recent_set(sv->store, sv->transport, m->in.chat, r->entry_id, now, "") < 0) {
		rc = -1;
	}
	strbuf_release(&mid);
	return rc;
}

int service_handle(struct service *sv, const struct service_msg *m, int64_t now)
{
	struct reply r;
	if (m->choice)
		bot_choose(sv->bot, m->in.chat, m->choice, m->in.prefix, &r);
	else
		bot_handle(sv->bot, &m->in, &r);
	if (r.kind == REPLY_NONE) {
		reply_release(&r);
		return 0;
	}
	int kind = flood_step(sv, m, now, &r);
	if (kind < 0) {
		reply_release(&r);
		return 0;
	}
	char *pointer_to = NULL;
	int cd = kind == SK_FLOOD ? 0 : cooldown_step(sv, m, now, &r, &pointer_to);
	if (cd == 1) {
		kind = SK_COOLDOWN;
		log_info("cooldown", "transport=%s chat=%s entry=%s trigger=%s", sv->transport,
			 log_q(m->in.chat), log_q(r.entry_id), log_q(m->trigger));
	}
	int rc = cd < 0 ? -1 : sv->ops->queue(sv->arg, m, &r, pointer_to ? pointer_to : m->reply_to);
	free(pointer_to);
	if (rc == 0 && kind != SK_FLOOD && r.unanswered && sv->o.record_unanswered && m->question &&
	    store_unanswered_add(sv->store, sv->transport, m->in.chat, m->question, r.entry_id, r.confidence,
				 now) < 0)
		rc = -1;
	/* step 7: what an answer answered, and a pick from a list */
	if (rc == 0 && sv->fb && kind == SK_ANSWER &&
	    (feedback_answered(sv->fb, sv->transport, m->trigger, &r, m->in.text, m->in.len, now) < 0 ||
	     feedback_choice(sv->fb, sv->transport, m->in.chat, m->user, &r, now) < 0))
		rc = -1;
	if (rc < 0) {
		reply_release(&r);
		return -1;
	}
	char labels[128];
	snprintf(labels, sizeof(labels), "transport=\"%s\"", sv->transport);
	if (!m->choice)
		metrics_inc("faqbot_questions_total", labels);
	snprintf(labels, sizeof(labels), "transport=\"%s\",kind=\"%s\"", sv->transport,
		 service_kind_name((enum service_kind)kind));
	metrics_inc("faqbot_replies_total", labels);
	int show = sv->o.log_questions && m->question;
	log_info("reply", "transport=%s chat=%s trigger=%s kind=%s%s entry=%s confidence=%.3f%s%s",
		 sv->transport, log_q(m->in.chat), log_q(m->trigger),
		 service_kind_name((enum service_kind)kind), m->choice ? " button=1" : "",
		 r.entry_id && kind != SK_FLOOD ? log_q(r.entry_id) : "-", kind == SK_FLOOD ? 0.0 : r.confidence,
		 show ? " question=" : "", show ? log_q(m->question) : "");
	reply_release(&r);
	return 0;
}

void service_set_feedback(struct service *sv, struct feedback *fb)
{
	sv->fb = fb;
}

int service_vote(struct service *sv, const char *chat, const char *msg_id, const char *user, int value,
		 const char *reaction, int64_t now)
{
	if (!sv->fb)
		return STORE_VOTE_UNKNOWN;
	return feedback_vote(sv->fb, sv->transport, chat, msg_id, user, value, reaction, now);
}

int service_takes_votes(const struct service *sv)
{
	return feedback_records(sv->fb);
}

int service_unreact(struct service *sv, const char *reaction)
{
	return sv->fb ? feedback_unreact(sv->fb, sv->transport, reaction) : 0;
}

int service_answer_sent(struct service *sv, const char *chat, const char *entry, const char *msg_id)
{
	int64_t at;
	struct strbuf m = STRBUF_INIT;
	int rc = 0;
	int got = store_recent_get(sv->store, sv->transport, chat, entry, &at, &m);
	if (got < 0 || (got == 1 && !m.len && store_recent_set(sv->store, sv->transport, chat, entry, at, msg_id) < 0))
		rc = -1;
	strbuf_release(&m);
	return rc;
}
