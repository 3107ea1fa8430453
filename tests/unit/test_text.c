/* Unit tests for the text pipeline (src/text.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lexfile.h"
#include "text.h"

/* Analyses s and returns its stems joined by spaces.  The result lives in
 * one of 4 rotating buffers, so two calls can be compared with each other. */
static const char *stems(struct text *t, const char *s)
{
	static char bufs[4][4096];
	static int next;
	char *out = bufs[next++ % 4];
	struct termlist tl;
	termlist_init(&tl);
	text_analyze(t, s, strlen(s), &tl, 0);
	out[0] = '\0';
	for (size_t i = 0; i < tl.n; i++) {
		if (i)
			strcat(out, " ");
		strncat(out, termlist_stem(&tl, i), sizeof(bufs[0]) - strlen(out) - 2);
	}
	termlist_release(&tl);
	return out;
}

static int setup_fr(void **state)
{
	*state = text_new("french");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	text_free(*state);
	return 0;
}

static void accents_and_case_fold_alike(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "numérique"), "numer");
	assert_string_equal(stems(t, "NUMÉRIQUE"), "numer");
	assert_string_equal(stems(t, "numerique"), "numer");
	assert_string_equal(stems(t, "Numérique"), stems(t, "nume\xcc\x81rique")); /* NFD input */
}

static void ligatures_and_compat_forms(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "œuvre"), stems(t, "oeuvre"));
	assert_string_equal(stems(t, "ŒUVRE"), stems(t, "oeuvre"));
	/* fullwidth letters are compatibility forms of ASCII */
	assert_string_equal(stems(t, "\xef\xbc\xb0\xef\xbc\xac\xef\xbc\xa8"), "plh");
}

static void elisions_with_both_apostrophes(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "l'habitat"), "habitat");
	assert_string_equal(stems(t, "l’habitat"), "habitat");
	assert_string_equal(stems(t, "d'habitat"), "habitat");
	assert_string_equal(stems(t, "jusqu'ici lorsqu'on puisqu'il"), "");
	assert_string_equal(stems(t, "qu’est-ce que c’est"), "");
}

static void hyphens_and_punctuation_split(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "multi-acteurs"), stems(t, "multi acteurs"));
	assert_string_not_equal(stems(t, "multi-acteurs"), stems(t, "multiacteurs"));
	assert_string_equal(stems(t, "y-a-t-il un risque?!"), "risqu");
	assert_string_equal(stems(t, "(habitat),numérique;"), "habitat numer");
}

static void versions_and_numbers_are_tokens(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "PLH 2.0"), "plh 2.0");
	assert_string_equal(stems(t, "un PLH 0,1."), "plh 0.1");
	assert_string_equal(stems(t, "en 2026"), "2026");
	/* a trailing dot is punctuation, not part of the number */
	assert_string_equal(stems(t, "version 3."), "version 3");
}

/* Ordinals are their number; other digit-letter tokens stay whole. */
static void ordinals_are_numbers(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "son 16e anniversaire"), stems(t, "16 anniversaire"));
	assert_string_equal(stems(t, "le 1er mai"), stems(t, "1 mai"));
	assert_string_equal(stems(t, "3ème étage"), stems(t, "3 étage"));
	assert_string_equal(stems(t, "un T2"), "t2");
	assert_string_not_equal(stems(t, "16ans"), "16"); /* not an ordinal ending */
	struct text *en = text_new("english");
	assert_string_equal(stems(en, "21st"), "21");
	text_free(en);
}

static void stopwords_are_dropped(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "le la les de du des et ou"), "");
	assert_string_equal(stems(t, "C'est quoi une étude en souscription ?"), "etud souscript");
}

static void invalid_utf8_never_crashes_or_leaks_out(void **state)
{
	struct text *t = *state;
	const char bad[] = "habitat\xff\xfe num\xc3rique \xed\xa0\x80 \xc0\xaf fin";
	struct termlist tl;
	termlist_init(&tl);
	text_analyze(t, bad, sizeof(bad) - 1, &tl, 0);
	assert_true(tl.n >= 2);
	for (size_t i = 0; i < tl.n; i++) {
		assert_true(text_utf8_valid(termlist_stem(&tl, i), strlen(termlist_stem(&tl, i))));
		assert_true(text_utf8_valid(termlist_word(&tl, i), strlen(termlist_word(&tl, i))));
	}
	assert_string_equal(termlist_stem(&tl, 0), "habitat");
	termlist_release(&tl);
}

