/* Unit tests for votes, choices, their summary and live learning
 * (src/feedback.c, with the store and the bot). */
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

#include "bot.h"
#include "config.h"
#include "feedback.h"
#include "helpers.h"
#include "metrics.h"
#include "store.h"

struct fx {
	char dir[64];
	struct store *st;
	struct bot *bot;
	struct feedback *fb;
};

static struct fx *fx_new(long learn_min_users)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/faqbot-fb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char err[512];
	f->st = store_open(f->dir, err, sizeof(err));
	assert_non_null(f->st);
	f->bot = bot_new(index_from_json(FR_FAQ), NULL);
	struct feedback_options o = { 1, learn_min_users, 90LL * 86400000 };
	f->fb = feedback_new(f->st, f->bot, &o);
	metrics_reset();
	return f;
}

static void fx_free(struct fx *f)
{
	feedback_free(f->fb);
	bot_free(f->bot);
	store_close(f->st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}

/* The bot's reply to text from chat (every user in its own chat). */
static enum reply_kind say(struct fx *f, const char *chat, const char *text, struct reply *r)
{
	struct inbound_msg m = { text, strlen(text), CHAT_PRIVATE, 1, chat, '/' };
	return bot_handle(f->bot, &m, r);
}

/* user asks q, gets a list or suggestions, and picks entry (by button). */
static int pick(struct fx *f, const char *user, const char *q, const char *entry, int64_t now)
{
	struct reply r;
	enum reply_kind k = say(f, user, q, &r);
	assert_true(k == REPLY_CHOOSE || k == REPLY_FALLBACK);
	reply_release(&r);
	assert_int_equal(bot_choose(f->bot, user, entry, '/', &r), REPLY_ANSWER);
	int rc = feedback_choice(f->fb, "t", user, user, &r, now);
	reply_release(&r);
	return rc;
}

static int metric(const char *series)
{
	struct strbuf sb = STRBUF_INIT;
	metrics_render(&sb);
	const char *p = strstr(sb.buf, series);
	int v = p ? atoi(p + strlen(series)) : 0;
	strbuf_release(&sb);
	return v;
}

static void vote_values(void **state)
{
	(void)state;
	assert_int_equal(feedback_vote_value("\xf0\x9f\x91\x8d"), 1);                 /* 👍 */
	assert_int_equal(feedback_vote_value("\xf0\x9f\x91\x8d\xef\xb8\x8f"), 1);     /* 👍️ */
	assert_int_equal(feedback_vote_value("\xf0\x9f\x91\x8e\xf0\x9f\x8f\xbd"), -1); /* 👎🏽 */
	assert_int_equal(feedback_vote_value("+1"), 1);
	assert_int_equal(feedback_vote_value("-1"), -1);
	assert_int_equal(feedback_vote_value("\xf0\x9f\x91\x8dx"), 0);
	assert_int_equal(feedback_vote_value("\xe2\x9d\xa4"), 0);                     /* ❤ */
	assert_int_equal(feedback_vote_value(""), 0);
	assert_int_equal(feedback_vote_value(NULL), 0);
}

/* An answer is recorded with its question; 100 reactions of one user
 * count once, in the store and in the metrics; a 👎 names the question. */
static void votes_reach_the_summary_once_per_user(void **state)
{
	(void)state;
	struct fx *f = fx_new(0);
	struct reply r;
	assert_int_equal(say(f, "c1", "combien coute la souscription", &r), REPLY_ANSWER);
	assert_int_equal(feedback_answered(f->fb, "t", "c1:5", &r, "combien coute la souscription", 29, 10), 0);
	reply_release(&r);
	assert_int_equal(say(f, "c1", "/aide", &r), REPLY_HELP);  /* not an answer: nothing */
	assert_int_equal(feedback_answered(f->fb, "t", "c1:6", &r, "/aide", 5, 10), 0);
	reply_release(&r);
	assert_int_equal(store_answered_sent(f->st, "t", "c1", "c1:5", "77"), 0);
	assert_int_equal(store_answered_sent(f->st, "t", "c1", "c1:6", "78"), 0);
	for (int i = 0; i < 100; i++)
		assert_true(feedback_vote(f->fb, "t", "c1", "77", "alice", 1, NULL, 20 + i) > 0);
	assert_int_equal(feedback_vote(f->fb, "t", "c1", "77", "bob", -1, NULL, 30), STORE_VOTE_CHANGED);
	assert_int_equal(feedback_vote(f->fb, "t", "c1", "78", "bob", -1, NULL, 30), STORE_VOTE_UNKNOWN);
	assert_int_equal(metric("faqbot_feedback_total{transport=\"t\",kind=\"up\"} "), 1);
	assert_int_equal(metric("faqbot_feedback_total{transport=\"t\",kind=\"down\"} "), 1);
	assert_int_equal(metric("faqbot_feedback_total{transport=\"t\",kind=\"ignored\"} "), 1);
	struct feedback_summary s;
	assert_int_equal(feedback_summarize(f->st, bot_index(f->bot), 0, &s), 0);
	assert_int_equal(s.n_votes, 1);
	assert_string_equal(s.votes[0].entry, "cout");
	assert_int_equal(s.votes[0].up, 1);
	assert_int_equal(s.votes[0].down, 1);
	assert_int_equal(s.votes[0].n_down_questions, 1);
	assert_string_equal(s.votes[0].down_questions[0], "combien coute la souscription");
	feedback_summary_release(&s);
	/* Matrix: a reaction casts a vote, its redaction withdraws it; a
	 * second identical reaction takes over, so redacting the first then
	 * withdraws nothing */
	assert_int_equal(feedback_vote(f->fb, "t", "c1", "77", "carol", -1, "$r1", 50), STORE_VOTE_CHANGED);
	assert_int_equal(feedback_vote(f->fb, "t", "c1", "77", "carol", -1, "$r2", 51), STORE_VOTE_SAME);
	assert_int_equal(feedback_unreact(f->fb, "t", "$r1"), 0);
	assert_int_equal(feedback_unreact(f->fb, "t", "$r2"), 1);
	assert_int_equal(feedback_unreact(f->fb, "t", "$r2"), 0);
	assert_int_equal(metric("faqbot_feedback_total{transport=\"t\",kind=\"withdrawn\"} "), 1);
	/* bob changes his mind */
	assert_int_equal(feedback_vote(f->fb, "t", "c1", "77", "bob", 1, NULL, 40), STORE_VOTE_CHANGED);
	assert_int_equal(feedback_summarize(f->st, bot_index(f->bot), 0, &s), 0);
	assert_int_equal(s.votes[0].up, 2);
	assert_int_equal(s.votes[0].down, 0);
	feedback_summary_release(&s);
	fx_free(f);
}

/* Choices after a list are grouped by their words per entry, users
 * counted distinct; a choice's answer records the question it answered. */
static void choices_are_grouped_per_entry(void **state)
{
	(void)state;
	struct fx *f = fx_new(0);
	assert_int_equal(pick(f, "alice", "où sont les archives ?", "jumeau-b", 1), 1);
	assert_int_equal(pick(f, "alice", "où sont les archives ?", "jumeau-b", 2), 1); /* again */
	assert_int_equal(pick(f, "bob", "Où sont les archives", "jumeau-b", 3), 1);
	assert_int_equal(pick(f, "carol", "où sont les archives ?", "jumeau-a", 4), 1);
	assert_int_equal(metric("faqbot_feedback_total{transport=\"t\",kind=\"choice\"} "), 4);
	/* a plain answer is no choice */
	struct reply r;
	assert_int_equal(say(f, "dan", "combien coute la souscription", &r), REPLY_ANSWER);
	assert_int_equal(feedback_choice(f->fb, "t", "dan", "dan", &r, 5), 0);
	reply_release(&r);
	struct feedback_summary s;
	assert_int_equal(feedback_summarize(f->st, bot_index(f->bot), 0, &s), 0);
	assert_int_equal(s.n_phrasings, 2);
	assert_string_equal(s.phrasings[0].entry, "jumeau-b");
	assert_int_equal(s.phrasings[0].users, 2);
	assert_int_equal(s.phrasings[0].choices, 2);
	assert_string_equal(s.phrasings[0].question, "où sont les archives ?");
	assert_string_equal(s.phrasings[1].entry, "jumeau-a");
	assert_int_equal(s.phrasings[1].users, 1);
	feedback_summary_release(&s);
	/* the answer given for the choice is recorded with the question */
	assert_int_equal(say(f, "erin", "où sont les archives ?", &r), REPLY_CHOOSE);
	reply_release(&r);
	assert_int_equal(bot_choose(f->bot, "erin", "jumeau-a", '/', &r), REPLY_ANSWER);
	assert_int_equal(feedback_answered(f->fb, "t", "erin:cb", &r, "a:jumeau-a", 10, 6), 0);
	reply_release(&r);
	struct strbuf q = STRBUF_INIT;
	assert_int_equal(store_answered_sent(f->st, "t", "erin", "erin:cb", "90"), 0);
	assert_int_equal(store_answered_get(f->st, "t", "erin", "90", NULL, NULL, &q), 1);
	assert_string_equal(q.buf, "où sont les archives ?");
	strbuf_release(&q);
	fx_free(f);
}

static enum reply_kind ask_kind(struct fx *f, const char *q, char *entry, size_t n)
{
	struct reply r;
	enum reply_kind k = say(f, "probe", q, &r);
	snprintf(entry, n, "%s", r.entry_id ? r.entry_id : "");
	reply_release(&r);
	return k;
}

/* With learn_min_users = 2: one user never teaches, two do; the learned
 * phrasing answers directly, survives a reload, and is guarded. */
static void two_users_teach_one_does_not(void **state)
{
	(void)state;
	struct fx *f = fx_new(2);
	char e[64];
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_FALLBACK);
	assert_int_equal(pick(f, "alice", "ticket", "cout", 1), 1);
	assert_int_equal(pick(f, "alice", "ticket", "cout", 2), 1);
	assert_int_equal(pick(f, "alice", "Ticket ?", "cout", 3), 1);
	assert_int_equal(feedback_learned_count(f->fb), 0);
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_FALLBACK);
	assert_int_equal(pick(f, "bob", "ticket", "cout", 4), 1);
	assert_int_equal(feedback_learned_count(f->fb), 1);
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_ANSWER);
	assert_string_equal(e, "cout");
	/* the editor's FAQ is unchanged; a reload installs it, and learning
	 * puts the phrasing back */
	assert_int_equal(index_faq(bot_index(f->bot))->entries[1].n_questions, 3);
	index_free(bot_swap_index(f->bot, index_from_json(FR_FAQ)));
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_FALLBACK);
	assert_int_equal(feedback_faq_loaded(f->fb, 5), 1);
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_ANSWER);
	fx_free(f);
}

