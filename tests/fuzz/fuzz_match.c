/* Fuzz target: arbitrary bytes as a question (text pipeline, typo look-up,
 * ranking, decision, explanation, bot reply). */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>

#include "bot.h"
#include "fuzz.h"
#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct index *idx = fuzz_index();
	struct match m;
	match_question(idx, (const char *)data, size, -1, &m);
	if (m.confidence < 0 || m.confidence > 1)
		__builtin_trap();
	struct strbuf sb = STRBUF_INIT;
	match_explain(idx, (const char *)data, size, &m, &sb);
	index_terms(idx, (const char *)data, size, &sb);
	strbuf_release(&sb);
	return 0;
}
