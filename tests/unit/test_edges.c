/* Unit tests for the edges: log, HTTP, flood limit, metrics address, keyed
 * hash (src/log.c, src/http.c, src/flood.c, src/metrics.c, src/util.c). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bot.h"
#include "flood.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"
#include "strmap.h"
#include "util.h"

/* Runs fn with stderr captured; returns what it printed (static). */
static const char *capture(void (*fn)(void))
{
	static char buf[4096];
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

static void emit_with_secret(void)
{
	log_info("request", "url=%s error=%s", "https://api.example/bot123:SECRET/getMe",
		 log_q("bad \"thing\" happened"));
}

static void emit_json(void)
{
	log_warn("reply", "chat=42 text=%s", log_q("a b=c"));
}

static void secrets_never_reach_a_line(void **state)
{
	(void)state;
	log_add_secret("123:SECRET");
	const char *out = capture(emit_with_secret);
	assert_null(strstr(out, "SECRET"));
	assert_non_null(strstr(out, "level=info event=request url=https://api.example/bot<redacted>/getMe"));
	assert_non_null(strstr(out, "error=\"bad \\\"thing\\\" happened\""));
	log_clear_secrets();
}

static void json_lines(void **state)
{
	(void)state;
	log_set_json(1);
	const char *out = capture(emit_json);
	log_set_json(0);
	assert_non_null(strstr(out, "\"level\":\"warn\",\"event\":\"reply\",\"chat\":\"42\",\"text\":\"a b=c\"}"));
	assert_int_equal(out[0], '{');
}

static void levels(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("warn"), LOG_WARN);
	assert_int_equal(log_level_parse("loud"), -1);
}

static void redaction_and_allowed_urls(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	http_redact("https://api.telegram.org/bot123:ABC/sendMessage", &sb);
	assert_string_equal(sb.buf, "https://api.telegram.org/bot123:ABC/sendMessage"); /* nobody said */
	strbuf_reset(&sb);
	http_redact_segment("/bot"); /* what the Telegram transport registers */
	http_redact("https://api.telegram.org/bot123:ABC/sendMessage", &sb);
	assert_string_equal(sb.buf, "https://api.telegram.org/bot<redacted>/sendMessage");
	strbuf_reset(&sb);
	http_redact("https://m.org/_matrix/client/v3/sync?access_token=xyz&since=1", &sb);
	assert_string_equal(sb.buf, "https://m.org/_matrix/client/v3/sync?access_token=<redacted>&since=1");
	strbuf_release(&sb);
	char why[256];
	assert_int_equal(http_url_allowed("https://api.telegram.org", why, sizeof(why)), 0);
	assert_int_equal(http_url_allowed("http://127.0.0.1:8080", why, sizeof(why)), 0);
	assert_int_equal(http_url_allowed("http://localhost/x", why, sizeof(why)), 0);
	assert_int_equal(http_url_allowed("http://[::1]:9/", why, sizeof(why)), 0);
	assert_int_equal(http_url_allowed("http://example.org", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "only allowed to this machine"));
	assert_int_equal(http_url_allowed("http://localhost.evil.org", why, sizeof(why)), -1);
	assert_int_equal(http_url_allowed("ftp://x", why, sizeof(why)), -1);
}

static void backoff_grows_and_is_capped(void **state)
{
	(void)state;
	for (unsigned a = 0; a < 20; a++) {
		uint64_t ms = http_backoff_ms(a);
		uint64_t base = a < 6 ? 1000u << a : 60000;
		if (base > 60000)
			base = 60000;
		assert_true(ms >= base / 2 && ms <= base);
	}
}

/* Matrix ids in URL paths: '!', ':', '@', '/', '?', '#', '%', spaces and
 * non-ASCII bytes encoded, RFC 3986's unreserved characters kept. */
static void path_segments_are_percent_encoded(void **state)
{
	(void)state;
	struct strbuf b = STRBUF_INIT;
	assert_int_equal(strbuf_add_path_escaped(&b, "!r/oom?x#y:ex.org"), 0);
	assert_string_equal(b.buf, "%21r%2Foom%3Fx%23y%3Aex.org");
	strbuf_reset(&b);
	assert_int_equal(strbuf_add_path_escaped(&b, "@a b%~_-\xc3\xa9"), 0);
	assert_string_equal(b.buf, "%40a%20b%25~_-%C3%A9");
	strbuf_release(&b);
}

/* A batch whose commit failed is handled again: its questions were counted
 * once already and must not pause their user (review finding: they were
 * counted twice, so 6 questions of a limit of 10 drew the notice). */
