/*
 * telegram.h - the Telegram Bot API transport (long polling).
 *
 * Start: getMe (own id and username; privacy mode noted), getWebhookInfo
 * (a webhook stops faqbot unless delete_webhook allows deleteWebhook with
 * drop_pending_updates=false), setMyCommands (failure only logged).
 *
 * Loop: getUpdates with offset = last update_id + 1; each batch is stored
 * in the inbox together with the new offset in one commit before the next
 * poll.  An answer over the body cap halves the next batch (down to one
 * update, then a 16 MB cap, then that one update is skipped with a counted
 * loss) instead of repeating the same request forever.  Inbox rows are
 * turned into replies through the bot and committed
 * as outbox rows (exact request bytes) with their ledger entry.  The sender
 * sends outbox rows per chat in order, one at a time per chat, within
 * Telegram's rate limits (token buckets: 1/s per chat, 20/min per group,
 * 25/s overall), up to parallel_sends chats at once; the outcomes that
 * arrive together are committed together, before the chat's next send.
 *
 * Delivery policy: Telegram has no idempotency key, so a send whose outcome
 * is unknown (timeout or connection lost after the body went out, 500, 502,
 * 504, or a crash while sending) is sent again and logged as
 * event=ambiguous_resend; everything else is sent exactly once.  A crash
 * leaves at most parallel_sends sends with an unknown outcome.
 *
 * Protocol only: it runs on the transport skeleton (transport.h), which
 * owns start-up, polls, the pump and the sender; what happens around the
 * bot (flood, cooldown, metrics, the reply log) is the service's
 * (service.h).
 *
 * Ownership: tg_new returns a transport freed with transport_free;
 * it borrows bot, store and http, which must outlive it.
 */
#ifndef FAQBOT_TELEGRAM_H
#define FAQBOT_TELEGRAM_H

#include "bot.h"
#include "http.h"
#include "store.h"
#include "transport.h"

struct tg_options {
	const char *token;
	const char *api_url;       /* API root, e.g. https://api.telegram.org */
	int group_all;             /* answer every message in groups */
	int backlog_skip;          /* skip questions older than backlog_minutes at start */
	long backlog_minutes;
	long cooldown_s;           /* same entry in a group within this: pointer, not repost */
	int delete_webhook;
	long poll_timeout_s;
	long send_timeout_s;
	int rate_limits;
	int record_unanswered;     /* keep unanswered questions for `faqbot report` */
	int log_questions;         /* write question texts in the log (privacy: off) */
	const char *admin_chat;    /* told about invalid FAQ edits, or NULL */
	const char *allowed_chats; /* comma-separated chat ids, NULL: all */
	long flood_max, flood_window_s, flood_pause_s;
	long parallel_sends;       /* sends at once across chats; 0: TG_PARALLEL_SENDS */
};

/* Sends at once by default (telegram_parallel_sends): each in a different
 * chat.  Telegram has no idempotency key, so every send in flight (or
 * answered but not yet committed) when the process dies is a possible
 * duplicate after the restart: a crash duplicates at most this many. */
#define TG_PARALLEL_SENDS 6

struct config;
/* The transport_kinds row (transport.h): telegram_token set; the
 * telegram_* settings checked; the transport made from them. */
int tg_configured(const struct config *c);
int tg_config_check(const struct config *c, struct strbuf *errors);
struct transport *tg_from_config(const struct config *c, struct bot *bot, struct store *store,
				 struct http *http);

struct transport *tg_new(const struct tg_options *o, struct bot *bot, struct store *store,
			 struct http *http);
/* For tests and fuzzing: handles body[0..len) as the answer to a getUpdates
 * request (HTTP 200), as if the transport were running: stores, processes,
 * queues replies (nothing is sent until the loop runs). */
void tg_feed_updates(struct transport *t, const char *body, size_t len);

#endif
