/*
 * feedback.c - votes on answers, choices after a list, their summary and
 * live learning.  See feedback.h.
 *
 * Learning keeps the editor's index aside (fb->base) while an index with
 * learned phrasings is in the bot; fb->installed is the index this module
 * last saw in the bot, so a reload that swapped in a new FAQ behind its
 * back (loop_reload) is noticed: the bot's index is then the editor's.
 */
#include "feedback.h"
#include "faqindex.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "strmap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct learned {
	char *entry, *question;
};

struct feedback {
	struct store *st;
	struct bot *bot;
	struct feedback_options o;
	struct index *base;       /* the editor's index, while a learned one is in service */
	struct index *installed;  /* the bot's index as this module last saw it */
	struct learned *learned;  /* sorted by entry, then question */
	size_t n_learned;
};

struct feedback *feedback_new(struct store *st, struct bot *bot, const struct feedback_options *o)
{
	struct feedback *fb = xcalloc(1, sizeof(*fb));
	fb->st = st;
	fb->bot = bot;
	fb->o = *o;
	if (fb->o.learn_min_users == 1)
		fb->o.learn_min_users = 2; /* one user never teaches alone (config refuses 1) */
	return fb;
}

static void learned_clear(struct feedback *fb)
{
	for (size_t i = 0; i < fb->n_learned; i++) {
		free(fb->learned[i].entry);
		free(fb->learned[i].question);
	}
	free(fb->learned);
	fb->learned = NULL;
	fb->n_learned = 0;
}

void feedback_free(struct feedback *fb)
{
	if (!fb)
		return;
	learned_clear(fb);
	index_free(fb->base);
	free(fb);
}

int feedback_records(const struct feedback *fb)
{
	return fb && fb->o.record;
}

size_t feedback_learned_count(const struct feedback *fb)
{
	return fb->n_learned;
}

static void count(const char *transport, const char *kind)
{
	char labels[128];
	snprintf(labels, sizeof(labels), "transport=\"%s\",kind=\"%s\"", transport, kind);
	metrics_inc("faqbot_feedback_total", labels);
}

