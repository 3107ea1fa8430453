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
#include "text.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* A slot: bits 63..32 hold the key hash's low 32 bits (never 0: 0 marks
 * an empty slot), bits 31..1 the source number, bit 0 whether the key is
 * the whole source (1) or one of its deletions (0). */
#define SLOT_CHECK(x) ((uint32_t)((x) >> 32))
#define SLOT_SRC(x) ((uint32_t)(x) >> 1)
#define SLOT_WHOLE(x) ((uint32_t)(x) & 1)

struct typo {
	struct strbuf str;      /* source strings, NUL-separated (while adding) */
	uint32_t *off, *id;
	size_t n, alloc;
	uint64_t *slots;        /* open addressing, linear probing */
	size_t mask;
	const char *s;          /* the source strings: str.buf, or borrowed */
	size_t s_len;
	int borrowed;           /* off, id, slots and s belong to the caller */
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

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static int eligible(const char *s, size_t len)
{
	return len >= TYPO_MIN_LEN && len <= TEXT_MAX_TOKEN && text_is_word(s);
}

struct typo *typo_new(void)
{
	struct typo *t = xcalloc(1, sizeof(*t));
	strbuf_init(&t->str, 0);
	return t;
}

void typo_free(struct typo *t)
{
	if (!t)
		return;
	strbuf_release(&t->str);
	if (t->borrowed) {
		free(t);
		return;
	}
	free(t->off);
	free(t->id);
	free(t->slots);
	free(t);
}

size_t typo_sources(const struct typo *t)
{
	return t->n;
}

void typo_add(struct typo *t, const char *s, uint32_t id)
{
	size_t len = strlen(s);
	if (t->borrowed || !eligible(s, len) || t->n >= (1u << 31) - 1)
		return;
	size_t a2 = t->alloc;
	xgrow(&t->off, &a2, t->n + 1, sizeof(uint32_t));
	xgrow(&t->id, &t->alloc, t->n + 1, sizeof(uint32_t));
	t->off[t->n] = (uint32_t)t->str.len;
	t->id[t->n] = id;
	strbuf_add(&t->str, s, len + 1);
	t->n++;
}

static uint32_t check_of(uint64_t h)
{
	uint32_t c = (uint32_t)h;
	return c ? c : 1;
}

static void insert(struct typo *t, uint64_t h, uint32_t src, int whole)
{
	size_t i = (size_t)(h >> 32) & t->mask;
	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = ((uint64_t)check_of(h) << 32) | ((uint64_t)src << 1) | (uint64_t)whole;
}

void typo_build(struct typo *t)
{
	char dels[TEXT_MAX_TOKEN + 1][TEXT_MAX_TOKEN + 1];
	size_t keys = 0;
	if (t->borrowed)
		return;
	t->s = t->str.buf;
	t->s_len = t->str.len + 1; /* with the strbuf's final NUL */
	for (size_t i = 0; i < t->n; i++)
		keys += 1 + utf8_chars(t->str.buf + t->off[i]);  /* itself + its deletions */
	/* at most half full: linear probing's clusters stay short (a miss
	 * inspects ~2.5 slots, against ~8.5 at three quarters full) */
	size_t size = 16;
	while (size / 2 < keys)
		size *= 2;
	t->slots = xcalloc(size, sizeof(uint64_t));
	t->mask = size - 1;
	for (size_t i = 0; i < t->n; i++) {
		const char *s = t->str.buf + t->off[i];
		size_t len = strlen(s);
		insert(t, hash_str(s, len), (uint32_t)i, 1);
		size_t k = deletions(s, len, dels);
		for (size_t j = 0; j < k; j++)
			if (j == 0 || strcmp(dels[j], dels[j - 1]))
				insert(t, hash_str(dels[j], strlen(dels[j])), (uint32_t)i, 0);
	}
}

static void add_id(uint32_t *out, size_t *n, size_t max, uint32_t id)
{
	for (size_t i = 0; i < *n; i++)
		if (out[i] == id)
			return;
	if (*n < max)
		out[(*n)++] = id;
}

/* 1 when a and b are at most one edit apart (byte-wise: equal, one byte
 * inserted, deleted or substituted, or two adjacent bytes swapped): what
 * text_edit_distance(a, alen, b, blen, 1) <= 1 says, in one pass instead
 * of its table (a probe verifies many candidates). */
static int within_one(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen > TEXT_MAX_TOKEN || blen > TEXT_MAX_TOKEN)
		return 0;
	if (alen < blen) {
		const char *t = a;
		a = b;
		b = t;
		size_t tl = alen;
		alen = blen;
		blen = tl;
	}
	size_t i = 0;
	while (i < blen && a[i] == b[i])
		i++;
	if (alen == blen + 1) /* a has one byte more: skip it */
		return !memcmp(a + i + 1, b + i, blen - i);
	if (alen != blen)
		return 0;
	if (i == alen)
		return 1;
	if (!memcmp(a + i + 1, b + i + 1, alen - i - 1))
		return 1; /* one substitution */
	return i + 1 < alen && a[i] == b[i + 1] && a[i + 1] == b[i] &&
	       !memcmp(a + i + 2, b + i + 2, alen - i - 2); /* one swap */
}

