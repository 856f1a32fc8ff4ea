/* test_notices.c - tests of typing notices and delivery notifications (mapping/notices.c): the
 * tables, isComposing and IMDN documents (RFC 3994 and RFC 5438 examples, linphone's reports),
 * Disposition-Notification values, and the ids that carry a correlation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping/map.h"
#include "tests/unit/test.h"

/* ---- tables */

static const struct {
	const char *chatstate, *composing;
} chatstate_cases[] = {
	{ "composing", "active" }, { "paused", "idle" }, { "active", "idle" },
	{ "inactive", "idle" }, { "gone", "idle" }, { "typing", NULL }, { NULL, NULL },
};

static const struct {
	const char *composing, *chatstate;
} composing_cases[] = {
	{ "active", "composing" }, { "idle", "paused" }, { "busy", NULL }, { NULL, NULL },
};

static void test_tables(void)
{
	for (size_t i = 0; i < NELEM(chatstate_cases); i++)
		CHECK_STR(map_chatstate_to_composing(chatstate_cases[i].chatstate),
			  chatstate_cases[i].composing, "chat state %s",
			  chatstate_cases[i].chatstate ? chatstate_cases[i].chatstate : "(null)");
	for (size_t i = 0; i < NELEM(composing_cases); i++)
		CHECK_STR(map_composing_to_chatstate(composing_cases[i].composing),
			  composing_cases[i].chatstate, "isComposing state %s",
			  composing_cases[i].composing ? composing_cases[i].composing : "(null)");
}

/* ---- isComposing (RFC 3994) */

#define ISC_NS "urn:ietf:params:xml:ns:im-iscomposing"

static const struct {
	const char *what, *doc, *state;
	unsigned refresh;
} composing_docs[] = {
	{ "RFC 3994 5: active with refresh",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	  "<isComposing xmlns=\"" ISC_NS "\"\n"
	  "  xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
	  "  xsi:schemaLocation=\"urn:ietf:params:xml:ns:im-composing iscomposing.xsd\">\n"
	  "  <state>active</state>\n  <contenttype>text/plain</contenttype>\n"
	  "  <refresh>90</refresh>\n</isComposing>\n", "active", 90 },
	{ "RFC 3994 5: idle with lastactive",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<isComposing xmlns=\"" ISC_NS "\">\n"
	  "  <state>idle</state>\n  <lastactive>2003-01-27T10:43:00Z</lastactive>\n"
	  "  <contenttype>audio</contenttype>\n</isComposing>", "idle", 0 },
	{ "prefixed namespace", "<c:isComposing xmlns:c=\"" ISC_NS "\"><c:state> active </c:state>"
	  "</c:isComposing>", "active", 0 },
	{ "an extension element is skipped",
	  "<isComposing xmlns=\"" ISC_NS "\"><x:y xmlns:x=\"urn:x\"><state>idle</state></x:y>"
	  "<state>active</state></isComposing>", "active", 0 },
	{ "no state", "<isComposing xmlns=\"" ISC_NS "\"><refresh>60</refresh></isComposing>",
	  NULL, 0 },
	{ "unknown state", "<isComposing xmlns=\"" ISC_NS "\"><state>typing</state></isComposing>",
	  NULL, 0 },
	{ "refresh not a number",
	  "<isComposing xmlns=\"" ISC_NS "\"><state>active</state><refresh>x</refresh></isComposing>",
	  NULL, 0 },
	{ "wrong namespace", "<isComposing xmlns=\"urn:other\"><state>active</state></isComposing>",
	  NULL, 0 },
	{ "no namespace", "<isComposing><state>active</state></isComposing>", NULL, 0 },
	{ "a DTD", "<!DOCTYPE isComposing [<!ENTITY a \"active\">]><isComposing xmlns=\"" ISC_NS
	  "\"><state>&a;</state></isComposing>", NULL, 0 },
	{ "not well-formed", "<isComposing xmlns=\"" ISC_NS "\"><state>active</state>", NULL, 0 },
	{ "empty", "", NULL, 0 },
};

