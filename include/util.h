/*
 * util.h - allocation helpers and a string hash shared by every module.
 *
 * faqbot treats running out of memory as fatal: the x* helpers print one
 * line to stderr and abort instead of returning NULL, so callers never
 * carry half-built structures around.  Everything they return is owned by
 * the caller and released with free().
 */
#ifndef FAQBOT_UTIL_H
#define FAQBOT_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows *arr (of *alloc elements of elem_size) so it holds at least need
 * elements; doubles so appends are amortised O(1). */
void xgrow(void *arr_ptr, size_t *alloc, size_t need, size_t elem_size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* 64-bit FNV-1a: fast and stable across runs and machines.  Only for
 * values that must never change (Matrix txn ids) or tables of trusted FAQ
 * vocabulary built once; never for tables keyed by what users send. */
uint64_t hash_bytes(const void *data, size_t len);

/* SipHash-1-3 of data under key (16 bytes): a keyed hash an attacker who
 * does not know the key cannot aim collisions at. */
uint64_t hash_siphash(const uint8_t key[16], const void *data, size_t len);
/* The process-wide table key: hash_keyed(data) = hash_siphash(seed, data).
 * Hash tables fed by chat text, chat ids and user ids use it (strmap does).
 * hash_seed sets it once, at start, from random bytes (main does); until
 * then it is a fixed key, so tools and tests are reproducible. */
void hash_seed(const uint8_t key[16]);
uint64_t hash_keyed(const void *data, size_t len);
/* The secret key of stored pseudonyms (chat ids in the unanswered table):
 * hash_private(data) = hash_siphash(private key, data), so a chat id cannot
 * be recovered from the database by trying every number.  main sets the
 * key from the state directory's hash.key file; until then it is a fixed
 * (public) key, for tests. */
void hash_set_private_key(const uint8_t key[16]);
uint64_t hash_private(const void *data, size_t len);
/* Fills buf with n random bytes from the kernel; 0, or -1 when it cannot. */
int random_bytes(void *buf, size_t n);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* Wall clock in milliseconds since the epoch (persisted times). */
int64_t wall_ms(void);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
