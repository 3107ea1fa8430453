/* Shared set-up of the fuzz targets: the shipped FAQ, indexed once. */
#ifndef FAQBOT_FUZZ_H
#define FAQBOT_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#include "bot.h"
#include "faq.h"
#include "index.h"
#include "lexfile.h"
#include "log.h"
#include "store.h"

static inline struct index *fuzz_index(void)
{
	static struct index *idx;
	if (!idx) {
		lexfile_load("build"); /* the lexicon and thesaurus, when built */
		struct faq_diags d;
		faq_diags_init(&d);
		const char *path = getenv("FUZZ_FAQ") ? getenv("FUZZ_FAQ") : "faq/faq.json";
		struct faq *f = faq_load_file(path, &d);
		idx = f ? index_build(f, &d) : NULL;
		faq_diags_release(&d);
		if (!idx) {
			fprintf(stderr, "fuzz: cannot load %s (run from the repository root)\n", path);
			abort();
		}
	}
	return idx;
}

/* A store in a fresh temporary directory and a bot on the shipped FAQ,
 * made once per process (the transport targets feed them every input). */
static inline void fuzz_state(const char *tag, struct store **st, struct bot **b)
{
	static struct store *store;
	static struct bot *bot;
	if (!store) {
		char dir[64], err[512];
		snprintf(dir, sizeof(dir), "/tmp/faqbot-fuzz-%s-XXXXXX", tag);
		log_set_level(LOG_ERROR + 1);
		store = mkdtemp(dir) ? store_open(dir, err, sizeof(err)) : NULL;
		if (!store) {
			fprintf(stderr, "fuzz: cannot open a state directory\n");
			abort();
		}
		bot = bot_new(fuzz_index(), NULL);
	}
	*st = store;
	*b = bot;
}

#endif
