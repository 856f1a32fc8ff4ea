/* test_policy.c - presence authorization rules (mapping/policy.h): RFC 4745 conditions and
 * combining, RFC 5025 actions and transformations, and refused documents, as tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "mapping/pidf.h"
#include "mapping/policy.h"
#include "tests/unit/test.h"

#define HEAD "<?xml version='1.0' encoding='UTF-8'?>\n" \
	"<cr:ruleset xmlns='urn:ietf:params:xml:ns:pres-rules' " \
	"xmlns:cr='urn:ietf:params:xml:ns:common-policy'>\n"
#define TAIL "</cr:ruleset>\n"

/* RFC 5025 section 7's example: alice may see her friend's presence, with the note */
#define EXAMPLE HEAD \
	"<cr:rule id='a'>" \
	" <cr:conditions><cr:identity><cr:one id='sip:user@example.com'/></cr:identity></cr:conditions>" \
	" <cr:actions><sub-handling>allow</sub-handling></cr:actions>" \
	" <cr:transformations>" \
	"  <provide-services><service-uri-scheme>sip</service-uri-scheme></provide-services>" \
	"  <provide-persons><all-persons/></provide-persons>" \
	"  <provide-activities>true</provide-activities>" \
	"  <provide-user-input>bare</provide-user-input>" \
	"  <provide-unknown-attribute ns='urn:vendor-specific:foo-namespace' name='foo'>true</provide-unknown-attribute>" \
	" </cr:transformations>" \
	"</cr:rule>" TAIL

/* combining: friends (domain) allowed with notes, bob blocked, the office confirmed */
#define LAYERED HEAD \
	"<cr:rule id='domain'><cr:conditions><cr:identity><cr:many domain='xmpp.example'>" \
	"  <cr:except id='sip:mallory@xmpp.example'/></cr:many></cr:identity></cr:conditions>" \
	" <cr:actions><sub-handling>confirm</sub-handling></cr:actions>" \
	" <cr:transformations><provide-services><all-services/></provide-services></cr:transformations></cr:rule>" \
	"<cr:rule id='friends'><cr:conditions><cr:identity><cr:one id='sip:alice@xmpp.example'/>" \
	"  <cr:one id='sip:carol@xmpp.example'/></cr:identity></cr:conditions>" \
	" <cr:actions><sub-handling>allow</sub-handling></cr:actions>" \
	" <cr:transformations><provide-note>true</provide-note></cr:transformations></cr:rule>" \
	"<cr:rule id='carol-quiet'><cr:conditions><cr:identity><cr:one id='sip:carol@xmpp.example'/>" \
	"  </cr:identity></cr:conditions>" \
	" <cr:actions><sub-handling>polite-block</sub-handling></cr:actions></cr:rule>" \
	"<cr:rule id='mallory'><cr:conditions><cr:identity><cr:one id='sip:mallory@xmpp.example'/>" \
	"  </cr:identity></cr:conditions><cr:actions><sub-handling>block</sub-handling></cr:actions></cr:rule>" \
	TAIL

/* spheres, validity, unknown conditions, and everyone */
#define CONDITIONAL HEAD \
	"<cr:rule id='work'><cr:conditions><cr:sphere value='work office'/>" \
	"  <cr:identity><cr:many/></cr:identity></cr:conditions>" \
	" <cr:actions><sub-handling>allow</sub-handling></cr:actions>" \
	" <cr:transformations><provide-place-type>true</provide-place-type></cr:transformations></cr:rule>" \
	"<cr:rule id='december'><cr:conditions><cr:validity>" \
	"  <cr:from>2026-12-01T00:00:00Z</cr:from><cr:until>2027-01-01T00:00:00+01:00</cr:until>" \
	"  </cr:validity></cr:conditions>" \
	" <cr:transformations><provide-mood>true</provide-mood><provide-user-input>full</provide-user-input>" \
	" </cr:transformations></cr:rule>" \
	"<cr:rule id='future'><cr:conditions><geopriv:location xmlns:geopriv='urn:x-future'/></cr:conditions>" \
	" <cr:actions><sub-handling>allow</sub-handling></cr:actions></cr:rule>" \
	"<cr:rule id='everyone'>" \
	" <cr:transformations><provide-note>false</provide-note><provide-status-icon>1</provide-status-icon>" \
	" </cr:transformations></cr:rule>" \
	TAIL

