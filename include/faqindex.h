/*
 * faqindex.h - an FAQ file to a ready index, once for every caller (the
 * daemon at start and on reload, `faqbot check`, `ask`, `console`,
 * `report`), and the checks `faqbot check` runs on it beyond parsing.
 *
 * Pure apart from reading the file and the index cache: problems with the
 * FAQ go into the caller's faq_diags (faq.h), never to a stream; the
 * cache's own problems are logged (log.h), never fatal.
 *
 * The index cache (off until faqindex_set_cache_dir; the daemon turns it
 * on with its state dir): the built index is saved as
 * <dir>/index-<key>.cache and mapped, not rebuilt, when the same FAQ is
 * loaded again (faqindex.c says how it is keyed and checked); the index
 * with learned phrasings likewise, as learned-<key>.cache.
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
/* Builds the index of an FAQ already parsed (taking ownership of f, as
 * index_build does), through the cache when it is on: mapped from
 * <dir>/<role>-<key>.cache when that holds f's index, else built and
 * saved there (the role's older files removed).  NULL as index_build. */
struct index *faqindex_build(struct faq *f, const char *role, struct faq_diags *d);
/* Turns the index cache on in dir (copied), or off with NULL. */
void faqindex_set_cache_dir(const char *dir);
/* The checks of `faqbot check` on a loaded FAQ, as warnings in d: markup
 * problems in answers and the fallback text, phrasings that land on
 * another entry or get the fallback (the self-test), synonyms with no
 * searchable word. */
void faqindex_check(struct index *idx, struct faq_diags *d);

#endif
