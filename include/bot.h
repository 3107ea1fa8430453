/*
 * bot.h - one incoming message in, one reply out; no transport knowledge.
 *
 * The bot understands commands (start, aide/help, faq, souscrire/subscribe,
 * with the transport's prefix: "/" on Telegram and the console, "!" on
 * Matrix), questions, and a bare number answering the last numbered list it
 * sent to that chat (suggestions or the /faq list).  In a group it stays
 * silent unless the transport says the message addressed the bot.
 *
 * Its own texts and command names follow the FAQ's "language": French for
 * french/fr/fre/fra, English for every other language; the FAQ's
 * "messages" override any text.  Command names of both languages are always
 * understood.
 *
 * The reply is text plus structure (an optional link, an optional list of
 * choices).  `text` is plain (answers' markup already rendered as plain
 * text); reply_render lays the whole reply out for a target (Telegram HTML,
 * Matrix formatted_body, plain body), with the answer's markup formatted.
 *
 * Ownership: bot_new borrows nothing and owns its index; bot_swap_index
 * installs a new index and returns the old one for the caller to free (a
 * reload never mutates the index in use).  struct reply is filled by the
 * bot and released by the caller with reply_release.
 */
#ifndef FAQBOT_BOT_H
#define FAQBOT_BOT_H

#include <stddef.h>

#include "index.h"
#include "match.h"
#include "strbuf.h"

enum chat_kind { CHAT_PRIVATE, CHAT_GROUP };

#define BOT_LOW_CONFIDENCE 0.10

struct inbound_msg {
	const char *text;
	size_t len;
	enum chat_kind kind;
	int addressed;        /* group message mentions/replies to/commands the bot */
	const char *chat;     /* stable chat key, for per-chat choice memory */
	char prefix;          /* command prefix of this transport: '/' or '!' */
};

enum reply_kind {
	REPLY_NONE,      /* stay silent */
	REPLY_ANSWER,    /* an FAQ answer */
	REPLY_CHOOSE,    /* ambiguous: choices to pick from */
	REPLY_FALLBACK,  /* not answered: fallback text + link (+ near choices) */
	REPLY_WELCOME,
	REPLY_HELP,
	REPLY_LIST,      /* the /faq list of questions */
	REPLY_SUBSCRIBE,
	REPLY_EMPTY      /* nothing searchable in the message */
};

struct reply_choice {
	char *id;        /* entry id */
	char *label;     /* the entry's first question (for lists that number themselves) */
	char *button;    /* "2. <label>": a button's text, with the number a user may type */
};

enum bot_language { BOT_LANG_EN, BOT_LANG_FR };

struct reply {
	enum reply_kind kind;
	char *text;           /* plain text, never NULL after bot_handle */
	char *markup;         /* the same text in the answer markup (markup.h) when it comes
			       * from the FAQ (an answer, the fallback text), else NULL */
	char *link_url;       /* optional button / link */
	char *link_label;
	char *choices_intro;  /* text above the choices (after the link), or NULL */
	struct reply_choice *choices;
	size_t n_choices;
	char *entry_id;       /* the answered (or best-guess) entry, or NULL */
	double confidence;
	int unanswered;       /* a question the FAQ did not answer well: a fallback,
			       * a choice between entries, or an answer within
			       * BOT_LOW_CONFIDENCE of the threshold */
	enum bot_language lang; /* of the bot's texts in this reply */
	char *chosen_from;    /* an answer picked from the list the bot offered for a
			       * question (by number or button): that question's
			       * text, for feedback_choice; else NULL */
};

struct bot_options {
	double threshold;         /* < 0: the FAQ's own */
	const char *subscribe_url; /* NULL: the FAQ's fallback url */
};

struct bot;

struct bot *bot_new(struct index *idx, const struct bot_options *opt);
void bot_free(struct bot *b);
struct index *bot_swap_index(struct bot *b, struct index *idx);
struct index *bot_index(struct bot *b);