static void flood_counts_a_message_once(void **state)
{
	(void)state;
	struct flood *f = flood_new(3, 10, 60);
	int64_t t = 1000000;
	const char *ids[] = { "t:1:100", "t:1:101", "t:1:102" };
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 3; i++)
			assert_int_equal(flood_check_once(f, "t:1:7", ids[i], t + i * 1000, t + 5000 + round),
					 FLOOD_OK);
	assert_int_equal(flood_check_once(f, "t:1:7", "t:1:103", t + 3000, t + 6000), FLOOD_NOTICE);
	/* handled again: the same notice, not silence (it was rolled back too) */
	assert_int_equal(flood_check_once(f, "t:1:7", "t:1:103", t + 3000, t + 6500), FLOOD_NOTICE);
	assert_int_equal(flood_check_once(f, "t:1:7", "t:1:101", t + 1000, t + 6600), FLOOD_OK);
	assert_int_equal(flood_check_once(f, "t:1:7", "t:1:104", t + 4000, t + 7000), FLOOD_IGNORE);
	/* without an id every call counts */
	assert_int_equal(flood_check_once(f, "t:2:7", NULL, t, t), FLOOD_OK);
	assert_int_equal(flood_check_once(f, "t:2:7", NULL, t, t), FLOOD_OK);
	assert_int_equal(flood_check_once(f, "t:2:7", NULL, t, t), FLOOD_OK);
	assert_int_equal(flood_check_once(f, "t:2:7", NULL, t, t), FLOOD_NOTICE);
	flood_free(f);
}

static void flood_window_notice_then_silence(void **state)
{
	(void)state;
	struct flood *f = flood_new(3, 10, 60);
	int64_t t = 1000000;
	assert_int_equal(flood_check(f, "t:1:7", t, t), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:1:7", t + 1000, t + 1000), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:1:7", t + 2000, t + 2000), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:2:7", t + 2500, t + 2500), FLOOD_OK);    /* another chat */
	assert_int_equal(flood_check(f, "t:1:7", t + 3000, t + 3000), FLOOD_NOTICE); /* 4 in 10 s */
	assert_int_equal(flood_check(f, "t:1:7", t + 4000, t + 4000), FLOOD_IGNORE);
	assert_int_equal(flood_check(f, "t:1:7", t + 64000, t + 64000), FLOOD_OK);    /* pause over */
	flood_free(f);
	struct flood *off = flood_new(0, 10, 60);
	for (int i = 0; i < 100; i++)
		assert_int_equal(flood_check(off, "k", t, t), FLOOD_OK);
	flood_free(off);
}

static void allow_lists(void **state)
{
	(void)state;
	assert_true(bot_listed(NULL, "-100", 0));
	assert_true(bot_listed("", "-100", 0));
	assert_true(bot_listed("12, -100", "-100", 0));
	assert_false(bot_listed("12,-1001", "-100", 0));
	assert_true(bot_listed("example.org", "!room:example.org", 1));
	assert_false(bot_listed("example.org", "!room:evil.org", 1));
	assert_false(bot_listed("example.org", "!room:example.org", 0));
}


/* Finding 7: the http-to-loopback rule is judged on libcurl's parse of
 * the URL, not on its text: user info, look-alike hosts are refused. */
static void plain_http_only_to_loopback_hosts(void **state)
{
	(void)state;
	char why[256];
	static const char *const ok[] = {
		"https://api.telegram.org", "https://matrix.example.org:8448/x",
		"http://127.0.0.1:8080", "http://127.9.8.7/", "http://localhost/x", "http://LOCALHOST:1/",
		"http://[::1]:9/",
	};
	static const char *const refused[] = {
		"http://localhost:1@evil.example/", "http://127.0.0.1@evil.example/",
		"http://127.anything.example/", "http://127.0.0.1.evil.example/",
		"http://localhost.evil.org", "http://example.org", "http://[::2]/", "http://128.0.0.1/",
		"http://user:pw@127.0.0.1/", "https://user:pw@api.telegram.org/", "ftp://x", "x",
		"http://0x7f000001.evil/", "",
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		why[0] = '\0';
		if (http_url_allowed(ok[i], why, sizeof(why)) != 0)
			fail_msg("%s refused: %s", ok[i], why);
	}
	for (size_t i = 0; i < ARRAY_LEN(refused); i++)
		if (http_url_allowed(refused[i], why, sizeof(why)) != -1)
			fail_msg("%s allowed", refused[i]);
	assert_int_equal(http_url_allowed("http://127.0.0.1@evil.example/", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "user name"));
	assert_int_equal(http_url_allowed("http://127.anything.example/", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "only allowed to this machine"));
	/* http_start applies the same rule: no request leaves */
	struct http *h = http_new(NULL);
	struct http_req req = { "GET", "http://localhost:1@evil.example/", NULL, 0, NULL, 1000, 0, NULL, NULL };
	assert_int_equal(http_start(h, &req, why, sizeof(why)), -1);
	assert_int_equal(http_active(h), 0);
	http_free(h);
}

