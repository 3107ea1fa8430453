/*
 * bot.c - message -> reply.  See bot.h.
 *
 * The only state is a small per-chat memory of the last numbered list sent
 * (entry ids, so it survives a reload), bounded to BOT_MEMORY chats with
 * oldest-first eviction.  Texts come in French and English, chosen by the
 * FAQ's language, and can be overridden by the FAQ's "messages" object;
 * "{prefix}" in them becomes the transport's command prefix.  Answers and
 * the fallback text are markup (markup.h): the reply keeps the source and
 * a plain rendering, and reply_render formats it for each network.
 */
#include "bot.h"
#include "markup.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BOT_MEMORY 1024   /* chats whose last list is remembered */
#define BOT_LIST_MAX 100  /* entries shown by /faq */

struct memo {
	char *chat;
	char **ids;
	size_t n;
	char *question;  /* the question the list answered, or NULL (the /faq list) */
};

#define BOT_MEMO_QUESTION_MAX 500 /* bytes of a question remembered for its choice */

struct bot {
	struct index *idx;
	struct bot_options opt;
	char *subscribe_url;
	struct memo memo[BOT_MEMORY];
	size_t memo_next;
};

/* Built-in texts in French and English (the FAQ's "messages" override
 * them); "{prefix}" becomes the transport's command prefix. */
static const struct {
	const char *key, *fr, *en;
} default_text[] = {
	{ "welcome",
	  "Bonjour ! Je réponds aux questions fréquentes. Posez votre question en une "
	  "phrase, ou tapez {prefix}faq pour voir la liste des questions.",
	  "Hello! I answer frequently asked questions. Ask your question in one sentence, "
	  "or type {prefix}faq to see the list of questions." },
	{ "help",
	  "Posez votre question en une phrase, je cherche la réponse dans la FAQ.\n"
	  "{prefix}faq : la liste des questions\n"
	  "{prefix}souscrire : le lien pour souscrire\n"
	  "{prefix}aide : cette aide",
	  "Ask your question in one sentence and I will look for the answer in the FAQ.\n"
	  "{prefix}faq: the list of questions\n"
	  "{prefix}subscribe: the link to subscribe\n"
	  "{prefix}help: this help" },
	{ "faq_intro", "Questions fréquentes (répondez par un numéro) :",
	  "Frequently asked questions (reply with a number):" },
	{ "subscribe", "Pour souscrire, c'est ici :", "To subscribe, it is here:" },
	{ "suggest_intro",
	  "Votre question peut correspondre à plusieurs sujets. Lequel vous intéresse ? "
	  "(répondez par un numéro)",
	  "Your question may fit several topics. Which one do you mean? (reply with a number)" },
	{ "fallback_suggest_intro", "Peut-être cherchiez-vous (répondez par un numéro) :",
	  "Perhaps you were looking for (reply with a number):" },
	{ "empty_question",
	  "Je n'ai pas trouvé de question dans votre message. Posez-la en une phrase, ou tapez "
	  "{prefix}faq pour voir la liste.",
	  "I found no question in your message. Ask it in one sentence, or type {prefix}faq "
	  "to see the list." },
	{ "choice_unknown", "Ce choix n'est plus disponible. Voici les questions actuelles :",
	  "This choice is no longer available. Here are the current questions:" },
	{ "link_label", "En savoir plus", "Learn more" },
	{ "flood",
	  "Vous posez beaucoup de questions d'un coup : je fais une pause de quelques minutes "
	  "avant de vous répondre à nouveau.",
	  "You are asking many questions at once: I am pausing for a few minutes before "
	  "answering you again." },
	{ "hello",
	  "Bonjour ! Je réponds aux questions fréquentes. Mentionnez-moi avec votre question, "
	  "ou tapez {prefix}aide.",
	  "Hello! I answer frequently asked questions. Mention me with your question, or type "
	  "{prefix}help." },
	{ "encrypted_room",
	  "Ce salon est chiffré de bout en bout : je ne peux pas lire les messages qu'on y "
	  "écrit. Posez-moi vos questions en message direct non chiffré ou dans un salon non "
	  "chiffré.",
	  "This room is end-to-end encrypted: I cannot read the messages written in it. Ask me "
	  "your questions in an unencrypted direct message or in an unencrypted room." },
	{ "undecryptable",
	  "Certains messages chiffrés de ce salon n'ont pas pu être déchiffrés (leur clé ne m'est "
	  "pas parvenue) : je n'ai pas pu y répondre. Reposez votre question si elle est restée "
	  "sans réponse.",
	  "Some encrypted messages in this room could not be decrypted (their key never reached "
	  "me), so I could not answer them. Ask again if your question got no answer." },
	{ "faq_refused",
	  "La FAQ modifiée contient des erreurs ; l'ancienne version reste en service.",
	  "The edited FAQ has errors; the previous version stays in service." },
	{ "cooldown",
	  "J'ai répondu à cette question il y a quelques minutes : voyez ma réponse juste "
	  "au-dessus.",
	  "I answered this question a few minutes ago: see my answer just above." },
};

