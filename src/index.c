/*
 * index.c - inverted index and candidate ranking.  See index.h.
 *
 * Scoring, for a question with distinct terms t (weight w(t) = W0 +
 * idf(t); a word nothing in the FAQ matches weighs W_UNKNOWN_RATIO times
 * w_rare, the weight of a word of a single entry) and an entry e:
 *
 *   M(e)     = sum_t w(t) * quality(t) * sat(e,t)          evidence found
 *   qcov(e)  = M(e) / sum_t w(t)
 *   dcov(e)  = max over e's phrasings p of
 *              sum_{t in p and in the question} w(t) * quality(t) / sum_{t in p} w(t)
 *   ev(e)    = 1 - exp(-M(e) / (E_SCALE * w_rare))
 *   score(e) = qcov(e) * (A + (1 - A) * dcov(e)) * ev(e)
 *
 * sat(e,t) is BM25F's saturation of t's field-weighted (questions 1,
 * keywords 2, answer 0.4), length-normalised frequency in e, scaled so one
 * occurrence in a question of average length gives 1; quality is 1 for an
 * exact term (same lemma or stem: text.c), lower for a typo (0.8), a prefix
 * (0.7) or a thesaurus neighbour (0.5, less 6% per rank down the
 * neighbour list).  Typos and prefixes are only tried for words the
 * lexicon does not know; thesaurus neighbours only for words it knows, and
 * only neighbours the FAQ uses.  Acronyms and their expansions found in
 * the FAQ ("PLU", "plan local d'urbanisme") are synonyms.  qcov asks "how much of what
 * was asked does this entry talk about"; dcov "how much of one way of
 * asking this entry's question was said"; ev "is there enough evidence at
 * all" (one common word is not).  All are in [0,1]; match.c turns the best
 * two scores into the confidence.
 *
 * Build cost is linear in the FAQ's text; a question costs its analysis
 * plus the postings of its terms (short: FAQ terms are rare).
 */
#include "index.h"
#include "strmap.h"
#include "text.h"
#include "typo.h"
#include "util.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Field weights and BM25 constants. */
#define F_QUESTION 1.0
#define F_KEYWORD 2.0
#ifndef F_ANSWER
#define F_ANSWER 0.4
#endif
#define BM25_K1 0.6
#define BM25_B 0.3
/* Term weight w(t) = W0 + idf(t); a word the FAQ never uses weighs like
 * the rarest FAQ word (W_UNKNOWN_RATIO times a word of a single entry): it
 * is evidence that the question is about something else. */
#define W0 0.5
#ifndef W_UNKNOWN_RATIO
#define W_UNKNOWN_RATIO 0.8
#endif
/* Match quality of a term found through a typo or as a prefix. */
#define Q_TYPO 0.8
#define Q_PREFIX 0.7
/* A thesaurus neighbour the FAQ uses: weaker than any spelling match. */
#ifndef Q_THES
#define Q_THES 0.5
#endif
/* A real word one edit from an FAQ word: a spelling variant, or another
 * word ("porter" / "poster"), so weak. */
#ifndef Q_VARIANT
#define Q_VARIANT 0.5
#endif
/* Each rank down a word's neighbour list costs THES_RANK of the quality:
 * the thesaurus lists its first senses and closest words first
 * ("ramassage": collecte, quête, récolte...), and the farther ones are
 * where its noise is.  A neighbour need not list the word back. */
#ifndef THES_RANK
#define THES_RANK 0.06
#endif

/* Thesaurus neighbours tried per word. */
#define MAX_NEIGHBOURS 8
/* Share of an unknown word's weight that counts against coverage. */
#ifndef W_UNKNOWN_SHARE
#define W_UNKNOWN_SHARE 1.0
#endif
/* evidence = 1 - exp(-acc / w_ref / E_SCALE) */
#ifndef E_SCALE
#define E_SCALE 0.5
#endif
/* score = qcov * (A + (1 - A) * dcov) */
#ifndef A_QCOV
#define A_QCOV 0.6
#endif
/* Typos (typo.h): one edit, never on the first letter ("argent" is not
 * "urgent"), words of TYPO_MIN_LEN bytes or more.  A prefix must be
 * PREFIX_MIN_LEN long and miss at most PREFIX_MAX_TAIL bytes. */
#define PREFIX_MIN_LEN 5
#define PREFIX_MAX_TAIL 4
#define MAX_TERM_CANDS 3
/* Postings ahead whose scratch is prefetched in index_rank. */
#define PREFETCH_AHEAD 6

struct posting {
	uint32_t entry;
	float sat;
};

struct syn_rule {
	uint32_t *from, nfrom;
	uint32_t *to, nto;
};

struct escratch {
	uint32_t seen;  /* qid of the query that last touched the entry */
	uint32_t stamp; /* qid of the query term that last touched it */
	float acc;      /* sum of w * quality * sat */
	float cur;      /* the current query term's best contribution */
	float dbest;    /* best phrasing coverage */
};

struct pscratch {
	uint32_t stamp;
	float acc, cur;
};

struct qterm {
	uint32_t tl;     /* index in the analysed termlist */
	int32_t id;      /* exact term id, or -1 */
	uint32_t cand[MAX_TERM_CANDS];
	float qual[MAX_TERM_CANDS];
	int ncand;
	enum term_match kind;
	float w;
};

struct index {
	struct faq *faq;
	struct text *text;

	struct strmap *vocab;    /* stem -> term id */
	struct strbuf term_str;  /* NUL-separated term strings */
	uint32_t *term_off;
	size_t n_terms, terms_alloc;
	uint32_t *df;
	float *w;                /* query weight per term */
	float w_unknown;
	float w_ref;             /* weight of a word of a single entry */

	uint32_t *e_start;       /* CSR: postings of term t are [e_start[t], e_start[t+1]) */
	struct posting *epost;
	uint32_t *p_start;       /* CSR over phrasings */
	uint32_t *ppost;
	uint32_t *phr_entry;
	float *phr_w;
	size_t n_phr, phr_alloc;

	struct syn_rule *rules;
	size_t n_rules, rules_alloc;
	uint8_t *syn_first;      /* per term id < n_syn_terms: 1 when a rule starts with it */
	size_t n_syn_terms;

	struct strmap *words;    /* folded question/keyword word -> term (while building) */
	struct typo *typo;       /* question/keyword words and stems -> term */
	uint32_t *sorted;        /* ids of terms with df > 0, by string */
	size_t n_sorted;

	struct strmap *ids;      /* entry id -> entry number */

	/* Mapped from a cached image (index_from_image): the arrays above
	 * point into it, and release(release_arg) gives it back. */
	int mapped;
	void (*release)(void *arg);
	void *release_arg;

	/* query scratch: one struct per entry and per phrasing, so a posting
	 * costs one cache miss, not one per array */
	struct termlist tl;
	struct termlist ntl;     /* scratch: a thesaurus neighbour's terms */
	struct qterm *qt;
	size_t qt_alloc;
	struct escratch *es;
	struct pscratch *ps;
	uint32_t *touched, *ptouched;
	uint32_t qid;
};

static const char *term_string(const struct index *idx, uint32_t t)
{
	return idx->term_str.buf + idx->term_off[t];
}

static uint32_t term_intern(struct index *idx, const char *s)
{
	size_t len = strlen(s);
	int added;
	uint32_t id = strmap_put(idx->vocab, s, len, (uint32_t)idx->n_terms, &added);
	if (added) {
		xgrow(&idx->term_off, &idx->terms_alloc, idx->n_terms + 1, sizeof(uint32_t));
		idx->term_off[idx->n_terms] = (uint32_t)idx->term_str.len;
		strbuf_add(&idx->term_str, s, len + 1);
		idx->n_terms++;
	}
	return id;
}

static int32_t term_lookup(const struct index *idx, const char *s)
{
	uint32_t v;
	if (!strmap_get(idx->vocab, s, strlen(s), &v))
		return -1;
	return (int32_t)v;
}

/* ==== Synonyms ==== */

/* Rewrites ids[0..n) by the synonym rules (longest rule first) into
 * out/src (src[k] = position in ids the k-th output term comes from);
 * returns the output length, at most out_cap. */
static size_t apply_rules(const struct index *idx, const int32_t *ids, size_t n, int32_t *out,
			  uint32_t *src, size_t out_cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < out_cap;) {
		const struct syn_rule *best = NULL;
		if (ids[i] >= 0 && (size_t)ids[i] < idx->n_syn_terms && idx->syn_first[ids[i]]) {
			for (size_t r = 0; r < idx->n_rules; r++) {
				const struct syn_rule *ru = &idx->rules[r];
				if (ru->nfrom > n - i || (best && ru->nfrom <= best->nfrom))
					continue;
				size_t j = 0;
				while (j < ru->nfrom && ids[i + j] == (int32_t)ru->from[j])
					j++;
				if (j == ru->nfrom)
					best = ru;
			}
		}
		if (!best) {
			src[k] = (uint32_t)i;
			out[k++] = ids[i++];
			continue;
		}
		for (uint32_t j = 0; j < best->nto && k < out_cap; j++) {
			src[k] = (uint32_t)i;
			out[k++] = (int32_t)best->to[j];
		}
		i += best->nfrom;
	}
	return k;
}