static void empty_and_huge_inputs(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, ""), "");
	size_t n = 100 * 1024;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = (i % 11 == 10) ? ' ' : (char)('a' + i % 7);
	big[n] = '\0';
	struct termlist tl;
	termlist_init(&tl);
	size_t got = text_analyze(t, big, n, &tl, 64);
	assert_int_equal(got, 64); /* capped */
	termlist_clear(&tl);
	memset(big, 'x', n); /* one 100 KB "word": longer than any token */
	assert_int_equal(text_analyze(t, big, n, &tl, 0), 0);
	termlist_release(&tl);
	free(big);
}

static void utf8_helpers(void **state)
{
	(void)state;
	assert_true(text_utf8_valid("héllo", strlen("héllo")));
	assert_false(text_utf8_valid("h\xc3", 2));
	assert_false(text_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
	assert_false(text_utf8_valid("\xc0\xaf", 2));     /* overlong */
	assert_false(text_utf8_valid("a\0b", 3));         /* NUL */
	struct strbuf sb = STRBUF_INIT;
	text_utf8_sanitize("a\xff" "b", 3, &sb);
	assert_string_equal(sb.buf, "a\xef\xbf\xbd" "b");
	strbuf_release(&sb);
	assert_int_equal(text_utf16_len("aé😀", strlen("aé😀")), 4);
}

static void edit_distance(void **state)
{
	(void)state;
	assert_int_equal(text_edit_distance("souscript", 9, "souscirpt", 9, 2), 1); /* swap */
	assert_int_equal(text_edit_distance("etud", 4, "etude", 5, 2), 1);
	assert_int_equal(text_edit_distance("abc", 3, "abc", 3, 1), 0);
	assert_int_equal(text_edit_distance("kitten", 6, "sitting", 7, 1), 2); /* capped at max+1 */
}

static void english_and_other_languages(void **state)
{
	(void)state;
	struct text *en = text_new("english");
	assert_non_null(en);
	assert_true(text_has_stopwords(en));
	assert_string_equal(stems(en, "How much does the subscription cost?"), "subscript cost");
	assert_string_equal(stems(en, "Don't worry, it's running"), "worri run");
	text_free(en);
	struct text *de = text_new("german"); /* a stemmer without a stopword list */
	assert_non_null(de);
	assert_false(text_has_stopwords(de));
	assert_string_equal(stems(de, "Häuser"), "haus");
	text_free(de);
	assert_null(text_new("klingon"));
}

/* ==== With the compiled lexicon and thesaurus (build/lexicon, made by
 * `make`; the test binary finds it beside its directory) ==== */

static int setup_lex(void **state)
{
	text_unregister_all();
	if (lexfile_load("build") /* build/lexicon, from the repository root */ != 4) {
		fprintf(stderr, "lexicon files missing: run 'make' first\n");
		return -1;
	}
	*state = text_new("french");
	return *state ? 0 : -1;
}

static int teardown_lex(void **state)
{
	text_free(*state);
	text_unregister_all();
	return 0;
}

static void lemmas_meet(void **state)
{
	struct text *t = *state;
	assert_true(text_has_lexicon(t));
	/* inflections, with or without accents, and irregular forms */
	assert_string_equal(stems(t, "financée"), stems(t, "financer"));
	assert_string_equal(stems(t, "financee"), stems(t, "financer"));
	assert_string_equal(stems(t, "finance"), stems(t, "financer"));
	assert_string_equal(stems(t, "sert"), stems(t, "servir"));
	assert_string_equal(stems(t, "peuvent"), stems(t, "pouvoir"));
	assert_string_equal(stems(t, "travaux"), stems(t, "travail"));
	/* derivations whose base is a word */
	assert_string_equal(stems(t, "composteur"), stems(t, "compost"));
	assert_string_equal(stems(t, "budgétaire"), stems(t, "budget"));
	assert_string_equal(stems(t, "ramassage"), stems(t, "ramasser"));
	/* but different words stay apart */
	assert_string_not_equal(stems(t, "produire"), stems(t, "produit"));
}

static void real_words_are_known(void **state)
{
	struct text *t = *state;
	assert_true(text_known_word(t, "finance"));
	assert_true(text_known_word(t, "produire"));
	assert_true(text_known_word(t, "financee")); /* folded form of a real word */
	assert_false(text_known_word(t, "souscirption"));
	assert_false(text_known_word(t, "financ"));
}

static void thesaurus_neighbours(void **state)
{
	struct text *t = *state;
	const char *n = text_neighbours(t, "ramassage");
	assert_non_null(n);
	assert_non_null(strstr(n, "collecte"));
	assert_null(text_neighbours(t, "zzzzqx"));
}

/* Chat spellings (faq/chat/) are read as the words they stand for. */
static void chat_forms_are_read_as_words(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "mdp perdu"), stems(t, "mot de passe perdu"));
	assert_string_equal(stems(t, "RDV"), stems(t, "rendez-vous"));
	assert_string_equal(stems(t, "cb pr un passeport"), stems(t, "combien pour un passeport"));
	assert_string_equal(stems(t, "svp"), "");
	/* elided stopwords the tokeniser splits: quelqu'un, ce mois-ci */
	assert_string_equal(stems(t, "quelqu'un"), "");
	assert_string_equal(stems(t, "ce mois-ci"), stems(t, "mois"));
	assert_string_not_equal(stems(t, "mdp"), "mdp");
	struct text *en = text_new("english");
	assert_string_equal(stems(en, "pls can u help"), stems(en, "please can you help"));
	assert_string_equal(stems(en, "wanna renew"), stems(en, "want to renew"));
	text_free(en);
}

