/*
 * index.h - inverted index over an FAQ and BM25-style candidate ranking.
 *
 * index_build analyses every entry once (questions, keywords, answer) into
 * stemmed terms, applies the FAQ's synonyms (every phrase of a group is
 * rewritten to the group's first phrase, at index and query time alike, so
 * "programme local de l'habitat" and "PLH" are one term) and the acronyms
 * it finds spelled out in the FAQ itself ("PLU" and "plan local
 * d'urbanisme" each stand for both), and builds:
 *   - postings per term with a BM25F saturation per entry (questions weigh
 *     1, keywords 2, the answer 0.4, lengths normalised);
 *   - postings per term over single phrasings, to measure how much of the
 *     closest phrasing a question covers;
 *   - a typo index: every vocabulary term with one letter deleted, so a
 *     query word one edit away ("souscirption") finds its term in a few
 *     hash look-ups (SymSpell), plus prefix search for truncated words;
 *     both only for words the language's lexicon does not know;
 *   - at query time, thesaurus neighbours (text_neighbours) of a real word
 *     the FAQ lacks, kept when the FAQ uses them, as weak matches.
 *
 * index_rank scores a question against every entry it shares a term with
 * and returns the best candidates with their coverage figures; match.h
 * turns those into a decision.  An index is immutable once built except for
 * internal scratch space, so a reload builds a new index and swaps it in.
 *
 * Ownership: index_build takes ownership of the faq (freed by index_free).
 * An index is not safe for concurrent queries (shared scratch space).
 */
#ifndef FAQBOT_INDEX_H
#define FAQBOT_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "faq.h"
#include "strbuf.h"

#define INDEX_MAX_CAND 8        /* candidates returned by index_rank */
#define INDEX_MAX_QUERY_TERMS 64 /* terms of a question considered */

enum term_match { TERM_UNKNOWN, TERM_EXACT, TERM_TYPO, TERM_PREFIX, TERM_THESAURUS };

struct index_cand {
	uint32_t entry;
	double qcov;  /* weighted share of the question's terms found in the entry */
	double dcov;  /* weighted share of the entry's closest phrasing covered */
	double evidence; /* 1 - exp(-matched weight / weight of one rare word / scale) */
	double score; /* qcov * (a + (1-a) * dcov) * evidence: in [0,1] */
};

struct index_result {
	struct index_cand cand[INDEX_MAX_CAND];
	size_t n_cand;
	size_t n_terms;   /* distinct terms in the question */
	size_t n_unknown; /* of which matched no vocabulary term */
};

struct index;

/* Builds the index; takes ownership of faq.  Returns NULL (with a
 * diagnostic) only when the FAQ's language has no stemmer. */
struct index *index_build(struct faq *faq, struct faq_diags *d);
void index_free(struct index *idx);
/* The FAQ this index was built from (borrowed, lives as long as idx). */
const struct faq *index_faq(const struct index *idx);
/* Entry number for an id, or -1 (hash look-up). */
long index_find(const struct index *idx, const char *id);
size_t index_vocabulary_size(const struct index *idx);

/* Ranks the entries for a question (any bytes; invalid UTF-8 is ignored). */
void index_rank(struct index *idx, const char *q, size_t len, struct index_result *out);

/* Appends a human-readable account of how the question's terms matched
 * (term, weight, how it matched) and, per candidate, which terms it had. */
void index_explain(struct index *idx, const char *q, size_t len,
		   const struct index_result *res, struct strbuf *out);

/* Adds advice for the FAQ's editor to d, as warnings starting "advice:":
 * entries whose question words are all shared with other entries (hard
 * to reach), and rare words an entry's answer uses that no question has. */
void index_advise(struct index *idx, struct faq_diags *d);

/* ==== The compiled image (faqindex.c keeps it in the state dir) ==== */

/* The key an image of f's index is filed under: a hash of what index_build
 * reads of f (language, synonyms, every entry's id, phrasings, keywords and
 * answer), of the language's lexicon and thesaurus tables
 * (text_tables_id), of the image format's version, and of seed (the
 * caller's: the binary's build ids, so a new build never trusts an old
 * image).  Fast: one pass over the FAQ's text. */
uint64_t index_key(const struct faq *f, uint64_t seed);
/* The index as one flat block of *len bytes to save (caller frees). */
void *index_image(const struct index *idx, uint64_t key, size_t *len);
/* An index over an image made by index_image, borrowed (data must stay
 * valid and unchanged until index_free, which then calls
 * release(release_arg)); data must be 8-byte aligned (a mapping is).
 * Checks everything first (header, key, size, checksum, every offset and
 * count against faq); on any problem returns NULL with *why saying what
 * (a short phrase), leaves faq to the caller and does not call release.
 * On success takes ownership of faq, as index_build does.  Queries give
 * the same results as on the index the image was made from. */
struct index *index_from_image(struct faq *faq, const void *data, size_t len, uint64_t key,
			       void (*release)(void *arg), void *release_arg, const char **why);

/* 1 when idx was made by index_from_image. */
int index_mapped(const struct index *idx);
/* Recomputes the checksum of an image of len bytes (>= its header): for
 * the tests and the fuzzer, so that damage behind a valid checksum is
 * shown to be refused by the other checks too. */
void index_image_seal(void *img, size_t len);

/* Appends the question's analysed terms, space-separated (synonyms
 * applied): used to group similar unanswered questions. */
void index_terms(struct index *idx, const char *q, size_t len, struct strbuf *out);

#endif
