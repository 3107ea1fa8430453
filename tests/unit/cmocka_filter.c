/*
 * cmocka_filter.c - linked into every unit test binary: runs only the tests
 * whose name matches CMOCKA_TEST_FILTER (cmocka's own pattern, with * and ?),
 * e.g. CMOCKA_TEST_FILTER='*outbox*' ./build/tests/test_store.  cmocka 1.1
 * has the filter but reads no variable for it, and this keeps the test
 * files' main() untouched.  Runs before main() (a GCC/Clang constructor).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

__attribute__((constructor)) static void cmocka_filter_from_env(void)
{
	const char *pattern = getenv("CMOCKA_TEST_FILTER");
	if (pattern && *pattern)
		cmocka_set_test_filter(pattern);
}