/* Finding 9: server-given waits are clamped: no overflow, no hot loop, no
 * park past the 24 h give-up. */
static void server_waits_are_clamped(void **state)
{
	(void)state;
	assert_int_equal(http_clamp_wait_ms(5, 1000), 5000);
	assert_int_equal(http_clamp_wait_ms(1500, 1), 1500);
	assert_int_equal(http_clamp_wait_ms(0, 1000), HTTP_WAIT_MIN_MS);
	assert_int_equal(http_clamp_wait_ms(-30, 1000), HTTP_WAIT_MIN_MS);
	assert_int_equal(http_clamp_wait_ms(-1, 1), HTTP_WAIT_MIN_MS);
	assert_int_equal(http_clamp_wait_ms(3, 1), HTTP_WAIT_MIN_MS);
	assert_int_equal(http_clamp_wait_ms(LLONG_MAX, 1000), HTTP_WAIT_MAX_MS); /* UBSan: no overflow */
	assert_int_equal(http_clamp_wait_ms(LLONG_MAX, 1), HTTP_WAIT_MAX_MS);
	assert_int_equal(http_clamp_wait_ms(86400 * 30LL, 1000), HTTP_WAIT_MAX_MS);
	assert_true(HTTP_WAIT_MAX_MS < 24 * 3600 * 1000LL);
}