static size_t phrase_ids(struct index *idx, const char *s, uint32_t **out)
{
	termlist_clear(&idx->tl);
	text_analyze(idx->text, s, strlen(s), &idx->tl, 0);
	*out = xmalloc((idx->tl.n + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < idx->tl.n; i++)
		(*out)[i] = term_intern(idx, termlist_stem(&idx->tl, i));
	return idx->tl.n;
}

static void build_rules(struct index *idx)
{
	const struct faq *f = idx->faq;
	for (size_t g = 0; g < f->n_synonyms; g++) {
		uint32_t *to;
		size_t nto = phrase_ids(idx, f->synonyms[g].phrases[0], &to);
		int used = 0;
		for (size_t p = 1; p < f->synonyms[g].n; p++) {
			uint32_t *from;
			size_t nfrom = phrase_ids(idx, f->synonyms[g].phrases[p], &from);
			if (!nfrom || !nto || (nfrom == nto && !memcmp(from, to, nto * sizeof(uint32_t)))) {
				free(from);
				continue;
			}
			xgrow(&idx->rules, &idx->rules_alloc, idx->n_rules + 1, sizeof(*idx->rules));
			struct syn_rule *r = &idx->rules[idx->n_rules++];
			r->from = from;
			r->nfrom = (uint32_t)nfrom;
			r->to = used ? memcpy(xmalloc(nto * sizeof(uint32_t)), to, nto * sizeof(uint32_t)) : to;
			r->nto = (uint32_t)nto;
			used = 1;
		}
		if (!used)
			free(to);
	}
}

/* ==== Acronyms ====
 *
 * Editors write "plan local d'urbanisme" in one place and "PLU" in
 * another, and askers type either.  An acronym (2 to 6 capital letters)
 * whose letters are the initials of consecutive content words somewhere in
 * the FAQ (stopwords skipped: "taxe d'enlèvement des ordures ménagères" for
 * TEOM), with no punctuation inside, becomes a synonym both ways: the
 * phrase and the acronym each stand for both, so either finds an entry
 * that uses the other.  A 2-letter acronym only pairs with a phrase right
 * beside it, "certificat d'urbanisme (CU)" (two initials meet by chance
 * too often).  The editor's own synonyms win: an acronym they already name
 * is left alone. */

#define ACR_MIN 2
#define ACR_MAX 6

struct span {
	uint32_t off, len;
};

struct acronym {
	char name[ACR_MAX + 1]; /* lower case */
	char *phrase;           /* the first expansion found, or NULL */
};

static int raw_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

/* Splits s into runs of letters and digits (apostrophes, hyphens and
 * punctuation separate; bytes of multibyte characters count as letters,
 * so "’" splits nothing: harmless here, it only joins an elision). */
static size_t raw_words(const char *s, struct span **w, size_t *alloc)
{
	size_t n = 0, i = 0, len = strlen(s);
	while (i < len) {
		while (i < len && !raw_word_byte((unsigned char)s[i]))
			i++;
		size_t start = i;
		while (i < len && raw_word_byte((unsigned char)s[i]))
			i++;
		if (i > start) {
			xgrow(w, alloc, n + 1, sizeof(**w));
			(*w)[n].off = (uint32_t)start;
			(*w)[n].len = (uint32_t)(i - start);
			n++;
		}
	}
	return n;
}

static int is_acronym(const char *s, size_t len)
{
	if (len < ACR_MIN || len > ACR_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return 0;
	return 1;
}

/* Calls fn on every text of the FAQ (questions, keywords, answers). */
static void foreach_text(const struct faq *f, void (*fn)(const char *s, void *arg), void *arg)
{
	for (size_t e = 0; e < f->n_entries; e++) {
		const struct faq_entry *en = &f->entries[e];
		for (size_t q = 0; q < en->n_questions; q++)
			fn(en->questions[q], arg);
		for (size_t k = 0; k < en->n_keywords; k++)
			fn(en->keywords[k], arg);
		fn(en->answer, arg);
	}
}

struct acr_scan {
	struct index *idx;
	struct strmap *names;   /* lower-case acronym -> index in list */
	struct acronym *list;
	size_t n, alloc;
	struct span *w;
	size_t w_alloc;
	char *initial;          /* per word: folded first letter, 0 for a stopword */
	size_t initial_alloc;
};

static void acr_collect(const char *s, void *arg)
{
	struct acr_scan *a = arg;
	size_t n = raw_words(s, &a->w, &a->w_alloc);
	for (size_t i = 0; i < n; i++) {
		const char *p = s + a->w[i].off;
		if (!is_acronym(p, a->w[i].len))
			continue;
		char low[ACR_MAX + 1];
		for (size_t k = 0; k < a->w[i].len; k++)
			low[k] = (char)(p[k] - 'A' + 'a');
		int added;
		strmap_put(a->names, low, a->w[i].len, (uint32_t)a->n, &added);
		if (added) {
			xgrow(&a->list, &a->alloc, a->n + 1, sizeof(*a->list));
			memcpy(a->list[a->n].name, low, a->w[i].len);
			a->list[a->n].name[a->w[i].len] = '\0';
			a->list[a->n].phrase = NULL;
			a->n++;
		}
	}
}

/* 1 when word i of s is the acronym (upper case). */
static int word_is(const char *s, const struct span *w, size_t n, size_t i, const char *low)
{
	size_t len = strlen(low), k = 0;
	if (i >= n || w[i].len != len)
		return 0;
	while (k < len && s[w[i].off + k] == low[k] - 'a' + 'A')
		k++;
	return k == len;
}

/* 1 when only spaces, apostrophes and hyphens separate words i..j of s:
 * an expansion never runs across punctuation ("day; book a slot"). */
static int one_phrase(const char *s, const struct span *w, size_t i, size_t j)
{
	for (size_t k = i; k < j; k++)
		for (size_t b = w[k].off + w[k].len; b < w[k + 1].off; b++)
			if (s[b] != ' ' && s[b] != '\'' && s[b] != '-')
				return 0;
	return 1;
}

static void acr_expand(const char *s, void *arg)
{
	struct acr_scan *a = arg;
	struct index *idx = a->idx;
	size_t n = raw_words(s, &a->w, &a->w_alloc);
	xgrow(&a->initial, &a->initial_alloc, n + 1, 1);
	for (size_t i = 0; i < n; i++) {
		const char *p = s + a->w[i].off;
		/* the initial of the word the analyser keeps ("d’enlèvement"
		 * -> "enlevement"), none for a stopword */
		termlist_clear(&idx->ntl);
		int content = text_analyze(idx->text, p, a->w[i].len, &idx->ntl, 1) == 1 &&
			      !is_acronym(p, a->w[i].len);
		a->initial[i] = content ? termlist_word(&idx->ntl, 0)[0] : 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (!a->initial[i])
			continue;
		char ini[ACR_MAX + 1];
		size_t last[ACR_MAX];
		size_t k = 0;
		for (size_t j = i; j < n && k < ACR_MAX; j++)
			if (a->initial[j]) {
				last[k] = j;
				ini[k++] = a->initial[j];
			}
		for (size_t m = ACR_MIN; m <= k; m++) {
			uint32_t v;
			if (!strmap_get(a->names, ini, m, &v) || a->list[v].phrase)
				continue;
			if (!one_phrase(s, a->w, i, last[m - 1]))
				break;
			/* two initials: only "phrase (XX)" or "XX (phrase)" */
			if (m == ACR_MIN && !word_is(s, a->w, n, last[m - 1] + 1, a->list[v].name) &&
			    !(i && word_is(s, a->w, n, i - 1, a->list[v].name)))
				continue;
			size_t end = a->w[last[m - 1]].off + a->w[last[m - 1]].len;
			a->list[v].phrase = xstrndup(s + a->w[i].off, end - a->w[i].off);
		}
	}
}

static void add_rule(struct index *idx, const uint32_t *from, size_t nfrom, const uint32_t *to,
		     size_t nto)
{
	xgrow(&idx->rules, &idx->rules_alloc, idx->n_rules + 1, sizeof(*idx->rules));
	struct syn_rule *r = &idx->rules[idx->n_rules++];
	r->from = memcpy(xmalloc(nfrom * sizeof(uint32_t)), from, nfrom * sizeof(uint32_t));
	r->nfrom = (uint32_t)nfrom;
	r->to = memcpy(xmalloc(nto * sizeof(uint32_t)), to, nto * sizeof(uint32_t));
	r->nto = (uint32_t)nto;
}

/* 1 when one of the first n rules names term t. */
static int rules_name(const struct index *idx, uint32_t t, size_t n)
{
	for (size_t r = 0; r < n; r++) {
		for (uint32_t j = 0; j < idx->rules[r].nfrom; j++)
			if (idx->rules[r].from[j] == t)
				return 1;
		for (uint32_t j = 0; j < idx->rules[r].nto; j++)
			if (idx->rules[r].to[j] == t)
				return 1;
	}
	return 0;
}

static void build_acronyms(struct index *idx)
{
	struct acr_scan a;
	memset(&a, 0, sizeof(a));
	a.idx = idx;
	a.names = strmap_new(64);
	foreach_text(idx->faq, acr_collect, &a);
	if (a.n)
		foreach_text(idx->faq, acr_expand, &a);
	size_t n_editor = idx->n_rules;
	for (size_t i = 0; i < a.n; i++) {
		if (!a.list[i].phrase)
			continue;
		uint32_t *x, *p;
		size_t nx = phrase_ids(idx, a.list[i].name, &x);
		size_t np = phrase_ids(idx, a.list[i].phrase, &p);
		if (nx == 1 && np >= ACR_MIN && !rules_name(idx, x[0], n_editor)) {
			/* both sides become phrase + acronym */
			uint32_t *both = xmalloc((np + 1) * sizeof(uint32_t));
			memcpy(both, p, np * sizeof(uint32_t));
			both[np] = x[0];
			add_rule(idx, x, 1, both, np + 1);
			add_rule(idx, p, np, both, np + 1);
			free(both);
		}
		free(x);
		free(p);
		free(a.list[i].phrase);
	}
	strmap_free(a.names);
	free(a.list);
	free(a.w);
	free(a.initial);
}

/* Analyses s into term ids with synonyms applied.  With intern, unseen
 * terms join the vocabulary (building); otherwise they come back as -1.
 * Returns the count; *out and *src (each term's position in idx->tl) are
 * scratch owned by the caller (free() both). */
static size_t analyse_ids_ex(struct index *idx, const char *s, size_t len, int intern,
			     int record_words, size_t max_terms, int32_t **out, uint32_t **src);

static size_t analyse_ids(struct index *idx, const char *s, size_t len, int intern,
			  size_t max_terms, int32_t **out, uint32_t **src)
{
	return analyse_ids_ex(idx, s, len, intern, 0, max_terms, out, src);
}

static size_t analyse_ids_ex(struct index *idx, const char *s, size_t len, int intern,
			     int record_words, size_t max_terms, int32_t **out, uint32_t **src)
{
	termlist_clear(&idx->tl);
	text_analyze(idx->text, s, len, &idx->tl, max_terms);
	size_t n = idx->tl.n;
	int32_t *raw = xmalloc((n + 1) * sizeof(int32_t));
	for (size_t i = 0; i < n; i++) {
		const char *st = termlist_stem(&idx->tl, i);
		raw[i] = intern ? (int32_t)term_intern(idx, st) : term_lookup(idx, st);
		if (record_words) {
			const char *w = termlist_word(&idx->tl, i);
			strmap_put(idx->words, w, strlen(w), (uint32_t)raw[i], NULL);
		}
	}
	size_t cap = idx->n_rules ? n * 4 + 8 : n + 1;
	*out = xmalloc(cap * sizeof(int32_t));
	*src = xmalloc(cap * sizeof(uint32_t));
	size_t k = apply_rules(idx, raw, n, *out, *src, cap);
	free(raw);
	return k;
}

/* ==== Build ==== */

struct raw_post {
	uint32_t term, entry;
	uint16_t qtf, atf;
	uint8_t kw;
};

struct build {
	struct raw_post *rp;
	size_t n_rp, rp_alloc;
	uint32_t *pp_term, *pp_phr;
	size_t n_pp, pp_alloc;
	uint32_t *mark, *slot, *pmark;
	size_t mark_alloc, slot_alloc, pmark_alloc;
	float *lq, *la;
};

static void grow_marks(struct index *idx, struct build *b)
{
	size_t old = b->mark_alloc;
	xgrow(&b->mark, &b->mark_alloc, idx->n_terms, sizeof(uint32_t));
	if (b->mark_alloc > old)
		memset(b->mark + old, 0, (b->mark_alloc - old) * sizeof(uint32_t));
	xgrow(&b->slot, &b->slot_alloc, idx->n_terms, sizeof(uint32_t));
	old = b->pmark_alloc;
	xgrow(&b->pmark, &b->pmark_alloc, idx->n_terms, sizeof(uint32_t));
	if (b->pmark_alloc > old)
		memset(b->pmark + old, 0, (b->pmark_alloc - old) * sizeof(uint32_t));
}

/* Adds one occurrence of term t in entry e's field. */
static void count_term(struct index *idx, struct build *b, size_t first_rp, uint32_t e,
		       int32_t t, int field)
{
	(void)idx;
	if (t < 0)
		return;
	struct raw_post *p;
	if (b->mark[t] == e + 1) {
		p = &b->rp[first_rp + b->slot[t]];
	} else {
		xgrow(&b->rp, &b->rp_alloc, b->n_rp + 1, sizeof(*b->rp));
		b->mark[t] = e + 1;
		b->slot[t] = (uint32_t)(b->n_rp - first_rp);
		p = &b->rp[b->n_rp++];
		memset(p, 0, sizeof(*p));
		p->term = (uint32_t)t;
		p->entry = e;
	}
	if (field == 0 && p->qtf < UINT16_MAX)
		p->qtf++;
	else if (field == 1)
		p->kw = 1;
	else if (field == 2 && p->atf < UINT16_MAX)
		p->atf++;
}

static void add_entry(struct index *idx, struct build *b, uint32_t e)
{
	const struct faq_entry *en = &idx->faq->entries[e];
	size_t first = b->n_rp;
	int32_t *ids;
	uint32_t *src;
	for (size_t q = 0; q < en->n_questions; q++) {
		size_t n = analyse_ids_ex(idx, en->questions[q], strlen(en->questions[q]), 1, 1, 0,
					  &ids, &src);
		grow_marks(idx, b);
		uint32_t phr = (uint32_t)idx->n_phr++;
		xgrow(&idx->phr_entry, &idx->phr_alloc, phr + 1, sizeof(uint32_t));
		idx->phr_entry[phr] = e;
		for (size_t i = 0; i < n; i++) {
			count_term(idx, b, first, e, ids[i], 0);
			b->lq[e] += 1;
			if (ids[i] >= 0 && b->pmark[ids[i]] != phr + 1) {
				b->pmark[ids[i]] = phr + 1;
				size_t a2 = b->pp_alloc;
				xgrow(&b->pp_term, &a2, b->n_pp + 1, sizeof(uint32_t));
				xgrow(&b->pp_phr, &b->pp_alloc, b->n_pp + 1, sizeof(uint32_t));
				b->pp_term[b->n_pp] = (uint32_t)ids[i];
				b->pp_phr[b->n_pp++] = phr;
			}
		}
		free(ids);
		free(src);
	}
	for (size_t k = 0; k < en->n_keywords; k++) {
		size_t n = analyse_ids_ex(idx, en->keywords[k], strlen(en->keywords[k]), 1, 1, 0,
					  &ids, &src);
		grow_marks(idx, b);
		for (size_t i = 0; i < n; i++)
			count_term(idx, b, first, e, ids[i], 1);
		free(ids);
		free(src);
	}
	size_t n = analyse_ids(idx, en->answer, strlen(en->answer), 1, 0, &ids, &src);
	grow_marks(idx, b);
	for (size_t i = 0; i < n; i++) {
		count_term(idx, b, first, e, ids[i], 2);
		b->la[e] += 1;
	}
	free(ids);
	free(src);
}

struct sort_item {
	const char *s;
	uint32_t id;
};

static int cmp_sort_item(const void *a, const void *b)
{
	return strcmp(((const struct sort_item *)a)->s, ((const struct sort_item *)b)->s);
}

static void word_source_cb(const char *word, uint32_t t, void *arg)
{
	struct index *idx = arg;
	if (idx->df[t]) /* a stem rewritten by a synonym has no postings */
		typo_add(idx->typo, word, t);
}

/* The typo index (question and keyword words and stems with postings) and
 * the sorted vocabulary for prefix search. */
static void build_lookup(struct index *idx, const uint8_t *in_questions)
{
	idx->typo = typo_new();
	idx->sorted = xmalloc((idx->n_terms + 1) * sizeof(uint32_t));
	for (uint32_t t = 0; t < idx->n_terms; t++) {
		if (!idx->df[t])
			continue;
		idx->sorted[idx->n_sorted++] = t;
		if (in_questions[t])
			typo_add(idx->typo, term_string(idx, t), t);
	}
	strmap_foreach(idx->words, word_source_cb, idx);
	strmap_free(idx->words);
	idx->words = NULL;
	typo_build(idx->typo);
	/* the term arena no longer moves: sort (string, id) pairs */
	struct sort_item *items = xmalloc((idx->n_sorted + 1) * sizeof(*items));
	for (size_t i = 0; i < idx->n_sorted; i++) {
		items[i].s = term_string(idx, idx->sorted[i]);
		items[i].id = idx->sorted[i];
	}
	qsort(items, idx->n_sorted, sizeof(*items), cmp_sort_item);
	for (size_t i = 0; i < idx->n_sorted; i++)
		idx->sorted[i] = items[i].id;
	free(items);
}

static void build_postings(struct index *idx, struct build *b)
{
	size_t N = idx->faq->n_entries, T = idx->n_terms;
	idx->df = xcalloc(T + 1, sizeof(uint32_t));
	idx->e_start = xcalloc(T + 2, sizeof(uint32_t));
	for (size_t i = 0; i < b->n_rp; i++)
		idx->e_start[b->rp[i].term + 2]++;
	for (size_t t = 0; t < T; t++) {
		idx->df[t] = idx->e_start[t + 2];
		idx->e_start[t + 2] += idx->e_start[t + 1];
	}
	double avg_q = 0, avg_a = 0;
	for (size_t e = 0; e < N; e++) {
		avg_q += b->lq[e];
		avg_a += b->la[e];
	}
	avg_q = avg_q / (double)N + 1e-9;
	avg_a = avg_a / (double)N + 1e-9;
	idx->epost = xmalloc((b->n_rp + 1) * sizeof(struct posting));
	for (size_t i = 0; i < b->n_rp; i++) {
		const struct raw_post *r = &b->rp[i];
		double nq = 1 - BM25_B + BM25_B * b->lq[r->entry] / avg_q;
		double na = 1 - BM25_B + BM25_B * b->la[r->entry] / avg_a;
		double tf = F_QUESTION * r->qtf / nq + F_KEYWORD * r->kw + F_ANSWER * r->atf / na;
		double sat = tf * (1 + BM25_K1) / (tf + BM25_K1);
		struct posting *p = &idx->epost[idx->e_start[r->term + 1]++];
		p->entry = r->entry;
		p->sat = (float)(sat > 1 ? 1 : sat);
	}
	idx->w = xmalloc((T + 1) * sizeof(float));
	for (size_t t = 0; t < T; t++) {
		double df = idx->df[t];
		idx->w[t] = (float)(W0 + log1p(((double)N - df + 0.5) / (df + 0.5)));
	}
	idx->w_ref = (float)(W0 + log1p(((double)N - 0.5) / 1.5));
	idx->w_unknown = (float)(W_UNKNOWN_RATIO * idx->w_ref);

	/* phrasing postings */
	idx->p_start = xcalloc(T + 2, sizeof(uint32_t));
	for (size_t i = 0; i < b->n_pp; i++)
		idx->p_start[b->pp_term[i] + 2]++;
	for (size_t t = 0; t < T; t++)
		idx->p_start[t + 2] += idx->p_start[t + 1];
	idx->ppost = xmalloc((b->n_pp + 1) * sizeof(uint32_t));
	idx->phr_w = xcalloc(idx->n_phr + 1, sizeof(float));
	for (size_t i = 0; i < b->n_pp; i++) {
		idx->ppost[idx->p_start[b->pp_term[i] + 1]++] = b->pp_phr[i];
		idx->phr_w[b->pp_phr[i]] += idx->w[b->pp_term[i]];
	}
}

static void alloc_scratch(struct index *idx)
{
	size_t N = idx->faq->n_entries + 1, P = idx->n_phr + 1;
	idx->es = xcalloc(N, sizeof(struct escratch));
	idx->ps = xcalloc(P, sizeof(struct pscratch));
	idx->touched = xcalloc(N, sizeof(uint32_t));
	idx->ptouched = xcalloc(P, sizeof(uint32_t));
}

struct index *index_build(struct faq *faq, struct faq_diags *d)
{
	struct text *t = text_new(faq->language);
	if (!t) {
		faq_diags_add(d, FAQ_ERROR, "%s: \"language\": no stemmer for \"%s\"", faq->source,
			      faq->language);
		faq_free(faq);
		return NULL;
	}
	struct index *idx = xcalloc(1, sizeof(*idx));
	idx->faq = faq;
	idx->text = t;
	idx->vocab = strmap_new(1024);
	idx->words = strmap_new(1024);
	strbuf_init(&idx->term_str, 0);
	termlist_init(&idx->tl);
	termlist_init(&idx->ntl);
	build_rules(idx);
	build_acronyms(idx);
	/* rules only name terms interned while building them */
	idx->n_syn_terms = idx->n_terms;
	idx->syn_first = xcalloc(idx->n_terms + 1, 1);
	for (size_t r = 0; r < idx->n_rules; r++)
		idx->syn_first[idx->rules[r].from[0]] = 1;

	struct build b;
	memset(&b, 0, sizeof(b));
	b.lq = xcalloc(faq->n_entries + 1, sizeof(float));
	b.la = xcalloc(faq->n_entries + 1, sizeof(float));
	idx->ids = strmap_new(faq->n_entries);
	for (uint32_t e = 0; e < faq->n_entries; e++) {
		strmap_put(idx->ids, faq->entries[e].id, strlen(faq->entries[e].id), e, NULL);
		add_entry(idx, &b, e);
	}
	build_postings(idx, &b);
	uint8_t *in_questions = xcalloc(idx->n_terms + 1, 1);
	for (size_t i = 0; i < b.n_rp; i++)
		if (b.rp[i].qtf || b.rp[i].kw)
			in_questions[b.rp[i].term] = 1;
	build_lookup(idx, in_questions);
	free(in_questions);
	/* a fresh analyzer for the queries: the build's has every FAQ word in
	 * its stem cache (up to STEM_CACHE_MAX), megabytes that questions
	 * would miss in the CPU caches (it is only a memo: same stems), and
	 * what an index mapped from the cache starts with */
	struct text *fresh = text_new(faq->language);
	if (fresh) {
		text_free(idx->text);
		idx->text = fresh;
	}
	alloc_scratch(idx);
	free(b.rp);
	free(b.pp_term);
	free(b.pp_phr);
	free(b.mark);
	free(b.slot);
	free(b.pmark);
	free(b.lq);
	free(b.la);
	return idx;
}

void index_free(struct index *idx)
{
	if (!idx)
		return;
	faq_free(idx->faq);
	text_free(idx->text);
	strmap_free(idx->vocab);
	strmap_free(idx->words);
	typo_free(idx->typo);
	strmap_free(idx->ids);
	termlist_release(&idx->tl);
	termlist_release(&idx->ntl);
	free(idx->qt);
	free(idx->es);
	free(idx->ps);
	free(idx->touched);
	free(idx->ptouched);
	if (idx->mapped) {
		free(idx->rules);
		if (idx->release)
			idx->release(idx->release_arg);
		free(idx);
		return;
	}
	strbuf_release(&idx->term_str);
	free(idx->term_off);
	free(idx->df);
	free(idx->w);
	free(idx->e_start);
	free(idx->epost);
	free(idx->p_start);
	free(idx->ppost);
	free(idx->phr_entry);
	free(idx->phr_w);
	for (size_t r = 0; r < idx->n_rules; r++) {
		free(idx->rules[r].from);
		free(idx->rules[r].to);
	}
	free(idx->rules);
	free(idx->syn_first);
	free(idx->sorted);
	free(idx);
}

const struct faq *index_faq(const struct index *idx)
{
	return idx->faq;
}

long index_find(const struct index *idx, const char *id)
{
	uint32_t v;
	return strmap_get(idx->ids, id, strlen(id), &v) ? (long)v : -1;
}

size_t index_vocabulary_size(const struct index *idx)
{
	return idx->n_sorted;
}

/* ==== Query ==== */

static void add_cand(struct qterm *q, uint32_t t, float qual)
{
	for (int i = 0; i < q->ncand; i++)
		if (q->cand[i] == t)
			return;
	if (q->ncand < MAX_TERM_CANDS) {
		q->cand[q->ncand] = t;
		q->qual[q->ncand++] = qual;
	}
}

/* FAQ terms whose question/keyword word or stem is one edit from q. */
static void find_typos_q(const struct index *idx, const char *q, struct qterm *out, float qual)
{
	uint32_t ids[MAX_TERM_CANDS];
	size_t n = typo_lookup(idx->typo, q, ids, MAX_TERM_CANDS);
	for (size_t i = 0; i < n; i++)
		add_cand(out, ids[i], qual);
}

static void find_typos(const struct index *idx, const char *q, struct qterm *out)
{
	find_typos_q(idx, q, out, Q_TYPO);
}

/* Vocabulary terms that q is the beginning of ("souscr" -> "souscript"). */
static void find_prefixes(const struct index *idx, const char *q, struct qterm *out)
{
	size_t len = strlen(q), lo = 0, hi = idx->n_sorted;
	if (len < PREFIX_MIN_LEN || !text_is_word(q))
		return;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(term_string(idx, idx->sorted[mid]), q) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < idx->n_sorted && out->ncand < MAX_TERM_CANDS; i++) {
		const char *s = term_string(idx, idx->sorted[i]);
		if (strncmp(s, q, len))
			break;
		if (strlen(s) - len <= PREFIX_MAX_TAIL)
			add_cand(out, idx->sorted[i], Q_PREFIX);
	}
}

/* FAQ terms that a thesaurus neighbour of the word stems to (only terms
 * the FAQ uses, closest neighbours first). */
static void find_neighbours(struct index *idx, const char *word, struct qterm *out)
{
	const char *nb = text_neighbours(idx->text, word);
	for (int k = 0; nb && *nb && k < MAX_NEIGHBOURS && out->ncand < MAX_TERM_CANDS; k++) {
		const char *end = strchr(nb, '\t');
		size_t len = end ? (size_t)(end - nb) : strlen(nb);
		termlist_clear(&idx->ntl);
		if (text_analyze(idx->text, nb, len, &idx->ntl, 1) == 1) {
			int32_t id = term_lookup(idx, termlist_stem(&idx->ntl, 0));
			if (id >= 0 && idx->df[id])
				add_cand(out, (uint32_t)id, (float)(Q_THES * (1 - THES_RANK * k)));
		}
		nb = end ? end + 1 : nb + len;
	}
}

/* Analyses the question into distinct query terms with their candidates. */
static size_t query_terms(struct index *idx, const char *q, size_t len)
{
	int32_t *ids;
	uint32_t *src;
	size_t n = analyse_ids(idx, q, len, 0, INDEX_MAX_QUERY_TERMS, &ids, &src);
	xgrow(&idx->qt, &idx->qt_alloc, n + 1, sizeof(struct qterm));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *stem = termlist_stem(&idx->tl, src[i]);
		int dup = 0;
		for (size_t j = 0; j < k && !dup; j++)
			dup = ids[i] >= 0 ? idx->qt[j].id == ids[i]
			      : (idx->qt[j].id < 0 && !strcmp(termlist_stem(&idx->tl, idx->qt[j].tl), stem));
		if (dup)
			continue;
		struct qterm *t = &idx->qt[k++];
		memset(t, 0, sizeof(*t));
		t->id = ids[i];
		t->tl = src[i];
		if (ids[i] >= 0 && idx->df[ids[i]]) {
			add_cand(t, (uint32_t)ids[i], 1.0f);
			t->kind = TERM_EXACT;
		} else if (ids[i] < 0) {
			/* a real word of the language is no typo of another
			 * ("finance" is not "financier"); it may have a
			 * neighbour in the thesaurus */
			const char *word = termlist_word(&idx->tl, src[i]);
			if (text_known_word(idx->text, word)) {
				find_neighbours(idx, word, t);
				t->kind = t->ncand ? TERM_THESAURUS : TERM_UNKNOWN;
				if (!t->ncand) {
					/* a spelling variant ("dechetterie",
					 * "déchèterie"): one edit on the whole
					 * word, never on stems or prefixes */
					find_typos_q(idx, word, t, Q_VARIANT);
					t->kind = t->ncand ? TERM_TYPO : TERM_UNKNOWN;
				}
			} else {
				find_typos(idx, stem, t);
				find_typos(idx, word, t);
				t->kind = t->ncand ? TERM_TYPO : TERM_UNKNOWN;
				if (!t->ncand) {
					find_prefixes(idx, stem, t);
					t->kind = t->ncand ? TERM_PREFIX : TERM_UNKNOWN;
				}
			}
		}
		t->w = idx->w_unknown;
		for (int c = 0; c < t->ncand; c++)
			if (c == 0 || idx->w[t->cand[c]] > t->w)
				t->w = idx->w[t->cand[c]];
	}
	free(ids);
	free(src);
	return k;
}

