/*
 * main.c - faqbot's command line: parses arguments and wires the modules
 * together.  No logic of its own beyond choosing what to run.
 *
 *   faqbot check [FAQ]                     validate an FAQ file
 *   faqbot ask [--faq F] [--explain] [--json] [--stdin] [QUESTION...]
 *   faqbot console [--faq F]               chat on the terminal
 *   faqbot run [--faq F]                   serve (console without chat credentials)
 */
#define _POSIX_C_SOURCE 200809L
#include "bot.h"
#include "console.h"
#include "faq.h"
#include "index.h"
#include "match.h"
#include "strbuf.h"
#include "text.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FAQBOT_VERSION
#define FAQBOT_VERSION "0.0.0"
#endif
#ifndef FAQBOT_DATADIR
#define FAQBOT_DATADIR "/usr/local/share/faqbot"
#endif

static const char usage_main[] =
	"usage: faqbot <command> [options]\n"
	"\n"
	"Answers questions from an FAQ file, in chat rooms or on the terminal.\n"
	"\n"
	"commands:\n"
	"  check [FAQ]         validate an FAQ file and test that each phrasing finds its entry\n"
	"  ask [QUESTION...]   print the reply the bot would give (--json, --stdin, --explain)\n"
	"  console             chat with the bot on the terminal\n"
	"  run                 run the bot (the console when no chat credentials are set)\n"
	"\n"
	"options:\n"
	"  --help              this help; 'faqbot COMMAND --help' for a command's\n"
	"  --version           print the version\n"
	"\n"
	"The FAQ file is --faq FILE, else $FAQBOT_FAQ, else faq/faq.json\n"
	"(then " FAQBOT_DATADIR "/faq.json).\n";

static const char usage_check[] =
	"usage: faqbot check [FAQ]\n"
	"\n"
	"Validates FAQ (default: $FAQBOT_FAQ or faq/faq.json).  Prints one line per\n"
	"problem, FILE:LINE:COL for JSON syntax errors, and exits 1 when there is an\n"
	"error.  Then asks every phrasing of every entry and warns when it lands on\n"
	"another entry or gets the fallback.  Warnings do not change the exit status.\n";

static const char usage_ask[] =
	"usage: faqbot ask [--faq FILE] [--explain] [--threshold X] QUESTION...\n"
	"       faqbot ask [--faq FILE] --stdin [--json]\n"
	"\n"
	"Prints the reply the bot would send to QUESTION.\n"
	"  --explain      also show the question's terms, the top candidates with the\n"
	"                 terms they matched and their weights, and the decision\n"
	"  --stdin        read one question per line from standard input\n"
	"  --json         one JSON object per question, in order:\n"
	"                 {\"question\": ..., \"match\": id|null, \"confidence\": 0-1,\n"
	"                  \"suggestions\": [id, ...]}\n"
	"  --threshold X  confidence below which the fallback is given (default: the FAQ's)\n";

static const char usage_console[] =
	"usage: faqbot console [--faq FILE]\n"
	"\n"
	"Chat with the bot on the terminal, through the same logic as in a chat room.\n"
	"Commands: /aide, /faq, /souscrire; a number picks from the last list; /quit.\n";

static const char usage_run[] =
	"usage: faqbot run [--faq FILE]\n"
	"\n"
	"Runs the bot.  With no chat credentials configured it starts the console chat.\n";

/* ==== Options ==== */

struct opts {
	const char *faq;
	int explain, json, use_stdin, help;
	double threshold;
	char **args;
	int nargs;
};

static int parse_opts(int argc, char **argv, struct opts *o, const char *usage)
{
	memset(o, 0, sizeof(*o));
	o->threshold = -1;
	o->args = xcalloc((size_t)argc + 1, sizeof(char *));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			o->help = 1;
		} else if (!strcmp(a, "--faq") && i + 1 < argc) {
			o->faq = argv[++i];
		} else if (!strncmp(a, "--faq=", 6)) {
			o->faq = a + 6;
		} else if (!strcmp(a, "--explain")) {
			o->explain = 1;
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "--stdin")) {
			o->use_stdin = 1;
		} else if (!strcmp(a, "--threshold") && i + 1 < argc) {
			char *end;
			o->threshold = strtod(argv[++i], &end);
			if (*end || o->threshold < 0 || o->threshold > 1) {
				fprintf(stderr, "faqbot: --threshold must be a number between 0 and 1\n");
				return -1;
			}
		} else if (!strcmp(a, "--")) {
			while (++i < argc)
				o->args[o->nargs++] = argv[i];
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "faqbot: unknown option '%s'\n%s", a, usage);
			return -1;
		} else {
			o->args[o->nargs++] = argv[i];
		}
	}
	return 0;
}

