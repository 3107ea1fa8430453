/*
 * util.h - allocation helpers and a string hash shared by every module.
 *
 * faqbot treats running out of memory as fatal: the x* helpers print one
 * line to stderr and abort instead of returning NULL, so callers never
 * carry half-built structures around.  Everything they return is owned by
 * the caller and released with free().
 *
 * Errors: the one convention of the pure core (text, typo, strmap, strbuf,
 * faq, index, match, bot).
 *   1. Out of memory is never an error path: the x* helpers above abort
 *      (as strmap does past 4 GiB of keys, far beyond any FAQ).
 *   2. A function that can fail says so by its return value, as its header
 *      states: NULL from a constructor (faq_parse, index_build, text_new),
 *      -1 from an operation (strbuf_add* past the buffer's cap, which then
 *      stays unchanged), -1 or 0 for "not found" / "not valid" look-ups.
 *   3. When the cause comes from something a person wrote (the FAQ file, its
 *      language, its wording), the sentence that explains it goes into a
 *      struct faq_diags the caller embeds and passes in (faq.h): one complete
 *      line per problem, naming the file and the place ("faq.json:12:5: ...",
 *      "faq.json: entries[3] (id \"x\"): ..."), errors and warnings counted,
 *      every problem collected rather than only the first.  The callee writes
 *      the sentence; the caller owns the list, decides where the lines go
 *      (`faqbot check` prints them, a reload logs them through log.h) and
 *      releases it with faq_diags_release.
 *   4. The core never prints, logs or exits: only main.c and the edges
 *      (log.h) turn a message into output.
 * The edges (config, store, http, metrics) still return 0 / -1 or NULL with
 * one sentence in a caller-owned buffer (char *err, size_t errlen), or one
 * line per problem appended to a caller-owned strbuf (config_load).  They
 * are being rewritten towards 0 / -1 and an optional error struct (first
 * error wins, keeping the remote API's own code and text).
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

/* Gives the heap pages freed since the last call back to the system
 * (glibc's malloc_trim; a no-op with other C libraries).  Called after a
 * large short-lived allocation such as loading an FAQ and building its
 * index, which otherwise stays counted in the process's private memory. */
void mem_trim(void);

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