/* ==== Commands, defined once with their name in each language ==== */

enum cmd { CMD_START, CMD_HELP, CMD_FAQ, CMD_SUBSCRIBE };

static const struct {
	const char *fr, *en; /* names; an alias has its own row */
	enum cmd cmd;
} command_names[] = {
	{ "aide", "help", CMD_HELP },
	{ "faq", "faq", CMD_FAQ },
	{ "souscrire", "subscribe", CMD_SUBSCRIBE },
	{ "start", "start", CMD_START },
	{ "questions", "questions", CMD_FAQ },
};

static const struct bot_command commands_fr[] = {
	{ "aide", "Comment poser une question" },
	{ "faq", "Les questions fréquentes" },
	{ "souscrire", "Le lien pour souscrire" },
	{ "help", "Aide" },
};

static const struct bot_command commands_en[] = {
	{ "help", "How to ask a question" },
	{ "faq", "Frequently asked questions" },
	{ "subscribe", "The link to subscribe" },
};

enum bot_language bot_language_of(const char *l)
{
	static const char *const fr[] = { "french", "fr", "fre", "fra", "français", "francais" };
	for (size_t i = 0; l && i < ARRAY_LEN(fr); i++)
		if (!strcmp(l, fr[i]))
			return BOT_LANG_FR;
	return BOT_LANG_EN;
}

static enum bot_language lang(const struct bot *b)
{
	return bot_language_of(index_faq(b->idx)->language);
}

static const char *msg_text(const struct bot *b, const char *key)
{
	const struct faq *f = index_faq(b->idx);
	if (!strcmp(key, "link_label") && f->fallback_label)
		return f->fallback_label;
	const char *o = faq_message(f, key);
	if (o)
		return o;
	for (size_t i = 0; i < ARRAY_LEN(default_text); i++)
		if (!strcmp(default_text[i].key, key))
			return lang(b) == BOT_LANG_FR ? default_text[i].fr : default_text[i].en;
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
	free(m->question);
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

static void memo_store(struct bot *b, const char *chat, const struct reply *r, const char *q, size_t qlen)
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
	if (q && qlen <= BOT_MEMO_QUESTION_MAX && (r->kind == REPLY_CHOOSE || r->kind == REPLY_FALLBACK))
		m->question = xstrndup(q, qlen);
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
	free(r->markup);
	free(r->link_url);
	free(r->link_label);
	free(r->choices_intro);
	for (size_t i = 0; i < r->n_choices; i++) {
		free(r->choices[i].id);
		free(r->choices[i].label);
		free(r->choices[i].button);
	}
	free(r->choices);
	free(r->entry_id);
	free(r->chosen_from);
	memset(r, 0, sizeof(*r));
}

static void add_choice(struct reply *r, const struct faq_entry *e)
{
	r->choices = xrealloc(r->choices, (r->n_choices + 1) * sizeof(*r->choices));
	r->choices[r->n_choices].id = xstrdup(e->id);
	r->choices[r->n_choices].label = xstrdup(e->questions[0]);
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%zu. %s", r->n_choices + 1, e->questions[0]);
	r->choices[r->n_choices].button = strbuf_detach(&sb, NULL);
	r->n_choices++;
}

