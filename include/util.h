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

/* 64-bit FNV-1a: fast, stable across runs (no per-process seed needed:
 * the tables it feeds hold trusted FAQ vocabulary, not attacker keys). */
uint64_t hash_bytes(const void *data, size_t len);

/* Gives the heap pages freed since the last call back to the system
 * (glibc's malloc_trim; a no-op with other C libraries).  Called after a
 * large short-lived allocation such as loading an FAQ and building its
 * index, which otherwise stays counted in the process's private memory. */
void mem_trim(void);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* Wall clock in milliseconds since the epoch (persisted times). */
int64_t wall_ms(void);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
