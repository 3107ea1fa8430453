/*
 * typo.c - one-edit look-up by deletion neighbourhoods.  See typo.h.
 *
 * Why deletions: two strings are within one edit (insertion, deletion,
 * substitution, adjacent swap) only if one equals the other, or one equals
 * a deletion of the other, or they share a deletion.  So a look-up checks
 * q and its deletions against the sources and their deletions, then
 * verifies each candidate with a real edit distance.
 */
#include "typo.h"
#include "strbuf.h"
#include "strmap.h"
#include "text.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct item {
	uint32_t check; /* low 32 bits of the deletion's hash */
	uint32_t src;
};

struct typo {
	struct strmap *src_map; /* source string -> source number */
	struct strbuf str;      /* source strings, NUL-separated */
	uint32_t *off, *id;
	size_t n, alloc;
	unsigned bits;          /* buckets = 1 << bits, chosen by the high hash bits */
	uint32_t *start;        /* bucket b holds items [start[b], start[b+1]) */
	struct item *items;
	size_t n_items;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_str(const char *s, size_t len)
{
	return mix(hash_bytes(s, len));
}

static int has_letter(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || *s == '.'))
			return 1;
	return 0;
}

/* Writes s with each character (not byte) deleted; returns the count. */
static size_t deletions(const char *s, size_t len, char out[][TEXT_MAX_TOKEN + 1])
{
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t cl = 1;
		while (i + cl < len && ((unsigned char)s[i + cl] & 0xC0) == 0x80)
			cl++;
		memcpy(out[n], s, i);
		memcpy(out[n] + i, s + i + cl, len - i - cl);
		out[n][len - cl] = '\0';
		n++;
		i += cl;
	}
	return n;
}

static int eligible(const char *s, size_t len)
{
	return len >= TYPO_MIN_LEN && len <= TEXT_MAX_TOKEN && has_letter(s);
}

struct typo *typo_new(void)
{
	struct typo *t = xcalloc(1, sizeof(*t));
	t->src_map = strmap_new(1024);
	strbuf_init(&t->str, 0);
	return t;
}

void typo_free(struct typo *t)
{
	if (!t)
		return;
	strmap_free(t->src_map);
	strbuf_release(&t->str);
	free(t->off);
	free(t->id);
	free(t->start);
	free(t->items);
	free(t);
}

size_t typo_sources(const struct typo *t)
{
	return t->n;
}

void typo_add(struct typo *t, const char *s, uint32_t id)
{
	size_t len = strlen(s);
	if (!eligible(s, len))
		return;
	int added;
	strmap_put(t->src_map, s, len, (uint32_t)t->n, &added);
	if (!added)
		return;
	size_t a2 = t->alloc;
	xgrow(&t->off, &a2, t->n + 1, sizeof(uint32_t));
	xgrow(&t->id, &t->alloc, t->n + 1, sizeof(uint32_t));
	t->off[t->n] = (uint32_t)t->str.len;
	t->id[t->n] = id;
	strbuf_add(&t->str, s, len + 1);
	t->n++;
}

void typo_build(struct typo *t)
{
	char dels[TEXT_MAX_TOKEN + 1][TEXT_MAX_TOKEN + 1];
	/* pass 1: every deletion's hash, in source order */
	size_t cap = 0, n = 0;
	uint64_t *h = NULL;
	uint32_t *src = NULL;
	size_t cap2 = 0;
	for (size_t i = 0; i < t->n; i++) {
		const char *s = t->str.buf + t->off[i];
		size_t k = deletions(s, strlen(s), dels);
		xgrow(&h, &cap, n + k, sizeof(uint64_t));
		xgrow(&src, &cap2, n + k, sizeof(uint32_t));
		for (size_t j = 0; j < k; j++) {
			h[n] = hash_str(dels[j], strlen(dels[j]));
			src[n++] = (uint32_t)i;
		}
	}
	/* pass 2: counting sort into buckets by the high bits */
	t->bits = 4;
	while (t->bits < 24 && ((size_t)1 << t->bits) < n)
		t->bits++;
	size_t nb = (size_t)1 << t->bits;
	t->start = xcalloc(nb + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		t->start[(h[i] >> (64 - t->bits)) + 1]++;
	for (size_t b = 0; b < nb; b++)
		t->start[b + 1] += t->start[b];
	uint32_t *fill = xmalloc((nb + 1) * sizeof(uint32_t));
	memcpy(fill, t->start, (nb + 1) * sizeof(uint32_t));
	t->items = xmalloc((n + 1) * sizeof(struct item));
	for (size_t i = 0; i < n; i++) {
		struct item *it = &t->items[fill[h[i] >> (64 - t->bits)]++];
		it->check = (uint32_t)h[i];
		it->src = src[i];
	}
	t->n_items = n;
	free(fill);
	free(h);
	free(src);
}

static void add_id(uint32_t *out, size_t *n, size_t max, uint32_t id)
{
	for (size_t i = 0; i < *n; i++)
		if (out[i] == id)
			return;
	if (*n < max)
		out[(*n)++] = id;
}

/* Sources having a deletion that hashes like key, verified against q. */
static void probe(const struct typo *t, const char *key, size_t klen, const char *q, size_t qlen,
		  uint32_t *out, size_t *n, size_t max)
{
	if (!t->start)
		return;
	uint64_t h = hash_str(key, klen);
	size_t b = (size_t)(h >> (64 - t->bits));
	for (uint32_t i = t->start[b]; i < t->start[b + 1]; i++) {
		if (t->items[i].check != (uint32_t)h)
			continue;
		const char *s = t->str.buf + t->off[t->items[i].src];
		if (s[0] == q[0] && text_edit_distance(q, qlen, s, strlen(s), 1) <= 1)
			add_id(out, n, max, t->id[t->items[i].src]);
	}
}

size_t typo_lookup(const struct typo *t, const char *q, uint32_t *out, size_t max)
{
	size_t qlen = strlen(q), n = 0;
	if (!eligible(q, qlen))
		return 0;
	char dels[TEXT_MAX_TOKEN + 1][TEXT_MAX_TOKEN + 1];
	probe(t, q, qlen, q, qlen, out, &n, max);            /* q lacks a letter */
	size_t k = deletions(q, qlen, dels);
	for (size_t j = 0; j < k; j++) {
		size_t dl = strlen(dels[j]);
		uint32_t s;
		if (dels[j][0] == q[0] && strmap_get(t->src_map, dels[j], dl, &s))
			add_id(out, &n, max, t->id[s]);            /* q has a letter too many */
		probe(t, dels[j], dl, q, qlen, out, &n, max);   /* substitution or swap */
	}
	return n;
}