static void next_qid(struct index *idx)
{
	if (++idx->qid == UINT32_MAX) {
		size_t N = idx->faq->n_entries + 1, P = idx->n_phr + 1;
		memset(idx->es, 0, N * sizeof(struct escratch));
		memset(idx->ps, 0, P * sizeof(struct pscratch));
		idx->qid = 1;
	}
}

static void insert_cand(struct index_result *out, const struct index_cand *c)
{
	size_t pos = out->n_cand;
	while (pos > 0 && (out->cand[pos - 1].score < c->score ||
			   (out->cand[pos - 1].score == c->score && out->cand[pos - 1].qcov < c->qcov)))
		pos--;
	if (pos >= INDEX_MAX_CAND)
		return;
	size_t end = out->n_cand < INDEX_MAX_CAND ? out->n_cand : INDEX_MAX_CAND - 1;
	memmove(&out->cand[pos + 1], &out->cand[pos], (end - pos) * sizeof(*c));
	out->cand[pos] = *c;
	if (out->n_cand < INDEX_MAX_CAND)
		out->n_cand++;
}

void index_rank(struct index *idx, const char *q, size_t len, struct index_result *out)
{
	memset(out, 0, sizeof(*out));
	size_t nq = query_terms(idx, q, len);
	out->n_terms = nq;
	double wsum = 0;
	size_t nt = 0, np = 0;
	next_qid(idx);
	uint32_t query_seen = idx->qid;
	for (size_t i = 0; i < nq; i++) {
		struct qterm *t = &idx->qt[i];
		if (!t->ncand) {
			wsum += W_UNKNOWN_SHARE * t->w;
			out->n_unknown++;
			continue;
		}
		wsum += t->w;
		next_qid(idx);
		uint32_t s = idx->qid;
		for (int c = 0; c < t->ncand; c++) {
			uint32_t term = t->cand[c];
			float qual = t->qual[c];
			uint32_t end = idx->e_start[term + 1];
			for (uint32_t k = idx->e_start[term]; k < end; k++) {
				const struct posting *p = &idx->epost[k];
				/* entries are scattered: ask for the scratch of one a
				 * few postings ahead while this one is added */
				if (k + PREFETCH_AHEAD < end)
					__builtin_prefetch(&idx->es[idx->epost[k + PREFETCH_AHEAD].entry], 1);
				float v = qual * p->sat;
				struct escratch *x = &idx->es[p->entry];
				if (x->seen < query_seen) {
					x->seen = query_seen;
					x->acc = 0;
					x->dbest = 0;
					idx->touched[nt++] = p->entry;
				}
				if (x->stamp != s) {
					x->stamp = s;
					x->cur = v;
					x->acc += t->w * v;
				} else if (v > x->cur) {
					x->acc += t->w * (v - x->cur);
					x->cur = v;
				}
			}
			float wv = idx->w[term] * qual;
			uint32_t pend = idx->p_start[term + 1];
			for (uint32_t k = idx->p_start[term]; k < pend; k++) {
				uint32_t p = idx->ppost[k];
				if (k + PREFETCH_AHEAD < pend)
					__builtin_prefetch(&idx->ps[idx->ppost[k + PREFETCH_AHEAD]], 1);
				struct pscratch *y = &idx->ps[p];
				if (y->stamp < query_seen) {
					y->stamp = s;
					y->acc = wv;
					y->cur = wv;
					idx->ptouched[np++] = p;
				} else if (y->stamp != s) {
					y->stamp = s;
					y->acc += wv;
					y->cur = wv;
				} else if (wv > y->cur) {
					y->acc += wv - y->cur;
					y->cur = wv;
				}
			}
		}
	}
	for (size_t i = 0; i < np; i++) {
		uint32_t p = idx->ptouched[i];
		float d = idx->phr_w[p] > 0 ? idx->ps[p].acc / idx->phr_w[p] : 0;
		struct escratch *x = &idx->es[idx->phr_entry[p]];
		if (d > x->dbest)
			x->dbest = d > 1 ? 1 : d;
	}
	for (size_t i = 0; i < nt; i++) {
		uint32_t e = idx->touched[i];
		struct index_cand c;
		c.entry = e;
		c.qcov = wsum > 0 ? idx->es[e].acc / wsum : 0;
		if (c.qcov > 1)
			c.qcov = 1;
		c.dcov = idx->es[e].dbest;
		/* evidence <= 1, so the score is at most bound (exactly: the
		 * rounded product by a factor <= 1 never exceeds the other
		 * factor); below the last of a full list it could not enter it,
		 * so the exp and the insertion are skipped: same result */
		double bound = c.qcov * (A_QCOV + (1 - A_QCOV) * c.dcov);
		if (out->n_cand == INDEX_MAX_CAND && bound < out->cand[INDEX_MAX_CAND - 1].score)
			continue;
		c.evidence = 1 - exp(-idx->es[e].acc / idx->w_ref / E_SCALE);
		c.score = bound * c.evidence;
		insert_cand(out, &c);
	}
}

