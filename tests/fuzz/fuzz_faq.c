/* Fuzz target: the FAQ loader and index build on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "faq.h"
#include "index.h"
#include "lexfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int loaded;
	if (!loaded) { /* index_build then runs the lexicon and thesaurus too */
		lexfile_load("build");
		loaded = 1;
	}
	struct faq_diags d;
	faq_diags_init(&d);
	struct faq *f = faq_parse((const char *)data, size, "fuzz.json", &d);
	if (f)
		index_free(index_build(f, &d));
	faq_diags_release(&d);
	return 0;
}