/* Sources whose whole string or one of whose deletions hashes to h (the
 * hash of a key; `want` says which: 1 whole, 0 deletion), verified
 * against q. */
static void probe(const struct typo *t, uint64_t h, int want, const char *q, size_t qlen,
		  uint32_t *out, size_t *n, size_t max)
{
	uint32_t check = check_of(h);
	for (size_t i = (size_t)(h >> 32) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		uint64_t x = t->slots[i];
		if (SLOT_CHECK(x) != check || (int)SLOT_WHOLE(x) != want)
			continue;
		const char *s = t->s + t->off[SLOT_SRC(x)];
		if (s[0] == q[0] && within_one(q, qlen, s, strlen(s)))
			add_id(out, n, max, t->id[SLOT_SRC(x)]);
	}
}

size_t typo_lookup(const struct typo *t, const char *q, uint32_t *out, size_t max)
{
	size_t qlen = strlen(q), n = 0;
	if (!t->slots || !eligible(q, qlen))
		return 0;
	char dels[TEXT_MAX_TOKEN + 1][TEXT_MAX_TOKEN + 1];
	uint64_t h[TEXT_MAX_TOKEN + 2];
	/* every key's hash first, and its slot asked of memory at once: the
	 * table is large, and the probes then wait for one miss, not one
	 * each (same probes, same order: the same result) */
	size_t k = deletions(q, qlen, dels);
	h[0] = hash_str(q, qlen);
	for (size_t j = 0; j < k; j++)
		h[j + 1] = j && !strcmp(dels[j], dels[j - 1]) ? 0 : hash_str(dels[j], strlen(dels[j]));
	for (size_t j = 0; j <= k; j++)
		if (h[j])
			__builtin_prefetch(&t->slots[(size_t)(h[j] >> 32) & t->mask]);
	probe(t, h[0], 0, q, qlen, out, &n, max);          /* q lacks a letter */
	for (size_t j = 0; j < k; j++) {
		if (j && !strcmp(dels[j], dels[j - 1]))
			continue;
		probe(t, h[j + 1], 1, q, qlen, out, &n, max);  /* q has a letter too many */
		probe(t, h[j + 1], 0, q, qlen, out, &n, max);  /* substitution or swap */
	}
	return n;
}

void typo_parts(const struct typo *t, struct typo_parts *p)
{
	p->str = t->s;
	p->str_len = t->slots ? t->s_len : 0;
	p->off = t->off;
	p->id = t->id;
	p->n = t->slots ? t->n : 0;
	p->slots = t->slots;
	p->n_slots = t->slots ? t->mask + 1 : 0;
}

struct typo *typo_from_parts(const struct typo_parts *p, uint32_t max_id)
{
	if (p->n_slots & (p->n_slots - 1))
		return NULL;
	if (p->n_slots) {
		if (!p->str_len || p->str[p->str_len - 1] != '\0')
			return NULL;
		for (size_t i = 0; i < p->n; i++)
			if (p->off[i] >= p->str_len || p->id[i] >= max_id)
				return NULL;
		/* branch-free: a pass over millions of slots at memory speed */
		size_t empty = 0, bad = 0;
		for (size_t i = 0; i < p->n_slots; i++) {
			uint64_t x = p->slots[i];
			empty += !x;
			bad |= (size_t)(x && SLOT_SRC(x) >= p->n);
		}
		if (bad || !empty) /* a probe must end */
			return NULL;
	}
	struct typo *t = xcalloc(1, sizeof(*t));
	strbuf_init(&t->str, 0);
	t->borrowed = 1;
	t->s = p->str;
	t->s_len = p->str_len;
	t->off = (uint32_t *)p->off;
	t->id = (uint32_t *)p->id;
	t->n = p->n;
	t->slots = p->n_slots ? (uint64_t *)p->slots : NULL;
	t->mask = p->n_slots ? p->n_slots - 1 : 0;
	return t;
}
