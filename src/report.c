/*
 * report.c - groups unanswered questions, shows the feedback on answers
 * and the phrasings users' choices propose, and applies a reviewed change
 * to an FAQ file.  See report.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "report.h"
#include "feedback.h"
#include "match.h"
#include "bot.h"
#include "strmap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXAMPLES 5

struct group {
	char *terms;
	size_t count;
	char *examples[EXAMPLES];
	size_t n_examples;
	char *best;
	double conf_sum;
};

struct ctx {
	struct index *idx;
	struct strmap *by_terms;
	struct group *groups;
	size_t n, alloc;
	size_t total;
};

static void add(void *arg, int64_t at, const char *transport, const char *text, const char *best,
		double confidence)
{
	(void)at;
	(void)transport;
	struct ctx *c = arg;
	struct strbuf t = STRBUF_INIT;
	index_terms(c->idx, text, strlen(text), &t);
	if (!t.len)
		strbuf_addstr(&t, "-");
	int added;
	uint32_t g = strmap_put(c->by_terms, t.buf, t.len, (uint32_t)c->n, &added);
	if (added) {
		xgrow(&c->groups, &c->alloc, c->n + 1, sizeof(*c->groups));
		memset(&c->groups[c->n], 0, sizeof(struct group));
		c->groups[c->n].terms = xstrdup(t.buf);
		c->n++;
	}
	struct group *gr = &c->groups[g];
	gr->count++;
	gr->conf_sum += confidence;
	if (best && !gr->best)
		gr->best = xstrdup(best);
	int seen = 0;
	for (size_t i = 0; i < gr->n_examples; i++)
		seen |= !strcmp(gr->examples[i], text);
	if (!seen && gr->n_examples < EXAMPLES)
		gr->examples[gr->n_examples++] = xstrdup(text);
	c->total++;
	strbuf_release(&t);
}

/* Appends chat text for a terminal: control characters (escape sequences,
 * carriage returns, newlines that would forge report lines), C1 controls
 * and bidirectional overrides become visible escapes (\n, \x1b, \u202e);
 * quotes and backslashes are escaped, so the text cannot close its quotes. */
static void add_shown(struct strbuf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		if (c == '\n') {
			strbuf_addstr(out, "\\n");
		} else if (c == '\t') {
			strbuf_addstr(out, "\\t");
		} else if (c == '\r') {
			strbuf_addstr(out, "\\r");
		} else if (c == '"' || c == '\\') {
			strbuf_addch(out, '\\');
			strbuf_addch(out, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			strbuf_addf(out, "\\x%02x", c);
		} else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			strbuf_addf(out, "\\u%04x", (unsigned)p[1]); /* C1 control, e.g. CSI */
			p++;
		} else if (c == 0xe2 && (p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae)) {
			strbuf_addf(out, "\\u%04x", 0x2000u + (unsigned)(p[2] - 0x80)); /* U+202A..202E */
			p += 2;
		} else if (c == 0xe2 && (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)) {
			strbuf_addf(out, "\\u%04x", 0x2040u + (unsigned)(p[2] - 0x80)); /* U+2066..2069 */
			p += 2;
		} else {
			strbuf_addch(out, (char)c);
		}
		p++;
	}
}

static int by_count(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->terms, y->terms);
}

/* 1 when the current FAQ answers q with entry, or q is one of its
 * phrasings already: nothing left to propose. */
static int already_answered(struct index *idx, long e, const char *q)
{
	const struct faq_entry *en = &index_faq(idx)->entries[e];
	for (size_t i = 0; i < en->n_questions; i++)
		if (!strcmp(en->questions[i], q))
			return 1;
	struct match m;
	match_question(idx, q, strlen(q), -1, &m);
	return m.kind == MATCH_ANSWER && m.entry == e && m.confidence >= m.threshold + BOT_LOW_CONFIDENCE;
}

/* The entry another one answers q with confidently, or NULL. */
static const char *answered_elsewhere(struct index *idx, long e, const char *q)
{
	struct match m;
	match_question(idx, q, strlen(q), -1, &m);
	if (m.kind == MATCH_ANSWER && m.entry != e && m.confidence >= m.threshold + BOT_LOW_CONFIDENCE)
		return index_faq(idx)->entries[m.entry].id;
	return NULL;
}

enum proposal { PROPOSE, PROPOSE_GONE, PROPOSE_DONE, PROPOSE_ELSEWHERE };

