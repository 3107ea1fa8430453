/*
 * bot.c - message -> reply.  See bot.h.
 *
 * The only state is a small per-chat memory of the last numbered list sent
 * (entry ids, so it survives a reload), bounded to BOT_MEMORY chats with
 * oldest-first eviction.  Texts default to French and can be overridden by
 * the FAQ's "messages" object; "{prefix}" in them becomes the transport's
 * command prefix.
 */
#include "bot.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BOT_MEMORY 1024   /* chats whose last list is remembered */
#define BOT_LIST_MAX 100  /* entries shown by /faq */

struct memo {
	char *chat;
	char **ids;
	size_t n;
};

struct bot {
	struct index *idx;
	struct bot_options opt;
	char *subscribe_url;
	struct memo memo[BOT_MEMORY];
	size_t memo_next;
};

static const struct {
	const char *key, *text;
} default_text[] = {
	{ "welcome", "Bonjour ! Je réponds aux questions fréquentes. Posez votre question en une "
		     "phrase, ou tapez {prefix}faq pour voir la liste des questions." },
	{ "help", "Posez votre question en une phrase, je cherche la réponse dans la FAQ.\n"
		  "{prefix}faq : la liste des questions\n"
		  "{prefix}souscrire : le lien pour souscrire\n"
		  "{prefix}aide : cette aide" },
	{ "faq_intro", "Questions fréquentes (répondez par un numéro) :" },
	{ "subscribe", "Pour souscrire, c'est ici :" },
	{ "suggest_intro", "Votre question peut correspondre à plusieurs sujets. Lequel vous "
			   "intéresse ? (répondez par un numéro)" },
	{ "fallback_suggest_intro", "Peut-être cherchiez-vous :" },
	{ "empty_question", "Je n'ai pas trouvé de question dans votre message. Posez-la en une "
			    "phrase, ou tapez {prefix}faq pour voir la liste." },
	{ "choice_unknown", "Ce choix n'est plus disponible. Voici les questions actuelles :" },
	{ "link_label", "Souscrire à l'étude" },
	{ "flood", "Vous posez beaucoup de questions d'un coup : je fais une pause de quelques "
		   "minutes avant de vous répondre à nouveau." },
	{ "hello", "Bonjour ! Je réponds aux questions fréquentes. Mentionnez-moi avec votre "
		   "question, ou tapez {prefix}aide." },
	{ "encrypted_room", "Ce salon est chiffré de bout en bout : je ne peux pas lire les messages "
			    "qu'on y écrit. Posez-moi vos questions en message direct non chiffré ou "
			    "dans un salon non chiffré." },
	{ "cooldown", "J'ai répondu à cette question il y a quelques minutes : voyez ma réponse "
		      "juste au-dessus." },
};

static const char *msg_text(const struct bot *b, const char *key)
{
	const char *o = faq_message(index_faq(b->idx), key);
	if (o)
		return o;
	for (size_t i = 0; i < ARRAY_LEN(default_text); i++)
		if (!strcmp(default_text[i].key, key))
			return default_text[i].text;
	return "";
}

/* The text for key with "{prefix}" replaced (caller frees). */
static char *render(const struct bot *b, const char *key, char prefix)
{
	const char *s = msg_text(b, key);
	struct strbuf sb = STRBUF_INIT;
	for (;;) {
		const char *p = strstr(s, "{prefix}");
		if (!p) {
			strbuf_addstr(&sb, s);
			break;
		}
		strbuf_add(&sb, s, (size_t)(p - s));
		strbuf_addch(&sb, prefix ? prefix : '/');
		s = p + 8;
	}
	return strbuf_detach(&sb, NULL);
}

struct bot *bot_new(struct index *idx, const struct bot_options *opt)
{
	struct bot *b = xcalloc(1, sizeof(*b));
	b->idx = idx;
	b->opt.threshold = -1;
	if (opt) {
		b->opt = *opt;
		if (opt->subscribe_url)
			b->subscribe_url = xstrdup(opt->subscribe_url);
	}
	b->opt.subscribe_url = NULL;
	return b;
}

static void memo_clear(struct memo *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->ids[i]);
	free(m->ids);
	free(m->chat);
	memset(m, 0, sizeof(*m));
}

void bot_free(struct bot *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < BOT_MEMORY; i++)
		memo_clear(&b->memo[i]);
	index_free(b->idx);
	free(b->subscribe_url);
	free(b);
}

struct index *bot_swap_index(struct bot *b, struct index *idx)
{
	struct index *old = b->idx;
	b->idx = idx;
	return old;
}

