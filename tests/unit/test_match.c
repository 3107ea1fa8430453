/* Unit tests for ranking (src/index.c) and the decision (src/match.c). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "helpers.h"
#include "match.h"

static int setup(void **state)
{
	*state = index_from_json(FR_FAQ);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	index_free(*state);
	return 0;
}

static struct match ask(struct index *idx, const char *q)
{
	struct match m;
	match_question(idx, q, strlen(q), -1, &m);
	return m;
}

static const char *answer_id(struct index *idx, const char *q)
{
	struct match m = ask(idx, q);
	return m.kind == MATCH_ANSWER ? index_faq(idx)->entries[m.entry].id : "(none)";
}

static void exact_question_is_answered(void **state)
{
	struct index *idx = *state;
	struct match m = ask(idx, "C'est quoi une étude en souscription ?");
	assert_int_equal(m.kind, MATCH_ANSWER);
	assert_string_equal(index_faq(idx)->entries[m.entry].id, "souscription");
	assert_true(m.confidence >= 0.9 && m.confidence <= 1.0);
}

static void accents_case_and_casual_forms(void **state)
{
	struct index *idx = *state;
	assert_string_equal(answer_id(idx, "COMBIEN COUTE LA SOUSCRIPTION"), "cout");
	assert_string_equal(answer_id(idx, "combien ça coûte"), "cout");
	assert_string_equal(answer_id(idx, "c koi une etude en souscription"), "souscription");
}

static void multi_word_synonyms_both_ways(void **state)
{
	struct index *idx = *state;
	assert_string_equal(answer_id(idx, "comment faire un programme local de l'habitat digital"), "plh");
	assert_string_equal(answer_id(idx, "PLH digital ?"), "plh");
}

static void typos_and_truncations(void **state)
{
	struct index *idx = *state;
	assert_string_equal(answer_id(idx, "etude en souscirption ?"), "souscription");  /* swap */
	assert_string_equal(answer_id(idx, "etude en souscrption"), "souscription");     /* missing */
	assert_string_equal(answer_id(idx, "etude en souscripption"), "souscription");   /* extra */
	assert_string_equal(answer_id(idx, "une etud en souscr"), "souscription");       /* prefix */
	/* the first letter is never treated as a typo */
	struct match m = ask(idx, "mouscription");
	assert_int_not_equal(m.kind, MATCH_ANSWER);
}

static void keywords_boost(void **state)
{
	struct index *idx = *state;
	/* "tarif" is a keyword of cout and only in calendrier's answer */
	assert_string_equal(answer_id(idx, "tarif ?"), "cout");
}

static void questions_weigh_more_than_answers(void **state)
{
	struct index *idx = *state;
	/* "printemps" is only in an answer: found, but not with full confidence */
	struct match m = ask(idx, "printemps");
	assert_int_equal(m.entry, 3);
	struct match q = ask(idx, "quand commence");
	assert_true(q.confidence > m.confidence);
}

static void off_topic_falls_back(void **state)
{
	struct index *idx = *state;
	struct match m = ask(idx, "comment renouveler mon passeport");
	assert_int_equal(m.kind, MATCH_FALLBACK);
	assert_null(match_id(idx, &m));
	m = ask(idx, "le le la de");
	assert_int_equal(m.kind, MATCH_FALLBACK);
	assert_int_equal(m.ranked.n_terms, 0);
}

static void close_candidates_are_suggested(void **state)
{
	struct index *idx = *state;
	struct match m = ask(idx, "où sont les archives");
	assert_int_equal(m.kind, MATCH_AMBIGUOUS);
	assert_int_equal(m.n_sugg, 2);
	assert_int_not_equal(m.sugg[0], m.sugg[1]);
	assert_non_null(match_id(idx, &m)); /* the best guess is still reported */
}