static void learning_is_guarded(void **state)
{
	(void)state;
	struct fx *f = fx_new(2);
	char e[64];
	/* two users "choose" plh for a question cout answers confidently */
	assert_int_equal(store_choice_add(f->st, "t", "c", "alice", "combien coûte la souscription", "plh", 1), 1);
	assert_int_equal(store_choice_add(f->st, "t", "c", "bob", "combien coûte la souscription", "plh", 1), 1);
	/* two users chose cout for "ticket", but its answers got more 👎 */
	assert_int_equal(store_choice_add(f->st, "t", "c", "alice", "ticket", "cout", 1), 1);
	assert_int_equal(store_choice_add(f->st, "t", "c", "bob", "ticket", "cout", 1), 1);
	assert_int_equal(store_answered_add(f->st, "t", "c:1", "cout", "ticket", 1), 0);
	assert_int_equal(store_answered_sent(f->st, "t", "c", "c:1", "m1"), 0);
	assert_int_equal(store_vote_set(f->st, "t", "c", "m1", "carol", -1, NULL, 1), STORE_VOTE_CHANGED);
	assert_int_equal(feedback_faq_loaded(f->fb, 2), 0);
	assert_int_equal(ask_kind(f, "combien coûte la souscription", e, sizeof(e)), REPLY_ANSWER);
	assert_string_equal(e, "cout");
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_FALLBACK);
	/* a 👍 evens it out: now it is learned */
	assert_int_equal(store_vote_set(f->st, "t", "c", "m1", "dan", 1, NULL, 1), STORE_VOTE_CHANGED);
	assert_int_equal(feedback_faq_loaded(f->fb, 2), 1);
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_ANSWER);
	/* and when the choices age out (90 days), the editor's FAQ alone is back */
	assert_int_equal(feedback_faq_loaded(f->fb, 91LL * 86400000), 0);
	assert_int_equal(feedback_learned_count(f->fb), 0);
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_FALLBACK);
	fx_free(f);
}

