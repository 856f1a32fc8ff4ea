/* test_xmpp_parser.c - table-driven tests of the bounded XMPP stream parser (xmpp/parser.c), each input fed whole, bytewise and in random chunks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "xmpp/xmpp.h"
#include "tests/unit/test.h"

/* What Prosody sends a component (mod_component), and the open event it gives. */
#define HDR \
	"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' " \
	"xml:lang='en' xmlns='jabber:component:accept' id='4b1c7e2e-8d8f' " \
	"from='sip-gw.xmpp.example'>"
#define OPEN "open xml:lang=en id=4b1c7e2e-8d8f from=sip-gw.xmpp.example\n"
#define HDR_BARE \
	"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns='jabber:component:accept' id='s1'>"
#define OPEN_BARE "open id=s1\n"
#define END "</stream:stream>"
#define NS_CS "http://jabber.org/protocol/chatstates"
#define NS_SE "urn:ietf:params:xml:ns:xmpp-streams"

#define DEF_MAX 4096
#define DEF_DEPTH 16

struct pcase {
	const char *name;
	const char *in;
	size_t max_stanza;	/* 0: DEF_MAX */
	unsigned max_depth;	/* 0: DEF_DEPTH */
	const char *events;	/* one line per event: open ..., stanza <serialisation>, close,
				 * skipped <head> condition */
	const char *error;	/* stream error condition, or NULL */
	const char *error_text;	/* a substring of the error text */
};