static void threshold_decides(void **state)
{
	struct index *idx = *state;
	struct match m;
	const char *q = "souscription";
	match_question(idx, q, strlen(q), 1.0, &m);
	assert_true(m.kind == MATCH_FALLBACK || m.confidence >= 1.0);
	match_question(idx, q, strlen(q), 0.0, &m);
	assert_int_not_equal(m.kind, MATCH_FALLBACK);
}

static void random_bytes_stay_in_range(void **state)
{
	struct index *idx = *state;
	unsigned int seed = 12345;
	char buf[200];
	for (int i = 0; i < 3000; i++) {
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf));
		for (size_t k = 0; k < n; k++)
			buf[k] = (char)(rand_r(&seed) % 3 ? 'a' + rand_r(&seed) % 26 : rand_r(&seed) % 256);
		struct match m;
		match_question(idx, buf, n, -1, &m);
		assert_true(m.confidence >= 0.0 && m.confidence <= 1.0);
		for (size_t c = 0; c < m.ranked.n_cand; c++)
			assert_true(m.ranked.cand[c].score <= m.ranked.cand[0].score);
	}
}

static void reload_builds_a_new_index_leaving_the_old_intact(void **state)
{
	struct index *old = *state;
	const char *before = answer_id(old, "combien coûte la souscription");
	assert_string_equal(before, "cout");
	struct index *fresh = index_from_json(
		"{\"language\": \"french\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org\"},"
		" \"entries\": [{\"id\": \"autre\", \"questions\": [\"combien coûte la souscription\"],"
		" \"answer\": \"Rien.\"}]}");
	assert_non_null(fresh);
	assert_string_equal(answer_id(fresh, "combien coûte la souscription"), "autre");
	assert_string_equal(answer_id(old, "combien coûte la souscription"), "cout");
	index_free(fresh);
}

static void english_faq(void **state)
{
	(void)state;
	struct index *idx = index_from_json(
		"{\"language\": \"english\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org\"},"
		" \"synonyms\": [[\"price\", \"cost\"]],"
		" \"entries\": [{\"id\": \"price\", \"questions\": [\"What is the price?\"], \"answer\": \"Ten.\"},"
		" {\"id\": \"hours\", \"questions\": [\"When are you open?\"], \"answer\": \"9 to 5.\"}]}");
	assert_non_null(idx);
	assert_string_equal(answer_id(idx, "How much does it cost"), "price");
	assert_string_equal(answer_id(idx, "opening hours?"), "hours");
	index_free(idx);
}

static void explain_and_terms(void **state)
{
	struct index *idx = *state;
	const char *q = "etude en souscirption";
	struct match m = ask(idx, q);
	struct strbuf sb = STRBUF_INIT;
	match_explain(idx, q, strlen(q), &m, &sb);
	assert_non_null(strstr(sb.buf, "souscirpt"));
	assert_non_null(strstr(sb.buf, "typo -> souscript"));
	assert_non_null(strstr(sb.buf, "answer \"souscription\""));
	strbuf_reset(&sb);
	index_terms(idx, "Souscription de l'étude", 23, &sb);
	assert_string_equal(sb.buf, "etud souscript");
	strbuf_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(exact_question_is_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(accents_case_and_casual_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(multi_word_synonyms_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(typos_and_truncations, setup, teardown),
		cmocka_unit_test_setup_teardown(keywords_boost, setup, teardown),
		cmocka_unit_test_setup_teardown(questions_weigh_more_than_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(off_topic_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(close_candidates_are_suggested, setup, teardown),
		cmocka_unit_test_setup_teardown(threshold_decides, setup, teardown),
		cmocka_unit_test_setup_teardown(random_bytes_stay_in_range, setup, teardown),
		cmocka_unit_test_setup_teardown(reload_builds_a_new_index_leaving_the_old_intact, setup, teardown),
		cmocka_unit_test(english_faq),
		cmocka_unit_test_setup_teardown(explain_and_terms, setup, teardown),
	};
	return cmocka_run_group_tests_name("match", tests, NULL, NULL);
}