static void test_iscomposing(void)
{
	for (size_t i = 0; i < NELEM(composing_docs); i++) {
		unsigned refresh = 12345;
		const char *state = map_iscomposing_parse(composing_docs[i].doc,
							  strlen(composing_docs[i].doc), &refresh);

		CHECK_STR(state, composing_docs[i].state, "%s", composing_docs[i].what);
		if (state)
			CHECK_INT(refresh, composing_docs[i].refresh, "%s: refresh",
				  composing_docs[i].what);
	}
	for (unsigned r = 0; r <= 120; r += 120) {
		char *doc = map_iscomposing_build("active", r);
		unsigned refresh = 1;

		CHECK_STR(map_iscomposing_parse(doc, strlen(doc), &refresh), "active",
			  "built document (refresh %u) reads back", r);
		CHECK_INT(refresh, r, "built document's refresh");
		free(doc);
	}
}

/* ---- IMDN (RFC 5438) */

#define IMDN_NS "urn:ietf:params:xml:ns:imdn"

static const struct {
	const char *what, *doc;
	int ok;
	enum map_imdn_kind kind;
	const char *status, *message_id, *datetime;
} imdn_docs[] = {
	{ "RFC 5438 7.2.1.1: delivered",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<imdn xmlns=\"" IMDN_NS "\">\n"
	  "  <message-id>34jk324j</message-id>\n  <datetime>2008-04-04T12:16:49-05:00</datetime>\n"
	  "  <recipient-uri>im:bob@example.com</recipient-uri>\n"
	  "  <original-recipient-uri>im:bob@example.com</original-recipient-uri>\n"
	  "  <delivery-notification>\n    <status>\n      <delivered/>\n    </status>\n"
	  "  </delivery-notification>\n</imdn>\n",
	  1, MAP_IMDN_DELIVERY, "delivered", "34jk324j", "2008-04-04T12:16:49-05:00" },
	{ "display notification",
	  "<imdn xmlns=\"" IMDN_NS "\"><message-id>m1</message-id><datetime>d</datetime>"
	  "<display-notification><status><displayed/></status></display-notification></imdn>",
	  1, MAP_IMDN_DISPLAY, "displayed", "m1", "d" },
	{ "processing notification",
	  "<imdn xmlns=\"" IMDN_NS "\"><message-id>m2</message-id>"
	  "<processing-notification><status><stored/></status></processing-notification></imdn>",
	  1, MAP_IMDN_PROCESSING, "stored", "m2", "" },
	{ "linphone's report on a CPIM message",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\" ?><imdn xmlns=\"" IMDN_NS "\">"
	  "<message-id>abc123</message-id><datetime>2026-12-04T14:00:00Z</datetime>"
	  "<delivery-notification><status><delivered/></status></delivery-notification></imdn>",
	  1, MAP_IMDN_DELIVERY, "delivered", "abc123", "2026-12-04T14:00:00Z" },
	{ "linphone's failed report with its own reason element (the imdn prefix is linphone's)",
	  "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\" ?><imdn xmlns=\"" IMDN_NS "\" "
	  "xmlns:imdn=\"http://www.linphone.org/xsds/imdn.xsd\"><message-id>9293f5de</message-id>"
	  "<datetime>2026-12-04T14:51:19Z</datetime><delivery-notification><status><failed/>"
	  "<imdn:reason code=\"415\">Incompatible media capabilities</imdn:reason></status>"
	  "</delivery-notification></imdn>",
	  1, MAP_IMDN_DELIVERY, "failed", "9293f5de", "2026-12-04T14:51:19Z" },
	{ "escaped message-id",
	  "<imdn xmlns=\"" IMDN_NS "\"><message-id>a&amp;b&lt;c</message-id>"
	  "<delivery-notification><status><delivered/></status></delivery-notification></imdn>",
	  1, MAP_IMDN_DELIVERY, "delivered", "a&b<c", "" },
	{ "no message-id",
	  "<imdn xmlns=\"" IMDN_NS "\"><delivery-notification><status><delivered/></status>"
	  "</delivery-notification></imdn>", 0, 0, NULL, NULL, NULL },
	{ "no notification",
	  "<imdn xmlns=\"" IMDN_NS "\"><message-id>m</message-id></imdn>", 0, 0, NULL, NULL, NULL },
	{ "two notifications",
	  "<imdn xmlns=\"" IMDN_NS "\"><message-id>m</message-id>"
	  "<delivery-notification><status><delivered/></status></delivery-notification>"
	  "<display-notification><status><displayed/></status></display-notification></imdn>",
	  0, 0, NULL, NULL, NULL },
	{ "wrong root namespace",
	  "<imdn xmlns=\"urn:other\"><message-id>m</message-id><delivery-notification><status>"
	  "<delivered/></status></delivery-notification></imdn>", 0, 0, NULL, NULL, NULL },
	{ "a DTD",
	  "<!DOCTYPE imdn><imdn xmlns=\"" IMDN_NS "\"><message-id>m</message-id>"
	  "<delivery-notification><status><delivered/></status></delivery-notification></imdn>",
	  0, 0, NULL, NULL, NULL },
	{ "message-id over 128 characters",
	  "<imdn xmlns=\"" IMDN_NS "\"><message-id>"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "</message-id><delivery-notification><status><delivered/></status>"
	  "</delivery-notification></imdn>", 0, 0, NULL, NULL, NULL },
	{ "truncated", "<imdn xmlns=\"" IMDN_NS "\"><message-id>m</message-id>", 0, 0, NULL, NULL,
	  NULL },
};

