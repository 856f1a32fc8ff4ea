/* test_rlmi.c - RLMI documents and multipart/related bodies (mapping/rlmi.h), as tables: the
 * RFC 4662 example, partial state, refusals, splitting, and build -> parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "mapping/rlmi.h"
#include "tests/unit/test.h"

/* RFC 4662 section 6's first RLMI document */
#define RFC_EXAMPLE "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<list xmlns=\"urn:ietf:params:xml:ns:rlmi\"\n" \
	"      uri=\"sip:adam-friends@pres.example.com\" version=\"1\"\n" \
	"      fullState=\"true\">\n" \
	"  <name xml:lang=\"en\">Buddy List at COM</name>\n" \
	"  <name xml:lang=\"de\">Liste der Freunde an COM</name>\n" \
	"  <resource uri=\"sip:bob@example.com\">\n" \
	"    <name>Bob Smith</name>\n" \
	"    <instance id=\"juwigmtboe\" state=\"active\"\n" \
	"              cid=\"bUZBsM@pres.example.com\"/>\n" \
	"  </resource>\n" \
	"  <resource uri=\"sip:dave@example.com\">\n" \
	"    <name>Dave Jones</name>\n" \
	"    <instance id=\"hqzsuxtfyq\" state=\"active\"\n" \
	"              cid=\"ZvSvkz@pres.example.com\"/>\n" \
	"  </resource>\n" \
	"  <resource uri=\"sip:ed@example.net\">\n" \
	"    <name>Ed at NET</name>\n" \
	"  </resource>\n" \
	"  <resource uri=\"sip:adam-friends@example.org\">\n" \
	"    <name xml:lang=\"en\">My Friends at ORG</name>\n" \
	"    <name xml:lang=\"de\">Meine Freunde an ORG</name>\n" \
	"  </resource>\n" \
	"</list>\n"

#define PARTIAL "<list xmlns='urn:ietf:params:xml:ns:rlmi' uri='sip:l@x' version='7' " \
	"fullState='false'><resource uri='sip:bob@example.com'><x:ext xmlns:x='urn:x'>" \
	"<resource uri='sip:ignored@x'/></x:ext><instance id='a' state='terminated' " \
	"reason='noresource'/><instance id='b' state='pending'/></resource></list>"

static const struct parse_case {
	const char *what;
	const char *doc;
	size_t max_resources;
	unsigned long version;
	int full;
	size_t nres;
	const char *res0_name;
	size_t res0_instances;
	int inst0_state;
	const char *inst0_cid;
	const char *inst0_reason;
} parse_cases[] = {
	{ "RFC 4662 example", RFC_EXAMPLE, 16, 1, 1, 4, "Bob Smith", 1, RLMI_ACTIVE,
	  "bUZBsM@pres.example.com", NULL },
	{ "partial state, extension skipped", PARTIAL, 16, 7, 0, 1, NULL, 2, RLMI_TERMINATED,
	  NULL, "noresource" },
};

static const struct refuse_case {
	const char *what;
	const char *doc;
	size_t max_resources;
	const char *want_err;
} refuse_cases[] = {
	{ "too many resources", RFC_EXAMPLE, 3, "more than 3 resources" },
	{ "no list uri", "<list xmlns='urn:ietf:params:xml:ns:rlmi' version='1' fullState='true'/>",
	  16, "<list> without a uri" },
	{ "no version", "<list xmlns='urn:ietf:params:xml:ns:rlmi' uri='sip:l@x' fullState='true'/>",
	  16, "without a version" },
	{ "a negative version", "<list xmlns='urn:ietf:params:xml:ns:rlmi' uri='sip:l@x' "
	  "version='-1' fullState='true'/>", 16, "without a version" },
	{ "fullState not boolean", "<list xmlns='urn:ietf:params:xml:ns:rlmi' uri='sip:l@x' "
	  "version='1' fullState='yes'/>", 16, "fullState is not a boolean" },
	{ "unknown instance state", "<list xmlns='urn:ietf:params:xml:ns:rlmi' uri='sip:l@x' "
	  "version='1' fullState='true'><resource uri='sip:a@x'><instance id='i' state='gone'/>"
	  "</resource></list>", 16, "state of active, pending or terminated" },
	{ "resource without uri", "<list xmlns='urn:ietf:params:xml:ns:rlmi' uri='sip:l@x' "
	  "version='1' fullState='true'><resource/></list>", 16, "<resource> without a uri" },
	{ "another document", "<presence xmlns='urn:ietf:params:xml:ns:pidf'/>", 16,
	  "not an RLMI <list>" },
	{ "a DOCTYPE", "<!DOCTYPE list><list/>", 16, "DOCTYPE" },
	{ "not XML", "<list", 16, "not well-formed" },
	{ "nested too deep, inside a skipped extension", "<list xmlns='urn:ietf:params:xml:ns:rlmi' "
	  "uri='sip:l@x' version='1' fullState='true'><x:a xmlns:x='urn:x'>"
	  "<x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b>"
	  "<x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b><x:b>"
	  "</x:a></list>", 16, "nested deeper than 32" },
};

