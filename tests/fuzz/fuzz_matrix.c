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
	struct store *st;
	struct bot *b;
	fuzz_state("mx", &st, &b);
	struct strbuf v = STRBUF_INIT;
	if (store_kv_get(st, "matrix.next_batch", &v) != 1 && /* histories are answered */
	    store_kv_set(st, "matrix.next_batch", "s0") < 0)
		abort();
	strbuf_release(&v);
	struct http *h = http_new(NULL);
	struct mx_options o = { "http://127.0.0.1:9", "tok", NULL, NULL, '!', NULL, 1, 30, 1, 0, NULL,
				NULL, 10, 30, 300 };
	struct transport *t = mx_new(&o, b, st, h);
	mx_feed_sync(t, (const char *)data, size);
	http_free(h);
	transport_free(t);
	log_clear_secrets();
	return 0;
}