static void test_imdn_docs(void)
{
	for (size_t i = 0; i < NELEM(imdn_docs); i++) {
		struct map_imdn m;
		int r = map_imdn_parse(imdn_docs[i].doc, strlen(imdn_docs[i].doc), &m);

		CHECK_INT(r, imdn_docs[i].ok ? 0 : -1, "%s", imdn_docs[i].what);
		if (r != 0 || !imdn_docs[i].ok)
			continue;
		CHECK_INT(m.kind, imdn_docs[i].kind, "%s: kind", imdn_docs[i].what);
		CHECK_STR(m.status, imdn_docs[i].status, "%s: status", imdn_docs[i].what);
		CHECK_STR(m.message_id, imdn_docs[i].message_id, "%s: message-id", imdn_docs[i].what);
		CHECK_STR(m.datetime, imdn_docs[i].datetime, "%s: datetime", imdn_docs[i].what);
	}
	/* a document too large to be an IMDN */
	{
		size_t n = 20000;
		char *big = malloc(n + 1);
		struct map_imdn m;

		memset(big, ' ', n);
		big[n] = '\0';
		memcpy(big, "<imdn xmlns=\"" IMDN_NS "\">", strlen("<imdn xmlns=\"" IMDN_NS "\">"));
		CHECK_INT(map_imdn_parse(big, n, &m), -1, "20 000 bytes");
		free(big);
	}
	/* built documents read back, escapes included */
	{
		static const struct {
			enum map_imdn_kind kind;
			const char *status, *id;
		} built[] = {
			{ MAP_IMDN_DELIVERY, "delivered", "abc~123" },
			{ MAP_IMDN_DELIVERY, "failed", "a&b<c>\"d" },
			{ MAP_IMDN_DISPLAY, "displayed", "x" },
		};

		for (size_t i = 0; i < NELEM(built); i++) {
			char *doc = map_imdn_build(built[i].kind, built[i].status, built[i].id,
						   "2026-12-04T15:00:00Z", "sip:alice@xmpp.example");
			struct map_imdn m;

			CHECK_INT(map_imdn_parse(doc, strlen(doc), &m), 0, "built %s reads back",
				  built[i].status);
			CHECK_INT(m.kind, built[i].kind, "built %s: kind", built[i].status);
			CHECK_STR(m.status, built[i].status, "built %s: status", built[i].status);
			CHECK_STR(m.message_id, built[i].id, "built %s: message-id", built[i].status);
			CHECK_STR(m.datetime, "2026-12-04T15:00:00Z", "built %s: datetime",
				  built[i].status);
			free(doc);
		}
	}
}

static const struct {
	enum map_imdn_kind kind;
	const char *status;
	int known;
	enum map_imdn_to to;
	const char *condition;
} rule_cases[] = {
	{ MAP_IMDN_DELIVERY, "delivered", 1, MAP_TO_RECEIVED, NULL },
	{ MAP_IMDN_DELIVERY, "failed", 1, MAP_TO_ERROR, "recipient-unavailable" },
	{ MAP_IMDN_DELIVERY, "forbidden", 1, MAP_TO_ERROR, "forbidden" },
	{ MAP_IMDN_DELIVERY, "error", 1, MAP_TO_ERROR, "undefined-condition" },
	{ MAP_IMDN_DISPLAY, "displayed", 1, MAP_TO_DISPLAYED, NULL },
	{ MAP_IMDN_DISPLAY, "error", 1, MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_PROCESSING, "processed", 1, MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_PROCESSING, "stored", 1, MAP_TO_NOTHING, NULL },
	{ MAP_IMDN_DELIVERY, "displayed", 0, 0, NULL },
	{ MAP_IMDN_DISPLAY, "delivered", 0, 0, NULL },
};

