/* Unit tests for the FAQ loader (src/faq.c), driven by the fixtures in
 * tests/data/faq/: every bad/X.json must fail with each line of
 * bad/X.expect found in its diagnostics; every good/X.json must load, and
 * produce exactly the warnings listed in good/X.expect.  Lines starting with
 * '#' in .expect files are for other tests (the schema agreement test). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faq.h"
#include "strbuf.h"

#define FIXTURES TEST_DATA_DIR "/faq"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, len);
}

/* Checks one fixture; returns the number of failures (printed). */
static int check_fixture(const char *kind, const char *name)
{
	char path[512], expect_path[512], source[512];
	snprintf(path, sizeof(path), "%s/%s/%s", FIXTURES, kind, name);
	snprintf(source, sizeof(source), "%s/%s", kind, name);
	snprintf(expect_path, sizeof(expect_path), "%s", path);
	strcpy(expect_path + strlen(expect_path) - 5, ".expect");
	size_t len, elen;
	char *data = slurp(path, &len);
	char *expect = slurp(expect_path, &elen);
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_parse(data, len, source, &d);
	int fails = 0;
	int bad = !strcmp(kind, "bad");
	if (bad && (f || !d.errors)) {
		printf("  %s: loaded, but it should have failed\n", source);
		fails++;
	}
	if (!bad && (!f || d.errors)) {
		printf("  %s: failed to load:\n", source);
		for (size_t i = 0; i < d.n; i++)
			printf("    %s\n", d.items[i].text);
		fails++;
	}
	size_t expected_lines = 0;
	for (char *line = strtok(expect, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#')
			continue;
		expected_lines++;
		int found = 0;
		for (size_t i = 0; i < d.n && !found; i++)
			found = strstr(d.items[i].text, line) != NULL;
		if (!found) {
			printf("  %s: expected a diagnostic containing: %s\n  got:\n", source, line);
			for (size_t i = 0; i < d.n; i++)
				printf("    %s\n", d.items[i].text);
			fails++;
		}
	}
	if (!bad && d.warnings != expected_lines) {
		printf("  %s: %zu warnings, expected %zu\n", source, d.warnings, expected_lines);
		fails++;
	}
	faq_free(f);
	faq_diags_release(&d);
	free(data);
	free(expect);
	return fails;
}

static void fixtures(const char *kind, size_t min_count)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, kind);
	DIR *dp = opendir(dir);
	assert_non_null(dp);
	struct dirent *de;
	int fails = 0;
	size_t count = 0;
	while ((de = readdir(dp))) {
		size_t n = strlen(de->d_name);
		if (n > 5 && !strcmp(de->d_name + n - 5, ".json")) {
			fails += check_fixture(kind, de->d_name);
			count++;
		}
	}
	closedir(dp);
	assert_true(count >= min_count);
	assert_int_equal(fails, 0);
}

static void bad_fixtures_fail_with_their_messages(void **state)
{
	(void)state;
	fixtures("bad", 15);
}

static void good_fixtures_load_with_their_warnings(void **state)
{
	(void)state;
	fixtures("good", 3);
}

static void missing_file_is_a_diagnostic(void **state)
{
	(void)state;
	struct faq_diags d;
	faq_diags_init(&d);
	assert_null(faq_load_file("/nonexistent/faq.json", &d));
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.items[0].text,
			    "/nonexistent/faq.json: cannot open the FAQ file: No such file or directory");
	faq_diags_release(&d);
}

static void fields_are_read(void **state)
{
	(void)state;
	const char *json = "{\"language\": \"french\", \"threshold\": 0.5,"
			   " \"fallback\": {\"text\": \"t\", \"url\": \"https://e.org/x\"},"
			   " \"synonyms\": [[\"a b\", \"c\"]], \"messages\": {\"help\": \"H\"},"
			   " \"entries\": [{\"id\": \"x-1\", \"questions\": [\"q1\", \"q2\"],"
			   " \"answer\": \"A\", \"keywords\": [\"k\"]}]}";
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_parse(json, strlen(json), "mem", &d);
	assert_non_null(f);
	assert_int_equal(d.n, 0);
	assert_string_equal(f->language, "french");
	assert_true(f->threshold == 0.5);
	assert_string_equal(f->fallback_url, "https://e.org/x");
	assert_int_equal(f->n_synonyms, 1);
	assert_int_equal(f->synonyms[0].n, 2);
	assert_string_equal(f->entries[0].id, "x-1");
	assert_int_equal(f->entries[0].n_questions, 2);
	assert_int_equal(f->entries[0].n_keywords, 1);
	assert_string_equal(faq_message(f, "help"), "H");
	assert_null(faq_message(f, "welcome"));
	assert_int_equal(faq_find(f, "x-1"), 0);
	assert_int_equal(faq_find(f, "nope"), -1);
	faq_free(f);
	faq_diags_release(&d);
}

static void default_threshold(void **state)
{
	(void)state;
	const char *json = "{\"language\": \"en\", \"fallback\": {\"text\": \"t\", \"url\": \"https://e.org\"},"
			   " \"entries\": [{\"id\": \"a\", \"questions\": [\"q\"], \"answer\": \"A\"}]}";
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_parse(json, strlen(json), "mem", &d);
	assert_non_null(f);
	assert_true(f->threshold == FAQ_DEFAULT_THRESHOLD);
	faq_free(f);
	faq_diags_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_fixtures_fail_with_their_messages),
		cmocka_unit_test(good_fixtures_load_with_their_warnings),
		cmocka_unit_test(missing_file_is_a_diagnostic),
		cmocka_unit_test(fields_are_read),
		cmocka_unit_test(default_threshold),
	};
	return cmocka_run_group_tests_name("faq", tests, NULL, NULL);
}
