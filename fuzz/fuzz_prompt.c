/* fuzz_prompt.c - libFuzzer harness for gateway/iq.c's XEP-0100 prompt: what a user types as a
 * SIP address turned into the JID to write to, against a gateway file with a domain-mode peer
 * and two escaped-mode peers sharing a component.  Invariants: an answer is a bare JID at one
 * of the components, within the buffer; a refusal has a condition and a text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "gateway/gw.h"

#define GW_FILE \
	"<gateway xmlns=\"urn:simplegw:config:1\">\n" \
	"<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s3cret\"/>\n" \
	"<sip><listen address=\"127.0.0.1\"/></sip>\n" \
	"<peer name=\"sipnet\" domain=\"sip.example\"><route address=\"127.0.0.1\"/>" \
	"<trust address=\"127.0.0.1\"/></peer>\n" \
	"<peer name=\"othernet\" domain=\"sip2.example\" addressing=\"escaped\" " \
	"component=\"sip-gw.xmpp.example\"><route address=\"127.0.0.1\" port=\"5070\"/>" \
	"<trust address=\"127.0.0.2\"/></peer>\n" \
	"<peer name=\"thirdnet\" domain=\"sip3.example\" addressing=\"escaped\" " \
	"component=\"sip-gw.xmpp.example\"><route address=\"127.0.0.1\" port=\"5090\"/>" \
	"<trust address=\"127.0.0.3\"/></peer>\n" \
	"</gateway>\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *arg, const char *file, unsigned line, const char *msg)
{
}

static void must(int cond)
{
	if (!cond)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf *conf;
	char *typed, jid[3072];
	const char *condition, *text;

	if (!conf) {
		conf = conf_parse("fuzz.xml", GW_FILE, strlen(GW_FILE), 0, quiet, NULL);
		must(conf != NULL);
	}
	typed = malloc(size + 1);
	if (!typed)
		abort();
	memcpy(typed, data, size);
	typed[size] = '\0';
	/* a bare user name may mean the peer asked (none, or each of the three) */
	for (size_t only = 0; only <= conf->npeers; only++) {
		const struct conf_peer *p = only ? conf->peers[only - 1] : NULL;

		condition = text = NULL;
		if (iq_gateway_jid(conf, p, typed, jid, sizeof(jid), &condition, &text) == 0) {
			const char *at = strrchr(jid, '@');

			must(strlen(jid) < sizeof(jid) && !strchr(jid, '/'));
			must(at && (strcmp(at + 1, "sip.example") == 0 ||
				    strcmp(at + 1, "sip-gw.xmpp.example") == 0));
		} else {
			must(condition && *condition && text && *text);
		}
	}
	free(typed);
	return 0;
}