static void test_rules(void)
{
	for (size_t i = 0; i < NELEM(rule_cases); i++) {
		const struct map_imdn_rule *r = map_imdn_rule(rule_cases[i].kind, rule_cases[i].status);

		CHECK_INT(r != NULL, rule_cases[i].known, "rule for %d/%s", rule_cases[i].kind,
			  rule_cases[i].status);
		if (!r || !rule_cases[i].known)
			continue;
		CHECK_INT(r->to, rule_cases[i].to, "rule for %s: target", rule_cases[i].status);
		CHECK_STR(r->condition, rule_cases[i].condition, "rule for %s: condition",
			  rule_cases[i].status);
		if (r->condition)
			CHECK(map_error_known(r->condition), "%s is an XMPP condition", r->condition);
	}
}

/* ---- Disposition-Notification */

static const struct {
	const char *value;
	unsigned bits;
	const char *text;
} disposition_cases[] = {
	{ "positive-delivery, display", MAP_DISP_POSITIVE | MAP_DISP_DISPLAY,
	  "positive-delivery, display" },
	{ " Positive-Delivery ,negative-delivery", MAP_DISP_POSITIVE | MAP_DISP_NEGATIVE,
	  "positive-delivery, negative-delivery" },
	{ "processing", MAP_DISP_PROCESSING, "processing" },
	{ "display, something-new", MAP_DISP_DISPLAY, "display" },
	{ "positive-deliveryx", 0, "" },
	{ "", 0, "" },
	{ ",,,", 0, "" },
};

static void test_dispositions(void)
{
	for (size_t i = 0; i < NELEM(disposition_cases); i++) {
		char text[128];
		unsigned bits = map_imdn_dispositions(disposition_cases[i].value,
						      strlen(disposition_cases[i].value));

		CHECK_INT(bits, disposition_cases[i].bits, "\"%s\"", disposition_cases[i].value);
		map_imdn_dispositions_text(bits, text, sizeof(text));
		CHECK_STR(text, disposition_cases[i].text, "\"%s\" written back",
			  disposition_cases[i].value);
	}
	{
		char small[10];

		CHECK_INT(map_imdn_dispositions_text(MAP_DISP_POSITIVE, small, sizeof(small)), 0,
			  "a value that does not fit");
	}
}

/* ---- ids */

static const struct {
	const char *base;
	unsigned disp;
	const char *message_id, *datetime;
} stanza_id_cases[] = {
	{ "sgw01020304-m1", MAP_DISP_POSITIVE | MAP_DISP_DISPLAY, "abc123", "2026-12-04T14:00:00Z" },
	{ "sgw01020304-m2", MAP_DISP_NEGATIVE, "7073faff-6a94-1240-94a5-cea6fb3b661b",
	  "2008-04-04T12:16:49-05:00" },
	{ "x", MAP_DISP_POSITIVE, "a~b~c", "d~e" },
	{ "sgw-m3", MAP_DISP_POSITIVE, "\xc3\xa9t\xc3\xa9", "now" },
};

static const char *const not_ours[] = {
	"sgw01020304-m1", "a~1~YWJj", "~1~YWJj~ZA", "a~z~YWJj~ZA", "a~1~YW*j~ZA", "a~1~~ZA",
	"a~10~YWJj~ZA", "a~1~YQ~AQ", "a~1~Y~ZA",
};

