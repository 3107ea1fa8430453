/*
 * report.c - groups unanswered questions.  See report.h.
 */
#include "report.h"
#include "strmap.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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

int report_build(struct store *st, struct index *idx, int64_t since, int json, struct strbuf *out)
{
	struct ctx c = { idx, strmap_new(256), NULL, 0, 0, 0 };
	int rc = store_unanswered_each(st, since, add, &c);
	qsort(c.groups, c.n, sizeof(*c.groups), by_count);
	if (json) {
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
		char *s = json_dumps(entries, JSON_INDENT(2));
		strbuf_addf(out, "%s\n", s ? s : "[]");
		free(s);
		json_decref(entries);
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
	}
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
