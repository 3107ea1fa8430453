/*
 * sender.c - the outbox send queue.  See sender.h.
 *
 * No head-of-line blocking: a chat that the transport's rate limiter holds
 * back is deferred in the store's queue (store_outbox_defer_chat) and the
 * next due chat is tried, so one busy group never stalls the others.
 *
 * Outcomes are kept in memory until they are committed: a send whose
 * outcome cannot be written (disk full, database locked) is neither left
 * "sending" for good nor sent again; the next pump writes it again.
 *
 * Group commit: answers are classified and written by the next pump, so
 * the answers of one loop turn share one commit (one fsync), and that
 * commit also marks the sends that go next.  The in-flight count drops
 * when an answer arrives, but the rows picked in its place are only marked
 * in the transaction that writes that answer's outcome: the rows "sending"
 * in the database never exceed max_in_flight.
 */
#include "sender.h"
#include "http.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define GIVE_UP_MS (24LL * 3600 * 1000)
#define MAX_PICK 64

struct sender {
	struct store *store;
	char *transport;
	int max_in_flight, in_flight, stopped;
	struct sender_ops ops;
	void *arg;
	struct send_ctx *live;          /* in flight */
	struct send_ctx *outcomes;      /* done, outcome not yet committed */
	size_t n_outcomes;
	struct send_ctx *picked[MAX_PICK];
	size_t n_picked;
	int64_t rate_wake, wake;        /* wake: cached, see sender_wake */
};

struct sender *sender_new(struct store *store, const char *transport, int max_in_flight,
			  const struct sender_ops *ops, void *arg)
{
	struct sender *s = xcalloc(1, sizeof(*s));
	s->store = store;
	s->transport = xstrdup(transport);
	s->max_in_flight = max_in_flight < MAX_PICK ? max_in_flight : MAX_PICK;
	s->ops = *ops;
	s->arg = arg;
	s->wake = 0; /* look at the outbox once at start */
	return s;
}

static void unlink_ctx(struct sender *s, struct send_ctx *x)
{
	if (s->live == x)
		s->live = x->next;
	if (x->prev)
		x->prev->next = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->next = x->prev = NULL;
}

static void ctx_free(struct send_ctx *x)
{
	outbox_row_release(&x->row);
	strbuf_release(&x->resp.body);
	free(x);
}

void sender_free(struct sender *s)
{
	if (!s)
		return;
	while (s->live) {
		struct send_ctx *x = s->live;
		unlink_ctx(s, x);
		ctx_free(x);
	}
	while (s->outcomes) {
		struct send_ctx *x = s->outcomes;
		s->outcomes = x->next;
		ctx_free(x);
	}
	for (size_t i = 0; i < s->n_picked; i++)
		ctx_free(s->picked[i]);
	free(s->transport);
	free(s);
}

void sender_retry_later(struct outbox_row *row, int64_t now, int64_t wait)
{
	row->state = OUT_PENDING;
	row->next_at = now + wait;
	if (now - row->created_at > GIVE_UP_MS) {
		row->state = OUT_FAILED;
		log_error("send_gave_up", "transport=%s chat=%s trigger=%s attempts=%d", row->transport,
			  log_q(row->chat), log_q(row->trigger), row->attempts);
	}
}

int64_t sender_backoff(const struct outbox_row *row)
{
	return (int64_t)http_backoff_ms((unsigned)(row->attempts > 0 ? row->attempts - 1 : 0));
}

int sender_record(struct sender *s)
{
	int rc = 0;
	/* oldest answer first (the list is newest first): a chat's state
	 * changes (a 429's park, a migration) apply in the order they came */
	struct send_ctx *last = s->outcomes;
	while (last && last->next)
		last = last->next;
	for (struct send_ctx *x = last; x; x = x->prev) {
		if (!x->answered)
			continue;
		x->answered = 0; /* classified once, even if this transaction fails */
		if (s->ops.outcome(s->arg, x) < 0)
			rc = -1;
		strbuf_release(&x->resp.body);
	}
	for (struct send_ctx *x = last; x; x = x->prev) {
		if (x->written)
			continue;
		if (store_outbox_set(s->store, &x->row) < 0)
			return -1; /* the transaction is refused; all are written again next time */
		x->written = 1;
	}
	return rc;
}

