/* test_iq.c - tests of gateway/iq.c's pure parts: the XEP-0115 verification string (the XEP's
 * own examples), the caps a SIP user's presence carries per chat mode, and the XEP-0100 prompt
 * turning what a user types into the JID to write to, in both addressing modes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "gateway/gw.h"
#include "mapping/addr.h"
#include "tests/unit/test.h"

/* ---- XEP-0115 5.1 */

#define F_CAPS "http://jabber.org/protocol/caps"
#define F_INFO "http://jabber.org/protocol/disco#info"
#define F_ITEMS "http://jabber.org/protocol/disco#items"
#define F_MUC "http://jabber.org/protocol/muc"

static const struct {
	const char *what;
	struct iq_identity ids[3];
	size_t nids;
	const char *features[6];
	size_t nfeatures;
	const char *ver;
} ver_cases[] = {
	{ "XEP-0115 5.2, the simple example",
	  { { "client", "pc", NULL, "Exodus 0.9.1" } }, 1,
	  { F_CAPS, F_INFO, F_ITEMS, F_MUC }, 4, "QgayPKawpkPSDYmwT/WM94uAlu0=" },
	{ "the same, features in another order",
	  { { "client", "pc", NULL, "Exodus 0.9.1" } }, 1,
	  { F_MUC, F_ITEMS, F_CAPS, F_INFO }, 4, "QgayPKawpkPSDYmwT/WM94uAlu0=" },
	{ "XEP-0115 5.3's identities (without its form): sorted by xml:lang, el before en",
	  { { "client", "pc", "en", "Psi 0.11" }, { "client", "pc", "el", "Ψ 0.11" } }, 2,
	  { F_INFO, F_CAPS, F_MUC, F_ITEMS }, 4, "2ZC2Fe8xb+Ln321QG0/AaqNEfBU=" },
	{ "identities by category, not by the formatted string ('a' before 'a-b')",
	  { { "a-b", "x", NULL, NULL }, { "a", "x", NULL, NULL } }, 2,
	  { "f" }, 1, "grM6b2eKFkkUethdmVFbAp6daFQ=" },
};

static void test_caps_ver(void)
{
	for (size_t i = 0; i < NELEM(ver_cases); i++) {
		char buf[29];
		int n = iq_caps_ver(ver_cases[i].ids, ver_cases[i].nids, ver_cases[i].features,
				    ver_cases[i].nfeatures, buf, sizeof(buf));

		CHECK_INT(n, 28, "%s: length", ver_cases[i].what);
		CHECK_STR(n == 28 ? buf : NULL, ver_cases[i].ver, "%s", ver_cases[i].what);
	}
	{
		char small[28];

		CHECK_INT(iq_caps_ver(ver_cases[0].ids, 1, ver_cases[0].features, 4, small,
				      sizeof(small)), -1, "a buffer without room for the NUL");
	}
}

/* ---- a gateway file with a domain-mode peer and two escaped-mode peers sharing a component */

#define GW_FILE \
	"<gateway xmlns=\"urn:simplegw:config:1\">\n" \
	"<xmpp domain=\"xmpp.example\" server=\"127.0.0.1\" secret=\"s3cret\"/>\n" \
	"<sip><listen address=\"127.0.0.1\"/></sip>\n" \
	"<peer name=\"sipnet\" domain=\"sip.example\"><route address=\"127.0.0.1\"/>" \
	"<trust address=\"127.0.0.1\"/></peer>\n" \
	"<peer name=\"othernet\" domain=\"sip2.example\" addressing=\"escaped\" " \
	"component=\"sip-gw.xmpp.example\" sessions=\"yes\"><route address=\"127.0.0.1\" " \
	"port=\"5070\"/><trust address=\"127.0.0.2\"/></peer>\n" \
	"<peer name=\"thirdnet\" domain=\"sip3.example\" addressing=\"escaped\" " \
	"component=\"sip-gw.xmpp.example\"><route address=\"127.0.0.1\" port=\"5090\"/>" \
	"<trust address=\"127.0.0.3\"/></peer>\n" \
	"</gateway>\n"

static void report(void *arg, const char *file, unsigned line, const char *msg)
{
	fprintf(stderr, "%s:%u: %s\n", file, line, msg);
}

static struct conf *test_conf(void)
{
	struct conf *c = conf_parse("gw.xml", GW_FILE, strlen(GW_FILE), 0, report, NULL);

