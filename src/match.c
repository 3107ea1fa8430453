/*
 * match.c - the answer / choose / fallback decision.  See match.h.
 *
 * Kept apart from the index so the policy (thresholds, when to ask) reads
 * in one screen and can change without touching ranking.
 *
 * Confidence = (s1 - MATCH_LEAD * s2) ^ MATCH_CURVE, from the best and
 * runner-up scores (index.c): a close runner-up lowers it, and the curve
 * puts the cut that serves plain and richly phrased FAQs alike (chosen on
 * the dev halves of tests/eval/sets/) at the default threshold, 0.35.
 */
#include "match.h"

#include <math.h>
#include <string.h>

double match_confidence(double best, double runner_up)
{
	double lead = best - MATCH_LEAD * runner_up;
	return lead > 0 ? pow(lead, MATCH_CURVE) : 0;
}

void match_decide(const struct index_result *r, double threshold, struct match *m)
{
	memset(m, 0, sizeof(*m));
	m->ranked = *r;
	m->threshold = threshold;
	m->entry = -1;
	m->kind = MATCH_FALLBACK;
	if (!r->n_cand || r->cand[0].score <= 0)
		return;
	const struct index_cand *best = &r->cand[0];
	m->entry = best->entry;
	m->confidence = match_confidence(best->score, r->n_cand > 1 ? r->cand[1].score : 0);
	if (m->confidence < threshold) {
		for (size_t i = 0; i < r->n_cand && m->n_sugg < MATCH_MAX_SUGG; i++)
			if (r->cand[i].score >= MATCH_NEAR_RATIO * threshold &&
			    r->cand[i].score >= MATCH_SUGGEST_RATIO * best->score)
				m->sugg[m->n_sugg++] = r->cand[i].entry;
		return;
	}
	if (r->n_cand > 1 && r->cand[1].score >= MATCH_AMBIGUOUS_RATIO * best->score) {
		m->kind = MATCH_AMBIGUOUS;
		for (size_t i = 0; i < r->n_cand && m->n_sugg < MATCH_MAX_SUGG; i++)
			if (r->cand[i].score >= MATCH_SUGGEST_RATIO * best->score)
				m->sugg[m->n_sugg++] = r->cand[i].entry;
		return;
	}
	m->kind = MATCH_ANSWER;
}

void match_question(struct index *idx, const char *q, size_t len, double threshold,
		    struct match *m)
{
	struct index_result r;
	if (len > MATCH_MAX_QUESTION)
		len = MATCH_MAX_QUESTION; /* a cut UTF-8 sequence is just ignored */
	if (threshold < 0)
		threshold = index_faq(idx)->threshold;
	index_rank(idx, q, len, &r);
	match_decide(&r, threshold, m);
}

const char *match_id(const struct index *idx, const struct match *m)
{
	if (m->kind == MATCH_FALLBACK || m->entry < 0)
		return NULL;
	return index_faq(idx)->entries[m->entry].id;
}

void match_explain(struct index *idx, const char *q, size_t len, const struct match *m,
		   struct strbuf *out)
{
	const struct faq *f = index_faq(idx);
	if (len > MATCH_MAX_QUESTION)
		len = MATCH_MAX_QUESTION;
	index_explain(idx, q, len, &m->ranked, out);
	strbuf_addf(out, "threshold %.2f: ", m->threshold);
	switch (m->kind) {
	case MATCH_ANSWER:
		strbuf_addf(out, "answer \"%s\" (confidence %.3f >= %.2f; runner-up below %.0f%% of it)\n",
			    f->entries[m->entry].id, m->confidence, m->threshold,
			    MATCH_AMBIGUOUS_RATIO * 100);
		break;
	case MATCH_AMBIGUOUS:
		strbuf_addf(out, "ambiguous: runner-up within %.0f%% of \"%s\" (%.3f); suggest",
			    (1 - MATCH_AMBIGUOUS_RATIO) * 100, f->entries[m->entry].id, m->confidence);
		for (size_t i = 0; i < m->n_sugg; i++)
			strbuf_addf(out, " %s", f->entries[m->sugg[i]].id);
		strbuf_addch(out, '\n');
		break;
	case MATCH_FALLBACK:
		if (m->entry < 0)
			strbuf_addstr(out, "fallback (no entry shares a term with the question)\n");
		else
			strbuf_addf(out, "fallback (best \"%s\" at %.3f < %.2f)\n",
				    f->entries[m->entry].id, m->confidence, m->threshold);
		break;
	}
}
