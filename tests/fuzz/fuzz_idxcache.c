/* Fuzz target: the index cache's checks (index_from_image).  The input is
 * damage to a real image, the shipped FAQ's: its first 4 bytes cut the
 * image to a length (when smaller), then each 5 bytes XOR one byte at an
 * offset.  The checksum is then recomputed (index_image_seal), so the
 * damage reaches the checks behind it: an image they accept must answer
 * questions without reading out of bounds (ASan) or looping. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *img;
	static size_t len;
	static uint64_t key = 1;
	static uint64_t *buf;
	struct index *base = fuzz_index();
	if (!img) {
		img = index_image(base, key, &len);
		buf = malloc(len + 8);
		if (!buf)
			abort();
	}
	size_t n = len;
	if (size >= 4) {
		uint32_t cut;
		memcpy(&cut, data, 4);
		if (cut < len)
			n = cut;
		data += 4;
		size -= 4;
	}
	memcpy(buf, img, n);
	unsigned char *b = (unsigned char *)buf;
	for (; size >= 5 && n; data += 5, size -= 5) {
		uint32_t off;
		memcpy(&off, data, 4);
		b[off % n] ^= data[4];
	}
	index_image_seal(buf, n);
	struct faq *f = faq_copy(index_faq(base));
	struct index *idx = index_from_image(f, buf, n, key, NULL, NULL, NULL);
	if (!idx) {
		faq_free(f);
		return 0;
	}
	static const char *const qs[] = { "combien coûte la souscription", "souscirption PLH",
					  "comment faire un programme local de l'habitat" };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct match m;
		match_question(idx, qs[i], strlen(qs[i]), -1, &m);
	}
	index_free(idx);
	return 0;
}
