/* Unit tests for src/faqindex.c: one way to load an FAQ file, and the
 * checks `faqbot check` runs (the self-test and the markup check moved out
 * of main.c so that tests reach them). */
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

#include "faqindex.h"

static char path[256];

static void write_faq(const char *json)
{
	snprintf(path, sizeof(path), "/tmp/faqbot-faqindex-%d.json", (int)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(json, f);
	assert_int_equal(fclose(f), 0);
}

static int warned(const struct faq_diags *d, const char *needle)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].level == FAQ_WARNING && strstr(d->items[i].text, needle))
			return 1;
	return 0;
}

static void load_reports_a_missing_file(void **state)
{
	(void)state;
	struct faq_diags d;
	faq_diags_init(&d);
	assert_null(faqindex_load("/nonexistent/faq.json", &d));
	assert_true(d.errors > 0);
	faq_diags_release(&d);
}

/* Two entries share a phrasing: the second one's question lands on the
 * first (the self-test says so); a broken link in an answer is a markup
 * warning; a clean entry gets no warning. */
static void check_warns_about_phrasings_and_markup(void **state)
{
	(void)state;
	write_faq("{\"language\": \"french\", \"fallback\": {\"text\": \"Pas de réponse.\", \"url\": \"https://example.org\"},"
		  " \"entries\": ["
		  "  {\"id\": \"a\", \"questions\": [\"où sont les archives\"], \"answer\": \"Ici.\"},"
		  "  {\"id\": \"b\", \"questions\": [\"où sont les archives\"], \"answer\": \"[Là](pas une url\"},"
		  "  {\"id\": \"prix\", \"questions\": [\"combien coûte la souscription\"], \"answer\": \"Dix euros.\"}"
		  " ]}");
	struct faq_diags d;
	faq_diags_init(&d);
	struct index *idx = faqindex_load(path, &d);
	assert_non_null(idx);
	size_t before = d.n;
	faqindex_check(idx, &d);
	assert_true(d.n > before);
	assert_true(warned(&d, "(id \"b\"): questions[0]"));
	assert_true(warned(&d, "entries[1] (id \"b\"): \"answer\""));
	assert_false(warned(&d, "(id \"prix\")"));
	faq_diags_release(&d);
	index_free(idx);
	remove(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load_reports_a_missing_file),
		cmocka_unit_test(check_warns_about_phrasings_and_markup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
