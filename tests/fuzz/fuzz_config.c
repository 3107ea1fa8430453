/* Fuzz target: arbitrary bytes as a configuration file. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	if (!*path) {
		snprintf(path, sizeof(path), "/tmp/faqbot-fuzz-conf-%ld", (long)getpid());
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct config c;
	struct strbuf e = STRBUF_INIT, out = STRBUF_INIT;
	config_load(&c, path, &e);
	config_print(&c, &out);
	config_release(&c);
	strbuf_release(&e);
	strbuf_release(&out);
	return 0;
}
