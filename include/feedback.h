/*
 * feedback.h - what users tell the bot about its answers: 👍/👎 votes on
 * an answer and the entry they pick from a list the bot offered for their
 * question.  Recorded in the store (store.h: answered, votes, choices) for
 * `faqbot report`, which shows each entry's helpfulness and proposes the
 * chosen questions as new phrasings; the editor applies them (report.h).
 *
 * Live learning (off by default: learn_min_users = 0): a question chosen
 * for the same entry by learn_min_users different users (at least 2) joins
 * that entry's phrasings in the running matcher, until the editor decides
 * (adds it to the FAQ, which makes it redundant, or lets it age out with
 * feedback_retention_days).  The bot's index is rebuilt from the editor's
 * FAQ plus the learned phrasings and swapped in (bot_swap_index); the FAQ
 * file is never written.  Guards, so one user cannot teach:
 *   - users are counted distinct (pseudonyms), one choice per user counts;
 *   - a question the editor's FAQ already answers confidently (to that
 *     entry, or to another one) is not learned;
 *   - a question whose answers from that entry got more 👎 than 👍 is not
 *     learned;
 *   - at most FEEDBACK_LEARN_MAX_PER_ENTRY phrasings per entry (the most
 *     confirmed first).
 *
 * What the chat side calls (transports, through the service seam), each
 * inside the store transaction that handles the update (these functions
 * run statements and never begin or commit; a store error marks the
 * transaction, as every store call does):
 *   feedback_answered  with every reply, when adding its outbox rows
 *   feedback_vote      on a 👍/👎 (button, m.reaction) or its withdrawal
 *   feedback_unreact   on the redaction of an event (it may be a reaction)
 *   feedback_choice    with every reply to a number or a pressed choice
 *                      button (it records only when reply.chosen_from is set)
 *   feedback_faq_loaded after the bot got a new FAQ (start, reload)
 *
 * Ownership: feedback_new borrows the store and the bot (both must outlive
 * it); feedback_free frees what it owns (the editor's index kept aside
 * while learned phrasings are in service).  A struct feedback_summary is
 * filled by feedback_summarize and released with feedback_summary_release.
 */
#ifndef FAQBOT_FEEDBACK_H
#define FAQBOT_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>

#include "bot.h"
#include "index.h"
#include "store.h"

#define FEEDBACK_LEARN_MAX_PER_ENTRY 10
#define FEEDBACK_MAX_QUESTION 500  /* longer questions are not recorded as phrasings */

struct feedback_options {
	int record;              /* feedback_retention_days > 0: record at all */
	long learn_min_users;    /* live learning: 0 off, else >= 2 distinct users */
	int64_t window_ms;       /* choices and votes considered (feedback_retention_days) */
};

/* The options from the settings (config.h): what main passes to feedback_new. */
#define FEEDBACK_OPTIONS_FROM(c) \
	((struct feedback_options){ (c)->feedback_retention_days > 0, (c)->learn_min_users, \
				    (c)->feedback_retention_days * 86400000LL })

struct feedback;

struct feedback *feedback_new(struct store *st, struct bot *bot, const struct feedback_options *o);
void feedback_free(struct feedback *fb);

/* Records what reply r (sent as the outbox rows of trigger) answered: for
 * an FAQ answer (r->kind REPLY_ANSWER), its entry and the question, which
 * is r->chosen_from for a choice, else question[0..len) (the text the bot
 * got, mention removed).  Other replies record nothing.  Message ids are
 * linked as the rows are sent (store_answered_sent).  0, or -1. */
STORE_MUST_CHECK int feedback_answered(struct feedback *fb, const char *transport, const char *trigger,
				       const struct reply *r, const char *question, size_t len, int64_t now);

/* user (raw id: Telegram from.id, Matrix sender) votes on the bot message
 * message_id in chat, written as the outbox row's chat and result are
 * (Telegram: the chat id and message_id as decimal text; Matrix: the room
 * id and event id): +1 👍, -1 👎, 0 withdrawn.  reaction: the Matrix
 * m.reaction event's id (so its redaction can withdraw the vote:
 * feedback_unreact), NULL for a Telegram button.  Counted in
 * faqbot_feedback_total{transport, kind="up"|"down"|"withdrawn"} when it
 * changed what is stored, kind="ignored" when message_id is no recorded
 * answer.  Returns STORE_VOTE_* (store.h), or -1. */
STORE_MUST_CHECK int feedback_vote(struct feedback *fb, const char *transport, const char *chat,
				   const char *message_id, const char *user, int value,
				   const char *reaction, int64_t now);
/* A redaction of the event reaction (Matrix): withdraws the vote it cast
 * (kind="withdrawn").  1 withdrawn, 0 none, -1. */
STORE_MUST_CHECK int feedback_unreact(struct feedback *fb, const char *transport, const char *reaction);

/* The reply r that bot_handle or bot_choose gave to user in chat: when it
 * is a choice from a list offered for a question (r->chosen_from), records
 * the pair (faqbot_feedback_total{kind="choice"}) and, with live learning
 * on, learns when that makes a phrasing confirmed.  1 recorded, 0 nothing
 * to record, -1 on a store error. */
STORE_MUST_CHECK int feedback_choice(struct feedback *fb, const char *transport, const char *chat,
				     const char *user, const struct reply *r, int64_t now);

/* With live learning on: the bot's index is a new editor's FAQ (start,
 * reload); installs it with the phrasings learned.  Returns how many
 * phrasings are learned, or -1 (store error: the FAQ stays as loaded).
 * Learning also notices a new FAQ by itself at the next choice. */
int feedback_faq_loaded(struct feedback *fb, int64_t now);
/* 1 when votes and choices are recorded (feedback_retention_days > 0). */
int feedback_records(const struct feedback *fb);
/* Phrasings learned and in service now. */
size_t feedback_learned_count(const struct feedback *fb);

/* 1 for 👍, -1 for 👎 (with or without a variation selector or skin
 * tone, and "+1" / "-1"), 0 for anything else: a reaction's key. */
int feedback_vote_value(const char *key);

/* ==== Summary, for the report and for learning ==== */

struct feedback_phrasing {
	char *entry;        /* the chosen entry's id */
	char *question;     /* the group's first text (its oldest choice) */
	char *terms;        /* its analysed terms: the group (index_terms) */
	size_t choices;     /* choices recorded (one per user and text) */
	size_t users;       /* distinct users */
	int votes;          /* 👍 minus 👎 on that entry's answers to these terms */
};

struct feedback_votes {
	char *entry;
	size_t up, down;         /* votes (one per user and answer) */
	char **down_questions;   /* distinct questions whose answer got a 👎 */
	size_t n_down_questions;
};

struct feedback_summary {
	struct feedback_phrasing *phrasings; /* most users first */
	size_t n_phrasings;
	struct feedback_votes *votes;        /* most 👎 first */
	size_t n_votes;
};

#define FEEDBACK_DOWN_QUESTIONS 10 /* questions kept per entry */

/* Reads the choices and votes since `since` (ms) and groups them with
 * idx's analysis.  0, or -1 (store error; out is then empty). */
int feedback_summarize(struct store *st, struct index *idx, int64_t since, struct feedback_summary *out);
void feedback_summary_release(struct feedback_summary *s);

#endif
