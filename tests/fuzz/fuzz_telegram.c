/* Fuzz target: arbitrary bytes as a Telegram getUpdates answer, handled by
 * the real transport on a temporary state directory. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "bot.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "telegram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *st;
	struct bot *b;
	fuzz_state("tg", &st, &b);
	struct http *h = http_new(NULL);
	struct tg_options o = { "1:fuzz", "http://127.0.0.1:9", 0, 0, 60, 300, 0, 1, 1, 1, 1, 0, NULL,
				NULL, 10, 30, 300, 0 };
	struct transport *t = tg_new(&o, b, st, h);
	tg_feed_updates(t, (const char *)data, size);
	http_free(h);
	transport_free(t);
	log_clear_secrets();
	return 0;
}
