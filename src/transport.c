/*
 * transport.c - the skeleton every chat transport runs on.  See
 * transport.h: start-up phases, the poll's bookkeeping, the pump, the
 * sender wiring and the loop's callbacks, written once.
 */
#define _POSIX_C_SOURCE 200809L
#include "transport.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INBOX_PER_TICK 200       /* rows processed before yielding to the network */
#define STORE_RETRY_MS 1000      /* after a store error: wait before the next pump */

enum phase { PH_START, PH_RUN, PH_FAILED };

struct transport {
	struct transport_config c;
	char *name, *poll_event, *admin_chat;
	const struct transport_ops *ops;
	void *self;
	struct bot *bot;
	struct store *store;
	struct http *http;
	struct sender *sender;
	struct service *service;

	enum phase phase;
	int start_in_flight;
	int64_t start_after;
	unsigned start_fail;

	int polling, stopping;
	int64_t poll_after;
	int64_t pump_after;
	unsigned poll_fail;
	int64_t last_poll_ok;
	char labels[96];         /* transport="<name>" */
};

/* ==== Sends: the sender's hooks, each answer's prologue and epilogue ==== */

/* A send's answer: kept for the next pump (group commit: every answer of
 * this loop turn is classified and written in one transaction, with the
 * sends picked next).  The loop pumps at its next turn; once stopping it
 * ticks no more, so the answer is written at once. */
static void sent(void *arg, struct http_response *r)
{
	struct send_ctx *x = arg;
	struct transport *t = x->arg;
	sender_answered(t->sender, x, r);
	if (t->stopping)
		transport_pump(t, wall_ms());
}

/* The sender's outcome hook: the transport's sent hook classifies the
 * answer and writes what else it changes, inside the pump's transaction. */
static int sender_outcome(void *arg, struct send_ctx *x)
{
	struct transport *t = arg;
	if (t->ops->sent(t->self, &x->row, &x->resp, 1))
		return 0;
	log_warn("store_error", "transport=%s chat=%s trigger=%s note=%s", t->name, log_q(x->row.chat),
		 log_q(x->row.trigger),
		 log_q("what this outcome changes besides the reply itself was not saved; "
		       "the reply's outcome is kept and saved with the next commit"));
	return -1;
}

static int sender_send(void *arg, struct send_ctx *x)
{
	struct transport *t = arg;
	return t->ops->send(t->self, x, sent);
}

static int64_t sender_throttle(void *arg, const char *chat, int64_t now)
{
	struct transport *t = arg;
	return t->ops->throttle ? t->ops->throttle(t->self, chat, now) : 0;
}

static int service_queue(void *arg, const struct service_msg *m, const struct reply *r, const char *reply_to)
{
	struct transport *t = arg;
	return t->ops->queue(t->self, m, r, reply_to);
}

/* ==== Life ==== */

struct transport *transport_new(const struct transport_config *c, const struct transport_ops *ops,
				void *self, struct bot *bot, struct store *store, struct http *http)
{
	struct transport *t = xcalloc(1, sizeof(*t));
	t->c = *c;
	t->name = xstrdup(c->name);
	t->poll_event = xstrdup(c->poll_event ? c->poll_event : "poll");
	t->admin_chat = c->admin_chat && *c->admin_chat ? xstrdup(c->admin_chat) : NULL;
	t->ops = ops;
	t->self = self;
	t->bot = bot;
	t->store = store;
	t->http = http;
	snprintf(t->labels, sizeof(t->labels), "transport=\"%.60s\"", t->name);
	static const struct sender_ops sops = { sender_send, sender_throttle, sender_outcome };
	t->sender = sender_new(store, t->name, c->max_in_flight, &sops, t);
	static const struct service_ops vops = { service_queue };
	struct service_options so = c->service;
	so.transport = t->name;
	t->service = service_new(bot, store, &so, &vops, t);
	return t;
}

void transport_free(struct transport *t)
{
	if (!t)
		return;
	sender_free(t->sender);
	service_free(t->service);
	t->ops->free(t->self);
	free(t->name);
	free(t->poll_event);
	free(t->admin_chat);
	free(t);
}

const char *transport_name(const struct transport *t)
{
	return t->name;
}

struct service *transport_service(struct transport *t)
{
	return t->service;
}

struct store *transport_store(struct transport *t)
{
	return t->store;
}

struct bot *transport_bot(struct transport *t)
{
	return t->bot;
}

struct http *transport_http(struct transport *t)
{
	return t->http;
}

void *transport_self(struct transport *t)
{
	return t->self;
}

int transport_running_now(const struct transport *t)
{
	return t->phase == PH_RUN;
}

/* ==== Start-up ==== */