	CHECK(c != NULL && c->npeers == 3, "the test's gateway file parses");
	return c;
}

/* The <c/> of a SIP user's presence: a pager-mode peer's users have chat markers, a session-mode
 * peer's do not (session.c carries chat states and receipts only).  The vers pin the feature
 * set: client/pc//simplegw (SIP)<caps<chatstates<disco#info<[chat-markers:0<]receipts<. */
static const struct {
	const char *peer, *ver;
} caps_cases[] = {
	{ "sipnet", "APiUSEdPmZd4f09rVxyjjXcoGD4=" },
	{ "thirdnet", "APiUSEdPmZd4f09rVxyjjXcoGD4=" },
	{ "othernet", "lzezHOOAMSesVDobGCOtCT7+SrE=" },
};

static const struct conf_peer *peer_named(const struct conf *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->npeers; i++)
		if (strcmp(c->peers[i]->name, name) == 0)
			return c->peers[i];
	return NULL;
}

static void test_caps_presence(struct conf *conf)
{
	struct gw gw;

	memset(&gw, 0, sizeof(gw));
	gw.conf = conf;
	gw.xctx = xmpp_ctx_new(NULL, NULL);
	for (size_t round = 0; round < 2; round++)	/* the second one from what was kept */
		for (size_t i = 0; i < NELEM(caps_cases); i++) {
			xmpp_stanza_t *p = xmpp_presence_new(gw.xctx), *c;

			iq_caps_add(&gw, peer_named(conf, caps_cases[i].peer), p);
			c = xmpp_stanza_get_child_by_name_and_ns(p, "c",
								 "http://jabber.org/protocol/caps");
			CHECK(c != NULL, "%s: a <c/> in the caps namespace", caps_cases[i].peer);
			if (c) {
				CHECK_STR(xmpp_stanza_get_attribute(c, "hash"), "sha-1", "%s: hash",
					  caps_cases[i].peer);
				CHECK_STR(xmpp_stanza_get_attribute(c, "node"), IQ_CAPS_NODE,
					  "%s: node", caps_cases[i].peer);
				CHECK_STR(xmpp_stanza_get_attribute(c, "ver"), caps_cases[i].ver,
					  "%s: ver (round %zu)", caps_cases[i].peer, round);
			}
			xmpp_stanza_release(p);
		}
	xmpp_ctx_free(gw.xctx);
}

/* ---- XEP-0100: typed address -> JID */

static const struct {
	const char *only, *typed, *jid, *condition;
} prompt_cases[] = {
	/* domain mode */
	{ NULL, "sip:bob@sip.example", "bob@sip.example", NULL },
	{ NULL, "bob@sip.example", "bob@sip.example", NULL },
	{ NULL, "  sips:bob@SIP.Example:5061;transport=tls \n", "bob@sip.example", NULL },
	{ NULL, "\"Bob Smith\" <sip:bob@sip.example>", "bob@sip.example", NULL },
	{ NULL, "Bob <bob@sip.example>", "bob@sip.example", NULL },
	{ NULL, "\"a <b>\" < sip:bob@sip.example >", "bob@sip.example", NULL },
	{ NULL, "<sip:bob@sip.example;gr=phone>", "bob@sip.example", NULL },
	{ NULL, "im:bob@sip.example", "bob@sip.example", NULL },
	{ NULL, "sip:john%20smith@sip.example", "john\\20smith@sip.example", NULL },
	{ NULL, "sip:o'hara@sip.example", "o\\27hara@sip.example", NULL },
	{ NULL, "sip:+15551234@sip.example;user=phone", "+15551234@sip.example", NULL },
	{ "sipnet", "bob", "bob@sip.example", NULL },
	/* escaped mode, either peer of the shared component: the one owning the domain */
	{ NULL, "sip:carol@sip2.example", "carol\\40sip2.example@sip-gw.xmpp.example", NULL },
	{ NULL, "dave@sip3.example", "dave\\40sip3.example@sip-gw.xmpp.example", NULL },
	{ NULL, "Dave <sips:dave@sip3.example>", "dave\\40sip3.example@sip-gw.xmpp.example", NULL },
	{ "othernet", "carol", "carol\\40sip2.example@sip-gw.xmpp.example", NULL },
	{ "othernet", "sip:dave@sip3.example", "dave\\40sip3.example@sip-gw.xmpp.example", NULL },
	/* the domain names the peer, wherever the prompt was asked */
	{ "othernet", "bob@sip.example", "bob@sip.example", NULL },
	/* refused */
	{ NULL, "bob", NULL, "not-acceptable" },
	{ NULL, "", NULL, "not-acceptable" },
	{ NULL, " \t ", NULL, "not-acceptable" },
	{ NULL, "<>", NULL, "not-acceptable" },
	{ NULL, "Bob <sip:bob@sip.example", NULL, "not-acceptable" },
	{ NULL, "<sip:bob@sip.example> x", NULL, "not-acceptable" },
	{ NULL, "tel:+15551234", NULL, "not-acceptable" },
	{ NULL, "mailto:bob@sip.example", NULL, "not-acceptable" },
	{ NULL, "sip:sip.example", NULL, "not-acceptable" },
	{ "sipnet", "sip:bob", NULL, "not-acceptable" },
	{ NULL, "sip:BOB@sip.example", NULL, "not-acceptable" },
	{ NULL, "sip:bob%00x@sip.example", NULL, "not-acceptable" },
	{ NULL, "sip:@sip.example", NULL, "not-acceptable" },
	{ NULL, "sip:bob@elsewhere.example", NULL, "item-not-found" },
	{ NULL, "bob@xmpp.example", NULL, "item-not-found" },
	{ NULL, "sip:bob@sip.example.evil", NULL, "item-not-found" },
	{ "othernet", "sip:carol@sip4.example", NULL, "item-not-found" },
};

