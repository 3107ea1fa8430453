/*
 * transport.h - what the event loop knows of a chat transport (Telegram,
 * Matrix): a set of callbacks on an opaque object.  A transport starts its
 * own HTTP requests from tick() and handles their answers in callbacks run
 * by http_run; the loop only decides when to call tick() and how long it
 * may sleep.
 */
#ifndef FAQBOT_TRANSPORT_H
#define FAQBOT_TRANSPORT_H

#include <stdint.h>

#include "bot.h"

struct transport {
	const char *name;
	void *self;
	/* Start whatever is due: polls, processing of received messages, sends. */
	void (*tick)(void *self, int64_t now_ms);
	/* Wall-clock ms at which tick has something to do, or -1 (network only). */
	int64_t (*next_wake)(void *self, int64_t now_ms);
	/* 1 when a fatal error stopped the transport (already logged). */
	int (*failed)(void *self);
	/* Number of sends in flight (a graceful stop waits for them). */
	int (*busy)(void *self);
	/* Stop polling: finish sends only. */
	void (*stop)(void *self);
	/* Wall-clock ms of the last successful poll (health), 0 = never. */
	int64_t (*last_poll)(void *self);
	/* Send a text to the admin chat, if one is configured (reload errors). */
	void (*notify_admin)(void *self, const char *text);
	void (*free)(void *self);
};

#endif