/* The reply's text from FAQ markup: the source and its plain rendering. */
static void set_markup(struct reply *r, const char *src)
{
	r->markup = xstrdup(src);
	r->text = markup_to_plain(src);
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
	set_markup(r, en->answer);
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
		set_markup(r, f->fallback_text);
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

/* The command named cmd[0..n) in either language, or -1. */
static int find_cmd(const char *cmd, size_t n)
{
	for (size_t i = 0; i < ARRAY_LEN(command_names); i++)
		if (is_cmd(cmd, n, command_names[i].fr) || is_cmd(cmd, n, command_names[i].en))
			return (int)command_names[i].cmd;
	return -1;
}

const struct bot_command *bot_commands(const struct bot *b, size_t *n)
{
	if (lang(b) == BOT_LANG_FR) {
		*n = ARRAY_LEN(commands_fr);
		return commands_fr;
	}
	*n = ARRAY_LEN(commands_en);
	return commands_en;
}

int bot_is_command(const char *text, size_t len, char prefix)
{
	struct inbound_msg m = { text, len, CHAT_PRIVATE, 1, NULL, prefix };
	const char *cmd;
	size_t n = command_word(&m, &cmd);
	/* "!aide," or "!aide?" still name the command: cut at the first non-letter */
	size_t k = 0;
	while (k < n && ((cmd[k] >= 'a' && cmd[k] <= 'z') || (cmd[k] >= 'A' && cmd[k] <= 'Z')))
		k++;
	if (k < n && ((unsigned char)cmd[k] >= 0x80 || (cmd[k] >= '0' && cmd[k] <= '9') || cmd[k] == '_'))
		return 0; /* "!aides", "!faq2": another word */
	return k && find_cmd(cmd, k) >= 0;
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
		int c = find_cmd(cmd, n);
		if (c == CMD_START) {
			reply_init(r, REPLY_WELCOME);
			r->text = render(b, "welcome", m->prefix);
		} else if (c == CMD_FAQ) {
			list_entries(b, "faq_intro", m->prefix, r);
		} else if (c == CMD_SUBSCRIBE) {
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
	r->lang = lang(b);
	memo_store(b, m->chat, r, m->text, m->len);
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
		/* a choice from the list offered for a question: say which */
		struct memo *m = memo_find(b, chat);
		for (size_t i = 0; m && m->question && i < m->n; i++)
			if (!strcmp(m->ids[i], entry_id)) {
				r->chosen_from = xstrdup(m->question);
				break;
			}
	}
	r->lang = lang(b);
	memo_store(b, chat, r, NULL, 0);
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
		r->lang = lang(b);
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

int bot_picks_choice(struct bot *b, const char *chat, const char *text, size_t len)
{
	return bare_number(text, len) > 0 && bot_has_choices(b, chat);
}

char *bot_text(struct bot *b, const char *key, char prefix)
{
	return render(b, key, prefix);
}

/* ==== Mentions ==== */

static int ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

static int sp(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

struct name {
	const char *s;
	size_t n;
	int strong; /* a full user id or an @username: no ':' or ',' needed */
};

/* The bot's names, longest first so "Assistant FAQ" wins over "faqbot". */
static size_t mention_names(const struct bot_identity *id, struct name *out)
{
	size_t k = 0;
	if (id->user_id && *id->user_id) {
		out[k++] = (struct name){ id->user_id, strlen(id->user_id), 1 };
		const char *colon = strchr(id->user_id, ':');
		const char *local = id->user_id[0] == '@' ? id->user_id + 1 : id->user_id;
		if (colon && colon > local)
			out[k++] = (struct name){ local, (size_t)(colon - local), 0 };
	}
	if (id->display_name && *id->display_name)
		out[k++] = (struct name){ id->display_name, strlen(id->display_name), 0 };
	if (id->username && *id->username) {
		const char *u = id->username[0] == '@' ? id->username + 1 : id->username;
		out[k++] = (struct name){ u, strlen(u), 0 };
	}
	for (size_t i = 1; i < k; i++) /* insertion sort, longest first */
		for (size_t j = i; j > 0 && out[j].n > out[j - 1].n; j--) {
			struct name t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return k;
}

static int name_char(char c)
{
	unsigned char u = (unsigned char)c;
	return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_' ||
	       u >= 0x80;
}

size_t bot_strip_mention(const char *text, size_t len, const struct bot_identity *id, size_t *start)
{
	size_t b = 0, e = len;
	struct name names[4];
	size_t nn = id ? mention_names(id, names) : 0;
	while (b < e && sp(text[b]))
		b++;
	while (e > b && sp(text[e - 1]))
		e--;
	/* leading: "@name", "name:", "name," */
	for (size_t i = 0; i < nn; i++) {
		size_t p = b;
		int at = p < e && text[p] == '@' && names[i].s[0] != '@';
		p += (size_t)at;
		if (e - p < names[i].n || !ascii_ieq(text + p, names[i].s, names[i].n))
			continue;
		p += names[i].n;
		if (p < e && name_char(text[p]))
			continue; /* "faqbotique" */
		size_t q = p;
		while (q < e && sp(text[q]))
			q++;
		int punct = q < e && (text[q] == ':' || text[q] == ',');
		if (!punct && !at && !names[i].strong)
			continue; /* "FAQ du projet": a bare name needs ':' or ',' */
		if (punct)
			q++;
		while (q < e && (sp(text[q]) || text[q] == '-'))
			q++;
		b = q;
		break;
	}
	/* trailing: "… @name", "… @user:server", "…, name" */
	for (size_t i = 0; i < nn; i++) {
		if (e - b < names[i].n || !ascii_ieq(text + e - names[i].n, names[i].s, names[i].n))
			continue;
		size_t p = e - names[i].n;
		int at = p > b && text[p - 1] == '@' && names[i].s[0] != '@';
		p -= (size_t)at;
		if (p > b && name_char(text[p - 1]))
			continue;
		size_t q = p;
		while (q > b && sp(text[q - 1]))
			q--;
		int comma = q > b && text[q - 1] == ',';
		if (!comma && !at && !names[i].strong)
			continue;
		if (q == p && p > b && !comma)
			continue; /* glued to the previous word */
		if (comma)
			q--;
		while (q > b && sp(text[q - 1]))
			q--;
		e = q;
		break;
	}
	*start = b;
	return e - b;
}

/* ==== Rendering ==== */

void reply_render(const struct reply *r, enum reply_target target, struct strbuf *out)
{
	enum markup_target t = target == REPLY_TELEGRAM ? MARKUP_TELEGRAM
			       : target == REPLY_MATRIX ? MARKUP_MATRIX : MARKUP_PLAIN;
	const char *nl = t == MARKUP_MATRIX ? "<br>" : "\n";
	if (r->kind == REPLY_NONE)
		return;
	if (r->markup)
		markup_render(r->markup, strlen(r->markup), t, out);
	else if (r->text)
		markup_add_text(out, r->text, strlen(r->text), t);
	/* a multi-paragraph Matrix answer ends with a block: no <br> needed */
	int block_end = t == MARKUP_MATRIX && out->len && out->buf[out->len - 1] == '>' &&
			out->len >= 5 && (!strcmp(out->buf + out->len - 4, "</p>") ||
					  !strcmp(out->buf + out->len - 5, "</ul>"));
	if (r->link_url) {
		strbuf_addstr(out, block_end ? "" : nl);
		markup_add_link(out, r->link_label ? r->link_label : r->link_url, r->link_url,
				r->lang == BOT_LANG_FR ? " : " : ": ", t);
		block_end = 0;
	}
	if (!r->n_choices)
		return;
	if (r->choices_intro) {
		strbuf_addstr(out, t == MARKUP_MATRIX ? (block_end ? "" : "<br><br>") : "\n\n");
		markup_add_text(out, r->choices_intro, strlen(r->choices_intro), t);
	}
	if (t == MARKUP_TELEGRAM)
		return; /* the choices are buttons */
	if (t == MARKUP_MATRIX)
		strbuf_addstr(out, "<ol>");
	for (size_t i = 0; i < r->n_choices; i++) {
		if (t == MARKUP_MATRIX) {
			strbuf_addstr(out, "<li>");
			markup_add_text(out, r->choices[i].label, strlen(r->choices[i].label), t);
			strbuf_addstr(out, "</li>");
		} else {
			strbuf_addf(out, "\n%s", r->choices[i].button);
		}
	}
	if (t == MARKUP_MATRIX)
		strbuf_addstr(out, "</ol>");
}

void reply_format_plain(const struct reply *r, struct strbuf *out)
{
	if (r->kind == REPLY_NONE)
		return;
	reply_render(r, REPLY_PLAIN, out);
	strbuf_addch(out, '\n');
}
