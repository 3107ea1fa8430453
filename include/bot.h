/*
 * bot.h - one incoming message in, one reply out; no transport knowledge.
 *
 * The bot understands commands (start, aide/help, faq, souscrire, with the
 * transport's prefix: "/" on Telegram and the console, "!" on Matrix),
 * questions, and a bare number answering the last numbered list it sent to
 * that chat (suggestions or the /faq list).  In a group it stays silent
 * unless the transport says the message addressed the bot.
 *
 * The reply is plain text plus structure (an optional link button, an
 * optional list of choices); each transport renders it (HTML, buttons...).
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
	char *label;     /* the entry's first question */
};

struct reply {
	enum reply_kind kind;
	char *text;           /* plain text, never NULL after bot_handle */
	char *link_url;       /* optional button / link */
	char *link_label;
	char *choices_intro;  /* text above the choices, or NULL */
	struct reply_choice *choices;
	size_t n_choices;
	char *entry_id;       /* the answered (or best-guess) entry, or NULL */
	double confidence;
	int unanswered;       /* a question the FAQ did not answer well: a fallback,
			       * a choice between entries, or an answer within
			       * BOT_LOW_CONFIDENCE of the threshold */
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

/* Turns r into the one flood notice (FLOOD_NOTICE) or silence (FLOOD_IGNORE). */
void bot_flood_reply(struct bot *b, int verdict, char prefix, struct reply *r);

/* 1 when comma-separated list is empty or holds item (or, with server_ok,
 * the server part of item after its first ':'). */
int bot_listed(const char *list, const char *item, int server_ok);

/* The bot's text for key ("help", "cooldown", ...) with {prefix} filled
 * in: the FAQ's override or the built-in French.  Caller frees. */
char *bot_text(struct bot *b, const char *key, char prefix);

/* Renders a reply as plain text (console, CLI, logs): text, numbered
 * choices, then the link. */
void reply_format_plain(const struct reply *r, struct strbuf *out);

#endif
