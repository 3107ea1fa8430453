/* Unit tests for ranking (src/index.c) and the decision (src/match.c). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "helpers.h"
#include "lexfile.h"
#include "match.h"
#include "text.h"

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
	assert_true(m.confidence >= 0.85 && m.confidence <= 1.0);
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

static void advice_for_editors(void **state)
{
	struct index *idx = *state;
	struct faq_diags d;
	faq_diags_init(&d);
	index_advise(idx, &d);
	int twin = 0, spring = 0, souscription_hard = 0;
	for (size_t i = 0; i < d.n; i++) {
		const char *t = d.items[i].text;
		assert_int_equal(d.items[i].level, FAQ_WARNING);
		if (strstr(t, "\"jumeau-a\" is hard to reach"))
			twin = 1;
		if (strstr(t, "\"calendrier\"") && strstr(t, "\"printemps\""))
			spring = 1;
		if (strstr(t, "\"souscription\" is hard to reach"))
			souscription_hard = 1;
	}
	assert_true(twin);
	assert_true(spring);
	assert_false(souscription_hard); /* "fonctionne" is its own */
	faq_diags_release(&d);
}

/* ==== Calibration (no lexicon needed) ==== */

static void confidence_counts_the_lead(void **state)
{
	(void)state;
	/* in [0,1], grows with the best score, shrinks with the runner-up */
	assert_true(match_confidence(0.0, 0.0) == 0.0);
	assert_true(match_confidence(1.0, 0.0) == 1.0);
	assert_true(match_confidence(0.6, 0.0) > match_confidence(0.5, 0.0));
	assert_true(match_confidence(0.6, 0.1) > match_confidence(0.6, 0.5));
	assert_true(match_confidence(0.3, 0.3) >= 0.0);
	/* a tie is well below a clear lead */
	assert_true(match_confidence(0.5, 0.5) < match_confidence(0.5, 0.05) - 0.1);
}

/* An acronym meets the words whose initials it is, both ways; two
 * initials only beside their phrase; never across punctuation. */
static void acronyms_meet_their_expansion(void **state)
{
	(void)state;
	struct index *idx = index_from_json(
		"{\"language\": \"french\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org\"},"
		" \"entries\": ["
		"  {\"id\": \"plu\", \"questions\": [\"Où consulter le plan local d'urbanisme ?\"],"
		"   \"answer\": \"En mairie, aux heures d'ouverture.\"},"
		"  {\"id\": \"arbre\", \"questions\": [\"Faut-il une autorisation pour abattre un arbre ?\"],"
		"   \"answer\": \"Oui si le PLU le protège. Demandez un certificat d'urbanisme (CU).\"},"
		"  {\"id\": \"taxe\", \"questions\": [\"Que finance la TEOM ?\"],"
		"   \"answer\": \"La collecte. Le tarif est voté, le montant est envoyé en octobre.\"},"
		"  {\"id\": \"vote\", \"questions\": [\"Qui vote le tarif ?\"],"
		"   \"answer\": \"Le conseil; toute modification est affichée au CTM.\"}"
		" ]}");
	assert_non_null(idx);
	assert_string_equal(answer_id(idx, "où voir le PLU"), "plu");
	assert_string_equal(answer_id(idx, "ou voir le plu"), "plu");
	/* the phrase finds the acronym too */
	assert_string_equal(answer_id(idx, "certificat d'urbanisme"), "arbre");
	struct match m = ask(idx, "CU");
	assert_int_equal(m.entry, 1);
	/* "tarif est voté" is no expansion of TEOM (t, e, v), nor is
	 * "conseil; toute modification" one of CTM */
	struct strbuf sb = STRBUF_INIT;
	index_terms(idx, "conseil toute modification", 26, &sb);
	assert_null(strstr(sb.buf, "ctm"));
	strbuf_reset(&sb);
	index_terms(idx, "tarif est voté", 14, &sb);
	assert_null(strstr(sb.buf, "teom"));
	strbuf_release(&sb);
	index_free(idx);
}

/* ==== With the compiled lexicon and thesaurus ==== */

static const char *const LEX_FAQ =
	"{\"language\": \"french\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org\"},"
	" \"entries\": ["
	"  {\"id\": \"collecte\", \"questions\": [\"Quand a lieu la collecte des déchets ?\"],"
	"   \"answer\": \"Le mardi matin, sortez votre bac la veille.\"},"
	"  {\"id\": \"produit\", \"questions\": [\"Quel produit utiliser pour nettoyer le bac ?\"],"
	"   \"answer\": \"Du vinaigre blanc.\"},"
	"  {\"id\": \"financement\", \"questions\": [\"Qui finance le service ?\"],"
	"   \"answer\": \"La taxe d'enlèvement des ordures ménagères (TEOM), votée par la communauté.\"},"
	"  {\"id\": \"horaires\", \"questions\": [\"Quels sont les horaires de la déchèterie ?\"],"
	"   \"answer\": \"Du lundi au samedi, de 9 h à 18 h.\"}"
	" ]}";

