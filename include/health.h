/*
 * health.h - is the running daemon alive and in touch with its chat
 * servers?  The event loop rewrites STATE_DIR/heartbeat.json every few
 * seconds (atomically: temporary file + rename) with its pid and, per
 * transport, the time of the last successful poll; `faqbot health` reads it.
 */
#ifndef FAQBOT_HEALTH_H
#define FAQBOT_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"
#include "transport.h"

#define HEALTH_FILE "heartbeat.json"
#define HEALTH_EVERY_MS 2000

/* Writes the heartbeat; 0 or -1 (logged). */
int health_write(const char *state_dir, struct transport **tr, size_t n);
/* 0 when healthy; otherwise a sentence in out and -1.  out also gets the
 * healthy summary, one line per transport, except when the process is gone
 * (then only "not running": its last polls would read as healthy). */
int health_check(const char *state_dir, long max_age_s, struct strbuf *out);

#endif
