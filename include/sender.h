/*
 * sender.h - the outbox send queue shared by the chat transports.
 *
 * It picks the rows due now (per chat in order, one in flight per chat, at
 * most max_in_flight overall, after the transport's rate limiter agreed; a
 * chat it holds back is deferred and the next chat is tried), marks them
 * "sending" inside the caller's open transaction, and, once the caller
 * committed, starts them through the transport's send callback.  The
 * transport classifies each outcome into ctx->row and calls sender_done;
 * the sender writes the row in the next pick's transaction and keeps it in
 * memory until that commit succeeds (so a failed commit neither leaves the
 * row "sending" nor sends it twice).  Nothing here knows a protocol.
 *
 * Ownership: sender_new returns a handle freed with sender_free (which
 * frees the contexts of sends still in flight; free the HTTP handle first
 * so their callbacks never run).  A struct send_ctx belongs to the sender;
 * the transport may modify ctx->row until it calls sender_done(ctx).
 */
#ifndef FAQBOT_SENDER_H
#define FAQBOT_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct send_ctx {
	struct outbox_row row;
	void *arg;               /* the transport */
	struct send_ctx *next, *prev;
	int written;             /* outcome written in the open transaction */
};

struct sender_ops {
	/* Starts the request for ctx->row; 0, or -1 when it could not start. */
	int (*send)(void *arg, struct send_ctx *ctx);
	/* ms to wait before chat may send again (rate limits), 0 = go.  May be NULL. */
	int64_t (*throttle)(void *arg, const char *chat, int64_t now);
};

struct sender;

struct sender *sender_new(struct store *store, const char *transport, int max_in_flight,
			  const struct sender_ops *ops, void *arg);
void sender_free(struct sender *s);

/* Inside an open transaction: writes the outcomes not yet committed,
 * picks due rows and marks them sending. */
void sender_pick(struct sender *s, int64_t now);
/* After the commit: starts what sender_pick chose.  rollback = 1 when the
 * commit failed (the picks are forgotten). */
void sender_start(struct sender *s, int64_t now, int rollback);
/* ctx->row holds the send's outcome; the sender writes it with the next
 * pick and frees ctx once that is committed. */
void sender_done(struct sender *s, struct send_ctx *ctx);
/* Outcomes known but not yet committed. */
size_t sender_unrecorded(const struct sender *s);
/* Sets row to be tried again after wait ms (gives up after a day). */
void sender_retry_later(struct outbox_row *row, int64_t now, int64_t wait);
/* Backoff for the row's next try (grows with its attempts). */
int64_t sender_backoff(const struct outbox_row *row);

int sender_in_flight(const struct sender *s);
/* Wall-clock ms when a waiting row may go, or -1 (in flight full: -1). */
int64_t sender_wake(const struct sender *s);
/* 1 when the queue should be looked at now (something due, room to send). */
int sender_ready(const struct sender *s, int64_t now);
/* Stop starting new sends (graceful stop). */
void sender_stop(struct sender *s);

#endif