static void test_ids(void)
{
	for (size_t i = 0; i < NELEM(stanza_id_cases); i++) {
		char id[320], mid[MAP_IMDN_ID_MAX + 1], dt[48];
		unsigned disp = 0;

		CHECK_INT(map_imdn_stanza_id(stanza_id_cases[i].base, stanza_id_cases[i].disp,
					     stanza_id_cases[i].message_id,
					     stanza_id_cases[i].datetime, id, sizeof(id)), 0,
			  "stanza id %zu made", i);
		CHECK(strncmp(id, stanza_id_cases[i].base, strlen(stanza_id_cases[i].base)) == 0,
		      "stanza id %zu starts with its base: %s", i, id);
		CHECK_INT(map_imdn_from_stanza_id(id, &disp, mid, sizeof(mid), dt, sizeof(dt)), 0,
			  "stanza id %zu read back", i);
		CHECK_INT(disp, stanza_id_cases[i].disp, "stanza id %zu: dispositions", i);
		CHECK_STR(mid, stanza_id_cases[i].message_id, "stanza id %zu: Message-ID", i);
		CHECK_STR(dt, stanza_id_cases[i].datetime, "stanza id %zu: DateTime", i);
		CHECK_INT(map_imdn_stanza_id(stanza_id_cases[i].base, 1, "m", "d", id, 8), -1,
			  "stanza id %zu: no room", i);
	}
	for (size_t i = 0; i < NELEM(not_ours); i++) {
		char mid[MAP_IMDN_ID_MAX + 1], dt[48];
		unsigned disp;

		CHECK_INT(map_imdn_from_stanza_id(not_ours[i], &disp, mid, sizeof(mid), dt,
						  sizeof(dt)), -1, "\"%s\" carries no request",
			  not_ours[i]);
	}
	/* XMPP -> SIP: the Message-ID carries the stanza id (and the sender's resource where it
	 * fits), behind 32 random bits */
	{
		static const struct {
			const char *id, *resource, *back;	/* back: the resource read back */
		} ids[] = {
			{ "purple1a2b3c", NULL, "" },
			{ "a", "test", "test" },
			{ "7fd6c3a0-4b1e-4e2a-9b0f-1c2d3e4f5a6b", "Conversations.Xb1z", "Conversations.Xb1z" },
			{ "id with spaces & <stuff>", "", "" },
			/* a resource too long for the 128 bytes: the id alone */
			{ "7fd6c3a0-4b1e-4e2a-9b0f-1c2d3e4f5a6b",
			  "a-rather-long-resource-name-that-some-clients-make-up-1234567890", "" },
		};
		char mid[MAP_IMDN_ID_MAX + 1], back[200], res[200], other[MAP_IMDN_ID_MAX + 1];
		char longid[100];

		for (size_t i = 0; i < NELEM(ids); i++) {
			CHECK_INT(map_imdn_message_id(ids[i].id, ids[i].resource, mid, sizeof(mid)), 0,
				  "Message-ID for %s", ids[i].id);
			CHECK(strlen(mid) <= MAP_IMDN_ID_MAX, "Message-ID within 128 bytes: %s", mid);
			CHECK(strlen(mid) > 9 && mid[8] == '~' && strspn(mid, "0123456789abcdef") == 8,
			      "Message-ID shape: %s", mid);
			CHECK(strspn(mid + 9, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789-_~") == strlen(mid + 9),
			      "Message-ID is a CPIM token: %s", mid);
			CHECK_INT(map_imdn_stanza_of(mid, back, sizeof(back), res, sizeof(res)), 0,
				  "%s read back", mid);
			CHECK_STR(back, ids[i].id, "stanza id from %s", mid);
			CHECK_STR(res, ids[i].back, "resource from %s", mid);
			map_imdn_message_id(ids[i].id, ids[i].resource, other, sizeof(other));
			CHECK(strcmp(mid, other) != 0, "two Message-IDs for %s differ", ids[i].id);
		}
		memset(longid, 'x', sizeof(longid) - 1);
		longid[sizeof(longid) - 1] = '\0';
		CHECK_INT(map_imdn_message_id(longid, NULL, mid, sizeof(mid)), -1,
			  "a 99-byte stanza id does not fit in 128 bytes");
		CHECK_INT(map_imdn_stanza_of("abc123", back, sizeof(back), res, sizeof(res)), -1,
			  "a foreign Message-ID");
		CHECK_INT(map_imdn_stanza_of("0102030g~YWJj", back, sizeof(back), res, sizeof(res)), -1,
			  "not hex");
		CHECK_INT(map_imdn_stanza_of("01020304~", back, sizeof(back), res, sizeof(res)), -1,
			  "nothing behind");
		CHECK_INT(map_imdn_stanza_of("01020304~AAE", back, sizeof(back), res, sizeof(res)), -1,
			  "decodes to control characters");
		CHECK_INT(map_imdn_stanza_of("0102030~YWJj", back, sizeof(back), res, sizeof(res)), -1,
			  "7 hex digits");
		CHECK_INT(map_imdn_stanza_of("01020304~YWJj~", back, sizeof(back), res, sizeof(res)), -1,
			  "an empty resource part");
	}
}

int main(void)
{
	test_tables();
	test_iscomposing();
	test_imdn_docs();
	test_rules();
	test_dispositions();
	test_ids();
	TEST_DONE();
}