static void test_prompt(const struct conf *conf)
{
	char longer[2048];

	for (size_t i = 0; i < NELEM(prompt_cases); i++) {
		const char *condition = NULL, *text = NULL;
		char jid[MAP_JID_MAX + 1];
		int r = iq_gateway_jid(conf, peer_named(conf, prompt_cases[i].only),
				       prompt_cases[i].typed, jid, sizeof(jid), &condition, &text);

		CHECK_STR(r == 0 ? jid : NULL, prompt_cases[i].jid, "\"%s\" at %s",
			  prompt_cases[i].typed, prompt_cases[i].only ? prompt_cases[i].only : "-");
		CHECK_STR(r == 0 ? NULL : condition, prompt_cases[i].condition, "\"%s\": condition",
			  prompt_cases[i].typed);
		CHECK(r == 0 || (text && *text), "\"%s\": a text says why", prompt_cases[i].typed);
	}
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memcpy(longer + sizeof(longer) - 1 - strlen("@sip.example"), "@sip.example",
	       strlen("@sip.example"));
	{
		const char *condition = NULL, *text = NULL;
		char jid[MAP_JID_MAX + 1];

		CHECK_INT(iq_gateway_jid(conf, NULL, longer, jid, sizeof(jid), &condition, &text), -1,
			  "an address of 2047 bytes");
		CHECK_STR(condition, "not-acceptable", "an address of 2047 bytes: condition");
	}
}

/* gw_make_id writes what snprintf("%s-%s%llu") wrote, truncated alike, for every buffer size
 * and counters of one to twenty digits. */
static void test_make_id(void)
{
	static const unsigned long long seqs[] = { 0, 8, 9, 99, 12345, 4294967295ULL,
						   18446744073709551614ULL };
	static const char *const kinds[] = { "m", "gq", "cmd", "" };
	struct gw gw;
	char got[64], want[64];

	memset(&gw, 0, sizeof(gw));
	strcpy(gw.id_prefix, "sgw0a1b2c3d");
	for (size_t i = 0; i < NELEM(seqs); i++)
		for (size_t k = 0; k < NELEM(kinds); k++)
			for (size_t len = 0; len <= sizeof(got); len++) {
				memset(got, 'x', sizeof(got));
				memset(want, 'x', sizeof(want));
				gw.id_seq = seqs[i];
				gw_make_id(&gw, kinds[k], got, len);
				CHECK(gw.id_seq == seqs[i] + 1, "the counter moves on");
				snprintf(want, len, "%s-%s%llu", gw.id_prefix, kinds[k], seqs[i] + 1);
				CHECK(memcmp(got, want, sizeof(got)) == 0, "id %llu %s in %zu octets: %.*s",
				      seqs[i] + 1, kinds[k], len, (int)len, got);
			}
}

int main(void)
{
	struct conf *conf;

	xmpp_initialize();
	test_make_id();
	test_caps_ver();
	conf = test_conf();
	if (conf) {
		test_caps_presence(conf);
		test_prompt(conf);
	}
	conf_free(conf);
	xmpp_shutdown();
	TEST_DONE();
}