static const struct pcase cases[] = {
	/* the component handshake as Prosody answers it */
	{ "handshake reply", HDR "<handshake/>", 0, 0, OPEN "stanza <handshake/>\n", NULL, NULL },
	{ "stream header only, no XML declaration", HDR_BARE, 0, 0, OPEN_BARE, NULL, NULL },
	{ "header attributes in document order, namespaced ones dropped",
	  "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:"
	  "dialback' xmlns='jabber:component:accept' from='x.example' db:foo='1' version='1.0' "
	  "xml:lang='fr' id='abc'>", 0, 0,
	  "open from=x.example version=1.0 xml:lang=fr id=abc\n", NULL, NULL },
	{ "unprefixed stream element in the streams namespace",
	  "<stream xmlns='http://etherx.jabber.org/streams' id='u'><message xmlns='jabber:"
	  "component:accept'/><message/>", 0, 0,
	  "open id=u\nstanza <message/>\nstanza <stream:message/>\n", NULL, NULL },
	{ "self-closing stream", "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>",
	  0, 0, "open\nclose\n", NULL, NULL },
	{ "close", HDR "<message/>" END, 0, 0, OPEN "stanza <message/>\nclose\n", NULL, NULL },

	/* stanzas */
	{ "chat message: body, subject, thread, chat state, delay",
	  HDR "<message from='alice@xmpp.example/phone' to='bob%sip.example@sip-gw.xmpp.example' "
	  "type='chat' id='m1'><subject>Hi</subject><body>Hello &amp; welcome &lt;3</body>"
	  "<thread>t1</thread><active xmlns='" NS_CS "'/><delay xmlns='urn:xmpp:delay' "
	  "from='xmpp.example' stamp='2024-05-01T10:00:00Z'>Offline Storage</delay></message>",
	  0, 0,
	  OPEN "stanza <message id=\"m1\" type=\"chat\" to=\"bob%sip.example@sip-gw.xmpp.example\" "
	  "from=\"alice@xmpp.example/phone\"><subject>Hi</subject><body>Hello &amp; welcome &lt;3"
	  "</body><thread>t1</thread><active xmlns=\"" NS_CS "\"/><delay stamp=\"2024-05-01T10:00:"
	  "00Z\" xmlns=\"urn:xmpp:delay\" from=\"xmpp.example\">Offline Storage</delay></message>\n",
	  NULL, NULL },
	{ "xmlns emitted only where the namespace changes",
	  HDR "<iq type='get' id='q1'><query xmlns='http://jabber.org/protocol/disco#info'>"
	  "<identity category='gateway' type='sip'/><feature var='urn:xmpp:receipts'/></query></iq>"
	  "<message><x xmlns='urn:a'><y xmlns='urn:b'><z/></y><w/><v xmlns='urn:a'/></x>"
	  "<body>b</body></message>", 0, 0,
	  OPEN "stanza <iq id=\"q1\" type=\"get\"><query xmlns=\"http://jabber.org/protocol/disco"
	  "#info\"><identity type=\"sip\" category=\"gateway\"/><feature var=\"urn:xmpp:receipts\"/>"
	  "</query></iq>\nstanza <message><x xmlns=\"urn:a\"><y xmlns=\"urn:b\"><z/></y><w/><v/></x>"
	  "<body>b</body></message>\n", NULL, NULL },
	{ "prefixed namespaces become default declarations",
	  HDR "<message><p:x xmlns:p='urn:a'><p:y/><q/></p:x></message>", 0, 0,
	  OPEN "stanza <message><x xmlns=\"urn:a\"><y/><q xmlns=\"jabber:component:accept\"/></x>"
	  "</message>\n", NULL, NULL },
	{ "namespace names with markup characters",
	  HDR "<message><x xmlns='urn:a&amp;b'><y/></x><p:z xmlns:p='a&lt;&quot;&gt;' p:q='1'/>"
	  "</message>", 0, 0,
	  OPEN "stanza <message><x xmlns=\"urn:a&amp;b\"><y/></x><z xmlns=\"a&lt;&quot;&gt;\"/>"
	  "</message>\n", NULL, NULL },
	/* namespace names are not checked as URIs: Prosody forwards these as they are */
	{ "namespace name with a space", HDR "<message><x xmlns='urn:a b'><y/></x></message>", 0, 0,
	  OPEN "stanza <message><x xmlns=\"urn:a b\"><y/></x></message>\n", NULL, NULL },
	{ "namespace name with a raw line end (read as a space)",
	  HDR "<message><x xmlns='urn:a\nb'/></message>", 0, 0,
	  OPEN "stanza <message><x xmlns=\"urn:a b\"/></message>\n", NULL, NULL },
	{ "namespace name with a line end by reference",
	  HDR "<message><x xmlns='urn:a&#10;b'/></message>", 0, 0,
	  OPEN "stanza <message><x xmlns=\"urn:a\nb\"/></message>\n", NULL, NULL },
	{ "stanza in another namespace keeps it",
	  HDR "<message xmlns='jabber:server'><body>b</body></message>", 0, 0,
	  OPEN "stanza <message xmlns=\"jabber:server\"><body>b</body></message>\n", NULL, NULL },
	{ "jabber:client on a stanza is the default namespace, for its children too",
	  HDR "<message xmlns='jabber:client' to='a@b'><body>hi</body><active xmlns='" NS_CS "'/>"
	  "</message>", 0, 0,
	  OPEN "stanza <message to=\"a@b\"><body>hi</body><active xmlns=\"" NS_CS "\"/></message>\n",
	  NULL, NULL },
	{ "jabber:client inside a forward is kept",
	  HDR "<message xmlns='jabber:client'><sent xmlns='urn:xmpp:carbons:2'><forwarded "
	  "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' to='x'><body>inner</body>"
	  "</message></forwarded></sent></message>", 0, 0,
	  OPEN "stanza <message><sent xmlns=\"urn:xmpp:carbons:2\"><forwarded xmlns=\"urn:xmpp:"
	  "forward:0\"><message xmlns=\"jabber:client\" to=\"x\"><body>inner</body></message>"
	  "</forwarded></sent></message>\n", NULL, NULL },
	{ "xml:lang on stanza and child",
	  HDR "<message xml:lang='de' to='a'><body xml:lang='en'>x</body><body>y</body></message>",
	  0, 0,
	  OPEN "stanza <message to=\"a\" xml:lang=\"de\"><body xml:lang=\"en\">x</body><body>y</body>"
	  "</message>\n", NULL, NULL },
	{ "other namespaced attributes dropped",
	  HDR "<message xmlns:f='urn:f' f:x='1' to='a'><body f:y='2'>b</body></message>", 0, 0,
	  OPEN "stanza <message to=\"a\"><body>b</body></message>\n", NULL, NULL },
	{ "CDATA and mixed content",
	  HDR "<message><body><![CDATA[<b>hi</b> & ]]>more</body><x>a<y/>b<z/></x></message>", 0, 0,
	  OPEN "stanza <message><body>&lt;b&gt;hi&lt;/b&gt; &amp; more</body><x>a<y/>b<z/></x>"
	  "</message>\n", NULL, NULL },
	{ "character references and UTF-8",
	  HDR "<message><body>&#xe9;&#233;\xc3\xa9 &#x1F600; &apos;&quot;</body></message>", 0, 0,
	  OPEN "stanza <message><body>\xc3\xa9\xc3\xa9\xc3\xa9 \xf0\x9f\x98\x80 '&quot;</body>"
	  "</message>\n", NULL, NULL },
	{ "whitespace keepalives between stanzas",
	  HDR " \n<message/>  \r\n\t <presence/> \n <iq/>\n" END "\n", 0, 0,
	  OPEN "stanza <message/>\nstanza <presence/>\nstanza <iq/>\nclose\n", NULL, NULL },
	{ "whitespace inside stanzas is kept",
	  HDR "<message>\n  <body> x </body>\n</message>", 0, 0,
	  OPEN "stanza <message>\n  <body> x </body>\n</message>\n", NULL, NULL },
	{ "stream:error", HDR "<stream:error><conflict xmlns='" NS_SE "'/><text xmlns='" NS_SE "'>"
	  "Replaced by new connection</text></stream:error>" END, 0, 0,
	  OPEN "stanza <stream:error><conflict xmlns=\"" NS_SE "\"/><text xmlns=\"" NS_SE "\">"
	  "Replaced by new connection</text></stream:error>\nclose\n", NULL, NULL },
	{ "stream:error children in the default and the streams namespace",
	  HDR "<stream:error><x/><stream:y/></stream:error>", 0, 0,
	  OPEN "stanza <stream:error><x/><y xmlns=\"http://etherx.jabber.org/streams\"/>"
	  "</stream:error>\n", NULL, NULL },
	{ "stream:features", HDR "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'"
	  "/></stream:features>", 0, 0,
	  OPEN "stanza <stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>"
	  "</stream:features>\n", NULL, NULL },
	{ "long name in the streams namespace", HDR "<stream:abcdefghijklmnopqrstuvwxyz"
	  "abcdefghijklmnopqrstuvwxyz\xc3\xa9\xc3\xa9\xc3\xa9/>", 0, 0,
	  OPEN "stanza <stream:abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\xc3\xa9\xc3\xa9"
	  "\xc3\xa9/>\n", NULL, NULL },
	{ "data after the stream end is ignored",
	  HDR "<message/>" END "<message/>junk &&& <<<", 0, 0,
	  OPEN "stanza <message/>\nclose\n", NULL, NULL },

	/* nesting: max_depth counts the stanza itself */
	{ "nesting at the limit", HDR "<message><a><b><c/></b></a></message>", 0, 4,
	  OPEN "stanza <message><a><b><c/></b></a></message>\n", NULL, NULL },
	/* beyond the limit a stanza is skipped, and the stream goes on */
	{ "nesting beyond the limit",
	  HDR "<message/><message id='n1' from='a@b/c'><a><b><c><d/></c></b></a></message>"
	  "<presence/>", 0, 4,
	  OPEN "stanza <message/>\nskipped <message id=\"n1\" from=\"a@b/c\"/> not-acceptable\n"
	  "stanza <presence/>\n", NULL, NULL },
	{ "depth 1: childless stanzas only", HDR "<presence/><message><body/></message><iq/>", 0, 1,
	  OPEN "stanza <presence/>\nskipped <message/> not-acceptable\nstanza <iq/>\n", NULL,
	  NULL },

	/* text between stanzas */
	{ "text between stanzas", HDR "<message/>hello<message/>", 0, 0,
	  OPEN "stanza <message/>\n", "not-well-formed", "text outside any stanza" },
	{ "text right after the header", HDR "x", 0, 0, OPEN, "not-well-formed",
	  "text outside any stanza" },
	{ "entity between stanzas", HDR "&amp;", 0, 0, OPEN, "not-well-formed",
	  "text outside any stanza" },
	{ "non-breaking space between stanzas", HDR "\xc2\xa0", 0, 0, OPEN, "not-well-formed",
	  "text outside any stanza" },

	/* restricted XML (RFC 6120 11.1) */
	{ "DOCTYPE", "<?xml version='1.0'?><!DOCTYPE stream:stream>" HDR_BARE, 0, 0, "",
	  "restricted-xml", "DOCTYPE" },
	{ "DOCTYPE with an ENTITY",
	  "<!DOCTYPE s [<!ENTITY e 'x'>]>" HDR_BARE "<message>&e;</message>", 0, 0, "",
	  "restricted-xml", "DOCTYPE" },
	{ "entity expansion bomb",
	  "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
	  "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
	  "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
	  "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
	  HDR_BARE "<message><body>&lol3;</body></message>", 0, 0, "", "restricted-xml",
	  "DOCTYPE" },
	{ "undeclared entity in a stanza", HDR "<message><body>&lol3;</body></message>", 0, 0,
	  OPEN, "not-well-formed", "undefined entity" },
	{ "DOCTYPE inside the stream", HDR "<!DOCTYPE x>", 0, 0, OPEN, "not-well-formed", NULL },
	{ "processing instruction between stanzas", HDR "<message/><?php evil()?>", 0, 0,
	  OPEN "stanza <message/>\n", "restricted-xml", "processing instructions" },
	{ "processing instruction before the header", "<?xml version='1.0'?><?xml-stylesheet x?>"
	  HDR_BARE, 0, 0, "", "restricted-xml", "processing instructions" },
	{ "processing instruction in a stanza", HDR "<message><?pi?></message>", 0, 0, OPEN,
	  "restricted-xml", "processing instructions" },
	{ "comment between stanzas", HDR "<!-- hello -->", 0, 0, OPEN, "restricted-xml",
	  "comments" },
	{ "comment before the header", "<!-- x -->" HDR_BARE, 0, 0, "", "restricted-xml",
	  "comments" },
	{ "comment in a stanza", HDR "<message><body>a<!--b-->c</body></message>", 0, 0, OPEN,
	  "restricted-xml", "comments" },

	/* malformed XML */
	{ "mismatched tag", HDR "<message><body></message>", 0, 0, OPEN, "not-well-formed",
	  "mismatched tag" },
	{ "duplicate attribute", HDR "<message to='a' to='b'/>", 0, 0, OPEN, "not-well-formed",
	  "duplicate attribute" },
	{ "unbound prefix", HDR "<p:message/>", 0, 0, OPEN, "not-well-formed", "unbound prefix" },
	{ "invalid UTF-8", HDR "<message><body>\xff</body></message>", 0, 0, OPEN,
	  "not-well-formed", "invalid token" },
	{ "NUL character reference", HDR "<message><body>&#0;</body></message>", 0, 0, OPEN,
	  "not-well-formed", "reference to invalid character" },
	{ "control character", HDR "<message><body>\x01</body></message>", 0, 0, OPEN,
	  "not-well-formed", "invalid token" },
	{ "unquoted attribute", HDR "<message to=a/>", 0, 0, OPEN, "not-well-formed", NULL },
	{ "garbage instead of a stream", "hello world", 0, 0, "", "not-well-formed", NULL },
	{ "second root after the stream end is ignored, not an error",
	  HDR END "<stream:stream>", 0, 0, OPEN "close\n", NULL, NULL },
	{ "stray end tag", HDR "</message>", 0, 0, OPEN, "not-well-formed", "mismatched tag" },

	/* the root element */
	{ "wrong root element", "<message xmlns='jabber:component:accept'/>", 0, 0, "",
	  "invalid-namespace", "<stream:stream>" },
	{ "wrong stream namespace",
	  "<stream:stream xmlns:stream='http://etherx.jabber.org/streams/wrong' "
	  "xmlns='jabber:component:accept'>", 0, 0, "", "invalid-namespace", "<stream:stream>" },
	{ "stream element without a namespace", "<stream>", 0, 0, "", "invalid-namespace", NULL },
	{ "other element in the streams namespace",
	  "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>", 0, 0, "",
	  "invalid-namespace", NULL },

	/* size bounds: a stanza over max_stanza is skipped, with its head kept for the error */
	{ "text over the bound",
	  HDR "<message type='chat' id='big'><body>0123456789012345678901234567890123456789012345"
	  "6789012345678901234567890123456789012345678901234567890123456789</body></message>"
	  "<message/>", 64, 0,
	  OPEN "skipped <message id=\"big\" type=\"chat\"/> policy-violation\nstanza <message/>\n",
	  NULL, NULL },
	{ "one huge attribute in a self-closing stanza",
	  HDR "<message to='0123456789012345678901234567890123456789012345678901234567890123456"
	  "789'/>", 64, 0,
	  OPEN "skipped <message to=\"0123456789012345678901234567890123456789012345678901234567"
	  "890123456789\"/> policy-violation\n", NULL, NULL },
	{ "many small children", HDR "<message><a/><a/><a/><a/><a/><a/><a/><a/><a/><a/><a/><a/>"
	  "</message>", 64, 0, OPEN "skipped <message/> policy-violation\n", NULL, NULL },
	{ "only addressing attributes are kept of a skipped stanza",
	  HDR "<iq type='get' id='q' to='x@y' from='u@v/w' xml:lang='en' extra='no'><query "
	  "xmlns='urn:q'>0123456789012345678901234567890123456789012345678901234567890123"
	  "</query></iq>", 64, 0,
	  OPEN "skipped <iq id=\"q\" xml:lang=\"en\" to=\"x@y\" type=\"get\" from=\"u@v/w\"/> "
	  "policy-violation\n", NULL, NULL },
};

