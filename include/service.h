/*
 * service.h - the one place that decides what happens around bot_handle,
 * for every transport.
 *
 * A transport turns its wire format into a struct service_msg (who wrote
 * what, where, when, and whether it addressed the bot) and calls
 * service_handle inside the transaction that handles the inbox row.  The
 * service then, in this order and nowhere else:
 *   1. asks the bot (bot_handle, or bot_choose for a pressed button);
 *   2. applies the flood limit, counted at the message's own time (a
 *      backlog read after downtime is not a flood); the one notice and the
 *      silence after it come from here;
 *   3. in a group, turns a repeated answer within cooldown_s into a short
 *      pointer at the earlier answer (store_recent);
 *   4. queues the reply through the transport's queue hook (which turns it
 *      into request bytes: protocol knowledge stays in the transport);
 *   5. records a question the FAQ did not answer well (store_unanswered);
 *   6. counts it (faqbot_questions_total, faqbot_replies_total with one
 *      table of kinds: service_kind_name) and logs one event=reply line
 *      with the question's id (trigger=);
 *   7. with a feedback recorder set (service_set_feedback), records what an
 *      answer answered (feedback_answered) and a pick from a list the bot
 *      offered for a question (feedback_choice).
 * Votes (a Telegram 👍/👎 button, a Matrix m.reaction and its redaction)
 * come through service_vote and service_unreact: transports only translate.
 *
 * Ownership: service_new copies the options' strings it keeps (none but
 * the transport name) and borrows bot and store, which must outlive it;
 * so must the feedback recorder given to service_set_feedback.
 * A service_msg is borrowed for the call.
 */
#ifndef FAQBOT_SERVICE_H
#define FAQBOT_SERVICE_H

#include <stdint.h>

#include "bot.h"
#include "feedback.h"
#include "store.h"

/* One incoming message, as every transport describes it. */
struct service_msg {
	struct inbound_msg in;   /* what the bot reads: the text with the mention cut out,
				  * chat, kind (private/group), addressed, command prefix */
	const char *user;        /* the sender's stable id (flood key), never NULL */
	const char *trigger;     /* the question's id: ledger key and outbox trigger
				  * ("m:<chat>:<message_id>", "e:<event_id>", "c:<callback id>") */
	int64_t sent_ms;         /* the message's own time (wall ms), 0 when unknown */
	const char *question;    /* the text as written, for the unanswered record and
				  * log_questions; NULL for a pressed button */
	const char *reply_to;    /* the message a reply answers, or NULL */
	const char *thread;      /* thread / topic the reply goes to, or NULL */
	const char *choice;      /* a pressed button's entry id (bot_choose), or NULL */
};

/* Reply kinds as counted and logged: the bot's kinds, then the service's own. */
enum service_kind {
	SK_ANSWER, SK_CHOOSE, SK_FALLBACK, SK_WELCOME, SK_HELP, SK_LIST, SK_SUBSCRIBE, SK_EMPTY,
	SK_FLOOD,    /* the one flood notice */
	SK_COOLDOWN, /* a pointer at the same answer given moments ago */
	SK_N
};
/* "answer", "flood", ...: the metrics label and the log's kind=. */
const char *service_kind_name(enum service_kind k);

struct service_options {
	const char *transport;   /* "telegram": metrics label and log field */
	long cooldown_s;         /* 0: off */
	int record_unanswered;   /* keep unanswered questions for `faqbot report` */
	int log_questions;       /* write question texts in the log (privacy: off) */
	long flood_max, flood_window_s, flood_pause_s;
};

struct service_ops {
	/* Queues r as outbox rows answering m, in the caller's open
	 * transaction.  reply_to is m->reply_to, or the earlier answer's
	 * message id for a cooldown pointer.  0, or -1 when the store failed. */
	int (*queue)(void *arg, const struct service_msg *m, const struct reply *r, const char *reply_to);
};

struct service;

struct service *service_new(struct bot *bot, struct store *store, const struct service_options *o,
			    const struct service_ops *ops, void *arg);
void service_free(struct service *sv);
/* Handles m at wall time now (inside the caller's transaction): 0, or -1
 * when the store failed (the transaction is then refused and the row is
 * handled again). */
int service_handle(struct service *sv, const struct service_msg *m, int64_t now);
/* Records answers, choices and votes with fb from now on (NULL: none). */
void service_set_feedback(struct service *sv, struct feedback *fb);
/* user's vote on the bot's message msg_id in chat (+1 👍, -1 👎, 0
 * withdrawn; reaction: the Matrix m.reaction event id, else NULL), inside
 * the caller's transaction.  STORE_VOTE_* (store.h; STORE_VOTE_UNKNOWN
 * also when no recorder is set), or -1 when the store failed. */
int service_vote(struct service *sv, const char *chat, const char *msg_id, const char *user, int value,
		 const char *reaction, int64_t now);
/* 1 when votes are recorded (a transport asks for them only then). */
int service_takes_votes(const struct service *sv);
/* The redaction of event `reaction` (Matrix): withdraws the vote it cast.
 * 1, 0 (none), or -1 when the store failed. */
int service_unreact(struct service *sv, const char *reaction);
/* Records a reply sent as message `msg_id` (part 0 of an answer in a group):
 * the id a cooldown pointer will reply to.  0 or -1. */
int service_answer_sent(struct service *sv, const char *chat, const char *entry, const char *msg_id);

#endif