static const char *faq_path(const char *given)
{
	if (given)
		return given;
	const char *env = getenv("FAQBOT_FAQ");
	if (env && *env)
		return env;
	if (access("faq/faq.json", F_OK) && !access(FAQBOT_DATADIR "/faq.json", R_OK))
		return FAQBOT_DATADIR "/faq.json";
	return "faq/faq.json";
}

static void print_diags(const struct faq_diags *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(out, "%s\n", d->items[i].text);
}

/* Loads and indexes the FAQ, printing problems; NULL on error. */
static struct index *load_index(const char *path)
{
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_load_file(path, &d);
	struct index *idx = f ? index_build(f, &d) : NULL;
	if (!idx) {
		print_diags(&d, stderr);
		fprintf(stderr, "faqbot: %s is not a valid FAQ; 'faqbot check %s' lists the problems\n",
			path, path);
	}
	faq_diags_release(&d);
	return idx;
}

/* ==== check ==== */

static void self_test(struct index *idx, struct faq_diags *d)
{
	const struct faq *f = index_faq(idx);
	struct text *t = text_new(f->language);
	struct termlist tl;
	termlist_init(&tl);
	for (size_t g = 0; g < f->n_synonyms; g++)
		for (size_t p = 0; p < f->synonyms[g].n; p++) {
			termlist_clear(&tl);
			if (!text_analyze(t, f->synonyms[g].phrases[p], strlen(f->synonyms[g].phrases[p]), &tl, 0))
				faq_diags_add(d, FAQ_WARNING, "%s: warning: synonyms[%zu]: \"%s\" has no "
					      "searchable word (only common words) and is ignored",
					      f->source, g, f->synonyms[g].phrases[p]);
		}
	for (size_t e = 0; e < f->n_entries; e++) {
		const struct faq_entry *en = &f->entries[e];
		for (size_t q = 0; q < en->n_questions; q++) {
			struct match m;
			const char *qs = en->questions[q];
			match_question(idx, qs, strlen(qs), -1, &m);
			const char *where = "entries";
			if (!m.ranked.n_terms)
				faq_diags_add(d, FAQ_WARNING, "%s: warning: %s[%zu] (id \"%s\"): questions[%zu] "
					      "\"%s\" has no searchable word (only common words)",
					      f->source, where, e, en->id, q, qs);
			else if (m.entry != (long)e)
				faq_diags_add(d, FAQ_WARNING, "%s: warning: %s[%zu] (id \"%s\"): questions[%zu] "
					      "\"%s\" is matched to entry \"%s\" instead; reword it or "
					      "add keywords", f->source, where, e, en->id, q, qs,
					      m.entry >= 0 ? f->entries[m.entry].id : "(none)");
			else if (m.kind == MATCH_FALLBACK)
				faq_diags_add(d, FAQ_WARNING, "%s: warning: %s[%zu] (id \"%s\"): questions[%zu] "
					      "\"%s\" would get the fallback (confidence %.2f, threshold "
					      "%.2f)", f->source, where, e, en->id, q, qs, m.confidence,
					      m.threshold);
		}
	}
	termlist_release(&tl);
	text_free(t);
}

static int cmd_check(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o, usage_check) < 0) {
		free(o.args);
		return 2;
	}
	if (o.help || o.nargs > 1) {
		fputs(usage_check, o.help ? stdout : stderr);
		free(o.args);
		return o.help ? 0 : 2;
	}
	const char *path = faq_path(o.nargs ? o.args[0] : o.faq);
	free(o.args);
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_load_file(path, &d);
	struct index *idx = f ? index_build(f, &d) : NULL;
	if (idx)
		self_test(idx, &d);
	print_diags(&d, stdout);
	int rc = d.errors ? 1 : 0;
	faq_diags_release(&d);
	index_free(idx);
	return rc;
}

/* ==== ask ==== */

