/*
 * sender.h - the outbox send queue shared by the chat transports.
 *
 * It picks the rows due now (per chat in order, one in flight per chat, at
 * most max_in_flight overall, after the transport's rate limiter agreed; a
 * chat it holds back is deferred and the next chat is tried), marks them
 * "sending" inside the caller's open transaction, and, once the caller
 * committed, starts them through the transport's send callback.
 *
 * Group commit.  A send's answer is only kept (sender_answered); the next
 * pump classifies it (the outcome hook, inside that pump's transaction),
 * writes the row and picks the next sends, so the answers that arrived in
 * one loop turn cost one commit together.  An outcome is kept in memory
 * until that commit succeeds (so a failed commit neither leaves the row
 * "sending" nor sends it twice), and no send starts before the commit that
 * marked it: at every instant at most max_in_flight rows are "sending" in
 * the database (in flight, or answered and not yet committed), which bounds
 * what a crash can leave with an unknown outcome.  A chat's next row is
 * picked only once its previous row's outcome is written, in the same
 * transaction: it goes out after that outcome is durable.  Nothing here
 * knows a protocol.
 *
 * Ownership: sender_new returns a handle freed with sender_free (which
 * frees the contexts of sends still in flight; free the HTTP handle first
 * so their callbacks never run).  A struct send_ctx belongs to the sender;
 * the transport may modify ctx->row until it calls sender_done(ctx) or
 * sender_answered(ctx), and again in the outcome hook.
 */
#ifndef FAQBOT_SENDER_H
#define FAQBOT_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "store.h"

struct send_ctx {
	struct outbox_row row;
	void *arg;               /* the transport */
	struct send_ctx *next, *prev;
	int written;             /* outcome written in the open transaction */
	int answered;            /* resp holds an answer the outcome hook has not seen */
	struct http_response resp; /* a copy of the answer (sender_answered) */
};

struct sender_ops {
	/* Starts the request for ctx->row; 0, or -1 when it could not start. */
	int (*send)(void *arg, struct send_ctx *ctx);
	/* ms to wait before chat may send again (rate limits), 0 = go.  May be NULL. */
	int64_t (*throttle)(void *arg, const char *chat, int64_t now);
	/* Classifies ctx->resp into ctx->row inside the open transaction (once
	 * per answer) and writes what else the answer changes; 0, or -1 when
	 * one of those writes failed.  May be NULL when sender_answered is
	 * never used. */
	int (*outcome)(void *arg, struct send_ctx *ctx);
};

struct sender;

struct sender *sender_new(struct store *store, const char *transport, int max_in_flight,
			  const struct sender_ops *ops, void *arg);
void sender_free(struct sender *s);

/* Inside an open transaction: classifies the answers kept by
 * sender_answered and writes every outcome not yet committed; 0, or -1
 * when a write failed (the transaction is then refused: they are all
 * written again by the next pump). */
int sender_record(struct sender *s);
/* Inside an open transaction: sender_record, then picks due rows and
 * marks them sending. */
void sender_pick(struct sender *s, int64_t now);
/* After the commit: starts what sender_pick chose.  rollback = 1 when the
 * commit failed (the picks are forgotten). */
void sender_start(struct sender *s, int64_t now, int rollback);
/* ctx->row holds the send's outcome; the sender writes it with the next
 * pick and frees ctx once that is committed. */
void sender_done(struct sender *s, struct send_ctx *ctx);
/* The answer r to ctx's request arrived (r is copied): the outcome hook
 * classifies it at the next pump, in that pump's transaction. */
void sender_answered(struct sender *s, struct send_ctx *ctx, const struct http_response *r);
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
