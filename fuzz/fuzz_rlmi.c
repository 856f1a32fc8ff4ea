/* fuzz_rlmi.c - libFuzzer harness for mapping/rlmi.c: an RLMI document parsed, rebuilt and
 * parsed again (same lists), and the same bytes split as a multipart/related body (every part
 * inside the body). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/rlmi.h"

#define MAX_LEN 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

static void split(const char *ct, const char *body, size_t size)
{
	struct rlmi_part *parts = NULL;
	size_t root = 0;
	char err[256];
	int n = rlmi_multipart_split(ct, body, size, 32, &parts, &root, err, sizeof(err));

	if (n < 0) {
		must(parts == NULL && err[0]);
		return;
	}
	must(n > 0 && root < (size_t)n);
	for (int i = 0; i < n; i++) {
		must(parts[i].body >= body && parts[i].body + parts[i].body_len <= body + size);
		must(!parts[i].content_id || (parts[i].content_id >= body &&
					      parts[i].content_id + parts[i].cid_len <= body + size));
	}
	free(parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	struct rlmi_list *l = NULL, *back = NULL;
	char err[256], *built;
	size_t len;

	split("multipart/related;type=\"application/rlmi+xml\";start=\"<a@b>\";boundary=b", doc,
	      size);
	split("multipart/related; boundary=\"--\"", doc, size);
	if (rlmi_parse(doc, size, MAX_LEN, 64, &l, err, sizeof(err)) != 0) {
		must(l == NULL);
		return 0;
	}
	built = rlmi_build(l, &len);
	must(rlmi_parse(built, len, 4 * MAX_LEN, 64, &back, err, sizeof(err)) == 0);
	must(back->nresources == l->nresources && back->version == l->version &&
	     back->full_state == l->full_state && !strcmp(back->uri, l->uri));
	for (size_t i = 0; i < l->nresources; i++)
		must(back->resources[i].ninstances == l->resources[i].ninstances);
	rlmi_list_free(back);
	rlmi_list_free(l);
	free(built);
	return 0;
}
