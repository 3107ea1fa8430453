/* Unit tests of the Matrix transport's /sync handling over a real store,
 * without network: answers are fed with mx_feed_sync (the sends it starts
 * go to a closed loopback port and are never driven). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bot.h"
#include "helpers.h"
#include "http.h"
#include "matrix.h"
#include "store.h"
#include "util.h"

static char dir[256];

struct world {
	struct store *store;
	struct bot *bot;
	struct http *http;
	struct transport *t;
};

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/faqbot-mxsync-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char err[512];
	struct world *w = calloc(1, sizeof(*w));
	w->store = store_open(dir, err, sizeof(err));
	w->bot = bot_new(index_from_json(FR_FAQ), NULL);
	w->http = http_new(NULL);
	if (!w->store || !w->bot || store_kv_set(w->store, "matrix.next_batch", "s0") < 0)
		return -1; /* not a first sync: events are handled */
	struct mx_options o = { .homeserver = "http://127.0.0.1:9", .token = "tok", .prefix = '!',
				.sync_timeout_s = 30, .flood_window_s = 30, .flood_pause_s = 300 };
	w->t = mx_new(&o, w->bot, w->store, w->http);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	http_free(w->http);
	transport_free(w->t);
	store_close(w->store);
	bot_free(w->bot);
	free(w);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The bot's own echo in /sync marks its reply sent (with the event id)
 * even when the answer to the PUT never came; it is no question. */
static void own_echo_marks_the_reply_sent(void **state)
{
	struct world *w = *state;
	struct outbox_row r = { 0 };
	r.transport = "matrix";
	r.chat = "!r:localhost";
	r.trigger = "e:$q1";
	r.method = "send";
	r.body = "{\"msgtype\":\"m.notice\",\"body\":\"Plusieurs souscripteurs.\"}";
	r.txn = "faqbot-T1";
	r.created_at = r.next_at = wall_ms();
	assert_int_equal(store_begin(w->store), 0);
	assert_true(store_outbox_add(w->store, &r) > 0);
	assert_int_equal(store_commit(w->store), 0);
	static const char sync[] =
		"{\"next_batch\":\"s2\",\"rooms\":{\"join\":{\"!r:localhost\":{\"timeline\":{\"events\":["
		"{\"event_id\":\"$echo1\",\"type\":\"m.room.message\",\"sender\":\"@faqbot:localhost\","
		"\"origin_server_ts\":1,\"content\":{\"msgtype\":\"m.notice\",\"body\":\"Plusieurs souscripteurs.\"},"
		"\"unsigned\":{\"transaction_id\":\"faqbot-T1\"}}]}}}}}";
	mx_feed_sync(w->t, sync, sizeof(sync) - 1);
	assert_int_equal(store_outbox_count(w->store, "matrix", OUT_SENT), 1);
	assert_int_equal(store_outbox_has_result(w->store, "matrix", "$echo1"), 1);
	assert_int_equal(store_outbox_count(w->store, "matrix", OUT_PENDING), 0); /* no reply to it */
	assert_int_equal(store_inbox_pending(w->store, "matrix"), 0);
	struct strbuf v = STRBUF_INIT;
	assert_int_equal(store_kv_get(w->store, "matrix.next_batch", &v), 1);
	assert_string_equal(v.buf, "s2");
	strbuf_release(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(own_echo_marks_the_reply_sent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