/* Elisions typed without the apostrophe lose the elided letter when the
 * rest is a word of the lexicon and the whole is not. */
static void elisions_without_apostrophe(void **state)
{
	struct text *t = *state;
	assert_string_equal(stems(t, "jarrive"), stems(t, "j'arrive"));
	assert_string_equal(stems(t, "lassurance"), stems(t, "l'assurance"));
	assert_string_equal(stems(t, "cest lent"), stems(t, "lent"));
	assert_string_equal(stems(t, "jpeux venir"), stems(t, "venir")); /* chat: j + consonant */
	/* a word of its own is never cut ("laine" is not "l'aine") */
	assert_string_not_equal(stems(t, "laine"), stems(t, "aine"));
	assert_string_not_equal(stems(t, "note"), stems(t, "ôte"));
	/* a non-word whose rest is no word either stays as typed */
	assert_string_equal(stems(t, "jzzqx"), "jzzqx");
}

static void damaged_tables_are_refused(void **state)
{
	(void)state;
	static const char junk[] = "FQLEX002\x01\0\0\0\0\0\0\0\x05\0\0\0abc";
	assert_int_equal(text_register("french", TEXT_LEXICON, "garbage", 7), -1);
	assert_int_equal(text_register("french", TEXT_LEXICON, junk, sizeof(junk) - 1), -1);
	/* a thesaurus is not a lexicon */
	static const char ths[] = "FQTHS002\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0";
	assert_int_equal(text_register("french", TEXT_LEXICON, ths, sizeof(ths) - 1), -1);
	assert_int_equal(text_register("french", TEXT_THESAURUS, ths, sizeof(ths) - 1), 0);
}

static void without_lexicon_snowball_alone(void **state)
{
	(void)state;
	text_unregister_all();
	struct text *t = text_new("french");
	assert_false(text_has_lexicon(t));
	assert_false(text_known_word(t, "finance"));
	assert_null(text_neighbours(t, "ramassage"));
	assert_string_equal(stems(t, "financee"), "finance"); /* Snowball on folded text */
	text_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(accents_and_case_fold_alike, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(ligatures_and_compat_forms, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(elisions_with_both_apostrophes, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(hyphens_and_punctuation_split, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(versions_and_numbers_are_tokens, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(stopwords_are_dropped, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(ordinals_are_numbers, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(invalid_utf8_never_crashes_or_leaks_out, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(empty_and_huge_inputs, setup_fr, teardown),
		cmocka_unit_test_setup_teardown(chat_forms_are_read_as_words, setup_fr, teardown),
		cmocka_unit_test(utf8_helpers),
		cmocka_unit_test(edit_distance),
		cmocka_unit_test(english_and_other_languages),
	};
	const struct CMUnitTest lex_tests[] = {
		cmocka_unit_test_setup_teardown(lemmas_meet, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(real_words_are_known, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(thesaurus_neighbours, setup_lex, teardown_lex),
		cmocka_unit_test_setup_teardown(elisions_without_apostrophe, setup_lex, teardown_lex),
		cmocka_unit_test(damaged_tables_are_refused),
		cmocka_unit_test(without_lexicon_snowball_alone),
	};
	int failed = cmocka_run_group_tests_name("text", tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("text with lexicon", lex_tests, NULL, NULL);
}