static enum proposal proposal_of(struct index *idx, const struct feedback_phrasing *p, const char **other)
{
	*other = NULL;
	long e = index_find(idx, p->entry);
	if (e < 0)
		return PROPOSE_GONE;
	if (already_answered(idx, e, p->question))
		return PROPOSE_DONE;
	*other = answered_elsewhere(idx, e, p->question);
	return *other ? PROPOSE_ELSEWHERE : PROPOSE;
}

static void feedback_text(struct index *idx, const struct feedback_summary *fs, struct strbuf *out)
{
	strbuf_addf(out, "\nHelpfulness of answers (votes, one per user and answer), most \xf0\x9f\x91\x8e first:\n");
	if (!fs->n_votes)
		strbuf_addstr(out, "  (no votes)\n");
	for (size_t i = 0; i < fs->n_votes; i++) {
		const struct feedback_votes *v = &fs->votes[i];
		strbuf_addstr(out, "  ");
		add_shown(out, v->entry);
		strbuf_addf(out, "  \xf0\x9f\x91\x8d %zu  \xf0\x9f\x91\x8e %zu%s\n", v->up, v->down,
			    index_find(idx, v->entry) < 0 ? "  (no longer in the FAQ)" : "");
		for (size_t k = 0; k < v->n_down_questions; k++) {
			strbuf_addstr(out, "      \xf0\x9f\x91\x8e \"");
			add_shown(out, v->down_questions[k]);
			strbuf_addstr(out, "\"\n");
		}
	}
	strbuf_addstr(out, "\nProposed phrasings (questions users chose an entry for, from a list), "
			   "most users first:\n");
	size_t shown = 0;
	for (size_t i = 0; i < fs->n_phrasings; i++) {
		const struct feedback_phrasing *p = &fs->phrasings[i];
		const char *other;
		enum proposal k = proposal_of(idx, p, &other);
		if (k == PROPOSE_DONE)
			continue;
		shown++;
		strbuf_addstr(out, "  ");
		add_shown(out, p->entry);
		strbuf_addstr(out, "  \"");
		add_shown(out, p->question);
		strbuf_addf(out, "\"  %zu user(s), %zu choice(s)", p->users, p->choices);
		if (p->votes < 0)
			strbuf_addf(out, ", %d more \xf0\x9f\x91\x8e than \xf0\x9f\x91\x8d", -p->votes);
		if (k == PROPOSE_GONE)
			strbuf_addstr(out, "  (entry no longer in the FAQ)");
		if (k == PROPOSE_ELSEWHERE) {
			strbuf_addstr(out, "  (not proposed: the FAQ answers it with ");
			add_shown(out, other);
			strbuf_addch(out, ')');
		}
		strbuf_addch(out, '\n');
	}
	if (!shown)
		strbuf_addstr(out, "  (none)\n");
}

static json_t *feedback_json(struct index *idx, const struct feedback_summary *fs, json_t *change)
{
	json_t *adds = json_object(), *phr = json_array(), *help = json_array();
	for (size_t i = 0; i < fs->n_phrasings; i++) {
		const struct feedback_phrasing *p = &fs->phrasings[i];
		const char *other;
		enum proposal k = proposal_of(idx, p, &other);
		if (k == PROPOSE_DONE)
			continue;
		json_array_append_new(phr, json_pack("{s:s, s:s, s:I, s:I, s:i, s:b}", "entry", p->entry,
						     "question", p->question, "users", (json_int_t)p->users,
						     "choices", (json_int_t)p->choices, "votes", p->votes,
						     "proposed", k == PROPOSE && p->votes >= 0));
		if (k != PROPOSE || p->votes < 0)
			continue;
		json_t *list = json_object_get(adds, p->entry);
		if (!list) {
			list = json_array();
			json_object_set_new(adds, p->entry, list);
		}
		json_array_append_new(list, json_string(p->question));
	}
	for (size_t i = 0; i < fs->n_votes; i++) {
		const struct feedback_votes *v = &fs->votes[i];
		json_t *down = json_array();
		for (size_t k = 0; k < v->n_down_questions; k++)
			json_array_append_new(down, json_string(v->down_questions[k]));
		json_array_append_new(help, json_pack("{s:s, s:I, s:I, s:o}", "entry", v->entry, "up",
						      (json_int_t)v->up, "down", (json_int_t)v->down,
						      "down_questions", down));
	}
	json_object_set_new(change, "add_questions", adds);
	json_object_set_new(change, "review", json_pack("{s:o, s:o}", "phrasings", phr, "helpfulness", help));
	return change;
}

