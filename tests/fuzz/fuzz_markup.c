/* Fuzz target: the answer markup (render, check, split, back to plain) on
 * arbitrary bytes.  The first byte picks the split limit, so short limits
 * (cuts everywhere) are tried as often as long ones. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "markup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t limit = 1 + data[0];
	const char *src = (const char *)data + 1;
	size_t len = size - 1;
	struct markup_problem *p;
	size_t np = markup_check(src, len, &p);
	markup_problems_free(p, np);
	static const enum markup_target targets[] = { MARKUP_PLAIN, MARKUP_TELEGRAM, MARKUP_MATRIX };
	static const enum markup_unit units[] = { MARKUP_BYTES, MARKUP_UTF16, MARKUP_UTF16_TEXT };
	for (size_t t = 0; t < 3; t++) {
		struct strbuf out = STRBUF_INIT;
		markup_render(src, len, targets[t], &out);
		size_t n;
		char **parts = markup_split(out.buf, out.len, limit, units[t], &n);
		for (size_t i = 0; i < n; i++) {
			/* a part's size is bounded unless one tag alone is longer */
			if (units[t] == MARKUP_BYTES && strlen(parts[i]) > limit && limit > 64 &&
			    !strchr(parts[i], '<'))
				abort();
			free(markup_html_to_plain(parts[i], strlen(parts[i])));
		}
		markup_parts_free(parts, n);
		strbuf_release(&out);
	}
	return 0;
}
