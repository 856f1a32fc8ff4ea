/* fuzz_conf.c - libFuzzer harness for the gateway file parser (conf_parse, then conf_free). */
#include <stddef.h>
#include <stdint.h>

#include "../conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Diagnostics are the parser's normal output here: only crashes, leaks and UB are findings. */
static void report_that_ignores(void *arg, const char *file, unsigned line, const char *msg)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* check_perms 0: a secret-file named by the input may be any readable regular file */
	struct conf *conf = conf_parse("fuzz.xml", (const char *)data, size, 0,
				       report_that_ignores, NULL);

	conf_free(conf);
	return 0;
}