int report_build(struct store *st, struct index *idx, int64_t since, int json, struct strbuf *out)
{
	struct ctx c = { idx, strmap_new(256), NULL, 0, 0, 0 };
	int rc = store_unanswered_each(st, since, add, &c);
	struct feedback_summary fs;
	memset(&fs, 0, sizeof(fs));
	/* a database the bot has not upgraded yet has no feedback tables */
	if (rc == 0 && store_schema_version(st) >= 4)
		rc = feedback_summarize(st, idx, since, &fs);
	if (c.n)
		qsort(c.groups, c.n, sizeof(*c.groups), by_count);
	if (json) {
		json_t *change = json_object();
		feedback_json(idx, &fs, change);
		json_t *entries = json_array();
		for (size_t i = 0; i < c.n; i++) {
			struct group *g = &c.groups[i];
			json_t *qs = json_array(), *kw = json_array();
			for (size_t k = 0; k < g->n_examples; k++)
				json_array_append_new(qs, json_string(g->examples[k]));
			char id[40];
			snprintf(id, sizeof(id), "draft-%zu", i + 1);
			json_array_append_new(entries, json_pack("{s:s, s:o, s:s, s:o}", "id", id, "questions",
								 qs, "answer", "", "keywords", kw));
		}
		json_object_set_new(change, "add_entries", entries);
		char *s = json_dumps(change, JSON_INDENT(2));
		strbuf_addf(out, "%s\n", s ? s : "{}");
		free(s);
		json_decref(change);
	} else {
		strbuf_addf(out, "%zu unanswered question(s) in %zu group(s), most frequent first:\n",
			    c.total, c.n);
		for (size_t i = 0; i < c.n; i++) {
			struct group *g = &c.groups[i];
			strbuf_addf(out, "%5zu  [", g->count);
			add_shown(out, g->terms);
			strbuf_addstr(out, "]  \"");
			add_shown(out, g->examples[0]);
			strbuf_addch(out, '"');
			if (g->best) {
				strbuf_addstr(out, "  (closest entry: ");
				add_shown(out, g->best);
				strbuf_addf(out, ", %.2f)", g->conf_sum / (double)g->count);
			}
			strbuf_addch(out, '\n');
			for (size_t k = 1; k < g->n_examples; k++) {
				strbuf_addstr(out, "         \"");
				add_shown(out, g->examples[k]);
				strbuf_addstr(out, "\"\n");
			}
		}
		feedback_text(idx, &fs, out);
	}
	feedback_summary_release(&fs);
	for (size_t i = 0; i < c.n; i++) {
		free(c.groups[i].terms);
		free(c.groups[i].best);
		for (size_t k = 0; k < c.groups[i].n_examples; k++)
			free(c.groups[i].examples[k]);
	}
	free(c.groups);
	strmap_free(c.by_terms);
	return rc;
}

/* ==== Applying a reviewed change to the FAQ file ==== */

static const char usage_apply[] =
	"usage: faqbot apply [--faq FILE] [--output NEW|-] CHANGE.json\n"
	"\n"
	"Applies a change written by 'faqbot report --json' (after the editor's review)\n"
	"to the FAQ: \"add_questions\" {entry id: [question, ...]} adds phrasings to\n"
	"existing entries, \"add_entries\" [entry, ...] adds the entries whose answer is\n"
	"written (drafts with an empty answer are skipped and named); \"review\" is\n"
	"ignored.  The result must be a valid FAQ, or nothing is written.\n"
	"  --faq FILE     the FAQ to change (default: $FAQBOT_FAQ or faq/faq.json)\n"
	"  --output NEW   write the new FAQ to NEW and leave FILE alone (- : standard\n"
	"                 output).  Without it FILE is replaced atomically (a running\n"
	"                 bot reloads it) and its previous version kept as FILE.bak\n";

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes data to path atomically: a temporary file beside it, synced,
 * then renamed over it; mode as given.  0, or -1 with a sentence. */
