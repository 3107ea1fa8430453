/*
 * flood.h - per-user flood limit: more than `max` questions in `window`
 * from one user in one chat gets one notice, then silence for `pause`.
 * Keys are "transport:chat:user"; memory is bounded (FLOOD_MAX_KEYS; then
 * the least recently active users are forgotten, keeping the paused ones
 * up to three quarters of the table).  Questions are counted at the time
 * they were sent (Telegram `date`, Matrix `origin_server_ts`), so a backlog
 * read after downtime is not a flood; since a sender can forge that time,
 * an old one is believed only in the first FLOOD_BACKLOG_MS after the first
 * question this process counted (when a backlog is read), and no more than
 * FLOOD_SKEW_MS before arrival after that.  A pause runs from arrival.
 */
#ifndef FAQBOT_FLOOD_H
#define FAQBOT_FLOOD_H

#include <stddef.h>
#include <stdint.h>

#define FLOOD_MAX_KEYS 20000
#define FLOOD_MAX_AGE_MS 86400000LL /* older message times count as this old */
#define FLOOD_BACKLOG_MS 600000LL   /* how long after the first question a backlog is read */
#define FLOOD_SKEW_MS 120000LL      /* after that: how early a message time may be */

enum flood_verdict { FLOOD_OK, FLOOD_NOTICE, FLOOD_IGNORE };

struct flood;

/* max 0 turns the limit off. */
struct flood *flood_new(long max, long window_s, long pause_s);
void flood_free(struct flood *f);
/* Counts a question of key sent at at_ms and arriving at now_ms (at_ms 0
 * or after now_ms counts as now_ms; an earlier one as said above). */
enum flood_verdict flood_check(struct flood *f, const char *key, int64_t at_ms, int64_t now_ms);
/* The same, for the message msg_id (borrowed; NULL: none): a message
 * already counted, among the user's last max, is not counted again and gets
 * its first verdict (OK, or NOTICE when it drew the notice), so a batch
 * handled again after a failed commit does not pause anyone. */
enum flood_verdict flood_check_once(struct flood *f, const char *key, const char *msg_id, int64_t at_ms,
				    int64_t now_ms);
/* Users currently tracked (for tests). */
size_t flood_keys(const struct flood *f);

#endif