static void ask_json(struct index *idx, const char *q, size_t len, double threshold,
		     struct strbuf *out)
{
	struct match m;
	match_question(idx, q, len, threshold, &m);
	const char *id = match_id(idx, &m);
	const struct faq *f = index_faq(idx);
	struct strbuf clean = STRBUF_INIT;
	text_utf8_sanitize(q, len, &clean);
	strbuf_addstr(out, "{\"question\": \"");
	strbuf_add_json_escaped(out, clean.buf, clean.len);
	strbuf_addstr(out, "\", \"match\": ");
	if (id)
		strbuf_addf(out, "\"%s\"", id);
	else
		strbuf_addstr(out, "null");
	strbuf_addf(out, ", \"confidence\": %.4f, \"suggestions\": [", m.confidence);
	for (size_t i = 0; i < m.n_sugg; i++)
		strbuf_addf(out, "%s\"%s\"", i ? ", " : "", f->entries[m.sugg[i]].id);
	strbuf_addstr(out, "]}\n");
	strbuf_release(&clean);
}

static void ask_one(struct bot *b, const struct opts *o, const char *q, size_t len,
		    struct strbuf *out)
{
	if (o->json) {
		ask_json(bot_index(b), q, len, o->threshold, out);
		return;
	}
	struct inbound_msg m = { q, len, CHAT_PRIVATE, 1, "cli", '/' };
	struct reply r;
	bot_handle(b, &m, &r);
	reply_format_plain(&r, out);
	reply_release(&r);
	if (o->explain) {
		struct match mt;
		match_question(bot_index(b), q, len, o->threshold, &mt);
		strbuf_addstr(out, "--\n");
		match_explain(bot_index(b), q, len, &mt, out);
	}
}

static int cmd_ask(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o, usage_ask) < 0) {
		free(o.args);
		return 2;
	}
	if (o.help || (!o.use_stdin && !o.nargs)) {
		fputs(usage_ask, o.help ? stdout : stderr);
		free(o.args);
		return o.help ? 0 : 2;
	}
	struct index *idx = load_index(faq_path(o.faq));
	if (!idx) {
		free(o.args);
		return 1;
	}
	struct bot_options bo = { o.threshold, NULL };
	struct bot *b = bot_new(idx, &bo);
	struct strbuf out = STRBUF_INIT, q = STRBUF_INIT;
	if (o.use_stdin) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		while ((n = getline(&line, &cap, stdin)) >= 0) {
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				n--;
			ask_one(b, &o, line, (size_t)n, &out);
			if (out.len > 65536) {
				fwrite(out.buf, 1, out.len, stdout);
				strbuf_reset(&out);
			}
		}
		free(line);
	} else {
		for (int i = 0; i < o.nargs; i++)
			strbuf_addf(&q, "%s%s", i ? " " : "", o.args[i]);
		ask_one(b, &o, q.buf, q.len, &out);
	}
	fwrite(out.buf, 1, out.len, stdout);
	strbuf_release(&out);
	strbuf_release(&q);
	bot_free(b);
	free(o.args);
	return 0;
}

/* ==== console / run ==== */

static int cmd_console(int argc, char **argv, const char *usage)
{
	struct opts o;
	if (parse_opts(argc, argv, &o, usage) < 0) {
		free(o.args);
		return 2;
	}
	free(o.args);
	if (o.help || o.nargs) {
		fputs(usage, o.help ? stdout : stderr);
		return o.help ? 0 : 2;
	}
	struct index *idx = load_index(faq_path(o.faq));
	if (!idx)
		return 1;
	struct bot_options bo = { o.threshold, NULL };
	struct bot *b = bot_new(idx, &bo);
	int rc = console_run(b, stdin, stdout, isatty(STDIN_FILENO));
	bot_free(b);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("faqbot %s\n", FAQBOT_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 2, argv + 2);
	if (!strcmp(cmd, "ask"))
		return cmd_ask(argc - 2, argv + 2);
	if (!strcmp(cmd, "console"))
		return cmd_console(argc - 2, argv + 2, usage_console);
	if (!strcmp(cmd, "run"))
		return cmd_console(argc - 2, argv + 2, usage_run);
	fprintf(stderr, "faqbot: unknown command '%s'\n%s", cmd, usage_main);
	return 2;
}