/* A copy of s cut to at most max bytes, at a character boundary. */
static char *cut(const char *s, size_t len, size_t max)
{
	if (len > max) {
		len = max;
		while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	return xstrndup(s, len);
}

int feedback_answered(struct feedback *fb, const char *transport, const char *trigger,
		      const struct reply *r, const char *question, size_t len, int64_t now)
{
	if (!fb || !fb->o.record || r->kind != REPLY_ANSWER || !r->entry_id)
		return 0;
	const char *q = r->chosen_from ? r->chosen_from : question;
	size_t n = r->chosen_from ? strlen(r->chosen_from) : len;
	if (!q)
		return 0;
	char *text = cut(q, n, FEEDBACK_MAX_QUESTION);
	int rc = store_answered_add(fb->st, transport, trigger, r->entry_id, text, now);
	free(text);
	return rc;
}

int feedback_unreact(struct feedback *fb, const char *transport, const char *reaction)
{
	if (!fb || !fb->o.record || !reaction)
		return 0;
	int rc = store_vote_unreact(fb->st, transport, reaction);
	if (rc == 1)
		count(transport, "withdrawn");
	return rc;
}

int feedback_vote(struct feedback *fb, const char *transport, const char *chat, const char *message_id,
		  const char *user, int value, const char *reaction, int64_t now)
{
	if (!fb || !fb->o.record)
		return STORE_VOTE_UNKNOWN;
	int rc = store_vote_set(fb->st, transport, chat, message_id, user, value, reaction, now);
	if (rc == STORE_VOTE_UNKNOWN)
		count(transport, "ignored");
	else if (rc == STORE_VOTE_CHANGED)
		count(transport, value > 0 ? "up" : value < 0 ? "down" : "withdrawn");
	return rc;
}

static int learn(struct feedback *fb, int64_t now);

int feedback_choice(struct feedback *fb, const char *transport, const char *chat, const char *user,
		    const struct reply *r, int64_t now)
{
	if (!fb || !fb->o.record || r->kind != REPLY_ANSWER || !r->chosen_from || !r->entry_id)
		return 0;
	if (strlen(r->chosen_from) > FEEDBACK_MAX_QUESTION)
		return 0; /* a text that long is no phrasing */
	int rc = store_choice_add(fb->st, transport, chat, user, r->chosen_from, r->entry_id, now);
	if (rc < 0)
		return -1;
	count(transport, "choice");
	if (rc == 1 && fb->o.learn_min_users >= 2 && learn(fb, now) < 0)
		log_warn("learn_failed", "note=%s", log_q("the phrasings learned stay as they were"));
	return 1;
}

int feedback_faq_loaded(struct feedback *fb, int64_t now)
{
	if (!fb || !fb->o.record || fb->o.learn_min_users < 2)
		return 0;
	return learn(fb, now);
}

int feedback_vote_value(const char *key)
{
	static const char up[] = "\xf0\x9f\x91\x8d", down[] = "\xf0\x9f\x91\x8e";
	if (!key)
		return 0;
	if (!strcmp(key, "+1"))
		return 1;
	if (!strcmp(key, "-1"))
		return -1;
	int v = !strncmp(key, up, 4) ? 1 : !strncmp(key, down, 4) ? -1 : 0;
	if (!v)
		return 0;
	const unsigned char *p = (const unsigned char *)key + 4;
	while (*p) {
		if (p[0] == 0xef && p[1] == 0xb8 && p[2] == 0x8f)
			p += 3; /* U+FE0F, emoji presentation */
		else if (p[0] == 0xf0 && p[1] == 0x9f && p[2] == 0x8f && p[3] >= 0xbb && p[3] <= 0xbf)
			p += 4; /* U+1F3FB..1F3FF, skin tones */
		else
			return 0;
	}
	return v;
}

/* ==== Summary ==== */

struct sum {
	struct index *idx;
	struct strmap *groups;   /* entry US terms -> phrasing */
	struct strmap *seen;     /* distinct users per group, 👎 questions per entry */
	struct strmap *entries;  /* entry -> votes */
	struct feedback_summary *out;
	size_t alloc_p, alloc_v;
	struct strbuf key, terms;
};

static void group_key(struct sum *c, const char *entry, const char *question)
{
	strbuf_reset(&c->terms);
	index_terms(c->idx, question, strlen(question), &c->terms);
	if (!c->terms.len)
		strbuf_addch(&c->terms, '-');
	strbuf_reset(&c->key);
	strbuf_addf(&c->key, "%s\x1f%s", entry, c->terms.buf);
}

static void on_choice(void *arg, const char *entry, const char *question, const char *user, int64_t at)
{
	(void)at;
	struct sum *c = arg;
	struct feedback_summary *o = c->out;
	group_key(c, entry, question);
	int added;
	uint32_t g = strmap_put(c->groups, c->key.buf, c->key.len, (uint32_t)o->n_phrasings, &added);
	if (added) {
		xgrow(&o->phrasings, &c->alloc_p, o->n_phrasings + 1, sizeof(*o->phrasings));
		struct feedback_phrasing *p = &o->phrasings[o->n_phrasings++];
		memset(p, 0, sizeof(*p));
		p->entry = xstrdup(entry);
		p->question = xstrdup(question);
		p->terms = xstrdup(c->terms.buf);
	}
	o->phrasings[g].choices++;
	strbuf_reset(&c->key);
	strbuf_addf(&c->key, "u\x1f%u\x1f%s", g, user);
	strmap_put(c->seen, c->key.buf, c->key.len, 0, &added);
	o->phrasings[g].users += added != 0;
}

static void on_vote(void *arg, const char *entry, const char *question, const char *user, int value,
		    int64_t at)
{
	(void)user;
	(void)at;
	struct sum *c = arg;
	struct feedback_summary *o = c->out;
	int added;
	uint32_t e = strmap_put(c->entries, entry, strlen(entry), (uint32_t)o->n_votes, &added);
	if (added) {
		xgrow(&o->votes, &c->alloc_v, o->n_votes + 1, sizeof(*o->votes));
		struct feedback_votes *v = &o->votes[o->n_votes++];
		memset(v, 0, sizeof(*v));
		v->entry = xstrdup(entry);
	}
	struct feedback_votes *v = &o->votes[e];
	if (value > 0)
		v->up++;
	else
		v->down++;
	if (value < 0 && v->n_down_questions < FEEDBACK_DOWN_QUESTIONS) {
		strbuf_reset(&c->key);
		strbuf_addf(&c->key, "d\x1f%s\x1f%s", entry, question);
		strmap_put(c->seen, c->key.buf, c->key.len, 0, &added);
		if (added) {
			v->down_questions = xrealloc(v->down_questions,
						     (v->n_down_questions + 1) * sizeof(char *));
			v->down_questions[v->n_down_questions++] = xstrdup(question);
		}
	}
	group_key(c, entry, question);
	uint32_t g;
	if (strmap_get(c->groups, c->key.buf, c->key.len, &g))
		o->phrasings[g].votes += value;
}

static int by_users(const void *a, const void *b)
{
	const struct feedback_phrasing *x = a, *y = b;
	if (x->users != y->users)
		return x->users < y->users ? 1 : -1;
	if (x->choices != y->choices)
		return x->choices < y->choices ? 1 : -1;
	int c = strcmp(x->entry, y->entry);
	return c ? c : strcmp(x->terms, y->terms);
}

static int by_down(const void *a, const void *b)
{
	const struct feedback_votes *x = a, *y = b;
	if (x->down != y->down)
		return x->down < y->down ? 1 : -1;
	if (x->up != y->up)
		return x->up < y->up ? -1 : 1;
	return strcmp(x->entry, y->entry);
}

int feedback_summarize(struct store *st, struct index *idx, int64_t since, struct feedback_summary *out)
{
	memset(out, 0, sizeof(*out));
	struct sum c = { idx, strmap_new(64), strmap_new(256), strmap_new(64), out, 0, 0, STRBUF_INIT,
			 STRBUF_INIT };
	int rc = store_choices_each(st, since, on_choice, &c);
	if (rc == 0)
		rc = store_votes_each(st, since, on_vote, &c);
	strmap_free(c.groups);
	strmap_free(c.seen);
	strmap_free(c.entries);
	strbuf_release(&c.key);
	strbuf_release(&c.terms);
	if (rc < 0) {
		feedback_summary_release(out);
		return -1;
	}
	if (out->n_phrasings)
		qsort(out->phrasings, out->n_phrasings, sizeof(*out->phrasings), by_users);
	if (out->n_votes)
		qsort(out->votes, out->n_votes, sizeof(*out->votes), by_down);
	return 0;
}

void feedback_summary_release(struct feedback_summary *s)
{
	for (size_t i = 0; i < s->n_phrasings; i++) {
		free(s->phrasings[i].entry);
		free(s->phrasings[i].question);
		free(s->phrasings[i].terms);
	}
	free(s->phrasings);
	for (size_t i = 0; i < s->n_votes; i++) {
		free(s->votes[i].entry);
		for (size_t k = 0; k < s->votes[i].n_down_questions; k++)
			free(s->votes[i].down_questions[k]);
		free(s->votes[i].down_questions);
	}
	free(s->votes);
	memset(s, 0, sizeof(*s));
}

/* ==== Live learning ==== */

static int by_entry_question(const void *a, const void *b)
{
	const struct learned *x = a, *y = b;
	int c = strcmp(x->entry, y->entry);
	return c ? c : strcmp(x->question, y->question);
}

/* 1 when the editor's FAQ already answers q confidently (to any entry). */
static int answered_confidently(struct index *base, const char *q)
{
	struct match m;
	match_question(base, q, strlen(q), -1, &m);
	return m.kind == MATCH_ANSWER && m.confidence >= m.threshold + BOT_LOW_CONFIDENCE;
}

/* The phrasings confirmed now, sorted; returns how many, or -1. */
static long confirmed(struct feedback *fb, struct index *base, int64_t now, struct learned **out)
{
	*out = NULL;
	struct feedback_summary s;
	if (feedback_summarize(fb->st, base, now - fb->o.window_ms, &s) < 0)
		return -1;
	size_t n = 0;
	struct strmap *per_entry = strmap_new(16);
	uint32_t *counts = xcalloc(s.n_phrasings + 1, sizeof(*counts));
	for (size_t i = 0; i < s.n_phrasings; i++) {
		const struct feedback_phrasing *p = &s.phrasings[i];
		if ((long)p->users < fb->o.learn_min_users || p->votes < 0 || !strcmp(p->terms, "-") ||
		    index_find(base, p->entry) < 0 || answered_confidently(base, p->question))
			continue;
		uint32_t e = strmap_put(per_entry, p->entry, strlen(p->entry), (uint32_t)i, NULL);
		if (counts[e] >= FEEDBACK_LEARN_MAX_PER_ENTRY)
			continue;
		counts[e]++;
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n].entry = xstrdup(p->entry);
		(*out)[n].question = xstrdup(p->question);
		n++;
	}
	free(counts);
	strmap_free(per_entry);
	feedback_summary_release(&s);
	if (n)
		qsort(*out, n, sizeof(**out), by_entry_question);
	return (long)n;
}