/* ==== Explanations ==== */

static const char *kind_name(enum term_match k)
{
	switch (k) {
	case TERM_EXACT: return "exact";
	case TERM_TYPO: return "typo";
	case TERM_PREFIX: return "prefix";
	case TERM_THESAURUS: return "thesaurus";
	default: return "unknown";
	}
}

static const struct posting *find_posting(const struct index *idx, uint32_t term, uint32_t e)
{
	uint32_t lo = idx->e_start[term], hi = idx->e_start[term + 1];
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (idx->epost[mid].entry < e)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < idx->e_start[term + 1] && idx->epost[lo].entry == e ? &idx->epost[lo] : NULL;
}

void index_explain(struct index *idx, const char *q, size_t len,
		   const struct index_result *res, struct strbuf *out)
{
	size_t nq = query_terms(idx, q, len);
	strbuf_addf(out, "terms (%zu):\n", nq);
	for (size_t i = 0; i < nq; i++) {
		const struct qterm *t = &idx->qt[i];
		const char *word = termlist_word(&idx->tl, t->tl);
		const char *stem = t->id >= 0 ? term_string(idx, (uint32_t)t->id)
				   : termlist_stem(&idx->tl, t->tl);
		strbuf_addf(out, "  %-16s stem %-14s weight %.2f  %s", word, stem, t->w,
			    kind_name(t->kind));
		for (int c = 0; c < t->ncand; c++)
			if (t->kind != TERM_EXACT)
				strbuf_addf(out, "%s%s", c ? ", " : " -> ", term_string(idx, t->cand[c]));
		strbuf_addch(out, '\n');
	}
	strbuf_addf(out, "candidates (%zu):\n", res->n_cand);
	for (size_t k = 0; k < res->n_cand; k++) {
		const struct index_cand *c = &res->cand[k];
		strbuf_addf(out, "  %zu. %-22s score %.3f (question coverage %.2f, phrasing coverage %.2f, "
			    "evidence %.2f)\n", k + 1, idx->faq->entries[c->entry].id, c->score, c->qcov,
			    c->dcov, c->evidence);
		strbuf_addstr(out, "     matched:");
		for (size_t i = 0; i < nq; i++) {
			const struct qterm *t = &idx->qt[i];
			for (int j = 0; j < t->ncand; j++) {
				const struct posting *p = find_posting(idx, t->cand[j], c->entry);
				if (p) {
					strbuf_addf(out, " %s(%.2f)", term_string(idx, t->cand[j]),
						    t->w * t->qual[j] * p->sat);
					break;
				}
			}
		}
		strbuf_addch(out, '\n');
	}
}

