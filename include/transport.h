/*
 * transport.h - the skeleton every chat transport (Telegram, Matrix) runs
 * on, and what the event loop knows of one.
 *
 * Three activities share the loop, each restartable from the database
 * alone: polling (a long poll's answer -> inbox rows, committed with the
 * transport's position), processing (inbox -> the service -> outbox rows +
 * ledger) and sending (outbox -> the sender -> requests).  The skeleton
 * owns what every transport does alike:
 *   - start-up: it calls the start hook until the transport says it runs
 *     (transport_running, which also recovers sends cut short by a stop),
 *     retries with backoff (transport_start_retry), or gives up
 *     (transport_fail);
 *   - the poll: when to start one (after the last answer, a backoff, a
 *     server-given wait), what a stored answer counts (faqbot_polls_total,
 *     faqbot_poll_seconds_total), what a failed one logs and counts;
 *   - the pump: one commit with what the caller wrote, the outcomes of
 *     the sends answered since the last pump (group commit), the replies
 *     to pending inbox rows (the row hook, through the service) and the
 *     sends picked next; a store error waits a second;
 *   - the sender (sender.h) and the service (service.h) of the transport,
 *     the prologue and epilogue of every send's answer, next_wake, stop,
 *     busy, failed, the heartbeat's last poll and the admin notices.
 * A transport supplies the protocol: the hooks of struct transport_ops.
 *
 * Ownership: transport_new returns a handle owning the sender and the
 * service; transport_free frees them, then the transport's own object
 * through its free hook.  bot, store and http are borrowed and must
 * outlive it.
 */
#ifndef FAQBOT_TRANSPORT_H
#define FAQBOT_TRANSPORT_H

#include <stdint.h>

#include "bot.h"
#include "http.h"
#include "sender.h"
#include "service.h"
#include "store.h"

struct transport;

struct transport_ops {
	/* Starts the next start-up request (its callback then calls one of
	 * transport_start_next / _retry / _running / _fail / _restart).
	 * Returns 1 when a request is in flight, 0 when the step finished at
	 * once (it called one of those itself), -1 when no request could start. */
	int (*start)(void *self);
	/* Starts a poll (its callback ends with transport_poll_stored,
	 * _store_failed, _failed or _again); 0, or -1 when it could not start
	 * (the skeleton backs off). */
	int (*poll)(void *self);
	/* Handles one inbox row inside the open transaction: turns it into a
	 * service_msg for service_handle, or handles what is not a question
	 * (joins, leaves, migrations).  0, or -1 when the store failed.  The
	 * skeleton deletes the row. */
	int (*row)(void *self, const struct inbox_row *row);
	/* Queues reply r (as request bytes: outbox rows) answering m; the
	 * service's queue hook (service.h).  m->user is NULL for an admin notice. */
	int (*queue)(void *self, const struct service_msg *m, const struct reply *r, const char *reply_to);
	/* Starts the request for x->row with http callback done and argument x. */
	int (*send)(void *self, struct send_ctx *x, http_done_fn done);
	/* Classifies a send's answer into row (state, result, retry time,
	 * sender_retry_later...) and writes what else it changes when txn is
	 * 1 (a transaction is open).  Returns txn, or 0 when one of its own
	 * writes failed.  Called by the pump after the answer arrived (group
	 * commit: the answers of one loop turn in one transaction), with a
	 * copy of the answer. */
	int (*sent)(void *self, struct outbox_row *row, const struct http_response *r, int txn);
	/* ms chat must wait before its next send (rate limits), 0 = go; may be NULL. */
	int64_t (*throttle)(void *self, const char *chat, int64_t now);
	void (*free)(void *self);
};

struct transport_config {
	const char *name;          /* "telegram": store rows, metrics labels, logs */
	const char *poll_event;    /* "poll", "sync": the log's <poll_event>_failed */
	int max_in_flight;         /* sends at once (sender.h) */
	int idempotent_sends;      /* a resend after a crash cannot duplicate (Matrix txnId) */
	const char *admin_chat;    /* told about invalid FAQ edits, or NULL */
	struct service_options service;
};

