/* Unit tests for the one-edit look-up (src/typo.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "typo.h"

static int setup(void **state)
{
	struct typo *t = typo_new();
	typo_add(t, "souscription", 1);
	typo_add(t, "souscript", 2);
	typo_add(t, "numerique", 3);
	typo_add(t, "etude", 4);
	typo_add(t, "élargir", 5);
	typo_add(t, "abc", 6); /* too short: ignored */
	typo_build(t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	typo_free(*state);
	return 0;
}

static int finds(struct typo *t, const char *q, uint32_t id)
{
	uint32_t out[8];
	size_t n = typo_lookup(t, q, out, 8);
	for (size_t i = 0; i < n; i++)
		if (out[i] == id)
			return 1;
	return 0;
}

static void one_edit_of_each_kind(void **state)
{
	struct typo *t = *state;
	assert_true(finds(t, "souscirption", 1)); /* swap */
	assert_true(finds(t, "souscrption", 1));  /* deletion */
	assert_true(finds(t, "souscriiption", 1)); /* insertion */
	assert_true(finds(t, "souscroption", 1)); /* substitution */
	assert_true(finds(t, "numerque", 3));
	assert_true(finds(t, "etudes", 4));
	assert_true(finds(t, "élargr", 5));       /* multi-byte letters count as one */
}

static void two_edits_first_letter_and_short_words_do_not_match(void **state)
{
	struct typo *t = *state;
	uint32_t out[8];
	assert_int_equal(typo_lookup(t, "suoscirption", out, 8), 0); /* two edits */
	assert_false(finds(t, "mouscription", 1));                 /* first letter */
	assert_int_equal(typo_lookup(t, "abd", out, 8), 0);        /* too short */
	assert_int_equal(typo_lookup(t, "zzzzzzzz", out, 8), 0);
}

static void many_sources_no_duplicates(void **state)
{
	(void)state;
	struct typo *t = typo_new();
	char w[32];
	for (uint32_t i = 0; i < 20000; i++) {
		snprintf(w, sizeof(w), "mot%05uxyz", i);
		typo_add(t, w, i);
	}
	typo_add(t, "mot00042xyz", 42); /* same string twice: still one result */
	typo_build(t);
	uint32_t out[8];
	size_t n = typo_lookup(t, "mot00042xz", out, 8);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 42);
	assert_int_equal(typo_sources(t), 20001);
	typo_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(one_edit_of_each_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(two_edits_first_letter_and_short_words_do_not_match, setup, teardown),
		cmocka_unit_test(many_sources_no_duplicates),
	};
	return cmocka_run_group_tests_name("typo", tests, NULL, NULL);
}