/* Finding 8: the limit counts questions at their own time. */
static void flood_counts_message_time(void **state)
{
	(void)state;
	struct flood *f = flood_new(3, 10, 60);
	int64_t now = 10000000;
	/* 12 questions sent a minute apart, read at once after downtime */
	for (int i = 0; i < 12; i++)
		assert_int_equal(flood_check(f, "t:1:7", now - 3600000 + i * 60000, now), FLOOD_OK);
	/* a forged time in the future counts as now */
	for (int i = 0; i < 3; i++)
		assert_int_equal(flood_check(f, "t:1:8", now + 1000000000LL * (i + 1), now), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:1:8", now + 5, now), FLOOD_NOTICE);
	/* forged ancient times, far apart, count as one day old: still a flood */
	int64_t day = 86400000LL * 400;
	for (int i = 0; i < 3; i++)
		assert_int_equal(flood_check(f, "t:1:9", 1000 + i * 3600000LL, day), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:1:9", 1000 + 3 * 3600000LL, day), FLOOD_NOTICE);
	flood_free(f);
}

/* Review: forged message times spaced wider than the window (a hostile
 * homeserver sets origin_server_ts) are not believed once the backlog
 * after start has been read, and a pause runs from arrival, not from a
 * forged time. */
static void flood_forged_times_after_backlog(void **state)
{
	(void)state;
	struct flood *f = flood_new(5, 60, 300);
	int64_t now = 50000000000LL;
	assert_int_equal(flood_check(f, "m:r:honest", now, now), FLOOD_OK); /* the process starts */
	now += FLOOD_BACKLOG_MS + 1000;
	int answered = 0, notices = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t forged = now - 86400000LL + i * 13000LL; /* 13 s apart, a day ago */
		enum flood_verdict v = flood_check(f, "m:r:spammer", forged, now + i);
		answered += v == FLOOD_OK;
		notices += v == FLOOD_NOTICE;
	}
	assert_int_equal(answered, 5);
	assert_int_equal(notices, 1);
	/* the pause lasts flood_pause from arrival */
	assert_int_equal(flood_check(f, "m:r:spammer", now, now + 299000), FLOOD_IGNORE);
	assert_int_equal(flood_check(f, "m:r:spammer", now + 301000, now + 301000), FLOOD_OK);
	flood_free(f);
}

/* Finding 9: 20,000 fresh keys do not lift a pause. */
static void flood_many_keys_keep_pauses(void **state)
{
	(void)state;
	struct flood *f = flood_new(2, 60, 600);
	int64_t t = 1000000;
	assert_int_equal(flood_check(f, "victim-flooder", t, t), FLOOD_OK);
	assert_int_equal(flood_check(f, "victim-flooder", t + 1, t + 1), FLOOD_OK);
	assert_int_equal(flood_check(f, "victim-flooder", t + 2, t + 2), FLOOD_NOTICE);
	char key[32];
	for (int i = 0; i < FLOOD_MAX_KEYS + 5; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		flood_check(f, key, t + 10, t + 10);
	}
	assert_true(flood_keys(f) <= FLOOD_MAX_KEYS);
	assert_int_equal(flood_check(f, "victim-flooder", t + 20, t + 20), FLOOD_IGNORE);
	/* a user active just now is remembered too */
	assert_int_equal(flood_check(f, "k20004", t + 21, t + 21), FLOOD_OK);
	assert_int_equal(flood_check(f, "k20004", t + 22, t + 22), FLOOD_NOTICE);
	flood_free(f);
}

/* Finding 6: only a strictly written loopback address is accepted. */
static void metrics_address_is_strict(void **state)
{
	(void)state;
	struct sockaddr_storage sa;
	socklen_t len;
	char err[256];
	static const char *const ok[] = { "127.0.0.1:9464", "127.0.0.2:1", "[::1]:9464", "::1:9464",
					  "localhost:65535" };
	static const char *const bad[] = { "127.1:9464", "127.0.0.01:9464", "127.0.0.256:9464",
					   "127.0.0.1:9464 ", "127.0.0.1 :9464", " 127.0.0.1:9464",
					   "0.0.0.0:9464", "10.0.0.1:9464", "[::]:9464", "127.0.0.1:0",
					   "127.0.0.1:65536", "127.0.0.1:", ":9464", "127.0.0.1:94a",
					   "localhost.evil:1", "127.0.0.1", "" };
	for (size_t i = 0; i < ARRAY_LEN(ok); i++)
		if (metrics_address_parse(ok[i], &sa, &len, err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", ok[i], err);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		if (metrics_address_parse(bad[i], &sa, &len, err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(strlen(err) > 10);
	}
	assert_int_equal(metrics_address_parse("127.0.0.1:9464", &sa, &len, err, sizeof(err)), 0);
	assert_int_equal(sa.ss_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)&sa)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

static void walk(const char *kk, uint32_t vv, void *arg)
{
	(void)kk;
	uint32_t *expect = arg;
	assert_int_equal(vv, *expect);
	(*expect)++;
}

/* Finding 9: tables keyed by chat text hash with a secret key. */
static void keyed_hash(void **state)
{
	(void)state;
	/* the SipHash-1-3 reference vector (key 00..0f, empty message) */
	uint8_t k[16];
	for (int i = 0; i < 16; i++)
		k[i] = (uint8_t)i;
	assert_true(hash_siphash(k, "", 0) == 0xabac0158050fc4dcULL);
	uint64_t before = hash_keyed("stem", 4);
	uint8_t other[16] = { 1, 2, 3 };
	hash_seed(other);
	assert_true(hash_keyed("stem", 4) != before);
	assert_true(hash_keyed("stem", 4) != hash_bytes("stem", 4));
	/* maps still work, and walk in insertion order whatever the key */
	struct strmap *m = strmap_new(4);
	char key[16];
	for (uint32_t i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "w%u", (unsigned)(i * 7919 % 1000));
		strmap_put(m, key, strlen(key), i, NULL);
	}
	uint32_t v;
	assert_true(strmap_get(m, "w0", 2, &v) && v == 0);
	uint32_t expect = 0;

	strmap_foreach(m, walk, &expect);
	assert_int_equal(expect, 100);
	strmap_free(m);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flood_window_notice_then_silence),
		cmocka_unit_test(flood_counts_a_message_once),
		cmocka_unit_test(path_segments_are_percent_encoded),
		cmocka_unit_test(allow_lists),
		cmocka_unit_test(secrets_never_reach_a_line),
		cmocka_unit_test(json_lines),
		cmocka_unit_test(levels),
		cmocka_unit_test(redaction_and_allowed_urls),
		cmocka_unit_test(backoff_grows_and_is_capped),
		cmocka_unit_test(plain_http_only_to_loopback_hosts),
		cmocka_unit_test(server_waits_are_clamped),
		cmocka_unit_test(flood_counts_message_time),
		cmocka_unit_test(flood_forged_times_after_backlog),
		cmocka_unit_test(flood_many_keys_keep_pauses),
		cmocka_unit_test(metrics_address_is_strict),
		cmocka_unit_test(keyed_hash),
	};
	return cmocka_run_group_tests_name("edges", tests, NULL, NULL);
}