void transport_start_next(struct transport *t)
{
	t->start_in_flight = 0;
	t->start_fail = 0;
	t->start_after = 0;
}

void transport_start_retry(struct transport *t, const char *step, long status, const char *error)
{
	t->start_in_flight = 0;
	t->start_after = wall_ms() + (int64_t)http_backoff_ms(t->start_fail++);
	log_warn("start_retry", "transport=%s step=%s status=%ld error=%s", t->name, step, status,
		 log_q(error));
}

void transport_running(struct transport *t)
{
	t->start_in_flight = 0;
	int n = -1;
	if (store_begin(t->store) == 0) {
		n = store_outbox_recover(t->store, t->name);
		if (store_commit(t->store) < 0)
			n = -1;
	}
	if (n < 0) {
		transport_start_retry(t, "start", 0, "the state database cannot be written (see store_error)");
		return;
	}
	if (n > 0 && t->c.idempotent_sends)
		log_info("resend_interrupted", "transport=%s rows=%d note=%s", t->name, n,
			 log_q("same idempotency key: the server deduplicates"));
	else if (n > 0)
		log_warn("ambiguous_resend", "transport=%s rows=%d reason=%s", t->name, n,
			 log_q("sends interrupted by a stop; sending them again"));
	t->phase = PH_RUN;
	t->start_fail = 0;
}

void transport_restart(struct transport *t)
{
	if (t->phase == PH_FAILED)
		return;
	t->phase = PH_START;
	t->start_in_flight = 0;
	t->start_after = 0;
	/* t->polling stays: a restart noticed by a send leaves a long poll in
	 * flight, and a second one must not start beside it (its callback
	 * ends it: transport_poll_over or transport_poll_again) */
}

void transport_poll_over(struct transport *t)
{
	t->polling = 0;
}

void transport_fail(struct transport *t, const char *why)
{
	t->phase = PH_FAILED;
	t->start_in_flight = 0;
	log_error("fatal", "transport=%s error=%s", t->name, log_q(why));
	/* the loop stops at once: the answers kept for the next pump are
	 * written now (no new send starts), or by the pump running this */
	sender_stop(t->sender);
	if (!store_in_transaction(t->store) && sender_unrecorded(t->sender))
		transport_pump(t, wall_ms());
}

/* ==== Poll ==== */

void transport_poll_stored(struct transport *t, double seconds)
{
	int64_t now = wall_ms();
	t->polling = 0;
	t->last_poll_ok = now;
	t->poll_fail = 0;
	metrics_inc("faqbot_polls_total", t->labels);
	metrics_add("faqbot_poll_seconds_total", t->labels, seconds);
	transport_pump(t, now);
}

void transport_poll_store_failed(struct transport *t, const char *note)
{
	t->polling = 0;
	if (store_in_transaction(t->store))
		store_rollback(t->store);
	uint64_t wait = http_backoff_ms(t->poll_fail++);
	t->poll_after = wall_ms() + (int64_t)wait;
	log_error("store_error", "transport=%s retry_in_ms=%llu note=%s", t->name, (unsigned long long)wait,
		  log_q(note));
}

void transport_poll_failed(struct transport *t, long status, const char *errcode, const char *error,
			   int64_t server_wait_ms)
{
	t->polling = 0;
	uint64_t wait = server_wait_ms >= 0 ? (uint64_t)server_wait_ms : http_backoff_ms(t->poll_fail++);
	t->poll_after = wall_ms() + (int64_t)wait;
	char labels[160];
	snprintf(labels, sizeof(labels), "%s,kind=\"poll\"", t->labels);
	metrics_inc("faqbot_errors_total", labels);
	char event[64];
	snprintf(event, sizeof(event), "%s_failed", t->poll_event);
	log_warn(event, "transport=%s status=%ld errcode=%s error=%s retry_in_ms=%llu", t->name, status,
		 log_q(errcode && *errcode ? errcode : "-"), log_q(error), (unsigned long long)wait);
}

void transport_poll_again(struct transport *t, int64_t at)
{
	t->polling = 0;
	t->poll_after = at;
}

static void poll_start(struct transport *t, int64_t now)
{
	if (t->ops->poll(t->self) == 0)
		t->polling = 1;
	else
		t->poll_after = now + (int64_t)http_backoff_ms(t->poll_fail++);
}

/* ==== Processing and the pump ==== */

/* Turns pending inbox rows into outbox rows (inside the caller's
 * transaction: a crash before its commit replays the whole batch, and the
 * ledger keeps the replay exact). */
