/*
 * faqindex.h - an FAQ file to a ready index, once for every caller (the
 * daemon at start and on reload, `faqbot check`, `ask`, `console`,
 * `report`), and the checks `faqbot check` runs on it beyond parsing.
 *
 * Pure apart from reading the file: problems go into the caller's
 * faq_diags (faq.h), never to a stream.
 *
 * Ownership: faqindex_load returns an index the caller frees with
 * index_free (it owns its FAQ), or NULL.
 */
#ifndef FAQBOT_FAQINDEX_H
#define FAQBOT_FAQINDEX_H

#include "faq.h"
#include "index.h"

/* Loads path and builds its index; NULL when the file is not a valid FAQ
 * (every problem is in d, which also gets the warnings). */
struct index *faqindex_load(const char *path, struct faq_diags *d);
/* The checks of `faqbot check` on a loaded FAQ, as warnings in d: markup
 * problems in answers and the fallback text, phrasings that land on
 * another entry or get the fallback (the self-test), synonyms with no
 * searchable word. */
void faqindex_check(struct index *idx, struct faq_diags *d);

#endif