#define T_DEC 1796126400	/* 2026-12-01T12:00:00Z */
#define T_NOV 1795521600	/* 2026-11-24T12:00:00Z */
#define T_END 1798758000	/* 2026-12-31T23:00:00Z = 2027-01-01T00:00:00+01:00: excluded */

static const struct decide_case {
	const char *what;
	const char *doc;
	const char *watcher;
	const char *sphere;
	long now;
	enum policy_sub sub;
	unsigned provide;
	enum policy_user_input input;
	size_t rules;
} decide_cases[] = {
	{ "RFC 5025 example: the listed watcher", EXAMPLE, "sip:user@example.com", NULL, T_DEC,
	  POLICY_ALLOW, POLICY_PROVIDE_ALL_PERSONS | POLICY_PROVIDE_ACTIVITIES, POLICY_INPUT_BARE, 1 },
	{ "RFC 5025 example: host case, pres: scheme", EXAMPLE, "pres:user@EXAMPLE.com", NULL, T_DEC,
	  POLICY_ALLOW, POLICY_PROVIDE_ALL_PERSONS | POLICY_PROVIDE_ACTIVITIES, POLICY_INPUT_BARE, 1 },
	{ "RFC 5025 example: user part is case-sensitive", EXAMPLE, "sip:User@example.com", NULL,
	  T_DEC, POLICY_BLOCK, 0, POLICY_INPUT_FALSE, 0 },
	{ "RFC 5025 example: anyone else is blocked by default", EXAMPLE, "sip:eve@example.com",
	  NULL, T_DEC, POLICY_BLOCK, 0, POLICY_INPUT_FALSE, 0 },
	{ "RFC 5025 example: an unauthenticated watcher", EXAMPLE, NULL, NULL, T_DEC, POLICY_BLOCK,
	  0, POLICY_INPUT_FALSE, 0 },
	{ "RFC 5025 example: parameters are not the identity", EXAMPLE,
	  "sip:user@example.com;transport=tcp", NULL, T_DEC, POLICY_ALLOW,
	  POLICY_PROVIDE_ALL_PERSONS | POLICY_PROVIDE_ACTIVITIES, POLICY_INPUT_BARE, 1 },
	{ "layered: the domain alone confirms", LAYERED, "sip:dave@xmpp.example", NULL, T_DEC,
	  POLICY_CONFIRM, POLICY_PROVIDE_ALL_SERVICES, POLICY_INPUT_FALSE, 1 },
	{ "layered: a friend is allowed, permissions united", LAYERED, "sip:alice@xmpp.example",
	  NULL, T_DEC, POLICY_ALLOW, POLICY_PROVIDE_ALL_SERVICES | POLICY_PROVIDE_NOTE,
	  POLICY_INPUT_FALSE, 2 },
	{ "layered: the highest sub-handling wins (allow over polite-block)", LAYERED,
	  "sip:carol@xmpp.example", NULL, T_DEC, POLICY_ALLOW,
	  POLICY_PROVIDE_ALL_SERVICES | POLICY_PROVIDE_NOTE, POLICY_INPUT_FALSE, 3 },
	{ "layered: excepted from the domain, blocked by his own rule", LAYERED,
	  "sip:mallory@xmpp.example", NULL, T_DEC, POLICY_BLOCK, 0, POLICY_INPUT_FALSE, 1 },
	{ "layered: another domain", LAYERED, "sip:dave@sip.example", NULL, T_DEC, POLICY_BLOCK, 0,
	  POLICY_INPUT_FALSE, 0 },
	{ "conditional: in the work sphere, inside the interval", CONDITIONAL,
	  "sip:bob@sip.example", "office", T_DEC, POLICY_ALLOW,
	  POLICY_PROVIDE_PLACE_TYPE | POLICY_PROVIDE_MOOD | POLICY_PROVIDE_STATUS_ICON,
	  POLICY_INPUT_FULL, 3 },
	{ "conditional: another sphere, before the interval", CONDITIONAL, "sip:bob@sip.example",
	  "home", T_NOV, POLICY_BLOCK, POLICY_PROVIDE_STATUS_ICON, POLICY_INPUT_FALSE, 1 },
	{ "conditional: sphere unknown, interval's end excluded", CONDITIONAL,
	  "sip:bob@sip.example", NULL, T_END, POLICY_BLOCK, POLICY_PROVIDE_STATUS_ICON,
	  POLICY_INPUT_FALSE, 1 },
	{ "conditional: <many/> needs an identity", CONDITIONAL, NULL, "work", T_NOV, POLICY_BLOCK,
	  POLICY_PROVIDE_STATUS_ICON, POLICY_INPUT_FALSE, 1 },
	{ "an empty ruleset blocks", HEAD TAIL, "sip:alice@xmpp.example", NULL, T_DEC, POLICY_BLOCK,
	  0, POLICY_INPUT_FALSE, 0 },
};