/* ---- running one input -------------------------------------------------------------------- */

struct rec {
	char *log;
	size_t len, cap;
	int after_close;	/* events after close: a bug */
	int closed;
};

static void rec_add(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rec_add(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	if (r->len + (size_t)n + 1 > r->cap) {
		r->cap = (r->len + (size_t)n + 1) * 2;
		r->log = realloc(r->log, r->cap);
		if (!r->log)
			abort();
	}
	va_start(ap, fmt);
	vsnprintf(r->log + r->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r->len += (size_t)n;
}

static void on_open(void *arg, const char **attrs)
{
	struct rec *r = arg;

	rec_add(r, "open");
	for (size_t i = 0; attrs[i]; i += 2)
		rec_add(r, " %s=%s", attrs[i], attrs[i + 1]);
	rec_add(r, "\n");
}

static void on_stanza(void *arg, xmpp_stanza_t *s)
{
	struct rec *r = arg;
	char *buf;
	size_t len;

	if (r->closed)
		r->after_close++;
	if (xmpp_stanza_to_text(s, &buf, &len) != XMPP_EOK) {
		rec_add(r, "stanza (unserialisable)\n");
		return;
	}
	rec_add(r, "stanza %s\n", buf);
	xmpp_free(xmpp_stanza_get_context(s), buf);
}

static void on_close(void *arg)
{
	struct rec *r = arg;

	if (r->closed)
		r->after_close++;
	r->closed = 1;
	rec_add(r, "close\n");
}

static void on_skipped(void *arg, xmpp_stanza_t *head, const char *cond, const char *text)
{
	struct rec *r = arg;
	char *buf;
	size_t len;

	if (r->closed)
		r->after_close++;
	if (xmpp_stanza_to_text(head, &buf, &len) != XMPP_EOK) {
		rec_add(r, "skipped (unserialisable)\n");
		return;
	}
	rec_add(r, "skipped %s %s\n", buf, cond);
	xmpp_free(xmpp_stanza_get_context(head), buf);
}

static const struct xmpp_parser_cbs rec_cbs = { on_open, on_stanza, on_close, on_skipped };

static unsigned rng_next(unsigned *s)
{
	/* xorshift32: a fixed seed gives the same chunks on every run */
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

enum { MODE_WHOLE, MODE_BYTES, MODE_RANDOM };
static const char *const mode_names[] = { "whole", "bytewise", "random chunks" };

/* Feeds in to a fresh parser in the given mode and checks the outcome against c. */
static void run_mode(xmpp_ctx_t *ctx, const struct pcase *c, size_t len, int mode, unsigned seed)
{
	struct rec r = { 0 };
	struct xmpp_parser *p = xmpp_parser_new(ctx, c->max_stanza ? c->max_stanza : DEF_MAX,
						c->max_depth ? c->max_depth : DEF_DEPTH,
						&rec_cbs, &r);
	const char *err, *text;
	size_t off = 0, log_at_fail = 0;
	int failed = 0, sticky = 1;

	rec_add(&r, "%s", "");
	while (off < len) {
		size_t n = len - off;

		if (mode == MODE_BYTES)
			n = 1;
		else if (mode == MODE_RANDOM)
			n = 1 + rng_next(&seed) % (rng_next(&seed) % 4 ? 16 : 700);
		if (n > len - off)
			n = len - off;
		if (xmpp_parser_feed(p, c->in + off, n) != 0) {
			if (!failed)
				log_at_fail = r.len;
			failed = 1;
		} else if (failed) {
			sticky = 0;
		}
		off += n;
	}
	/* a broken stream stays broken, and says nothing more */
	if (failed) {
		if (xmpp_parser_feed(p, "<x/>", 4) == 0)
			sticky = 0;
		CHECK(sticky && r.len == log_at_fail, "%s (%s): the error is final", c->name,
		      mode_names[mode]);
	}
	CHECK_STR(r.log, c->events, "%s (%s): events", c->name, mode_names[mode]);
	CHECK_INT(r.after_close, 0, "%s (%s): nothing after close", c->name, mode_names[mode]);
	err = xmpp_parser_error(p, &text);
	CHECK_STR(err, c->error, "%s (%s): error condition (%s)", c->name, mode_names[mode],
		  text ? text : "no text");
	CHECK_INT(failed, c->error != NULL, "%s (%s): feed result", c->name, mode_names[mode]);
	if (err)
		CHECK(text && *text, "%s (%s): an error has a text", c->name, mode_names[mode]);
	else
		CHECK(text == NULL, "%s (%s): no error, no text", c->name, mode_names[mode]);
	if (c->error_text)
		CHECK(text && strstr(text, c->error_text), "%s (%s): error text \"%s\" has \"%s\"",
		      c->name, mode_names[mode], text ? text : "", c->error_text);
	xmpp_parser_free(p);	/* possibly mid-stanza: LeakSanitizer checks the partial goes */
	free(r.log);
}

static void run_case(xmpp_ctx_t *ctx, const struct pcase *c)
{
	size_t len = strlen(c->in);

	run_mode(ctx, c, len, MODE_WHOLE, 0);
	run_mode(ctx, c, len, MODE_BYTES, 0);
	for (unsigned seed = 1; seed <= 3; seed++)
		run_mode(ctx, c, len, MODE_RANDOM, 0x9e3779b9u * seed);
}

/* ---- generated inputs: sizes around the bounds --------------------------------------------- */

static char *cat3(const char *a, const char *fill, size_t nfill, const char *b)
{
	size_t la = strlen(a), lf = strlen(fill), lb = strlen(b);
	char *s = malloc(la + lf * nfill + lb + 1), *p;

	if (!s)
		abort();
	memcpy(s, a, la);
	p = s + la;
	for (size_t i = 0; i < nfill; i++, p += lf)
		memcpy(p, fill, lf);
	memcpy(p, b, lb + 1);
	return s;
}

/* a + fill1 * n + fill2 * n + b: nested elements opened and closed */
static char *cat4(const char *a, const char *fill1, size_t n, const char *fill2, const char *b)
{
	char *head = cat3(a, fill1, n, ""), *s = cat3(head, fill2, n, b);

	free(head);
	return s;
}

static void run_generated(xmpp_ctx_t *ctx, const char *name, char *in, size_t max_stanza,
			  const char *events, const char *error, const char *error_text)
{
	struct pcase c = { name, in, max_stanza, 0, events, error, error_text };

	run_case(ctx, &c);
	free(in);
}

static void test_bounds(xmpp_ctx_t *ctx)
{
	char *ev, *body;

	/* "<message><body>" + k + "</body></message>" is 32 + k bytes: the bound is exact */
	body = cat3("", "x", 224, "");
	ev = cat3(OPEN "stanza <message><body>", body, 1, "</body></message>\n");
	run_generated(ctx, "stanza of exactly max_stanza bytes",
		      cat3(HDR "<message><body>", "x", 224, "</body></message>"), 256, ev, NULL,
		      NULL);
	free(ev);
	free(body);
	run_generated(ctx, "stanza one byte over max_stanza",
		      cat3(HDR "<message><body>", "x", 225, "</body></message>"), 256,
		      OPEN "skipped <message/> policy-violation\n", NULL, NULL);
	/* "<message to='" + k + "'/>" is 16 + k bytes, and a self-closing stanza counts whole */
	body = cat3("", "y", 240, "");
	ev = cat3(OPEN "stanza <message to=\"", body, 1, "\"/>\n");
	run_generated(ctx, "self-closing stanza of exactly max_stanza bytes",
		      cat3(HDR "<message to='", "y", 240, "'/>"), 256, ev, NULL, NULL);
	free(ev);
	free(body);
	body = cat3("", "y", 241, "");
	ev = cat3(OPEN "skipped <message to=\"", body, 1, "\"/> policy-violation\n");
	run_generated(ctx, "self-closing stanza one byte over",
		      cat3(HDR "<message to='", "y", 241, "'/>"), 256, ev, NULL, NULL);
	free(ev);
	free(body);
	/* far over the bound but within 16 times it, and made of small pieces: skipped */
	run_generated(ctx, "huge text, skipped",
		      cat3(HDR "<message><body>", "z", 60000, "</body></message><presence/>"), 4096,
		      OPEN "skipped <message/> policy-violation\nstanza <presence/>\n", NULL, NULL);
	/* a skipped stanza is followed to its end only as far as 16 times the bound */
	run_generated(ctx, "huge text beyond what is skipped",
		      cat3(HDR "<message><body>", "z", 200000, "</body></message>"), 4096, OPEN,
		      "policy-violation", "skipped stanza longer than 65536 bytes");
	/* one piece of markup expat cannot finish within 16 times the bound ends the stream */
	run_generated(ctx, "huge attribute, closed",
		      cat3(HDR "<message to='", "a", 100000, "'/>"), 4096, OPEN,
		      "policy-violation", "unfinished markup longer than 65536 bytes");
	run_generated(ctx, "huge attribute, never closed",
		      cat3(HDR "<message to='", "a", 100000, ""), 4096, OPEN, "policy-violation",
		      "unfinished markup longer than 65536 bytes");
	{
		/* distinct attribute names, so expat does not stop at a duplicate first */
		size_t n = 20000, at;
		char *in = malloc(sizeof(HDR) + n * 12 + 16);

		if (!in)
			abort();
		at = (size_t)sprintf(in, "%s<message", HDR);
		for (size_t i = 0; i < n; i++)
			at += (size_t)sprintf(in + at, " a%zu='b'", i);
		run_generated(ctx, "endless start tag, never closed", in, 4096, OPEN,
			      "policy-violation", "unfinished markup longer than 65536 bytes");
	}
	run_generated(ctx, "endless element name",
		      cat3(HDR "<message/><m", "m", 100000, ""), 4096, OPEN "stanza <message/>\n",
		      "policy-violation", "unfinished markup longer than 65536 bytes");
	run_generated(ctx, "endless stream header",
		      cat3("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='",
			   "h", 100000, "'>"), 4096, "", "policy-violation",
		      "unfinished markup longer than 65536 bytes");
	/* deep nesting is skipped as far as the skipping bound, and its end is waited for */
	run_generated(ctx, "deep nesting beyond the limit, closed",
		      cat4(HDR "<message id='d'>", "<a>", 2000, "</a>", "</message><iq/>"), 4096,
		      OPEN "skipped <message id=\"d\"/> not-acceptable\nstanza <iq/>\n", NULL, NULL);
	run_generated(ctx, "deep nesting far beyond the limit, never closed",
		      cat3(HDR "<message>", "<a>", 100000, ""), 4096, OPEN, "policy-violation",
		      "skipped stanza longer than 65536 bytes");
	/* keepalives are not a stanza: an idle link sends them for ever */
	run_generated(ctx, "a long run of keepalives",
		      cat3(HDR, " ", 100000, "<message/>"), 256, OPEN "stanza <message/>\n", NULL,
		      NULL);
	ev = cat3(OPEN, "stanza <presence/>\n", 1000, "close\n");
	run_generated(ctx, "keepalives between many stanzas",
		      cat3(HDR, "\n<presence/> \n", 1000, END), 64, ev, NULL, NULL);
	free(ev);
}

/* ---- reset ------------------------------------------------------------------------------- */

static void test_reset(xmpp_ctx_t *ctx)
{
	struct rec r = { 0 };
	struct xmpp_parser *p = xmpp_parser_new(ctx, 1024, 8, &rec_cbs, &r);
	const char *text = "x";
	static const char half[] = HDR "<message to='a'><body>half";
	static const char fresh[] = HDR_BARE "<message><body>again</body></message>" END;
	static const char want[] = OPEN_BARE "stanza <message><body>again</body></message>\nclose\n";

	CHECK_STR(xmpp_parser_error(p, &text), NULL, "new parser: no error");
	CHECK(text == NULL, "new parser: no error text");
	CHECK(xmpp_parser_error(p, NULL) == NULL, "error text pointer may be NULL");

	/* mid-stanza */
	CHECK_INT(xmpp_parser_feed(p, half, strlen(half)), 0, "reset: first half");
	xmpp_parser_reset(p);
	r.len = 0;
	r.log[0] = '\0';
	CHECK_INT(xmpp_parser_feed(p, fresh, strlen(fresh)), 0, "reset mid-stanza: fresh stream");
	CHECK_STR(r.log, want, "reset mid-stanza: events");

	/* after the stream closed */
	xmpp_parser_reset(p);
	r.len = 0;
	r.closed = 0;
	CHECK_INT(xmpp_parser_feed(p, fresh, strlen(fresh)), 0, "reset after close");
	CHECK_STR(r.log, want, "reset after close: events");

	/* after an error */
	CHECK_INT(xmpp_parser_feed(p, "", 0), 0, "an empty feed after close");
	xmpp_parser_reset(p);
	r.len = 0;
	r.closed = 0;
	CHECK_INT(xmpp_parser_feed(p, HDR "<!-- -->", strlen(HDR "<!-- -->")), -1, "break it");
	CHECK_STR(xmpp_parser_error(p, NULL), "restricted-xml", "broken");
	xmpp_parser_reset(p);
	CHECK_STR(xmpp_parser_error(p, &text), NULL, "reset clears the error");
	CHECK(text == NULL, "reset clears the error text");
	r.len = 0;
	r.closed = 0;
	CHECK_INT(xmpp_parser_feed(p, fresh, strlen(fresh)), 0, "reset after an error");
	CHECK_STR(r.log, want, "reset after an error: events");

	/* the size bound starts over with the new stream */
	xmpp_parser_reset(p);
	r.len = 0;
	r.closed = 0;
	{
		char *big = cat3(HDR_BARE "<message>", "<a/>", 200, "</message>");

		CHECK_INT(xmpp_parser_feed(p, big, strlen(big)), 0, "stanza just under 1024 bytes");
		free(big);
	}
	xmpp_parser_reset(p);
	r.len = 0;
	CHECK_INT(xmpp_parser_feed(p, half, strlen(half)), 0, "reset, then half a stanza");
	xmpp_parser_free(p);	/* with a partial stanza: LeakSanitizer checks it goes */
	free(r.log);
	xmpp_parser_free(NULL);
}

/* Callbacks are optional. */
static void test_no_callbacks(xmpp_ctx_t *ctx)
{
	static const struct xmpp_parser_cbs none = { NULL, NULL, NULL, NULL };
	struct xmpp_parser *p = xmpp_parser_new(ctx, 4096, 0, &none, NULL);
	static const char in[] = HDR "<message/>" END;
	static const char deep[] = HDR_BARE "<message><body/></message>";

	CHECK_INT(xmpp_parser_feed(p, in, strlen(in)), 0, "no callbacks");
	/* max_depth 0 is taken as 1: a stanza with a child is skipped, and nobody is told */
	xmpp_parser_reset(p);
	CHECK_INT(xmpp_parser_feed(p, deep, strlen(deep)), 0, "max_depth 0: one level");
	CHECK_STR(xmpp_parser_error(p, NULL), NULL, "max_depth 0: no stream error");
	xmpp_parser_free(p);
}

/* ---- xmpp_text_stanza(): exact output, then a round trip through the parser ------------------ */

struct scase {
	const char *name;
	const char *in;		/* one stanza, fed after HDR_BARE */
	const char *want;	/* its serialisation */
};

static const struct scase scases[] = {
	{ "empty element", "<presence/>", "<presence/>" },
	{ "text escapes &, <, >; quotes and LF stay",
	  "<message><body>a &amp; b &lt; c &gt; d 'e' \"f\"\ng</body></message>",
	  "<message><body>a &amp; b &lt; c &gt; d 'e' \"f\"\ng</body></message>" },
	{ "CR in text as a character reference (a parser would turn a raw CR into LF)",
	  "<message><body>a&#13;b&#13;&#10;c</body></message>",
	  "<message><body>a&#13;b&#13;\nc</body></message>" },
	{ "attribute escapes &, <, ', \", TAB, LF, CR; > stays",
	  "<iq id='a&amp;b&lt;c&gt;d&apos;e&quot;f&#9;g&#10;h&#13;i'/>",
	  "<iq id='a&amp;b&lt;c>d&apos;e&quot;f&#9;g&#10;h&#13;i'/>" },
	{ "UTF-8 untouched", "<message><body>\xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80</body></message>",
	  "<message><body>\xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80</body></message>" },
	{ "namespaces where they change, mixed content",
	  "<message><x xmlns='urn:a'>one<y xmlns='urn:b'>two</y>three<z/></x></message>",
	  "<message><x xmlns='urn:a'>one<y xmlns='urn:b'>two</y>three<z/></x></message>" },
	{ "empty attribute value and empty text", "<iq id=''><query xmlns='urn:q'></query></iq>",
	  "<iq id=''><query xmlns='urn:q'/></iq>" },
};

struct one {
	xmpp_stanza_t *s;
};

static void keep_stanza(void *arg, xmpp_stanza_t *s)
{
	struct one *o = arg;

	if (!o->s)
		o->s = xmpp_stanza_clone(s);
}

static xmpp_stanza_t *parse_one(xmpp_ctx_t *ctx, const char *in, size_t len)
{
	static const struct xmpp_parser_cbs cbs = { NULL, keep_stanza, NULL, NULL };
	struct one o = { NULL };
	struct xmpp_parser *p = xmpp_parser_new(ctx, 1 << 20, 16, &cbs, &o);

	if (xmpp_parser_feed(p, HDR_BARE, strlen(HDR_BARE)) || xmpp_parser_feed(p, in, len))
		o.s = o.s ? (xmpp_stanza_release(o.s), NULL) : NULL;
	xmpp_parser_free(p);
	return o.s;
}

static void test_serialise(xmpp_ctx_t *ctx)
{
	for (size_t i = 0; i < NELEM(scases); i++) {
		const struct scase *c = &scases[i];
		struct xmpp_text t1 = { 0 }, t2 = { 0 };
		xmpp_stanza_t *s1 = parse_one(ctx, c->in, strlen(c->in)), *s2;

		CHECK(s1 != NULL, "serialise %s: input parses", c->name);
		if (!s1)
			continue;
		xmpp_text_stanza(&t1, s1);
		CHECK_STR(t1.p, c->want, "serialise %s", c->name);
		s2 = parse_one(ctx, t1.p, t1.len);
		CHECK(s2 != NULL, "serialise %s: output parses again", c->name);
		if (s2) {
			xmpp_text_stanza(&t2, s2);
			CHECK_STR(t2.p, t1.p, "serialise %s: round trip", c->name);
			xmpp_stanza_release(s2);
		}
		xmpp_stanza_release(s1);
		xmpp_text_free(&t1);
		xmpp_text_free(&t2);
	}

	/* more attributes than the on-stack array holds, appended to a non-empty buffer */
	{
		char in[2048] = "<iq", want[2048];
		struct xmpp_text t = { 0 };
		xmpp_stanza_t *s;
		size_t n = 0;

		for (int i = 0; i < 40; i++)
			n += (size_t)snprintf(in + 3 + n, sizeof(in) - 3 - n, " a%d='v%d'", i, i);
		strcat(in, "/>");
		s = parse_one(ctx, in, strlen(in));
		CHECK(s != NULL, "serialise 40 attributes: parses");
		if (s) {
			xmpp_text_stanza(&t, s);
			xmpp_text_stanza(&t, s);
			CHECK_INT((long)t.len, (long)(2 * strlen(in)), "serialise 40 attributes: length, twice");
			for (int i = 0; i < 40; i++) {
				snprintf(want, sizeof(want), " a%d='v%d'", i, i);
				CHECK(strstr(t.p, want) != NULL, "serialise 40 attributes: a%d present", i);
			}
			xmpp_stanza_release(s);
		}
		xmpp_text_free(&t);
		CHECK(t.p == NULL && t.len == 0 && t.cap == 0, "xmpp_text_free empties");
	}
}

int main(void)
{
	xmpp_ctx_t *ctx;

	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	if (!ctx)
		abort();
	for (size_t i = 0; i < NELEM(cases); i++)
		run_case(ctx, &cases[i]);
	test_bounds(ctx);
	test_reset(ctx);
	test_no_callbacks(ctx);
	test_serialise(ctx);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	TEST_DONE();
}