/* Fills r for message m; returns r->kind. */
enum reply_kind bot_handle(struct bot *b, const struct inbound_msg *m, struct reply *r);
/* The reply for a chosen entry (a pressed button, "a:<id>"); an unknown id
 * (removed by a reload) gives a short notice and the /faq list. */
enum reply_kind bot_choose(struct bot *b, const char *chat, const char *entry_id, char prefix,
			   struct reply *r);
void reply_release(struct reply *r);

/* 1 when the bot's last reply in chat was a numbered list (a bare number
 * from that chat picks from it). */
int bot_has_choices(struct bot *b, const char *chat);

/* 1 when text is a bare number ("2", " 3. ") and the bot's last reply in
 * chat was a numbered list: the number picks from it, so a transport treats
 * the message as addressed to the bot. */
int bot_picks_choice(struct bot *b, const char *chat, const char *text, size_t len);

/* Turns r into the one flood notice (FLOOD_NOTICE) or silence (FLOOD_IGNORE). */
void bot_flood_reply(struct bot *b, int verdict, char prefix, struct reply *r);

/* 1 when comma-separated list is empty or holds item (or, with server_ok,
 * the server part of item after its first ':'). */
int bot_listed(const char *list, const char *item, int server_ok);

/* The bot's text for key ("help", "cooldown", ...) with {prefix} filled
 * in: the FAQ's override or the built-in text in the FAQ's language.
 * Caller frees. */
char *bot_text(struct bot *b, const char *key, char prefix);

/* The language of the bot's texts for this FAQ language name ("french",
 * "fr", "fre", "fra" give French; anything else English). */
enum bot_language bot_language_of(const char *faq_language);

/* ==== Commands ==== */

struct bot_command {
	const char *name;        /* without prefix: "aide" */
	const char *description; /* one line, for a client's command menu */
};

/* The commands to advertise (Telegram setMyCommands, a Matrix help), in the
 * FAQ's language.  Borrowed static array of *n entries. */
const struct bot_command *bot_commands(const struct bot *b, size_t *n);
/* 1 when text starts with prefix and a command name of either language
 * ("!aide", "/help@faqbot", "!Subscribe please"), else 0. */
int bot_is_command(const char *text, size_t len, char prefix);

/* ==== Mentions ==== */

struct bot_identity {
	const char *display_name; /* "Assistant FAQ", or NULL */
	const char *user_id;      /* Matrix "@faqbot:example.org", or NULL */
	const char *username;     /* Telegram "faqbot" (with or without '@'), or NULL */
};

/* Where the question is once a mention of the bot at its start or end is
 * cut: "Assistant FAQ: à quoi sert…", "@faqbot …", "faqbot, …", "… @faqbot",
 * "… @faqbot:example.org".  A bare name (no '@', not a full user id) counts
 * at the start only when a ':' or ',' follows it, and at the end only after
 * a ','; names compare without ASCII case.  Returns the question's length
 * and sets *start to its offset in text (no copy). */
size_t bot_strip_mention(const char *text, size_t len, const struct bot_identity *id, size_t *start);

/* ==== Rendering ==== */

enum reply_target { REPLY_PLAIN, REPLY_TELEGRAM, REPLY_MATRIX };

/* Appends the whole reply laid out for target, in this order: the text
 * (answer markup formatted), the link right under it ("label : url" in
 * plain, a link in HTML), the choices' intro, then the numbered choices
 * (plain "1. …" lines, a Matrix <ol>; none for Telegram, whose choices
 * are buttons labelled with choices[i].button).  Telegram output is for
 * parse_mode HTML, Matrix output for formatted_body; split either with
 * markup_split and take each part's body with markup_html_to_plain. */
void reply_render(const struct reply *r, enum reply_target target, struct strbuf *out);

/* Renders a reply as plain text (console, CLI, logs): reply_render's
 * plain layout and a final newline. */
void reply_format_plain(const struct reply *r, struct strbuf *out);

#endif