struct index *bot_index(struct bot *b)
{
	return b->idx;
}

static const char *sub_url(const struct bot *b)
{
	return b->subscribe_url ? b->subscribe_url : index_faq(b->idx)->fallback_url;
}

/* ==== Per-chat memory of the last numbered list ==== */

static struct memo *memo_find(struct bot *b, const char *chat)
{
	if (!chat)
		return NULL;
	for (size_t i = 0; i < BOT_MEMORY; i++)
		if (b->memo[i].chat && !strcmp(b->memo[i].chat, chat))
			return &b->memo[i];
	return NULL;
}

static void memo_store(struct bot *b, const char *chat, const struct reply *r)
{
	if (!chat)
		return;
	struct memo *m = memo_find(b, chat);
	if (!m) {
		m = &b->memo[b->memo_next];
		b->memo_next = (b->memo_next + 1) % BOT_MEMORY;
	}
	memo_clear(m);
	if (!r->n_choices)
		return;
	m->chat = xstrdup(chat);
	m->ids = xcalloc(r->n_choices, sizeof(char *));
	for (size_t i = 0; i < r->n_choices; i++)
		m->ids[i] = xstrdup(r->choices[i].id);
	m->n = r->n_choices;
}

/* ==== Replies ==== */

static void reply_init(struct reply *r, enum reply_kind kind)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
}

void reply_release(struct reply *r)
{
	free(r->text);
	free(r->link_url);
	free(r->link_label);
	free(r->choices_intro);
	for (size_t i = 0; i < r->n_choices; i++) {
		free(r->choices[i].id);
		free(r->choices[i].label);
	}
	free(r->choices);
	free(r->entry_id);
	memset(r, 0, sizeof(*r));
}

static void add_choice(struct reply *r, const struct faq_entry *e)
{
	r->choices = xrealloc(r->choices, (r->n_choices + 1) * sizeof(*r->choices));
	r->choices[r->n_choices].id = xstrdup(e->id);
	r->choices[r->n_choices].label = xstrdup(e->questions[0]);
	r->n_choices++;
}

static void set_link(const struct bot *b, struct reply *r)
{
	r->link_url = xstrdup(sub_url(b));
	r->link_label = xstrdup(msg_text(b, "link_label"));
}

static void answer_entry(struct bot *b, long e, double conf, struct reply *r)
{
	const struct faq_entry *en = &index_faq(b->idx)->entries[e];
	reply_init(r, REPLY_ANSWER);
	r->text = xstrdup(en->answer);
	r->entry_id = xstrdup(en->id);
	r->confidence = conf;
}

static void list_entries(struct bot *b, const char *intro_key, char prefix, struct reply *r)
{
	const struct faq *f = index_faq(b->idx);
	reply_init(r, REPLY_LIST);
	r->text = render(b, intro_key, prefix);
	for (size_t i = 0; i < f->n_entries && i < BOT_LIST_MAX; i++)
		add_choice(r, &f->entries[i]);
}

static void answer_question(struct bot *b, const struct inbound_msg *m, struct reply *r)
{
	const struct faq *f = index_faq(b->idx);
	struct match mt;
	match_question(b->idx, m->text, m->len, b->opt.threshold, &mt);
	if (mt.kind == MATCH_ANSWER) {
		answer_entry(b, mt.entry, mt.confidence, r);
		r->unanswered = mt.confidence < mt.threshold + BOT_LOW_CONFIDENCE;
		return;
	}
	if (mt.kind == MATCH_AMBIGUOUS) {
		reply_init(r, REPLY_CHOOSE);
		r->text = render(b, "suggest_intro", m->prefix);
	} else if (!mt.ranked.n_terms) {
		reply_init(r, REPLY_EMPTY);
		r->text = render(b, "empty_question", m->prefix);
		return;
	} else {
		reply_init(r, REPLY_FALLBACK);
		r->text = xstrdup(f->fallback_text);
		set_link(b, r);
		if (mt.n_sugg)
			r->choices_intro = render(b, "fallback_suggest_intro", m->prefix);
	}
	for (size_t i = 0; i < mt.n_sugg; i++)
		add_choice(r, &f->entries[mt.sugg[i]]);
	if (mt.entry >= 0)
		r->entry_id = xstrdup(f->entries[mt.entry].id);
	r->confidence = mt.confidence;
	r->unanswered = 1;
}

/* Recognises "<prefix>word" at the start; returns the command word length
 * and sets *cmd, or 0. */
