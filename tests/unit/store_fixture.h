/* Shared fixture of the unit tests that need a state database: setup opens
 * a store in a fresh temporary folder (its path in `dir`), teardown closes
 * it and removes the folder.  One copy for test_store.c and test_sender.c. */
#ifndef FAQBOT_TEST_STORE_FIXTURE_H
#define FAQBOT_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "store.h"

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/faqbot-unit-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char err[512];
	*state = store_open(dir, err, sizeof(err));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	store_close(*state);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