/* ==== Advice for editors ==== */

/* Marks in mark[] (one byte per term) the terms of s; returns how many
 * distinct known terms it has. */
static size_t mark_terms(struct index *idx, const char *s, uint8_t *mark, uint8_t bit,
			 struct strbuf *words, uint32_t *word_off)
{
	int32_t *ids;
	uint32_t *src;
	size_t n = analyse_ids(idx, s, strlen(s), 0, 0, &ids, &src), k = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] >= 0 && !(mark[ids[i]] & bit)) {
			mark[ids[i]] |= bit;
			k++;
			if (words) { /* the first word seen for the term */
				word_off[ids[i]] = (uint32_t)words->len;
				strbuf_addstr(words, termlist_word(&idx->tl, src[i]));
				strbuf_addch(words, '\0');
			}
		}
	free(ids);
	free(src);
	return k;
}

void index_advise(struct index *idx, struct faq_diags *d)
{
	const struct faq *f = idx->faq;
	size_t T = idx->n_terms;
	/* qdf: in how many entries' questions or keywords each term is */
	uint32_t *qdf = xcalloc(T + 1, sizeof(uint32_t));
	uint8_t *mark = xcalloc(T + 1, 1);
	for (size_t e = 0; e < f->n_entries; e++) {
		const struct faq_entry *en = &f->entries[e];
		memset(mark, 0, T + 1);
		for (size_t q = 0; q < en->n_questions; q++)
			mark_terms(idx, en->questions[q], mark, 1, NULL, NULL);
		for (size_t k = 0; k < en->n_keywords; k++)
			mark_terms(idx, en->keywords[k], mark, 1, NULL, NULL);
		for (size_t t = 0; t < T; t++)
			qdf[t] += mark[t] & 1;
	}
	struct strbuf words = STRBUF_INIT, answer_words = STRBUF_INIT;
	uint32_t *word_off = xcalloc(T + 1, sizeof(uint32_t));
	for (size_t e = 0; e < f->n_entries; e++) {
		const struct faq_entry *en = &f->entries[e];
		memset(mark, 0, T + 1);
		size_t nq = 0;
		for (size_t q = 0; q < en->n_questions; q++)
			nq += mark_terms(idx, en->questions[q], mark, 1, NULL, NULL);
		for (size_t k = 0; k < en->n_keywords; k++)
			nq += mark_terms(idx, en->keywords[k], mark, 1, NULL, NULL);
		strbuf_reset(&answer_words);
		mark_terms(idx, en->answer, mark, 2, &answer_words, word_off);
		size_t own = 0, n_words = 0;
		strbuf_reset(&words);
		for (size_t t = 0; t < T; t++) {
			if ((mark[t] & 1) && qdf[t] == 1)
				own++;
			/* a rare answer word (this entry alone uses it) that no
			 * question of the FAQ has: an asker may type it */
			if (mark[t] == 2 && !qdf[t] && idx->df[t] == 1 && text_is_word(term_string(idx, (uint32_t)t)) &&
			    n_words < 6)
				strbuf_addf(&words, "%s\"%s\"", n_words++ ? ", " : "",
					    answer_words.buf + word_off[t]);
		}
		if (nq && !own && f->n_entries > 1)
			faq_diags_add(d, FAQ_WARNING, "%s: advice: entry \"%s\" is hard to reach: every word "
				      "of its questions is also in other entries' questions; add a phrasing "
				      "or keyword only it has", f->source, en->id);
		if (n_words)
			faq_diags_add(d, FAQ_WARNING, "%s: advice: entry \"%s\": its answer uses words no "
				      "question has (%s); askers may type them: consider a phrasing "
				      "or keywords with them", f->source, en->id, words.buf);
	}
	strbuf_release(&words);
	strbuf_release(&answer_words);
	free(word_off);
	free(qdf);
	free(mark);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void index_terms(struct index *idx, const char *q, size_t len, struct strbuf *out)
{
	size_t nq = query_terms(idx, q, len);
	const char **s = xmalloc((nq + 1) * sizeof(char *));
	for (size_t i = 0; i < nq; i++) {
		const struct qterm *t = &idx->qt[i];
		s[i] = t->id >= 0 ? term_string(idx, (uint32_t)t->id)
		       : (t->ncand ? term_string(idx, t->cand[0]) : termlist_stem(&idx->tl, t->tl));
	}
	qsort(s, nq, sizeof(char *), cmp_str);
	for (size_t i = 0; i < nq; i++)
		strbuf_addf(out, "%s%s", i ? " " : "", s[i]);
	free(s);
}

/* ==== The compiled image (the index cache) ====
 *
 * Everything index_build computes, as one flat block that can be written
 * to a file and mapped back read-only: a header, then sections (8-byte
 * aligned arrays) the index's pointers then point into.  Only the two
 * string -> number maps (vocabulary, entry ids) are rebuilt on mapping:
 * they hash with the process's secret key (strmap.c), which no file may
 * fix.  The FAQ itself is not in the image: the caller parses it anyway
 * (answers, messages) and the image's key is a hash of what of it the
 * index reads.
 *
 * A mapped image is checked before anything points into it: magic, byte
 * order, version, key, size, a checksum over every byte after the
 * checksum field, then every count and offset against the FAQ and the
 * arrays they index (so a damaged or forged file cannot make a query read
 * outside it or probe forever).  Cost: one pass over the image (the
 * checksum), linear in its size. */

#define IMG_MAGIC "FQIDX\0\0\1"
#define IMG_BOM 0x01020304u
#define IMG_VERSION 1u

enum img_sec {
	S_TERM_STR, S_TERM_OFF, S_DF, S_W, S_E_START, S_EPOST, S_P_START, S_PPOST, S_PHR_ENTRY,
	S_PHR_W, S_SYN_FIRST, S_SORTED, S_RULES, S_TYPO_STR, S_TYPO_OFF, S_TYPO_ID, S_TYPO_SLOTS,
	N_SEC
};

struct img_header {
	char magic[8];
	uint32_t bom, version;
	uint64_t key;
	uint64_t size;      /* the whole image, header included */
	uint64_t checksum;  /* over bytes [offsetof(fields after it), size) */
	uint32_t n_entries, n_terms, n_phr, n_sorted, n_syn_terms, n_rules;
	float w_unknown, w_ref;
	struct {
		uint64_t off, len;
	} sec[N_SEC];
};

/* A fast 64-bit hash (four lanes of xxHash64's round over 32-byte blocks,
 * then a murmur finaliser): several GB/s, for the checksum of an image and
 * the key of an FAQ; not keyed, not for tables of what users send. */
#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL

struct fhash {
	uint64_t v[4];
	unsigned char buf[32];
	size_t n;
	uint64_t total;
};

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t fh_round(uint64_t acc, uint64_t w)
{
	return rotl64(acc + w * P2, 31) * P1;
}

static void fh_init(struct fhash *h, uint64_t seed)
{
	h->v[0] = seed + P1 + P2;
	h->v[1] = seed + P2;
	h->v[2] = seed;
	h->v[3] = seed - P1;
	h->n = 0;
	h->total = 0;
}

static void fh_block(struct fhash *h, const unsigned char *p)
{
	for (int i = 0; i < 4; i++) {
		uint64_t w;
		memcpy(&w, p + (size_t)8 * (size_t)i, 8);
		h->v[i] = fh_round(h->v[i], w);
	}
}

static void fh_add(struct fhash *h, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (!len)
		return;
	h->total += len;
	if (h->n) {
		size_t k = 32 - h->n < len ? 32 - h->n : len;
		memcpy(h->buf + h->n, p, k);
		h->n += k;
		p += k;
		len -= k;
		if (h->n < 32)
			return;
		fh_block(h, h->buf);
		h->n = 0;
	}
	for (; len >= 32; p += 32, len -= 32)
		fh_block(h, p);
	memcpy(h->buf, p, len);
	h->n = len;
}

static void fh_u64(struct fhash *h, uint64_t v)
{
	fh_add(h, &v, sizeof(v));
}

static void fh_str(struct fhash *h, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	fh_u64(h, s ? len : UINT64_MAX);
	fh_add(h, s, len);
}

static uint64_t fh_final(struct fhash *h)
{
	uint64_t x = rotl64(h->v[0], 1) + rotl64(h->v[1], 7) + rotl64(h->v[2], 12) +
		     rotl64(h->v[3], 18) + h->total * P3;
	for (size_t i = 0; i < h->n; i++)
		x = rotl64(x ^ (h->buf[i] * P1), 11) * P2;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

uint64_t index_key(const struct faq *f, uint64_t seed)
{
	struct fhash h;
	fh_init(&h, seed);
	fh_u64(&h, IMG_VERSION);
	fh_str(&h, f->language);
	fh_u64(&h, text_tables_id(f->language));
	fh_u64(&h, f->n_synonyms);
	for (size_t g = 0; g < f->n_synonyms; g++) {
		fh_u64(&h, f->synonyms[g].n);
		for (size_t p = 0; p < f->synonyms[g].n; p++)
			fh_str(&h, f->synonyms[g].phrases[p]);
	}
	fh_u64(&h, f->n_entries);
	for (size_t e = 0; e < f->n_entries; e++) {
		const struct faq_entry *en = &f->entries[e];
		fh_str(&h, en->id);
		fh_u64(&h, en->n_questions);
		for (size_t q = 0; q < en->n_questions; q++)
			fh_str(&h, en->questions[q]);
		fh_u64(&h, en->n_keywords);
		for (size_t k = 0; k < en->n_keywords; k++)
			fh_str(&h, en->keywords[k]);
		fh_str(&h, en->answer);
	}
	return fh_final(&h);
}

static uint64_t img_checksum(const unsigned char *img, size_t size)
{
	size_t from = offsetof(struct img_header, checksum) + sizeof(uint64_t);
	struct fhash h;
	fh_init(&h, IMG_VERSION);
	fh_add(&h, img + from, size - from);
	return fh_final(&h);
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* The rules as one array: nfrom, nto, from..., to... per rule. */
static size_t rules_words(const struct index *idx)
{
	size_t n = 0;
	for (size_t r = 0; r < idx->n_rules; r++)
		n += 2 + idx->rules[r].nfrom + idx->rules[r].nto;
	return n;
}

void *index_image(const struct index *idx, uint64_t key, size_t *len)
{
	size_t T = idx->n_terms;
	struct typo_parts tp;
	typo_parts(idx->typo, &tp);
	const void *src[N_SEC] = {
		idx->term_str.buf, idx->term_off, idx->df, idx->w, idx->e_start, idx->epost,
		idx->p_start, idx->ppost, idx->phr_entry, idx->phr_w, idx->syn_first, idx->sorted,
		NULL, tp.str, tp.off, tp.id, tp.slots,
	};
	size_t bytes[N_SEC] = {
		idx->term_str.len + 1, T * 4, T * 4, T * 4, (T + 2) * 4,
		idx->e_start[T] * sizeof(struct posting), (T + 2) * 4, (size_t)idx->p_start[T] * 4,
		idx->n_phr * 4, idx->n_phr * 4, idx->n_syn_terms + 1, idx->n_sorted * 4,
		rules_words(idx) * 4, tp.str_len, tp.n * 4, tp.n * 4, tp.n_slots * 8,
	};
	struct img_header hd;
	memset(&hd, 0, sizeof(hd));
	size_t size = align8(sizeof(hd));
	for (int i = 0; i < N_SEC; i++) {
		hd.sec[i].off = size;
		hd.sec[i].len = bytes[i];
		size = align8(size + bytes[i]);
	}
	unsigned char *img = xcalloc(1, size);
	for (int i = 0; i < N_SEC; i++)
		if (src[i] && bytes[i])
			memcpy(img + hd.sec[i].off, src[i], bytes[i]);
	uint32_t *rw = (uint32_t *)(void *)(img + hd.sec[S_RULES].off);
	for (size_t r = 0; r < idx->n_rules; r++) {
		const struct syn_rule *ru = &idx->rules[r];
		*rw++ = ru->nfrom;
		*rw++ = ru->nto;
		memcpy(rw, ru->from, (size_t)ru->nfrom * 4);
		rw += ru->nfrom;
		memcpy(rw, ru->to, (size_t)ru->nto * 4);
		rw += ru->nto;
	}
	memcpy(hd.magic, IMG_MAGIC, 8);
	hd.bom = IMG_BOM;
	hd.version = IMG_VERSION;
	hd.key = key;
	hd.size = size;
	hd.n_entries = (uint32_t)idx->faq->n_entries;
	hd.n_terms = (uint32_t)T;
	hd.n_phr = (uint32_t)idx->n_phr;
	hd.n_sorted = (uint32_t)idx->n_sorted;
	hd.n_syn_terms = (uint32_t)idx->n_syn_terms;
	hd.n_rules = (uint32_t)idx->n_rules;
	hd.w_unknown = idx->w_unknown;
	hd.w_ref = idx->w_ref;
	memcpy(img, &hd, sizeof(hd));
	hd.checksum = img_checksum(img, size);
	memcpy(img, &hd, sizeof(hd));
	*len = size;
	return img;
}

void index_image_seal(void *img, size_t len)
{
	struct img_header hd;
	if (len < sizeof(hd))
		return;
	memcpy(&hd, img, sizeof(hd));
	hd.checksum = img_checksum(img, len);
	memcpy(img, &hd, sizeof(hd));
}

int index_mapped(const struct index *idx)
{
	return idx->mapped;
}

/* 1 when a[0..n) never decreases and ends at most at max. */
static int monotone(const uint32_t *a, size_t n, uint32_t max)
{
	for (size_t i = 1; i < n; i++)
		if (a[i] < a[i - 1])
			return 0;
	return !n || (a[0] == 0 && a[n - 1] <= max);
}

/* Checks the arrays against each other; NULL when fine, else what is wrong. */
static const char *img_check(const struct img_header *hd, const unsigned char *img)
{
	size_t T = hd->n_terms;
	const uint32_t *term_off = (const void *)(img + hd->sec[S_TERM_OFF].off);
	const char *term_str = (const char *)img + hd->sec[S_TERM_STR].off;
	size_t str_len = hd->sec[S_TERM_STR].len;
	if (!str_len || term_str[str_len - 1])
		return "term strings not terminated";
	for (size_t t = 0; t < T; t++)
		if (term_off[t] >= str_len)
			return "term offset out of range";
	size_t n_epost = hd->sec[S_EPOST].len / sizeof(struct posting);
	size_t n_ppost = hd->sec[S_PPOST].len / 4;
	const uint32_t *e_start = (const void *)(img + hd->sec[S_E_START].off);
	const uint32_t *p_start = (const void *)(img + hd->sec[S_P_START].off);
	if (!monotone(e_start, T + 2, (uint32_t)n_epost) || e_start[T] != n_epost ||
	    !monotone(p_start, T + 2, (uint32_t)n_ppost) || p_start[T] != n_ppost)
		return "postings out of range";
	const struct posting *ep = (const void *)(img + hd->sec[S_EPOST].off);
	for (size_t i = 0; i < n_epost; i++)
		if (ep[i].entry >= hd->n_entries)
			return "posting names no entry";
	const uint32_t *pp = (const void *)(img + hd->sec[S_PPOST].off);
	for (size_t i = 0; i < n_ppost; i++)
		if (pp[i] >= hd->n_phr)
			return "posting names no phrasing";
	const uint32_t *pe = (const void *)(img + hd->sec[S_PHR_ENTRY].off);
	for (size_t i = 0; i < hd->n_phr; i++)
		if (pe[i] >= hd->n_entries)
			return "phrasing names no entry";
	const uint32_t *so = (const void *)(img + hd->sec[S_SORTED].off);
	for (size_t i = 0; i < hd->n_sorted; i++)
		if (so[i] >= T)
			return "sorted term out of range";
	const uint32_t *rw = (const void *)(img + hd->sec[S_RULES].off);
	size_t nw = hd->sec[S_RULES].len / 4, k = 0;
	for (size_t r = 0; r < hd->n_rules; r++) {
		if (nw - k < 2 || !rw[k] || !rw[k + 1] || rw[k] > nw || rw[k + 1] > nw ||
		    nw - k - 2 < (size_t)rw[k] + rw[k + 1])
			return "synonym rules damaged";
		size_t n = (size_t)rw[k] + rw[k + 1];
		for (size_t j = 0; j < n; j++)
			if (rw[k + 2 + j] >= T || (j == 0 && rw[k + 2] >= hd->n_syn_terms))
				return "synonym rule names no term";
		k += 2 + n;
	}
	if (k != nw)
		return "synonym rules damaged";
	return NULL;
}

struct index *index_from_image(struct faq *faq, const void *data, size_t len, uint64_t key,
			       void (*release)(void *arg), void *release_arg, const char **why)
{
	const unsigned char *img = data;
	struct img_header hd;
	memset(&hd, 0, sizeof(hd));
	const char *bad = NULL;
	size_t n_phr = 0;
	for (size_t e = 0; e < faq->n_entries; e++)
		n_phr += faq->entries[e].n_questions;
	if (len < sizeof(hd) || ((uintptr_t)data & 7))
		bad = "too short";
	else {
		memcpy(&hd, img, sizeof(hd));
		if (memcmp(hd.magic, IMG_MAGIC, 8) || hd.bom != IMG_BOM)
			bad = "not an index image";
		else if (hd.version != IMG_VERSION)
			bad = "another version";
		else if (hd.key != key)
			bad = "for another FAQ";
		else if (hd.size != len)
			bad = "truncated";
		else if (hd.checksum != img_checksum(img, len))
			bad = "checksum mismatch";
		else if (hd.n_entries != faq->n_entries || hd.n_phr != n_phr ||
			 hd.n_sorted > hd.n_terms || hd.n_syn_terms > hd.n_terms ||
			 hd.n_terms >= UINT32_MAX - 2)
			bad = "counts do not match the FAQ";
	}
	size_t T = bad ? 0 : hd.n_terms;
	const size_t want[N_SEC] = {
		0, T * 4, T * 4, T * 4, (T + 2) * 4, 0, (T + 2) * 4, 0, (size_t)hd.n_phr * 4,
		(size_t)hd.n_phr * 4, (size_t)hd.n_syn_terms + 1, (size_t)hd.n_sorted * 4, 0, 0, 0,
		0, 0,
	};
	const size_t unit[N_SEC] = { 1, 4, 4, 4, 4, sizeof(struct posting), 4, 4, 4, 4, 1, 4, 4, 1, 4, 4, 8 };
	for (int i = 0; !bad && i < N_SEC; i++) {
		if (hd.sec[i].off < sizeof(hd) || hd.sec[i].off % 8 || hd.sec[i].off > len ||
		    hd.sec[i].len > len - hd.sec[i].off || hd.sec[i].len % unit[i] ||
		    (want[i] && hd.sec[i].len != want[i]))
			bad = "section out of range";
	}
	if (!bad && (hd.sec[S_TYPO_OFF].len != hd.sec[S_TYPO_ID].len))
		bad = "typo tables do not match";
	if (!bad)
		bad = img_check(&hd, img);
	struct typo *typo = NULL;
	if (!bad) {
		struct typo_parts tp;
		tp.str = (const char *)img + hd.sec[S_TYPO_STR].off;
		tp.str_len = hd.sec[S_TYPO_STR].len;
		tp.off = (const void *)(img + hd.sec[S_TYPO_OFF].off);
		tp.id = (const void *)(img + hd.sec[S_TYPO_ID].off);
		tp.n = hd.sec[S_TYPO_OFF].len / 4;
		tp.slots = (const void *)(img + hd.sec[S_TYPO_SLOTS].off);
		tp.n_slots = hd.sec[S_TYPO_SLOTS].len / 8;
		typo = typo_from_parts(&tp, hd.n_terms);
		if (!typo)
			bad = "typo tables damaged";
	}
	struct text *t = bad ? NULL : text_new(faq->language);
	if (!bad && !t)
		bad = "no stemmer for the language";
	if (bad) {
		typo_free(typo);
		if (why)
			*why = bad;
		return NULL;
	}
#define SEC(i) ((void *)(img + hd.sec[i].off)) /* read-only: the index never writes them */
	struct index *idx = xcalloc(1, sizeof(*idx));
	idx->mapped = 1;
	idx->faq = faq;
	idx->text = t;
	idx->term_str.buf = SEC(S_TERM_STR);
	idx->term_str.len = hd.sec[S_TERM_STR].len - 1;
	idx->term_off = SEC(S_TERM_OFF);
	idx->n_terms = T;
	idx->df = SEC(S_DF);
	idx->w = SEC(S_W);
	idx->w_unknown = hd.w_unknown;
	idx->w_ref = hd.w_ref;
	idx->e_start = SEC(S_E_START);
	idx->epost = SEC(S_EPOST);
	idx->p_start = SEC(S_P_START);
	idx->ppost = SEC(S_PPOST);
	idx->phr_entry = SEC(S_PHR_ENTRY);
	idx->phr_w = SEC(S_PHR_W);
	idx->n_phr = hd.n_phr;
	idx->syn_first = SEC(S_SYN_FIRST);
	idx->n_syn_terms = hd.n_syn_terms;
	idx->sorted = SEC(S_SORTED);
	idx->n_sorted = hd.n_sorted;
	idx->typo = typo;
	uint32_t *rw = SEC(S_RULES);
#undef SEC
	idx->n_rules = hd.n_rules;
	idx->rules = xcalloc(hd.n_rules + 1, sizeof(*idx->rules));
	for (size_t r = 0; r < hd.n_rules; r++) {
		struct syn_rule *ru = &idx->rules[r];
		ru->nfrom = *rw++;
		ru->nto = *rw++;
		ru->from = rw;
		rw += ru->nfrom;
		ru->to = rw;
		rw += ru->nto;
	}
	idx->vocab = strmap_new(T);
	for (size_t i = 0; i < T; i++) {
		const char *s = term_string(idx, (uint32_t)i);
		strmap_put(idx->vocab, s, strlen(s), (uint32_t)i, NULL);
	}
	idx->ids = strmap_new(faq->n_entries);
	for (uint32_t e = 0; e < faq->n_entries; e++)
		strmap_put(idx->ids, faq->entries[e].id, strlen(faq->entries[e].id), e, NULL);
	termlist_init(&idx->tl);
	termlist_init(&idx->ntl);
	alloc_scratch(idx);
	idx->release = release;
	idx->release_arg = release_arg;
	return idx;
}
