/*
 * match.h - from ranked candidates to a decision: answer, ask the user to
 * choose between close candidates, or fall back.
 *
 *   - best score below the threshold            -> MATCH_FALLBACK (with up to
 *     3 "did you mean" suggestions when some candidate came near);
 *   - runner-up within MATCH_AMBIGUOUS_RATIO of the best -> MATCH_AMBIGUOUS,
 *     up to 3 suggestions, the best first;
 *   - otherwise                                   -> MATCH_ANSWER.
 *
 * Pure; struct match is a plain value the caller owns (no heap inside).
 */
#ifndef FAQBOT_MATCH_H
#define FAQBOT_MATCH_H

#include "index.h"

#define MATCH_MAX_SUGG 3
#define MATCH_AMBIGUOUS_RATIO 0.85 /* runner-up / best at or above this: ask */
#define MATCH_SUGGEST_RATIO 0.70   /* suggestions within this of the best */
#define MATCH_NEAR_RATIO 0.60      /* fallback suggestions: score >= ratio * threshold */
#define MATCH_MAX_QUESTION 8192    /* bytes of a question considered */
#ifndef MATCH_LEAD
#define MATCH_LEAD 0.3             /* weight of the runner-up against the best */
#endif
#ifndef MATCH_CURVE
#define MATCH_CURVE 0.77           /* confidence = (best - LEAD * runner-up) ^ CURVE */
#endif

enum match_kind { MATCH_ANSWER, MATCH_AMBIGUOUS, MATCH_FALLBACK };

struct match {
	enum match_kind kind;
	long entry;        /* best candidate, -1 when there is none at all */
	double confidence; /* the best candidate's score, 0 when none */
	double threshold;
	uint32_t sugg[MATCH_MAX_SUGG];
	size_t n_sugg;
	struct index_result ranked;
};

/* The calibrated confidence of an answer from the best candidate's score
 * and the runner-up's (0 when none): (best - MATCH_LEAD * runner_up) ^
 * MATCH_CURVE, in [0,1].  The curve puts the cut that serves both richly
 * phrased and plain FAQs at the default threshold, 0.35. */
double match_confidence(double best, double runner_up);
/* Decides on already ranked candidates. */
void match_decide(const struct index_result *r, double threshold, struct match *m);
/* Ranks q (only its first MATCH_MAX_QUESTION bytes) and decides.
 * threshold < 0 means the FAQ's own. */
void match_question(struct index *idx, const char *q, size_t len, double threshold,
		    struct match *m);
/* Appends the ranking details and the decision, for `faqbot ask --explain`. */
void match_explain(struct index *idx, const char *q, size_t len, const struct match *m,
		   struct strbuf *out);
/* The id answered ("match" in JSON): the best entry unless falling back. */
const char *match_id(const struct index *idx, const struct match *m);

#endif
