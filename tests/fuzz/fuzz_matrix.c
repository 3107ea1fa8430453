/* Fuzz target: arbitrary bytes as a Matrix /sync answer, handled by the
 * real transport on a temporary state directory (twice: the first sync
 * answers no history, the next ones do). */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "bot.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "matrix.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct store *st;
	static struct bot *b;
	if (!st) {
		static char dir[] = "/tmp/faqbot-fuzz-mx-XXXXXX";
		char err[512];
		log_set_level(LOG_ERROR + 1);
		st = store_open(mkdtemp(dir), err, sizeof(err));
		b = bot_new(fuzz_index(), NULL);
		if (!st)
			abort();
		store_kv_set(st, "matrix.next_batch", "s0");
	}
	struct http *h = http_new(NULL);
	struct mx_options o = { "http://127.0.0.1:9", "tok", NULL, NULL, '!', NULL, 1, 30, 1, 0, NULL,
				NULL, 10, 30, 300 };
	struct transport *t = mx_new(&o, b, st, h);
	mx_feed_sync(t, (const char *)data, size);
	http_free(h);
	t->free(t->self);
	log_clear_secrets();
	return 0;
}
