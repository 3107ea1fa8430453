/*
 * strmap.h - a string -> 32-bit value hash map (open addressing).
 *
 * Used for the stopword set, the term vocabulary, FAQ id lookup and the
 * typo index.  Keys are copied into one arena owned by the map, so inserting
 * 200,000 terms costs a handful of allocations, not 200,000.
 *
 * Ownership: strmap_new returns a map the caller frees with strmap_free
 * (NULL accepted).  Key pointers returned by strmap_key are borrowed and
 * valid until the next insert or the map's free.
 */
#ifndef FAQBOT_STRMAP_H
#define FAQBOT_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap;

struct strmap *strmap_new(size_t expected);
void strmap_free(struct strmap *m);

/* Returns 1 and sets *value when key is present, else 0. */
int strmap_get(const struct strmap *m, const char *key, size_t len, uint32_t *value);
/* The hash strmap_get computes for key (the same for every map of the
 * process), and strmap_get with it given: one key looked up in several
 * maps costs one hash. */
uint64_t strmap_hash(const char *key, size_t len);
int strmap_get_hashed(const struct strmap *m, const char *key, size_t len, uint64_t h,
		      uint32_t *value);
/* Inserts key -> value unless present.  Returns the value now stored for
 * key (the old one when it was present); *added tells which (may be NULL). */
uint32_t strmap_put(struct strmap *m, const char *key, size_t len, uint32_t value, int *added);
size_t strmap_count(const struct strmap *m);
/* Calls fn(key, value, arg) for every entry, in insertion order; fn must
 * not insert into the map. */
void strmap_foreach(const struct strmap *m, void (*fn)(const char *key, uint32_t value, void *arg),
		    void *arg);
/* Bytes used by the map (tables and key arena), for the benchmark. */
size_t strmap_bytes(const struct strmap *m);

#endif
