/* Unit tests for the one-edit look-up (src/typo.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
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

/* The look-up finds exactly the sources the definition names: same first
 * byte, one edit apart by text_edit_distance (the verification is a
 * one-pass check, not that function: they must agree), on random words
 * over a small alphabet (with a two-byte letter) and their variants. */
static void join_tokens(char *out, const int *tok, int n)
{
	static const char *const al[] = { "a", "b", "e", "r", "\xc3\xa9" };
	out[0] = '\0';
	for (int k = 0; k < n; k++)
		strcat(out, al[tok[k]]);
}

static void lookup_agrees_with_edit_distance(void **state)
{
	(void)state;
	enum { NSRC = 300 };
	char src[NSRC][24];
	int tok[NSRC][10], ntok[NSRC];
	struct typo *t = typo_new();
	srand(7);
	for (int i = 0; i < NSRC; i++) {
		ntok[i] = 5 + rand() % 5;
		for (int k = 0; k < ntok[i]; k++)
			tok[i][k] = rand() % 5;
		join_tokens(src[i], tok[i], ntok[i]);
		typo_add(t, src[i], (uint32_t)i);
	}
	typo_build(t);
	size_t checked = 0;
	for (int it = 0; it < 20000; it++) {
		/* one edit of a character of a source (valid UTF-8, as the
		 * analyser gives), which may be two bytes */
		int b = rand() % NSRC, qt[12], n = ntok[b], p = rand() % n;
		memcpy(qt, tok[b], sizeof(tok[b]));
		switch (rand() % 4) {
		case 0: memmove(qt + p, qt + p + 1, (size_t)(n - p - 1) * sizeof(int)); n--; break;
		case 1: memmove(qt + p + 1, qt + p, (size_t)(n - p) * sizeof(int)); qt[p] = rand() % 5; n++; break;
		case 2: qt[p] = rand() % 5; break;
		default:
			if (p + 1 < n) {
				int c = qt[p];
				qt[p] = qt[p + 1];
				qt[p + 1] = c;
			}
		}
		char q[32];
		join_tokens(q, qt, n);
		uint32_t out[NSRC];
		size_t found = typo_lookup(t, q, out, NSRC), want = 0, ql = strlen(q);
		int eligible = ql >= TYPO_MIN_LEN && text_is_word(q);
		for (int i = 0; i < NSRC && eligible; i++) {
			if (src[i][0] != q[0] || text_edit_distance(q, ql, src[i], strlen(src[i]), 1) > 1)
				continue;
			want++;
			int hit = 0;
			for (size_t k = 0; k < found; k++)
				hit |= out[k] == (uint32_t)i;
			if (!hit)
				fail_msg("\"%s\" should find \"%s\"", q, src[i]);
		}
		if (found != want)
			fail_msg("\"%s\": %zu found, %zu within one edit", q, found, want);
		checked += want;
	}
	assert_true(checked > 1000);
	typo_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(one_edit_of_each_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(two_edits_first_letter_and_short_words_do_not_match, setup, teardown),
		cmocka_unit_test(many_sources_no_duplicates),
		cmocka_unit_test(lookup_agrees_with_edit_distance),
	};
	return cmocka_run_group_tests_name("typo", tests, NULL, NULL);
}