struct transport *transport_new(const struct transport_config *c, const struct transport_ops *ops,
				void *self, struct bot *bot, struct store *store, struct http *http);
void transport_free(struct transport *t);

/* ==== The transports built in (src/transports.c) ==== */

struct config;

struct transport_kind {
	const char *name;
	/* 1 when the configuration asks for this transport (its credentials are set). */
	int (*configured)(const struct config *c);
	/* Settings of this transport that only make sense together: 0, or -1
	 * with one sentence a line appended to errors. */
	int (*check)(const struct config *c, struct strbuf *errors);
	/* The running transport for this configuration (borrows bot, store, http). */
	struct transport *(*make)(const struct config *c, struct bot *bot, struct store *store,
				  struct http *http);
};

/* Every transport faqbot has, one row each; n_transport_kinds rows. */
extern const struct transport_kind transport_kinds[];
extern const size_t n_transport_kinds;
/* How many transports the configuration asks for. */
size_t transports_configured(const struct config *c);

/* ==== The event loop's side ==== */

const char *transport_name(const struct transport *t);
/* Starts whatever is due: start-up, processing of received messages, sends, polls. */
void transport_tick(struct transport *t, int64_t now);
/* Wall-clock ms at which tick has something to do, or -1 (network only). */
int64_t transport_next_wake(struct transport *t, int64_t now);
/* 1 when a fatal error stopped the transport (already logged). */
int transport_failed(const struct transport *t);
/* Sends in flight (a graceful stop waits for them). */
int transport_busy(const struct transport *t);
/* Stop polling: finish sends only. */
void transport_stop(struct transport *t);
/* Wall-clock ms of the last stored poll (health), 0 = never. */
int64_t transport_last_poll(const struct transport *t);
/* Queues text for the admin chat, if one is configured and the transport runs. */
void transport_notify_admin(struct transport *t, const char *text);

/* ==== The transport's side ==== */

/* The transport's own object (the self given to transport_new). */
void *transport_self(struct transport *t);
/* 1 once transport_running succeeded (and until a restart or a failure). */
int transport_running_now(const struct transport *t);
/* Start-up: the step answered, go on with the next one at once. */
void transport_start_next(struct transport *t);
/* Start-up: try this step again after a backoff (logged: start_retry). */
void transport_start_retry(struct transport *t, const char *step, long status, const char *error);
/* Start-up done: recovers sends cut short by a stop, then runs. */
void transport_running(struct transport *t);
/* Back to start-up from the first step (a lost access token). */
void transport_restart(struct transport *t);
/* Fatal: logs why (a sentence for the operator) and stops the transport. */
void transport_fail(struct transport *t, const char *why);

/* Poll: the answer and the new position were committed (seconds: how long
 * the request took); pumps. */
void transport_poll_stored(struct transport *t, double seconds);
/* Poll: the answer could not be stored; rolls back what is open, logs,
 * asks again after a backoff. */
void transport_poll_store_failed(struct transport *t, const char *note);
/* Poll: the request failed; server_wait_ms >= 0 is the server's own wait
 * (clamped by the caller), else a backoff.  Logged and counted. */
void transport_poll_failed(struct transport *t, long status, const char *errcode, const char *error,
			   int64_t server_wait_ms);
/* Poll: ask again at wall time `at` (an oversized answer shrank the next
 * request; the transport logged it). */
void transport_poll_again(struct transport *t, int64_t at);
/* The poll in flight ended without asking for the next one yet (its
 * callback is about to restart the transport or fail it).  A restart
 * alone leaves the poll in flight counted, so none starts beside it. */
void transport_poll_over(struct transport *t);

/* For tests and fuzzing: calls done(arg) with body as an HTTP 200 answer. */
void transport_feed(http_done_fn done, void *arg, const char *body, size_t len);

/* One commit: what the caller wrote, pending inbox rows, the next sends. */
void transport_pump(struct transport *t, int64_t now);
struct service *transport_service(struct transport *t);
struct store *transport_store(struct transport *t);
struct bot *transport_bot(struct transport *t);
struct http *transport_http(struct transport *t);

#endif