static void learning_off_by_default(void **state)
{
	(void)state;
	struct config c;
	memset(&c, 0, sizeof(c));
	c.feedback_retention_days = 90;
	struct feedback_options o = FEEDBACK_OPTIONS_FROM(&c);
	assert_int_equal(o.record, 1);
	assert_int_equal(o.learn_min_users, 0);
	assert_true(o.window_ms == 90LL * 86400000);
	struct fx *f = fx_new(0);
	char e[64];
	assert_int_equal(pick(f, "alice", "ticket", "cout", 1), 1);
	assert_int_equal(pick(f, "bob", "ticket", "cout", 2), 1);
	assert_int_equal(pick(f, "carol", "ticket", "cout", 3), 1);
	assert_int_equal(feedback_faq_loaded(f->fb, 4), 0);
	assert_int_equal(feedback_learned_count(f->fb), 0);
	assert_int_equal(ask_kind(f, "ticket", e, sizeof(e)), REPLY_FALLBACK);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vote_values),
		cmocka_unit_test(votes_reach_the_summary_once_per_user),
		cmocka_unit_test(choices_are_grouped_per_entry),
		cmocka_unit_test(two_users_teach_one_does_not),
		cmocka_unit_test(learning_is_guarded),
		cmocka_unit_test(learning_off_by_default),
	};
	return cmocka_run_group_tests_name("feedback", tests, NULL, NULL);
}