static void test_refuse(void)
{
	for (size_t i = 0; i < NELEM(refuse_cases); i++) {
		const struct refuse_case *c = &refuse_cases[i];
		struct rlmi_list *l = NULL;
		char err[256] = "";
		int r = rlmi_parse(c->doc, strlen(c->doc), 65536, c->max_resources, &l, err,
				   sizeof(err));

		CHECK(r == -1 && !l, "%s: refused", c->what);
		CHECK(strstr(err, c->want_err) != NULL, "%s: \"%s\" says \"%s\"", c->what, err,
		      c->want_err);
	}
}

static void test_parse(void)
{
	for (size_t i = 0; i < NELEM(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct rlmi_list *l = NULL;
		char err[256] = "";
		int r = rlmi_parse(c->doc, strlen(c->doc), 65536, c->max_resources, &l, err,
				   sizeof(err));

		CHECK(r == 0 && l, "%s: parsed (%s)", c->what, err);
		if (!l)
			continue;
		CHECK_INT(l->version, c->version, "%s: version", c->what);
		CHECK_INT(l->full_state, c->full, "%s: fullState", c->what);
		CHECK_INT(l->nresources, c->nres, "%s: resources", c->what);
		if (l->nresources) {
			const struct rlmi_resource *r0 = &l->resources[0];

			CHECK(c->res0_name ? r0->name && !strcmp(r0->name, c->res0_name) : !r0->name,
			      "%s: name %s", c->what, r0->name ? r0->name : "(none)");
			CHECK_INT(r0->ninstances, c->res0_instances, "%s: instances", c->what);
			if (r0->ninstances) {
				const struct rlmi_instance *in = &r0->instances[0];

				CHECK_INT(in->state, c->inst0_state, "%s: state", c->what);
				CHECK(c->inst0_cid ? in->cid && !strcmp(in->cid, c->inst0_cid) : !in->cid,
				      "%s: cid", c->what);
				CHECK(c->inst0_reason ? in->reason && !strcmp(in->reason, c->inst0_reason)
						      : !in->reason, "%s: reason", c->what);
			}
		}
		rlmi_list_free(l);
	}
}

#define MP_BODY "preamble to ignore\r\n" \
	"--50UBfW7LSCVLtggUPytvwWdGmUV7\r\n" \
	"Content-Transfer-Encoding: binary\r\n" \
	"Content-ID: <ZvSvkz@pres.example.com>\r\n" \
	"Content-Type: application/pidf+xml;charset=\"UTF-8\"\r\n" \
	"\r\n" \
	"<presence/>\r\n" \
	"--50UBfW7LSCVLtggUPytvwWdGmUV7\r\n" \
	"Content-Type: application/rlmi+xml;charset=\"UTF-8\"\r\n" \
	"Content-ID: <nXYxAE@pres.example.com>\r\n" \
	"\r\n" \
	"<list/>\r\n" \
	"--50UBfW7LSCVLtggUPytvwWdGmUV7\r\n" \
	"\r\n" \
	"no headers\r\n" \
	"--50UBfW7LSCVLtggUPytvwWdGmUV7--\r\n" \
	"epilogue"

static const struct split_case {
	const char *what;
	const char *ct;
	const char *body;
	int nparts;		/* -1: refused */
	size_t root;
	const char *root_body;
	const char *want_err;
} split_cases[] = {
	{ "RFC 4662 layout, start names the second part",
	  "multipart/related;type=\"application/rlmi+xml\";start=\"<nXYxAE@pres.example.com>\";"
	  "boundary=\"50UBfW7LSCVLtggUPytvwWdGmUV7\"", MP_BODY, 3, 1, "<list/>", NULL },
	{ "no start: the first part", "multipart/related; boundary=50UBfW7LSCVLtggUPytvwWdGmUV7",
	  MP_BODY, 3, 0, "<presence/>", NULL },
	{ "start names no part", "multipart/related;start=\"<nope@x>\";"
	  "boundary=50UBfW7LSCVLtggUPytvwWdGmUV7", MP_BODY, -1, 0, NULL, "named by start" },
	{ "no boundary", "multipart/related;type=\"application/rlmi+xml\"", MP_BODY, -1, 0, NULL,
	  "without a boundary" },
	{ "another type", "multipart/mixed;boundary=50UBfW7LSCVLtggUPytvwWdGmUV7", MP_BODY, -1, 0,
	  NULL, "not multipart/related" },
	{ "a boundary not in the body", "multipart/related;boundary=other", MP_BODY, -1, 0, NULL,
	  "no boundary delimiter" },
	{ "no close delimiter", "multipart/related;boundary=b",
	  "--b\r\nContent-Type: text/plain\r\n\r\nunfinished", -1, 0, NULL,
	  "without the delimiter after it" },
	{ "a header line without a colon", "multipart/related;boundary=b",
	  "--b\r\nContent-Type text/plain\r\n\r\nx\r\n--b--", -1, 0, NULL, "malformed multipart" },
};

static void test_split(void)
{
	for (size_t i = 0; i < NELEM(split_cases); i++) {
		const struct split_case *c = &split_cases[i];
		struct rlmi_part *parts = NULL;
		size_t root = 99;
		char err[256] = "";
		int n = rlmi_multipart_split(c->ct, c->body, strlen(c->body), 8, &parts, &root, err,
					     sizeof(err));

		CHECK_INT(n, c->nparts, "%s: parts (%s)", c->what, err);
		if (c->nparts < 0) {
			CHECK(strstr(err, c->want_err) != NULL, "%s: \"%s\" says \"%s\"", c->what, err,
			      c->want_err);
			CHECK(parts == NULL, "%s: no parts", c->what);
			continue;
		}
		if (n <= 0)
			continue;
		CHECK_INT(root, c->root, "%s: root", c->what);
		CHECK(parts[root].body_len == strlen(c->root_body) &&
		      !memcmp(parts[root].body, c->root_body, parts[root].body_len),
		      "%s: root body \"%.*s\"", c->what, (int)parts[root].body_len, parts[root].body);
		free(parts);
	}
}

static void test_build(void)
{
	struct rlmi_instance inst[2] = {
		{ "i1", RLMI_ACTIVE, NULL, "c1@gw" },
		{ "i2", RLMI_TERMINATED, "rejected", NULL },
	};
	struct rlmi_resource res[2] = {
		{ "sip:alice@xmpp.example", "Alice & \"friends\" <3", inst, 2 },
		{ "sip:carol@xmpp.example", NULL, NULL, 0 },
	};
	struct rlmi_list l = { "sip:friends@xmpp.example", 42, 1, res, 2 }, *back = NULL;
	size_t len = 0;
	char *doc = rlmi_build(&l, &len), err[256] = "";

	CHECK(doc && len == strlen(doc), "build: a document");
	CHECK_INT(rlmi_parse(doc, len, 65536, 16, &back, err, sizeof(err)), 0, "build: parses (%s)",
		  err);
	if (back) {
		CHECK_STR(back->uri, l.uri, "build: list uri");
		CHECK_INT(back->version, 42, "build: version");
		CHECK_INT(back->full_state, 1, "build: fullState");
		CHECK_INT(back->nresources, 2, "build: resources");
		CHECK_STR(back->resources[0].name, res[0].name, "build: escaped name back");
		CHECK_INT(back->resources[0].ninstances, 2, "build: instances");
		CHECK_STR(back->resources[0].instances[0].cid, "c1@gw", "build: cid");
		CHECK_STR(back->resources[0].instances[1].reason, "rejected", "build: reason");
		CHECK_INT(back->resources[1].ninstances, 0, "build: a resource without instances");
	}
	rlmi_list_free(back);
	free(doc);
}

/* rlmi_multipart_build's output splits back into the same parts, root first, whatever the
 * parts hold (delimiter-like lines included). */
static void test_multipart_build(void)
{
	static const char *const bodies[][3] = {
		{ "<list/>", "<presence>a</presence>", "<presence>b</presence>" },
		{ "<list/>", "--simplegw-0000000000000000 trap", "x" },
	};

	for (size_t c = 0; c < NELEM(bodies); c++) {
		struct rlmi_part in[3], *out = NULL;
		static const char *const cids[3] = { "root@x", "m0@x", "m1@x" };
		static const char *const cts[3] = { RLMI_CT, "application/pidf+xml", "application/pidf+xml" };
		char *ct = NULL, err[160] = "", *body;
		size_t len = 0, root = 9;
		int n;

		for (size_t i = 0; i < 3; i++) {
			in[i].content_type = cts[i];
			in[i].ct_len = strlen(cts[i]);
			in[i].content_id = cids[i];
			in[i].cid_len = strlen(cids[i]);
			in[i].body = bodies[c][i];
			in[i].body_len = strlen(bodies[c][i]);
		}
		body = rlmi_multipart_build(in, 3, &ct, &len);
		CHECK(strncmp(ct, "multipart/related;type=\"application/rlmi+xml\";start=\"<root@x>\";",
			      60) == 0, "build %zu: content type %s", c, ct);
		n = rlmi_multipart_split(ct, body, len, 8, &out, &root, err, sizeof(err));
		CHECK(n == 3 && root == 0, "build %zu: split into %d parts, root %zu (%s)", c, n, root, err);
		for (int i = 0; i < n && i < 3; i++) {
			CHECK(out[i].body_len == in[i].body_len &&
			      memcmp(out[i].body, in[i].body, in[i].body_len) == 0,
			      "build %zu: part %d body %.*s", c, i, (int)out[i].body_len, out[i].body);
			CHECK(out[i].content_id && out[i].cid_len == in[i].cid_len &&
			      memcmp(out[i].content_id, in[i].content_id, in[i].cid_len) == 0,
			      "build %zu: part %d content id", c, i);
		}
		free(out);
		free(body);
		free(ct);
	}
}

int main(void)
{
	test_parse();
	test_multipart_build();
	test_refuse();
	test_split();
	test_build();
	TEST_DONE();
}