static int same_learned(const struct feedback *fb, const struct learned *l, size_t n)
{
	if (n != fb->n_learned)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (by_entry_question(&l[i], &fb->learned[i]))
			return 0;
	return 1;
}

/* The editor's FAQ plus the learned phrasings, indexed; NULL on failure. */
static struct index *build(struct index *base, const struct learned *l, size_t n)
{
	struct faq *f = faq_copy(index_faq(base));
	for (size_t i = 0; i < n; i++) {
		long e = faq_find(f, l[i].entry);
		if (e >= 0)
			faq_entry_add_question(&f->entries[e], l[i].question);
	}
	struct faq_diags d;
	faq_diags_init(&d);
	struct index *idx = faqindex_build(f, "learned", &d); /* cached when the daemon runs */
	faq_diags_release(&d);
	return idx;
}

static int learn(struct feedback *fb, int64_t now)
{
	struct index *cur = bot_index(fb->bot);
	if (cur != fb->installed) {
		/* a new editor's FAQ in the bot (start, reload): the old one goes */
		index_free(fb->base);
		fb->base = NULL;
		fb->installed = cur;
		learned_clear(fb);
	}
	struct index *base = fb->base ? fb->base : cur;
	struct learned *l;
	long n = confirmed(fb, base, now, &l);
	if (n < 0)
		return -1;
	if (same_learned(fb, l, (size_t)n)) {
		for (long i = 0; i < n; i++) {
			free(l[i].entry);
			free(l[i].question);
		}
		free(l);
		return (int)n;
	}
	if (n == 0) {
		/* nothing learned any more: the editor's index goes back in */
		index_free(bot_swap_index(fb->bot, fb->base));
		fb->installed = fb->base;
		fb->base = NULL;
	} else {
		struct index *idx = build(base, l, (size_t)n);
		if (!idx) {
			for (long i = 0; i < n; i++) {
				free(l[i].entry);
				free(l[i].question);
			}
			free(l);
			return -1;
		}
		struct index *old = bot_swap_index(fb->bot, idx);
		if (!fb->base)
			fb->base = old;
		else
			index_free(old);
		fb->installed = idx;
	}
	learned_clear(fb);
	fb->learned = l;
	fb->n_learned = (size_t)n;
	log_info("learned", "phrasings=%ld note=%s", n,
		 log_q("questions confirmed by different users answer their entry directly"));
	return (int)n;
}