static int setup_lex(void **state)
{
	text_unregister_all();
	if (lexfile_load("build") /* build/lexicon, from the repository root */ != 4) {
		fprintf(stderr, "lexicon files missing: run 'make' first\n");
		return -1;
	}
	*state = index_from_json(LEX_FAQ);
	return *state ? 0 : -1;
}

static int teardown_lex(void **state)
{
	index_free(*state);
	text_unregister_all();
	return 0;
}

static void lemmas_match_inflections(void **state)
{
	struct index *idx = *state;
	/* financée -> financer, finance -> finance: both stem to financ */
	assert_string_equal(answer_id(idx, "comment est financé le service"), "financement");
	assert_string_equal(answer_id(idx, "comment est financee le service"), "financement");
}

static void real_words_are_not_typos(void **state)
{
	struct index *idx = *state;
	/* "produire" is a word, not a typo of "produit" */
	struct match m = ask(idx, "produire");
	assert_int_equal(m.kind, MATCH_FALLBACK);
	/* a non-word still is */
	assert_string_equal(answer_id(idx, "quel prodiut pour nettoyer"), "produit");
	/* a real word one edit from an FAQ word is a spelling variant */
	assert_string_equal(answer_id(idx, "horaires de la dechetterie"), "horaires");
	struct strbuf sb = STRBUF_INIT;
	m = ask(idx, "produire");
	match_explain(idx, "produire", 8, &m, &sb);
	assert_null(strstr(sb.buf, "typo"));
	strbuf_release(&sb);
}

static void thesaurus_is_weaker_than_exact(void **state)
{
	struct index *idx = *state;
	/* "ramassage" is not in the FAQ; the thesaurus gives "collecte" */
	struct match t = ask(idx, "ramassage des déchets");
	struct match e = ask(idx, "collecte des déchets");
	assert_int_equal(t.entry, 0);
	assert_int_equal(e.entry, 0);
	assert_true(t.confidence < e.confidence);
	struct strbuf sb = STRBUF_INIT;
	match_explain(idx, "ramassage des déchets", 22, &t, &sb);
	assert_non_null(strstr(sb.buf, "thesaurus -> collect"));
	strbuf_release(&sb);
}

/* A neighbour counts even when it does not list the word back (MyThes is
 * one-way: "bagnole" lists "voiture", not the reverse), and the first
 * neighbours weigh more ("boulot": travail first, emploi third). */
static void thesaurus_one_way_and_ranked(void **state)
{
	(void)state;
	struct index *idx = index_from_json(
		"{\"language\": \"french\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org\"},"
		" \"entries\": ["
		"  {\"id\": \"travail\", \"questions\": [\"Le travail du dimanche est-il permis ?\"], \"answer\": \"Non.\"},"
		"  {\"id\": \"emploi\", \"questions\": [\"Où trouver les offres d'emploi ?\"], \"answer\": \"Au guichet.\"},"
		"  {\"id\": \"parking\", \"questions\": [\"Où garer sa voiture ?\"], \"answer\": \"Place du marché.\"}"
		" ]}");
	assert_non_null(idx);
	struct match m = ask(idx, "bagnole");
	assert_int_equal(m.entry, 2);
	m = ask(idx, "boulot");
	assert_int_equal(m.entry, 0);
	assert_true(m.ranked.n_cand >= 2);
	assert_true(m.ranked.cand[0].score > m.ranked.cand[1].score);
	index_free(idx);
}

static void answers_are_evidence(void **state)
{
	struct index *idx = *state;
	/* "TEOM" is only in an answer: it ranks its entry first, and with a
	 * question word too the entry is answered */
	struct match m = ask(idx, "c'est quoi la TEOM");
	assert_int_equal(m.entry, 2);
	assert_true(m.confidence > 0.2);
	assert_string_equal(answer_id(idx, "la TEOM finance quoi"), "financement");
}

static void one_weak_word_is_not_an_answer(void **state)
{
	struct index *idx = *state;
	/* six words, one known: not a confident answer */
	struct match m = ask(idx, "mon chien aboie toute la nuit quand le voisin sort son bac");
	assert_int_not_equal(m.kind, MATCH_ANSWER);
	/* a clear match keeps its answer despite a greeting and context */
	assert_string_equal(answer_id(idx, "Bonjour, à quelle heure ouvre la déchèterie samedi ? merci"),
			    "horaires");
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
		cmocka_unit_test_setup_teardown(advice_for_editors, setup, teardown),
		cmocka_unit_test_setup_teardown(explain_and_terms, setup, teardown),
		cmocka_unit_test(acronyms_meet_their_expansion),
	};
	const struct CMUnitTest lex_tests[] = {
		cmocka_unit_test(confidence_counts_the_lead),
		cmocka_unit_test_setup_teardown(lemmas_match_inflections, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(real_words_are_not_typos, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(thesaurus_is_weaker_than_exact, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(thesaurus_one_way_and_ranked, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(answers_are_evidence, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(one_weak_word_is_not_an_answer, setup_lex, teardown_lex),
	};
	int failed = cmocka_run_group_tests_name("match", tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("match with lexicon", lex_tests, NULL, NULL);
}