static void process_inbox(struct transport *t)
{
	for (int i = 0; i < INBOX_PER_TICK; i++) {
		struct inbox_row row;
		if (store_inbox_next(t->store, t->name, &row) != 1)
			break;
		int rc = t->ops->row(t->self, &row);
		if (rc == 0)
			rc = store_inbox_done(t->store, row.id);
		inbox_row_release(&row);
		if (rc < 0)
			break; /* the transaction is refused: the rows are handled again */
	}
}

/* One step of the pipeline, as one commit: whatever the caller wrote in the
 * open transaction (a polled batch and its position, a send's outcome), the
 * replies to pending inbox rows with their ledger entries, and the "sending"
 * mark of the rows that go out next.  Opens the transaction if the caller
 * did not. */
void transport_pump(struct transport *t, int64_t now)
{
	if (!store_in_transaction(t->store) && store_begin(t->store) < 0) {
		log_error("store_error", "transport=%s note=%s", t->name,
			  log_q("cannot write the state database; will retry in a second"));
		t->pump_after = now + STORE_RETRY_MS;
		sender_start(t->sender, now, 1);
		return;
	}
	/* the answers of sends first: a chat's new state (parked, migrated,
	 * forbidden) is known to the replies queued after them */
	(void)sender_record(t->sender); /* a failure refuses the transaction */
	if (t->phase == PH_RUN)
		process_inbox(t);
	sender_pick(t->sender, now);
	int failed = store_commit(t->store) < 0; /* rolls back when it fails */
	if (failed) {
		t->pump_after = now + STORE_RETRY_MS;
		log_error("store_error", "transport=%s note=%s", t->name, log_q("could not commit; will retry"));
	}
	sender_start(t->sender, now, failed);
}

/* ==== The loop's callbacks ==== */

void transport_tick(struct transport *t, int64_t now)
{
	if (t->phase == PH_FAILED)
		return;
	if (t->phase == PH_START) {
		if (t->start_in_flight || now < t->start_after)
			return;
		int rc = t->ops->start(t->self);
		if (rc == 1)
			t->start_in_flight = 1;
		else if (rc < 0)
			transport_fail(t, "cannot reach the chat server (see the http_error line)");
		return;
	}
	if ((now >= t->pump_after && store_inbox_pending(t->store, t->name) > 0) || sender_ready(t->sender, now))
		transport_pump(t, now);
	if (!t->polling && !t->stopping && now >= t->poll_after && t->phase == PH_RUN)
		poll_start(t, now);
}

int64_t transport_next_wake(struct transport *t, int64_t now)
{
	if (t->phase == PH_FAILED)
		return -1;
	if (t->phase == PH_START)
		return t->start_in_flight ? -1 : t->start_after;
	if (store_inbox_pending(t->store, t->name) > 0)
		return now > t->pump_after ? now : t->pump_after;
	int64_t w = !t->polling && !t->stopping ? t->poll_after : -1;
	int64_t o = sender_wake(t->sender);
	if (o >= 0 && (w < 0 || o < w))
		w = o;
	return w;
}

int transport_failed(const struct transport *t)
{
	return t->phase == PH_FAILED;
}

int transport_busy(const struct transport *t)
{
	return sender_in_flight(t->sender);
}

void transport_stop(struct transport *t)
{
	t->stopping = 1;
	sender_stop(t->sender);
	/* the loop ticks no more: answers kept for the next pump are written
	 * now (those still to come are written as they arrive, see sent) */
	if (!store_in_transaction(t->store) && sender_unrecorded(t->sender))
		transport_pump(t, wall_ms());
}

int64_t transport_last_poll(const struct transport *t)
{
	return t->last_poll_ok;
}

void transport_notify_admin(struct transport *t, const char *text)
{
	if (!t->admin_chat || t->phase != PH_RUN)
		return;
	char trigger[64];
	snprintf(trigger, sizeof(trigger), "admin:%lld", (long long)wall_ms());
	struct reply r;
	memset(&r, 0, sizeof(r));
	r.kind = REPLY_HELP;
	r.text = (char *)text;
	struct service_msg m = { { text, strlen(text), CHAT_PRIVATE, 1, t->admin_chat, '/' }, NULL, trigger, 0,
				 NULL, NULL, NULL, NULL };
	if (store_begin(t->store) < 0)
		return; /* logged; the admin is told in the log only */
	if (t->ops->queue(t->self, &m, &r, NULL) < 0)
		store_rollback(t->store);
	transport_pump(t, wall_ms());
}

void transport_feed(http_done_fn done, void *arg, const char *body, size_t len)
{
	struct http_response r;
	memset(&r, 0, sizeof(r));
	r.status = 200;
	r.retry_after_s = -1;
	strbuf_init(&r.body, 0);
	strbuf_add(&r.body, body, len);
	done(arg, &r);
	strbuf_release(&r.body);
}
