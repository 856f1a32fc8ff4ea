/* fuzz_inflate.c - libFuzzer harness for the zlib decoder (gateway/inflate.c): any input is
 * refused or decoded within the output bound, and decoding is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies: AddressSanitizer sees any access past either end */
	uint8_t *in = malloc(size ? size : 1), *out, *again;
	size_t cap = size ? (data[0] | (size_t)(size > 1 ? data[size - 1] : 0) << 8) % 70000 : 0;
	size_t n = 0, m = 0;
	int r;

	must(in != NULL);
	memcpy(in, data, size);
	out = malloc(cap ? cap : 1);
	again = malloc(cap ? cap : 1);
	must(out && again);
	r = gw_inflate_zlib(in, size, out, cap, &n);
	must(r == 0 || r == -1);
	if (r == 0) {
		must(n <= cap);
		must(gw_inflate_zlib(in, size, again, cap, &m) == 0 && m == n &&
		     memcmp(out, again, n) == 0);
		/* a bound one byte short of the output is refused */
		if (n)
			must(gw_inflate_zlib(in, size, again, n - 1, &m) == -1);
	}
	free(in);
	free(out);
	free(again);
	return 0;
}
