/*
 * faqindex.c - load and index an FAQ file; the checks of `faqbot check`.
 * See faqindex.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "faqindex.h"
#include "markup.h"
#include "match.h"
#include "text.h"

#include <stdio.h>
#include <string.h>

struct index *faqindex_load(const char *path, struct faq_diags *d)
{
	struct faq *f = faq_load_file(path, d);
	return f ? index_build(f, d) : NULL;
}

/* Asks every phrasing of every entry and warns when it lands elsewhere or
 * gets the fallback; warns about synonyms with no searchable word. */
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

/* Markup problems in one text: a warning each (the text is still shown,
 * with the broken part as typed). */
static void check_markup_of(const struct faq *f, const char *where, const char *src,
			    struct faq_diags *d)
{
	struct markup_problem *p;
	size_t n = markup_check(src, strlen(src), &p);
	for (size_t i = 0; i < n; i++)
		faq_diags_add(d, FAQ_WARNING, "%s: warning: %s, line %zu, column %zu: %s", f->source,
			      where, p[i].line, p[i].column, p[i].text);
	markup_problems_free(p, n);
}

static void check_markup(const struct faq *f, struct faq_diags *d)
{
	check_markup_of(f, "fallback: \"text\"", f->fallback_text, d);
	for (size_t e = 0; e < f->n_entries; e++) {
		char where[160];
		snprintf(where, sizeof(where), "entries[%zu] (id \"%.60s\"): \"answer\"", e,
			 f->entries[e].id);
		check_markup_of(f, where, f->entries[e].answer, d);
	}
}

void faqindex_check(struct index *idx, struct faq_diags *d)
{
	check_markup(index_faq(idx), d);
	self_test(idx, d);
}
