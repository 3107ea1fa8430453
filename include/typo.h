/*
 * typo.h - finds the strings one edit away from a word (SymSpell).
 *
 * Every source string (an FAQ word or stem) is stored with each of its
 * one-character deletions, as 64-bit hashes in a bucket array sorted by a
 * counting sort: building is a few sequential passes and a look-up touches
 * one or two cache lines, so a 10,000-entry FAQ costs tens of milliseconds
 * instead of the seconds a string-keyed hash map of deletions takes.  Hash
 * collisions only add candidates: each is verified by edit distance.
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
/* Adds a source string leading to id (a repeated string keeps its first id). */
void typo_add(struct typo *t, const char *s, uint32_t id);
void typo_build(struct typo *t);
/* Writes the ids of sources within one edit of q (without duplicates) to
 * out[0..max); returns how many. */
size_t typo_lookup(const struct typo *t, const char *q, uint32_t *out, size_t max);
size_t typo_sources(const struct typo *t);

#endif