static size_t command_word(const struct inbound_msg *m, const char **cmd)
{
	char p = m->prefix ? m->prefix : '/';
	if (!m->len || m->text[0] != p)
		return 0;
	size_t i = 1;
	while (i < m->len && m->text[i] != ' ' && m->text[i] != '\n' && m->text[i] != '\t' &&
	       m->text[i] != '@')
		i++;
	*cmd = m->text + 1;
	return i - 1;
}

static int is_cmd(const char *cmd, size_t n, const char *name)
{
	if (strlen(name) != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = cmd[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != name[i])
			return 0;
	}
	return 1;
}

/* Parses a bare "2" or " 2. " answering a numbered list; 0 when not one. */
static size_t bare_number(const char *s, size_t len)
{
	size_t i = 0, v = 0, digits = 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
		v = v * 10 + (size_t)(s[i++] - '0');
		digits++;
	}
	if (!digits)
		return 0;
	while (i < len && (s[i] == ' ' || s[i] == '.' || s[i] == ')' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i == len ? v : 0;
}

enum reply_kind bot_handle(struct bot *b, const struct inbound_msg *m, struct reply *r)
{
	reply_init(r, REPLY_NONE);
	if (m->kind == CHAT_GROUP && !m->addressed)
		return REPLY_NONE;
	const char *cmd;
	size_t n = command_word(m, &cmd);
	if (n) {
		if (is_cmd(cmd, n, "start")) {
			reply_init(r, REPLY_WELCOME);
			r->text = render(b, "welcome", m->prefix);
		} else if (is_cmd(cmd, n, "faq") || is_cmd(cmd, n, "questions")) {
			list_entries(b, "faq_intro", m->prefix, r);
		} else if (is_cmd(cmd, n, "souscrire") || is_cmd(cmd, n, "subscribe")) {
			reply_init(r, REPLY_SUBSCRIBE);
			r->text = render(b, "subscribe", m->prefix);
			set_link(b, r);
		} else {
			reply_init(r, REPLY_HELP); /* aide, help, and any unknown command */
			r->text = render(b, "help", m->prefix);
		}
	} else {
		size_t num = bare_number(m->text, m->len);
		struct memo *mem = num ? memo_find(b, m->chat) : NULL;
		if (mem && num >= 1 && num <= mem->n) {
			char *id = xstrdup(mem->ids[num - 1]);
			bot_choose(b, m->chat, id, m->prefix, r);
			free(id);
			return r->kind;
		}
		answer_question(b, m, r);
	}
	memo_store(b, m->chat, r);
	return r->kind;
}

enum reply_kind bot_choose(struct bot *b, const char *chat, const char *entry_id, char prefix,
			   struct reply *r)
{
	long e = index_find(b->idx, entry_id);
	if (e < 0) {
		list_entries(b, "choice_unknown", prefix, r);
	} else {
		answer_entry(b, e, 1.0, r);
	}
	memo_store(b, chat, r);
	return r->kind;
}

void bot_flood_reply(struct bot *b, int verdict, char prefix, struct reply *r)
{
	if (verdict == 0)
		return;
	reply_release(r);
	if (verdict == 1) {
		r->kind = REPLY_HELP;
		r->text = render(b, "flood", prefix);
	}
}

int bot_listed(const char *list, const char *item, int server_ok)
{
	if (!list || !*list)
		return 1;
	const char *server = server_ok ? strchr(item, ':') : NULL;
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if (n && ((strlen(item) == n && !strncmp(item, p, n)) ||
			  (server && strlen(server + 1) == n && !strncmp(server + 1, p, n))))
			return 1;
		p += n;
	}
	return 0;
}

int bot_has_choices(struct bot *b, const char *chat)
{
	struct memo *m = memo_find(b, chat);
	return m && m->n > 0;
}

char *bot_text(struct bot *b, const char *key, char prefix)
{
	return render(b, key, prefix);
}

void reply_format_plain(const struct reply *r, struct strbuf *out)
{
	if (r->kind == REPLY_NONE)
		return;
	strbuf_addstr(out, r->text);
	if (r->n_choices && r->choices_intro)
		strbuf_addf(out, "\n%s", r->choices_intro);
	for (size_t i = 0; i < r->n_choices; i++)
		strbuf_addf(out, "\n  %zu. %s", i + 1, r->choices[i].label);
	if (r->link_url)
		strbuf_addf(out, "\n%s : %s", r->link_label ? r->link_label : "", r->link_url);
	strbuf_addch(out, '\n');
}