static int write_atomic(const char *path, const char *data, size_t len, mode_t mode, struct strbuf *msgs)
{
	size_t n = strlen(path) + 16;
	char *tmp = xmalloc(n);
	snprintf(tmp, n, "%s.tmpXXXXXX", path);
	int fd = mkstemp(tmp);
	int rc = -1;
	if (fd < 0) {
		strbuf_addf(msgs, "faqbot: cannot write beside %s: %s\n", path, strerror(errno));
		free(tmp);
		return -1;
	}
	if (fchmod(fd, mode) == 0 && write_all(fd, data, len) == 0 && fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		if (rename(tmp, path) == 0)
			rc = 0;
	}
	if (rc < 0) {
		strbuf_addf(msgs, "faqbot: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

static char *read_file(const char *path, size_t *len, struct strbuf *msgs)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		strbuf_addf(msgs, "faqbot: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	struct strbuf sb = STRBUF_INIT;
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	int bad = ferror(f);
	if (f != stdin)
		(void)fclose(f); /* read only: nothing is lost if closing fails */
	if (bad) {
		strbuf_addf(msgs, "faqbot: cannot read %s\n", path);
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, len);
}

static json_t *entry_by_id(json_t *entries, const char *id)
{
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e) {
		const char *eid = json_string_value(json_object_get(e, "id"));
		if (eid && !strcmp(eid, id))
			return e;
	}
	return NULL;
}

static int has_string(json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return 1;
	return 0;
}

/* Adds the change's questions and written entries to faq; counts them. */
static int apply_change(json_t *faq, json_t *change, const char *change_path, size_t *n_questions,
			size_t *n_entries, struct strbuf *msgs)
{
	json_t *entries = json_object_get(faq, "entries");
	if (!json_is_array(entries)) {
		strbuf_addstr(msgs, "faqbot: the FAQ has no \"entries\" list\n");
		return -1;
	}
	const char *key;
	json_t *v;
	json_object_foreach(change, key, v) {
		if (strcmp(key, "add_questions") && strcmp(key, "add_entries") && strcmp(key, "review"))
			strbuf_addf(msgs, "%s: warning: unknown key \"%s\" is ignored\n", change_path, key);
	}
	json_t *adds = json_object_get(change, "add_questions");
	if (adds && !json_is_object(adds)) {
		strbuf_addf(msgs, "%s: \"add_questions\" must be an object {entry id: [question, ...]}\n",
			    change_path);
		return -1;
	}
	json_object_foreach(adds, key, v) {
		json_t *e = entry_by_id(entries, key);
		if (!e) {
			strbuf_addf(msgs, "%s: warning: entry \"%s\" is no longer in the FAQ; its questions "
				    "are skipped\n", change_path, key);
			continue;
		}
		json_t *qs = json_object_get(e, "questions");
		if (!json_is_array(qs) || !json_is_array(v)) {
			strbuf_addf(msgs, "%s: \"add_questions\" of \"%s\" must be a list of questions\n",
				    change_path, key);
			return -1;
		}
		size_t i;
		json_t *q;
		json_array_foreach(v, i, q) {
			const char *s = json_string_value(q);
			if (!s || !*s) {
				strbuf_addf(msgs, "%s: \"add_questions\" of \"%s\": item %zu is not a question\n",
					    change_path, key, i + 1);
				return -1;
			}
			if (has_string(qs, s))
				continue;
			json_array_append_new(qs, json_string(s));
			(*n_questions)++;
		}
	}
	json_t *ne = json_object_get(change, "add_entries");
	if (ne && !json_is_array(ne)) {
		strbuf_addf(msgs, "%s: \"add_entries\" must be a list of entries\n", change_path);
		return -1;
	}
	size_t i;
	json_array_foreach(ne, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *answer = json_string_value(json_object_get(v, "answer"));
		if (!id) {
			strbuf_addf(msgs, "%s: \"add_entries\" item %zu has no \"id\"\n", change_path, i + 1);
			return -1;
		}
		if (!answer || !*answer) {
			strbuf_addf(msgs, "%s: note: entry \"%s\" is skipped: its answer is empty (write it, "
				    "then apply again)\n", change_path, id);
			continue;
		}
		if (entry_by_id(entries, id)) {
			strbuf_addf(msgs, "%s: entry \"%s\" is already in the FAQ (rename the new one)\n",
				    change_path, id);
			return -1;
		}
		json_array_append(entries, v);
		(*n_entries)++;
	}
	return 0;
}

int report_apply(const char *change_path, const char *faq_path, const char *output, struct strbuf *msgs)
{
	size_t clen, flen;
	char *ctext = read_file(change_path, &clen, msgs);
	char *ftext = ctext ? read_file(faq_path, &flen, msgs) : NULL;
	json_error_t err;
	json_t *change = NULL, *faq = NULL;
	int rc = -1;
	if (!ftext)
		goto out;
	change = json_loadb(ctext, clen, 0, &err);
	if (!json_is_object(change)) {
		strbuf_addf(msgs, "%s:%d:%d: not a change (a JSON object from 'faqbot report --json'): %s\n",
			    change_path, err.line, err.column, change ? "not an object" : err.text);
		goto out;
	}
	faq = json_loadb(ftext, flen, 0, &err);
	if (!json_is_object(faq)) {
		strbuf_addf(msgs, "%s:%d:%d: not a valid FAQ: %s ('faqbot check %s' says more)\n", faq_path,
			    err.line, err.column, faq ? "not an object" : err.text, faq_path);
		goto out;
	}
	size_t nq = 0, ne = 0;
	if (apply_change(faq, change, change_path, &nq, &ne, msgs) < 0)
		goto out;
	if (!nq && !ne) {
		strbuf_addf(msgs, "faqbot: nothing to apply: %s is unchanged\n", faq_path);
		rc = 0;
		goto out;
	}
	char *text = json_dumps(faq, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s\n", text ? text : "");
	free(text);
	/* the result must load as the bot will load it */
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_parse(sb.buf, sb.len, output && strcmp(output, "-") ? output : faq_path, &d);
	for (size_t i = 0; i < d.n; i++)
		if (d.items[i].level == FAQ_ERROR)
			strbuf_addf(msgs, "%s\n", d.items[i].text);
	int valid = f != NULL;
	faq_free(f);
	faq_diags_release(&d);
	if (!valid) {
		strbuf_addf(msgs, "faqbot: the change would make an invalid FAQ; nothing was written\n");
		strbuf_release(&sb);
		goto out;
	}
	struct stat stt;
	mode_t mode = stat(faq_path, &stt) == 0 ? (stt.st_mode & 0777) : 0644;
	if (output && !strcmp(output, "-")) {
		rc = fwrite(sb.buf, 1, sb.len, stdout) == sb.len && fflush(stdout) == 0 ? 0 : -1;
	} else if (output) {
		rc = write_atomic(output, sb.buf, sb.len, mode, msgs);
	} else {
		struct strbuf bak = STRBUF_INIT;
		strbuf_addf(&bak, "%s.bak", faq_path);
		rc = write_atomic(bak.buf, ftext, flen, mode, msgs);
		if (rc == 0)
			rc = write_atomic(faq_path, sb.buf, sb.len, mode, msgs);
		if (rc == 0)
			strbuf_addf(msgs, "faqbot: previous version kept as %s\n", bak.buf);
		strbuf_release(&bak);
	}
	if (rc == 0)
		strbuf_addf(msgs, "faqbot: added %zu question(s) and %zu entr%s; wrote %s\n", nq, ne,
			    ne == 1 ? "y" : "ies", output ? (strcmp(output, "-") ? output : "standard output")
							   : faq_path);
	strbuf_release(&sb);
out:
	json_decref(change);
	json_decref(faq);
	free(ctext);
	free(ftext);
	return rc;
}

int report_apply_cmd(int argc, char **argv, const char *default_faq)
{
	const char *faq = default_faq, *output = NULL, *change = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_apply, stdout);
			return 0;
		} else if (!strcmp(a, "--faq") && i + 1 < argc) {
			faq = argv[++i];
		} else if (!strncmp(a, "--faq=", 6)) {
			faq = a + 6;
		} else if (!strcmp(a, "--output") && i + 1 < argc) {
			output = argv[++i];
		} else if (!strncmp(a, "--output=", 9)) {
			output = a + 9;
		} else if ((a[0] == '-' && a[1]) || change) {
			fprintf(stderr, "faqbot: unexpected '%s'\n%s", a, usage_apply);
			return 2;
		} else {
			change = a;
		}
	}
	if (!change) {
		fputs(usage_apply, stderr);
		return 2;
	}
	struct strbuf msgs = STRBUF_INIT;
	int rc = report_apply(change, faq, output, &msgs);
	fputs(msgs.buf, stderr);
	strbuf_release(&msgs);
	return rc < 0 ? 1 : 0;
}
