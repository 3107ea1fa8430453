/* Unit tests for the transport-independent bot logic (src/bot.c). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "bot.h"
#include "helpers.h"

static int setup(void **state)
{
	struct index *idx = index_from_json(FR_FAQ);
	if (!idx)
		return -1;
	*state = bot_new(idx, NULL);
	return 0;
}

static int teardown(void **state)
{
	bot_free(*state);
	return 0;
}

static enum reply_kind say(struct bot *b, const char *text, enum chat_kind kind, int addressed,
			   char prefix, struct reply *r)
{
	struct inbound_msg m = { text, strlen(text), kind, addressed, "chat-1", prefix };
	return bot_handle(b, &m, r);
}

static void commands(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "/start", CHAT_PRIVATE, 1, '/', &r), REPLY_WELCOME);
	assert_non_null(strstr(r.text, "/faq"));
	reply_release(&r);
	assert_int_equal(say(b, "/aide", CHAT_PRIVATE, 1, '/', &r), REPLY_HELP);
	assert_non_null(strstr(r.text, "/souscrire"));
	reply_release(&r);
	assert_int_equal(say(b, "/HELP", CHAT_PRIVATE, 1, '/', &r), REPLY_HELP);
	reply_release(&r);
	/* Matrix-style prefix: the help names its own commands */
	assert_int_equal(say(b, "!aide", CHAT_GROUP, 1, '!', &r), REPLY_HELP);
	assert_non_null(strstr(r.text, "!faq"));
	assert_null(strstr(r.text, "/faq"));
	reply_release(&r);
	assert_int_equal(say(b, "/souscrire", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.link_url, "https://example.org/souscrire");
	reply_release(&r);
	assert_int_equal(say(b, "/inconnue", CHAT_PRIVATE, 1, '/', &r), REPLY_HELP);
	reply_release(&r);
}

