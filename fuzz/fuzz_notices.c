/* fuzz_notices.c - libFuzzer harness for mapping/notices.c: the isComposing and IMDN parsers,
 * Disposition-Notification values and the correlation ids; whatever parses survives a rebuild. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies: AddressSanitizer sees any read past the end */
	char *buf = malloc(size ? size : 1), *str = malloc(size + 1);
	char mid[MAP_IMDN_ID_MAX + 1], dt[48], back[400], res[400], id[400], text[128];
	struct map_imdn imdn;
	unsigned refresh, disp;
	const char *state;

	must(buf && str);
	memcpy(buf, data, size);
	memcpy(str, data, size);
	str[size] = '\0';

	state = map_iscomposing_parse(buf, size, &refresh);
	if (state) {
		char *doc = map_iscomposing_build(state, refresh);

		must(strcmp(state, "active") == 0 || strcmp(state, "idle") == 0);
		must(map_composing_to_chatstate(state) != NULL);
		must(map_iscomposing_parse(doc, strlen(doc), NULL) == state);
		free(doc);
	}
	if (map_imdn_parse(buf, size, &imdn) == 0) {
		char *doc;
		struct map_imdn again;

		must(imdn.kind != MAP_IMDN_NONE && imdn.message_id[0]);
		doc = map_imdn_build(imdn.kind, imdn.status, imdn.message_id, imdn.datetime,
				     "sip:alice@xmpp.example");
		/* a status that is not a plain name would not build a well-formed document */
		if (strspn(imdn.status, "abcdefghijklmnopqrstuvwxyz-") == strlen(imdn.status) &&
		    imdn.status[0]) {
			must(map_imdn_parse(doc, strlen(doc), &again) == 0);
			must(again.kind == imdn.kind && strcmp(again.status, imdn.status) == 0 &&
			     strcmp(again.message_id, imdn.message_id) == 0);
		}
		free(doc);
		(void)map_imdn_rule(imdn.kind, imdn.status);
	}
	disp = map_imdn_dispositions(buf, size);
	must(disp <= 0xf);
	map_imdn_dispositions_text(disp, text, sizeof(text));
	must(map_imdn_dispositions(text, strlen(text)) == disp);

	if (map_imdn_from_stanza_id(str, &disp, mid, sizeof(mid), dt, sizeof(dt)) == 0) {
		must(disp <= 0xf && strlen(mid) <= MAP_IMDN_ID_MAX);
		if (map_imdn_stanza_id("b", disp, mid, dt, id, sizeof(id)) == 0) {
			char mid2[MAP_IMDN_ID_MAX + 1], dt2[48];
			unsigned disp2;

			must(map_imdn_from_stanza_id(id, &disp2, mid2, sizeof(mid2), dt2,
						     sizeof(dt2)) == 0);
			must(disp2 == disp && strcmp(mid2, mid) == 0 && strcmp(dt2, dt) == 0);
		}
	}
	if (map_imdn_stanza_of(str, back, sizeof(back), res, sizeof(res)) == 0 &&
	    map_imdn_message_id(back, res, mid, sizeof(mid)) == 0) {
		char back2[400], res2[400];

		must(map_imdn_stanza_of(mid, back2, sizeof(back2), res2, sizeof(res2)) == 0 &&
		     strcmp(back, back2) == 0);
		/* the resource comes back, unless it did not fit and was left out */
		must(strcmp(res, res2) == 0 || res2[0] == '\0');
	}
	free(buf);
	free(str);
	return 0;
}
