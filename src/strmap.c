/*
 * strmap.c - open-addressing hash map from byte strings to uint32 values.
 *
 * Linear probing over a power-of-two table kept at most 70% full; each slot
 * keeps the full 64-bit hash so most mismatches are rejected without
 * touching the key arena.  Keys live back to back (NUL-terminated) in one
 * growable arena and slots refer to them by offset, so growing the arena
 * never invalidates a slot.
 */
#include "strmap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	uint64_t hash;   /* 0 = empty slot (real hashes are forced non-zero) */
	uint32_t off;    /* key offset in the arena */
	uint32_t len;
	uint32_t value;
};

struct strmap {
	struct slot *slots;
	size_t mask;     /* table size - 1 */
	size_t count;
	char *arena;
	size_t arena_len, arena_alloc;
};

/* SipHash-1-3 under the process-wide key (util.h): some maps are keyed
 * by what chat users send (the stem cache, flood and rate buckets), and an
 * unkeyed hash would let them aim every key at one probe chain. */
static uint64_t key_hash(const char *key, size_t len)
{
	uint64_t h = hash_keyed(key, len);
	return h ? h : 1;
}

struct strmap *strmap_new(size_t expected)
{
	struct strmap *m = xcalloc(1, sizeof(*m));
	size_t n = 16;
	while (n * 7 / 10 < expected)
		n *= 2;
	m->slots = xcalloc(n, sizeof(struct slot));
	m->mask = n - 1;
	return m;
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m->arena);
	free(m);
}

static struct slot *find(const struct strmap *m, const char *key, size_t len, uint64_t h)
{
	size_t i = (size_t)h & m->mask;
	for (;;) {
		struct slot *s = &m->slots[i];
		if (!s->hash)
			return s;
		if (s->hash == h && s->len == len && !memcmp(m->arena + s->off, key, len))
			return s;
		i = (i + 1) & m->mask;
	}
}

uint64_t strmap_hash(const char *key, size_t len)
{
	return key_hash(key, len);
}

int strmap_get_hashed(const struct strmap *m, const char *key, size_t len, uint64_t h,
		      uint32_t *value)
{
	const struct slot *s = find(m, key, len, h);
	if (!s->hash)
		return 0;
	if (value)
		*value = s->value;
	return 1;
}

int strmap_get(const struct strmap *m, const char *key, size_t len, uint32_t *value)
{
	const struct slot *s = find(m, key, len, key_hash(key, len));
	if (!s->hash)
		return 0;
	if (value)
		*value = s->value;
	return 1;
}

static void rehash(struct strmap *m)
{
	size_t old_n = m->mask + 1, n = old_n * 2;
	struct slot *old = m->slots;
	m->slots = xcalloc(n, sizeof(struct slot));
	m->mask = n - 1;
	for (size_t i = 0; i < old_n; i++) {
		if (!old[i].hash)
			continue;
		size_t j = (size_t)old[i].hash & m->mask;
		while (m->slots[j].hash)
			j = (j + 1) & m->mask;
		m->slots[j] = old[i];
	}
	free(old);
}

uint32_t strmap_put(struct strmap *m, const char *key, size_t len, uint32_t value, int *added)
{
	uint64_t h = key_hash(key, len);
	struct slot *s = find(m, key, len, h);
	if (s->hash) {
		if (added)
			*added = 0;
		return s->value;
	}
	if (m->arena_len + len + 1 > UINT32_MAX || len > UINT32_MAX)
		abort(); /* 4 GiB of keys: far beyond any FAQ */
	xgrow(&m->arena, &m->arena_alloc, m->arena_len + len + 1, 1);
	memcpy(m->arena + m->arena_len, key, len);
	m->arena[m->arena_len + len] = '\0';
	s->hash = h;
	s->off = (uint32_t)m->arena_len;
	s->len = (uint32_t)len;
	s->value = value;
	m->arena_len += len + 1;
	m->count++;
	if (m->count * 10 > (m->mask + 1) * 7)
		rehash(m);
	if (added)
		*added = 1;
	return value;
}

static int by_offset(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Slot indexes sorted by key offset, which is insertion order: what is
 * built from a map does not change from run to run, whatever the hash key.
 * O(n log n), for the few walks made while an index is built.  Each entry
 * packs (offset, slot index) so one sort orders both. */
void strmap_foreach(const struct strmap *m, void (*fn)(const char *key, uint32_t value, void *arg),
		    void *arg)
{
	uint32_t(*order)[2] = xmalloc((m->count + 1) * 2 * sizeof(uint32_t));
	size_t n = 0;
	for (size_t i = 0; i <= m->mask; i++)
		if (m->slots[i].hash) {
			order[n][0] = m->slots[i].off;
			order[n][1] = (uint32_t)i;
			n++;
		}
	qsort(order, n, 2 * sizeof(uint32_t), by_offset);
	for (size_t i = 0; i < n; i++) {
		const struct slot *s = &m->slots[order[i][1]];
		fn(m->arena + s->off, s->value, arg);
	}
	free(order);
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

size_t strmap_bytes(const struct strmap *m)
{
	return (m->mask + 1) * sizeof(struct slot) + m->arena_alloc + sizeof(*m);
}
