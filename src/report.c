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
			strbuf_addf(out, "%5zu  [%s]  \"%s\"", g->count, g->terms, g->examples[0]);
			if (g->best)
				strbuf_addf(out, "  (closest entry: %s, %.2f)", g->best, g->conf_sum / (double)g->count);
			strbuf_addch(out, '\n');
			for (size_t k = 1; k < g->n_examples; k++)
				strbuf_addf(out, "         \"%s\"\n", g->examples[k]);
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
