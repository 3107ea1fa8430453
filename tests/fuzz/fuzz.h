/* Shared set-up of the fuzz targets: the shipped FAQ, indexed once. */
#ifndef FAQBOT_FUZZ_H
#define FAQBOT_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#include "faq.h"
#include "index.h"

static struct index *fuzz_index(void)
{
	static struct index *idx;
	if (!idx) {
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

#endif