#define X8 "<x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b>"
#define X40 X8 X8 X8 X8 X8

static const struct refuse_case {
	const char *what;
	const char *doc;
	const char *want;	/* a substring of the message */
} refuse_cases[] = {
	{ "not XML", "<cr:ruleset", "not well-formed XML" },
	{ "another document", "<presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
	  "not a common-policy <ruleset>" },
	{ "a DOCTYPE", "<!DOCTYPE r [<!ENTITY a 'b'>]><r/>", "DOCTYPE" },
	{ "an unknown sub-handling", HEAD "<cr:rule id='x'><cr:actions><sub-handling>maybe"
	  "</sub-handling></cr:actions></cr:rule>" TAIL, "\"maybe\" is not block" },
	{ "an unknown user-input", HEAD "<cr:rule id='x'><cr:transformations><provide-user-input>"
	  "some</provide-user-input></cr:transformations></cr:rule>" TAIL, "\"some\" is not false" },
	{ "a boolean that is not", HEAD "<cr:rule id='x'><cr:transformations><provide-note>yes"
	  "</provide-note></cr:transformations></cr:rule>" TAIL, "holds \"yes\"" },
	{ "<one> without id", HEAD "<cr:rule id='x'><cr:conditions><cr:identity><cr:one/>"
	  "</cr:identity></cr:conditions></cr:rule>" TAIL, "<one> without an id" },
	{ "<except> with both", HEAD "<cr:rule id='x'><cr:conditions><cr:identity><cr:many>"
	  "<cr:except id='sip:a@b' domain='b'/></cr:many></cr:identity></cr:conditions></cr:rule>"
	  TAIL, "exactly one of id and domain" },
	{ "a time without a zone", HEAD "<cr:rule id='x'><cr:conditions><cr:validity><cr:from>"
	  "2026-12-01T00:00:00</cr:from><cr:until>2027-01-01T00:00:00Z</cr:until></cr:validity>"
	  "</cr:conditions></cr:rule>" TAIL, "not an xs:dateTime with a zone" },
	{ "nested too deep, inside a skipped condition", HEAD "<cr:rule id='x'><cr:conditions>"
	  "<x:a xmlns:x='urn:x'>" X40 "</x:a></cr:conditions></cr:rule>" TAIL,
	  "nested deeper than 32" },
	{ "<until> alone", HEAD "<cr:rule id='x'><cr:conditions><cr:validity><cr:until>"
	  "2027-01-01T00:00:00Z</cr:until></cr:validity></cr:conditions></cr:rule>" TAIL,
	  "<until> without a <from>" },
};

static void test_decide(void)
{
	for (size_t i = 0; i < NELEM(decide_cases); i++) {
		const struct decide_case *c = &decide_cases[i];
		struct policy *p = NULL;
		struct policy_decision d;
		char err[256] = "";

		CHECK_INT(policy_parse(c->doc, strlen(c->doc), 65536, &p, err, sizeof(err)), 0,
			  "%s: parse (%s)", c->what, err);
		if (!p)
			continue;
		policy_decide(p, c->watcher, c->sphere, (time_t)c->now, &d);
		CHECK_STR(policy_sub_name(d.sub), policy_sub_name(c->sub), "%s: sub-handling", c->what);
		CHECK_INT(d.provide, c->provide, "%s: transformations", c->what);
		CHECK_INT(d.user_input, c->input, "%s: user input", c->what);
		CHECK_INT(d.rules, c->rules, "%s: rules applied", c->what);
		policy_free(p);
	}
}

static void test_refuse(void)
{
	for (size_t i = 0; i < NELEM(refuse_cases); i++) {
		const struct refuse_case *c = &refuse_cases[i];
		struct policy *p = (struct policy *)1;
		char err[256] = "";

		CHECK_INT(policy_parse(c->doc, strlen(c->doc), 65536, &p, err, sizeof(err)), -1,
			  "%s: refused", c->what);
		CHECK(p == NULL, "%s: no result", c->what);
		CHECK(strstr(err, c->want) != NULL, "%s: \"%s\" says \"%s\"", c->what, err, c->want);
	}
}

