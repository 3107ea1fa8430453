/*
 * flood.c - sliding-window question counter per user.  See flood.h.
 */
#include "flood.h"
#include "strmap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	int64_t *times;   /* ring of the last `max` question times */
	size_t next;
	int64_t paused_until;
};

struct flood {
	long max;
	int64_t window, pause;
	struct strmap *keys;
	struct slot *slots;
	size_t n, alloc;
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

static void clear(struct flood *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->slots[i].times);
	f->n = 0;
	strmap_free(f->keys);
	f->keys = strmap_new(256);
}

void flood_free(struct flood *f)
{
	if (!f)
		return;
	clear(f);
	strmap_free(f->keys);
	free(f->slots);
	free(f);
}

enum flood_verdict flood_check(struct flood *f, const char *key, int64_t now)
{
	if (f->max <= 0)
		return FLOOD_OK;
	uint32_t i;
	if (!strmap_get(f->keys, key, strlen(key), &i)) {
		if (f->n >= FLOOD_MAX_KEYS)
			clear(f);
		i = (uint32_t)f->n;
		strmap_put(f->keys, key, strlen(key), i, NULL);
		xgrow(&f->slots, &f->alloc, f->n + 1, sizeof(struct slot));
		f->slots[f->n].times = xcalloc((size_t)f->max, sizeof(int64_t));
		f->slots[f->n].next = 0;
		f->slots[f->n].paused_until = 0;
		f->n++;
	}
	struct slot *s = &f->slots[i];
	if (now < s->paused_until)
		return FLOOD_IGNORE;
	/* the oldest of the last max questions: within the window = too many */
	int64_t oldest = s->times[s->next];
	s->times[s->next] = now;
	s->next = (s->next + 1) % (size_t)f->max;
	if (oldest && now - oldest < f->window) {
		s->paused_until = now + f->pause;
		return FLOOD_NOTICE;
	}
	return FLOOD_OK;
}
