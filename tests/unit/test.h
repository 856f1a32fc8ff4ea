/* test.h - the few checks the table-driven unit tests need; a failed check names its table row. */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <stdio.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define TEST_FAIL(...) \
	do { \
		test_failures++; \
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} while (0)

/* what: a printf-style description of the case, shown on failure */
#define CHECK(cond, ...) \
	do { \
		test_checks++; \
		if (!(cond)) { \
			TEST_FAIL(__VA_ARGS__); \
			fprintf(stderr, "    failed: %s\n", #cond); \
		} \
	} while (0)

#define CHECK_INT(got, want, ...) \
	do { \
		long long g_ = (long long)(got), w_ = (long long)(want); \
		test_checks++; \
		if (g_ != w_) { \
			TEST_FAIL(__VA_ARGS__); \
			fprintf(stderr, "    got %lld, want %lld\n", g_, w_); \
		} \
	} while (0)

#define CHECK_STR(got, want, ...) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		test_checks++; \
		if ((g_ == NULL) != (w_ == NULL) || (g_ && strcmp(g_, w_) != 0)) { \
			TEST_FAIL(__VA_ARGS__); \
			fprintf(stderr, "    got  \"%s\"\n    want \"%s\"\n", g_ ? g_ : "(null)", \
				w_ ? w_ : "(null)"); \
		} \
	} while (0)

#define TEST_DONE() \
	do { \
		fprintf(stderr, "%s: %d checks, %d failed\n", __FILE__, test_checks, test_failures); \
		return test_failures ? 1 : 0; \
	} while (0)

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#endif