void sender_pick(struct sender *s, int64_t now)
{
	(void)sender_record(s); /* a failure refuses the transaction: the commit says so */
	int room = s->max_in_flight - s->in_flight - (int)s->n_picked;
	if (s->stopped || room <= 0)
		return;
	struct outbox_row rows[MAX_PICK];
	s->rate_wake = 0;
	/* a throttled chat is deferred in the queue, then the next due chat is
	 * asked for; the rounds bound the work of one pick */
	for (int round = 0; room > 0 && round < 8; round++) {
		size_t n = store_outbox_due(s->store, s->transport, now, rows, (size_t)room);
		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			int64_t wait = s->ops.throttle ? s->ops.throttle(s->arg, rows[i].chat, now) : 0;
			if (wait > 0) {
				if (!s->rate_wake || now + wait < s->rate_wake)
					s->rate_wake = now + wait;
				int rc = store_outbox_defer_chat(s->store, s->transport, rows[i].chat, now + wait);
				outbox_row_release(&rows[i]);
				if (rc < 0)
					round = 8; /* the transaction is refused anyway */
				continue;
			}
			struct send_ctx *x = xcalloc(1, sizeof(*x));
			x->arg = s->arg;
			x->row = rows[i];
			x->row.state = OUT_SENDING;
			x->row.attempts++;
			if (store_outbox_set(s->store, &x->row) < 0)
				round = 8;
			s->picked[s->n_picked++] = x;
			room--;
		}
	}
	if (!s->n_picked && s->in_flight < s->max_in_flight) {
		/* nothing due: when is the next one?  (an index lookup) */
		s->wake = store_outbox_next_time(s->store, s->transport);
		if (s->rate_wake && (s->wake < 0 || s->rate_wake < s->wake))
			s->wake = s->rate_wake;
	}
}

/* Keeps x's outcome to be written by the next sender_pick.  The list is
 * doubly linked, newest first. */
static void keep_outcome(struct sender *s, struct send_ctx *x)
{
	x->written = 0;
	x->prev = NULL;
	x->next = s->outcomes;
	if (s->outcomes)
		s->outcomes->prev = x;
	s->outcomes = x;
	s->n_outcomes++;
}

void sender_start(struct sender *s, int64_t now, int rollback)
{
	size_t n = s->n_picked;
	s->n_picked = 0;
	if (rollback) {
		for (size_t i = 0; i < n; i++)
			ctx_free(s->picked[i]);
		for (struct send_ctx *x = s->outcomes; x; x = x->next)
			x->written = 0;
		s->wake = now + 1000; /* try again soon: outcomes are still held */
		return;
	}
	/* the outcomes written by sender_pick are committed now */
	struct send_ctx **p = &s->outcomes;
	while (*p) {
		struct send_ctx *o = *p;
		if (!o->written) {
			p = &o->next;
			continue;
		}
		*p = o->next;
		if (o->next)
			o->next->prev = o->prev;
		s->n_outcomes--;
		ctx_free(o);
	}
	for (size_t i = 0; i < n; i++) {
		struct send_ctx *x = s->picked[i];
		x->next = s->live;
		if (s->live)
			s->live->prev = x;
		s->live = x;
		s->in_flight++;
		if (s->ops.send(s->arg, x) < 0) {
			s->in_flight--;
			unlink_ctx(s, x);
			sender_retry_later(&x->row, now, sender_backoff(&x->row));
			keep_outcome(s, x);
			s->wake = 0;
		}
	}
	if (s->n_outcomes && (s->wake < 0 || s->wake > now + 1000))
		s->wake = now + 1000;
}

void sender_done(struct sender *s, struct send_ctx *x)
{
	s->in_flight--;
	unlink_ctx(s, x);
	keep_outcome(s, x);
	s->wake = 0; /* something changed: look at the outbox again */
}

void sender_answered(struct sender *s, struct send_ctx *x, const struct http_response *r)
{
	strbuf_release(&x->resp.body);
	x->resp = *r;
	strbuf_init(&x->resp.body, 0);
	if (r->body.len)
		(void)strbuf_add(&x->resp.body, r->body.buf, r->body.len); /* no cap: 0 */
	x->answered = 1;
	sender_done(s, x);
}

size_t sender_unrecorded(const struct sender *s)
{
	return s->n_outcomes;
}

int sender_in_flight(const struct sender *s)
{
	return s->in_flight;
}

int64_t sender_wake(const struct sender *s)
{
	if (s->n_outcomes)
		return s->wake >= 0 ? s->wake : 0;
	return s->in_flight < s->max_in_flight && !s->stopped ? s->wake : -1;
}

int sender_ready(const struct sender *s, int64_t now)
{
	int64_t w = sender_wake(s);
	return w >= 0 && w <= now;
}

void sender_stop(struct sender *s)
{
	s->stopped = 1;
}
