/* test_admin.c - tests of gateway/admin.c's parts that need no link: who counts as an admin, and
 * what disco shows of the commands to admins and to others.  (The commands themselves, over a
 * real XMPP server: tests/e2e/test_admin.py.) */
#include <stdio.h>
#include <string.h>

#include <strophe.h>

#include "gateway/gw.h"
#include "tests/unit/test.h"

#define NODE "urn:simplegw:admin#"

static const struct {
	const char *from;
	int allowed;
} allowed_cases[] = {
	{ "ops@xmpp.example", 1 },
	{ "ops@xmpp.example/laptop", 1 },
	{ "ops@xmpp.example/a/b", 1 },		/* a resource may hold '/' */
	{ "OPS@Xmpp.Example/laptop", 1 },	/* the server's case folding is not ours to undo */
	{ "oncall@other.example/x", 1 },
	{ "ops@xmpp.example.evil/x", 0 },
	{ "ops@xmpp.exampl", 0 },
	{ "xops@xmpp.example", 0 },
	{ "xmpp.example", 0 },
	{ "carol@xmpp.example/ops@xmpp.example", 0 },
	{ "", 0 },
	{ NULL, 0 },
};

static const char *const commands[] = { "status", "peer-stats", "reload", "end-session" };

static const struct {
	const char *from;
	const char *node;
	int answered;
	const char *type;	/* the identity's, when answered */
} info_cases[] = {
	{ "ops@xmpp.example/x", NODE "status", 1, "command-node" },
	{ "ops@xmpp.example/x", NODE "peer-stats", 1, "command-node" },
	{ "ops@xmpp.example/x", NODE "reload", 1, "command-node" },
	{ "ops@xmpp.example/x", NODE "end-session", 1, "command-node" },
	{ "ops@xmpp.example/x", NS_COMMANDS, 1, "command-list" },
	{ "carol@xmpp.example/x", NS_COMMANDS, 1, "command-list" },	/* empty for her */
	{ "carol@xmpp.example/x", NODE "status", 0, NULL },
	{ "carol@xmpp.example/x", NODE "nothing", 0, NULL },
	{ "ops@xmpp.example/x", NODE "nothing", 0, NULL },
	{ "ops@xmpp.example/x", NODE, 0, NULL },
	{ "ops@xmpp.example/x", NODE "statusx", 0, NULL },
	{ "ops@xmpp.example/x", "status", 0, NULL },
	{ "ops@xmpp.example/x", "http://jabber.org/protocol/admin#status", 0, NULL },
	{ NULL, NODE "status", 0, NULL },
};

static xmpp_stanza_t *query_new(xmpp_ctx_t *ctx, const char *ns)
{
	xmpp_stanza_t *q = xmpp_stanza_new(ctx);

	xmpp_stanza_set_name(q, "query");
	xmpp_stanza_set_ns(q, ns);
	return q;
}

static size_t children(xmpp_stanza_t *q, const char *name)
{
	size_t n = 0;

	for (xmpp_stanza_t *c = xmpp_stanza_get_children(q); c; c = xmpp_stanza_get_next(c))
		n += strcmp(xmpp_stanza_get_name(c), name) == 0;
	return n;
}

static void test_items(struct gw *gw)
{
	xmpp_stanza_t *q = query_new(gw->xctx, "http://jabber.org/protocol/disco#items");
	size_t i = 0;

	admin_disco_items(gw, "ops@xmpp.example/x", "sip.example", q);
	CHECK_INT(children(q, "item"), 4, "the four commands for an admin");
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(q); c && i < 4;
	     c = xmpp_stanza_get_next(c), i++) {
		char node[64];

		snprintf(node, sizeof(node), NODE "%s", commands[i]);
		CHECK_STR(xmpp_stanza_get_attribute(c, "node"), node, "item %zu", i);
		CHECK_STR(xmpp_stanza_get_attribute(c, "jid"), "sip.example", "item %zu's jid", i);
		CHECK(xmpp_stanza_get_attribute(c, "name") != NULL, "item %zu has a name", i);
	}
	xmpp_stanza_release(q);
	q = query_new(gw->xctx, "http://jabber.org/protocol/disco#items");
	admin_disco_items(gw, "carol@xmpp.example/x", "sip.example", q);
	admin_disco_items(gw, NULL, "sip.example", q);
	CHECK_INT(children(q, "item"), 0, "none for others");
	xmpp_stanza_release(q);
}

static void test_info(struct gw *gw)
{
	for (size_t i = 0; i < NELEM(info_cases); i++) {
		xmpp_stanza_t *q = query_new(gw->xctx, "http://jabber.org/protocol/disco#info"), *id;
		int got = admin_disco_info(gw, info_cases[i].from, info_cases[i].node, q);

		CHECK_INT(got, info_cases[i].answered, "%s asks %s", info_cases[i].from ?
			  info_cases[i].from : "(nobody)", info_cases[i].node);
		id = xmpp_stanza_get_child_by_name(q, "identity");
		if (!got) {
			CHECK(xmpp_stanza_get_children(q) == NULL, "%s: nothing added",
			      info_cases[i].node);
		} else if (id) {
			CHECK_STR(xmpp_stanza_get_attribute(id, "category"), "automation", "%s",
				  info_cases[i].node);
			CHECK_STR(xmpp_stanza_get_attribute(id, "type"), info_cases[i].type, "%s",
				  info_cases[i].node);
		} else {
			CHECK(0, "%s: an identity", info_cases[i].node);
		}
		xmpp_stanza_release(q);
	}
}

int main(void)
{
	char *admins[] = { "ops@xmpp.example", "oncall@other.example" };
	struct conf conf;
	struct gw gw;

	memset(&conf, 0, sizeof(conf));
	conf.admins = admins;
	conf.nadmins = NELEM(admins);
	memset(&gw, 0, sizeof(gw));
	gw.conf = &conf;
	xmpp_initialize();
	gw.xctx = xmpp_ctx_new(NULL, NULL);
	for (size_t i = 0; i < NELEM(allowed_cases); i++)
		CHECK_INT(admin_allowed(&gw, allowed_cases[i].from), allowed_cases[i].allowed,
			  "%s", allowed_cases[i].from ? allowed_cases[i].from : "(no from)");
	conf.nadmins = 0;
	CHECK_INT(admin_allowed(&gw, "ops@xmpp.example/x"), 0, "without <admin>, nobody");
	conf.nadmins = NELEM(admins);
	test_items(&gw);
	test_info(&gw);
	admin_free(gw.admin);
	xmpp_ctx_free(gw.xctx);
	xmpp_shutdown();
	TEST_DONE();
}
