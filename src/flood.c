/*
 * flood.c - sliding-window question counter per user.  See flood.h.
 *
 * Times are the messages' own (when they were sent), not when faqbot reads
 * them: a backlog read at once after downtime is not a flood.  A sender
 * can forge its message times (a Matrix homeserver sets origin_server_ts),
 * so an old time is believed only while a backlog can exist: during the
 * first FLOOD_BACKLOG_MS after the first question this process saw, times
 * down to FLOOD_MAX_AGE_MS ago count; after that, a question counts no
 * earlier than FLOOD_SKEW_MS before it arrived (late federation, clocks),
 * so forged times spread far apart cannot slip a flood through.  A pause
 * runs from the arrival of the question that caused it.  The table
 * is bounded: when it holds FLOOD_MAX_KEYS users, it is rebuilt keeping the
 * users paused now (up to three quarters of the table) and the most
 * recently active ones, half the table at least, so a stream of new keys
 * cannot lift anyone's pause.  The map hashes with the process key
 * (strmap, util.h): keys are chosen by chat users.  A message counted
 * once (flood_check_once) gets the same verdict when it comes again: a
 * batch whose commit failed is handled again, and must not count twice.
 */
#include "flood.h"
#include "strmap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	char *key;
	int64_t *times;   /* ring of the last `max` question times */
	uint64_t *ids;    /* their messages (hash_keyed of the id; 0: none given) */
	size_t next;
	uint64_t notice_id; /* the message that drew the notice, or 0 */
	int64_t last;     /* latest question time */
	int64_t paused_until;
};

struct flood {
	long max;
	int64_t window, pause;
	struct strmap *keys;
	struct slot *slots;
	size_t n, alloc;
	int64_t first_now;  /* arrival of the first question counted, or 0 */
};

struct flood *flood_new(long max, long window_s, long pause_s)
{
	struct flood *f = xcalloc(1, sizeof(*f));
	f->max = max;
	f->window = window_s * 1000;
	f->pause = pause_s * 1000;
	f->keys = strmap_new(256);
	return f;
}

static void slot_release(struct slot *s)
{
	free(s->key);
	free(s->times);
	free(s->ids);
}

void flood_free(struct flood *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		slot_release(&f->slots[i]);
	strmap_free(f->keys);
	free(f->slots);
	free(f);
}

/* qsort has no context argument in C11: the time of the eviction travels
 * through this variable (single-threaded). */
static int64_t sort_now;

static int64_t rank(const struct slot *s)
{
	return s->paused_until > sort_now ? INT64_MAX : s->last;
}

/* Paused first, then the most recently active. */
static int cmp_slots(const void *a, const void *b)
{
	int64_t x = rank(a), y = rank(b);
	return (x < y) - (x > y);
}

/* Keeps the paused users and the most recently active ones: half the
 * table, so the O(n log n) rebuild happens once per FLOOD_MAX_KEYS / 2 new
 * users. */
static void evict(struct flood *f, int64_t now)
{
	sort_now = now;
	qsort(f->slots, f->n, sizeof(*f->slots), cmp_slots);
	size_t keep = FLOOD_MAX_KEYS / 2;
	while (keep < f->n && keep < FLOOD_MAX_KEYS * 3 / 4 && f->slots[keep].paused_until > now)
		keep++; /* no pause is lifted, unless 15,000 users are paused at once */
	for (size_t i = keep; i < f->n; i++)
		slot_release(&f->slots[i]);
	f->n = keep;
	strmap_free(f->keys);
	f->keys = strmap_new(f->n * 2);
	for (size_t i = 0; i < f->n; i++)
		strmap_put(f->keys, f->slots[i].key, strlen(f->slots[i].key), (uint32_t)i, NULL);
}

size_t flood_keys(const struct flood *f)
{
	return f->n;
}

enum flood_verdict flood_check(struct flood *f, const char *key, int64_t at, int64_t now)
{
	return flood_check_once(f, key, NULL, at, now);
}

/* The verdict a message already counted had: its notice again, or OK
 * (it was among the last max questions).  -1 when it was not counted. */
static int counted_before(const struct slot *s, long max, uint64_t id)
{
	if (!id)
		return -1;
	if (id == s->notice_id)
		return FLOOD_NOTICE;
	for (long k = 0; k < max; k++)
		if (s->ids[k] == id)
			return FLOOD_OK;
	return -1;
}

enum flood_verdict flood_check_once(struct flood *f, const char *key, const char *msg_id, int64_t at,
				    int64_t now)
{
	if (f->max <= 0)
		return FLOOD_OK;
	/* a message time from the future (a skewed clock, a forged timestamp)
	 * counts as now, one missing too; one older than FLOOD_MAX_AGE_MS
	 * counts as that old, so forged ancient times spread far apart cannot
	 * slip a flood through */
	if (at <= 0 || at > now)
		at = now;
	if (!f->first_now)
		f->first_now = now;
	int64_t oldest_believed = now - f->first_now < FLOOD_BACKLOG_MS ? now - FLOOD_MAX_AGE_MS
								       : now - FLOOD_SKEW_MS;
	if (at < oldest_believed)
		at = oldest_believed;
	uint32_t i;
	if (!strmap_get(f->keys, key, strlen(key), &i)) {
		if (f->n >= FLOOD_MAX_KEYS)
			evict(f, now);
		i = (uint32_t)f->n;
		strmap_put(f->keys, key, strlen(key), i, NULL);
		xgrow(&f->slots, &f->alloc, f->n + 1, sizeof(struct slot));
		struct slot *s = &f->slots[f->n++];
		memset(s, 0, sizeof(*s));
		s->key = xstrdup(key);
		s->times = xcalloc((size_t)f->max, sizeof(int64_t));
		s->ids = xcalloc((size_t)f->max, sizeof(uint64_t));
	}
	struct slot *s = &f->slots[i];
	/* the same message again (its batch was rolled back and is handled
	 * again) is not counted twice */
	uint64_t id = msg_id ? hash_keyed(msg_id, strlen(msg_id)) | 1 : 0;
	int again = counted_before(s, f->max, id);
	if (again >= 0)
		return (enum flood_verdict)again;
	if (at > s->last)
		s->last = at;
	if (now < s->paused_until)
		return FLOOD_IGNORE;
	/* the oldest of the last max questions: within the window = too many */
	int64_t oldest = s->times[s->next];
	s->times[s->next] = at;
	s->ids[s->next] = id;
	s->next = (s->next + 1) % (size_t)f->max;
	if (oldest && at - oldest < f->window && at >= oldest) {
		s->paused_until = now + f->pause;
		s->notice_id = id;
		return FLOOD_NOTICE;
	}
	return FLOOD_OK;
}
