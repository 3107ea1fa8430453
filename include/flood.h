/*
 * flood.h - per-user flood limit: more than `max` questions in `window`
 * from one user in one chat gets one notice, then silence for `pause`.
 * Keys are "transport:chat:user"; memory is bounded (FLOOD_MAX_KEYS, then
 * the table starts afresh).
 */
#ifndef FAQBOT_FLOOD_H
#define FAQBOT_FLOOD_H

#include <stdint.h>

#define FLOOD_MAX_KEYS 20000

enum flood_verdict { FLOOD_OK, FLOOD_NOTICE, FLOOD_IGNORE };

struct flood;

/* max 0 turns the limit off. */
struct flood *flood_new(long max, long window_s, long pause_s);
void flood_free(struct flood *f);
enum flood_verdict flood_check(struct flood *f, const char *key, int64_t now_ms);

#endif