static void faq_list_then_number(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "/faq", CHAT_PRIVATE, 1, '/', &r), REPLY_LIST);
	assert_int_equal(r.n_choices, 6);
	assert_string_equal(r.choices[1].id, "cout");
	assert_string_equal(r.choices[1].label, "Combien coûte la souscription ?");
	reply_release(&r);
	assert_int_equal(say(b, " 2. ", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	assert_string_equal(r.entry_id, "cout");
	assert_string_equal(r.text, "Le ticket d'entrée est modeste.");
	reply_release(&r);
	/* a number with no list pending, or out of range, is just a question */
	assert_int_equal(say(b, "9", CHAT_PRIVATE, 1, '/', &r), REPLY_FALLBACK);
	reply_release(&r);
}

static void answer_fallback_and_empty(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "combien coute la souscription", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	assert_string_equal(r.entry_id, "cout");
	assert_null(r.link_url);
	reply_release(&r);
	assert_int_equal(say(b, "comment renouveler mon passeport", CHAT_PRIVATE, 1, '/', &r),
			 REPLY_FALLBACK);
	assert_string_equal(r.text, "Pas de réponse.");
	assert_string_equal(r.link_url, "https://example.org/souscrire");
	assert_non_null(r.link_label);
	reply_release(&r);
	assert_int_equal(say(b, "merci !", CHAT_PRIVATE, 1, '/', &r), REPLY_EMPTY);
	reply_release(&r);
}

static void ambiguous_then_choice(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "où sont les archives ?", CHAT_PRIVATE, 1, '/', &r), REPLY_CHOOSE);
	assert_int_equal(r.n_choices, 2);
	char *second = strdup(r.choices[1].id);
	reply_release(&r);
	assert_int_equal(say(b, "2", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	assert_string_equal(r.entry_id, second);
	free(second);
	reply_release(&r);
	/* a pressed button */
	assert_int_equal(bot_choose(b, "chat-1", "jumeau-a", '/', &r), REPLY_ANSWER);
	assert_string_equal(r.text, "Ici.");
	reply_release(&r);
	/* an id removed by a reload */
	assert_int_equal(bot_choose(b, "chat-1", "disparu", '/', &r), REPLY_LIST);
	reply_release(&r);
}

/* A choice after a list says which question it answered (feedback_choice
 * records the pair); a pick from the /faq list answered no question. */
static void choice_names_the_question_it_answered(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "où sont les archives ?", CHAT_PRIVATE, 1, '/', &r), REPLY_CHOOSE);
	assert_null(r.chosen_from);
	reply_release(&r);
	assert_int_equal(say(b, "2", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	assert_non_null(r.chosen_from);
	assert_string_equal(r.chosen_from, "où sont les archives ?");
	reply_release(&r);
	/* a button from the fallback's suggestions */
	assert_int_equal(say(b, "ticket", CHAT_PRIVATE, 1, '/', &r), REPLY_FALLBACK);
	assert_true(r.n_choices >= 1);
	char *id = strdup(r.choices[0].id);
	reply_release(&r);
	assert_int_equal(bot_choose(b, "chat-1", id, '/', &r), REPLY_ANSWER);
	assert_string_equal(r.chosen_from, "ticket");
	reply_release(&r);
	/* the list is used up: the same button again is no longer a choice */
	assert_int_equal(bot_choose(b, "chat-1", id, '/', &r), REPLY_ANSWER);
	assert_null(r.chosen_from);
	reply_release(&r);
	free(id);
	/* an entry the list did not offer, and the /faq list */
	assert_int_equal(say(b, "où sont les archives ?", CHAT_PRIVATE, 1, '/', &r), REPLY_CHOOSE);
	reply_release(&r);
	assert_int_equal(bot_choose(b, "chat-1", "cout", '/', &r), REPLY_ANSWER);
	assert_null(r.chosen_from);
	reply_release(&r);
	assert_int_equal(say(b, "/faq", CHAT_PRIVATE, 1, '/', &r), REPLY_LIST);
	reply_release(&r);
	assert_int_equal(say(b, "2", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	assert_null(r.chosen_from);
	reply_release(&r);
	/* an ordinary answer */
	assert_int_equal(say(b, "combien coute la souscription", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	assert_null(r.chosen_from);
	reply_release(&r);
}

static void group_etiquette(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "combien coute la souscription", CHAT_GROUP, 0, '/', &r), REPLY_NONE);
	reply_release(&r);
	assert_int_equal(say(b, "/faq", CHAT_GROUP, 0, '/', &r), REPLY_NONE);
	reply_release(&r);
	assert_int_equal(say(b, "combien coute la souscription", CHAT_GROUP, 1, '/', &r), REPLY_ANSWER);
	reply_release(&r);
}

static void overrides(void **state)
{
	(void)state;
	struct index *idx = index_from_json(
		"{\"language\": \"french\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org/a\"},"
		" \"messages\": {\"help\": \"Tapez {prefix}faq ou {prefix}souscrire.\"},"
		" \"entries\": [{\"id\": \"a\", \"questions\": [\"prix\"], \"answer\": \"Dix.\"}]}");
	struct bot_options opt = { 0.9, "https://override.example/souscrire" };
	struct bot *b = bot_new(idx, &opt);
	struct reply r;
	assert_int_equal(say(b, "!aide", CHAT_PRIVATE, 1, '!', &r), REPLY_HELP);
	assert_string_equal(r.text, "Tapez !faq ou !souscrire.");
	reply_release(&r);
	assert_int_equal(say(b, "/souscrire", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.link_url, "https://override.example/souscrire");
	reply_release(&r);
	bot_free(b);
}

static void swap_index(void **state)
{
	struct bot *b = *state;
	struct index *fresh = index_from_json(
		"{\"language\": \"french\", \"fallback\": {\"text\": \"Nouveau.\", \"url\": \"https://e.org/n\"},"
		" \"entries\": [{\"id\": \"n\", \"questions\": [\"combien coute la souscription\"], \"answer\": \"Gratuit.\"}]}");
	struct index *old = bot_swap_index(b, fresh);
	assert_non_null(old);
	struct reply r;
	say(b, "combien coute la souscription", CHAT_PRIVATE, 1, '/', &r);
	assert_string_equal(r.text, "Gratuit.");
	reply_release(&r);
	index_free(old);
}

static void plain_format_and_huge_message(void **state)
{
	struct bot *b = *state;
	struct reply r;
	say(b, "comment renouveler mon passeport", CHAT_PRIVATE, 1, '/', &r);
	struct strbuf sb = STRBUF_INIT;
	reply_format_plain(&r, &sb);
	assert_non_null(strstr(sb.buf, "Pas de réponse."));
	assert_non_null(strstr(sb.buf, "https://example.org/souscrire"));
	reply_release(&r);
	strbuf_release(&sb);
	size_t n = 10 * 1024 * 1024;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i % 9 == 8 ? ' ' : 'a' + i % 5);
	big[n] = '\0';
	struct inbound_msg m = { big, n, CHAT_PRIVATE, 1, "chat-2", '/' };
	enum reply_kind k = bot_handle(b, &m, &r);
	assert_true(k == REPLY_FALLBACK || k == REPLY_EMPTY);
	reply_release(&r);
	free(big);
}


static struct bot *bot_from(const char *json)
{
	struct index *idx = index_from_json(json);
	assert_non_null(idx);
	return bot_new(idx, NULL);
}

#define FAQ_IN(lang, extra) \
	"{\"language\": \"" lang "\", \"fallback\": {\"text\": \"No answer.\", \"url\": \"https://e.org/more\"" \
	extra "}, \"entries\": [{\"id\": \"a\", \"questions\": [\"price\"], \"answer\": \"Ten.\"}]}"

static void texts_follow_the_faq_language(void **state)
{
	(void)state;
	static const char *const fr[] = { "french", "fr", "fre", "fra" };
	static const char *const en[] = { "english", "en", "eng", "porter", "german", "spanish" };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(bot_language_of(fr[i]), BOT_LANG_FR);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(bot_language_of(en[i]), BOT_LANG_EN);
	struct bot *b = bot_from(FAQ_IN("english", ""));
	struct reply r;
	assert_int_equal(say(b, "/help", CHAT_PRIVATE, 1, '/', &r), REPLY_HELP);
	assert_non_null(strstr(r.text, "/subscribe"));
	assert_null(strstr(r.text, "/souscrire"));
	assert_null(strstr(r.text, "/aide"));
	reply_release(&r);
	/* the other language's command names still work */
	assert_int_equal(say(b, "/souscrire", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.text, "To subscribe, it is here:");
	assert_string_equal(r.link_label, "Learn more"); /* neutral default */
	assert_int_equal(r.lang, BOT_LANG_EN);
	reply_release(&r);
	assert_int_equal(say(b, "!AIDE", CHAT_PRIVATE, 1, '!', &r), REPLY_HELP);
	assert_non_null(strstr(r.text, "!help"));
	reply_release(&r);
	char *t = bot_text(b, "cooldown", '/');
	assert_string_equal(t, "I answered this question a few minutes ago: see my answer just above.");
	free(t);
	size_t n;
	const struct bot_command *c = bot_commands(b, &n);
	assert_true(n >= 3);
	assert_string_equal(c[0].name, "help");
	assert_string_equal(c[2].name, "subscribe");
	bot_free(b);

	b = bot_from(FAQ_IN("fr", ""));
	assert_int_equal(say(b, "/subscribe", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.text, "Pour souscrire, c'est ici :");
	assert_string_equal(r.link_label, "En savoir plus");
	reply_release(&r);
	c = bot_commands(b, &n);
	assert_string_equal(c[0].name, "aide");
	assert_string_equal(c[0].description, "Comment poser une question");
	bot_free(b);

	/* another language: English texts, unless "messages" says otherwise */
	b = bot_from("{\"language\": \"german\", \"fallback\": {\"text\": \"Keine Antwort.\", \"url\": "
		     "\"https://e.org/mehr\", \"label\": \"Mehr erfahren\"}, \"messages\": {\"help\": "
		     "\"Fragen Sie einfach. {prefix}faq: die Liste\"}, \"entries\": [{\"id\": \"a\", "
		     "\"questions\": [\"Preis\"], \"answer\": \"Zehn.\"}]}");
	assert_int_equal(say(b, "/help", CHAT_PRIVATE, 1, '/', &r), REPLY_HELP);
	assert_string_equal(r.text, "Fragen Sie einfach. /faq: die Liste");
	reply_release(&r);
	assert_int_equal(say(b, "/faq", CHAT_PRIVATE, 1, '/', &r), REPLY_LIST);
	assert_string_equal(r.text, "Frequently asked questions (reply with a number):");
	reply_release(&r);
	assert_int_equal(say(b, "/subscribe", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.link_label, "Mehr erfahren");
	reply_release(&r);
	bot_free(b);
}

static void commands_are_recognised_in_both_languages(void **state)
{
	(void)state;
	static const char *const yes[] = { "!aide", "!help", "/Subscribe please", "/help@faqbot",
					   "!faq", "!souscrire ?", "/start", "!questions" };
	static const char *const no[] = { "aide", "!aides", "!faq2", "/", "!", "/inconnue", "!éaide",
					  "/helpé" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		assert_true(bot_is_command(yes[i], strlen(yes[i]), yes[i][0]));
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		assert_false(bot_is_command(no[i], strlen(no[i]), no[i][0] == '/' ? '/' : '!'));
	assert_false(bot_is_command("/aide", 5, '!'));
}

static void link_label_comes_from_the_faq(void **state)
{
	(void)state;
	struct bot *b = bot_from(FAQ_IN("french", ", \"label\": \"Souscrire à l'étude\""));
	struct reply r;
	assert_int_equal(say(b, "/souscrire", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.link_label, "Souscrire à l'étude");
	reply_release(&r);
	bot_free(b);
	/* the older place, messages.link_label, still works */
	b = bot_from("{\"language\": \"english\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org/\"},"
		     " \"messages\": {\"link_label\": \"Join\"}, \"entries\": [{\"id\": \"a\", \"questions\": "
		     "[\"price\"], \"answer\": \"Ten.\"}]}");
	assert_int_equal(say(b, "/subscribe", CHAT_PRIVATE, 1, '/', &r), REPLY_SUBSCRIBE);
	assert_string_equal(r.link_label, "Join");
	reply_release(&r);
	bot_free(b);
}

/* The fallback's link sits right under the sentence that introduces it,
 * before the suggestions. */
static void fallback_link_comes_before_suggestions(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "ticket", CHAT_PRIVATE, 1, '/', &r), REPLY_FALLBACK);
	assert_true(r.n_choices >= 1);
	struct strbuf sb = STRBUF_INIT;
	reply_format_plain(&r, &sb);
	assert_string_equal(sb.buf, "Pas de réponse.\n"
				    "En savoir plus : https://example.org/souscrire\n\n"
				    "Peut-être cherchiez-vous (répondez par un numéro) :\n"
				    "1. Combien coûte la souscription ?\n");
	strbuf_reset(&sb);
	reply_render(&r, REPLY_MATRIX, &sb);
	assert_string_equal(sb.buf, "Pas de réponse.<br><a href=\"https://example.org/souscrire\">En savoir "
				    "plus</a><br><br>Peut-être cherchiez-vous (répondez par un numéro) :"
				    "<ol><li>Combien coûte la souscription ?</li></ol>");
	strbuf_reset(&sb);
	reply_render(&r, REPLY_TELEGRAM, &sb);
	assert_string_equal(sb.buf, "Pas de réponse.\n<a href=\"https://example.org/souscrire\">En savoir "
				    "plus</a>\n\nPeut-être cherchiez-vous (répondez par un numéro) :");
	strbuf_release(&sb);
	reply_release(&r);
}

/* Every choice carries its number, so a button shows what to type. */
static void choices_are_numbered(void **state)
{
	struct bot *b = *state;
	struct reply r;
	assert_int_equal(say(b, "où sont les archives ?", CHAT_PRIVATE, 1, '/', &r), REPLY_CHOOSE);
	assert_non_null(strstr(r.text, "numéro"));
	for (size_t i = 0; i < r.n_choices; i++) {
		char want[200];
		snprintf(want, sizeof(want), "%zu. %s", i + 1, r.choices[i].label);
		assert_string_equal(r.choices[i].button, want);
	}
	assert_string_equal(r.choices[0].button, "1. Où se trouvent les archives ?");
	reply_release(&r);
	assert_int_equal(say(b, "/faq", CHAT_PRIVATE, 1, '/', &r), REPLY_LIST);
	assert_string_equal(r.choices[5].button, "6. Où se trouvent les archives ?");
	reply_release(&r);
}

static void answers_carry_their_markup(void **state)
{
	(void)state;
	struct bot *b = bot_from("{\"language\": \"french\", \"fallback\": {\"text\": \"Voir **le site**.\","
				 " \"url\": \"https://e.org/\"}, \"entries\": [{\"id\": \"a\", \"questions\": "
				 "[\"prix\"], \"answer\": \"Coût : **10 €**, voir [la grille](https://e.org/g).\\n"
				 "- un _atelier_\\n- 3 * 4 rapports\"}]}");
	struct reply r;
	assert_int_equal(say(b, "prix", CHAT_PRIVATE, 1, '/', &r), REPLY_ANSWER);
	/* existing transports send text: it must hold no markup */
	assert_string_equal(r.text, "Coût : 10 €, voir la grille (https://e.org/g).\n• un atelier\n"
				    "• 3 * 4 rapports");
	assert_non_null(strstr(r.markup, "**10 €**"));
	struct strbuf sb = STRBUF_INIT;
	reply_render(&r, REPLY_TELEGRAM, &sb);
	assert_string_equal(sb.buf, "Coût : <b>10 €</b>, voir <a href=\"https://e.org/g\">la grille</a>.\n"
				    "• un <i>atelier</i>\n• 3 * 4 rapports");
	strbuf_reset(&sb);
	reply_render(&r, REPLY_MATRIX, &sb);
	assert_string_equal(sb.buf, "<p>Coût : <strong>10 €</strong>, voir <a href=\"https://e.org/g\">la "
				    "grille</a>.</p><ul><li>un <em>atelier</em></li><li>3 * 4 rapports</li></ul>");
	strbuf_release(&sb);
	reply_release(&r);
	assert_int_equal(say(b, "météo", CHAT_PRIVATE, 1, '/', &r), REPLY_FALLBACK);
	assert_string_equal(r.text, "Voir le site.");
	reply_release(&r);
	bot_free(b);
}

static void mentions_are_stripped(void **state)
{
	(void)state;
	struct bot *b = bot_from(
		"{\"language\": \"french\", \"fallback\": {\"text\": \"x\", \"url\": \"https://e.org/\"},"
		" \"entries\": ["
		"  {\"id\": \"interet-etude\", \"questions\": [\"à quoi sert cette étude ?\", "
		"    \"quel intérêt pour ma collectivité\"], \"answer\": \"À anticiper.\"},"
		"  {\"id\": \"assistance\", \"questions\": [\"Qui assure l'assistance ?\"], \"answer\": \"Nous.\"},"
		"  {\"id\": \"faq\", \"questions\": [\"Qui tient cette FAQ à jour ?\"], \"answer\": \"Nous.\"}"
		" ]}");
	struct bot_identity id = { "Assistant FAQ", "@faqbot:example.org", "faqbot_bot" };
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "Assistant FAQ: à quoi sert cette étude ?", "à quoi sert cette étude ?" },
		{ "  assistant faq , à quoi sert cette étude ?", "à quoi sert cette étude ?" },
		{ "@faqbot à quoi sert cette étude ?", "à quoi sert cette étude ?" },
		{ "faqbot, à quoi sert cette étude ?", "à quoi sert cette étude ?" },
		{ "@faqbot_bot à quoi sert cette étude ?", "à quoi sert cette étude ?" },
		{ "@faqbot:example.org: à quoi sert cette étude ?", "à quoi sert cette étude ?" },
		{ "à quoi sert cette étude ? @faqbot:example.org", "à quoi sert cette étude ?" },
		{ "à quoi sert cette étude ? @faqbot_bot", "à quoi sert cette étude ?" },
		{ "à quoi sert cette étude, Assistant FAQ", "à quoi sert cette étude" },
		/* not mentions: kept as written */
		{ "Assistant FAQ du projet, qui est-ce ?", "Assistant FAQ du projet, qui est-ce ?" },
		{ "faqbotique: quoi ?", "faqbotique: quoi ?" },
		{ "qui écrit la FAQ assistant faq", "qui écrit la FAQ assistant faq" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		size_t start, n = bot_strip_mention(cases[i].in, strlen(cases[i].in), &id, &start);
		char got[200];
		snprintf(got, sizeof(got), "%.*s", (int)n, cases[i].in + start);
		assert_string_equal(got, cases[i].out);
	}
	/* the stripped question is matched as if the name had not been there */
	const char *q = "Assistant FAQ: à quoi sert cette étude ?";
	size_t start, n = bot_strip_mention(q, strlen(q), &id, &start);
	struct inbound_msg m = { q + start, n, CHAT_PRIVATE, 1, "c", '/' };
	struct reply with, without;
	bot_handle(b, &m, &with);
	say(b, "à quoi sert cette étude ?", CHAT_PRIVATE, 1, '/', &without);
	assert_int_equal(with.kind, REPLY_ANSWER);
	assert_int_equal(with.kind, without.kind);
	assert_string_equal(with.entry_id, "interet-etude");
	assert_string_equal(with.entry_id, without.entry_id);
	assert_true(with.confidence == without.confidence);
	reply_release(&with);
	say(b, q, CHAT_PRIVATE, 1, '/', &with); /* the name left in costs confidence */
	assert_true(with.kind != REPLY_ANSWER || with.confidence < without.confidence);
	reply_release(&with);
	reply_release(&without);
	/* no identity: nothing cut but the surrounding spaces */
	struct bot_identity none = { NULL, NULL, NULL };
	n = bot_strip_mention("  @faqbot x ", 12, &none, &start);
	assert_int_equal(start, 2);
	assert_int_equal(n, 9);
	bot_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(commands, setup, teardown),
		cmocka_unit_test_setup_teardown(faq_list_then_number, setup, teardown),
		cmocka_unit_test_setup_teardown(answer_fallback_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(ambiguous_then_choice, setup, teardown),
		cmocka_unit_test_setup_teardown(group_etiquette, setup, teardown),
		cmocka_unit_test(overrides),
		cmocka_unit_test_setup_teardown(swap_index, setup, teardown),
		cmocka_unit_test_setup_teardown(plain_format_and_huge_message, setup, teardown),
		cmocka_unit_test(texts_follow_the_faq_language),
		cmocka_unit_test(commands_are_recognised_in_both_languages),
		cmocka_unit_test(link_label_comes_from_the_faq),
		cmocka_unit_test_setup_teardown(fallback_link_comes_before_suggestions, setup, teardown),
		cmocka_unit_test_setup_teardown(choices_are_numbered, setup, teardown),
		cmocka_unit_test_setup_teardown(choice_names_the_question_it_answered, setup, teardown),
		cmocka_unit_test(answers_carry_their_markup),
		cmocka_unit_test(mentions_are_stripped),
	};
	return cmocka_run_group_tests_name("bot", tests, NULL, NULL);
}
