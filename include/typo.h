/*
 * typo.h - finds the strings one edit away from a word (SymSpell).
 *
 * Every source string (an FAQ word or stem) and each of its one-character
 * deletions is stored as a hash in one open-addressing table of 64-bit
 * slots (no key strings), so a probe is about one cache miss, and building
 * it for a 10,000-entry FAQ is one pass.  Hash collisions only add
 * candidates: each is verified by a real edit distance.
 *
 * Matches follow how people mistype: one insertion, deletion, substitution
 * or swap of adjacent letters, never on the first letter, and only for
 * strings of TYPO_MIN_LEN bytes or more.
 *
 * Ownership: typo_new returns a handle freed with typo_free; typo_add
 * copies the string.  Add every source, then call typo_build once; look-ups
 * before typo_build find nothing.
 */
#ifndef FAQBOT_TYPO_H
#define FAQBOT_TYPO_H

#include <stddef.h>
#include <stdint.h>

#define TYPO_MIN_LEN 5

struct typo;

struct typo *typo_new(void);
void typo_free(struct typo *t);
/* Adds a source string leading to id. */
void typo_add(struct typo *t, const char *s, uint32_t id);
void typo_build(struct typo *t);
/* Writes the ids of sources within one edit of q (without duplicates) to
 * out[0..max); returns how many. */
size_t typo_lookup(const struct typo *t, const char *q, uint32_t *out, size_t max);
size_t typo_sources(const struct typo *t);

/* The built tables, to save them (index.c's cached image): borrowed from
 * t.  All counts are 0 before typo_build. */
struct typo_parts {
	const char *str;        /* source strings, NUL-separated */
	size_t str_len;         /* bytes, the last NUL included */
	const uint32_t *off, *id;
	size_t n;               /* sources */
	const uint64_t *slots;
	size_t n_slots;         /* a power of two, or 0 */
};
void typo_parts(const struct typo *t, struct typo_parts *p);
/* A built typo index over tables saved by typo_parts, borrowed (they must
 * outlive it; typo_free frees only the handle).  NULL when they are not
 * consistent (an offset outside the strings, an id >= max_id, a slot naming
 * no source, a table with no empty slot): a damaged file never leads to
 * reading outside it or to an endless probe. */
struct typo *typo_from_parts(const struct typo_parts *p, uint32_t max_id);

#endif
