/* Unit tests for the log and HTTP helpers (src/log.c, src/http.c). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bot.h"
#include "flood.h"
#include "http.h"
#include "log.h"

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

static void flood_window_notice_then_silence(void **state)
{
	(void)state;
	struct flood *f = flood_new(3, 10, 60);
	int64_t t = 1000000;
	assert_int_equal(flood_check(f, "t:1:7", t), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:1:7", t + 1000), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:1:7", t + 2000), FLOOD_OK);
	assert_int_equal(flood_check(f, "t:2:7", t + 2500), FLOOD_OK);    /* another chat */
	assert_int_equal(flood_check(f, "t:1:7", t + 3000), FLOOD_NOTICE); /* 4 in 10 s */
	assert_int_equal(flood_check(f, "t:1:7", t + 4000), FLOOD_IGNORE);
	assert_int_equal(flood_check(f, "t:1:7", t + 64000), FLOOD_OK);    /* pause over */
	flood_free(f);
	struct flood *off = flood_new(0, 10, 60);
	for (int i = 0; i < 100; i++)
		assert_int_equal(flood_check(off, "k", t), FLOOD_OK);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flood_window_notice_then_silence),
		cmocka_unit_test(allow_lists),
		cmocka_unit_test(secrets_never_reach_a_line),
		cmocka_unit_test(json_lines),
		cmocka_unit_test(levels),
		cmocka_unit_test(redaction_and_allowed_urls),
		cmocka_unit_test(backoff_grows_and_is_capped),
	};
	return cmocka_run_group_tests_name("edges", tests, NULL, NULL);
}
