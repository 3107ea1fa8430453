/* Unit tests for the transport-independent bot logic (src/bot.c). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
	};
	return cmocka_run_group_tests_name("bot", tests, NULL, NULL);
}
