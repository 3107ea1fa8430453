/*
 * sender.c - the outbox send queue.  See sender.h.
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

void sender_pick(struct sender *s, int64_t now)
{
	int room = s->max_in_flight - s->in_flight - (int)s->n_picked;
	if (s->stopped || room <= 0)
		return;
	struct outbox_row rows[MAX_PICK];
	size_t n = store_outbox_due(s->store, s->transport, now, rows, (size_t)room);
	s->rate_wake = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t wait = s->ops.throttle ? s->ops.throttle(s->arg, rows[i].chat, now) : 0;
		if (wait > 0) {
			if (!s->rate_wake || now + wait < s->rate_wake)
				s->rate_wake = now + wait;
			outbox_row_release(&rows[i]);
			continue;
		}
		struct send_ctx *x = xcalloc(1, sizeof(*x));
		x->arg = s->arg;
		x->row = rows[i];
		x->row.state = OUT_SENDING;
		x->row.attempts++;
		store_outbox_set(s->store, &x->row);
		s->picked[s->n_picked++] = x;
	}
	if (!s->n_picked && s->in_flight < s->max_in_flight) {
		/* nothing due: when is the next one? (scans the waiting rows, so
		 * it is computed here, not on every loop turn) */
		s->wake = store_outbox_next_time(s->store, s->transport);
		if (s->wake >= 0 && s->rate_wake > s->wake)
			s->wake = s->rate_wake;
	}
}

void sender_start(struct sender *s, int64_t now, int rollback)
{
	size_t n = s->n_picked;
	s->n_picked = 0;
	for (size_t i = 0; i < n; i++) {
		struct send_ctx *x = s->picked[i];
		if (rollback) {
			ctx_free(x);
			continue;
		}
		x->next = s->live;
		if (s->live)
			s->live->prev = x;
		s->live = x;
		s->in_flight++;
		if (s->ops.send(s->arg, x) < 0) {
			s->in_flight--;
			unlink_ctx(s, x);
			sender_retry_later(&x->row, now, sender_backoff(&x->row));
			store_begin(s->store);
			store_outbox_set(s->store, &x->row);
			store_commit(s->store);
			ctx_free(x);
		}
	}
	if (rollback)
		s->wake = now + 1000;
}

void sender_done(struct sender *s, struct send_ctx *x)
{
	s->in_flight--;
	unlink_ctx(s, x);
	ctx_free(x);
	s->wake = 0; /* something changed: look at the outbox again */
}

int sender_in_flight(const struct sender *s)
{
	return s->in_flight;
}

int64_t sender_wake(const struct sender *s)
{
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
