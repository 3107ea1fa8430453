/* Unit tests for the settings (src/config.c). */
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

#include "config.h"

static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/faqbot-conf-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void clear_env(void)
{
	unsetenv("FAQBOT_TELEGRAM_TOKEN");
	unsetenv("FAQBOT_TELEGRAM_TOKEN_FILE");
	unsetenv("FAQBOT_TELEGRAM_COOLDOWN");
	unsetenv("FAQBOT_FAQ");
	unsetenv("FAQBOT_STATE_DIR");
}

static void defaults(void **state)
{
	(void)state;
	clear_env();
	struct config c;
	struct strbuf e = STRBUF_INIT;
	assert_int_equal(config_load(&c, NULL, &e), 0);
	assert_string_equal(c.faq, "faq/faq.json");
	assert_null(c.telegram_token);
	assert_int_equal(c.telegram_cooldown, 300);
	assert_true(c.telegram_rate_limits);
	assert_true(c.threshold < 0);
	config_release(&c);
	strbuf_release(&e);
}

/* Live learning is off unless set, and one user alone may never teach. */
static void learning_settings(void **state)
{
	(void)state;
	clear_env();
	struct config c;
	struct strbuf e = STRBUF_INIT;
	assert_int_equal(config_load(&c, NULL, &e), 0);
	assert_int_equal(c.learn_min_users, 0);
	assert_int_equal(c.feedback_retention_days, 90);
	config_release(&c);
	setenv("FAQBOT_LEARN_MIN_USERS", "1", 1);
	assert_int_equal(config_load(&c, NULL, &e), -1);
	assert_non_null(strstr(e.buf, "learn_min_users"));
	config_release(&c);
	strbuf_reset(&e);
	setenv("FAQBOT_LEARN_MIN_USERS", "3", 1);
	assert_int_equal(config_load(&c, NULL, &e), 0);
	assert_int_equal(c.learn_min_users, 3);
	config_release(&c);
	unsetenv("FAQBOT_LEARN_MIN_USERS");
	strbuf_release(&e);
}

static void file_then_environment(void **state)
{
	(void)state;
	clear_env();
	const char *f = write_tmp("# comment\n  faq = other.json  \ntelegram_cooldown = 60\n"
				  "threshold = 0.5\nlog_format = \"json\"\n");
	setenv("FAQBOT_TELEGRAM_COOLDOWN", "90", 1);
	struct config c;
	struct strbuf e = STRBUF_INIT;
	assert_int_equal(config_load(&c, f, &e), 0);
	assert_string_equal(c.faq, "other.json");
	assert_int_equal(c.telegram_cooldown, 90); /* the environment wins */
	assert_true(c.threshold == 0.5);
	assert_int_equal(c.log_format, CONFIG_LOG_JSON);
	config_release(&c);
	strbuf_release(&e);
	unlink(f);
	clear_env();
}

static void errors_name_the_key_and_the_place(void **state)
{
	(void)state;
	clear_env();
	const char *f = write_tmp("telegarm_token = x\ntelegram_cooldown = soon\n7714526301:AAF-pasted-SECRET\n"
				  "telegram_group_mode = sometimes\ntelegram_api_url = ftp://x\n");
	setenv("FAQBOT_TELEGRAM_TOKEN_FILE", "/nonexistent/secret", 1);
	struct config c;
	struct strbuf e = STRBUF_INIT;
	assert_int_equal(config_load(&c, f, &e), -1);
	char want[512];
	snprintf(want, sizeof(want), "%s:1: unknown key \"telegarm_token\"", f);
	assert_non_null(strstr(e.buf, want));
	snprintf(want, sizeof(want), "%s:2: telegram_cooldown: \"soon\" is not a whole number from 0 to 86400", f);
	assert_non_null(strstr(e.buf, want));
	snprintf(want, sizeof(want), "%s:3: expected \"key = value\"", f);
	assert_non_null(strstr(e.buf, want));
	assert_null(strstr(e.buf, "SECRET")); /* a line without = is never echoed */
	assert_non_null(strstr(e.buf, "telegram_group_mode: \"sometimes\" is not one of addressed|all"));
	assert_non_null(strstr(e.buf, "telegram_api_url: \"ftp://x\" is not a web address"));
	assert_non_null(strstr(e.buf, "FAQBOT_TELEGRAM_TOKEN_FILE: telegram_token_file: cannot read /nonexistent/secret"));
	config_release(&c);
	strbuf_release(&e);
	unlink(f);
	clear_env();
}

static void secret_file_and_masking(void **state)
{
	(void)state;
	clear_env();
	const char *secret = write_tmp("  123:SECRETVALUE \n");
	char path[64];
	snprintf(path, sizeof(path), "%s", secret);
	setenv("FAQBOT_TELEGRAM_TOKEN_FILE", path, 1);
	struct config c;
	struct strbuf e = STRBUF_INIT, out = STRBUF_INIT;
	assert_int_equal(config_load(&c, NULL, &e), 0);
	assert_string_equal(c.telegram_token, "123:SECRETVALUE");
	config_print(&c, &out);
	assert_non_null(strstr(out.buf, "telegram_token = ********\n"));
	assert_null(strstr(out.buf, "SECRETVALUE"));
	config_release(&c);
	strbuf_release(&e);
	strbuf_release(&out);
	unlink(path);
	clear_env();
}

/* Matrix encryption is on by default; its pickle key is a secret (env,
 * *_FILE, masked); an empty pickle key means the state directory's file. */
static void matrix_encryption_settings(void **state)
{
	(void)state;
	clear_env();
	struct config c;
	struct strbuf e = STRBUF_INIT, out = STRBUF_INIT;
	assert_int_equal(config_load(&c, NULL, &e), 0);
	assert_true(c.matrix_encryption);
	assert_null(c.matrix_pickle_key);
	config_release(&c);
	const char *secret = write_tmp("pickle-SECRET-key\n");
	char path[64];
	snprintf(path, sizeof(path), "%s", secret);
	setenv("FAQBOT_MATRIX_PICKLE_KEY_FILE", path, 1);
	setenv("FAQBOT_MATRIX_ENCRYPTION", "false", 1);
	assert_int_equal(config_load(&c, NULL, &e), 0);
	assert_false(c.matrix_encryption);
	assert_string_equal(c.matrix_pickle_key, "pickle-SECRET-key");
	config_print(&c, &out);
	assert_non_null(strstr(out.buf, "matrix_pickle_key = ********\n"));
	assert_null(strstr(out.buf, "SECRET"));
	config_release(&c);
	unsetenv("FAQBOT_MATRIX_PICKLE_KEY_FILE");
	unsetenv("FAQBOT_MATRIX_ENCRYPTION");
	unlink(path);
	strbuf_release(&e);
	strbuf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(file_then_environment),
		cmocka_unit_test(errors_name_the_key_and_the_place),
		cmocka_unit_test(secret_file_and_masking),
		cmocka_unit_test(learning_settings),
		cmocka_unit_test(matrix_encryption_settings),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