static void test_bounds(void)
{
	size_t n = 1001, len;
	char *doc, *w;
	struct policy *p = NULL;
	char err[256] = "";

	/* 1001 rules: refused; 1000: taken */
	doc = gw_xmalloc(strlen(HEAD) + strlen(TAIL) + n * 32 + 1);
	w = doc + sprintf(doc, "%s", HEAD);
	for (size_t i = 0; i < n; i++)
		w += sprintf(w, "<cr:rule id='r%zu'/>", i);
	strcpy(w, TAIL);
	len = strlen(doc);
	CHECK_INT(policy_parse(doc, len, 1 << 20, &p, err, sizeof(err)), -1, "1001 rules refused");
	CHECK(strstr(err, "more than 1000 rules") != NULL, "message: %s", err);
	CHECK_INT(policy_parse(doc, len, 100, &p, err, sizeof(err)), -1, "size limit");
	CHECK(strstr(err, "larger than 100") != NULL, "message: %s", err);
	w = strstr(doc, "<cr:rule id='r1000'/>");
	strcpy(w, TAIL);
	CHECK_INT(policy_parse(doc, strlen(doc), 1 << 20, &p, err, sizeof(err)), 0, "1000 rules (%s)",
		  err);
	CHECK_INT(policy_rules(p), 1000, "1000 rules kept");
	policy_free(p);
	free(doc);
}

#define DOC "<presence xmlns='urn:ietf:params:xml:ns:pidf' " \
	"xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' " \
	"xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:bob@sip.example'>" \
	"<tuple id='phone'><status><basic>open</basic></status><contact>sip:bob@192.0.2.1</contact>" \
	"<note>in a meeting</note></tuple>" \
	"<tuple id='pc'><status><basic>closed</basic></status></tuple>" \
	"<dm:person id='p'><rpid:activities><rpid:away/></rpid:activities></dm:person></presence>"

static const struct filter_case {
	const char *what;
	unsigned provide;
	size_t ntuples;
	enum pidf_show show;	/* of the first tuple */
	size_t nnotes;		/* of the first tuple */
	int contact;		/* the first tuple keeps its contact */
} filter_cases[] = {
	{ "nothing provided: no services at all", 0, 0, 0, 0, 0 },
	{ "the services only: basic status, contact", POLICY_PROVIDE_ALL_SERVICES, 2,
	  PIDF_SHOW_NONE, 0, 1 },
	{ "services and activities", POLICY_PROVIDE_ALL_SERVICES | POLICY_PROVIDE_ACTIVITIES, 2,
	  PIDF_SHOW_AWAY, 0, 1 },
	{ "services and the note", POLICY_PROVIDE_ALL_SERVICES | POLICY_PROVIDE_NOTE, 2,
	  PIDF_SHOW_NONE, 1, 1 },
	{ "a note without services shows nothing", POLICY_PROVIDE_NOTE, 0, 0, 0, 0 },
	{ "all attributes", POLICY_PROVIDE_ALL_ATTRIBUTES, 2, PIDF_SHOW_AWAY, 1, 1 },
};

static void test_filter(void)
{
	for (size_t i = 0; i < NELEM(filter_cases); i++) {
		const struct filter_case *c = &filter_cases[i];
		struct policy_decision d = { .sub = POLICY_ALLOW, .provide = c->provide };
		struct pidf_doc *doc = NULL;
		char err[256] = "";

		CHECK_INT(pidf_parse(DOC, strlen(DOC), 65536, 8, &doc, err, sizeof(err)), 0,
			  "%s: PIDF (%s)", c->what, err);
		if (!doc)
			continue;
		policy_filter(&d, doc);
		CHECK_INT(doc->ntuples, c->ntuples, "%s: tuples", c->what);
		if (doc->ntuples && c->ntuples) {
			CHECK_INT(doc->tuples[0].show, c->show, "%s: show", c->what);
			CHECK_INT(doc->tuples[0].nnotes, c->nnotes, "%s: notes", c->what);
			CHECK_INT(doc->tuples[0].contact != NULL, c->contact, "%s: contact", c->what);
		}
		pidf_doc_free(doc);
	}
}

int main(void)
{
	test_filter();
	test_decide();
	test_refuse();
	test_bounds();
	TEST_DONE();
}
